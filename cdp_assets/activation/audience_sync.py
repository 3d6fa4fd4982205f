"""Audience egress: one asset per enabled audience destination (Meta Custom Audiences, Google Customer Match).

Each mapped audience's latest snapshot becomes the destination's target list, keyed on the destination's
own match key (its hashed email, else its hashed phone), so a profile merge that keeps the person's
identifiers sends nothing. The diff against what the destination acknowledged (`activation.audience_acks`)
is computed in the warehouse; removes go before adds; `replace` audiences use the platform's replace
session. People removed from the warehouse by a deletion request fall out of the targets and are removed.
"""

import json
import secrets
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import dagster as dg
import pyarrow as pa
from sqlalchemy.engine import Connection

from cdp_assets import settings
from cdp_assets.activation import ledger
from cdp_assets.activation.config import AudienceSync, Destination
from cdp_assets.activation.destinations.google_ads.client import GoogleCustomerMatch
from cdp_assets.activation.destinations.meta.client import MetaAudience
from cdp_assets.activation.egress import egress_preamble, record_dry_run
from cdp_assets.activation.events import identifiers
from cdp_assets.activation.ledger import AUDIENCE_TARGETS, TO_SEND, Entry
from cdp_assets.activation.plan import (
    GatesFor,
    asset_args,
    credentials_result,
    safety_result,
    sample,
    tally_metadata,
    upstream_keys,
)
from cdp_assets.activation.queries import MEMBERS_SQL
from cdp_assets.activation.safety import body_problems
from cdp_assets.activation.sender import DestinationStopped, Item, Sender
from cdp_assets.activation.transport import OK, Request, RetryPolicy
from cdp_assets.privacy.hashing import prepare
from cdp_assets.privacy.pii import sha256_hex
from cdp_assets.resources.warehouse import WarehouseResource

DIFF_SQL = {
    "remove": """SELECT a.match_key, a.identifiers FROM activation.audience_acks AS a
                 WHERE a.destination = :d AND a.audience = :a AND a.match_key NOT IN (
                     SELECT match_key FROM activation.audience_targets WHERE destination = :d AND audience = :a)
                 ORDER BY a.match_key""",
    "add": """SELECT t.match_key, t.identifiers FROM activation.audience_targets AS t
              WHERE t.destination = :d AND t.audience = :a AND t.match_key NOT IN (
                  SELECT match_key FROM activation.audience_acks WHERE destination = :d AND audience = :a)
              ORDER BY t.match_key""",
    "replace": """SELECT match_key, identifiers FROM activation.audience_targets
                  WHERE destination = :d AND audience = :a ORDER BY match_key""",
}


def _targets(warehouse: WarehouseResource, destination: Destination, channel: Any,
             sync: AudienceSync) -> tuple[pa.Table, Counter, list[tuple[str, str]]]:
    """The audience's members as the destination matches them, with the exclusions counted."""
    counts: Counter = Counter()
    rows: dict[str, dict[str, Any]] = {}
    dead = []
    with warehouse.begin() as conn:
        result = warehouse.run(conn, MEMBERS_SQL, {"audience": sync.audience,
                                                   "purpose": destination.consent_purpose or ""})
        names = list(result.keys())
        members = [dict(zip(names, row, strict=True)) for row in result.all()]
    for member in members:
        counts["members"] += 1
        if member["suppressed"]:
            counts["filtered_by_suppression"] += 1
            continue
        if member["deletion_pending"]:
            counts["filtered_by_deletion"] += 1
            continue
        if not (member["consented"] and destination.consent_purpose):
            counts["filtered_by_consent"] += 1
            continue
        hashed = identifiers(channel.hashing, member, channel.fields)
        key = f"em:{hashed['em']}" if "em" in hashed else f"ph:{hashed['ph']}" if "ph" in hashed else None
        if key is None:
            dead.append((f"{sync.audience}:{member['profile_id']}", "no email or phone to match on"))
            continue
        # Two profiles sharing a match key are one person to the platform: the first (lowest id) stands for both.
        rows.setdefault(key, {"match_key": key, "identifiers": json.dumps(channel.row(member["profile_id"], hashed)),
                              "email_sha256": prepare("meta", "em", member["email"]),
                              "phone_sha256": prepare("meta", "ph", member["phone_e164"]),
                              "profile_id": member["profile_id"]})
    counts["targets"] = len(rows)
    table = pa.Table.from_pylist(list(rows.values()), schema=pa.schema([
        ("match_key", pa.string()), ("identifiers", pa.string()), ("email_sha256", pa.string()),
        ("phone_sha256", pa.string()), ("profile_id", pa.string())]))
    return table, counts, dead


