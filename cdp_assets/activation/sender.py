"""The sender: records in batches at the platform's limit, effectively once, with bisection and dead letters.

Per batch: mark its records in flight (committed), send with retries on transient failures, then commit
the outcome, the attempt log and any acknowledgement side effect (audience acks) in one transaction; or, for
a buffered sender (records syncs, whose caller marks a whole page in flight first), gather them and commit a
whole `deliver` call's worth in one transaction at its end. A
batch the platform rejects as a whole is split in halves until the bad records stand alone; they are
dead-lettered with the platform's reason and every other record goes through. An authentication failure
stops the destination at once: retrying cannot fix a token.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

import pyarrow as pa
import requests
from sqlalchemy.engine import Connection

from cdp_assets.activation import ledger
from cdp_assets.activation.egress import DEAD_LETTERS, EGRESS_REQUESTS, dead_letter_rows
from cdp_assets.activation.ledger import DEAD_LETTER, FAILED, IN_FLIGHT, SENT, SENT_UNCONFIRMED, Entry
from cdp_assets.activation.transport import (
    AUTH,
    OK,
    PARTIAL,
    REJECTED,
    EgressSession,
    Reply,
    Request,
    RetryPolicy,
    assemble,
    scrub,
    send_with_retry,
)
from cdp_assets.resources.warehouse import WarehouseResource


class DestinationStopped(RuntimeError):
    """The platform refused our credentials; nothing more is sent to it in this run."""


class Item(NamedTuple):
    """One record bound for a destination: its ledger key and the element it contributes to a request (a tuple:
    a million-record sync makes one per record, and a frozen dataclass took four times as long to make)."""

    key: str
    payload: Any
    partition_key: str
    extra: Mapping[str, Any] = MappingProxyType({})  # `recorded_as`: the item's ledger operation


class Channel(Protocol):
    """What the sender needs from a platform client.

    A channel may also define `sign(request) -> headers`: asked on every attempt, after `headers()`, with the
    request whose `data` are the exact bytes that attempt sends (a webhook's HMAC signature and timestamp).
    """

    def request(self, operation: str, payloads: list[Any], last_batch: bool) -> Request: ...

    def headers(self) -> dict[str, str]: ...

    def interpret(self, operation: str, status: int, text: str, headers: Mapping[str, str]) -> Reply: ...

    def secrets(self) -> list[str | None]: ...


Acked = Callable[[Connection, str, list[Item]], None]


class Gathered:
    """An acknowledgement a buffered sender gathers batch by batch and writes once per `deliver` call: a page's
    acknowledgements in one statement rather than one per batch of a hundred."""

    def gather(self, operation: str, items: list[Item], reply: Reply | None) -> None:
        raise NotImplementedError

    def write(self, conn: Connection) -> None:
        raise NotImplementedError

    def __call__(self, conn: Connection, operation: str, items: list[Item], reply: Reply | None = None) -> None:
        """Gather and write at once (an acknowledgement outside a buffered batch)."""
        self.gather(operation, items, reply)
        self.write(conn)


LOG_SCHEMA = pa.schema([
    ("destination", pa.string()), ("operation", pa.string()), ("method", pa.string()), ("url", pa.string()),
    ("partition_key", pa.string()), ("run_id", pa.string()), ("batch_no", pa.int32()), ("record_count", pa.int32()),
    ("request_body", pa.string()), ("status", pa.string()), ("http_status", pa.int32()), ("attempt", pa.int32()),
    ("response_body", pa.string()), ("created_at", pa.timestamp("us")),
])


@dataclass
class _Gathering:
    """What a buffered sender's batches did since the start of the current `deliver` call."""

    log: list[dict[str, Any]] = field(default_factory=list)
    entries: list[tuple[int, Entry]] = field(default_factory=list)
    dead: list[tuple[str, str, str]] = field(default_factory=list)
    acks: list[tuple[Acked, str, list[Item], Reply]] = field(default_factory=list)


@dataclass
class Tally:
    sent: int = 0
    dead_letters: int = 0
    failed: int = 0
    requests: int = 0
    attempts: int = 0
    retries: int = 0
    bisections: int = 0
    reported: Counter = field(default_factory=Counter)
    trace_ids: list[str] = field(default_factory=list)
    reasons: Counter = field(default_factory=Counter)


class Sender:
    def __init__(self, warehouse: WarehouseResource, destination: str, channel: Channel, run_id: str,
                 policy: RetryPolicy, session: requests.Session | None = None, buffered: bool = False) -> None:
        """`buffered`: each `deliver` call's batch outcomes, attempt log, dead letters and acknowledgements are
        committed together at its end, the outcomes to the ledger's journal, which the caller folds into the
        ledger (`ledger.fold`) before it reads the ledger again. The caller marks the records in flight first: a
        killed run leaves them so, to be read back or sent again."""
        self.warehouse, self.destination, self.channel = warehouse, destination, channel
        self.run_id, self.policy = run_id, policy
        self.session = session or EgressSession()
        self.tally = Tally()
        self._batch_no = 0
        self._conn: Connection | None = None
        self.last_reply: Reply | None = None  # the answer whose accepted records `on_acked` is recording
        self._buffered = buffered
        self._seq = 0
        self._gathering = _Gathering()
        self.journaled = 0  # ledger journal entries since the caller last folded the journal (`ledger.fold`)
        with warehouse.begin() as conn:
            ledger.ensure_tables(warehouse, conn)
            for table in (EGRESS_REQUESTS, DEAD_LETTERS):
                table.ensure(warehouse, conn)

    def deliver(self, operation: str, items: list[Item], limit: int, attempts: Mapping[str, int],
                on_acked: Acked | None = None, ledger_operation: str | None = None, in_order: bool = False,
                marked: bool = False) -> bool:
        """Send `items` under `operation` in batches of at most `limit`; `attempts` are prior tries per key.

        The ledger records them under `ledger_operation` (default: `operation`). `in_order` stops at the first
        batch left failed, so an upload session's batches reach the platform in sequence. `marked` says the
        caller already marked every item in flight, and counted this attempt, in one statement for the whole
        page. Returns True when every item ended acknowledged or dead-lettered, False when some are left for
        the next run.
        """
        failed_before = self.tally.failed
        batches = [items[i:i + limit] for i in range(0, len(items), limit)]
        tries = dict(attempts)
        with self if self._conn is None else nullcontext():
            try:
                for number, batch in enumerate(batches, start=1):
                    self._deliver_batch(operation, batch, tries, on_acked, number == len(batches),
                                        ledger_operation or operation, marked)
                    if in_order and self.tally.failed != failed_before:
                        break
                    if getattr(self.channel, "parked", None):  # the platform asked for no more today
                        break
            finally:
                self._flush()
        return self.tally.failed == failed_before

    def __enter__(self) -> Sender:
        # One connection for the sender's life, one transaction per step: opening and closing a DuckDB
        # connection per batch cost about 50 ms (it checkpoints on close).
        self._session = self.warehouse.session()
        self._conn = self._session.__enter__()
        # Every object alive before the sending starts (Dagster's, SQLAlchemy's, the modules') is left out of the
        # garbage collector's full collections until it ends: each page's records outlive a few young
        # collections, so full ones came every page or two, each walking the whole process, 2.2 s of a 100k sync.
        gc.freeze()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            gc.unfreeze()
            self._conn = None
            self._session.__exit__(None, None, None)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A transaction on the sender's connection (or a fresh connection outside a `with Sender`)."""
        if self._conn is None:
            with self.warehouse.begin() as conn:
                yield conn
        else:
            with self._conn.begin():
                yield self._conn

    def _settle(self, request: Request, log: list[tuple[Reply, int]], items: list[Item], entries: list[Entry],
                dead: list[tuple[str, str, str]] | None = None,
                ack: tuple[Acked, str, list[Item]] | None = None) -> None:
        """A batch's attempt log, ledger entries, dead letters and acknowledgement: committed now, or, buffered,
        at the end of the `deliver` call."""
        rows = self._log_rows(request, log, items)
        if self._buffered:
            self._seq += 1
            gathering = self._gathering
            gathering.log += rows
            gathering.entries += [(self._seq, e) for e in entries]
            gathering.dead += dead or []
            if ack is not None and self.last_reply is not None:
                gathering.acks.append((*ack, self.last_reply))
            return
        with self.transaction() as conn:
            self._append_log(conn, rows)
            ledger.record(self.warehouse, conn, self.destination, self.run_id, entries)
            if dead:
                dead_letter_rows(self.warehouse, conn, self.destination, self.run_id, dead)
            if ack is not None:
                on_acked, operation, accepted = ack
                on_acked(conn, operation, accepted)

    def _flush(self) -> None:
        """Commit what a buffered sender gathered, in one transaction."""
        gathering, self._gathering = self._gathering, _Gathering()
        if not (gathering.log or gathering.entries):
            return
        with self.transaction() as conn:
            self._append_log(conn, gathering.log)
            ledger.journal(self.warehouse, conn, self.destination, self.run_id, gathering.entries)
            self.journaled += len(gathering.entries)
            dead_letter_rows(self.warehouse, conn, self.destination, self.run_id, gathering.dead)
            gathered: dict[int, Gathered] = {}
            for on_acked, operation, items, reply in gathering.acks:
                if isinstance(on_acked, Gathered):
                    on_acked.gather(operation, items, reply)
                    gathered[id(on_acked)] = on_acked
                else:
                    self.last_reply = reply
                    on_acked(conn, operation, items)
            for acknowledgement in gathered.values():
                acknowledgement.write(conn)

    def call(self, request: Request, partition_key: str) -> Reply:
        """One request that carries no records (create a job, run it, ask its status), retried and logged."""
        self._batch_no += 1
        self.tally.requests += 1
        log: list[tuple[Reply, int]] = []
        reply = self._send(request, request.operation, log)
        with self.transaction() as conn:
            self._append_log(conn, self._log_rows(request, log, [Item("", None, partition_key)]))
        if reply.kind == AUTH:
            raise DestinationStopped(f"{self.destination}: the platform refused the credentials "
                                     f"({reply.message}); fix the token, then re-run")
        return reply

    def _send(self, request: Request, operation: str, log: list[tuple[Reply, int]]) -> Reply:
        sign = getattr(self.channel, "sign", None)
        headers = self.channel.headers if sign is None else lambda: {**self.channel.headers(), **sign(request)}
        try:
            reply = send_with_retry(
                self.session, request, headers,
                lambda status, text, headers: self.channel.interpret(operation, status, text, headers),
                self.policy, lambda r, n: log.append((r, n)), self.channel.secrets())
        except PermissionError as refused:  # the OAuth token could not be minted
            raise DestinationStopped(f"{self.destination}: {refused}") from None
        self.tally.attempts += len(log)
        self.tally.retries += max(0, len(log) - 1)
        return reply

    def _entries(self, items: list[Item], operation: str, status: str, attempts: Mapping[str, int],
                 error: str | None = None, trace: str | None = None) -> list[Entry]:
        return [Entry(i.key, i.extra.get("recorded_as", operation), i.partition_key, status, attempts.get(i.key, 0),
                      error, trace) for i in items]

    def _deliver_batch(self, operation: str, items: list[Item], attempts: dict[str, int], on_acked: Acked | None,
                       last: bool, recorded_as: str, marked: bool = False) -> None:
        too_large = getattr(self.channel, "too_large", None)  # a limit on bytes besides the one on records
        if too_large is not None and len(items) > 1 and too_large(assemble(
                lambda records: self.channel.request(operation, records, last), [i.payload for i in items])):
            half = len(items) // 2
            self._deliver_batch(operation, items[:half], attempts, on_acked, False, recorded_as, marked)
            self._deliver_batch(operation, items[half:], attempts, on_acked, last, recorded_as, marked)
            return
        if not marked:
            for item in items:
                attempts[item.key] = attempts.get(item.key, 0) + 1
            in_flight = self._entries(items, recorded_as, IN_FLIGHT, attempts)
            if self._buffered:  # a half of a split batch whose page is already marked: counted, not committed
                self._seq += 1
                self._gathering.entries += [(self._seq, e) for e in in_flight]
            else:
                with self.transaction() as conn:
                    ledger.record(self.warehouse, conn, self.destination, self.run_id, in_flight)
        request = assemble(lambda records: self.channel.request(operation, records, last), [i.payload for i in items])
        self._batch_no += 1
        self.tally.requests += 1
        log: list[tuple[Reply, int]] = []
        reply = self._send(request, operation, log)
        if reply.kind == AUTH:
            self._settle(request, log, items, self._entries(items, recorded_as, FAILED, attempts, reply.message))
            raise DestinationStopped(f"{self.destination}: the platform refused the credentials "
                                     f"({reply.message}); fix the token, then re-run")
        if reply.kind == REJECTED and len(items) > 1:
            self._settle(request, log, items, [])
            self.tally.bisections += 1
            half = len(items) // 2
            self._deliver_batch(operation, items[:half], attempts, on_acked, False, recorded_as)
            self._deliver_batch(operation, items[half:], attempts, on_acked, last, recorded_as)
            return
        failed_rows = reply.failed_rows if reply.kind == PARTIAL else {}
        if reply.kind == REJECTED:
            failed_rows = {0: reply.message}
        accepted = [item for n, item in enumerate(items) if n not in failed_rows] if reply.kind in (OK, PARTIAL) \
            else []
        again = reply.retry_rows if reply.kind == PARTIAL else set()
        dead = [(items[n], reason) for n, reason in sorted(failed_rows.items()) if n < len(items) and n not in again]
        retry_later = [] if reply.kind in (OK, PARTIAL, REJECTED) else items
        # Rows the platform could not write for a passing reason: failed with their own reason, so they go again.
        passing = [(items[n], failed_rows.get(n, reply.message)) for n in sorted(again) if n < len(items)]
        self.tally.reported.update(reply.reported)
        if reply.trace_id:
            self.tally.trace_ids.append(reply.trace_id)
        confirmed = [not reply.unconfirmed or bool(i.extra.get("validated")) for i in accepted]
        entries = self._entries([i for i, c in zip(accepted, confirmed, strict=True) if c], recorded_as, SENT,
                                attempts, None, reply.trace_id)
        entries += self._entries([i for i, c in zip(accepted, confirmed, strict=True) if not c], recorded_as,
                                 SENT_UNCONFIRMED, attempts, None, reply.trace_id)
        entries += [Entry(i.key, i.extra.get("recorded_as", recorded_as), i.partition_key, DEAD_LETTER,
                          attempts[i.key], reason, reply.trace_id) for i, reason in dead]
        entries += self._entries(retry_later, recorded_as, FAILED, attempts, reply.message, reply.trace_id)
        entries += [Entry(i.key, i.extra.get("recorded_as", recorded_as), i.partition_key, FAILED,
                          attempts.get(i.key, 0), reason, reply.trace_id) for i, reason in passing]
        if accepted and on_acked:
            self.last_reply = reply
        self._settle(request, log, items, entries, [(i.partition_key, i.key, reason) for i, reason in dead],
                     (on_acked, operation, accepted) if accepted and on_acked else None)
        self.tally.sent += len(accepted)
        self.tally.dead_letters += len(dead)
        self.tally.failed += len(retry_later) + len(passing)
        for _, reason in dead:
            self.tally.reasons[reason[:120]] += 1

    def _log_rows(self, request: Request, log: list[tuple[Reply, int]], items: list[Item]) -> list[dict[str, Any]]:
        """One `activation.egress_requests` row per attempt of the request."""
        if not log:
            return []
        partitions = sorted({i.partition_key for i in items})
        status = {OK: "sent", PARTIAL: "sent", REJECTED: "dead_letter"}
        common = {
            "destination": self.destination, "operation": request.operation, "method": request.method,
            "url": scrub(request.url, self.channel.secrets()),
            "partition_key": partitions[0] if len(partitions) == 1 else ",".join(partitions),
            "run_id": self.run_id, "batch_no": self._batch_no, "record_count": request.record_count,
            "request_body": request.text, "created_at": ledger.now()}
        return [{**common, "status": status.get(r.kind, "failed"), "http_status": r.http_status, "attempt": n,
                 "response_body": r.body_text[:10_000] or r.message} for r, n in log]

    def _append_log(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.warehouse.append_arrow(conn, EGRESS_REQUESTS.name, pa.Table.from_pylist(rows, LOG_SCHEMA))
