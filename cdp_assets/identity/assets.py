"""The identity stage as one Dagster multi-asset: profiles, identifiers, audit, merge log, with its checks."""

import dagster as dg

from cdp_assets.identity.config import IdentityConfig, load_identity_config
from cdp_assets.identity.graph import summarize
from cdp_assets.identity.incremental import run_identity
from cdp_assets.resources.warehouse import WarehouseResource

RECORD_PROFILES_KEY = dg.AssetKey(["core", "record_profiles"])
OUTPUTS = {
    "record_profiles": "Which profile each record (CRM contact or order) belongs to. profile_id is stable "
                       "across runs unless two profiles merge or one splits.",
    "profile_identifiers": "Every identifier (contact id, email, phone, GA client id, fbp, ...) of every profile: "
                           "the keys destinations match on.",
    "identity_audit": "Every identifier link a guard refused (blocked value, over-shared value, per-profile limit), "
                      "with the reason and the profile the record ended in.",
    "identity_edges": "Every record -> identifier edge of the last run, linking or dropped: the graph incremental "
                      "runs restitch from.",
    "profile_merges": "Log of profile merges (an id retired into a survivor) and splits (records leaving a profile), "
                      "per identity run.",
}


class IdentityRunConfig(dg.Config):
    """Launchpad settings of an identity run."""

    full: bool = False  # restitch every record, not only what changed since the last run


def identity_asset(dialect: str, identity: IdentityConfig | None = None) -> dg.AssetsDefinition:
    identity = identity or load_identity_config()
    sources = sorted({dg.AssetKey(s.table.split(".")) for s in identity.sources}, key=lambda k: k.path)
    size_check = dg.AssetCheckSpec(
        "profile_size_within_limit", asset=RECORD_PROFILES_KEY, blocking=True,
        description=f"No profile gathers more than {identity.max_profile_records} records: the signature of an "
                    "over-merge. Blocks audiences and egress.")
    limits_check = dg.AssetCheckSpec(
        "profiles_within_identifier_limits", asset=RECORD_PROFILES_KEY,
        description="No profile holds more values of an identifier type than its max_per_profile once every "
                    "lower-priority link is dropped (for example two user ids on one record).")

    @dg.multi_asset(
        specs=[dg.AssetSpec(["core", name], group_name="core", kinds={"python", "sql", dialect},
                            owners=["team:data-eng"], deps=sources, description=text)
               for name, text in OUTPUTS.items()],
        check_specs=[size_check, limits_check],
        pool="warehouse",
    )
    def identity_graph(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                       config: IdentityRunConfig):
        """Stitch records into people on shared identifiers, with over-merge guards and stable profile ids."""
        with warehouse.begin() as conn:
            run = run_identity(warehouse, conn, identity, context.run.run_id, config.full)
            summarize(warehouse, conn, identity, run)
            for name in OUTPUTS:
                warehouse.analyze(conn, f"core.{name}")
            tables = {name: warehouse.table_metadata(conn, f"core.{name}") for name in OUTPUTS}
        solution = run.solution
        context.log.info(
            f"{run.mode} run: {run.records_restitched} of {run.records} records restitched -> {run.profiles} "
            f"profiles ({run.merges} merges, {run.splits} splits)"
            + (f"; full because {run.reason_for_full}" if run.reason_for_full else ""))
        yield dg.MaterializeResult(asset_key=RECORD_PROFILES_KEY, metadata={
            **tables["record_profiles"], "mode": run.mode, "records_restitched": run.records_restitched,
            "profiles": run.profiles,
            "merges": run.merges, "splits": run.splits, "largest_profile_records": run.largest_profile_records,
            "engine": solution.engine if solution else "none",
            "component_searches": solution.rounds if solution else 0,
        })
        for name in ("profile_identifiers", "identity_edges", "profile_merges"):
            yield dg.MaterializeResult(asset_key=["core", name], metadata=tables[name])
        yield dg.MaterializeResult(asset_key=["core", "identity_audit"], metadata={
            **tables["identity_audit"], **{f"dropped: {reason}": n for reason, n in run.dropped.items()}})
        yield dg.AssetCheckResult(
            check_name=size_check.name, asset_key=RECORD_PROFILES_KEY,
            passed=run.largest_profile_records <= identity.max_profile_records,
            metadata={"largest_profile_records": run.largest_profile_records,
                      "max_profile_records": identity.max_profile_records})
        yield dg.AssetCheckResult(
            check_name=limits_check.name, asset_key=RECORD_PROFILES_KEY, severity=dg.AssetCheckSeverity.WARN,
            passed=not run.profiles_over_limits,
            metadata={"profiles_over_limits": run.profiles_over_limits,
                      "links_dropped_by_limits": solution.limit_drops if solution else 0})

    return identity_graph
