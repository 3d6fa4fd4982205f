"""The real google-analytics-data client, as GA4Resource builds it, against the fake's REST wire format."""

from datetime import date, datetime

import pytest

from cdp_assets.ingest.ga4 import read_range
from cdp_assets.ingest.ga4_reports import METRIC_TYPES, load_reports
from cdp_assets.resources.ga4 import Ga4QuotaExhausted, GA4Resource, quota_reset
from tests.fakes.ga4 import FakeGA4

TRANSACTIONS = {r.name: r for r in load_reports()}["transactions"]


def purchases(count: int) -> list[dict[str, str]]:
    return [{"date": "20260105", "transactionId": f"T{n}", "sessionSource": "google", "sessionMedium": "cpc",
             "sessionCampaignName": "brand", "purchaseRevenue": "12.50"} for n in range(count)]


def source(fake: FakeGA4):
    return GA4Resource(property_id=fake.property_id, api_url=fake.url, retry_initial_seconds=0.01,
                       retry_maximum_seconds=0.02).source(None)


def test_pages_are_read_by_string_limit_and_offset_until_row_count():
    with FakeGA4(max_page_rows=3) as fake:
        fake.add_rows(purchases(7), METRIC_TYPES)
        fetch, stop = read_range(source(fake), TRANSACTIONS, date(2026, 1, 5), date(2026, 1, 5))
    assert stop is None
    assert [r["body"].get("offset") for r in fake.requests] == [None, "3", "6"]
    assert {r["body"]["limit"] for r in fake.requests} == {"250000"}
    assert len(fetch.rows_by_day[date(2026, 1, 5)]) == 7


def test_the_request_orders_by_the_reports_dimensions_and_asks_for_the_quota():
    with FakeGA4() as fake:
        fake.add_rows(purchases(1), METRIC_TYPES)
        read_range(source(fake), TRANSACTIONS, date(2026, 1, 5), date(2026, 1, 6))
    (request,) = fake.requests
    assert request["path"] == "/v1beta/properties/123456:runReport"
    assert request["body"]["returnPropertyQuota"] is True
    assert request["body"]["dateRanges"] == [{"startDate": "2026-01-05", "endDate": "2026-01-06"}]
    assert [o["dimension"]["dimensionName"] for o in request["body"]["orderBys"]] == list(TRANSACTIONS.dimensions)
    assert request["authorization"] is None  # anonymous credentials: no token is ever sent to GA4_API_URL


def test_the_response_metadata_and_quota_are_kept():
    with FakeGA4(currency="EUR", time_zone="Europe/Berlin") as fake:
        fake.add_rows(purchases(2), METRIC_TYPES)
        fetch, _ = read_range(source(fake), TRANSACTIONS, date(2026, 1, 5), date(2026, 1, 5))
    assert (fetch.currency, fetch.time_zone, fetch.tokens_consumed) == ("EUR", "Europe/Berlin", 10)
    assert fetch.remaining == {"tokens_per_day": 199_990, "tokens_per_hour": 40_000}


def test_an_exhausted_quota_stops_after_the_pages_already_read():
    with FakeGA4(max_page_rows=3, tokens_per_day=10) as fake:
        fake.add_rows(purchases(7), METRIC_TYPES)
        fetch, stop = read_range(source(fake), TRANSACTIONS, date(2026, 1, 5), date(2026, 1, 5))
    assert isinstance(stop, Ga4QuotaExhausted)
    assert stop.quota == "tokens_per_day"
    assert len(fake.requests) == 1
    assert len(fetch.rows_by_day[date(2026, 1, 5)]) == 3


@pytest.mark.parametrize(("quota", "now", "resets"), [
    ("tokens_per_day", "2026-03-10T20:15:00+00:00", "2026-03-11T07:00:00+00:00"),  # midnight PDT
    ("tokens_per_day", "2026-01-10T09:00:00+00:00", "2026-01-11T08:00:00+00:00"),  # midnight PST
    ("tokens_per_hour", "2026-01-10T09:40:00+00:00", "2026-01-10T10:00:00+00:00"),
])
def test_a_quota_resets_at_pacific_midnight_or_the_next_hour(quota, now, resets):
    assert quota_reset(quota, datetime.fromisoformat(now)) == datetime.fromisoformat(resets)
