"""Conversion egress: one asset per enabled events destination (Meta CAPI, Google Ads, TikTok, Pinterest).

A day's consented conversions become the platform's events in `activation.outbox` (see `outbox.py`);
records the platform would refuse carry the reason and are dead-lettered; every outbound body is checked
while the outbox is built, before anything is recorded or sent. Then the plan is recorded (dry run) or
sent effectively once through the ledger (live), read back from the outbox a page at a time.
"""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from sqlalchemy.engine import Connection

from cdp_assets import settings
from cdp_assets.activation import ledger
from cdp_assets.activation.config import Destination
from cdp_assets.activation.egress import dead_letter_rows, egress_preamble, record_dry_run
from cdp_assets.activation.outbox import build_outbox
from cdp_assets.activation.plan import (
    SAFE_CHECK,
    GatesFor,
    asset_args,
    credentials_result,
    safety_result,
    sample,
    tally_metadata,
    upstream_keys,
)
from cdp_assets.activation.sender import DestinationStopped, Item, Sender
from cdp_assets.activation.transport import Encoded, Request, RetryPolicy, assemble
from cdp_assets.checks.state import closed_gates
from cdp_assets.resources.warehouse import WarehouseResource

UPSTREAM = ("core/conversions", "core/unified_profiles", "core/consent", "core/suppressed_profiles",
            "core/deletion_pending_profiles")
PAGE = 10_000  # events sent per page of the send loop
# Pages of the outbox by the number each row was written with (`seq`): a range scan, however large the day.
PAGE_OF = "o.destination = :d AND o.partition_key IN ({days}) AND o.problem IS NULL AND o.seq > :a AND o.seq <= :b"
DUE_SQL = f"""
    SELECT o.record_key, o.operation, o.partition_key, o.payload, l.attempts
    FROM activation.outbox AS o
    JOIN activation.sync_ledger AS l ON l.destination = o.destination AND l.record_key = o.record_key
    WHERE {PAGE_OF} AND l.status IN ('pending', 'in_flight', 'failed')
    ORDER BY o.seq"""
# The whole page marked in flight, its attempt counted, in one statement before its first request leaves.
IN_FLIGHT_SQL = f"""
    UPDATE activation.sync_ledger SET status = 'in_flight', attempts = attempts + 1, run_id = :run, updated_at = :at
    WHERE destination = :d AND status IN ('pending', 'in_flight', 'failed')
      AND record_key IN (SELECT o.record_key FROM activation.outbox AS o WHERE {PAGE_OF})"""
PLANNED_SQL = """
    SELECT o.operation, o.record_key, o.payload FROM activation.outbox AS o
    WHERE o.destination = :d AND o.partition_key = :p AND o.problem IS NULL AND o.seq > :a AND o.seq <= :b
    ORDER BY o.seq"""


def _days(keys: list[str]) -> str:
    return ", ".join(f"'{k}'" for k in keys)  # partition keys are dates the partitions definition produced


def _outbox_requests(warehouse: WarehouseResource, conn: Connection, destination: Destination, channel: Any,
                     partition_key: str, rows_written: int) -> Iterator[Request]:
    """The requests of one day's plan, read back from the outbox a batch at a time."""
    for start in range(0, rows_written, channel.batch_limit):
        rows = warehouse.run(conn, PLANNED_SQL, {"d": destination.name, "p": partition_key, "a": start,
                                                 "b": start + channel.batch_limit}).all()
        for operation in dict.fromkeys(r[0] for r in rows):
            payloads = [Encoded(r[2]) for r in rows if r[0] == operation]
            yield assemble(lambda records, op=operation: channel.request(op, records, True), payloads)


def _record_plan(warehouse: WarehouseResource, destination: Destination, channel: Any, partition_keys: list[str],
                 run_id: str, rows_written: int) -> int:
    recorded = 0
    with warehouse.begin() as conn:
        for partition_key in partition_keys:
            dead = warehouse.run(conn, "SELECT record_key, problem FROM activation.outbox WHERE destination = :d "
                                       "AND partition_key = :p AND problem IS NOT NULL ORDER BY record_key",
                                 {"d": destination.name, "p": partition_key}).all()
            requests = _outbox_requests(warehouse, conn, destination, channel, partition_key, rows_written)
            recorded += record_dry_run(warehouse, conn, destination.name, partition_key, run_id, requests,
                                       [tuple(r) for r in dead], channel.secrets())
    return recorded


