"""Deletion requests and suppression lists dropped as files, kept in the warehouse as hashes only.

`deletions*.csv` (columns `email`, `phone` and/or `contact_id`, optional `country`) and `suppressions*.csv`
(`email` and/or `phone`, optional `country`) land in `CDP_LANDING_DIR/crm/`. Each identifier is
normalized (email trimmed and lowercased, phone read to E.164 with phonenumbers) and stored as the
SHA-256 that destinations match on: Meta's form, digits only for phones. A row that names nobody, or
whose value cannot be read, is kept with status `rejected` and its reason, never dropped silently.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa

from cdp_assets.ingest.crm_load import LEDGER, LEDGER_INSERT, run_duckdb
from cdp_assets.ingest.files import FileFormatError, csv_source, file_sha256, scrub_error
from cdp_assets.ingest.landing import LandingZone
from cdp_assets.ingest.mappings import data_stem
from cdp_assets.ingest.phones import country_key, parse_phones
from cdp_assets.ingest.validation import EMAIL_PATTERN
from cdp_assets.resources.state import StateTable
from cdp_assets.resources.warehouse import WarehouseResource


@dataclass(frozen=True)
class PrivacyList:
    name: str  # the file prefix and the ledger's entity
    table: str
    id_types: tuple[str, ...]
    description: str

    @property
    def state_table(self) -> StateTable:
        return StateTable(
            self.table,
            f"CREATE TABLE {self.table} (request_id VARCHAR, id_type VARCHAR, id_sha256 VARCHAR, "
            "status VARCHAR, reason VARCHAR, source_file VARCHAR, line_number BIGINT, received_at TIMESTAMP)",
        )


DELETIONS = PrivacyList(
    "deletions", "core.deletion_requests", ("email", "phone", "contact_id"),
    "Deletion requests (right to erasure), one row per identifier named, as SHA-256 hashes only. Every run "
    "purges these people from raw and quarantine before staging and core are rebuilt without them.")
SUPPRESSIONS = PrivacyList(
    "suppressions", "core.suppressions", ("email", "phone"),
    "Emails and phones never to be sent anywhere, as SHA-256 hashes; audiences and activation leave out "
    "every profile that holds one.")
PRIVACY_LISTS = (DELETIONS, SUPPRESSIONS)


def is_privacy_file(name: str) -> bool:
    stem = data_stem(name)
    return stem is not None and name.lower().endswith((".csv", ".csv.gz")) and \
        any(stem.lower().startswith(p.name) for p in PRIVACY_LISTS)


def _identifiers_sql(kind: PrivacyList, names: list[str]) -> str:
    """One row per (line, identifier) with its normalized value or the reason it cannot be used."""
    parts = []
    if "email" in names:
        parts.append("SELECT line, 'email' AS id_type, lower(trim(email)) AS value, CASE WHEN NOT "
                     f"regexp_full_match(trim(email), '{EMAIL_PATTERN}') THEN 'email is not a valid address' END "
                     "AS reason FROM f WHERE trim(email) <> ''")
    if "phone" in names:
        country = country_key("f.country" if "country" in names else None)
        parts.append("SELECT line, 'phone' AS id_type, substr(p.e164, 2) AS value, p.reason "
                     f"FROM f JOIN _cdp_parses AS p ON p.phone_raw = trim(f.phone) AND p.country_raw = {country} "
                     "WHERE trim(phone) <> ''")
    if "contact_id" in names:
        parts.append("SELECT line, 'contact_id' AS id_type, trim(contact_id) AS value, NULL AS reason FROM f "
                     "WHERE trim(contact_id) <> ''")
    named = " UNION ALL ".join(parts)
    return f"""
        WITH ids AS ({named})
        SELECT line, id_type, CASE WHEN reason IS NULL THEN sha256(value) END AS id_sha256, reason FROM ids
        UNION ALL
        SELECT line, NULL, NULL, 'names no {" or ".join(kind.id_types)}' FROM f
        WHERE line NOT IN (SELECT line FROM ids)"""


def read_privacy_file(kind: PrivacyList, path: Path) -> tuple[pa.Table, list[str]]:
    """(line, id_type, id_sha256, reason) for every identifier in the file, and the columns it does not use.

    Raises FileFormatError when the file cannot be read or names no identifier column.
    """
    with duckdb.connect() as engine:
        sql, names = csv_source(path, "utf-8")
        usable = [n for n in kind.id_types if n in names]
        if not usable:
            raise FileFormatError(f"{path.name}: needs a column named {' or '.join(kind.id_types)}")
        kept = [*usable, *(["country"] if "country" in names else [])]
        ignored = [n for n in names if n not in kept]
        try:
            run_duckdb(engine, f"CREATE TABLE f AS SELECT {', '.join(kept)} FROM {sql}")
        except duckdb.Error as error:
            raise scrub_error(path, error) from None
        run_duckdb(engine, "ALTER TABLE f ADD COLUMN line BIGINT")
        run_duckdb(engine, "UPDATE f SET line = rowid + 2")
        if "phone" in usable:
            country = country_key("country" if "country" in names else None)
            pairs = run_duckdb(engine, f"SELECT DISTINCT trim(phone), {country} FROM f WHERE trim(phone) <> ''")
            engine.register("_cdp_parses", parse_phones([(p, c) for p, c in pairs]))
        return engine.sql(f"{_identifiers_sql(kind, kept)} ORDER BY line, id_type").to_arrow_table(), ignored


def privacy_list_asset(kind: PrivacyList, dialect: str) -> dg.AssetsDefinition:
    @dg.asset(key=kind.table.split("."), group_name="core", kinds={"python", dialect}, owners=["team:privacy"],
              description=kind.description, pool="warehouse")
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
               landing: LandingZone) -> dg.MaterializeResult:
        with warehouse.begin() as conn:
            for table in (LEDGER, kind.state_table):
                table.ensure(warehouse, conn)
            done = {r[0] for r in warehouse.run(
                conn, "SELECT file_sha256 FROM raw.crm_file_ledger WHERE entity = :e", {"e": kind.name})}
        at = datetime.now(UTC).replace(tzinfo=None)
        new_rows, rejected, unreadable = 0, 0, []
        for path in landing.crm_files():
            if not (is_privacy_file(path.name) and path.name.lower().startswith(kind.name)):
                continue
            sha = file_sha256(path)
            if sha in done:
                continue
            try:
                found, ignored = read_privacy_file(kind, path)
            except FileFormatError as error:
                context.log.error(f"not loaded: {error}")
                unreadable.append(str(error))
                continue
            if ignored:
                context.log.warning(f"{path.name}: columns {', '.join(ignored)} are not used")
            reasons = found.column("reason").to_pylist()
            file_rejected = sum(1 for r in reasons if r)
            rows = pa.table({
                "request_id": [f"{sha[:16]}:{line}" for line in found.column("line").to_pylist()],
                "id_type": found.column("id_type"), "id_sha256": found.column("id_sha256"),
                "status": ["rejected" if r else "active" for r in reasons], "reason": found.column("reason"),
                "line_number": found.column("line")})
            with warehouse.begin() as conn:
                warehouse.append_arrow(conn, kind.table, rows, {"source_file": path.name, "received_at": at})
                warehouse.run(conn, LEDGER_INSERT, {
                    "entity": kind.name, "name": path.name, "sha": sha, "read": rows.num_rows,
                    "loaded": rows.num_rows - file_rejected, "quarantined": file_rejected, "fields": 0, "at": at})
            new_rows += rows.num_rows
            rejected += file_rejected
            context.log.info(f"{path.name}: {rows.num_rows} identifiers, {file_rejected} rejected")
        with warehouse.begin() as conn:
            active, total_rejected = warehouse.run(
                conn, f"SELECT count(*) FILTER (WHERE status = 'active'), count(*) FILTER (WHERE status = 'rejected') "
                      f"FROM {kind.table}").one()
            table = warehouse.table_metadata(conn, kind.table)
        if unreadable:
            raise dg.Failure(f"{len(unreadable)} {kind.name} file(s) could not be read, and requests in them "
                             f"must not be ignored: {'; '.join(unreadable)}")
        return dg.MaterializeResult(metadata={
            **table,
            "identifiers_new": new_rows,
            "identifiers_rejected_new": rejected,
            "identifiers_active": int(active),
            "identifiers_rejected_total": int(total_rejected),
        })

    return _asset
