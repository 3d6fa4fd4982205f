"""Braze attribute objects carry JSON-typed values (nulls clear), and Braze's answers are read back: errors by
index in a 2xx, a 429 waited for until X-RateLimit-Reset, a bad key or host stopping the sync."""

import json
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from cdp_assets.activation.destinations.braze import options
from cdp_assets.activation.destinations.braze.client import BrazeRecords, Tracked, rest_endpoint
from cdp_assets.activation.destinations.braze.payloads import NotOfType, attribute_value, object_errors, reset_wait
from cdp_assets.activation.destinations.registry import discover
from cdp_assets.activation.records.config import SYNCS_DIR, parse_sync
from cdp_assets.activation.transport import AUTH, OK, PARTIAL, REJECTED, TRANSIENT
from cdp_assets.settings import ConfigError

COLUMNS = ("profile_id", "email", "phone_e164", "first_name", "last_name", "country", "lifetime_value",
           "order_count", "last_order_at", "rfm_segment")


@pytest.mark.parametrize(("value", "kind", "expected"), [
    (Decimal("1234.50"), "number", 1234.5),
    (Decimal("0.00"), "number", 0),
    (7, "number", 7),
    (2.0, "number", 2),
    ("12", "number", 12),
    (" 3.25 ", "number", 3.25),
    (Decimal("12345678901234567890"), "number", 12345678901234567890),
    (float("nan"), "number", None),
    (True, "number", 1),
    (True, "bool", True),
    (False, "bool", False),
    (0, "bool", False),
    ("Yes", "bool", True),
    ("false", "bool", False),
    (datetime(2026, 11, 30, 10, 0), "datetime", "2026-11-30T10:00:00.000Z"),
    (datetime(2026, 11, 30, 11, 0, 0, 250_000, tzinfo=UTC), "datetime", "2026-11-30T11:00:00.250Z"),
    (date(2026, 11, 30), "datetime", "2026-11-30T00:00:00.000Z"),
    ("2026-11-30T10:00:00+01:00", "datetime", "2026-11-30T09:00:00.000Z"),
    (date(1990, 5, 17), "date", "1990-05-17"),
    (datetime(1990, 5, 17, 23, 0), "date", "1990-05-17"),
    ("545", "string", "545"),
    (Decimal("80.00"), "string", "80.00"),
])
def test_values_are_sent_in_their_fields_json_type(value, kind, expected):
    built = attribute_value(value, kind)
    assert built == expected and type(built) is type(expected)


@pytest.mark.parametrize("kind", ["string", "number", "bool", "date", "datetime"])
def test_none_clears_the_attribute_whatever_its_type(kind):
    assert attribute_value(None, kind) is None


@pytest.mark.parametrize(("value", "kind"), [("ada@example.com", "number"), ("maybe", "bool"),
                                             ("yesterday", "datetime"), ("soon", "date")])
def test_a_value_not_of_its_type_is_refused_without_naming_it(value, kind):
    with pytest.raises(NotOfType) as refused:
        attribute_value(value, kind)
    assert value not in str(refused.value)


def test_errors_are_placed_by_index_in_the_attributes_array():
    answer = {"message": "success", "attributes_processed": 2, "errors": [
        {"type": "provided external_id is blacklisted and disallowed", "input_array": "attributes", "index": 1}]}
    assert object_errors(answer, 3) == ({1: "Braze: provided external_id is blacklisted and disallowed"}, [])


def test_errors_that_name_no_object_of_the_request_are_kept_apart():
    answer = {"errors": [{"type": "a", "input_array": "events", "index": 0}, {"type": "b", "index": 9},
                         {"type": "c"}, "d", {"type": "e", "index": True}]}
    assert object_errors(answer, 3) == ({}, ["Braze: a", "Braze: b", "Braze: c", "d", "Braze: e"])


def test_two_errors_for_one_object_are_both_kept():
    answer = {"errors": [{"type": "a", "input_array": "attributes", "index": 0},
                         {"type": "b", "input_array": "attributes", "index": 0}]}
    assert object_errors(answer, 1) == ({0: "Braze: a; b"}, [])


def test_no_errors_is_nothing_refused():
    assert object_errors({"message": "success", "attributes_processed": 2}, 2) == ({}, [])
    assert object_errors({"message": "queued"}, 2) == ({}, [])


