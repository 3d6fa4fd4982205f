"""The GA4 Measurement Protocol destination against a local fake that answers 204 to anything, as Google does."""

import json
import logging
import re
from datetime import timedelta

import pytest

from cdp_assets.activation.destinations.ga4_measurement_protocol.validation import sample_share
from cdp_assets.settings import ConfigError
from tests.destinations.ga4_mp_world import (
    add_order,
    build_world,
    day,
    execute,
    ga4_loaded_through,
    ledger,
    metadata,
    order_time,
    query,
    run_day,
)
from tests.fakes.ga4_mp import API_SECRET, FakeMeasurementProtocol

SENT = {"T-1001": 1, "T-1002": 1, "T-2002": 1}


@pytest.fixture
def world(warehouse):
    build_world(warehouse)
    return warehouse


@pytest.fixture
def fake(monkeypatch):
    with FakeMeasurementProtocol() as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("CDP_EGRESS_MODE", "live")
        monkeypatch.setenv("GA4_MP_VALIDATION_SAMPLE", "0")
        yield server


def collected(fake, transaction_id):
    return [b for b in fake.collected if b["events"][0]["params"]["transaction_id"] == transaction_id]


def test_offline_orders_and_the_web_order_ga4_missed_are_sent_once_across_reruns(world, fake):
    assert run_day(world).success
    assert run_day(world).success

    assert dict(fake.purchases) == SENT
    assert fake.ignored == []
    assert metadata(run_day(world))["records_already_sent"] == 3


def test_a_web_order_ga4_recorded_is_never_sent_nor_validated(world, fake):
    assert run_day(world).success

    assert collected(fake, "T-2001") == []
    assert [b for b in fake.validated if b["events"][0]["params"]["transaction_id"] == "T-2001"] == []
    assert "T-2001" not in ledger(world)


def test_an_offline_purchase_goes_as_googles_wire_example_shows_it(world, fake):
    assert run_day(world).success

    [body] = collected(fake, "T-1001")
    assert body.pop("timestamp_micros") == int(order_time(day()).timestamp()) * 1_000_000
    assert body == {
        "client_id": "1234567890.1717243200", "user_id": "p1",
        "consent": {"ad_user_data": "GRANTED", "ad_personalization": "GRANTED"},
        "events": [{"name": "purchase", "params": {
            "transaction_id": "T-1001", "value": 39.98, "currency": "USD", "engagement_time_msec": 1,
            "items": [{"item_id": "sku-1", "quantity": 2}]}}],
        "user_data": {
            "sha256_email_address": ["973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"],
            "sha256_phone_number": ["8a59780bb8cd2ba022bfa5ba2ea3b6e07af17a7d8b30c1f9b3390e36f69019e4"],
            "address": [{"sha256_first_name": "81f8f6dde88365f3928796ec7aa53f72820b06db8664f5fe76a7eb13e24546a2",
                         "sha256_last_name": "799ef92a11af918e3fb741df42934f3b568ed2d93ac1df74f1b8d41a27932a6f",
                         "postal_code": "94105", "country": "US", "city": "san francisco", "region": "ca"}]}}


def test_an_order_without_a_ga4_client_id_is_dead_lettered_and_no_client_id_is_invented(world, fake):
    assert run_day(world).success

    assert collected(fake, "T-1003") == []
    assert query(world, "SELECT record_key, reason FROM activation.dead_letters") == [
        ("T-1003", "no GA4 client id: the contact has no ga_client_id, and a client id is never invented")]


def test_a_person_who_did_not_consent_is_never_sent(world, fake):
    result = run_day(world)

    assert collected(fake, "T-1004") == []
    assert metadata(result)["filtered_by_consent"] == 1


def test_an_order_older_than_the_72_hours_ga4_takes_is_dead_lettered_with_the_reason(world, fake):
    old = day() - timedelta(days=4)
    add_order(world, "T-0001", "p1", "physical_store", "10.00", None, order_time(old))

    assert run_day(world, old).success

    assert fake.collected == []
    [(reason,)] = query(world, "SELECT reason FROM activation.dead_letters WHERE record_key = 'T-0001'")
    assert reason.endswith("the GA4 Measurement Protocol accepts at most 3")


