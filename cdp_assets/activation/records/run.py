"""One run of a records sync: deletions carried out, added and changed records written, records that left
handled as the sync declares, audience lists brought in line; or, in a dry run, all of it recorded as the
requests it would send.

The diff is computed in the warehouse (`records/sql.py`), each changed record with its ledger entry, so a page
is never looked up in the ledger again; only changed rows are read, a page at a time, each record already built
and encoded as JSON by the warehouse where its client declares a `shape` (`records/encoded.py`). A page's records are
marked in flight in the ledger journal, and committed, before the first of its requests leaves; its batches'
outcomes, request log and acknowledgements are committed together once the page is sent (one transaction per
page, not three appends and a commit per batch of a hundred), and folded into the ledger and record_state every
`FOLD_AFTER` journal entries and once the pages are sent. A killed run leaves at most its last page in flight, and
its outcomes in the journals, folded when the next run starts: it reads the page back where the destination can
(HubSpot), or sends it again, an upsert of the same values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from cdp_assets import settings
from cdp_assets.activation import ledger
from cdp_assets.activation.destinations.base import (
    EncodedRecord,
    FollowUpClient,
    PiiPolicy,
    RecordsClient,
    RecordsDestination,
    Shape,
    formatted,
)
from cdp_assets.activation.egress import DEAD_LETTERS, EGRESS_REQUESTS
from cdp_assets.activation.ledger import IN_FLIGHT, SENT, TO_SEND, Entry
from cdp_assets.activation.records import encoded, sql, state
from cdp_assets.activation.records.config import Sync
from cdp_assets.activation.records.jobs import RECORD_JOBS
from cdp_assets.activation.records.safety import RecordCheck
from cdp_assets.activation.sender import Item, Sender
from cdp_assets.activation.transport import OK, Reply, Request
from cdp_assets.resources.warehouse import WarehouseResource

PAGE = 5_000
# Journal entries (in-flight marks and outcomes) between folds: folding a million-record sync page by page into
# the keyed ledger and record_state cost twice what folding every twenty pages does (13.4 s against 6.3 s of CPU in
# a DuckDB model of the two journals), each fold rewriting index nodes the next rewrites again.
FOLD_AFTER = 200_000


@dataclass
class Plan:
    """What a run found and did: counts for metadata and history, outbound problems, a sample."""

    counts: Counter = field(default_factory=Counter)
    problems: Counter = field(default_factory=Counter)
    sample: dict[str, Any] | None = None
    requests: list[Request] = field(default_factory=list)


def today() -> str:
    return datetime.now(settings.timezone()).date().isoformat()


def _create(warehouse: WarehouseResource, conn: Connection, table: str, select_sql: str, params: dict) -> None:
    warehouse.run(conn, f"DROP TABLE IF EXISTS {table}")
    warehouse.run(conn, f"CREATE TABLE {table} AS {select_sql}", params)
    warehouse.analyze(conn, table)


def build_targets(warehouse: WarehouseResource, sync: Sync, full_resync: bool, plan: Plan) -> None:
    """The sync's targets and its changes, as warehouse tables; their sizes into `plan.counts`."""
    params = {"s": sync.name, "purpose": sync.consent_purpose or ""}
    with warehouse.begin() as conn:
        ledger.ensure_tables(warehouse, conn)
        state.ensure_tables(warehouse, conn)
        for table in (EGRESS_REQUESTS, DEAD_LETTERS, RECORD_JOBS):
            table.ensure(warehouse, conn)
        # A run killed after a batch was acknowledged and before its page was folded left it in the journals.
        ledger.fold(warehouse, conn, sync.name)
        state.fold(warehouse, conn, sync.name)
        _create(warehouse, conn, sql.targets_table(sync), sql.targets_sql(sync), params)
        _create(warehouse, conn, sql.changes_table(sync), sql.changes_sql(sync, full_resync), params)
        targets = sql.targets_table(sync)
        plan.counts["targets"] = int(warehouse.scalar(conn, f"SELECT count(*) FROM {targets} WHERE key_rows = 1"))
        plan.counts["invalid_keys"] = int(warehouse.scalar(conn, f"SELECT count(*) FROM {targets} "
                                                                 "WHERE key_rows > 1"))
        for change, n in warehouse.run(conn, f"SELECT change, count(*) FROM {sql.changes_table(sync)} GROUP BY change"):
            plan.counts[str(change)] = int(n)


