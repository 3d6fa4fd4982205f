"""GA4 reports through Dagster into the warehouse, with the real client talking to the local fake."""

import json
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from cdp_assets.cli import backfill_ga4
from cdp_assets.definitions import build_definitions
from cdp_assets.ingest.ga4_reports import METRIC_TYPES, column_name, load_reports
from cdp_assets.resources.ga4 import GA4Resource
from cdp_assets.sample_data import ga4_traffic_rows
from cdp_assets.schedules import partition_range_tags
from tests.fakes.ga4 import FakeGA4

REPORTS = {r.name: r for r in load_reports()}
TRAFFIC_KEY = dg.AssetKey(["raw", "ga4_daily_traffic"])
TRANSACTIONS_KEY = dg.AssetKey(["raw", "ga4_transactions"])
FIRST = date(2026, 1, 1)


def transaction_rows(first: date, last: date) -> list[dict[str, str]]:
    """Three purchases a day plus the "(not set)" row GA4 reports for sessions without one."""
    rows, day = [], first
    while day <= last:
        stamp = day.strftime("%Y%m%d")
        for n, (source, medium, campaign) in enumerate([("google", "cpc", "brand_search"),
                                                       ("newsletter", "email", "weekly_digest"),
                                                       ("(direct)", "(none)", "(direct)"),
                                                       ("(direct)", "(none)", "(direct)")]):
            rows.append({"date": stamp, "transactionId": f"O{stamp}{n}" if n < 3 else "(not set)",
                         "sessionSource": source, "sessionMedium": medium, "sessionCampaignName": campaign,
                         "purchaseRevenue": f"{10 * (n + 1)}.25"})
        day += timedelta(days=1)
    return rows


def loaded_fake(fake: FakeGA4, first: date, last: date) -> FakeGA4:
    fake.add_rows(ga4_traffic_rows(first, last), METRIC_TYPES)
    fake.add_rows(transaction_rows(first, last), METRIC_TYPES)
    return fake


def definitions(warehouse, fake: FakeGA4, landing) -> dg.Definitions:
    client = GA4Resource(property_id=fake.property_id, api_url=fake.url, retry_initial_seconds=0.01,
                         retry_maximum_seconds=0.05, retry_deadline_seconds=30)
    return build_definitions(warehouse, str(landing), ga4=client)


def landed_rows(warehouse, report: str, first: date, last: date) -> list[tuple]:
    spec = REPORTS[report]
    columns = [*spec.dimensions, *spec.metrics]
    with warehouse.begin() as conn:
        rows = warehouse.run(conn, f"SELECT {', '.join(column_name(c) for c in columns)} FROM {spec.table} "
                                   "WHERE date BETWEEN :a AND :b", {"a": first, "b": last}).fetchall()
    return sorted(tuple(_as_api_text(v, c) for v, c in zip(row, columns, strict=True)) for row in rows)


def _as_api_text(value, field: str) -> str:
    if field == "date":
        return value.strftime("%Y%m%d")
    if field == "purchaseRevenue":
        return f"{value:.2f}"
    return str(value)


def expected_rows(fake: FakeGA4, report: str, first: date, last: date) -> list[tuple]:
    spec = REPORTS[report]
    return fake.expected(list(spec.dimensions), list(spec.metrics), first.strftime("%Y%m%d"),
                         last.strftime("%Y%m%d"), spec.dimension_filter)


def fetch_log(warehouse) -> list[tuple]:
    with warehouse.begin() as conn:
        return [tuple(r) for r in warehouse.run(
            conn, "SELECT report, partition_date, row_count, tokens_consumed, changed FROM raw.ga4_fetches "
                  "ORDER BY report, partition_date")]


def ga4_run(defs, first: date, last: date, instance=None) -> dg.ExecuteInProcessResult:
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(
        asset_selection=[TRAFFIC_KEY, TRANSACTIONS_KEY], tags=partition_range_tags(first, last),
        instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=False)