def test_web_orders_wait_until_ga4_has_loaded_their_day(world, fake):
    ga4_loaded_through(world, day() - timedelta(days=1))
    waiting = run_day(world)

    assert collected(fake, "T-2002") == []
    assert metadata(waiting)["events_held"] == 1

    ga4_loaded_through(world, day())
    assert run_day(world).success
    assert dict(fake.purchases) == SENT


def test_without_ga4_offline_orders_still_go_and_web_orders_wait(world, fake):
    execute(world, "DROP TABLE raw.ga4_transactions")
    execute(world, "DROP TABLE raw.ga4_fetches")

    result = run_day(world)

    assert result.success
    assert dict(fake.purchases) == {"T-1001": 1, "T-1002": 1}
    assert metadata(result)["events_held"] == 2


def test_every_new_shape_is_validated_first_and_the_ledger_tells_validated_from_unconfirmed(world, fake):
    assert run_day(world).success

    validated = sorted(b["events"][0]["params"]["transaction_id"] for b in fake.validated)
    assert validated == ["T-1001", "T-1002"]  # T-2002 has T-1002's shape, which passed
    assert ledger(world) == {"T-1001": "sent", "T-1002": "sent", "T-1003": "dead_letter",
                             "T-2002": "sent_unconfirmed"}


def test_a_body_the_validation_server_names_is_dead_lettered_with_its_message_and_never_sent(world, fake):
    fake.refuse("T-1002")

    assert run_day(world).success

    assert "T-1002" not in fake.purchases
    [(reason,)] = query(world, "SELECT reason FROM activation.dead_letters WHERE record_key = 'T-1002'")
    assert reason == ("GA4 validation: VALUE_INVALID at events[0].params: The event for transaction [T-1002] "
                      "is invalid.")
    # The shape did not pass, so the next body of that shape was validated before it went.
    assert ledger(world)["T-2002"] == "sent"


def test_the_api_secret_and_raw_personal_data_are_nowhere_in_the_warehouse_or_the_logs(world, fake, caplog):
    caplog.set_level(logging.DEBUG)  # urllib3 logs each request's path, query string included, at DEBUG

    assert run_day(world).success

    tables = query(world, "SELECT table_schema, table_name FROM information_schema.tables "
                          "WHERE table_schema IN ('activation', 'cdp_meta')")
    text = json.dumps([query(world, f"SELECT * FROM {s}.{t}") for s, t in tables], default=str)
    assert "activation.egress_requests" in {f"{s}.{t}" for s, t in tables}
    for secret in (API_SECRET, "Test@Example.com", "test@example.com", "+15551234567"):
        assert secret not in text
        assert secret not in caplog.text
    assert "api_secret=[redacted]" in text


def test_a_dry_run_sends_nothing_and_says_what_would_be_validated(world, fake, monkeypatch):
    monkeypatch.setenv("CDP_EGRESS_MODE", "dry_run")

    result = run_day(world)

    assert fake.requests == []
    assert {k: metadata(result)[k] for k in ("requests_prepared", "events_to_validate")} == {
        "requests_prepared": 3, "events_to_validate": 2}
    urls = {u for (u,) in query(world, "SELECT DISTINCT url FROM activation.egress_requests")}
    assert urls == {f"{fake.url}/mp/collect?measurement_id=G-TEST123&api_secret=[redacted]"}


@pytest.mark.parametrize("setting", ["abc", "1.5", "-0.1"])
def test_a_validation_sample_that_is_not_a_share_is_refused_by_name(setting):
    with pytest.raises(ConfigError, match=rf"GA4_MP_VALIDATION_SAMPLE must be a share between 0 and 1, such as "
                                          rf"0.05; got '{re.escape(setting)}'"):
        sample_share(setting)


def test_the_validation_sample_defaults_to_five_percent():
    assert (sample_share(None), sample_share("0.2")) == (0.05, 0.2)


def test_a_body_the_validation_server_could_not_judge_waits_for_the_next_run(world, fake):
    fake.fail_next("500", "500", "500")  # every attempt at validating the first body

    assert run_day(world).success
    assert "T-1001" not in fake.purchases
    assert ledger(world)["T-1001"] == "failed"

    assert run_day(world).success
    assert dict(fake.purchases) == SENT