def first_run(warehouse: WarehouseResource, sync: Sync) -> bool:
    with warehouse.begin() as conn:
        return not warehouse.scalar(conn, "SELECT count(*) FROM activation.sync_runs WHERE sync = :s AND "
                                          "outcome <> 'dry_run'", {"s": sync.name})


def baseline(warehouse: WarehouseResource, sync: Sync, run_id: str) -> int:
    """`new_rows_only`: today's rows count as already at the destination; only later rows and changes go."""
    with warehouse.begin() as conn:
        warehouse.run(conn, f"""
            INSERT INTO activation.record_state SELECT :s, record_key, fingerprint, NULL, profile_id, email_sha256,
                phone_sha256, 'present', :at, :run FROM {sql.targets_table(sync)} WHERE key_rows = 1""",
                      {"s": sync.name, "at": ledger.now(), "run": run_id})
        return int(warehouse.scalar(conn, "SELECT count(*) FROM activation.record_state WHERE sync = :s",
                                    {"s": sync.name}))


def _fields(sync: Sync, row: dict[str, Any]) -> dict[str, Any]:
    return {f.field: row[c] for f, c in zip(sync.all_fields, sql.sent_columns(sync), strict=True)}


def pages(warehouse: WarehouseResource, sync: Sync, client: RecordsClient, day: str) -> Iterator[list[Item]]:
    """The changed records as sender items, a page at a time, each with its ledger entry."""
    fields = [f.field for f in sync.all_fields]
    for names, rows in _row_pages(warehouse, sync, getattr(client, "shape", None)):
        at = {name: n for n, name in enumerate(names)}
        key, value, fingerprint, profile, email, phone, status, attempts = (at[c] for c in (
            "record_key", "key_value", "fingerprint", "profile_id", "email_sha256", "phone_sha256", "ledger_status",
            "ledger_attempts"))
        sent = [at[c] for c in sql.sent_columns(sync)]
        built = at.get("record_json")  # the record as the warehouse encoded it, where it could
        yield [Item(r[key], EncodedRecord(r[built], r[value], r[key]) if built is not None and r[built] is not None
                    else client.record(r[value], dict(zip(fields, [r[n] for n in sent], strict=True)), r[key]),
                    day, {"recorded_as": f"upsert:{r[fingerprint]}", "fingerprint": r[fingerprint],
                          "profile_id": r[profile], "email_sha256": r[email], "phone_sha256": r[phone],
                          "ledger": (r[status], r[attempts])})
               for r in rows]


def _row_pages(warehouse: WarehouseResource, sync: Sync,
               shape: Shape | None) -> Iterator[tuple[list[str], list[Any]]]:
    """The column names and rows of the changes table, a page at a time (by the number each got as it was
    built), read on one connection; for a client with a record `shape`, each record encoded in the warehouse."""
    table = sql.changes_table(sync)
    with warehouse.session() as conn:
        with conn.begin():
            total = int(warehouse.scalar(conn, f"SELECT count(*) FROM {table}"))
            page_sql = encoded.page_sql(sync, shape, dict(warehouse.columns(conn, table)), table) if shape else None
        for start in range(0, total, PAGE):
            with conn.begin():
                result = warehouse.run(conn, page_sql or f"SELECT * FROM {table} WHERE rn > :a AND rn <= :b "
                                                         "ORDER BY rn", {"a": start, "b": start + PAGE})
                names, rows = list(result.keys()), result.all()
            yield names, rows