def test_the_rate_limit_reset_is_seconds_from_now_in_any_header_case():
    assert reset_wait({"X-RateLimit-Reset": "1748779206"}, now=1748779203.5) == 2.5
    assert reset_wait({"x-ratelimit-reset": "1748779206"}, now=1748779203.5) == 2.5
    assert reset_wait({"X-RateLimit-Reset": "1748779200"}, now=1748779203.5) == 0.0
    assert reset_wait({"X-RateLimit-Reset": "soon"}) is None and reset_wait({}) is None


def shipped_sync(tmp_path: Path, **changes):
    settings = {**yaml.safe_load((SYNCS_DIR / "braze_users.yaml").read_text(encoding="utf-8")), **changes}
    return parse_sync(tmp_path / "braze_users.yaml", settings, discover(), {"core.unified_profiles": COLUMNS},
                      ("vip",))


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAZE_API_KEY", "braze-key")
    monkeypatch.setenv("BRAZE_REST_ENDPOINT", "rest.iad-01.braze.com/")
    return BrazeRecords(shipped_sync(tmp_path))


def ada(client: BrazeRecords) -> Tracked:
    return client.record("p1", {"email": "ada@example.com", "first_name": "Ada", "last_name": None,
                                "phone": "+14155550101", "country": "GB", "cdp_lifetime_value": Decimal("1234.50"),
                                "cdp_order_count": 7, "cdp_last_order_at": datetime(2026, 11, 30, 10, 0),
                                "cdp_rfm_segment": "545", "cdp_audience_vip": True}, "trace-1")


def test_a_record_is_one_typed_attribute_object_by_external_id(client):
    record = ada(client)
    assert record == Tracked("trace-1", {
        "external_id": "p1", "email": "ada@example.com", "first_name": "Ada", "last_name": None,
        "phone": "+14155550101", "country": "GB", "cdp_lifetime_value": 1234.5, "cdp_order_count": 7,
        "cdp_last_order_at": "2026-11-30T10:00:00.000Z", "cdp_rfm_segment": "545", "cdp_audience_vip": True})
    request = client.request("upsert", [record], True)
    assert (request.method, request.url, request.record_count) == ("POST", "https://rest.iad-01.braze.com/users/track",
                                                                   1)
    assert json.loads(request.text) == {"attributes": [record.attributes]}
    assert '"cdp_order_count":7' in request.text and '"cdp_audience_vip":true' in request.text
    assert "trace-1" not in request.text


def test_a_leaver_is_cleared_with_null_for_every_mapped_field(client):
    cleared = client.left("p1", {}, "trace-1").attributes
    assert cleared["external_id"] == "p1" and set(cleared) - {"external_id"} == {
        "email", "first_name", "last_name", "phone", "country", "cdp_lifetime_value", "cdp_order_count",
        "cdp_last_order_at", "cdp_rfm_segment", "cdp_audience_vip"}
    assert all(v is None for k, v in cleared.items() if k != "external_id")


def test_deletions_go_to_users_delete_by_external_id_50_at_a_time(client):
    request = client.request("gdpr_delete", ["p1", "p2"], True)
    assert (request.url, request.body) == ("https://rest.iad-01.braze.com/users/delete", {"external_ids": ["p1", "p2"]})
    assert (client.limit("gdpr_delete"), client.limit("delete"), client.limit("upsert")) == (50, 50, 75)


def test_the_headers_carry_the_key_as_a_bearer_token(client):
    assert client.headers() == {"Authorization": "Bearer braze-key", "Content-Type": "application/json"}
    assert client.secrets() == ["braze-key"] and client.missing() == []


def sent(client: BrazeRecords, n: int) -> None:
    client.request("upsert", [Tracked(f"t{i}", {"external_id": f"p{i}"}) for i in range(n)], True)


def test_a_2xx_with_one_error_is_partial_and_names_braze_ids_for_the_rest(client):
    sent(client, 3)
    answer = {"message": "success", "attributes_processed": 2, "errors": [
        {"type": "'email' has an invalid value", "input_array": "attributes", "index": 1}]}
    reply = client.interpret("upsert", 201, json.dumps(answer), {})
    assert (reply.kind, reply.failed_rows) == (PARTIAL, {1: "Braze: 'email' has an invalid value"})
    assert reply.ids == {"t0": "p0", "t2": "p2"} and reply.reported == {"attributes_processed": 2}


def test_a_clean_2xx_and_a_queued_202_are_accepted(client):
    sent(client, 2)
    assert client.interpret("upsert", 201, '{"message":"success","attributes_processed":2}', {}).kind == OK
    queued = client.interpret("upsert", 202, '{"message":"queued"}', {})
    assert (queued.kind, queued.ids) == (OK, {"t0": "p0", "t1": "p1"})


