"""What each records sync's destination holds, as far as it acknowledged: record fingerprints, list members,
and the history of every run.

`activation.record_state` keeps per (sync, record key) the fingerprint of the fields the destination last
acknowledged and the destination's own id for the record; the record key is the SHA-256 of the sync key, so
no personal data is stored here. `activation.list_members` keeps who each destination list holds.
`activation.sync_runs` keeps each run's counts (the UI also plots them as metadata).
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
from sqlalchemy.engine import Connection

from cdp_assets.activation.ledger import now
from cdp_assets.resources.state import StateTable
from cdp_assets.resources.warehouse import WarehouseResource

RECORD_STATE = StateTable(
    "activation.record_state",
    "CREATE TABLE activation.record_state (sync VARCHAR NOT NULL, record_key VARCHAR NOT NULL, fingerprint VARCHAR, "
    "destination_id VARCHAR, profile_id VARCHAR, email_sha256 VARCHAR, phone_sha256 VARCHAR, status VARCHAR, "
    "updated_at TIMESTAMP, run_id VARCHAR, PRIMARY KEY (sync, record_key))",
)
LIST_MEMBERS = StateTable(
    "activation.list_members",
    "CREATE TABLE activation.list_members (sync VARCHAR, audience VARCHAR, record_key VARCHAR, "
    "destination_id VARCHAR, added_at TIMESTAMP, run_id VARCHAR)",
)
HISTORY_COUNTS = ("targets", "invalid_keys", "added", "changed", "removed", "deleted", "sent", "failed",
                  "dead_letters", "list_added", "list_removed")
SYNC_RUNS = StateTable(
    "activation.sync_runs",
    "CREATE TABLE activation.sync_runs (sync VARCHAR, destination VARCHAR, run_id VARCHAR, mode VARCHAR, "
    + "".join(f"{c} INTEGER, " for c in HISTORY_COUNTS)
    + "parked_until TIMESTAMP, outcome VARCHAR, finished_at TIMESTAMP)",
)
# Acknowledgements of a page's batches, appended as they come and folded into record_state once per page
# (an upsert per batch into a keyed table of a million rows cost more than the request itself).
STATE_JOURNAL = StateTable(
    "activation.record_state_journal",
    "CREATE TABLE activation.record_state_journal (sync VARCHAR, record_key VARCHAR, fingerprint VARCHAR, "
    "destination_id VARCHAR, profile_id VARCHAR, email_sha256 VARCHAR, phone_sha256 VARCHAR, updated_at TIMESTAMP, "
    "run_id VARCHAR, seq BIGINT)",
)
TABLES = (RECORD_STATE, LIST_MEMBERS, SYNC_RUNS, STATE_JOURNAL)
ACKED_IN = ("CREATE TEMP TABLE IF NOT EXISTS _cdp_acked_records (record_key VARCHAR, fingerprint VARCHAR, "
            "destination_id VARCHAR, profile_id VARCHAR, email_sha256 VARCHAR, phone_sha256 VARCHAR)")
STRING_COLUMNS = ("record_key", "fingerprint", "destination_id", "profile_id", "email_sha256", "phone_sha256")
# An acknowledged upsert as journaled: its sequence number, then its STRING_COLUMNS (a tuple, not a dict: a
# million-record sync makes one per record).
AckedRow = tuple[int, str, str, str | None, str | None, str | None, str | None]


def ensure_tables(warehouse: WarehouseResource, conn: Connection) -> None:
    for table in TABLES:
        table.ensure(warehouse, conn)


def _stage(warehouse: WarehouseResource, conn: Connection, rows: list[Mapping[str, str | None]]) -> None:
    warehouse.run(conn, ACKED_IN)
    warehouse.run(conn, "DELETE FROM _cdp_acked_records")
    warehouse.append_arrow(conn, "_cdp_acked_records", pa.table(
        {c: pa.array([r.get(c) for r in rows], pa.string()) for c in STRING_COLUMNS}))


def acknowledge(warehouse: WarehouseResource, conn: Connection, sync: str, run_id: str, status: str,
                rows: list[Mapping[str, str | None]]) -> None:
    """Record what the destination now holds for these records (status `present`, or `cleared`)."""
    if not rows:
        return
    _stage(warehouse, conn, rows)
    warehouse.run(conn, """
        INSERT INTO activation.record_state
        SELECT :s, record_key, fingerprint, destination_id, profile_id, email_sha256, phone_sha256, :status, :at, :run
        FROM _cdp_acked_records
        ON CONFLICT (sync, record_key) DO UPDATE SET fingerprint = excluded.fingerprint,
            destination_id = coalesce(excluded.destination_id, record_state.destination_id),
            profile_id = coalesce(excluded.profile_id, record_state.profile_id),
            email_sha256 = coalesce(excluded.email_sha256, record_state.email_sha256),
            phone_sha256 = coalesce(excluded.phone_sha256, record_state.phone_sha256),
            status = excluded.status, updated_at = excluded.updated_at, run_id = excluded.run_id""",
                  {"s": sync, "status": status, "at": now(), "run": run_id})


def journal(warehouse: WarehouseResource, conn: Connection, sync: str, run_id: str, rows: list[AckedRow]) -> None:
    """`acknowledge` (status `present`), appended to the journal, each row with its sequence number (the latest
    row of a record wins); `fold` applies it."""
    if not rows:
        return
    seq, *columns = zip(*rows, strict=True)
    warehouse.append_arrow(conn, STATE_JOURNAL.name, pa.table(
        {**{c: pa.array(values, pa.string()) for c, values in zip(STRING_COLUMNS, columns, strict=True)},
         "seq": pa.array(seq, pa.int64())}), {"sync": sync, "updated_at": now(), "run_id": run_id})


def fold(warehouse: WarehouseResource, conn: Connection, sync: str) -> None:
    """Apply the sync's acknowledgement journal to record_state, the latest of each record winning."""
    STATE_JOURNAL.ensure(warehouse, conn)
    warehouse.run(conn, """
        INSERT INTO activation.record_state
        SELECT sync, record_key, fingerprint, destination_id, profile_id, email_sha256, phone_sha256, 'present',
               updated_at, run_id
        FROM (SELECT *, row_number() OVER (PARTITION BY record_key ORDER BY seq DESC) AS latest
              FROM activation.record_state_journal WHERE sync = :s) AS j
        WHERE latest = 1
        ON CONFLICT (sync, record_key) DO UPDATE SET fingerprint = excluded.fingerprint,
            destination_id = coalesce(excluded.destination_id, record_state.destination_id),
            profile_id = coalesce(excluded.profile_id, record_state.profile_id),
            email_sha256 = coalesce(excluded.email_sha256, record_state.email_sha256),
            phone_sha256 = coalesce(excluded.phone_sha256, record_state.phone_sha256),
            status = excluded.status, updated_at = excluded.updated_at, run_id = excluded.run_id""", {"s": sync})
    warehouse.run(conn, "DELETE FROM activation.record_state_journal WHERE sync = :s", {"s": sync})


