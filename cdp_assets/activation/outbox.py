"""`activation.outbox`: a day's conversions as each platform's events, built page by page in the warehouse.

The day's rows (`queries.CONVERSIONS_SQL`, or the platform's own `source`) land in a temporary table; pages
of 10,000 are read back, turned into events (normalized and hashed per platform), checked, and appended with
the reason any of them would be refused, so memory stays flat however large the day. Building is CPU-bound
Python, so a large day is built on every core by a pool of worker processes while this one reads and writes
pages.
"""

import json
import os
from collections import Counter, deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from typing import Any

import pyarrow as pa

from cdp_assets.activation import ledger
from cdp_assets.activation.config import Destination
from cdp_assets.activation.queries import CONVERSIONS_SQL
from cdp_assets.activation.safety import body_problems, match_quality
from cdp_assets.resources.state import StateTable
from cdp_assets.resources.warehouse import WarehouseResource

PAGE = 10_000
POOL_MIN_ROWS = 50_000  # below this, starting worker processes costs more than it saves
OUTBOX = StateTable(
    "activation.outbox",
    "CREATE TABLE activation.outbox (destination VARCHAR, record_key VARCHAR, operation VARCHAR, "
    "partition_key VARCHAR, payload VARCHAR, problem VARCHAR, match_quality DOUBLE, planned_at TIMESTAMP, "
    "seq BIGINT)",
)
SCHEMA = pa.schema([("record_key", pa.string()), ("operation", pa.string()), ("payload", pa.string()),
                    ("problem", pa.string()), ("match_quality", pa.float64()), ("partition_key", pa.string())])


@dataclass
class Plan:
    """What building the outbox found: counts, body problems, match quality and one sample payload."""

    counts: Counter = field(default_factory=Counter)
    problems: Counter = field(default_factory=Counter)
    quality: list[float] = field(default_factory=lambda: [0.0, 0.0])  # sum, count
    samples: list[Any] = field(default_factory=list)

    def add(self, other: "Plan") -> None:
        self.counts.update(other.counts)
        self.problems.update(other.problems)
        self.quality = [self.quality[0] + other.quality[0], self.quality[1] + other.quality[1]]
        self.samples = self.samples or other.samples


def build_page(destination: Destination, names: list[str], rows: list[tuple], partition_key: str,
               now: datetime) -> tuple[pa.Table, Plan]:
    """One page of conversion rows as outbox rows, and what it found. Runs in a worker process too."""
    platform = destination.ad_platform
    channel = platform.channel(destination)
    keyed = getattr(channel, "record_key", None)  # a platform whose events carry no event id of their own
    plan = Plan()
    columns: dict[str, list] = {name: [] for name in SCHEMA.names}
    valid = []
    for values in rows:
        row = dict(zip(names, values, strict=True))
        if row["suppressed"]:
            plan.counts["filtered_by_suppression"] += 1
        elif row["deletion_pending"]:
            plan.counts["filtered_by_deletion"] += 1
        elif not (row["consented"] and destination.consent_purpose):
            plan.counts["filtered_by_consent"] += 1
        elif row.get("held"):  # a platform's own source holds a row until later (GA4: its day not loaded yet)
            plan.counts["held"] += 1
        else:
            try:
                event = channel.event(row)
            except (TypeError, ValueError, KeyError, AttributeError) as error:
                # A row this code cannot turn into an event is dead-lettered with the reason, not a failed run.
                event = {"event_id": str(row.get("order_id"))}
                problem = f"cannot build the event: {type(error).__name__}: {str(error)[:120]}"
            else:
                problem = channel.problem(event, now)
            columns["record_key"].append(keyed(event) if keyed else event.get("event_id") or event.get("orderId"))
            columns["operation"].append(platform.operation or channel.source(row))
            columns["payload"].append(json.dumps(event, ensure_ascii=False, separators=(",", ":")))
            columns["problem"].append(problem)
            columns["match_quality"].append(match_quality(event))
            if problem is None:
                valid.append(event)
                plan.quality[0] += columns["match_quality"][-1]
    plan.quality[1] = len(valid)
    plan.samples = valid[:1]
    plan.counts["conversions"] += len(rows)
    plan.counts["events_prepared"] += len(valid)
    plan.counts["dead_letters"] += len(columns["record_key"]) - len(valid)
    plan.problems.update(body_problems([{"data": valid}], [], platform))
    columns["partition_key"] = [partition_key] * len(columns["record_key"])
    return pa.table(columns, schema=SCHEMA), plan


