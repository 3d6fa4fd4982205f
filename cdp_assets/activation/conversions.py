"""Conversion egress: one asset per enabled events destination (Meta CAPI, Google Ads, TikTok, Pinterest).

A day's consented conversions become the platform's events in `activation.outbox`, built page by page
from a temporary table of the day so memory stays flat however large the day is. Records the platform
would refuse (too old, missing required fields, nothing to match on, bad currency) carry the reason and
are dead-lettered. Every outbound body is checked while the outbox is built, before anything is
recorded or sent; then the plan is recorded (dry run) or sent effectively once through the ledger (live).
"""

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pyarrow as pa
from sqlalchemy.engine import Connection

from cdp_assets import settings
from cdp_assets.activation import ledger
from cdp_assets.activation.config import Destination
from cdp_assets.activation.egress import dead_letter_rows, egress_preamble, record_dry_run
from cdp_assets.activation.plan import (
    SAFE_CHECK,
    asset_args,
    credentials_result,
    sample,
    tally_metadata,
)
from cdp_assets.activation.platforms.google_ads import GoogleAdsConversions
from cdp_assets.activation.platforms.meta import MetaCapi
from cdp_assets.activation.platforms.pinterest import PinterestConversions
from cdp_assets.activation.platforms.tiktok import TikTokEvents
from cdp_assets.activation.queries import CONVERSIONS_SQL
from cdp_assets.activation.safety import body_problems, match_quality
from cdp_assets.activation.sender import DestinationStopped, Item, Sender
from cdp_assets.activation.transport import Request, RetryPolicy
from cdp_assets.resources.state import StateTable
from cdp_assets.resources.warehouse import WarehouseResource

CHANNELS = {"meta_capi": MetaCapi, "google_ads_conversions": GoogleAdsConversions, "tiktok_events": TikTokEvents,
            "pinterest_conversions": PinterestConversions}
OPERATIONS = {"meta_capi": "track_events", "google_ads_conversions": "upload_click_conversions",
              "pinterest_conversions": "send_events"}
UPSTREAM = ("core/conversions", "core/unified_profiles", "core/consent", "core/suppressed_profiles",
            "core/deletion_pending_profiles")
PAGE = 10_000  # conversions built per page; events sent per page of the send loop
OUTBOX = StateTable(
    "activation.outbox",
    "CREATE TABLE activation.outbox (destination VARCHAR, record_key VARCHAR, operation VARCHAR, "
    "partition_key VARCHAR, payload VARCHAR, problem VARCHAR, match_quality DOUBLE, planned_at TIMESTAMP)",
)
# Keyset paging through the outbox in (operation, record_key) order.
AFTER = "(o.operation > :op OR (o.operation = :op AND o.record_key > :key))"
DUE_SQL = f"""
    SELECT o.record_key, o.operation, o.partition_key, o.payload, l.attempts
    FROM activation.outbox AS o
    JOIN activation.sync_ledger AS l ON l.destination = o.destination AND l.record_key = o.record_key
    WHERE o.destination = :d AND o.partition_key IN ({{days}}) AND o.problem IS NULL
      AND l.status IN ('pending', 'in_flight', 'failed') AND {AFTER}
    ORDER BY o.operation, o.record_key
    LIMIT :n"""
PLANNED_SQL = f"""
    SELECT o.operation, o.record_key, o.payload FROM activation.outbox AS o
    WHERE o.destination = :d AND o.partition_key = :p AND o.problem IS NULL AND {AFTER}
    ORDER BY o.operation, o.record_key LIMIT :n"""


@dataclass
class Plan:
    """What building the outbox found: counts, body problems, match quality and one sample payload."""

    counts: Counter = field(default_factory=Counter)
    problems: Counter = field(default_factory=Counter)
    quality: list[float] = field(default_factory=lambda: [0.0, 0.0])  # sum, count
    samples: list[Any] = field(default_factory=list)


def _days(keys: list[str]) -> str:
    return ", ".join(f"'{k}'" for k in keys)  # partition keys are dates the partitions definition produced