def test_a_90_day_backfill_through_429s_and_503s_lands_exactly_the_fakes_rows_once(warehouse, tmp_path):
    last = FIRST + timedelta(days=89)
    with loaded_fake(FakeGA4(fault_rate=0.1, max_page_rows=500), FIRST, last) as fake:
        defs = definitions(warehouse, fake, tmp_path)
        first_pass = backfill_ga4(defs, FIRST, last, dg.DagsterInstance.ephemeral(), "ERROR")
        assert [o.label for o in first_pass][:2] == ["GA4 2026-01-01..2026-01-07", "GA4 2026-01-08..2026-01-14"]
        assert len(first_pass) == 13 and all(outcome.ok for outcome in first_pass)
        assert 429 in fake.answered and 503 in fake.answered
        for report in ("daily_traffic", "transactions"):
            assert landed_rows(warehouse, report, FIRST, last) == expected_rows(fake, report, FIRST, last)
        assert len(landed_rows(warehouse, "daily_traffic", FIRST, last)) == 90 * 96
        assert len(landed_rows(warehouse, "transactions", FIRST, last)) == 90 * 3
        log = fetch_log(warehouse)

        second_pass = backfill_ga4(defs, FIRST, last, dg.DagsterInstance.ephemeral(), "ERROR")
        assert all(outcome.ok for outcome in second_pass)
        for report in ("daily_traffic", "transactions"):
            assert landed_rows(warehouse, report, FIRST, last) == expected_rows(fake, report, FIRST, last)
        again = fetch_log(warehouse)
    assert len(again) == 180
    assert [row[:3] for row in again] == [row[:3] for row in log]
    assert {row[4] for row in log} == {True}
    assert {row[4] for row in again} == {False}


def test_rerunning_a_day_replaces_it_with_ga4s_revised_rows(warehouse, tmp_path):
    last = FIRST + timedelta(days=2)
    with loaded_fake(FakeGA4(), FIRST, last) as fake:
        defs = definitions(warehouse, fake, tmp_path)
        assert ga4_run(defs, FIRST, last).success
        for row in fake.rows:
            if row["date"] == "20260102" and "sessions" in row:
                row["sessions"] = str(int(row["sessions"]) + 1)
        assert ga4_run(defs, date(2026, 1, 2), date(2026, 1, 2)).success
        assert landed_rows(warehouse, "daily_traffic", FIRST, last) == expected_rows(fake, "daily_traffic", FIRST,
                                                                                    last)
    # The re-read day 2 says whether GA4 revised it; days 1 and 3 still show their first fetch.
    assert [(report, day.isoformat(), flag) for report, day, _, _, flag in fetch_log(warehouse)] == [
        ("daily_traffic", "2026-01-01", True), ("daily_traffic", "2026-01-02", True),
        ("daily_traffic", "2026-01-03", True), ("transactions", "2026-01-01", True),
        ("transactions", "2026-01-02", False), ("transactions", "2026-01-03", True)]


def test_a_quota_stop_keeps_the_whole_days_read_and_names_saved_left_and_reset(warehouse, tmp_path):
    last = FIRST + timedelta(days=6)
    # 96 traffic rows a day, 100 rows a page, 11 tokens a request: the second page spends the last token
    # with day 3 only partly read.
    with loaded_fake(FakeGA4(max_page_rows=100, tokens_per_day=22), FIRST, last) as fake:
        defs = definitions(warehouse, fake, tmp_path)
        instance = dg.DagsterInstance.ephemeral()
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            asset_selection=[TRAFFIC_KEY], tags=partition_range_tags(FIRST, last), instance=instance,
            raise_on_error=False)
        requests = len(fake.requests)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = failure.step_failure_data.user_failure_data.description
    assert "GA4 quota exhausted (tokens_per_day) while reading raw.ga4_daily_traffic" in message
    assert "Saved: 2026-01-01..2026-01-02 (2 partitions). Left: 2026-01-03..2026-01-07 (5 partitions)." in message
    assert "UTC (midnight Pacific time)" in message
    assert requests == 2
    assert [(r, d.isoformat(), n) for r, d, n, _, _ in fetch_log(warehouse)] == [
        ("daily_traffic", "2026-01-01", 96), ("daily_traffic", "2026-01-02", 96)]
    assert instance.get_materialized_partitions(TRAFFIC_KEY) == {"2026-01-01", "2026-01-02"}