def forget(warehouse: WarehouseResource, conn: Connection, sync: str, record_keys: list[str]) -> None:
    """The destination no longer holds these records (archived or deleted there), nor their list memberships."""
    if not record_keys:
        return
    _stage(warehouse, conn, [{"record_key": k} for k in record_keys])
    for table in ("activation.record_state", "activation.list_members"):
        warehouse.run(conn, f"DELETE FROM {table} WHERE sync = :s AND record_key IN "
                            "(SELECT record_key FROM _cdp_acked_records)", {"s": sync})


def list_changed(warehouse: WarehouseResource, conn: Connection, sync: str, audience: str, run_id: str,
                 added: bool, rows: list[Mapping[str, str | None]]) -> None:
    if not rows:
        return
    _stage(warehouse, conn, rows)
    params = {"s": sync, "a": audience, "at": now(), "run": run_id}
    warehouse.run(conn, "DELETE FROM activation.list_members WHERE sync = :s AND audience = :a AND record_key IN "
                        "(SELECT record_key FROM _cdp_acked_records)", params)
    if added:
        warehouse.run(conn, "INSERT INTO activation.list_members SELECT :s, :a, record_key, destination_id, :at, :run "
                            "FROM _cdp_acked_records", params)


def record_run(warehouse: WarehouseResource, conn: Connection, sync: str, destination: str, run_id: str,
               mode: str, counts: Mapping[str, int], parked_until: object, outcome: str) -> None:
    warehouse.run(conn, f"INSERT INTO activation.sync_runs VALUES (:s, :d, :run, :mode, "
                        f"{', '.join(':' + c for c in HISTORY_COUNTS)}, :parked, :outcome, :at)",
                  {"s": sync, "d": destination, "run": run_id, "mode": mode, "parked": parked_until,
                   "outcome": outcome, "at": now(), **{c: int(counts.get(c, 0)) for c in HISTORY_COUNTS}})


def parked_until(warehouse: WarehouseResource, conn: Connection, sync: str) -> object:
    """When the destination asked us to wait until (its daily limit), if that is still ahead."""
    return warehouse.scalar(conn, "SELECT max(parked_until) FROM activation.sync_runs WHERE sync = :s "
                                  "AND parked_until > :at", {"s": sync, "at": now()})