def _page(destination: Destination, channel: Any, rows: list, partition_key: str, now: datetime,
          plan: Plan) -> pa.Table:
    records = []
    for row in rows:
        plan.counts["conversions"] += 1
        if row["suppressed"]:
            plan.counts["filtered_by_suppression"] += 1
        elif row["deletion_pending"]:
            plan.counts["filtered_by_deletion"] += 1
        elif not (row["consented"] and destination.consent_purpose):
            plan.counts["filtered_by_consent"] += 1
        else:
            event = channel.event(row)
            problem = channel.problem(event, now)
            quality = match_quality(event)
            if problem is None:
                plan.quality[0] += quality
                plan.quality[1] += 1
                if not plan.samples:
                    plan.samples.append(event)
            records.append({"record_key": event.get("event_id") or event.get("orderId"),
                            "operation": OPERATIONS.get(destination.platform) or channel.source(row),
                            "payload": json.dumps(event, ensure_ascii=False, separators=(",", ":")),
                            "problem": problem, "match_quality": quality, "event": event})
    valid = [r["event"] for r in records if r["problem"] is None]
    plan.problems.update(body_problems([{"data": valid}], []))
    plan.counts["events_prepared"] += len(valid)
    plan.counts["dead_letters"] += len(records) - len(valid)
    return pa.Table.from_pylist([{k: v for k, v in r.items() if k != "event"} | {"partition_key": partition_key}
                                 for r in records], schema=pa.schema([
        ("record_key", pa.string()), ("operation", pa.string()), ("payload", pa.string()), ("problem", pa.string()),
        ("match_quality", pa.float64()), ("partition_key", pa.string())]))


def build_outbox(warehouse: WarehouseResource, destination: Destination, channel: Any, partitions_def: Any,
                 partition_keys: list[str], now: datetime) -> Plan:
    """Replace the destination's outbox rows for these days with their events, a page at a time."""
    plan = Plan()
    with warehouse.begin() as conn:
        OUTBOX.ensure(warehouse, conn)
        warehouse.run(conn, f"DELETE FROM activation.outbox WHERE destination = :d AND partition_key IN "
                            f"({_days(partition_keys)})", {"d": destination.name})
        for partition_key in partition_keys:
            window = partitions_def.time_window_for_partition_key(partition_key)
            params = {"start": window.start.astimezone(UTC).replace(tzinfo=None),
                      "end": window.end.astimezone(UTC).replace(tzinfo=None),
                      "purpose": destination.consent_purpose or ""}
            warehouse.run(conn, "DROP TABLE IF EXISTS _cdp_day")
            warehouse.run(conn, f"CREATE TEMP TABLE _cdp_day AS SELECT row_number() OVER (ORDER BY order_id) AS rn, "
                                f"* FROM ({CONVERSIONS_SQL}) AS c", params)
            total = int(warehouse.scalar(conn, "SELECT count(*) FROM _cdp_day"))
            for start in range(0, total, PAGE):
                rows = warehouse.run(conn, "SELECT * FROM _cdp_day WHERE rn > :a AND rn <= :b ORDER BY rn",
                                     {"a": start, "b": start + PAGE}).mappings().all()
                table = _page(destination, channel, rows, partition_key, now, plan)
                if table.num_rows:
                    warehouse.append_arrow(conn, OUTBOX.name, table,
                                           {"destination": destination.name, "planned_at": ledger.now()})
        repeated = warehouse.scalar(conn, f"SELECT count(*) - count(DISTINCT record_key) FROM activation.outbox "
                                          f"WHERE destination = :d AND partition_key IN "
                                          f"({_days(partition_keys)})", {"d": destination.name})
    if repeated:
        plan.problems["event ids repeated in one plan"] = int(repeated)
    return plan


def _outbox_requests(warehouse: WarehouseResource, conn: Connection, destination: Destination, channel: Any,
                     partition_key: str) -> Iterator[Request]:
    """The requests of one day's plan, read back from the outbox a batch at a time."""
    last = ("", "")
    while True:
        rows = warehouse.run(conn, PLANNED_SQL, {"d": destination.name, "p": partition_key, "op": last[0],
                                                 "key": last[1], "n": channel.batch_limit}).all()
        if not rows:
            return
        last = (rows[-1][0], rows[-1][1])
        for operation in dict.fromkeys(r[0] for r in rows):
            payloads = [json.loads(r[2]) for r in rows if r[0] == operation]
            yield channel.request(operation, payloads, True)


def _record_plan(warehouse: WarehouseResource, destination: Destination, channel: Any, partition_keys: list[str],
                 run_id: str) -> int:
    recorded = 0
    with warehouse.begin() as conn:
        for partition_key in partition_keys:
            dead = warehouse.run(conn, "SELECT record_key, problem FROM activation.outbox WHERE destination = :d "
                                       "AND partition_key = :p AND problem IS NOT NULL ORDER BY record_key",
                                 {"d": destination.name, "p": partition_key}).all()
            requests = _outbox_requests(warehouse, conn, destination, channel, partition_key)
            recorded += record_dry_run(warehouse, conn, destination.name, partition_key, run_id, requests,
                                       [tuple(r) for r in dead])
    return recorded