def _store_targets(warehouse: WarehouseResource, destination: str, audience: str, table: pa.Table) -> None:
    with warehouse.begin() as conn:
        ledger.ensure_tables(warehouse, conn)
        warehouse.run(conn, "DELETE FROM activation.audience_targets WHERE destination = :d AND audience = :a",
                      {"d": destination, "a": audience})
        if table.num_rows:
            warehouse.append_arrow(conn, AUDIENCE_TARGETS.name, table, {
                "destination": destination, "audience": audience, "computed_at": ledger.now()})


def _operations(warehouse: WarehouseResource, destination: str, sync: AudienceSync) -> dict[str, list[Item]]:
    """The operations that bring the destination in line: removes then adds, or, for a `replace` audience
    that changed, the whole list in a replace session. An unchanged audience sends nothing."""
    def read(conn: Connection, operation: str) -> list[Item]:
        return [Item(f"{sync.audience}:{key}", json.loads(row), "", {"match_key": key})
                for key, row in warehouse.run(conn, DIFF_SQL[operation], {"d": destination, "a": sync.audience})]

    with warehouse.begin() as conn:
        diff = {"remove": read(conn, "remove"), "add": read(conn, "add")}
        if sync.sync_mode == "replace":
            return {"replace": read(conn, "replace")} if any(diff.values()) else {}
    return diff


def _acknowledge(warehouse: WarehouseResource, destination: str, sync: AudienceSync, run_id: str,
                 session_operation: str, next_seq: Callable[[], int]) -> Callable:
    """What a batch the platform accepted changes: `activation.audience_acks` and the upload session's progress,
    committed with the ledger in one transaction."""
    def acked(conn: Connection, operation: str, items: list[Item]) -> None:
        keys = pa.table({"match_key": [i.extra["match_key"] for i in items]})
        params = {"d": destination, "a": sync.audience, "run": run_id, "at": ledger.now(), "o": session_operation,
                  "seq": next_seq()}
        warehouse.run(conn, "CREATE TEMP TABLE IF NOT EXISTS _cdp_acked (match_key VARCHAR)")
        warehouse.run(conn, "DELETE FROM _cdp_acked")
        warehouse.append_arrow(conn, "_cdp_acked", keys)
        warehouse.run(conn, "DELETE FROM activation.audience_acks WHERE destination = :d AND audience = :a "
                            "AND match_key IN (SELECT match_key FROM _cdp_acked)", params)
        if operation == "add":
            warehouse.run(conn, """
                INSERT INTO activation.audience_acks
                SELECT destination, audience, match_key, identifiers, email_sha256, phone_sha256, :at, :run
                FROM activation.audience_targets WHERE destination = :d AND audience = :a
                AND match_key IN (SELECT match_key FROM _cdp_acked)""", params)
        warehouse.run(conn, "UPDATE activation.upload_sessions SET next_batch_seq = :seq, updated_at = :at "
                            "WHERE destination = :d AND audience = :a AND operation = :o AND status = 'open'", params)
    return acked


