"""What each destination has been sent and has acknowledged: the per-record ledger, audience acks, upload sessions.

`activation.sync_ledger` holds one row per (destination, record key): `pending` (planned, never tried),
`in_flight` (a request carrying it was started; the platform may have accepted it), `sent` (acknowledged;
`sent_unconfirmed` where the platform's 2xx is no receipt and its validation server did not check the record),
`failed` (transient failures outlasted the retry budget; tried again next run) or `dead_letter` (refused for
good; `cdp-assets replay` puts it back to pending). A record is marked in flight, and committed, before its
request leaves, so a killed process leaves a trace of what may have been accepted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

import pyarrow as pa
from sqlalchemy.engine import Connection

from cdp_assets.resources.state import StateTable
from cdp_assets.resources.warehouse import WarehouseResource

PENDING, IN_FLIGHT, SENT, FAILED, DEAD_LETTER = "pending", "in_flight", "sent", "failed", "dead_letter"
# Sent to a platform whose answer is no receipt, without its validation server having checked it first; never
# sent again, like `sent`.
SENT_UNCONFIRMED = "sent_unconfirmed"
TO_SEND = (PENDING, IN_FLIGHT, FAILED)

SYNC_LEDGER = StateTable(
    "activation.sync_ledger",
    # The key lets each batch's outcome be written as an upsert that finds its rows through the index,
    # instead of a delete that scans a ledger of millions of rows once per batch.
    "CREATE TABLE activation.sync_ledger (destination VARCHAR NOT NULL, record_key VARCHAR NOT NULL, "
    "operation VARCHAR, partition_key VARCHAR, status VARCHAR, attempts INTEGER, last_error VARCHAR, "
    "trace_id VARCHAR, run_id VARCHAR, updated_at TIMESTAMP, PRIMARY KEY (destination, record_key))",
)
AUDIENCE_ACKS = StateTable(
    "activation.audience_acks",
    "CREATE TABLE activation.audience_acks (destination VARCHAR, audience VARCHAR, match_key VARCHAR, "
    "identifiers VARCHAR, email_sha256 VARCHAR, phone_sha256 VARCHAR, acknowledged_at TIMESTAMP, run_id VARCHAR)",
)
AUDIENCE_TARGETS = StateTable(
    "activation.audience_targets",
    "CREATE TABLE activation.audience_targets (destination VARCHAR, audience VARCHAR, match_key VARCHAR, "
    "identifiers VARCHAR, email_sha256 VARCHAR, phone_sha256 VARCHAR, profile_id VARCHAR, computed_at TIMESTAMP)",
)
UPLOAD_SESSIONS = StateTable(
    "activation.upload_sessions",
    "CREATE TABLE activation.upload_sessions (destination VARCHAR, audience VARCHAR, operation VARCHAR, "
    "session_id VARCHAR, next_batch_seq INTEGER, estimated_total INTEGER, status VARCHAR, "
    "updated_at TIMESTAMP, run_id VARCHAR)",
)
# A batch's outcome appended here costs a twentieth of an upsert into the keyed ledger of millions of rows;
# `fold` moves a page's worth into activation.sync_ledger at once (records syncs journal, see `journal`).
LEDGER_JOURNAL = StateTable(
    "activation.sync_ledger_journal",
    "CREATE TABLE activation.sync_ledger_journal (destination VARCHAR, record_key VARCHAR, operation VARCHAR, "
    "partition_key VARCHAR, status VARCHAR, attempts INTEGER, last_error VARCHAR, trace_id VARCHAR, run_id VARCHAR, "
    "updated_at TIMESTAMP, seq BIGINT)",
)
STATE_TABLES = (SYNC_LEDGER, AUDIENCE_ACKS, AUDIENCE_TARGETS, UPLOAD_SESSIONS, LEDGER_JOURNAL)
LEDGER_IN = ("CREATE TEMP TABLE IF NOT EXISTS _cdp_ledger_in (record_key VARCHAR, operation VARCHAR, "
             "partition_key VARCHAR, status VARCHAR, attempts INTEGER, last_error VARCHAR, trace_id VARCHAR)")


class Entry(NamedTuple):
    """A record's place in the ledger (a tuple: a million-record sync makes three of them per record)."""

    key: str
    operation: str
    partition_key: str
    status: str
    attempts: int
    last_error: str | None = None
    trace_id: str | None = None


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def ensure_tables(warehouse: WarehouseResource, conn: Connection) -> None:
    for table in STATE_TABLES:
        table.ensure(warehouse, conn)


def _stage(warehouse: WarehouseResource, conn: Connection, entries: list[Entry]) -> None:
    warehouse.run(conn, LEDGER_IN)
    warehouse.run(conn, "DELETE FROM _cdp_ledger_in")
    warehouse.append_arrow(conn, "_cdp_ledger_in", pa.table({
        "record_key": [e.key for e in entries], "operation": [e.operation for e in entries],
        "partition_key": [e.partition_key for e in entries], "status": [e.status for e in entries],
        "attempts": pa.array([e.attempts for e in entries], pa.int32()),
        "last_error": pa.array([e.last_error for e in entries], pa.string()),
        "trace_id": pa.array([e.trace_id for e in entries], pa.string()),
    }))


