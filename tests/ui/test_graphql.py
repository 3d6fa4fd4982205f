"""The running UI's GraphQL API, as the UI itself uses it: lineage, a GA4 backfill, automation that is on."""

from datetime import timedelta

import pytest

from cdp_assets import settings
from cdp_assets.definitions import build_definitions
from cdp_assets.ingest.ga4_reports import load_reports
from tests.ui.conftest import GA4_DAYS

pytestmark = pytest.mark.xdist_group("ui")

GA4_KEYS = [report.asset_key for report in load_reports()]


def test_the_asset_graph_is_the_one_the_code_defines(dagster_dev):
    graph = build_definitions().resolve_asset_graph()
    defined_assets = {key.to_user_string() for key in graph.get_all_asset_keys()}
    defined_edges = {(parent.to_user_string(), key.to_user_string())
                     for key in graph.get_all_asset_keys() for parent in graph.get(key).parent_keys}

    nodes = dagster_dev.graphql("{ assetNodes { assetKey { path } dependencyKeys { path } } }")["assetNodes"]
    served_assets = {"/".join(n["assetKey"]["path"]) for n in nodes}
    served_edges = {("/".join(d["path"]), "/".join(n["assetKey"]["path"])) for n in nodes for d in n["dependencyKeys"]}

    assert served_assets == defined_assets
    assert served_edges == defined_edges


def test_every_schedule_and_sensor_is_running(dagster_dev):
    defs = build_definitions()
    data = dagster_dev.graphql("""{ repositoriesOrError { ... on RepositoryConnection { nodes {
        schedules { name scheduleState { status } } sensors { name sensorState { status } } } } } }""")
    repository = data["repositoriesOrError"]["nodes"][0]
    states = {s["name"]: s["scheduleState"]["status"] for s in repository["schedules"]}
    states |= {s["name"]: s["sensorState"]["status"] for s in repository["sensors"]}

    assert states == {automation.name: "RUNNING" for automation in [*defs.schedules, *defs.sensors]}


def test_a_partition_range_backfill_of_ga4_succeeds(dagster_dev):
    end = settings.yesterday()
    start = end - timedelta(days=GA4_DAYS - 1)
    launched = dagster_dev.graphql("""
        mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
            __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""",
                                   {"params": {"partitionsByAssets": [
                                       {"assetKey": {"path": key}, "partitions": {
                                           "range": {"start": start.isoformat(), "end": end.isoformat()}}}
                                       for key in GA4_KEYS]}})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched

    backfill = dagster_dev.finished_backfill(launched["backfillId"], "the GA4 backfill")
    assert backfill.status == "COMPLETED_SUCCESS", backfill
    for key in GA4_KEYS:
        ranges = dagster_dev.graphql("""query($key: AssetKeyInput!) { assetNodes(assetKeys: [$key]) {
            assetPartitionStatuses { ... on TimePartitionStatuses { ranges { status startKey endKey } } } } }""",
                                     {"key": {"path": key}})["assetNodes"][0]["assetPartitionStatuses"]["ranges"]
        assert {"status": "MATERIALIZED", "startKey": start.isoformat(), "endKey": end.isoformat()} in ranges, key
