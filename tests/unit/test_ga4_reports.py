"""GA4 report definitions: the shipped file loads, and each kind of mistake is refused with its fix."""

import pytest
import yaml

from cdp_assets.ingest.ga4_reports import column_name, load_reports
from cdp_assets.settings import ConfigError


def write(tmp_path, **report):
    spec = {"name": "traffic", "dimensions": ["date", "sessionSource"], "metrics": ["sessions"], **report}
    path = tmp_path / "reports.yaml"
    path.write_text(yaml.safe_dump({"reports": [spec]}), encoding="utf-8")
    return path


def test_the_shipped_reports_are_the_traffic_and_transactions_reports():
    reports = {r.name: r for r in load_reports()}
    assert reports["daily_traffic"].dimensions == ("date", "sessionSource", "sessionMedium", "sessionCampaignName",
                                                   "sessionDefaultChannelGroup", "deviceCategory", "country")
    assert reports["daily_traffic"].metrics == ("sessions", "totalUsers", "engagedSessions", "keyEvents",
                                                "purchaseRevenue")
    assert reports["transactions"].dimensions == ("date", "transactionId", "sessionSource", "sessionMedium",
                                                  "sessionCampaignName")
    assert reports["transactions"].metrics == ("purchaseRevenue",)
    assert reports["transactions"].table == "raw.ga4_transactions"


def test_the_transactions_filter_becomes_the_api_filter_expression():
    expression = {r.name: r for r in load_reports()}["transactions"].filter_expression
    assert expression.not_expression.filter.field_name == "transactionId"
    assert expression.not_expression.filter.string_filter.value == "(not set)"


def test_columns_are_the_api_names_in_snake_case():
    assert [column_name(n) for n in ("sessionDefaultChannelGroup", "customEvent:plan_tier", "keyEvents:purchase",
                                     "date")] == ["session_default_channel_group", "custom_event_plan_tier",
                                                  "key_events_purchase", "date"]


def test_custom_fields_with_their_scope_are_accepted(tmp_path):
    (report,) = load_reports(write(tmp_path, dimensions=["date", "customEvent:plan_tier"],
                                   metrics=["keyEvents:purchase"]))
    assert report.dimensions == ("date", "customEvent:plan_tier")


@pytest.mark.parametrize(("report", "message"), [
    ({"dimensions": ["date", "sessionsource"]}, "'sessionsource' is not a GA4 name (names are case-sensitive); "
                                                "did you mean 'sessionSource'?"),
    ({"dimensions": ["date", "sessions"]}, "'sessions' is a metric; move it to `metrics`"),
    ({"metrics": ["country"]}, "'country' is a dimension; move it to `dimensions`"),
    ({"dimensions": ["sessionSource"]}, "dimensions must include `date`"),
    ({"dimensions": ["date", "session source"]}, "'session source' is not a GA4 API name"),
    ({"dimensions": ["date", "customSession:x"]}, "unknown scope 'customSession'"),
    ({"dimensions": ["date", "date"]}, "date listed twice"),
    ({"dimensions": ["date", *[f"customEvent:p{n}" for n in range(9)]]}, "10 dimensions, but a request takes at "
                                                                         "most 9"),
    ({"metrics": [f"customEvent:m{n}" for n in range(11)]}, "11 metrics, but a request takes at most 10"),
    ({"name": "Daily Traffic"}, "name must be lower_snake_case"),
    ({"dimension_filter": {"filter": {"fieldName": "country", "stringFilter": {"value": "US"}}}},
     "filters on country, which the report does not request"),
    ({"dimension_filter": {"filter": {"fieldName": "date", "stringFilter": {"matchKind": "EXACT"}}}},
     "dimension_filter is not a GA4 FilterExpression"),
    ({"granularity": "day"}, "unknown settings granularity"),
])
def test_a_mistake_is_refused_naming_the_file_report_and_fix(tmp_path, report, message):
    path = write(tmp_path, **report)
    with pytest.raises(ConfigError) as error:
        load_reports(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_a_field_that_would_shadow_a_bookkeeping_column_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="currency_code would clash with a column every GA4 table carries"):
        load_reports(write(tmp_path, dimensions=["date", "currencyCode"]))


def test_two_reports_with_one_name_are_refused(tmp_path):
    path = tmp_path / "reports.yaml"
    report = {"name": "traffic", "dimensions": ["date"], "metrics": ["sessions"]}
    path.write_text(yaml.safe_dump({"reports": [report, report]}), encoding="utf-8")
    with pytest.raises(ConfigError, match="report name\\(s\\) traffic used twice"):
        load_reports(path)
