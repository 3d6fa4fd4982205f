"""Klaviyo's payloads and answers, read directly: profiles, batch sizes, status codes, import jobs read back."""

import hashlib
import json
from datetime import datetime
from decimal import Decimal

import pytest

from cdp_assets.activation.destinations.klaviyo.client import REVISION, KlaviyoRecords
from cdp_assets.activation.destinations.klaviyo.imports import read_job
from cdp_assets.activation.destinations.klaviyo.payloads import profile
from cdp_assets.activation.records.config import FieldMap
from cdp_assets.activation.records.run import batches
from cdp_assets.activation.transport import AUTH, OK, REJECTED, TRANSIENT, http_reply
from tests.destinations.klaviyo_world import klaviyo_sync

EMAIL = FieldMap("email", "email", "string")
FIELDS = (FieldMap("first_name", "first_name", "string"), FieldMap("city", "city", "string"),
          FieldMap("lifetime_value", "cdp_lifetime_value", "number"),
          FieldMap("order_count", "cdp_order_count", "number"),
          FieldMap("last_order_at", "cdp_last_order_at", "datetime"),
          FieldMap("audience_vip", "cdp_audience_vip", "bool"), FieldMap("rfm_segment", "cdp_rfm_segment", "string"))


def key(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("KLAVIYO_API_KEY", "pk_test")
    monkeypatch.setenv("KLAVIYO_API_URL", "http://127.0.0.1:9")
    return KlaviyoRecords(klaviyo_sync(tmp_path))


def test_a_profile_carries_klaviyo_attributes_location_and_json_typed_custom_properties():
    row = profile(EMAIL, "ada@example.com", FIELDS, {
        "first_name": "Ada", "city": "London", "cdp_lifetime_value": Decimal("1234.50"), "cdp_order_count": 7,
        "cdp_last_order_at": datetime(2026, 11, 30, 10, 0), "cdp_audience_vip": True, "cdp_rfm_segment": "545"})
    assert row == {"type": "profile", "attributes": {
        "email": "ada@example.com", "first_name": "Ada", "location": {"city": "London"},
        "properties": {"cdp_lifetime_value": 1234.5, "cdp_order_count": 7,
                       "cdp_last_order_at": "2026-11-30T10:00:00.000Z", "cdp_audience_vip": True,
                       "cdp_rfm_segment": "545"}}}


def test_a_custom_property_without_a_value_is_unset_since_bulk_import_ignores_null():
    row = profile(EMAIL, "bob@example.com", FIELDS[:3], {"first_name": None, "city": None,
                                                          "cdp_lifetime_value": None})
    assert row == {"type": "profile", "attributes": {"email": "bob@example.com"},
                   "meta": {"patch_properties": {"unset": ["cdp_lifetime_value"]}}}


def test_every_request_carries_the_api_key_and_the_pinned_revision(client):
    assert client.headers() == {"Authorization": "Klaviyo-API-Key pk_test", "revision": REVISION,
                                "Accept": "application/vnd.api+json", "Content-Type": "application/vnd.api+json"}


def test_a_batch_over_five_megabytes_is_split_in_halves_until_each_fits(client):
    big = {"type": "profile", "attributes": {"email": "a@example.com", "properties": {"blob": "x" * 90_000}}}
    requests = batches(client, "upsert", [big] * 100)  # about 9 MB in one job
    assert [r.record_count for r in requests] == [50, 50]
    assert all(len(r.text.encode()) <= 5 * 1024 * 1024 for r in requests)


def test_ten_thousand_small_profiles_make_one_job_and_one_more_makes_two(client):
    small = {"type": "profile", "attributes": {"email": "a@example.com"}}
    assert [r.record_count for r in batches(client, "upsert", [small] * 10_000)] == [10_000]
    assert [r.record_count for r in batches(client, "upsert", [small] * 10_001)] == [10_000, 1]


def test_a_429_waits_for_the_seconds_retry_after_names(client):
    reply = client.interpret("upsert", 429, json.dumps({"errors": [{"code": "throttled", "detail": "Request was "
                                                                     "throttled. Expected available in 17 seconds."}]}),
                             {"Retry-After": "17"})
    assert (reply.kind, reply.retry_after) == (TRANSIENT, 17.0)
    assert reply.message == "Klaviyo 429 throttled: Request was throttled. Expected available in 17 seconds."


@pytest.mark.parametrize(("status", "kind"), [(500, TRANSIENT), (503, TRANSIENT), (401, AUTH), (403, AUTH),
                                              (400, REJECTED), (415, REJECTED), (202, OK), (204, OK)])
def test_status_codes_are_read_as_klaviyo_documents_them(client, status, kind):
    assert client.interpret("upsert", status, "", {}).kind == kind


def test_an_accepted_import_names_its_job(client):
    reply = http_reply(202, json.dumps({"data": {"type": "profile-bulk-import-job", "id": "KJ1"}}), {})
    assert client.job_of(reply) == "KJ1"


def test_a_deletion_asks_for_the_klaviyo_profile_by_id(client):
    request = client.request("gdpr_delete", ["01K123"], True)
    assert (request.url, request.body) == ("http://127.0.0.1:9/api/data-privacy-deletion-jobs/", {"data": {
        "type": "data-privacy-deletion-job", "attributes": {"profile": {"data": {"type": "profile",
                                                                                  "id": "01K123"}}}}})


def test_a_subscription_subscribes_to_email_marketing_only(client):
    request = client.request("subscribe", ["ada@example.com"], True)
    assert request.body["data"]["attributes"]["profiles"]["data"] == [{"type": "profile", "attributes": {
        "email": "ada@example.com", "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}}}}]


def answers(*bodies: tuple[int, dict]):
    """A `call` answering each request with the next body, recording the URLs asked."""
    asked: list[str] = []
    queue = list(bodies)

    def call(request):
        asked.append(request.url)
        status, body = queue.pop(0)
        return http_reply(status, json.dumps(body), {})
    return call, asked


def job(status: str) -> dict:
    return {"data": {"type": "profile-bulk-import-job", "id": "KJ1", "attributes": {"status": status}}}


def test_a_job_still_processing_has_no_outcome_yet():
    call, asked = answers((200, job("processing")))
    assert read_job("http://k", "KJ1", "email", call) is None
    assert asked == ["http://k/api/profile-bulk-import-jobs/KJ1"]


def test_a_complete_job_maps_import_errors_and_written_profiles_to_record_keys():
    call, asked = answers(
        (200, job("complete")),
        (200, {"data": [{"type": "import-error", "attributes": {
            "code": "invalid", "detail": "Invalid email address", "original_payload": {"email": "bad@x"}}}],
            "links": {"next": None}}),
        (200, {"data": [{"type": "profile", "id": "01KA", "attributes": {"email": "ada@example.com"}}],
               "links": {"next": "https://a.klaviyo.com/api/profile-bulk-import-jobs/KJ1/profiles?page[cursor]=1"}}),
        (200, {"data": [{"type": "profile", "id": "01KC", "attributes": {"email": "cy@example.com"}}],
               "links": {"next": None}}))
    outcome = read_job("http://k", "KJ1", "email", call)
    assert outcome.failed == {key("bad@x"): "Klaviyo invalid: Invalid email address"}
    assert outcome.ids == {key("ada@example.com"): "01KA", key("cy@example.com"): "01KC"}
    assert asked[-1] == "http://k/api/profile-bulk-import-jobs/KJ1/profiles?page[cursor]=1"


def test_an_expired_job_sends_every_record_again():
    call, _ = answers((404, {"errors": [{"code": "not_found"}]}))
    outcome = read_job("http://k", "KJ1", "email", call)
    assert (outcome.only_listed_written, outcome.went_again(key("ada@example.com"))) == (True, True)


def test_a_job_whose_errors_cannot_be_read_is_read_again_later():
    call, _ = answers((200, job("complete")), (503, {}))
    assert read_job("http://k", "KJ1", "email", call) is None

