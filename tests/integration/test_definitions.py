"""The code location loads, and its lineage matches the reviewed snapshot (a lineage change is a diff)."""

import json
import os
from pathlib import Path

import dagster as dg

from cdp_assets.definitions import build_definitions

SNAPSHOT = Path(__file__).resolve().parent.parent / "snapshots" / "asset_graph.json"


def graph_snapshot(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {
        key.to_user_string(): {
            "group": graph.get(key).group_name,
            "deps": sorted(parent.to_user_string() for parent in graph.get(key).parent_keys),
            "partitioned": graph.get(key).is_partitioned,
        }
        for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.path)
    }
    checks = sorted(key.to_user_string() for key in graph.asset_check_keys)
    blocking = sorted(key.to_user_string() for key in graph.asset_check_keys
                      if graph.get_check_spec(key).blocking)
    return {"assets": assets, "checks": checks, "blocking_checks": blocking}


def test_definitions_load():
    dg.Definitions.validate_loadable(build_definitions())


def test_asset_graph_matches_snapshot():
    """Set UPDATE_SNAPSHOTS=1 to rewrite the snapshot after an intended lineage change, then review the diff."""
    current = graph_snapshot(build_definitions())
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2) + "\n")
    assert current == json.loads(SNAPSHOT.read_text())


def test_every_asset_has_a_description_owner_and_kind():
    graph = build_definitions().resolve_asset_graph()
    incomplete = [key.to_user_string() for key in graph.get_all_asset_keys()
                  if not (graph.get(key).description and graph.get(key).owners and graph.get(key).kinds)]
    assert incomplete == []


def test_daily_job_and_schedule_exist():
    defs = build_definitions()
    assert defs.resolve_job_def("daily_job").name == "daily_job"
    assert defs.resolve_schedule_def("daily_job_schedule").cron_schedule == "0 6 * * *"


def test_the_schedule_hour_comes_from_cdp_schedule_hour(monkeypatch):
    monkeypatch.setenv("CDP_SCHEDULE_HOUR", "4")
    assert build_definitions().resolve_schedule_def("daily_job_schedule").cron_schedule == "0 4 * * *"


def test_every_schedule_and_sensor_starts_running():
    defs = build_definitions()
    statuses = {s.name: s.default_status for s in [*defs.schedules, *defs.sensors]}
    assert statuses == {"daily_job_schedule": dg.DefaultScheduleStatus.RUNNING,
                        "retention_job_schedule": dg.DefaultScheduleStatus.RUNNING,
                        "crm_files_sensor": dg.DefaultSensorStatus.RUNNING,
                        "run_failure_alerts": dg.DefaultSensorStatus.RUNNING}


def test_retention_runs_on_its_own_schedule_not_in_the_daily_job():
    defs = build_definitions()
    daily = defs.resolve_job_def("daily_job").asset_layer.executable_asset_keys
    retention = defs.resolve_job_def("retention_job").asset_layer.executable_asset_keys
    assert dg.AssetKey(["maintenance", "retention_runs"]) not in daily
    assert retention == {dg.AssetKey(["maintenance", "retention_runs"])}
    assert defs.resolve_schedule_def("retention_job_schedule").cron_schedule == "0 3 * * *"


def test_every_asset_has_at_least_one_check():
    graph = build_definitions().resolve_asset_graph()
    checked = {key.asset_key for key in graph.asset_check_keys}
    assert sorted(k.to_user_string() for k in graph.get_all_asset_keys() - checked) == []


def test_every_hand_off_into_core_audiences_and_activation_is_guarded_by_a_blocking_check():
    """Every asset that an asset of those stages reads from another stage has a blocking check."""
    graph = build_definitions().resolve_asset_graph()
    guarded = {key.asset_key for key in graph.asset_check_keys if graph.get_check_spec(key).blocking}
    unguarded = sorted({parent.to_user_string() for key in graph.get_all_asset_keys()
                        if graph.get(key).group_name in ("core", "audiences", "activation")
                        for parent in graph.get(key).parent_keys
                        if graph.get(parent).group_name != graph.get(key).group_name and parent not in guarded})
    assert unguarded == []


def test_every_asset_carries_the_warehouse_kind():
    graph = build_definitions().resolve_asset_graph()
    assert sorted(k.to_user_string() for k in graph.get_all_asset_keys() if "duckdb" not in graph.get(k).kinds) == []


def test_on_duckdb_every_step_shares_the_warehouse_pool_whichever_run_it_is_in():
    defs = build_definitions()
    pools = {defs.resolve_assets_def(k).node_def.pool for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert pools == {"warehouse"}


def test_on_postgresql_api_steps_keep_their_own_pools(postgres_url):
    from cdp_assets.resources.warehouse import WarehouseResource

    defs = build_definitions(WarehouseResource(url=postgres_url))
    pool = {k.to_user_string(): defs.resolve_assets_def(k).node_def.pool
            for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert (pool["raw/ga4_transactions"], pool["raw/hubspot_extracts"], pool["activation/meta_capi"],
            pool["core/unified_profiles"]) == ("ga4_api", "hubspot", "meta_capi", "warehouse")


def test_partitions_start_on_cdp_start_date(monkeypatch):
    monkeypatch.setenv("CDP_START_DATE", "2026-11-01")
    asset = build_definitions().resolve_assets_def(dg.AssetKey(["raw", "ga4_transactions"]))
    assert asset.partitions_def.get_first_partition_key() == "2026-11-01"


def test_every_job_run_carries_the_warehouse_it_writes(tmp_path):
    from cdp_assets.resources.warehouse import WarehouseResource

    defs = build_definitions(WarehouseResource(url=f"duckdb:///{tmp_path / 'w.duckdb'}"))
    tags = {name: defs.resolve_job_def(name).tags.get("cdp/warehouse")
            for name in ("daily_job", "crm_ingest_job", "retention_job")}
    assert set(tags.values()) == {f"duckdb:{tmp_path / 'w.duckdb'}"}