def outbound(sync: Sync, row: dict[str, Any]) -> dict[str, str]:
    """The record as it leaves, field by field, for samples."""
    fields = _fields(sync, row)
    return {sync.key.field: row["key_value"], **{f.field: formatted(fields[f.field], f.type) for f in sync.all_fields}}


def check_changes(warehouse: WarehouseResource, sync: Sync, destination: RecordsDestination, plan: Plan,
                  table: str | None = None) -> None:
    """The safety check over every record to send (the changes, or every row of `table`), before anything is
    sent, and the first of them as the run's redacted sample. Each distinct value of the key and of the free-text
    fields is checked once and counts for the records that hold it; typed values cannot hold free text."""
    table = table or sql.changes_table(sync)
    check = RecordCheck(sync, destination.policy(sync))
    columns = {sync.key.field: "key_value", **dict(zip((f.field for f in sync.all_fields), sql.sent_columns(sync),
                                                       strict=True))}
    with warehouse.begin() as conn:
        total = int(warehouse.scalar(conn, f"SELECT count(*) FROM {table}"))
        if not total:
            return
        for name, column in columns.items():
            if check.always_fails(name):
                plan.problems[check.problem(name, None)] += total
            elif check.reads_values(name):
                for value, n in warehouse.run(conn, f"SELECT {column}, count(*) FROM {table} GROUP BY {column}"):
                    problem = check.problem(name, value)
                    if problem:
                        plan.problems[problem] += int(n)
        order = "rn" if table == sql.changes_table(sync) else "record_key"
        result = warehouse.run(conn, f"SELECT * FROM {table} ORDER BY {order} LIMIT 1")
        first = dict(zip(result.keys(), result.one(), strict=True))
    plan.sample = redacted(outbound(sync, first), destination.policy(sync))


def keyed(warehouse: WarehouseResource, select_sql: str, params: dict) -> list[tuple[str, str]]:
    """(record key, destination id) rows of a query, for the small sets: deletions, leavers, list changes."""
    with warehouse.begin() as conn:
        return [(str(k), str(d)) for k, d in warehouse.run(conn, select_sql, params)]


def deletions(warehouse: WarehouseResource, sync: Sync) -> list[tuple[str, str]]:
    with warehouse.begin() as conn:
        if not (warehouse.table_exists(conn, "core.deletion_requests")
                and warehouse.table_exists(conn, "core.deletion_pending_profiles")):
            return []
    return keyed(warehouse, sql.DELETED_SQL, {"s": sync.name})


def redacted(record: dict[str, Any], policy: PiiPolicy) -> dict[str, Any]:
    """A record fit for metadata: the personal fields its destination takes in clear are masked."""
    return {k: "[redacted]" if k in policy.clear else v for k, v in record.items()}