def test_an_exhausted_property_is_asked_once_not_retried(warehouse, tmp_path):
    with loaded_fake(FakeGA4(tokens_per_day=0), FIRST, FIRST) as fake:
        result = ga4_run(definitions(warehouse, fake, tmp_path), FIRST, FIRST)
        answered = list(fake.answered)
    assert not result.success
    assert answered == [429, 429]  # one request per report, no retry
    messages = [e.step_failure_data.user_failure_data.description for e in result.all_events
                if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert all("Saved: none. Left: 2026-01-01." in m for m in messages)


def test_tokens_are_recorded_per_partition_and_add_up_to_what_ga4_charged(warehouse, tmp_path):
    last = FIRST + timedelta(days=6)
    with loaded_fake(FakeGA4(), FIRST, last) as fake:
        instance = dg.DagsterInstance.ephemeral()
        assert ga4_run(definitions(warehouse, fake, tmp_path), FIRST, last, instance).success
        charged = fake.tokens_per_day - fake.tokens_left
    tokens = [row[3] for row in fetch_log(warehouse)]
    # traffic: one request of 672 rows = 16 tokens; transactions: one of 21 rows = 10 tokens
    assert tokens == [3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1]
    assert sum(tokens) == charged == 26
    event = instance.get_latest_materialization_event(TRAFFIC_KEY).asset_materialization
    assert event.metadata["tokens_consumed"].value == 16
    assert event.metadata["source"].value == "ga4"
    assert event.metadata["dagster/row_count"].value == 672


def check_outcomes(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations() if e.asset_key == key}


def test_sampling_thresholding_and_an_empty_day_after_data_warn(warehouse, tmp_path):
    with loaded_fake(FakeGA4(time_zone="America/New_York"), FIRST, FIRST) as fake:
        fake.flags["sampled"].add("20260101")
        fake.flags["thresholded"].add("20260101")
        result = ga4_run(definitions(warehouse, fake, tmp_path), FIRST, FIRST + timedelta(days=1))
    assert result.success
    assert check_outcomes(result, TRAFFIC_KEY) == {
        "no_data_loss_from_other_row": True, "not_sampled": False, "not_thresholded": False,
        "no_empty_day_after_data": False, "time_zone_is_cdp_timezone": False,
        # January's data is months old by now, and two days are too few to judge volume on.
        "ga4_daily_traffic_arrived_on_time": False, "ga4_daily_traffic_volume_is_usual": True}
    severities = {e.check_name: e.severity for e in result.get_asset_check_evaluations() if not e.passed}
    assert set(severities.values()) == {dg.AssetCheckSeverity.WARN}


def test_data_lost_to_an_other_row_fails_the_blocking_check_and_holds_the_marts(warehouse, tmp_path):
    marts = [dg.AssetKey(["marts", "order_attribution"]), dg.AssetKey(["marts", "campaign_performance"])]
    with loaded_fake(FakeGA4(), FIRST, FIRST) as fake:
        fake.flags["data_loss"].add("20260101")
        result = definitions(warehouse, fake, tmp_path).resolve_implicit_global_asset_job_def().execute_in_process(
            asset_selection=[TRAFFIC_KEY, TRANSACTIONS_KEY, dg.AssetKey(["staging", "exchange_rates"]), *marts],
            partition_key=FIRST.isoformat(), instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    failed = sorted((e.asset_key.to_user_string(), e.check_name) for e in result.get_asset_check_evaluations()
                    if not e.passed)
    assert failed == [("raw/ga4_daily_traffic", "no_data_loss_from_other_row"),
                      ("raw/ga4_transactions", "no_data_loss_from_other_row")]
    started = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START}
    assert "marts__order_attribution" not in started and "marts__campaign_performance" not in started


def test_without_a_property_id_the_sample_is_read_and_no_client_is_built(warehouse, sample_landing, run_day_key,
                                                                         monkeypatch):
    def no_client(*args, **kwargs):
        raise AssertionError("a GA4 client was built without GA4_PROPERTY_ID")

    monkeypatch.setattr("google.analytics.data_v1beta.BetaAnalyticsDataClient.__init__", no_client)
    instance = dg.DagsterInstance.ephemeral()
    result = ga4_run(build_definitions(warehouse, str(sample_landing)), run_day_key, run_day_key, instance)
    assert result.success
    metadata = instance.get_latest_materialization_event(TRAFFIC_KEY).asset_materialization.metadata
    assert metadata["source"].value == "sample"
    assert metadata["dagster/row_count"].value == 96
    with warehouse.begin() as conn:
        assert warehouse.scalar(conn, "SELECT count(DISTINCT property_id) FROM raw.ga4_daily_traffic") == 1
        assert warehouse.scalar(conn, "SELECT min(property_id) FROM raw.ga4_daily_traffic") == "sample"


def test_without_a_property_id_or_a_sample_ga4_is_not_configured_and_its_tables_are_empty(warehouse, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    result = ga4_run(build_definitions(warehouse, str(tmp_path)), FIRST, FIRST, instance)

    assert result.success
    metadata = instance.get_latest_materialization_event(TRAFFIC_KEY).asset_materialization.metadata
    assert metadata["source"].value == ("not configured: set GA4_PROPERTY_ID (and Google credentials) to read your "
                                        "property, or write the sample with `cdp-assets generate`")
    assert all(e.passed for e in result.get_asset_check_evaluations())
    with warehouse.begin() as conn:
        assert [warehouse.row_count(conn, t) for t in ("raw.ga4_daily_traffic", "raw.ga4_transactions")] == [0, 0]
        assert not warehouse.table_exists(conn, "raw.ga4_fetches")


def test_marts_are_not_rebuilt_while_a_gate_on_ga4_data_from_another_run_is_failing(warehouse, sample_landing,
                                                                                     run_day_key):
    from cdp_assets.runs import run_day

    instance = dg.DagsterInstance.ephemeral()
    with loaded_fake(FakeGA4(), run_day_key, run_day_key) as fake:
        fake.flags["data_loss"].add(run_day_key.strftime("%Y%m%d"))
        day = run_day(definitions(warehouse, fake, sample_landing), run_day_key, instance, "ERROR")

    sources, transform = day.runs
    assert sources.failed_checks == ["raw/ga4_daily_traffic:no_data_loss_from_other_row",
                                     "raw/ga4_transactions:no_data_loss_from_other_row"]
    assert list(transform.failed_steps) == ["marts__order_attribution"]
    assert "a quality gate on what it reads is failing: raw/ga4_transactions:no_data_loss_from_other_row (failed " \
           "in run" in transform.failed_steps["marts__order_attribution"]
    assert {"marts__campaign_performance", "core__channel_traits"} <= set(transform.skipped_steps)
    assert "activation__meta_capi" not in transform.skipped_steps


def test_the_daily_schedule_restates_ga4s_last_three_days_before_running_the_day(warehouse, tmp_path):
    with loaded_fake(FakeGA4(), date(2026, 3, 1), date(2026, 3, 9)) as fake:
        defs = definitions(warehouse, fake, tmp_path)
        schedule = defs.get_schedule_def("daily_job_schedule")
        context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 3, 10, 6, tzinfo=UTC),
                                            repository_def=defs.get_repository_def())
        restatement, sources, transform = schedule.evaluate_tick(context).run_requests
        assert restatement.asset_selection == [TRAFFIC_KEY, TRANSACTIONS_KEY]
        assert (restatement.tags["dagster/asset_partition_range_start"],
                restatement.tags["dagster/asset_partition_range_end"]) == ("2026-03-06", "2026-03-08")
        assert (sources.partition_key, sources.asset_selection) == (
            "2026-03-09", [TRAFFIC_KEY, TRANSACTIONS_KEY, dg.AssetKey(["raw", "hubspot_extracts"])])
        assert transform.partition_key == "2026-03-09"
        assert {TRAFFIC_KEY, TRANSACTIONS_KEY} & set(transform.asset_selection) == set()
        assert {r.tags["cdp/day"] for r in (restatement, sources, transform)} == {"2026-03-09"}
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            asset_selection=restatement.asset_selection, tags=restatement.tags,
            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success
    assert sorted({(r, d.isoformat()) for r, d, *_ in fetch_log(warehouse)}) == [
        (report, f"2026-03-0{n}") for report in ("daily_traffic", "transactions") for n in (6, 7, 8)]


