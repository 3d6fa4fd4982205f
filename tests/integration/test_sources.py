"""Every source optional and isolated, driven through `cdp-assets run` as users do, on DuckDB and PostgreSQL.

A CRM export alone is a complete deployment; a GA4 property that refuses or runs out of quota fails its own
step and names it, while every conversion and audience change of the day is still prepared; once GA4
recovers, the next run fills the marts and channel traits and nothing is duplicated.
"""

import json
import shutil
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from cdp_assets.cli import main
from cdp_assets.ingest.ga4_reports import METRIC_TYPES
from cdp_assets.resources.warehouse import WarehouseResource
from tests.fakes.ga4 import FakeGA4

REPO = Path(__file__).resolve().parents[2]
# Every destination that prepares requests (the file export writes files, and none in a dry run).
DESTINATIONS = ["braze_users", "google_ads_conversions", "google_customer_match", "hubspot_contacts",
                "klaviyo_profiles", "meta_capi", "meta_custom_audiences", "pinterest_conversions",
                "salesforce_contacts", "tiktok_events"]


@pytest.fixture(params=["duckdb", "postgres"])
def project(request, tmp_path, monkeypatch, sample_landing):
    """A project folder with the repo's dagster.yaml, the sample CRM files and no GA4 configuration or files."""
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    landing = tmp_path / "landing"
    shutil.copytree(sample_landing / "crm", landing / "crm")
    url = (f"duckdb:///{tmp_path / 'warehouse.duckdb'}" if request.param == "duckdb"
           else request.getfixturevalue("postgres_url"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CDP_WAREHOUSE_URL", url)
    monkeypatch.setenv("CDP_LANDING_DIR", str(landing))
    return WarehouseResource(url=url)


@pytest.fixture
def ga4(monkeypatch, sample_landing):
    """A GA4 property (the local fake) holding the sample's reports, configured the way users configure theirs."""
    with FakeGA4() as fake:
        for name in ("daily_traffic", "transactions"):
            lines = (sample_landing / "ga4" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
            fake.add_rows([json.loads(line) for line in lines], METRIC_TYPES)
        monkeypatch.setenv("GA4_PROPERTY_ID", fake.property_id)
        monkeypatch.setenv("GA4_API_URL", fake.url)
        yield fake


def counts(warehouse: WarehouseResource, *tables: str) -> dict[str, int]:
    with warehouse.begin() as conn:
        return {t: warehouse.row_count(conn, t) for t in tables}


def prepared(warehouse: WarehouseResource) -> dict[str, int]:
    """Records in the day's dry-run requests, per destination."""
    with warehouse.begin() as conn:
        return {d: int(n) for d, n in warehouse.run(
            conn, "SELECT destination, sum(record_count) FROM activation.egress_requests WHERE status = 'dry_run' "
                  "GROUP BY destination ORDER BY destination")}


def latest(key: str, name: str):
    instance = dg.DagsterInstance.from_config(".")
    metadata = instance.get_latest_materialization_event(dg.AssetKey(key.split("/"))).asset_materialization.metadata
    return metadata[name].value


def test_a_crm_only_day_builds_profiles_audiences_and_every_destinations_requests(project, run_day_key, capsys):
    code = main(["run", "--date", run_day_key.isoformat()])

    out = capsys.readouterr().out
    assert code == 0, out
    assert ("  not configured: raw/ga4_daily_traffic, raw/ga4_transactions: set GA4_PROPERTY_ID (and Google "
            "credentials) to read your property, or write the sample with `cdp-assets generate`") in out
    assert "FAILED" not in out
    assert counts(project, "core.unified_profiles", "audiences.purchasers_30d", "marts.order_attribution") == {
        "core.unified_profiles": 301, "audiences.purchasers_30d": 107, "marts.order_attribution": 301}
    assert sorted(prepared(project)) == DESTINATIONS
    assert latest("marts/order_attribution", "ga4_data_through").startswith("none: GA4 is not configured")


def test_a_ga4_outage_holds_back_only_what_needs_ga4_and_the_next_run_catches_up(project, ga4, run_day_key,
                                                                                capsys):
    before = run_day_key - timedelta(days=1)
    assert main(["run", "--date", before.isoformat()]) == 0
    ga4.refuse = 403

    outage = main(["run", "--date", run_day_key.isoformat()])

    out = capsys.readouterr().out
    assert outage == 1
    assert "  failed step: raw__ga4_transactions: GA4 refused report transactions for" in out
    assert "User does not have sufficient permissions for this property" in out
    assert f"{run_day_key}: FAILED in sources {run_day_key} (raw__ga4_daily_traffic, raw__ga4_transactions)" in out
    during = prepared(project)
    assert sorted(during) == DESTINATIONS
    # The Measurement Protocol's web orders wait while GA4 is down, and go once it is back.
    held = latest("activation/ga4_measurement_protocol", "events_held")
    assert (latest("marts/order_attribution", "ga4_data_through"),
            latest("marts/order_attribution", "ga4_days_behind")) == (before.isoformat(), 1)
    traits_during = counts(project, "core.channel_traits")["core.channel_traits"]

    ga4.refuse = None
    assert main(["run", "--date", run_day_key.isoformat()]) == 0

    assert latest("core/channel_traits", "ga4_data_through") == run_day_key.isoformat()
    assert counts(project, "core.channel_traits")["core.channel_traits"] > traits_during
    after = prepared(project)
    assert 0 < after.pop("ga4_measurement_protocol") < held  # the web orders GA4 turned out to have missed
    assert after == during
    with project.begin() as conn:
        assert project.scalar(conn, "SELECT count(*) - count(DISTINCT order_id) FROM marts.order_attribution") == 0
        assert project.scalar(conn, "SELECT count(*) FROM raw.ga4_fetches WHERE partition_date = :d",
                              {"d": run_day_key}) == 2


def test_a_spent_ga4_quota_fails_the_sources_run_and_prepares_the_rest(project, ga4, run_day_key, capsys):
    ga4.tokens_left = 0

    code = main(["run", "--date", run_day_key.isoformat()])

    out = capsys.readouterr().out
    assert code == 1
    assert "  failed step: raw__ga4_daily_traffic: GA4 quota exhausted (tokens_per_day)" in out
    assert f"(transform {run_day_key}): succeeded" in out, out
    assert sorted(prepared(project)) == DESTINATIONS
