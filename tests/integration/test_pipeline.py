"""The whole graph, raw files to dry-run ad-platform requests, on DuckDB and PostgreSQL."""

import shutil

import dagster as dg
import pytest

from cdp_assets.definitions import build_definitions
from cdp_assets.resources.warehouse import WarehouseResource
from cdp_assets.runs import run_day

# Every table the pipeline writes, with its exact row count for the 300-person sample
# (seed 42, 30 days ending yesterday). Both warehouses must produce exactly these.
EXPECTED_ROWS = {
    "raw.crm_file_ledger": 4,
    "raw.crm_contacts": 335,
    "raw.crm_orders": 302,
    "raw.ga4_daily_traffic": 96,
    "raw.ga4_transactions": 4,
    "raw.ga4_fetches": 2,
    "quarantine.crm_contacts": 1,
    "quarantine.crm_orders": 1,
    "quarantine.crm_contact_fields": 8,
    "quarantine.crm_order_fields": 0,
    "staging.phone_numbers": 256,
    "staging.stg_crm_contacts": 335,
    "staging.stg_crm_orders": 301,
    "staging.exchange_rates": 28,
    "staging.stg_order_values": 301,
    "core.deletion_requests": 3,
    "core.deletion_status": 20,
    "core.suppressions": 4,
    "core.suppressed_profiles": 2,
    "core.record_profiles": 636,
    "core.profile_identifiers": 1482,
    "core.identity_audit": 8,
    "core.unified_profiles": 301,
    "core.consent": 335,
    "core.conversions": 6,
    "core.channel_traits": 3,
    "marts.order_attribution": 301,
    "marts.campaign_performance": 38,
    "audiences.purchasers_30d": 107,
    "audiences.high_value_customers": 13,
    "audiences.lapsed_customers": 0,
    "audiences.memberships": 120,
    "activation.egress_requests": 48,
    "activation.dead_letters": 5,
    "activation.audience_targets": 234,
}


def table_rows(warehouse) -> dict[str, int]:
    with warehouse.begin() as conn:
        return {table: warehouse.row_count(conn, table) for table in EXPECTED_ROWS}


def request_bodies(warehouse) -> list[tuple[str, str]]:
    with warehouse.begin() as conn:
        return [tuple(r) for r in warehouse.run(
            conn, "SELECT destination, request_body FROM activation.egress_requests ORDER BY destination, batch_no, "
                  "request_body")]


@pytest.fixture
def instance():
    return dg.DagsterInstance.ephemeral()


@pytest.fixture(scope="module")
def one_day(module_warehouse, sample_landing):
    """One daily run per backend, shared by the tests below that only read what it wrote."""
    from cdp_assets import settings

    instance = dg.DagsterInstance.ephemeral()
    defs = build_definitions(module_warehouse, str(sample_landing))
    return module_warehouse, defs, instance, run_day(defs, settings.yesterday(), instance, "WARNING")


def test_whole_graph_materializes_with_every_gate_passing(one_day):
    warehouse, _, _, outcome = one_day

    assert outcome.ok, (outcome.failed_steps, outcome.failed_checks)
    assert len(outcome.passed_checks) == 65
    assert table_rows(warehouse) == EXPECTED_ROWS


def test_every_table_materialization_carries_row_count_schema_and_sql_lineage(one_day):
    _, defs, instance, _ = one_day
    graph = defs.resolve_asset_graph()
    missing = []
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.path):
        event = instance.get_latest_materialization_event(key)
        if event is None:  # retention runs on its own schedule
            continue
        metadata = event.asset_materialization.metadata
        wanted = ["dagster/row_count", "dagster/code_references"]
        if "dagster/table_name" in metadata:
            wanted.append("dagster/column_schema")
        if "sql" in graph.get(key).kinds and "python" not in graph.get(key).kinds:
            wanted.append("dagster/column_lineage")
        missing += [f"{key.to_user_string()}: {name}" for name in wanted
                    if name not in metadata and name not in graph.get(key).metadata]

    assert missing == []


def test_rerunning_the_same_day_changes_nothing_but_adds_an_identical_audience_snapshot(
        warehouse, sample_landing, run_day_key, instance):
    defs = build_definitions(warehouse, str(sample_landing))
    run_day(defs, run_day_key, instance, "WARNING")
    first_bodies = request_bodies(warehouse)

    again = run_day(defs, run_day_key, instance, "WARNING")

    assert again.ok
    twice = 2 * EXPECTED_ROWS["audiences.memberships"]
    assert table_rows(warehouse) == EXPECTED_ROWS | {"audiences.memberships": twice}
    assert request_bodies(warehouse) == first_bodies