def _workers() -> int:
    return min(2, os.cpu_count() or 1)


def build_outbox(warehouse: WarehouseResource, destination: Destination, partitions_def: Any,
                 partition_keys: list[str], now: datetime, closed: list[str] | None = None) -> Plan:
    """Replace the destination's outbox rows for these days with their events, a page at a time; `closed`: the
    failing gates of the platform's optional sources."""
    plan = Plan()
    # Rows are numbered as they are written: the send loop pages through them by this number.
    seq = [0]
    pool: ProcessPoolExecutor | None = None
    days = ", ".join(f"'{k}'" for k in partition_keys)  # dates the partitions definition produced
    source = destination.ad_platform.source
    source_sql, source_params = source(warehouse, closed or []) if source else (CONVERSIONS_SQL, {})
    try:
        # Page by page, each in its own transaction: the outbox is a working table the next build replaces, and
        # holding a whole large day uncommitted kept all of it in memory.
        with warehouse.session() as conn:
            with conn.begin():
                OUTBOX.ensure(warehouse, conn)
                warehouse.run(conn, f"DELETE FROM activation.outbox WHERE destination = :d AND partition_key IN "
                                    f"({days})", {"d": destination.name})
            for partition_key in partition_keys:
                window = partitions_def.time_window_for_partition_key(partition_key)
                params = {"start": window.start.astimezone(UTC).replace(tzinfo=None),
                          "end": window.end.astimezone(UTC).replace(tzinfo=None),
                          "purpose": destination.consent_purpose or "", **source_params}
                with conn.begin():
                    warehouse.run(conn, "DROP TABLE IF EXISTS _cdp_day")
                    warehouse.run(conn, f"CREATE TEMP TABLE _cdp_day AS SELECT row_number() OVER (ORDER BY "
                                        f"order_id) AS rn, * FROM ({source_sql}) AS c", params)
                    total = int(warehouse.scalar(conn, "SELECT count(*) FROM _cdp_day"))
                if pool is None and total >= POOL_MIN_ROWS and _workers() > 1:
                    pool = ProcessPoolExecutor(_workers(), mp_context=get_context("spawn"))
                pending: deque[Future] = deque()

                def write(table: pa.Table, found: Plan) -> None:
                    plan.add(found)
                    if table.num_rows:
                        numbered = table.append_column("seq", pa.array(range(seq[0] + 1, seq[0] + table.num_rows + 1),
                                                                       pa.int64()))
                        seq[0] += table.num_rows
                        with conn.begin():
                            warehouse.append_arrow(conn, OUTBOX.name, numbered,
                                                   {"destination": destination.name, "planned_at": ledger.now()})

                for start in range(0, total, PAGE):
                    with conn.begin():
                        result = warehouse.run(conn, "SELECT * FROM _cdp_day WHERE rn > :a AND rn <= :b ORDER BY rn",
                                               {"a": start, "b": start + PAGE})
                        names, rows = list(result.keys()), [tuple(r) for r in result.all()]
                    if pool is None:
                        write(*build_page(destination, names, rows, partition_key, now))
                        continue
                    pending.append(pool.submit(build_page, destination, names, rows, partition_key, now))
                    if len(pending) > _workers():  # keep every worker busy, and memory to a few pages
                        write(*pending.popleft().result())
                while pending:
                    write(*pending.popleft().result())
            with conn.begin():
                repeated = warehouse.scalar(conn, f"SELECT count(*) - count(DISTINCT record_key) FROM "
                                                  f"activation.outbox WHERE destination = :d AND partition_key IN "
                                                  f"({days})", {"d": destination.name})
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if repeated:
        plan.problems["event ids repeated in one plan"] = int(repeated)
    plan.counts["outbox_rows"] = seq[0]
    return plan
