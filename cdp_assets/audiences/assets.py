"""Audience assets: each `dbt_like_sql/audiences/<name>.sql` becomes `audiences/<name>` with its snapshot.

The audience's SQL says who qualifies. Consent, suppression and deletion are enforced here, centrally,
for every audience: a profile without the audience's consent purpose, on a suppression list, or named by
an active deletion request is left out of the table and of the snapshot, so it can never be sent, and a
profile that loses consent or is deleted drops out of the next snapshot. Every materialization appends a
snapshot to `audiences.memberships`; size, adds and removes against the previous snapshot are numeric
metadata, plotted in the UI. The diff against what each destination acknowledged belongs to activation.
"""

from datetime import UTC, datetime

import dagster as dg
import sqlglot

from cdp_assets import settings
from cdp_assets.audiences.config import AudienceSettings
from cdp_assets.resources.state import StateTable
from cdp_assets.resources.warehouse import WarehouseResource
from cdp_assets.sql_models import SqlModel, SqlModelError, column_lineage, described_schema, model_metadata

MEMBERSHIPS = StateTable(
    "audiences.memberships",
    "CREATE TABLE audiences.memberships (audience VARCHAR, profile_id VARCHAR, snapshot_date DATE, "
    "snapshot_ts TIMESTAMP)",
)
# One row per snapshot, empty ones included: an audience that empties must not look like its last members.
SNAPSHOTS = StateTable(
    "audiences.snapshots",
    "CREATE TABLE audiences.snapshots (audience VARCHAR, snapshot_ts TIMESTAMP, members BIGINT, added BIGINT, "
    "removed BIGINT)",
)
ENFORCEMENT = [dg.AssetKey(["core", "unified_profiles"]), dg.AssetKey(["core", "suppressed_profiles"]),
               dg.AssetKey(["core", "deletion_pending_profiles"])]


def members_sql(model: SqlModel, audience: AudienceSettings) -> str:
    """Every profile the audience's SQL selects, with the reason it may not be sent (NULL: sendable)."""
    return f"""
WITH selected AS (SELECT DISTINCT profile_id FROM ({model.sql}) AS a)
SELECT s.profile_id,
       CASE
           WHEN s.profile_id IN (SELECT profile_id FROM core.deletion_pending_profiles) THEN 'deletion pending'
           WHEN s.profile_id IN (SELECT profile_id FROM core.suppressed_profiles) THEN 'suppressed'
           WHEN NOT coalesce(p.consent_{audience.purpose}, FALSE) THEN 'no {audience.purpose} consent'
       END AS excluded_reason
FROM selected AS s
LEFT JOIN core.unified_profiles AS p ON p.profile_id = s.profile_id
"""


def check_audience_sql(model: SqlModel) -> None:
    """An audience must select `profile_id`: it is what memberships, exclusions and destinations key on."""
    if "profile_id" not in sqlglot.parse_one(model.sql, read="duckdb").named_selects:
        raise SqlModelError(f"{model.path}: an audience must select a profile_id column")


def audience_asset(model: SqlModel, audience: AudienceSettings, dialect: str) -> dg.AssetsDefinition:
    check_audience_sql(model)

    @dg.asset(
        key=model.key,
        group_name="audiences",
        kinds={"sql", dialect},
        owners=list(model.owners),
        deps=sorted({*model.deps, *ENFORCEMENT}, key=lambda k: k.path),
        code_version=model.code_version,
        description=f"{model.description} Sent to {', '.join(audience.destinations) or 'no destination yet'} "
                    f"({audience.sync_mode}); members need {audience.purpose} consent.",
        metadata=model_metadata(model),
        pool="warehouse",
    )
    def _audience(warehouse: WarehouseResource) -> dg.MaterializeResult:
        taken = datetime.now(UTC).replace(tzinfo=None)
        day = datetime.now(settings.timezone()).date()
        params = {"a": audience.name, "t": taken, "d": day}
        with warehouse.begin() as conn:
            MEMBERSHIPS.ensure(warehouse, conn)
            SNAPSHOTS.ensure(warehouse, conn)
            warehouse.run(conn, "CREATE TEMP TABLE _cdp_members AS " + members_sql(model, audience))
            excluded = dict(warehouse.run(conn, "SELECT excluded_reason, count(*) FROM _cdp_members WHERE "
                                                "excluded_reason IS NOT NULL GROUP BY excluded_reason").fetchall())
            warehouse.replace_table(conn, model.table, f"SELECT a.* FROM ({model.sql}) AS a WHERE a.profile_id IN "
                                                       "(SELECT profile_id FROM _cdp_members "
                                                       "WHERE excluded_reason IS NULL)")
            previous = warehouse.scalar(conn, "SELECT max(snapshot_ts) FROM audiences.snapshots "
                                              "WHERE audience = :a", params)
            warehouse.run(conn, f"INSERT INTO audiences.memberships SELECT DISTINCT :a, profile_id, "
                                f"CAST(:d AS DATE), CAST(:t AS TIMESTAMP) FROM {model.table}", params)
            size = warehouse.row_count(conn, model.table)
            added, removed = warehouse.run(conn, """
                WITH now AS (SELECT profile_id FROM audiences.memberships WHERE audience = :a AND snapshot_ts = :t),
                before AS (SELECT profile_id FROM audiences.memberships WHERE audience = :a AND snapshot_ts = :p)
                SELECT (SELECT count(*) FROM now WHERE profile_id NOT IN (SELECT profile_id FROM before)),
                       (SELECT count(*) FROM before WHERE profile_id NOT IN (SELECT profile_id FROM now))""",
                                           {**params, "p": previous}).one()
            warehouse.run(conn, "INSERT INTO audiences.snapshots VALUES (:a, CAST(:t AS TIMESTAMP), :n, :added, "
                                ":removed)", {**params, "n": size, "added": int(added), "removed": int(removed)})
            schema = described_schema(warehouse, conn, model)
            warehouse.run(conn, "DROP TABLE _cdp_members")
        return dg.MaterializeResult(
            metadata={"dagster/row_count": size, "dagster/table_name": model.table, "dagster/column_schema": schema,
                      "dagster/column_lineage": column_lineage(model), "size": size, "added": int(added),
                      "removed": int(removed),
                      "snapshot_ts": taken.isoformat(), "sync_mode": audience.sync_mode,
                      **{f"excluded: {reason}": int(n) for reason, n in sorted(excluded.items())}},
        )

    return _audience
