"""A records sync as an asset (`activation/<sync>`): one per sync YAML, with its own pool, checks, history
and, if the YAML sets `schedule:`, its own schedule, so one destination's schedule or failure never holds
back another's."""

from collections import Counter
from typing import Any

import dagster as dg
from sqlalchemy.engine import Connection

from cdp_assets import settings
from cdp_assets.activation.destinations.base import (
    Call,
    FollowUpClient,
    JobsClient,
    RecordsClient,
    RecordsDestination,
    SetupFailed,
)
from cdp_assets.activation.egress import egress_preamble, record_dry_run
from cdp_assets.activation.plan import (
    CREDENTIALS_CHECK,
    SAFE_CHECK,
    GatesFor,
    credentials_result,
    safety_result,
    tally_metadata,
    upstream_keys,
)
from cdp_assets.activation.records import jobs, run, sql, state
from cdp_assets.activation.records.config import Sync
from cdp_assets.activation.sender import DestinationStopped, Gathered, Item, Sender
from cdp_assets.activation.transport import Reply, RetryPolicy
from cdp_assets.resources.warehouse import WarehouseResource, pool_for


class SyncConfig(dg.Config):
    full_resync: bool = False  # send every eligible record again, whatever the destination acknowledged


def upstream(sync: Sync) -> list[str]:
    keys = [sync.model.replace(".", "/"), "core/consent", "core/suppressed_profiles",
            "core/deletion_pending_profiles", "core/deletion_requests"]
    return [*keys, *(f"audiences/{a}" for a in sync.audiences)]


class _AckedUpserts(Gathered):
    """Upserts the destination accepted, gathered batch by batch and journaled once per page, with the page's
    ledger outcomes; `run.fold` applies the journal to record_state."""

    def __init__(self, sender: Sender, sync: Sync) -> None:
        self.sender, self.sync = sender, sync
        self.rows: list[state.AckedRow] = []
        self.seq = 0

    def gather(self, operation: str, items: list[Item], reply: Reply | None) -> None:
        reply = reply or self.sender.last_reply
        ids = reply.ids if reply else {}
        self.seq += 1
        seq = self.seq
        self.rows += [(seq, i.key, i.extra["fingerprint"], ids.get(i.key), i.extra["profile_id"],
                       i.extra["email_sha256"], i.extra["phone_sha256"]) for i in items]

    def write(self, conn: Connection) -> None:
        rows, self.rows = self.rows, []
        state.journal(self.sender.warehouse, conn, self.sync.name, self.sender.run_id, rows)


def _forgotten(sender: Sender, sync: Sync) -> run.Acked:
    return lambda conn, operation, items: state.forget(sender.warehouse, conn, sync.name, [i.key for i in items])


def _cleared(sender: Sender, sync: Sync) -> run.Acked:
    return lambda conn, operation, items: state.acknowledge(sender.warehouse, conn, sync.name, sender.run_id,
                                                            "cleared", [{"record_key": i.key} for i in items])


def _list_changed(sender: Sender, sync: Sync, audience: str, added: bool) -> run.Acked:
    def acked(conn: Connection, operation: str, items: list[Item]) -> None:
        state.list_changed(sender.warehouse, conn, sync.name, audience, sender.run_id, added,
                           [{"record_key": i.extra["record_key"], "destination_id": i.payload} for i in items])
    return acked


def _keyed_items(rows: list[tuple[str, str]], day: str, operation: str, prefix: str = "") -> list[Item]:
    return [Item(f"{prefix}{key}", destination_id, day, {"recorded_as": operation, "record_key": key})
            for key, destination_id in rows]