def _send(warehouse: WarehouseResource, destination: Destination, channel: Any, partition_keys: list[str],
          run_id: str, policy: RetryPolicy) -> dict[str, Any]:
    days = {"d": destination.name}
    in_days = f"partition_key IN ({_days(partition_keys)})"
    with warehouse.begin() as conn:
        ledger.ensure_tables(warehouse, conn)
        ledger.plan_from(warehouse, conn, destination.name, run_id, f"SELECT record_key, operation, partition_key "
                         f"FROM activation.outbox WHERE destination = :d AND {in_days}", days)
        # A record the platform would refuse is dead-lettered once; a record already sent stays sent.
        refused = warehouse.run(conn, f"""
            SELECT o.partition_key, o.record_key, o.problem, l.operation, l.attempts
            FROM activation.outbox AS o JOIN activation.sync_ledger AS l
              ON l.destination = o.destination AND l.record_key = o.record_key
            WHERE o.destination = :d AND o.{in_days} AND o.problem IS NOT NULL
              AND l.status IN ('pending', 'in_flight', 'failed')""", days).all()
        ledger.record(warehouse, conn, destination.name, run_id, [
            ledger.Entry(key, op, p, ledger.DEAD_LETTER, attempts, problem)
            for p, key, problem, op, attempts in refused])
        dead_letter_rows(warehouse, conn, destination.name, run_id, [(p, key, problem)
                                                                     for p, key, problem, _, _ in refused])
        already = warehouse.scalar(conn, f"""
            SELECT count(*) FROM activation.outbox AS o JOIN activation.sync_ledger AS l
              ON l.destination = o.destination AND l.record_key = o.record_key
            WHERE o.destination = :d AND o.{in_days} AND l.status = 'sent'""", days)
    sender = Sender(warehouse, destination.name, channel, run_id, policy)
    last, due = ("", ""), 0
    try:
        while True:
            with warehouse.begin() as conn:
                rows = warehouse.run(conn, DUE_SQL.format(days=_days(partition_keys)),
                                     {**days, "op": last[0], "key": last[1], "n": PAGE}).all()
            if not rows:
                break
            last = (rows[-1][1], rows[-1][0])
            due += len(rows)
            for operation in dict.fromkeys(r[1] for r in rows):
                page = [r for r in rows if r[1] == operation]
                sender.deliver(operation, [Item(key, json.loads(payload), p) for key, _, p, payload, _ in page],
                               channel.batch_limit, {key: attempts for key, _, _, _, attempts in page})
    except DestinationStopped as stopped:
        raise dg.Failure(str(stopped), metadata=tally_metadata(sender.tally)) from None
    return {"records_already_sent": int(already), "records_due": due, "records_dead_lettered_locally": len(refused),
            **tally_metadata(sender.tally)}


def conversions_asset(destination: Destination, partitions_def: dg.PartitionsDefinition,
                      gates: list[dg.AssetCheckKey], policy: RetryPolicy) -> dg.AssetsDefinition:
    @dg.asset(**asset_args(destination, UPSTREAM), partitions_def=partitions_def,
              backfill_policy=dg.BackfillPolicy.single_run())
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        """Conversions sent to an ad platform's Conversions API: one event per consented order of the day.

        Identifiers are normalized and hashed per the platform's rules; events it would refuse (too old,
        missing required fields, nothing to match on, bad currency) are dead-lettered with the reason. Dry
        run (the default) records every request exactly as it would be sent; live sends each event once.
        """
        egress_preamble(context, gates, destination.consent_purpose)
        mode = settings.egress_mode()
        channel = CHANNELS[destination.platform](destination)
        missing = channel.missing()
        keys = list(context.partition_keys)
        plan = build_outbox(warehouse, destination, channel, partitions_def, keys, datetime.now(UTC))
        safety = dg.AssetCheckResult(check_name=SAFE_CHECK, passed=not plan.problems, metadata={
            "events_checked": plan.counts["events_prepared"], "problems": dg.MetadataValue.json(dict(plan.problems))})
        quality_sum, quality_n = plan.quality
        metadata: dict[str, Any] = {
            "mode": mode, "days": len(keys),
            **{k: plan.counts[k] for k in ("conversions", "filtered_by_suppression", "filtered_by_deletion",
                                           "filtered_by_consent", "events_prepared", "dead_letters")},
            "predicted_match_quality": round(quality_sum / quality_n, 2) if quality_n else 0.0,
            "credentials": f"missing {', '.join(missing)}" if missing else "configured", **sample(plan.samples),
        }
        checks = [safety, credentials_result(missing, mode)]
        if not safety.passed:
            context.log.error(f"{destination.name}: outbound bodies failed {SAFE_CHECK}; nothing recorded or sent")
        elif mode == "dry_run":
            metadata["requests_prepared"] = _record_plan(warehouse, destination, channel, keys, context.run.run_id)
        elif missing:
            context.log.warning(f"{destination.name}: CDP_EGRESS_MODE=live but {', '.join(missing)} not set; "
                                "this destination is skipped and nothing is sent")
        else:
            metadata.update(_send(warehouse, destination, channel, keys, context.run.run_id, policy))
        return dg.MaterializeResult(metadata=metadata, check_results=checks)

    return _asset
