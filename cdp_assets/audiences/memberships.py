"""Daily membership snapshots of every audience (`audiences.memberships`)."""


from datetime import UTC, datetime

import dagster as dg

from cdp_assets import settings
from cdp_assets.resources.state import StateTable
from cdp_assets.resources.warehouse import WarehouseResource

MEMBERSHIPS = StateTable(
    "audiences.memberships",
    "CREATE TABLE audiences.memberships (audience VARCHAR, profile_id VARCHAR, snapshot_date DATE, "
    "snapshot_ts TIMESTAMP)",
)


def memberships_asset(audience_keys: list[dg.AssetKey]) -> dg.AssetsDefinition:
    @dg.asset(
        key=["audiences", "memberships"],
        group_name="audiences",
        kinds={"python", "sql"},
        owners=["team:data-eng"],
        deps=audience_keys,
        pool="warehouse",
    )
    def memberships(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        """Who was in each audience, one snapshot per audience per day (`CDP_TIMEZONE`).

        Re-running on the same day replaces that day's snapshot, so a retry never double-counts.
        """
        today = datetime.now(settings.timezone()).date()
        taken = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        sizes = {}
        with warehouse.begin() as conn:
            MEMBERSHIPS.ensure(warehouse, conn)
            for key in audience_keys:
                audience = key.path[-1]
                params = {"a": audience, "d": today, "t": taken}
                warehouse.run(conn, "DELETE FROM audiences.memberships WHERE audience = :a AND snapshot_date = :d",
                              params)
                warehouse.run(conn, f"INSERT INTO audiences.memberships SELECT DISTINCT :a, profile_id, "
                                    f"CAST(:d AS DATE), CAST(:t AS TIMESTAMP) FROM {'.'.join(key.path)}", params)
                sizes[audience] = warehouse.scalar(
                    conn, "SELECT count(*) FROM audiences.memberships WHERE audience = :a AND snapshot_date = :d",
                    params)
            total = warehouse.row_count(conn, MEMBERSHIPS.name)
        return dg.MaterializeResult(metadata={
            "dagster/row_count": total, "dagster/table_name": MEMBERSHIPS.name,
            **{f"size: {name}": int(size) for name, size in sizes.items()},
        })

    return memberships
