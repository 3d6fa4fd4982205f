"""HubSpot pulled through its real API shapes (a local fake), landed and loaded like any CRM file."""

import gzip
import json
from datetime import UTC, datetime

import dagster as dg
import pytest

from cdp_assets.ingest.crm_entities import CONTACTS, ORDERS
from cdp_assets.ingest.crm_files import crm_file_asset
from cdp_assets.ingest.hubspot import hubspot_asset, write_jsonl_gz
from cdp_assets.ingest.landing import LandingZone
from cdp_assets.ingest.mappings import load_mappings
from cdp_assets.resources.hubspot import HubSpotError, HubSpotResource
from tests.fakes.hubspot import FakeHubSpot

TOKEN = "pat-na1-secret-token"


@pytest.fixture
def fake():
    with FakeHubSpot(token=TOKEN) as server:
        yield server


def client(fake, **settings) -> HubSpotResource:
    return HubSpotResource(access_token=TOKEN, api_url=fake.url, requests_per_second=1000, backoff_factor=0.01,
                           **settings)


def pull_and_load(warehouse, fake, landing, **settings):
    mappings = load_mappings()
    hubspot_extracts = hubspot_asset(warehouse.dialect)
    assets = [hubspot_extracts, *(crm_file_asset(entity, warehouse.dialect, mappings, deps=(hubspot_extracts.key,))
                                  for entity in (CONTACTS, ORDERS))]
    return dg.materialize(assets, resources={"warehouse": warehouse, "hubspot": client(fake, **settings),
                                             "landing": LandingZone(path=str(landing))})


def rows(warehouse, sql):
    with warehouse.begin() as conn:
        return [tuple(r) for r in warehouse.run(conn, sql)]


def test_contacts_and_deals_land_in_the_canonical_tables(warehouse, fake, tmp_path):
    fake.add("contacts", "101", "2026-11-01T10:00:00.000Z", email="Ann@Example.com", phone="+1 415 555 0134",
             firstname="Ann", lastname="Lee", country="US")
    fake.add("deals", "9001", "2026-11-02T10:00:00.000Z", amount="120.50", closedate="2026-11-02T09:00:00.000Z",
             deal_currency_code="USD", dealstage="closedwon")
    fake.associations["9001"] = ["101"]

    pull_and_load(warehouse, fake, tmp_path)

    assert rows(warehouse, "SELECT contact_id, email, _phone_e164, deleted FROM raw.crm_contacts") == [
        ("101", "Ann@Example.com", "+14155550134", "false")]
    assert rows(warehouse, "SELECT order_id, contact_id, value, currency, status, action_source FROM raw.crm_orders") \
        == [("9001", "101", "120.50", "USD", "completed", "system_generated")]


def test_a_deal_without_a_currency_is_priced_in_the_company_currency(warehouse, fake, tmp_path):
    fake.company_currency = "EUR"
    fake.add("deals", "9002", "2026-11-02T10:00:00.000Z", amount="80", closedate="2026-11-02T09:00:00.000Z",
             dealstage="closedwon")
    fake.associations["9002"] = ["101"]

    pull_and_load(warehouse, fake, tmp_path)

    assert rows(warehouse, "SELECT order_id, value, currency FROM raw.crm_orders") == [("9002", "80", "EUR")]


def test_every_page_is_followed_and_each_record_read_once(fake):
    for i in range(250):
        fake.add("contacts", str(1000 + i), f"2026-11-01T10:{i // 60:02d}:{i % 60:02d}.000Z")

    records = list(client(fake).search_modified("contacts", ["email"], *window()))

    assert sorted(r["id"] for r in records) == [str(1000 + i) for i in range(250)]
    assert [r["body"].get("after") for r in fake.requests] == [None, "100", "200"]


def test_a_window_over_the_result_cap_is_split_until_each_part_fits(fake):
    fake.result_cap = 100
    for i in range(250):
        fake.add("contacts", str(1000 + i), f"2026-11-01T10:{i // 60:02d}:{i % 60:02d}.000Z")
    hubspot = client(fake, result_cap=100)

    records = list(hubspot.search_modified("contacts", ["email"], *window()))

    assert sorted(r["id"] for r in records) == [str(1000 + i) for i in range(250)]
    assert all(int(r["body"].get("after", 0)) < 100 for r in fake.requests)
    assert hubspot.stats["windows_split"] >= 2