@pytest.mark.parametrize("status", [429, 503])
def test_a_transient_error_is_retried_and_logged(warehouse, tmp_path, status):
    with loaded_fake(FakeGA4(), FIRST, FIRST) as fake:
        fake.fail_next(status, status)
        instance = dg.DagsterInstance.ephemeral()
        assert ga4_run(definitions(warehouse, fake, tmp_path), FIRST, FIRST, instance).success
        answered = list(fake.answered)
    assert answered == [status, status, 200, 200]
    event = instance.get_latest_materialization_event(TRAFFIC_KEY).asset_materialization
    assert event.metadata["retries"].value == 2


def test_a_sample_line_that_is_not_json_fails_the_run_naming_file_and_line(warehouse, tmp_path):
    (tmp_path / "ga4").mkdir()
    first_row = json.dumps(next(ga4_traffic_rows(FIRST, FIRST)))
    (tmp_path / "ga4" / "daily_traffic.jsonl").write_text(f"{first_row}\n{{broken\n", encoding="utf-8")
    result = ga4_run(build_definitions(warehouse, str(tmp_path)), FIRST, FIRST)
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert f"{tmp_path / 'ga4' / 'daily_traffic.jsonl'}:2 is not a JSON object" in (
        failure.step_failure_data.user_failure_data.description)


