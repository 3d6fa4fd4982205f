"""Deletion requests carried out: the person's rows purged from raw and quarantine, and checked stage by stage.

A request names an email, phone or contact id (as a hash, see `requests.py`). The person is every record
holding it, plus every record of the profile that held it at the last identity run, so a request by
email also removes the orders and the second contact linked to that person by phone, and the fields dropped
from any of their records (`quarantine.crm_contact_fields`, `quarantine.crm_order_fields`). Purging raw and
quarantine on every load means staging and core, which are rebuilt from raw, never see the person
again, even when a later export still carries them. `core.deletion_status` records, per request and
stage, how many rows still hold the identifier; only the hashes stay, for removal from destinations.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cdp_assets.activation.ledger import AUDIENCE_ACKS
from cdp_assets.activation.records.state import RECORD_STATE
from cdp_assets.ingest.phones import PHONE_NUMBERS
from cdp_assets.privacy.requests import DELETIONS
from cdp_assets.resources.warehouse import WarehouseResource

REQUESTED = "SELECT id_type, id_sha256 FROM core.deletion_requests WHERE status = 'active'"
# Hash forms match requests.py: email trimmed and lowercased, phone E.164 digits, contact id trimmed.
ID_HASH = {"email": "sha256(lower(trim({})))", "phone": "sha256(substr({}, 2))", "contact_id": "sha256(trim({}))"}
# A row's identifiers as the loader read them: the email trimmed of every kind of whitespace and lower-cased
# (NULL when unusable), the phone in E.164. Raw and quarantine rows both carry them.
ROW_IDS = {"email": "_email", "phone": "_phone_e164", "contact_id": "contact_id"}
# A dropped field is filed under its record's id; a dropped email is matched by its value as landed too.
DROPPED_EMAIL = "CASE WHEN column_name = 'email' THEN value END"
FIELD_IDS = {"contacts": {"email": DROPPED_EMAIL, "contact_id": "contact_id"}, "orders": {"email": DROPPED_EMAIL}}
RECORD = {"contacts": ("contact_id", "'contact:' || trim({})"), "orders": ("order_id", "'order:' || trim({})")}


@dataclass(frozen=True)
class Purged:
    """A table the requested people's rows are deleted from."""

    table: str
    ids: dict[str, str]  # id_type -> SQL of the identifier a row holds
    record: str  # the column naming the row's record (`contact:<id>`, `order:<id>` in core.record_profiles)
    # Field quarantines follow their rows: the fields of a record whose raw rows are purged go with them.
    follows: str | None = None


def _purged_tables(entity: str) -> list[Purged]:
    record = RECORD[entity][0]
    raw = Purged(f"raw.crm_{entity}", ROW_IDS, record)
    fields = Purged(f"quarantine.crm_{entity[:-1]}_fields", FIELD_IDS[entity], record, follows=raw.table)
    # Fields first: they follow the raw rows, which must still be there.
    return [fields, Purged(f"quarantine.crm_{entity}", ROW_IDS, record), raw]


PURGED_TABLES = {entity: _purged_tables(entity) for entity in RECORD}
STAGE_TABLES = {
    "raw": [("raw.crm_contacts", ROW_IDS), ("raw.crm_orders", ROW_IDS)],
    "quarantine": [(p.table, p.ids) for entity in RECORD for p in PURGED_TABLES[entity][:2]],
    "staging": [(f"staging.stg_crm_{entity}", {"email": "email", "phone": "phone_e164", "contact_id": "contact_id"})
                for entity in ("contacts", "orders")],
}


def _matches(columns: dict[str, str]) -> str:
    """SQL condition: the row holds an identifier of an active deletion request."""
    return " OR ".join(f"{ID_HASH[t].format(c)} IN (SELECT id_sha256 FROM core.deletion_requests "
                       f"WHERE status = 'active' AND id_type = '{t}')" for t, c in columns.items())


def _profile_records(warehouse: WarehouseResource, conn: Connection) -> str | None:
    """SQL listing the record keys of every profile that held a requested identifier at the last identity run."""
    if not (warehouse.table_exists(conn, "core.profile_identifiers")
            and warehouse.table_exists(conn, "core.record_profiles")):
        return None
    held = " OR ".join(f"(i.id_type = '{t}' AND {h.format('i.id_value')} = d.id_sha256)"
                       for t, h in ID_HASH.items())
    return (f"SELECT r.record_key FROM core.record_profiles AS r WHERE r.profile_id IN ("
            f"SELECT i.profile_id FROM core.profile_identifiers AS i JOIN ({REQUESTED}) AS d "
            f"ON d.id_type = i.id_type AND ({held}))")


