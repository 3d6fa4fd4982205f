"""Egress assets: conversions and audience membership prepared for Meta, consent enforced at send time."""


from datetime import UTC, datetime

import dagster as dg
from sqlalchemy.engine import Connection

from cdp_assets import settings
from cdp_assets.activation.config import AudienceSync, Destination
from cdp_assets.activation.egress import PreparedRequest, egress_preamble, record_dry_run
from cdp_assets.activation.meta import (
    CAPI_BATCH_LIMIT,
    MetaSettings,
    audience_bodies,
    audience_row,
    events_body,
    purchase_event,
    purchase_problem,
    session_id,
)
from cdp_assets.resources.warehouse import WarehouseResource

# Across a profile's contacts the latest consent record per purpose wins; no record is no consent.
LATEST_CONSENT = """
consent AS (
    SELECT profile_id, granted,
           row_number() OVER (PARTITION BY profile_id ORDER BY ts DESC, contact_id DESC) AS recency
    FROM core.consent WHERE purpose = :purpose
)"""
CONVERSIONS_SQL = f"""
WITH {LATEST_CONSENT}
SELECT c.order_id, c.contact_id, c.order_ts, c.value, c.currency, c.action_source, c.client_ip, c.user_agent,
       c.fbc, c.fbp, c.event_source_url, c.product_ids,
       coalesce(c.email, p.email) AS email, coalesce(c.phone_e164, p.phone_e164) AS phone_e164,
       p.first_name, p.last_name, p.city, p.state, p.postal_code, p.country,
       coalesce(k.granted, FALSE) AS consented,
       c.profile_id IN (SELECT profile_id FROM core.suppressed_profiles) AS suppressed
FROM core.conversions AS c
JOIN core.unified_profiles AS p ON p.profile_id = c.profile_id
LEFT JOIN consent AS k ON k.profile_id = c.profile_id AND k.recency = 1
WHERE c.order_ts >= :start AND c.order_ts < :end
ORDER BY c.order_id
"""
MEMBERS_SQL = f"""
WITH {LATEST_CONSENT},
latest AS (SELECT max(snapshot_ts) AS snapshot_ts FROM audiences.snapshots WHERE audience = :audience)
SELECT m.profile_id, p.email, p.phone_e164, p.first_name, p.last_name, p.city, p.state, p.postal_code, p.country,
       coalesce(k.granted, FALSE) AS consented, CAST(m.snapshot_ts AS DATE) AS snapshot_date,
       m.profile_id IN (SELECT profile_id FROM core.suppressed_profiles) AS suppressed
FROM audiences.memberships AS m
JOIN latest AS l ON l.snapshot_ts = m.snapshot_ts
JOIN core.unified_profiles AS p ON p.profile_id = m.profile_id
LEFT JOIN consent AS k ON k.profile_id = m.profile_id AND k.recency = 1
WHERE m.audience = :audience
ORDER BY m.profile_id
"""


def _placeholder_note(meta: MetaSettings, missing: list[str]) -> dict[str, str]:
    if not missing:
        return {"credentials": "configured"}
    return {"credentials": f"missing {', '.join(missing)}: dry-run plan built with placeholder ids"}


def _prepare_day(
    warehouse: WarehouseResource, conn: Connection, destination: Destination, meta: MetaSettings,
    window: dg.TimeWindow, now: datetime, partition_key: str, run_id: str,
) -> dict[str, int]:
    bounds = {"start": window.start.astimezone(UTC).replace(tzinfo=None),
              "end": window.end.astimezone(UTC).replace(tzinfo=None),
              "purpose": destination.consent_purpose or ""}
    rows = [r._asdict() for r in warehouse.run(conn, CONVERSIONS_SQL, bounds)]
    sendable = [r for r in rows if not r["suppressed"]]
    consented = [r for r in sendable if r["consented"] and destination.consent_purpose]
    events, dead = [], []
    for row in consented:
        event = purchase_event(row)
        problem = purchase_problem(event, now, destination.max_event_age_days or 7)
        if problem:
            dead.append((row["order_id"], problem))
        else:
            events.append(event)
    requests = [
        PreparedRequest("track_events", "POST", meta.events_url(),
                        events_body(events[i:i + CAPI_BATCH_LIMIT], meta.test_event_code),
                        len(events[i:i + CAPI_BATCH_LIMIT]))
        for i in range(0, len(events), CAPI_BATCH_LIMIT)
    ]
    record_dry_run(warehouse, conn, destination.name, partition_key, run_id, requests, dead)
    return {"conversions": len(rows), "filtered_by_suppression": len(rows) - len(sendable),
            "filtered_by_consent": len(sendable) - len(consented),
            "events_prepared": len(events), "dead_letters": len(dead), "requests_prepared": len(requests)}