def test_duckdb_and_postgres_prepare_byte_identical_requests(postgres_url, tmp_path, sample_landing, run_day_key):
    duck = WarehouseResource(url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    postgres = WarehouseResource(url=postgres_url)
    for warehouse in (duck, postgres):
        run_day(build_definitions(warehouse, str(sample_landing)), run_day_key, dg.DagsterInstance.ephemeral(),
                "WARNING")

    assert table_rows(postgres) == table_rows(duck)
    assert request_bodies(postgres) == request_bodies(duck)


def test_every_prepared_request_is_a_dry_run_without_credentials(one_day):
    warehouse = one_day[0]
    with warehouse.begin() as conn:
        rows = warehouse.run(conn, "SELECT destination, status, method, url, record_count FROM "
                                   "activation.egress_requests ORDER BY destination, batch_no").fetchall()

    google, meta, hubspot, klaviyo = ("https://googleads.googleapis.com/v22", "https://graph.facebook.com/v25.0",
                                      "https://api.hubapi.com/crm/v3", "https://a.klaviyo.com/api")
    braze = ("braze_users", "dry_run", "POST", "{BRAZE_REST_ENDPOINT}/users/track")
    property_create = ("hubspot_contacts", "dry_run", "POST", f"{hubspot}/properties/contacts", 0)
    list_create = ("hubspot_contacts", "dry_run", "POST", f"{hubspot}/lists", 0)
    upsert = ("hubspot_contacts", "dry_run", "POST", f"{hubspot}/objects/contacts/batch/upsert")
    # A dry run plans list memberships with placeholders for the lists and contacts HubSpot has not made yet.
    members = ("hubspot_contacts", "dry_run", "PUT", f"{hubspot}/lists/{{LIST_ID:cdp: purchasers_30d}}/memberships/add")
    klaviyo_list = ("klaviyo_profiles", "dry_run", "POST", f"{klaviyo}/lists/", 0)
    salesforce = ("salesforce_contacts", "dry_run", "PATCH",
                  "{SALESFORCE_INSTANCE_URL}/services/data/v62.0/composite/sobjects/Contact/CDP_Profile_Id__c")
    job = ("google_customer_match", "dry_run", "POST", f"{google}/customers/{{GOOGLE_ADS_CUSTOMER_ID}}/"
                                                       "offlineUserDataJobs:create", 0)
    run_job = ("google_customer_match", "dry_run", "POST", f"{google}/{{JOB}}:run", 0)
    assert [tuple(r) for r in rows] == [
        (*braze, 75), (*braze, 75), (*braze, 25),
        # One body per order GA4 cannot have seen whose contact has a GA4 client id.
        ("ga4_measurement_protocol", "dry_run", "POST", "https://www.google-analytics.com/mp/collect?"
         "measurement_id={GA4_MEASUREMENT_ID}&api_secret={GA4_API_SECRET}", 1),
        ("google_ads_conversions", "dry_run", "POST",
         f"{google}/customers/{{GOOGLE_ADS_CUSTOMER_ID}}:uploadClickConversions", 4),
        job, ("google_customer_match", "dry_run", "POST", f"{google}/{{JOB}}:addOperations", 0),
        ("google_customer_match", "dry_run", "POST", f"{google}/{{JOB}}:addOperations", 13), run_job,
        job, ("google_customer_match", "dry_run", "POST", f"{google}/{{JOB}}:addOperations", 104), run_job,
        ("hubspot_contacts", "dry_run", "POST", f"{hubspot}/properties/contacts/groups", 0), *[property_create] * 11,
        list_create, list_create, list_create, (*upsert, 100), (*upsert, 100), (*upsert, 86),
        ("hubspot_contacts", "dry_run", "PUT", f"{hubspot}/lists/{{LIST_ID:cdp: high_value_customers}}/memberships/add",
         12), (*members, 100), (*members, 2),
        klaviyo_list, klaviyo_list, klaviyo_list,
        ("klaviyo_profiles", "dry_run", "POST", f"{klaviyo}/profile-bulk-import-jobs/", 164),
        ("klaviyo_profiles", "dry_run", "POST", f"{klaviyo}/profile-subscription-bulk-create-jobs/", 164),
        ("klaviyo_profiles", "dry_run", "POST", f"{klaviyo}/lists/{{LIST_ID:cdp: high_value_customers}}/relationships/"
         "profiles/", 12),
        ("klaviyo_profiles", "dry_run", "POST", f"{klaviyo}/lists/{{LIST_ID:cdp: purchasers_30d}}/relationships/"
         "profiles/", 102),
        ("meta_capi", "dry_run", "POST", f"{meta}/{{META_PIXEL_ID}}/events", 4),
        ("meta_custom_audiences", "dry_run", "POST", f"{meta}/{{AUDIENCE_ID}}/usersreplace", 13),
        ("meta_custom_audiences", "dry_run", "POST", f"{meta}/{{AUDIENCE_ID}}/users", 104),
        ("pinterest_conversions", "dry_run", "POST",
         "https://api.pinterest.com/v5/ad_accounts/{PINTEREST_AD_ACCOUNT_ID}/events", 4),
        (*salesforce, 200), (*salesforce, 101),
        ("tiktok_events", "dry_run", "POST", "https://business-api.tiktok.com/open_api/v1.3/event/track/", 3),
        ("tiktok_events", "dry_run", "POST", "https://business-api.tiktok.com/open_api/v1.3/event/track/", 1),
    ]


def test_a_day_before_any_crm_file_arrived_succeeds_saying_the_crm_is_not_configured(warehouse, tmp_path,
                                                                                      run_day_key, instance):
    empty_landing = tmp_path / "empty"
    (empty_landing / "crm").mkdir(parents=True)

    outcome = run_day(build_definitions(warehouse, str(empty_landing)), run_day_key, instance, "WARNING")

    assert outcome.ok, (outcome.failed_steps, outcome.failed_checks)
    transform = outcome.runs[-1]
    assert sorted(transform.not_configured) == ["raw/crm_contacts", "raw/crm_orders"]
    assert outcome.skipped_steps == []
    with warehouse.begin() as conn:
        assert warehouse.row_count(conn, "core.unified_profiles") == 0


def test_an_egress_only_run_refuses_while_a_gate_is_failing(warehouse, sample_landing, tmp_path, run_day_key,
                                                            instance):
    landing = tmp_path / "landing"
    shutil.copytree(sample_landing, landing)
    defs = build_definitions(warehouse, str(landing))
    assert run_day(defs, run_day_key, instance, "WARNING").ok
    # A bad row slips into raw outside the loader: the next daily run's gate catches it.
    with warehouse.begin() as conn:
        warehouse.run(conn, "INSERT INTO raw.crm_contacts (contact_id, _source) VALUES (NULL, 'hand-edit')")
    failed = run_day(defs, run_day_key, instance, "WARNING")
    assert failed.failed_checks == ["raw/crm_contacts:crm_contacts_rows_are_complete"]

    egress_only = dg.materialize(
        [defs.resolve_assets_def(dg.AssetKey(["activation", "meta_capi"]))],
        partition_key=run_day_key.isoformat(), instance=instance, raise_on_error=False,
    )

    assert not egress_only.success
    failure = egress_only.get_step_failure_events()[0].step_failure_data.error.message
    assert "egress refused: upstream quality gates are not passing" in failure
    assert "raw/crm_contacts:crm_contacts_rows_are_complete (failed in run" in failure


def test_a_destination_without_a_consent_purpose_prepares_nothing(warehouse, sample_landing, run_day_key, instance):
    from cdp_assets.activation.config import Destination
    from cdp_assets.activation.conversions import conversions_asset
    from cdp_assets.activation.transport import RetryPolicy
    from cdp_assets.checks.suites import STAGE_GATES
    from cdp_assets.partitions import daily_partitions

    assert run_day(build_definitions(warehouse, str(sample_landing)), run_day_key, instance, "WARNING").ok
    unmapped = Destination("meta_capi", "meta_capi", enabled=True, consent_purpose=None, max_event_age_days=7,
                           event_name="Purchase")
    gates = [g.check_key for g in STAGE_GATES if g.blocking]
    asset = conversions_asset(unmapped, daily_partitions(), lambda _: gates, RetryPolicy(), warehouse.dialect)

    result = dg.materialize([asset], partition_key=run_day_key.isoformat(), instance=instance,
                            resources={"warehouse": warehouse})

    metadata = result.asset_materializations_for_node("activation__meta_capi")[0].metadata
    assert (metadata["conversions"].value, metadata["filtered_by_consent"].value,
            metadata["events_prepared"].value, metadata["requests_prepared"].value) == (6, 6, 0, 0)