def _condition(purged: Purged, entity: str, records: str | None) -> str:
    """SQL condition: the row belongs to a requested person."""
    condition = _matches(purged.ids)
    if records:
        condition += f" OR {RECORD[entity][1].format(purged.record)} IN ({records})"
    if purged.follows:
        raw = PURGED_TABLES[entity][-1]
        condition += (f" OR trim({purged.record}) IN (SELECT trim({raw.record}) FROM {raw.table} AS q "
                      f"WHERE {_condition(raw, entity, records)})")
    return condition


def purge_deleted_people(warehouse: WarehouseResource, entity: str) -> int:
    """Delete the requested people's rows of one entity from raw, quarantine (dropped fields included) and the
    phone cache; returns rows."""
    with warehouse.begin() as conn:
        if not warehouse.table_exists(conn, DELETIONS.table) or not warehouse.scalar(
                conn, f"SELECT count(*) FROM {DELETIONS.table} WHERE status = 'active'"):
            return 0
        records = _profile_records(warehouse, conn)
        purged = 0
        for target in PURGED_TABLES[entity]:
            if not warehouse.table_exists(conn, target.table):
                continue
            condition = _condition(target, entity, records)
            # The phone cache maps the number as written to its E.164 form: personal data too.
            phones = [{"e164": e164} for (e164,) in warehouse.run(
                conn, f"SELECT DISTINCT {target.ids['phone']} FROM {target.table} AS q WHERE {condition}")
                if e164] if "phone" in target.ids else []
            purged += warehouse.run(conn, f"DELETE FROM {target.table} AS q WHERE {condition}").rowcount
            if phones:
                conn.execute(sa.text(warehouse.sql(f"DELETE FROM {PHONE_NUMBERS.name} WHERE e164 = :e164")), phones)
        return purged


def _remaining_sql() -> str:
    """(stage, id_type, id_sha256) of every row in raw, quarantine, staging and core holding a requested id."""
    parts = []
    for stage, tables in STAGE_TABLES.items():
        for table, columns in tables:
            for id_type, column in columns.items():
                hashed = ID_HASH[id_type].format(column)
                parts.append(f"SELECT '{stage}' AS stage, '{id_type}' AS id_type, {hashed} AS id_sha256 "
                             f"FROM {table} AS q WHERE {hashed} IN (SELECT id_sha256 FROM requested)")
    core = " OR ".join(f"(id_type = '{t}' AND {h.format('id_value')} IN (SELECT id_sha256 FROM requested))"
                       for t, h in ID_HASH.items())
    parts.append("SELECT 'core', id_type, CASE id_type " + " ".join(
        f"WHEN '{t}' THEN {h.format('id_value')}" for t, h in ID_HASH.items())
        + f" END FROM core.profile_identifiers WHERE {core}")
    return " UNION ALL ".join(parts)


def _destination_sql(destinations: list[str], at: datetime) -> str:
    """Per request and audience destination: acknowledged members still holding the requested email or phone."""
    if not destinations:
        return ""
    names = ", ".join(f"('{d}')" for d in destinations)
    return f"""
        UNION ALL
        SELECT d.request_id, d.id_type, 'destination:' || t.destination, count(k.match_key),
               CASE WHEN d.id_type = 'contact_id' THEN 'unverifiable_by_contact_id'
                    WHEN count(k.match_key) = 0 THEN 'removed' ELSE 'removal_pending' END,
               CAST('{at.isoformat(sep=' ')}' AS TIMESTAMP)
        FROM core.deletion_requests AS d
        CROSS JOIN (VALUES {names}) AS t(destination)
        LEFT JOIN activation.audience_acks AS k ON k.destination = t.destination
            AND ((d.id_type = 'email' AND k.email_sha256 = d.id_sha256)
                 OR (d.id_type = 'phone' AND k.phone_sha256 = d.id_sha256))
        WHERE d.status = 'active'
        GROUP BY d.request_id, d.id_type, t.destination"""