def _egress_asset_args(destination: Destination, *upstream: str) -> dict:
    """What every egress asset declares: its key, group, owners, icons, lineage and the destination's pool."""
    return {
        "key": ["activation", destination.name],
        "group_name": "activation",
        "kinds": {"python", "meta"},
        "owners": ["team:data-eng"],
        "deps": [dg.AssetKey(key.split("/")) for key in upstream],
        "pool": destination.name,
    }


def meta_capi_asset(
    destination: Destination, partitions_def: dg.PartitionsDefinition, gates: list[dg.AssetCheckKey]
) -> dg.AssetsDefinition:
    @dg.asset(
        **_egress_asset_args(destination, "core/conversions", "core/unified_profiles", "core/consent",
                                "core/suppressed_profiles"),
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        """Purchase events for Meta's Conversions API, one per consented conversion of the day.

        Identifiers are hashed per Meta's rules; events Meta would reject (too old, missing required
        website fields, nothing to match on) are dead-lettered with the reason instead of sent.
        """
        egress_preamble(context, settings.egress_mode(), gates, destination.consent_purpose)
        meta = MetaSettings.from_env()
        now = datetime.now(UTC)
        totals = {"conversions": 0, "filtered_by_suppression": 0, "filtered_by_consent": 0, "events_prepared": 0,
                  "dead_letters": 0, "requests_prepared": 0}
        # A backfill of many days runs as one step; each day keeps its own plan, replaced on re-run.
        with warehouse.begin() as conn:
            for partition_key in context.partition_keys:
                window = partitions_def.time_window_for_partition_key(partition_key)
                counts = _prepare_day(warehouse, conn, destination, meta, window, now, partition_key,
                                      context.run.run_id)
                totals = {k: totals[k] + counts[k] for k in totals}
        return dg.MaterializeResult(metadata={
            **totals, "days": len(context.partition_keys), "mode": "dry_run",
            **_placeholder_note(meta, [] if meta.pixel_id else ["META_PIXEL_ID"]),
        })

    return _asset


def meta_audience_asset(
    destination: Destination, syncs: list[AudienceSync], gates: list[dg.AssetCheckKey]
) -> dg.AssetsDefinition:
    audiences = [f"audiences/{s.audience}" for s in syncs]

    @dg.asset(**_egress_asset_args(destination, *audiences, "core/unified_profiles", "core/consent",
                                     "core/suppressed_profiles"))
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        """Audience members added to Meta Custom Audiences (multi-key schema, hashed), consented members only.

        One upload session per audience and snapshot day, in batches of at most 10,000 rows.
        """
        egress_preamble(context, settings.egress_mode(), gates, destination.consent_purpose)
        meta = MetaSettings.from_env()
        today = datetime.now(settings.timezone()).date().isoformat()
        requests, dead, metadata = [], [], {}
        with warehouse.begin() as conn:
            for sync in syncs:
                members = [m._asdict() for m in warehouse.run(
                    conn, MEMBERS_SQL, {"audience": sync.audience, "purpose": destination.consent_purpose or ""})]
                sendable = [m for m in members if not m["suppressed"]]
                consented = [m for m in sendable if m["consented"] and destination.consent_purpose]
                rows = []
                for member in consented:
                    row = audience_row(member)
                    if row is None:
                        dead.append((f"{sync.audience}:{member['profile_id']}", "no email or phone to match on"))
                    else:
                        rows.append(row)
                session = session_id(destination.name, sync.audience, today)
                url = meta.audience_users_url(sync.audience_id)
                requests += [PreparedRequest("add_users", "POST", url, body, len(body["payload"]["data"]))
                             for body in audience_bodies(rows, session)]
                metadata[f"{sync.audience}: members"] = len(members)
                metadata[f"{sync.audience}: filtered_by_suppression"] = len(members) - len(sendable)
                metadata[f"{sync.audience}: filtered_by_consent"] = len(sendable) - len(consented)
                metadata[f"{sync.audience}: rows_prepared"] = len(rows)
            record_dry_run(warehouse, conn, destination.name, today, context.run.run_id, requests, dead)
        missing = [f"audience_id for {s.audience}" for s in syncs if not s.audience_id]
        return dg.MaterializeResult(metadata={
            **metadata, "requests_prepared": len(requests), "dead_letters": len(dead), "mode": "dry_run",
            **_placeholder_note(meta, missing),
        })

    return _asset