def test_a_metric_value_that_is_not_a_number_fails_the_run_naming_the_column(warehouse, tmp_path):
    rows = [dict(row, sessions="n/a") for row in ga4_traffic_rows(FIRST, FIRST)]
    (tmp_path / "ga4").mkdir()
    (tmp_path / "ga4" / "daily_traffic.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows),
                                                         encoding="utf-8")
    result = ga4_run(build_definitions(warehouse, str(tmp_path)), FIRST, FIRST)
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "report daily_traffic column sessions (BIGINT) holds a value that is not one" in (
        failure.step_failure_data.user_failure_data.description)
    with warehouse.begin() as conn:  # the table exists, for the marts to read, and holds none of the bad rows
        assert warehouse.row_count(conn, "raw.ga4_daily_traffic") == 0


def test_the_schedules_runs_deliver_the_days_conversions_through_a_ga4_outage(warehouse, sample_landing,
                                                                              run_day_key):
    with loaded_fake(FakeGA4(), run_day_key, run_day_key) as fake:
        fake.refuse = 403
        defs = definitions(warehouse, fake, sample_landing)
        tick = datetime.combine(run_day_key + timedelta(days=1), datetime.min.time(), UTC).replace(hour=6)
        context = dg.build_schedule_context(scheduled_execution_time=tick, repository_def=defs.get_repository_def())
        instance = dg.DagsterInstance.ephemeral()
        results = {request.tags["cdp/stage"]: defs.resolve_job_def("daily_job").execute_in_process(
            asset_selection=request.asset_selection, partition_key=request.partition_key, tags=request.tags,
            instance=instance, raise_on_error=False)
            for request in defs.get_schedule_def("daily_job_schedule").evaluate_tick(context).run_requests}

    assert {stage: r.success for stage, r in results.items()} == {
        "ga4_restatement": False, "sources": False, "transform": True}
    failed = {e.step_key for e in results["sources"].all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE}
    assert failed == {"raw__ga4_daily_traffic", "raw__ga4_transactions"}
    with warehouse.begin() as conn:
        assert {d for (d,) in warehouse.run(conn, "SELECT DISTINCT destination FROM activation.egress_requests")} == {
            "braze_users", "google_ads_conversions", "google_customer_match", "hubspot_contacts", "klaviyo_profiles",
            "meta_capi", "meta_custom_audiences", "pinterest_conversions", "salesforce_contacts", "tiktok_events"}
