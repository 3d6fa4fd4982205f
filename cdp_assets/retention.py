"""Retention: operational data that holds personal data or grows every day is purged after a set window.

What is purged, and what is kept:
- `activation.egress_requests`: the request and response bodies of rows older than the window are set to
  NULL; the row itself (destination, status, counts, trace of what happened) stays.
- `quarantine.crm_contacts` and `quarantine.crm_orders`, and the fields dropped from accepted rows
  (`quarantine.crm_contact_fields`, `quarantine.crm_order_fields`): rows quarantined before the window are
  deleted.
- `audiences.memberships`: members of snapshots taken before the window are deleted, except each audience's
  latest snapshot, which the next materialization diffs against. `audiences.snapshots` (sizes only) stays.
Each purge appends what it removed to `maintenance.retention_runs`.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from cdp_assets import settings
from cdp_assets.resources.state import StateTable
from cdp_assets.resources.warehouse import WarehouseResource

RETENTION_KEY = dg.AssetKey(["maintenance", "retention_runs"])
RETENTION_RUNS = StateTable(
    "maintenance.retention_runs",
    "CREATE TABLE maintenance.retention_runs (target VARCHAR, window_days INTEGER, cutoff TIMESTAMP, "
    "rows_purged BIGINT, ran_at TIMESTAMP)",
)
# (what, table, the window it follows, the statement that purges before :cutoff)
PURGES = [
    ("request bodies", "activation.egress_requests", "request_bodies",
     "UPDATE activation.egress_requests SET request_body = NULL, response_body = NULL "
     "WHERE created_at < :cutoff AND (request_body IS NOT NULL OR response_body IS NOT NULL)"),
    ("quarantined contacts", "quarantine.crm_contacts", "quarantine",
     "DELETE FROM quarantine.crm_contacts WHERE quarantined_at < :cutoff"),
    ("quarantined orders", "quarantine.crm_orders", "quarantine",
     "DELETE FROM quarantine.crm_orders WHERE quarantined_at < :cutoff"),
    ("quarantined contact fields", "quarantine.crm_contact_fields", "quarantine",
     "DELETE FROM quarantine.crm_contact_fields WHERE quarantined_at < :cutoff"),
    ("quarantined order fields", "quarantine.crm_order_fields", "quarantine",
     "DELETE FROM quarantine.crm_order_fields WHERE quarantined_at < :cutoff"),
    ("membership snapshots", "audiences.memberships", "membership_snapshots",
     # NOT EXISTS over the latest snapshot per audience: an anti-join, where a subquery per row would rescan
     # the snapshots for every member on PostgreSQL.
     "DELETE FROM audiences.memberships WHERE snapshot_ts < :cutoff AND NOT EXISTS (SELECT 1 FROM "
     "(SELECT audience, max(snapshot_ts) AS ts FROM audiences.snapshots GROUP BY audience) AS latest "
     "WHERE latest.audience = audiences.memberships.audience AND latest.ts = audiences.memberships.snapshot_ts)"),
]


def purge(warehouse: WarehouseResource, now: datetime) -> dict[str, int]:
    """Purge everything older than its window as of `now` (naive UTC); rows purged per target."""
    windows = settings.retention_days()
    purged = {}
    with warehouse.begin() as conn:
        warehouse.ensure_schemas(conn, ["maintenance"])
        RETENTION_RUNS.ensure(warehouse, conn)
        for what, table, window, statement in PURGES:
            cutoff = now - timedelta(days=windows[window])
            # A table that was never created (no egress yet, say) has nothing to purge.
            count = warehouse.run(conn, statement, {"cutoff": cutoff}).rowcount \
                if warehouse.table_exists(conn, table) else 0
            purged[what] = max(count, 0)
            warehouse.run(conn, "INSERT INTO maintenance.retention_runs VALUES (:w, :d, :c, :n, :t)",
                          {"w": what, "d": windows[window], "c": cutoff, "n": purged[what], "t": now})
    return purged


def retention_asset(dialect: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=RETENTION_KEY,
        group_name="maintenance",
        kinds={"python", "sql", dialect},
        owners=["team:privacy"],
        pool="warehouse",
        description=__doc__,
        check_specs=[dg.AssetCheckSpec("latest_snapshots_are_kept", asset=RETENTION_KEY,
                                       description="Every audience still has all members of its latest snapshot, "
                                                   "which its next materialization diffs against.")],
    )
    def retention_runs(warehouse: WarehouseResource) -> dg.MaterializeResult:
        """Purges request bodies, quarantined rows and fields, and old audience membership snapshots past their
        windows."""
        now = datetime.now(UTC).replace(tzinfo=None)
        purged = purge(warehouse, now)
        short = shortened_snapshots(warehouse)
        with warehouse.begin() as conn:
            table = warehouse.table_metadata(conn, RETENTION_RUNS.name)
        return dg.MaterializeResult(
            metadata={**table, **{f"purged: {what}": n for what, n in purged.items()},
                      **{f"window_days: {name}": days for name, days in settings.retention_days().items()}},
            check_results=[dg.AssetCheckResult(check_name="latest_snapshots_are_kept", passed=not short,
                                               metadata={"audiences_missing_members": ", ".join(short) or "none"})],
        )

    return retention_runs


def shortened_snapshots(warehouse: WarehouseResource) -> list[str]:
    """Audiences whose latest snapshot has fewer members stored than it counted when it was taken."""
    with warehouse.begin() as conn:
        if not warehouse.table_exists(conn, "audiences.snapshots"):
            return []
        return [row[0] for row in warehouse.run(conn, """
            WITH latest AS (SELECT audience, max(snapshot_ts) AS ts FROM audiences.snapshots GROUP BY audience)
            SELECT s.audience FROM audiences.snapshots AS s JOIN latest AS l
              ON l.audience = s.audience AND l.ts = s.snapshot_ts
            WHERE s.members <> (SELECT count(*) FROM audiences.memberships AS m
                                WHERE m.audience = s.audience AND m.snapshot_ts = s.snapshot_ts)
            ORDER BY 1""").fetchall()]