def test_a_429_is_retried_after_its_retry_after(fake):
    fake.add("contacts", "101", "2026-11-01T10:00:00.000Z")
    fake.fail_next(429, retry_after="1")

    records = list(client(fake).search_modified("contacts", ["email"], *window()))

    assert [r["id"] for r in records] == ["101"]
    first, second = fake.requests
    assert second["at"] - first["at"] >= 1.0


def test_a_500_is_retried_with_backoff(fake):
    fake.add("contacts", "101", "2026-11-01T10:00:00.000Z")
    fake.fail_next(500)

    records = list(client(fake).search_modified("contacts", ["email"], *window()))

    assert [r["id"] for r in records] == ["101"]
    assert len(fake.requests) == 2


def test_an_error_that_outlasts_the_retries_names_the_status_but_never_the_token(fake):
    for _ in range(3):
        fake.fail_next(503)

    with pytest.raises(HubSpotError) as raised:
        list(client(fake, max_retries=2).search_modified("contacts", ["email"], *window()))

    assert "503" in str(raised.value)
    assert TOKEN not in str(raised.value)
    assert {r["authorization"] for r in fake.requests} == {f"Bearer {TOKEN}"}


def test_a_contact_archived_after_the_last_pull_arrives_deleted(warehouse, fake, tmp_path):
    fake.add("contacts", "101", "2026-11-01T10:00:00.000Z", email="ann@example.com")
    pull_and_load(warehouse, fake, tmp_path)
    archived_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    fake.add("contacts", "101", "2026-11-01T10:00:00.000Z", archived_at=archived_at, email="ann@example.com")

    pull_and_load(warehouse, fake, tmp_path)

    assert rows(warehouse, "SELECT deleted, updated_at FROM raw.crm_contacts "
                           "ORDER BY _updated_at") == [("false", "2026-11-01T10:00:00.000Z"), ("true", archived_at)]


def test_the_second_pull_asks_only_for_what_changed_since_the_watermark(warehouse, fake, tmp_path):
    fake.add("contacts", "101", "2026-11-01T10:00:00.000Z")
    pull_and_load(warehouse, fake, tmp_path)
    [(watermark,)] = rows(warehouse, "SELECT modified_before FROM raw.hubspot_watermarks "
                                     "WHERE object_type = 'contacts'")
    fake.requests.clear()

    pull_and_load(warehouse, fake, tmp_path)

    [search] = [r for r in fake.requests if r["path"] == "/crm/v3/objects/contacts/search"]
    lower = search["body"]["filterGroups"][0]["filters"][0]
    assert (lower["operator"], int(lower["value"])) == ("GTE", int(watermark.timestamp() * 1000))
    assert rows(warehouse, "SELECT count(*) FROM raw.crm_contacts") == [(1,)]


def test_landed_files_hold_canonical_columns_and_no_token(warehouse, fake, tmp_path):
    fake.add("contacts", "101", "2026-11-01T10:00:00.000Z", email="ann@example.com")

    result = pull_and_load(warehouse, fake, tmp_path)

    [path] = (tmp_path / "crm").glob("hubspot-api-contacts-*.jsonl.gz")
    text = gzip.decompress(path.read_bytes()).decode()
    assert set(json.loads(text.splitlines()[0])) == {
        "contact_id", "email", "phone", "first_name", "last_name", "city", "state", "postal_code", "country",
        "updated_at", "deleted"}
    metadata = result.asset_materializations_for_node("raw__hubspot_extracts")[0].metadata
    assert TOKEN not in text and TOKEN not in str(metadata)


def test_without_a_token_nothing_is_pulled_and_the_metadata_says_so(warehouse, tmp_path):
    result = dg.materialize([hubspot_asset(warehouse.dialect)], resources={
        "warehouse": warehouse, "hubspot": HubSpotResource(), "landing": LandingZone(path=str(tmp_path))})

    metadata = result.asset_materializations_for_node("raw__hubspot_extracts")[0].metadata
    assert metadata["source"].value == ("not configured: set HUBSPOT_ACCESS_TOKEN (a private app token with the CRM "
                                        "contacts and deals read scopes)")


def window():
    return datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)



def test_a_pull_that_fails_midway_leaves_no_partial_file(tmp_path):
    def rows():
        yield {"contact_id": "101"}
        raise HubSpotError("HubSpot POST /crm/v3/objects/contacts/search answered 503 after retries")

    with pytest.raises(HubSpotError):
        write_jsonl_gz(tmp_path / "hubspot-api-contacts-x.jsonl.gz", rows())

    assert list(tmp_path.iterdir()) == []