def _send(warehouse: WarehouseResource, destination: Destination, channel: Any, partition_keys: list[str],
          run_id: str, policy: RetryPolicy, rows_written: int) -> dict[str, Any]:
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
            WHERE o.destination = :d AND o.{in_days} AND l.status IN ('sent', 'sent_unconfirmed')""", days)
    sender = Sender(warehouse, destination.name, channel, run_id, policy)
    due = 0
    page_of = _days(partition_keys)
    try:
        with sender:
            for start in range(0, rows_written, PAGE):
                window = {**days, "a": start, "b": start + PAGE}
                with sender.transaction() as conn:
                    rows = warehouse.run(conn, DUE_SQL.format(days=page_of), window).all()
                    if rows:
                        warehouse.run(conn, IN_FLIGHT_SQL.format(days=page_of),
                                      {**window, "run": run_id, "at": ledger.now()})
                due += len(rows)
                for operation in dict.fromkeys(r[1] for r in rows):
                    page = [r for r in rows if r[1] == operation]
                    items = [Item(key, Encoded(payload), p) for key, _, p, payload, _ in page]
                    tries = {key: attempts + 1 for key, _, _, _, attempts in page}
                    if hasattr(channel, "check_first"):
                        items = _checked_first(sender, channel, operation, items, tries)
                    sender.deliver(operation, items, channel.batch_limit, tries, marked=True)
    except DestinationStopped as stopped:
        raise dg.Failure(str(stopped), metadata=tally_metadata(sender.tally)) from None
    return {"records_already_sent": int(already), "records_due": due, "records_dead_lettered_locally": len(refused),
            **tally_metadata(sender.tally)}


def _checked_first(sender: Sender, channel: Any, operation: str, items: list[Item],
                   attempts: dict[str, int]) -> list[Item]:
    """A platform whose 2xx is no receipt (GA4's Measurement Protocol) has some bodies checked by its validation
    server first (`channel.check_first`): those it names are dead-lettered with its messages, those it could not
    be asked about are left failed for the next run, and the rest go on, the checked ones marked `validated`."""
    checked, refused, unasked = channel.check_first(sender.warehouse, items,
                                                    lambda request, item: sender.call(request, item.partition_key))
    with sender.transaction() as conn:
        ledger.record(sender.warehouse, conn, sender.destination, sender.run_id, [
            *(ledger.Entry(i.key, operation, i.partition_key, ledger.DEAD_LETTER, attempts[i.key], reason)
              for i, reason in refused),
            *(ledger.Entry(i.key, operation, i.partition_key, ledger.FAILED, attempts[i.key], reason)
              for i, reason in unasked)])
        dead_letter_rows(sender.warehouse, conn, sender.destination, sender.run_id,
                         [(i.partition_key, i.key, reason) for i, reason in refused])
    sender.tally.dead_letters += len(refused)
    sender.tally.failed += len(unasked)
    for _, reason in refused:
        sender.tally.reasons[reason[:120]] += 1
    return checked


def _to_validate(warehouse: WarehouseResource, destination: Destination, channel: Any, keys: list[str]) -> int:
    """How many of the planned bodies a live run would have the platform's validation server check first."""
    with warehouse.begin() as conn:
        rows = warehouse.run(conn, f"SELECT record_key, payload FROM activation.outbox WHERE destination = :d AND "
                                   f"partition_key IN ({_days(keys)}) AND problem IS NULL ORDER BY seq",
                             {"d": destination.name}).all()
    return channel.would_validate(warehouse, [(str(k), json.loads(p)) for k, p in rows])


def conversions_asset(destination: Destination, partitions_def: dg.PartitionsDefinition, gates_for: GatesFor,
                      policy: RetryPolicy, dialect: str) -> dg.AssetsDefinition:
    platform = destination.ad_platform
    upstream = (*UPSTREAM, *platform.upstream)
    gates, optional_gates = gates_for(upstream_keys(upstream)), gates_for(upstream_keys(platform.optional))

    @dg.asset(**asset_args(destination, (*upstream, *platform.optional), dialect), partitions_def=partitions_def,
              backfill_policy=dg.BackfillPolicy.single_run())
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        """Conversions sent to an ad platform's Conversions API: one event per consented order of the day.

        Identifiers are normalized and hashed per the platform's rules; events it would refuse (too old,
        missing required fields, nothing to match on, bad currency) are dead-lettered with the reason. Dry
        run (the default) records every request exactly as it would be sent; live sends each event once.
        """
        egress_preamble(context, gates, destination.consent_purpose)
        mode = settings.egress_mode()
        channel = destination.ad_platform.channel(destination)
        missing = channel.missing()
        keys = list(context.partition_keys)
        closed = closed_gates(context.instance, [g for g in optional_gates if g not in gates])
        if closed:
            context.log.warning(f"{destination.name}: gates of {', '.join(platform.optional)} are not passing "
                                f"({'; '.join(closed)}); the rows that need them are held, the others go")
        plan = build_outbox(warehouse, destination, partitions_def, keys, datetime.now(UTC), closed)
        safety = safety_result(plan.problems, plan.counts["events_prepared"])
        quality_sum, quality_n = plan.quality
        # Every figure people plot is present on every materialization, 0 when nothing was sent.
        metadata: dict[str, Any] = {
            "mode": mode, "days": len(keys), "dagster/row_count": plan.counts["events_prepared"],
            "records_sent": 0,
            **{k: plan.counts[k] for k in ("conversions", "filtered_by_suppression", "filtered_by_deletion",
                                           "filtered_by_consent", "events_prepared", "dead_letters")},
            "events_held": plan.counts["held"],
            "predicted_match_quality": round(quality_sum / quality_n, 2) if quality_n else 0.0,
            "credentials": f"missing {', '.join(missing)}" if missing else "configured",
            **sample(destination, plan.samples),
        }
        checks = [safety, credentials_result(missing, mode)]
        if not safety.passed:
            context.log.error(f"{destination.name}: outbound bodies failed {SAFE_CHECK}; nothing recorded or sent")
        elif mode == "dry_run":
            metadata["requests_prepared"] = _record_plan(warehouse, destination, channel, keys, context.run.run_id,
                                                         plan.counts["outbox_rows"])
            if hasattr(channel, "would_validate"):
                metadata["events_to_validate"] = _to_validate(warehouse, destination, channel, keys)
        elif missing:
            context.log.warning(f"{destination.name}: CDP_EGRESS_MODE=live but {', '.join(missing)} not set; "
                                "this destination is skipped and nothing is sent")
        else:
            metadata.update(_send(warehouse, destination, channel, keys, context.run.run_id, policy,
                                  plan.counts["outbox_rows"]))
        return dg.MaterializeResult(metadata=metadata, check_results=checks)

    return _asset