def _session(warehouse: WarehouseResource, destination: str, sync: AudienceSync, operation: str, total: int,
             run_id: str, created: str | None = None) -> tuple[str, int, bool]:
    """The open upload session of this audience and operation, resumed after a crash, or a new one."""
    params = {"d": destination, "a": sync.audience, "o": operation}
    with warehouse.begin() as conn:
        found = warehouse.run(conn, "SELECT session_id, next_batch_seq FROM activation.upload_sessions "
                                    "WHERE destination = :d AND audience = :a AND operation = :o AND status = 'open'",
                              params).first()
        if found:
            return str(found[0]), int(found[1]), True
        session_id = created or str(secrets.randbits(62))
        warehouse.run(conn, "INSERT INTO activation.upload_sessions VALUES (:d, :a, :o, :s, 1, :n, 'open', :at, :run)",
                      {**params, "s": session_id, "n": total, "at": ledger.now(), "run": run_id})
    return session_id, 1, False


def _close_session(warehouse: WarehouseResource, destination: str, sync: AudienceSync, operation: str,
                   status: str) -> None:
    with warehouse.begin() as conn:
        warehouse.run(conn, "UPDATE activation.upload_sessions SET status = :s, updated_at = :at WHERE "
                            "destination = :d AND audience = :a AND operation = :o AND status = 'open'",
                      {"d": destination, "a": sync.audience, "o": operation, "s": status, "at": ledger.now()})


def _replace_acks(warehouse: WarehouseResource, destination: str, sync: AudienceSync, run_id: str) -> None:
    params = {"d": destination, "a": sync.audience, "run": run_id, "at": ledger.now()}
    with warehouse.begin() as conn:
        warehouse.run(conn, "DELETE FROM activation.audience_acks WHERE destination = :d AND audience = :a", params)
        warehouse.run(conn, "INSERT INTO activation.audience_acks SELECT destination, audience, match_key, "
                            "identifiers, email_sha256, phone_sha256, :at, :run FROM activation.audience_targets "
                            "WHERE destination = :d AND audience = :a", params)


def _deliver(sender: Sender, warehouse: WarehouseResource, destination: Destination, sync: AudienceSync,
             operation: str, items: list[Item], run_id: str, session: tuple[str, str]) -> bool:
    """Send one operation's items through the ledger; True when none is left for a later run.

    `session` is (session operation, session id). A replace is recorded in the ledger per session, so an
    interrupted replace resumes with what that session has not yet acknowledged.
    """
    today = datetime.now(settings.timezone()).date().isoformat()
    items = [Item(i.key, i.payload, today, i.extra) for i in items]
    recorded_as = f"replace:{session[1]}" if operation == "replace" else operation
    with warehouse.begin() as conn:
        entries = ledger.plan(warehouse, conn, destination.name, run_id,
                              [Entry(i.key, recorded_as, today, "pending", 0) for i in items])
    due = [i for i in items if entries[i.key].status in TO_SEND]
    channel = sender.channel
    next_seq = (lambda: channel.session["batch_seq"]) if isinstance(channel, MetaAudience) else (lambda: 1)
    acked = _acknowledge(warehouse, destination.name, sync, run_id, session[0], next_seq)
    return sender.deliver(operation, due, channel.batch_limit, {i.key: entries[i.key].attempts for i in due},
                          acked, recorded_as, in_order=True)


def _sync_meta(sender: Sender, warehouse: WarehouseResource, destination: Destination, sync: AudienceSync,
               operations: dict[str, list[Item]], run_id: str) -> dict[str, int]:
    channel: MetaAudience = sender.channel
    counts = Counter()
    for operation, items in operations.items():
        if not items:
            continue
        session_id, next_seq, resumed = _session(warehouse, destination.name, sync, operation, len(items), run_id)
        counts["sessions_resumed"] += resumed
        channel.start_session(int(session_id), next_seq, len(items))
        complete = _deliver(sender, warehouse, destination, sync, operation, items, run_id, (operation, session_id))
        if complete:
            _close_session(warehouse, destination.name, sync, operation, "closed")
            if operation == "replace":
                _replace_acks(warehouse, destination.name, sync, run_id)
        counts[f"{operation}_sent"] += len(items) if complete else 0
    return dict(counts)


