"""The records strategy's SQL: a sync's targets (its eligible rows, each with a fingerprint of its mapped
fields) and the diff against what the destination acknowledged, all computed in the warehouse.

Everything is DuckDB-dialect SQL, transpiled for the warehouse. Only the changed rows are ever read into
Python, a page at a time.
"""

from __future__ import annotations

from cdp_assets.activation.queries import LATEST_CONSENT
from cdp_assets.activation.records.config import Sync
from cdp_assets.ingest.sql_text import literal

NULL_MARK = "\\N"
LATEST_MEMBERS = """
latest_members AS (
    SELECT m.audience, m.profile_id FROM audiences.memberships AS m
    JOIN (SELECT audience, max(snapshot_ts) AS snapshot_ts FROM audiences.snapshots GROUP BY audience) AS l
      ON l.audience = m.audience AND l.snapshot_ts = m.snapshot_ts
)"""


def targets_table(sync: Sync) -> str:
    return f"activation.sync_targets_{sync.name}"


def changes_table(sync: Sync) -> str:
    return f"activation.sync_changes_{sync.name}"


def field_columns(sync: Sync) -> list[str]:
    """The targets' column per mapped field, then one per audience (whether the record is a member)."""
    return [f"f_{n}" for n in range(len(sync.fields))] + audience_columns(sync)


def audience_columns(sync: Sync) -> list[str]:
    return [f"a_{n}" for n in range(len(sync.audiences))]


def sent_columns(sync: Sync) -> list[str]:
    """The targets' columns a record carries, in `sync.all_fields` order."""
    return [f"f_{n}" for n in range(len(sync.fields))] + (audience_columns(sync) if sync.audience_field else [])


def targets_sql(sync: Sync) -> str:
    """One row per eligible record: its key, hashes for deletion matching, its fields and their fingerprint.

    Eligible means a key, not awaiting deletion, consented to the sync's purpose (unless first-party) and not
    suppressed (unless the sync includes them). `key_rows` counts rows sharing a key (case-insensitively):
    such rows are invalid and never sent, since the destination could not tell them apart.
    """
    has_profile = "profile_id" in sync.columns
    ctes = []
    joins, conditions = "", [f"m.{sync.key.column} IS NOT NULL", f"CAST(m.{sync.key.column} AS VARCHAR) <> ''"]
    if sync.sends_consent_checked():
        ctes.append(LATEST_CONSENT.strip())
        joins = ("LEFT JOIN consent AS k ON k.profile_id = m.profile_id AND k.purpose = :purpose "
                 "AND k.recency = 1")
        conditions.append("coalesce(k.granted, FALSE)")
    if has_profile:
        conditions.append("m.profile_id NOT IN (SELECT profile_id FROM core.deletion_pending_profiles)")
        if not sync.include_suppressed:
            conditions.append("m.profile_id NOT IN (SELECT profile_id FROM core.suppressed_profiles)")
    if sync.audiences:
        ctes.append(LATEST_MEMBERS.strip())
    values = [f"m.{f.column}" for f in sync.fields] + [
        f"m.profile_id IN (SELECT profile_id FROM latest_members WHERE audience = {literal(a)})"
        for a in sync.audiences]
    columns = field_columns(sync)
    selected = ", ".join(f"{v} AS {c}" for v, c in zip(values, columns, strict=True))
    email = "sha256(lower(trim(m.email)))" if "email" in sync.columns else "CAST(NULL AS VARCHAR)"
    phone = "sha256(substr(m.phone_e164, 2))" if "phone_e164" in sync.columns else "CAST(NULL AS VARCHAR)"
    profile = "CAST(m.profile_id AS VARCHAR)" if has_profile else "CAST(NULL AS VARCHAR)"
    # The fields' names and types take part, so a changed mapping resends every record.
    salt = literal("|".join(f"{f.field}:{f.type}" for f in sync.all_fields))
    fingerprint = " || '|' || ".join([salt, *(f"coalesce(CAST(e.{c} AS VARCHAR), '{NULL_MARK}')"
                                              for c in sent_columns(sync))])
    with_clause = f"WITH {', '.join(ctes)}" if ctes else ""
    return f"""{with_clause}
SELECT sha256(e.key_value) AS record_key, count(*) OVER (PARTITION BY lower(e.key_value)) AS key_rows,
       md5({fingerprint}) AS fingerprint, e.*
FROM (
    SELECT CAST(m.{sync.key.column} AS VARCHAR) AS key_value, {profile} AS profile_id, {email} AS email_sha256,
           {phone} AS phone_sha256{', ' + selected if selected else ''}
    FROM {sync.model} AS m {joins}
    WHERE {' AND '.join(conditions)}
) AS e"""


