"""`cdp-assets preview NAME`: what a sync or an audience would change at each destination, without sending or
writing anything: sizes, adds, changes and removes, the predicted match rate at each ad destination, and five
sample records, redacted as asset metadata is. The figures are computed in the warehouse, like the sync's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection

from cdp_assets.activation.audience_sync import _targets
from cdp_assets.activation.config import AudienceSync, Destination
from cdp_assets.activation.destinations.base import RecordsDestination
from cdp_assets.activation.records import sql
from cdp_assets.activation.records.config import Sync
from cdp_assets.activation.records.run import outbound
from cdp_assets.resources.warehouse import WarehouseResource

SAMPLES = 5
NO_STATE = ("(SELECT CAST(NULL AS VARCHAR) AS sync, CAST(NULL AS VARCHAR) AS record_key, CAST(NULL AS VARCHAR) "
            "AS fingerprint, CAST(NULL AS VARCHAR) AS status WHERE 1 = 0)")
NO_MEMBERS = "(SELECT CAST(NULL AS VARCHAR) AS sync, CAST(NULL AS VARCHAR) AS audience, " \
             "CAST(NULL AS VARCHAR) AS record_key WHERE 1 = 0)"


def _table(warehouse: WarehouseResource, conn: Connection, table: str, empty: str) -> str:
    """The table, or an empty stand-in when no sync has created it yet (a preview creates nothing)."""
    return table if warehouse.table_exists(conn, table) else empty


def preview_sync(warehouse: WarehouseResource, sync: Sync, destination: RecordsDestination) -> dict[str, Any]:
    """The sync's size and its adds, changes, removes and list changes against what the destination holds."""
    params = {"s": sync.name, "purpose": sync.consent_purpose or ""}
    if sync.consent_purpose is None:
        return {"sync": sync.name, "destination": destination.title, "note": "no consent_purpose declared: a run "
                "of this sync sends nothing (fail closed)"}
    with warehouse.begin() as conn:
        state = _table(warehouse, conn, "activation.record_state", NO_STATE)
        targets = f"(SELECT * FROM ({sql.targets_sql(sync)}) AS x)"
        changed = "(s.record_key IS NULL OR s.status <> 'present' OR s.fingerprint <> t.fingerprint)"
        size, invalid, added, updated = warehouse.run(conn, f"""
            SELECT count(*) FILTER (WHERE t.key_rows = 1), count(*) FILTER (WHERE t.key_rows > 1),
                   count(*) FILTER (WHERE t.key_rows = 1 AND s.record_key IS NULL),
                   count(*) FILTER (WHERE t.key_rows = 1 AND s.record_key IS NOT NULL AND {changed})
            FROM {targets} AS t LEFT JOIN {state} AS s ON s.sync = :s AND s.record_key = t.record_key""",
                                                      params).one()
        removed = warehouse.scalar(conn, f"""
            SELECT count(*) FROM {state} AS s WHERE s.sync = :s AND s.status = 'present'
              AND s.record_key NOT IN (SELECT record_key FROM {targets} AS t)""", params)
        result = warehouse.run(conn, f"""
            SELECT t.* FROM {targets} AS t LEFT JOIN {state} AS s ON s.sync = :s AND s.record_key = t.record_key
            WHERE t.key_rows = 1 AND {changed} ORDER BY t.record_key LIMIT {SAMPLES}""", params)
        names = list(result.keys())
        samples = [dict(zip(names, r, strict=True)) for r in result.all()]
        lists = _list_changes(warehouse, conn, sync, targets, params)
    clear = destination.policy(sync).clear
    return {
        "sync": sync.name, "destination": destination.title, "object": sync.object, "mode": sync.mode,
        "size": int(size), "invalid_keys": int(invalid), "added": int(added), "changed": int(updated),
        "removed": int(removed) if sync.on_leave != "nothing" else 0, **lists,
        "samples": [{k: "[redacted]" if k in clear else v for k, v in outbound(sync, row).items()}
                    for row in samples],
    }


def _list_changes(warehouse: WarehouseResource, conn: Connection, sync: Sync, targets: str,
                  params: dict) -> dict[str, int]:
    members = _table(warehouse, conn, "activation.list_members", NO_MEMBERS)
    changes = {}
    for audience, name in sync.lists.items():
        column = sql.audience_columns(sync)[sync.audiences.index(audience)]
        joins = warehouse.scalar(conn, f"""
            SELECT count(*) FROM {targets} AS t WHERE t.key_rows = 1 AND t.{column} AND t.record_key NOT IN (
                SELECT record_key FROM {members} AS k WHERE k.sync = :s AND k.audience = :a)""",
                                 {**params, "a": audience})
        leaves = warehouse.scalar(conn, f"""
            SELECT count(*) FROM {members} AS k WHERE k.sync = :s AND k.audience = :a AND k.record_key NOT IN (
                SELECT record_key FROM {targets} AS t WHERE t.key_rows = 1 AND t.{column})""",
                                  {**params, "a": audience})
        changes[f"list {name!r}: added"] = int(joins)
        changes[f"list {name!r}: removed"] = int(leaves)
    return changes


def preview_audience(warehouse: WarehouseResource, audience: str, destinations: Mapping[str, Destination],
                     syncs: list[AudienceSync], record_syncs: list[Sync]) -> dict[str, Any]:
    """The audience's size, and per ad destination the members it would match, add and remove."""
    with warehouse.begin() as conn:
        if not warehouse.table_exists(conn, "audiences.snapshots"):
            return {"audience": audience, "note": "no snapshot yet: run the day first (`cdp-assets run`)"}
        size = warehouse.scalar(conn, "SELECT coalesce(max(members), 0) FROM audiences.snapshots WHERE audience = :a "
                                      "AND snapshot_ts = (SELECT max(snapshot_ts) FROM audiences.snapshots WHERE "
                                      "audience = :a)", {"a": audience})
        acks = warehouse.table_exists(conn, "activation.audience_acks")
    found: dict[str, Any] = {"audience": audience, "size": int(size or 0), "destinations": {}}
    for sync in (s for s in syncs if s.audience == audience):
        destination = destinations[sync.destination]
        channel = destination.ad_platform.channel(destination, sync.audience_id)
        table, counts, dead = _targets(warehouse, destination, channel, sync)
        targets = set(table.column("match_key").to_pylist())
        with warehouse.begin() as conn:
            held = {k for (k,) in warehouse.run(conn, "SELECT match_key FROM activation.audience_acks WHERE "
                                                      "destination = :d AND audience = :a",
                                                {"d": destination.name, "a": audience})} if acks else set()
        found["destinations"][destination.name] = {
            "sendable": len(targets), "added": len(targets - held), "removed": len(held - targets),
            "predicted_match_rate": round(len(targets) / counts["members"], 3) if counts["members"] else 0.0,
            **{k: int(v) for k, v in sorted(counts.items()) if k.startswith("filtered_by")},
            "no_identifier_to_match": len(dead), "samples": sorted(targets)[:SAMPLES]}
    carried = [s.name for s in record_syncs if audience in s.audiences]
    if carried:
        found["carried_by_syncs"] = carried
    return found