def _list_rows(warehouse: WarehouseResource, sync: Sync,
               planned: bool = False) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(audience, list_add | list_remove) -> (record key, destination id) to send."""
    changes = {}
    for audience in sync.lists:
        for operation, query in sql.list_diff_sql(sync, audience, planned).items():
            changes[(audience, operation)] = run.keyed(warehouse, query, {"s": sync.name, "a": audience})
    return changes


def _dry_run(warehouse: WarehouseResource, sync: Sync, destination: RecordsDestination, client: RecordsClient,
             plan: run.Plan, run_id: str, day: str) -> None:
    requests = client.prepare(None)
    list_ids, made = client.list_ids(list(sync.lists.values()), None)
    requests += made
    deleted = run.deletions(warehouse, sync) if destination.deletes else []
    plan.counts["deleted"] = len(deleted)
    requests += run.batches(client, "gdpr_delete", [d for _, d in deleted])
    run.check_changes(warehouse, sync, destination, plan)
    for page in run.pages(warehouse, sync, client, day):
        requests += run.batches(client, "upsert", [i.payload for i in page])
    requests += _leavers(warehouse, sync, client, plan, None, day)
    for operation in _follow_ups(client):
        requests += run.batches(client, operation, [i.payload for i in run.follow_ups(
            warehouse, sync, client, operation, day, planned=True)])
    for (audience, operation), rows in _list_rows(warehouse, sync, planned=True).items():
        plan.counts["list_added" if operation == "list_add" else "list_removed"] += len(rows)
        requests += run.batches(client, f"{operation}:{list_ids[sync.lists[audience]]}", [d for _, d in rows])
    plan.requests = requests
    if not plan.problems:
        with warehouse.begin() as conn:
            record_dry_run(warehouse, conn, sync.name, day, run_id, requests, [], client.secrets())


def _leavers(warehouse: WarehouseResource, sync: Sync, client: RecordsClient, plan: run.Plan,
             sender: Sender | None, day: str) -> list:
    """Records that left the model, handled as `on_leave` says; in a dry run, the requests that would go."""
    if sync.on_leave == "nothing":
        return []
    rows = run.keyed(warehouse, sql.left_sql(sync), {"s": sync.name})
    plan.counts["removed"] = len(rows)
    operation = "clear" if sync.on_leave == "clear" else "delete"
    items = [Item(key, client.left(dest, {}, key) if operation == "clear" else dest, day, {"recorded_as": operation})
             for key, dest in rows]
    if sender is None:
        return run.batches(client, operation, [i.payload for i in items])
    run.deliver(sender, operation, items, _cleared(sender, sync) if operation == "clear" else _forgotten(sender, sync))
    return []


def _follow_ups(client: RecordsClient) -> tuple[str, ...]:
    """The operations the client sends once per record it holds, after writing it (none, for most)."""
    return client.follow_ups() if isinstance(client, FollowUpClient) else ()


def _wait_for_jobs(sender: Sender, sync: Sync, client: JobsClient, call: Call, policy: RetryPolicy,
                   plan: run.Plan) -> None:
    """Read the jobs just submitted a few times, briefly; what is still running is read on the next run."""
    for _ in range(jobs.POLLS_AFTER_SUBMIT):
        if not jobs.open_jobs(sender, sync):
            return
        policy.sleep(min(policy.max_seconds, 2.0))
        plan.counts.update(jobs.settle(sender, sync, client.job_outcome, call))


def _live(context: dg.AssetExecutionContext, warehouse: WarehouseResource, sync: Sync,
          destination: RecordsDestination, client: RecordsClient, policy: RetryPolicy, plan: run.Plan,
          full_resync: bool) -> Sender:
    day = run.today()
    # Safety first, over every change, before anything is sent.
    run.check_changes(warehouse, sync, destination, plan)
    sender = Sender(warehouse, sync.name, client, context.run.run_id, policy, buffered=True)
    if plan.problems:
        return sender
    with sender:
        def call(request: Any) -> Any:
            return sender.call(request, day)

        client.prepare(call)
        list_ids, _ = client.list_ids(list(sync.lists.values()), call)
        if destination.deletes:
            deleted = run.deletions(warehouse, sync)
            plan.counts["deleted"] = len(deleted)
            run.deliver(sender, "gdpr_delete", _keyed_items(deleted, day, "gdpr_delete"), _forgotten(sender, sync))
        if destination.jobs:
            plan.counts.update(jobs.settle(sender, sync, client.job_outcome, call))
        if full_resync:
            run.forget_acknowledgements(sender, sync)
        acked: run.Acked = _AckedUpserts(sender, sync)
        if destination.jobs:
            acked = jobs.submitted(sender, sync, client.job_of, acked)
        confirm = (lambda payloads: client.confirm(payloads, call)) if destination.confirms else None
        try:
            for page in run.pages(warehouse, sync, client, day):
                run.deliver(sender, "upsert", page, acked, confirm)
                if client.parked:
                    break
        finally:  # before the jobs are settled and anything reads the ledger, even when the destination stopped us
            run.fold(sender)
        if destination.jobs:
            _wait_for_jobs(sender, sync, client, call, policy, plan)
        for operation in _follow_ups(client):
            if not client.parked:
                run.deliver(sender, operation, run.follow_ups(warehouse, sync, client, operation, day), None)
        if not client.parked:
            _leavers(warehouse, sync, client, plan, sender, day)
        for (audience, operation), rows in _list_rows(warehouse, sync).items():
            if client.parked:
                break
            plan.counts["list_added" if operation == "list_add" else "list_removed"] += len(rows)
            run.deliver(sender, f"{operation}:{list_ids[sync.lists[audience]]}",
                        _keyed_items(rows, day, operation, f"{audience}:"), _list_changed(
                            sender, sync, audience, operation == "list_add"))
    return sender


def _snapshot(context: dg.AssetExecutionContext, warehouse: WarehouseResource, sync: Sync,
              destination: RecordsDestination, client: RecordsClient, plan: run.Plan, mode: str) -> str:
    """A destination that takes whole snapshots (files): the targets are checked, then written in one piece."""
    run.check_changes(warehouse, sync, destination, plan, sql.targets_table(sync))
    if plan.problems:
        return "unsafe"
    assert destination.snapshot is not None
    plan.counts.update(destination.snapshot(warehouse, sync, mode))
    return mode


def sync_once(context: dg.AssetExecutionContext, warehouse: WarehouseResource, sync: Sync,
              destination: RecordsDestination, policy: RetryPolicy, full_resync: bool) -> dg.MaterializeResult:
    mode = settings.egress_mode()
    client = destination.client(sync)
    missing = client.missing()
    plan = run.Plan()
    metadata: dict[str, Any] = {"mode": mode, "destination": destination.title, "model": sync.model,
                                "sync_mode": sync.mode, "records_sent": 0}
    outcome, parked = mode, None
    if sync.consent_purpose is None:
        context.log.warning(f"{sync.path.name} declares no consent_purpose, so nobody consented to it and nothing "
                            "is prepared (fail closed); declare `marketing`, or `none` for first-party processing")
        outcome = "no_consent_declared"
    else:
        run.build_targets(warehouse, sync, full_resync or sync.full_resync, plan)
        expect = getattr(client, "expect", None)
        if expect is not None:  # a destination that writes large runs another way (Salesforce's Bulk API)
            expect(plan.counts["added"] + plan.counts["changed"])
        if destination.snapshot is not None:
            outcome = _snapshot(context, warehouse, sync, destination, client, plan, mode)
        elif sync.new_rows_only and run.first_run(warehouse, sync) and mode == "live":
            plan.counts["baseline"] = run.baseline(warehouse, sync, context.run.run_id)
            outcome = "baseline"
        elif mode == "dry_run":
            _dry_run(warehouse, sync, destination, client, plan, context.run.run_id, run.today())
        elif missing:
            context.log.warning(f"{sync.name}: CDP_EGRESS_MODE=live but {', '.join(missing)} not set; this sync is "
                                "skipped and nothing is sent")
            outcome = "skipped"
        else:
            with warehouse.begin() as conn:
                parked = state.parked_until(warehouse, conn, sync.name)
            if parked is not None:
                context.log.warning(f"{sync.name}: the destination's daily limit was reached; parked until {parked}")
                outcome = "parked"
            else:
                try:
                    sender = _live(context, warehouse, sync, destination, client, policy, plan,
                                   full_resync or sync.full_resync)
                except (DestinationStopped, SetupFailed) as stopped:
                    raise dg.Failure(f"{sync.name}: {stopped}") from None
                metadata.update(tally_metadata(sender.tally))
                plan.counts.update(sent=sender.tally.sent, failed=sender.tally.failed,
                                   dead_letters=sender.tally.dead_letters)
                outcome = "parked" if client.parked else ("failed" if sender.tally.failed else "ok")
                if client.parked:
                    parked = client.parked_until
                    context.log.warning(f"{sync.name}: {client.parked}; the rest goes on the next run after that")
    if plan.problems:
        context.log.error(f"{sync.name}: outbound records failed {SAFE_CHECK}; nothing sent")
        outcome = "unsafe"
    with warehouse.begin() as conn:
        state.ensure_tables(warehouse, conn)
        state.record_run(warehouse, conn, sync.name, destination.name, context.run.run_id, mode, plan.counts,
                         parked, outcome)
    metadata.update({k: int(plan.counts.get(k, 0)) for k in state.HISTORY_COUNTS})
    # The records the destination is meant to hold: the sync's eligible rows with a usable key.
    metadata["dagster/row_count"] = int(plan.counts.get("targets", 0))
    metadata.update(outcome=outcome, requests_prepared=len(plan.requests),
                    credentials=f"missing {', '.join(missing)}" if missing else "configured")
    if plan.sample:
        metadata["sample_record"] = dg.MetadataValue.json(plan.sample)
    checked = plan.counts["added"] + plan.counts["changed"]
    return dg.MaterializeResult(metadata=metadata, check_results=[
        safety_result(Counter(plan.problems), checked), credentials_result(missing, mode)])


def records_sync_asset(sync: Sync, destination: RecordsDestination, gates_for: GatesFor, policy: RetryPolicy,
                       dialect: str) -> dg.AssetsDefinition:
    key = dg.AssetKey(["activation", sync.name])
    gates = gates_for(upstream_keys(upstream(sync)))
    description = (f"{sync.model} kept in step with {destination.title} {sync.object} ({sync.mode} by "
                   f"{sync.key.column} → {sync.key.field}; rows that leave: {sync.on_leave}). "
                   f"{sync.description} Only added, changed and removed records are sent, found by comparing "
                   "each record's fingerprint with the one the destination last acknowledged. Dry run (the "
                   "default) records the requests; live sends them once.").replace("  ", " ")
    if destination.snapshot is not None:
        description = (f"{sync.model} sent whole to {destination.title} on every live run (one snapshot, keyed "
                       f"by {sync.key.column} → {sync.key.field}). {sync.description} Dry run (the default) "
                       "counts the eligible records and writes nothing.").replace("  ", " ")

    @dg.asset(
        key=key, group_name="activation", owners=["team:data-eng"], description=description,
        kinds={"python", *destination.kinds, dialect}, deps=upstream_keys(upstream(sync)),
        pool=pool_for(dialect, destination.name),
        metadata={"sync_file": str(sync.path.name), "destination": destination.name, "object": sync.object},
        check_specs=[
            dg.AssetCheckSpec(SAFE_CHECK, asset=key, blocking=True,
                              description=f"Every outbound record follows {destination.title}'s PII policy: "
                                          "personal data in clear only in the fields it allows and the sync "
                                          "maps; checked before anything is sent or logged."),
            dg.AssetCheckSpec(CREDENTIALS_CHECK, asset=key,
                              description="The destination's credentials are set; without them a dry run still "
                                          "plans and a live run skips this sync."),
        ],
    )
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
               config: SyncConfig) -> dg.MaterializeResult:
        egress_preamble(context, gates, sync.consent_purpose or "undeclared")
        return sync_once(context, warehouse, sync, destination, policy, config.full_resync)

    return _asset