def _sync_google(sender: Sender, warehouse: WarehouseResource, destination: Destination, sync: AudienceSync,
                 operations: dict[str, list[Item]], run_id: str) -> dict[str, int]:
    channel: GoogleCustomerMatch = sender.channel
    today = datetime.now(settings.timezone()).date().isoformat()
    counts = Counter(_poll_jobs(sender, warehouse, destination, sync, today))
    if not any(operations.values()):
        return dict(counts)
    with warehouse.begin() as conn:
        found = warehouse.run(conn, "SELECT session_id FROM activation.upload_sessions WHERE destination = :d "
                                    "AND audience = :a AND operation = 'job' AND status = 'open'",
                              {"d": destination.name, "a": sync.audience}).first()
    if found:
        channel.job = str(found[0])
        counts["jobs_resumed"] += 1
    else:
        reply = sender.call(channel.create_job(), today)
        if reply.kind != OK or not reply.data.get("resourceName"):
            raise dg.Failure(f"{destination.name}: could not create an offline user data job: {reply.message}")
        channel.job = reply.data["resourceName"]
        _session(warehouse, destination.name, sync, "job", sum(map(len, operations.values())), run_id, channel.job)
        if "replace" in operations:
            removed = sender.call(channel.remove_all(), today)
            if removed.kind != OK:
                raise dg.Failure(f"{destination.name}: removeAll refused: {removed.message}")
    complete = all([_deliver(sender, warehouse, destination, sync, op, items, run_id, ("job", channel.job))
                    for op, items in operations.items()])
    if complete:
        ran = sender.call(channel.run_job(), today)
        if ran.kind == OK:
            _close_session(warehouse, destination.name, sync, "job", "running")
            counts["jobs_started"] += 1
            if "replace" in operations:
                _replace_acks(warehouse, destination.name, sync, run_id)
    return dict(counts)


def _poll_jobs(sender: Sender, warehouse: WarehouseResource, destination: Destination, sync: AudienceSync,
               today: str) -> Counter:
    """Ask, once and without waiting, how earlier jobs went (they take hours); record what Google says."""
    channel: GoogleCustomerMatch = sender.channel
    counts: Counter = Counter()
    with warehouse.begin() as conn:
        running = [r[0] for r in warehouse.run(conn, "SELECT session_id FROM activation.upload_sessions WHERE "
                                                     "destination = :d AND audience = :a AND status = 'running'",
                                               {"d": destination.name, "a": sync.audience})]
    for job in running:
        reply = sender.call(channel.job_status(job), today)
        results = reply.data.get("results") or [{}]
        status = str((results[0].get("offlineUserDataJob") or {}).get("status") or "UNKNOWN")
        counts[f"job_status_{status.lower()}"] += 1
        if status in ("SUCCESS", "FAILED"):
            with warehouse.begin() as conn:
                warehouse.run(conn, "UPDATE activation.upload_sessions SET status = :s, updated_at = :at "
                                    "WHERE destination = :d AND session_id = :j",
                              {"s": status.lower(), "at": ledger.now(), "d": destination.name, "j": job})
    return counts


def _dry_run_requests(channel: Any, destination: Destination, sync: AudienceSync,
                      operations: dict[str, list[Item]]) -> list[Request]:
    requests = []
    google = isinstance(channel, GoogleCustomerMatch)
    if google and any(operations.values()):
        requests.append(channel.create_job())
        if "replace" in operations:
            requests.append(channel.remove_all())
    for operation, items in operations.items():
        if not google:
            # A dry run shows a stable placeholder session id; a live upload draws a fresh one.
            channel.start_session(int(sha256_hex(f"{destination.name}:{sync.audience}")[:15], 16), 1, len(items))
        chunks = [items[i:i + channel.batch_limit] for i in range(0, len(items), channel.batch_limit)]
        requests += [channel.request(operation, [i.payload for i in chunk], n == len(chunks))
                     for n, chunk in enumerate(chunks, start=1)]
    if google and any(operations.values()):
        requests.append(channel.run_job())
    return requests