def batches(client: RecordsClient, operation: str, payloads: list[Any]) -> list[Request]:
    """The requests the payloads make at the destination's limit, a batch over its byte limit (`too_large`)
    split in halves, as the sender splits it."""
    size = client.limit(operation)
    chunks = [payloads[i:i + size] for i in range(0, len(payloads), size)]
    too_large = getattr(client, "too_large", None)
    requests = []
    while chunks:
        chunk = chunks.pop(0)
        request = client.request(operation, chunk, not chunks)
        if too_large is not None and len(chunk) > 1 and too_large(request):
            chunks[:0] = [chunk[:len(chunk) // 2], chunk[len(chunk) // 2:]]
            continue
        requests.append(request)
    return requests


def follow_ups(warehouse: WarehouseResource, sync: Sync, client: FollowUpClient, operation: str, day: str,
               planned: bool = False) -> list[Item]:
    """The records due a follow-up `operation` (sent once per record the destination holds, such as Klaviyo's
    email subscription), ledgered as `<operation>:<record key>` so none is sent twice."""
    with warehouse.begin() as conn:
        result = warehouse.run(conn, sql.follow_up_sql(sync, operation, planned), {"s": sync.name, "o": operation})
        names = list(result.keys())
        rows = [dict(zip(names, r, strict=True)) for r in result.all()]
    return [Item(f"{operation}:{r['record_key']}", client.follow_up(operation, r["key_value"], _fields(sync, r)), day,
                 {"recorded_as": operation}) for r in rows]


def forget_acknowledgements(sender: Sender, sync: Sync) -> None:
    """A full resync: every record the ledger holds as sent is due again."""
    with sender.transaction() as conn:
        sender.warehouse.run(conn, "UPDATE activation.sync_ledger SET status = 'pending', attempts = 0 "
                                   "WHERE destination = :s AND status = 'sent'", {"s": sync.name})


Acked = Callable[[Connection, str, list[Item]], None]


Confirm = Callable[[list[Any]], dict[str, str]]


def deliver(sender: Sender, operation: str, items: list[Item], acked: Acked | None,
            confirm: Confirm | None = None) -> None:
    """Enter the items in the ledger and send the ones still due (not acknowledged under this operation).

    Items that carry their ledger entry (`extra["ledger"]`: status and attempts, read with the changes) are not
    looked up again. Records a killed run left in flight may already be written: `confirm` (a destination that
    can read records back) returns, by trace id, the destination's id of those it holds with exactly these
    values, and they are acknowledged without being written twice.
    """
    if not items:
        return
    carried = all("ledger" in i.extra for i in items)
    if not carried and sender.journaled:
        fold(sender)  # `ledger.plan` reads the ledger
    entries = _entries(sender, operation, items)
    due = [i for i in items if entries[i.key].status in TO_SEND]
    in_flight = [i for i in due if entries[i.key].status == IN_FLIGHT]
    if confirm and acked and in_flight:
        held = confirm([i.payload for i in in_flight])
        confirmed = [i for i in in_flight if i.key in held]
        with sender.transaction() as conn:
            ledger.record(sender.warehouse, conn, sender.destination, sender.run_id, [
                Entry(i.key, i.extra.get("recorded_as", operation), i.partition_key, SENT, entries[i.key].attempts,
                      None, "confirmed by reading back") for i in confirmed])
            sender.last_reply = Reply(OK, None, ids=held)
            acked(conn, operation, confirmed)
        due = [i for i in due if i.key not in held]
    # The whole page is marked in flight in one statement, not batch by batch: a million-record sync is ten
    # thousand batches. The marks are journaled (sequence 0, so every outcome of the page wins over them) and
    # folded with the outcomes: an upsert of a page into a ledger of a million rows cost more than its requests.
    attempts = {i.key: entries[i.key].attempts + 1 for i in due}
    with sender.transaction() as conn:
        ledger.journal(sender.warehouse, conn, sender.destination, sender.run_id, [
            (0, Entry(i.key, i.extra.get("recorded_as", operation), i.partition_key, IN_FLIGHT, attempts[i.key]))
            for i in due])
    sender.journaled += len(due)
    sender.deliver(operation, due, sender.channel.limit(operation), attempts, acked, marked=True)
    if not carried or sender.journaled >= FOLD_AFTER:
        fold(sender)


def _entries(sender: Sender, operation: str, items: list[Item]) -> dict[str, Entry]:
    """Each item's ledger entry: carried with it, or entered and read back (`ledger.plan`)."""
    if all("ledger" in i.extra for i in items):
        return {i.key: Entry(i.key, i.extra.get("recorded_as", operation), i.partition_key, *i.extra["ledger"])
                for i in items}
    with sender.transaction() as conn:
        return ledger.plan(sender.warehouse, conn, sender.destination, sender.run_id,
                           [Entry(i.key, i.extra.get("recorded_as", operation), i.partition_key, "pending", 0)
                            for i in items])


def fold(sender: Sender) -> None:
    """Apply what was journaled (in-flight marks, batch outcomes, acknowledgements) to the ledger and
    record_state: before anything reads them, and once the changed records are sent."""
    with sender.transaction() as conn:
        ledger.fold(sender.warehouse, conn, sender.destination)
        state.fold(sender.warehouse, conn, sender.destination)
    sender.journaled = 0
