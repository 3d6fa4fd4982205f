"""The running UI's GraphQL API, as the UI itself uses it: lineage, a GA4 backfill, automation that is on."""

from datetime import timedelta

import pytest

from cdp_assets import settings
from tests.ui.conftest import GA4_DAYS

pytestmark = pytest.mark.xdist_group("ui")

GA4_KEYS = [["raw", "ga4_daily_traffic"], ["raw", "ga4_transactions"]]
EXPECTED_EDGES = [
    ("raw/crm_orders", "staging/stg_crm_orders"),
    ("raw/ga4_transactions", "marts/order_attribution"),
    ("core/record_profiles", "core/unified_profiles"),
    ("core/unified_profiles", "audiences/purchasers_30d"),
    ("core/conversions", "activation/meta_capi"),
    ("audiences/purchasers_30d", "activation/meta_custom_audiences"),
]


def test_the_asset_graph_has_the_expected_edges(dagster_dev):
    nodes = dagster_dev.graphql("{ assetNodes { assetKey { path } dependencyKeys { path } } }")["assetNodes"]
    edges = {("/".join(d["path"]), "/".join(n["assetKey"]["path"])) for n in nodes for d in n["dependencyKeys"]}

    assert [edge for edge in EXPECTED_EDGES if edge not in edges] == []
    assert len(nodes) == 33


def test_every_schedule_and_sensor_is_running(dagster_dev):
    data = dagster_dev.graphql("""{ repositoriesOrError { ... on RepositoryConnection { nodes {
        schedules { name scheduleState { status } } sensors { name sensorState { status } } } } } }""")
    repository = data["repositoriesOrError"]["nodes"][0]
    states = {s["name"]: s["scheduleState"]["status"] for s in repository["schedules"]}
    states |= {s["name"]: s["sensorState"]["status"] for s in repository["sensors"]}

    assert states == {"daily_job_schedule": "RUNNING", "retention_job_schedule": "RUNNING",
                      "crm_files_sensor": "RUNNING", "run_failure_alerts": "RUNNING"}


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
    materialized = dagster_dev.graphql("""{ assetNodes(assetKeys: [{path: ["raw", "ga4_daily_traffic"]}]) {
        materializedPartitions: assetPartitionStatuses { ... on TimePartitionStatuses {
            ranges { status startKey endKey } } } } }""")["assetNodes"][0]["materializedPartitions"]["ranges"]
    assert {"status": "MATERIALIZED", "startKey": start.isoformat(), "endKey": end.isoformat()} in materialized