def audience_sync_asset(destination: Destination, syncs: list[AudienceSync], gates_for: GatesFor,
                        policy: RetryPolicy, dialect: str) -> dg.AssetsDefinition:
    upstream = [*(f"audiences/{s.audience}" for s in syncs), "core/unified_profiles", "core/consent",
                "core/suppressed_profiles", "core/deletion_pending_profiles"]
    gates = gates_for(upstream_keys(upstream))

    @dg.asset(**asset_args(destination, upstream, dialect))
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        """Audience membership kept in step at an ad platform: who joined is added, who left is removed.

        Members are matched on the platform's hashed identifiers and consent is judged again at send time.
        Dry run (the default) records the requests it would send; live sends them once, resuming an
        interrupted upload session where it stopped.
        """
        egress_preamble(context, gates, destination.consent_purpose)
        mode = settings.egress_mode()
        run_id = context.run.run_id
        metadata: dict[str, Any] = {"mode": mode, "records_sent": 0}
        requests, dead, missing, payloads = [], [], set(), []
        plans = []
        for sync in syncs:
            channel = destination.ad_platform.channel(destination, sync.audience_id)
            missing.update(channel.missing())
            if not sync.audience_id:
                missing.add(f"audience_id for {sync.audience}")
            table, counts, sync_dead = _targets(warehouse, destination, channel, sync)
            _store_targets(warehouse, destination.name, sync.audience, table)
            operations = _operations(warehouse, destination.name, sync)
            plans.append((sync, channel, operations))
            dead += sync_dead
            payloads += [i.payload for items in operations.values() for i in items]
            requests += _dry_run_requests(channel, destination, sync, operations)
            metadata.update({f"{sync.audience}: {k}": int(v) for k, v in sorted(counts.items())})
            metadata.update({f"{sync.audience}: {op}s": len(items) for op, items in operations.items()})
        safety = safety_result(body_problems([r.body for r in requests if r.body], [], destination.ad_platform),
                               len(payloads))
        metadata.update({"dagster/row_count": len(payloads), "requests_prepared": len(requests),
                         "dead_letters": len(dead),
                         "credentials": f"missing {', '.join(sorted(missing))}" if missing else "configured",
                         **sample(destination, payloads)})
        checks = [safety, credentials_result(sorted(missing), mode)]
        today = datetime.now(settings.timezone()).date().isoformat()
        if not safety.passed:
            context.log.error(f"{destination.name}: outbound bodies failed {safety.check_name}; nothing sent")
        elif mode == "dry_run":
            with warehouse.begin() as conn:
                record_dry_run(warehouse, conn, destination.name, today, run_id, requests, dead,
                               [s for _, c, _ in plans for s in c.secrets()])
        elif missing:
            context.log.warning(f"{destination.name}: CDP_EGRESS_MODE=live but {', '.join(sorted(missing))} not "
                                "set; this destination is skipped and nothing is sent")
        else:
            tally = Counter()
            for sync, channel, operations in plans:
                sender = Sender(warehouse, destination.name, channel, run_id, policy)
                sync_with = _sync_google if isinstance(channel, GoogleCustomerMatch) else _sync_meta
                try:
                    tally.update(sync_with(sender, warehouse, destination, sync, operations, run_id))
                except DestinationStopped as stopped:
                    raise dg.Failure(str(stopped), metadata=tally_metadata(sender.tally)) from None
                metadata.update({f"{sync.audience}: {k}": v for k, v in tally_metadata(sender.tally).items()})
                metadata["records_sent"] += sender.tally.sent
            metadata.update({k: int(v) for k, v in tally.items()})
        return dg.MaterializeResult(metadata=metadata, check_results=checks)

    return _asset
