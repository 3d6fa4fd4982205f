"""Conversion egress: one asset per enabled events destination (Meta CAPI, Google Ads, TikTok, Pinterest).

A day's consented conversions become the platform's events; records the platform would refuse are
dead-lettered locally with the reason; the outbound bodies are checked; then the plan is recorded (dry
run) or sent effectively once through the ledger (live).
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import mean
from typing import Any

import dagster as dg

from cdp_assets import settings
from cdp_assets.activation import ledger
from cdp_assets.activation.config import Destination
from cdp_assets.activation.egress import dead_letter_rows, egress_preamble, record_dry_run
from cdp_assets.activation.ledger import DEAD_LETTER, TO_SEND, Entry
from cdp_assets.activation.plan import asset_args, credentials_result, safety_result, sample, tally_metadata
from cdp_assets.activation.platforms.google_ads import GoogleAdsConversions
from cdp_assets.activation.platforms.meta import MetaCapi
from cdp_assets.activation.platforms.pinterest import PinterestConversions
from cdp_assets.activation.platforms.tiktok import TikTokEvents
from cdp_assets.activation.queries import CONVERSIONS_SQL
from cdp_assets.activation.safety import match_quality
from cdp_assets.activation.sender import DestinationStopped, Item, Sender
from cdp_assets.activation.transport import RetryPolicy
from cdp_assets.resources.warehouse import WarehouseResource

CHANNELS = {"meta_capi": MetaCapi, "google_ads_conversions": GoogleAdsConversions, "tiktok_events": TikTokEvents,
            "pinterest_conversions": PinterestConversions}
OPERATIONS = {"meta_capi": "track_events", "google_ads_conversions": "upload_click_conversions",
              "pinterest_conversions": "send_events"}
UPSTREAM = ("core/conversions", "core/unified_profiles", "core/consent", "core/suppressed_profiles",
            "core/deletion_pending_profiles")


@dataclass(frozen=True)
class PlannedEvent:
    key: str
    operation: str
    partition_key: str
    payload: dict[str, Any]
    problem: str | None


def plan_events(warehouse: WarehouseResource, destination: Destination, channel: Any, partitions_def: Any,
                partition_keys: list[str], now: datetime) -> tuple[list[PlannedEvent], dict[str, int]]:
    """Every consented conversion of these days as a platform event, with what the platform would refuse."""
    counts = defaultdict(int)
    planned = []
    with warehouse.begin() as conn:
        for partition_key in partition_keys:
            window = partitions_def.time_window_for_partition_key(partition_key)
            params = {"start": window.start.astimezone(UTC).replace(tzinfo=None),
                      "end": window.end.astimezone(UTC).replace(tzinfo=None),
                      "purpose": destination.consent_purpose or ""}
            for row in warehouse.run(conn, CONVERSIONS_SQL, params).mappings():
                counts["conversions"] += 1
                if row["suppressed"]:
                    counts["filtered_by_suppression"] += 1
                elif row["deletion_pending"]:
                    counts["filtered_by_deletion"] += 1
                elif not (row["consented"] and destination.consent_purpose):
                    counts["filtered_by_consent"] += 1
                else:
                    event = channel.event(row)
                    operation = OPERATIONS.get(destination.platform) or channel.source(row)
                    key = event.get("event_id") or event.get("orderId")
                    planned.append(PlannedEvent(key, operation, partition_key, event, channel.problem(event, now)))
    return planned, dict(counts)


def _batches(channel: Any, events: list[PlannedEvent]) -> list:
    groups = defaultdict(list)
    for event in events:
        groups[(event.partition_key, event.operation)].append(event)
    requests = []
    for (partition_key, operation), group in sorted(groups.items()):
        chunks = [group[i:i + channel.batch_limit] for i in range(0, len(group), channel.batch_limit)]
        for n, chunk in enumerate(chunks, start=1):
            requests.append((partition_key, channel.request(operation, [e.payload for e in chunk], n == len(chunks))))
    return requests


def _send(context: dg.AssetExecutionContext, warehouse: WarehouseResource, destination: Destination, channel: Any,
          planned: list[PlannedEvent], policy: RetryPolicy) -> dict[str, Any]:
    run_id = context.run.run_id
    with warehouse.begin() as conn:
        ledger.ensure_tables(warehouse, conn)
        entries = ledger.plan(warehouse, conn, destination.name, run_id, [
            Entry(p.key, p.operation, p.partition_key, "pending", 0) for p in planned])
        refused = [p for p in planned if p.problem and entries[p.key].status in TO_SEND]
        ledger.record(warehouse, conn, destination.name, run_id, [
            Entry(p.key, p.operation, p.partition_key, DEAD_LETTER, entries[p.key].attempts, p.problem)
            for p in refused])
        dead_letter_rows(warehouse, conn, destination.name, run_id, [(p.partition_key, p.key, p.problem)
                                                                       for p in refused])
    due = [p for p in planned if not p.problem and entries[p.key].status in TO_SEND]
    sender = Sender(warehouse, destination.name, channel, run_id, policy)
    attempts = {p.key: entries[p.key].attempts for p in due}
    by_operation = defaultdict(list)
    for p in due:
        by_operation[p.operation].append(Item(p.key, p.payload, p.partition_key))
    try:
        for operation, items in sorted(by_operation.items()):
            sender.deliver(operation, items, channel.batch_limit, attempts)
    except DestinationStopped as stopped:
        raise dg.Failure(str(stopped), metadata=tally_metadata(sender.tally)) from None
    already = sum(1 for p in planned if entries[p.key].status == "sent")
    return {"records_already_sent": already, "records_due": len(due), "records_dead_lettered_locally": len(refused),
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
        planned, counts = plan_events(warehouse, destination, channel, partitions_def, list(context.partition_keys),
                                      datetime.now(UTC))
        ready = [p for p in planned if not p.problem]
        requests = _batches(channel, ready)
        safety = safety_result([r.body for _, r in requests], [(destination.event_name, p.key) for p in ready])
        qualities = [match_quality(p.payload) for p in ready]
        metadata: dict[str, Any] = {
            "mode": mode, "days": len(context.partition_keys), **counts, "events_prepared": len(ready),
            "dead_letters": len(planned) - len(ready), "requests_prepared": len(requests),
            "predicted_match_quality": round(mean(qualities), 2) if qualities else 0.0,
            "credentials": f"missing {', '.join(missing)}" if missing else "configured",
            **sample([p.payload for p in ready]),
        }
        checks = [safety, credentials_result(missing, mode)]
        if not safety.passed:
            context.log.error(f"{destination.name}: outbound bodies failed {safety.check_name}; "
                              "nothing recorded or sent")
        elif mode == "dry_run":
            with warehouse.begin() as conn:
                for partition_key in context.partition_keys:
                    record_dry_run(warehouse, conn, destination.name, partition_key, context.run.run_id,
                                   [r for p, r in requests if p == partition_key],
                                   [(e.key, e.problem) for e in planned
                                    if e.problem and e.partition_key == partition_key])
        elif missing:
            context.log.warning(f"{destination.name}: CDP_EGRESS_MODE=live but {', '.join(missing)} not set; "
                                "this destination is skipped and nothing is sent")
        else:
            metadata.update(_send(context, warehouse, destination, channel, planned, policy))
        return dg.MaterializeResult(metadata=metadata, check_results=checks)

    return _asset