def test_an_error_placed_on_no_object_splits_the_batch_or_fails_the_one_record(client):
    sent(client, 2)
    assert client.interpret("upsert", 201, '{"message":"success","errors":[{"type":"odd"}]}', {}).kind == REJECTED
    sent(client, 1)
    alone = client.interpret("upsert", 201, '{"message":"success","errors":[{"type":"odd"}]}', {})
    assert (alone.kind, alone.failed_rows, alone.ids) == (PARTIAL, {0: "Braze: odd"}, {})


def test_a_429_waits_until_the_reset(client):
    sent(client, 1)
    reset = str(int(time.time()) + 2)
    reply = client.interpret("upsert", 429, '{"message":"Rate limit exceeded"}',
                             {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})
    assert reply.kind == TRANSIENT and 0.9 < reply.retry_after <= 2.0


def test_a_429_without_a_reset_waits_for_the_window(client):
    reply = client.interpret("upsert", 429, "{}", {})
    assert (reply.kind, reply.retry_after) == (TRANSIENT, 3.0)


@pytest.mark.parametrize(("status", "kind"), [(401, AUTH), (403, AUTH), (404, AUTH), (400, REJECTED),
                                              (500, TRANSIENT), (503, TRANSIENT)])
def test_fatal_answers_are_classified(client, status, kind):
    sent(client, 2)
    reply = client.interpret("upsert", status, '{"message":"Invalid API key: braze-key","errors":[]}', {})
    assert reply.kind == kind and reply.message.startswith(f"Braze {status}: Invalid API key")


def test_a_delete_answer_reports_the_count(client):
    reply = client.interpret("gdpr_delete", 201, '{"deleted":2,"message":"success"}', {})
    assert (reply.kind, reply.reported) == (OK, {"users_deleted": 2})


def test_the_endpoint_is_a_base_url_with_or_without_its_scheme():
    assert rest_endpoint("rest.fra-01.braze.eu") == "https://rest.fra-01.braze.eu"
    assert rest_endpoint(" https://rest.iad-01.braze.com/ ") == "https://rest.iad-01.braze.com"
    assert rest_endpoint("http://127.0.0.1:8080") == "http://127.0.0.1:8080" and rest_endpoint("") is None


def test_without_settings_the_plan_uses_a_placeholder_and_names_what_is_missing(tmp_path, monkeypatch):
    for name in ("BRAZE_API_KEY", "BRAZE_REST_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    client = BrazeRecords(shipped_sync(tmp_path))
    assert client.missing() == ["BRAZE_API_KEY", "BRAZE_REST_ENDPOINT"]
    assert client.request("gdpr_delete", ["p1"], True).url == "{BRAZE_REST_ENDPOINT}/users/delete"


def test_the_shipped_sync_is_the_marketing_sync_the_lifecycle_team_expects(tmp_path):
    sync = shipped_sync(tmp_path)
    assert (sync.destination, sync.object, sync.key.column, sync.key.field) == ("braze", "users", "profile_id",
                                                                                "external_id")
    assert (sync.consent_purpose, sync.include_suppressed, sync.on_leave) == ("marketing", False, "clear")
    assert {f.field: f.type for f in sync.all_fields} == {
        "email": "string", "first_name": "string", "last_name": "string", "phone": "string", "country": "string",
        "cdp_lifetime_value": "number", "cdp_order_count": "number", "cdp_last_order_at": "datetime",
        "cdp_rfm_segment": "string", "cdp_audience_vip": "bool"}
    assert sync.lists == {} and sync.options == {"batch_size": 75}


def test_batch_size_is_an_option_of_at_most_75():
    assert options("x: options", {"batch_size": 50}) == {"batch_size": 50}
    for wrong in ({"batch_size": 76}, {"batch_size": 0}, {"batch_size": "50"}, {"batch_size": True}):
        with pytest.raises(ConfigError, match="batch_size"):
            options("x: options", wrong)
    with pytest.raises(ConfigError, match="unknown settings"):
        options("x: options", {"batchsize": 50})


def test_a_sync_may_not_ask_braze_for_lists(tmp_path):
    with pytest.raises(ConfigError, match="no lists"):
        shipped_sync(tmp_path, audiences={"field": "cdp_audience_{audience}", "list": "cdp: {audience}"})