def changes_sql(sync: Sync, full_resync: bool) -> str:
    """The records to write, numbered for paging, each with its ledger status and attempts: added (never
    acknowledged) and changed (acknowledged with other values); all of them on a full resync. A record the
    destination refused for good is left out until its values change or its dead letter is replayed; one that
    failed for a passing reason goes again; one waiting in a destination's job with these values waits for the
    job."""
    wanted = {"insert": "s.record_key IS NULL", "update": "s.record_key IS NOT NULL AND "
                                                          "(s.status <> 'present' OR s.fingerprint <> t.fingerprint)"}
    condition = "TRUE" if full_resync else wanted.get(
        sync.mode, "(s.record_key IS NULL OR s.status <> 'present' OR s.fingerprint <> t.fingerprint)")
    columns = ", ".join(f"t.{c}" for c in field_columns(sync))
    # The ledger's entry for the record under this upsert (as `ledger.plan` would give it: another operation
    # starts over), read once here rather than once per page; a full resync sends what was acknowledged again.
    same = "l.operation = 'upsert:' || t.fingerprint" + (" AND l.status <> 'sent'" if full_resync else "")
    # Numbered on the keys alone, then joined to the wide rows: sorting a million wide rows to number them took
    # longer than the rest of the diff together.
    return f"""
WITH due AS (
    SELECT t.record_key, CASE WHEN s.record_key IS NULL THEN 'added' ELSE 'changed' END AS change,
           CASE WHEN {same} THEN l.status ELSE 'pending' END AS ledger_status,
           CASE WHEN {same} THEN l.attempts ELSE 0 END AS ledger_attempts
    FROM {targets_table(sync)} AS t
    LEFT JOIN activation.record_state AS s ON s.sync = :s AND s.record_key = t.record_key
    LEFT JOIN activation.sync_ledger AS l ON l.destination = :s AND l.record_key = t.record_key
    LEFT JOIN activation.record_jobs AS j ON j.sync = :s AND j.record_key = t.record_key
                                         AND j.fingerprint = t.fingerprint
    WHERE t.key_rows = 1 AND {condition} AND j.record_key IS NULL
      AND NOT (coalesce(l.status, '') = 'dead_letter' AND l.operation = 'upsert:' || t.fingerprint)
), numbered AS (SELECT *, row_number() OVER (ORDER BY record_key) AS rn FROM due)
SELECT n.rn, n.change, n.ledger_status, n.ledger_attempts, t.record_key, t.key_value, t.fingerprint,
       t.profile_id, t.email_sha256, t.phone_sha256{', ' + columns if columns else ''}
FROM numbered AS n JOIN {targets_table(sync)} AS t ON t.record_key = n.record_key
ORDER BY n.rn"""


def follow_up_sql(sync: Sync, operation: str, planned: bool = False) -> str:
    """Eligible records the destination holds (or, `planned`, every eligible record) whose follow-up `:o` was
    never acknowledged."""
    held = "" if planned else ("JOIN activation.record_state AS s ON s.sync = :s AND s.record_key = t.record_key "
                               "AND s.status = 'present'")
    columns = ", ".join(f"t.{c}" for c in field_columns(sync))
    return f"""
SELECT t.record_key, t.key_value{', ' + columns if columns else ''} FROM {targets_table(sync)} AS t {held}
LEFT JOIN activation.sync_ledger AS l ON l.destination = :s AND l.record_key = :o || ':' || t.record_key
WHERE t.key_rows = 1 AND coalesce(l.status, '') NOT IN ('sent', 'dead_letter')
ORDER BY t.record_key"""


def left_sql(sync: Sync) -> str:
    """Acknowledged records no longer in the model (or no longer eligible), with the destination's id."""
    return f"""
SELECT s.record_key, s.destination_id FROM activation.record_state AS s
WHERE s.sync = :s AND s.status = 'present' AND s.destination_id IS NOT NULL
  AND s.record_key NOT IN (SELECT record_key FROM {targets_table(sync)})
ORDER BY s.record_key"""


DELETED_SQL = """
SELECT s.record_key, s.destination_id FROM activation.record_state AS s
WHERE s.sync = :s AND s.destination_id IS NOT NULL AND (
    s.email_sha256 IN (SELECT id_sha256 FROM core.deletion_requests WHERE status = 'active' AND id_type = 'email')
    OR s.phone_sha256 IN (SELECT id_sha256 FROM core.deletion_requests WHERE status = 'active' AND id_type = 'phone')
    OR s.profile_id IN (SELECT profile_id FROM core.deletion_pending_profiles))
ORDER BY s.record_key"""


def members_sql(sync: Sync, audience: str, planned: bool = False) -> str:
    """The audience's eligible members as (record key, destination id), for records the destination holds; or,
    `planned` (a dry run), for every record, with a placeholder where the destination's id is not known yet."""
    column = audience_columns(sync)[sync.audiences.index(audience)]
    if planned:
        return f"""
SELECT t.record_key, coalesce(s.destination_id, '{{id of record ' || substr(t.record_key, 1, 12) || '}}')
       AS destination_id
FROM {targets_table(sync)} AS t
LEFT JOIN activation.record_state AS s ON s.sync = :s AND s.record_key = t.record_key
WHERE t.key_rows = 1 AND t.{column}"""
    return f"""
SELECT t.record_key, s.destination_id FROM {targets_table(sync)} AS t
JOIN activation.record_state AS s ON s.sync = :s AND s.record_key = t.record_key
WHERE t.key_rows = 1 AND t.{column} AND s.destination_id IS NOT NULL AND s.status = 'present'"""


def list_diff_sql(sync: Sync, audience: str, planned: bool = False) -> dict[str, str]:
    members = members_sql(sync, audience, planned)
    return {
        "list_add": f"""SELECT m.record_key, m.destination_id FROM ({members}) AS m WHERE m.record_key NOT IN (
                            SELECT record_key FROM activation.list_members WHERE sync = :s AND audience = :a)
                        ORDER BY m.record_key""",
        "list_remove": f"""SELECT k.record_key, k.destination_id FROM activation.list_members AS k
                           WHERE k.sync = :s AND k.audience = :a
                             AND k.record_key NOT IN (SELECT record_key FROM ({members}) AS m)
                           ORDER BY k.record_key""",
    }