def _enter_staged(warehouse: WarehouseResource, conn: Connection, destination: str, run_id: str) -> dict:
    params = {"d": destination, "run": run_id, "at": now()}
    warehouse.run(conn, """
        UPDATE activation.sync_ledger SET operation = i.operation, partition_key = i.partition_key,
            status = 'pending', attempts = 0, last_error = NULL, trace_id = NULL, run_id = :run, updated_at = :at
        FROM _cdp_ledger_in AS i
        WHERE sync_ledger.destination = :d AND sync_ledger.record_key = i.record_key
          AND sync_ledger.operation <> i.operation""", params)
    warehouse.run(conn, """
        INSERT INTO activation.sync_ledger
        SELECT :d, i.record_key, i.operation, i.partition_key, 'pending', 0, NULL, NULL, :run, :at
        FROM _cdp_ledger_in AS i
        WHERE i.record_key NOT IN (SELECT record_key FROM activation.sync_ledger WHERE destination = :d)""", params)
    return params


def plan(warehouse: WarehouseResource, conn: Connection, destination: str, run_id: str,
         planned: list[Entry]) -> dict[str, Entry]:
    """Enter planned records as pending (a record sent earlier under another operation, such as an audience
    member removed and now added again, starts over) and return every planned record's ledger entry."""
    if not planned:
        return {}
    _stage(warehouse, conn, planned)
    params = _enter_staged(warehouse, conn, destination, run_id)
    rows = warehouse.run(conn, """
        SELECT l.record_key, l.operation, l.partition_key, l.status, l.attempts, l.last_error, l.trace_id
        FROM activation.sync_ledger AS l JOIN _cdp_ledger_in AS i ON i.record_key = l.record_key
        WHERE l.destination = :d""", params)
    return {r[0]: Entry(*r) for r in rows}


def plan_from(warehouse: WarehouseResource, conn: Connection, destination: str, run_id: str, select_sql: str,
              params: dict) -> None:
    """`plan` for records listed by a warehouse query of (record_key, operation, partition_key), without
    bringing them into Python: how a million-event day is entered."""
    warehouse.run(conn, LEDGER_IN)
    warehouse.run(conn, "DELETE FROM _cdp_ledger_in")
    warehouse.run(conn, f"INSERT INTO _cdp_ledger_in SELECT record_key, operation, partition_key, 'pending', 0, "
                        f"NULL, NULL FROM ({select_sql}) AS planned", params)
    _enter_staged(warehouse, conn, destination, run_id)


def record(warehouse: WarehouseResource, conn: Connection, destination: str, run_id: str,
           entries: list[Entry]) -> None:
    """Write these entries' new state (replacing their previous rows)."""
    if not entries:
        return
    _stage(warehouse, conn, entries)
    params = {"d": destination, "run": run_id, "at": now()}
    warehouse.run(conn, """
        INSERT INTO activation.sync_ledger
        SELECT :d, record_key, operation, partition_key, status, attempts, last_error, trace_id, :run, :at
        FROM _cdp_ledger_in
        ON CONFLICT (destination, record_key) DO UPDATE SET operation = excluded.operation,
            partition_key = excluded.partition_key, status = excluded.status, attempts = excluded.attempts,
            last_error = excluded.last_error, trace_id = excluded.trace_id, run_id = excluded.run_id,
            updated_at = excluded.updated_at""", params)


def journal(warehouse: WarehouseResource, conn: Connection, destination: str, run_id: str,
            entries: list[tuple[int, Entry]]) -> None:
    """`record`, appended to the journal instead, each entry with its sequence number (the latest entry of a key
    wins); `fold` applies it."""
    if not entries:
        return
    warehouse.append_arrow(conn, LEDGER_JOURNAL.name, pa.table({
        "record_key": [e.key for _, e in entries], "operation": [e.operation for _, e in entries],
        "partition_key": [e.partition_key for _, e in entries], "status": [e.status for _, e in entries],
        "attempts": pa.array([e.attempts for _, e in entries], pa.int32()),
        "last_error": pa.array([e.last_error for _, e in entries], pa.string()),
        "trace_id": pa.array([e.trace_id for _, e in entries], pa.string()),
        "seq": pa.array([seq for seq, _ in entries], pa.int64())}),
        {"destination": destination, "run_id": run_id, "updated_at": now()})


def fold(warehouse: WarehouseResource, conn: Connection, destination: str) -> None:
    """Apply the destination's journal to the ledger, the latest entry of each key winning, and empty it."""
    LEDGER_JOURNAL.ensure(warehouse, conn)
    warehouse.run(conn, """
        INSERT INTO activation.sync_ledger
        SELECT destination, record_key, operation, partition_key, status, attempts, last_error, trace_id, run_id,
               updated_at
        FROM (SELECT *, row_number() OVER (PARTITION BY record_key ORDER BY seq DESC) AS latest
              FROM activation.sync_ledger_journal WHERE destination = :d) AS j
        WHERE latest = 1
        ON CONFLICT (destination, record_key) DO UPDATE SET operation = excluded.operation,
            partition_key = excluded.partition_key, status = excluded.status, attempts = excluded.attempts,
            last_error = excluded.last_error, trace_id = excluded.trace_id, run_id = excluded.run_id,
            updated_at = excluded.updated_at""", {"d": destination})
    warehouse.run(conn, "DELETE FROM activation.sync_ledger_journal WHERE destination = :d", {"d": destination})


def replay(warehouse: WarehouseResource, conn: Connection, destination: str) -> dict[str, int]:
    """Put the destination's dead letters back to pending; returns how many per partition. A run killed
    mid-sync left its outcomes in the journal: they are folded in first."""
    fold(warehouse, conn, destination)
    rows = warehouse.run(conn, "SELECT partition_key, count(*) FROM activation.sync_ledger WHERE destination = :d "
                               "AND status = 'dead_letter' GROUP BY partition_key ORDER BY partition_key",
                         {"d": destination}).fetchall()
    warehouse.run(conn, "UPDATE activation.sync_ledger SET status = 'pending', attempts = 0 "
                        "WHERE destination = :d AND status = 'dead_letter'", {"d": destination})
    return {str(p): int(n) for p, n in rows}