def _records_sql(syncs: dict[str, bool], at: datetime) -> str:
    """Per request and records sync: records the destination still holds for the requested email or phone.
    `syncs` says, per sync, whether its destination carries out deletions; where it does not, a record it holds
    must be deleted there by hand (`delete_at_destination`)."""
    if not syncs:
        return ""
    names = ", ".join(f"('{s}', {'TRUE' if deletes else 'FALSE'})" for s, deletes in syncs.items())
    return f"""
        UNION ALL
        SELECT d.request_id, d.id_type, 'destination:' || t.sync, count(k.record_key),
               CASE WHEN d.id_type = 'contact_id' THEN 'unverifiable_by_contact_id'
                    WHEN count(k.record_key) = 0 AND bool_or(t.deletes) THEN 'deleted'
                    WHEN count(k.record_key) = 0 THEN 'not_held'
                    WHEN bool_or(t.deletes) THEN 'deletion_pending' ELSE 'delete_at_destination' END,
               CAST('{at.isoformat(sep=' ')}' AS TIMESTAMP)
        FROM core.deletion_requests AS d
        CROSS JOIN (VALUES {names}) AS t(sync, deletes)
        LEFT JOIN activation.record_state AS k ON k.sync = t.sync
            AND ((d.id_type = 'email' AND k.email_sha256 = d.id_sha256)
                 OR (d.id_type = 'phone' AND k.phone_sha256 = d.id_sha256))
        WHERE d.status = 'active'
        GROUP BY d.request_id, d.id_type, t.sync"""


def deletion_status_asset(dialect: str, destinations: list[dg.AssetKey],
                          syncs: dict[str, bool]) -> dg.AssetsDefinition:
    purged = dg.AssetCheckSpec("deleted_people_are_purged", asset=["core", "deletion_status"],
                               description="No row in raw, quarantine, staging or core still holds an identifier "
                                           "of an active deletion request.")

    @dg.asset(
        key=["core", "deletion_status"], group_name="core", kinds={"python", dialect}, owners=["team:privacy"],
        deps=[dg.AssetKey(["core", "deletion_requests"]), dg.AssetKey(["staging", "stg_crm_contacts"]),
              dg.AssetKey(["staging", "stg_crm_orders"]), dg.AssetKey(["core", "profile_identifiers"]),
              *destinations, *(dg.AssetKey(["activation", s]) for s in syncs)],
        check_specs=[purged], pool="warehouse",
    )
    def deletion_status(warehouse: WarehouseResource) -> dg.MaterializeResult:
        """Where each deletion request stands, per stage: rows still holding the identifier, and a status.

        Stages raw, quarantine, staging and core are `purged` when no row holds the identifier any more.
        Each audience destination (`destination:<name>`) is `removed` once no member it acknowledged holds
        the requested email or phone, `removal_pending` until the sync has removed them. Each records sync
        (`destination:<sync>`) is `deleted` once the destination's deletion call succeeded for every record
        holding it, `deletion_pending` until then; a destination that takes no deletion calls shows
        `delete_at_destination` while it holds the person, `not_held` when it never received them.
        """
        at = datetime.now(UTC).replace(tzinfo=None)
        stages = ", ".join(f"('{s}')" for s in [*STAGE_TABLES, "core"])
        names = [key.path[-1] for key in destinations]
        with warehouse.begin() as conn:
            AUDIENCE_ACKS.ensure(warehouse, conn)
            RECORD_STATE.ensure(warehouse, conn)
            warehouse.replace_table(conn, "core.deletion_status", f"""
                WITH requested AS ({REQUESTED}),
                remaining AS ({_remaining_sql()})
                SELECT d.request_id, d.id_type, s.stage, count(r.id_sha256) AS rows_remaining,
                       CASE WHEN count(r.id_sha256) = 0 THEN 'purged' ELSE 'pending' END AS status,
                       CAST('{at.isoformat(sep=' ')}' AS TIMESTAMP) AS checked_at
                FROM core.deletion_requests AS d
                CROSS JOIN (VALUES {stages}) AS s(stage)
                LEFT JOIN remaining AS r ON r.stage = s.stage AND r.id_type = d.id_type AND r.id_sha256 = d.id_sha256
                WHERE d.status = 'active'
                GROUP BY d.request_id, d.id_type, s.stage{_destination_sql(names, at)}
                {_records_sql(syncs, at)}""")
            table = warehouse.table_metadata(conn, "core.deletion_status")
            pending = warehouse.run(conn, "SELECT stage, count(*) FROM core.deletion_status WHERE status = 'pending' "
                                          "GROUP BY stage ORDER BY stage").fetchall()
        return dg.MaterializeResult(
            metadata={**table, "requests_pending_in_warehouse": sum(int(n) for _, n in pending)},
            check_results=[dg.AssetCheckResult(
                check_name=purged.name, passed=not pending,
                metadata={"pending_by_stage": dg.MetadataValue.json({s: int(n) for s, n in pending})})],
        )

    return deletion_status
