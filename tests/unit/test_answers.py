"""How each platform's answer is read: retried, refused, partly accepted, or a stop for bad credentials."""

import json

from cdp_assets.activation.config import Destination
from cdp_assets.activation.destinations.google_ads.client import GoogleAdsConversions
from cdp_assets.activation.destinations.meta import client as meta
from cdp_assets.activation.destinations.pinterest.client import PinterestConversions
from cdp_assets.activation.destinations.tiktok.client import TikTokEvents
from cdp_assets.activation.transport import AUTH, OK, PARTIAL, REJECTED, TRANSIENT, http_reply, retry_after_seconds


def graph_error(code: int, subcode: int | None = None, transient: bool = False) -> str:
    return json.dumps({"error": {"message": "m", "code": code, "error_subcode": subcode, "is_transient": transient,
                                 "fbtrace_id": "trace"}})


def test_generic_statuses_are_read_as_the_platforms_mean_them():
    assert [http_reply(s, "", {}).kind for s in (200, 400, 401, 403, 408, 429, 500, 503)] == [
        OK, REJECTED, AUTH, AUTH, TRANSIENT, TRANSIENT, TRANSIENT, TRANSIENT]


def test_retry_after_is_read_in_seconds_or_as_a_date_in_the_past():
    assert retry_after_seconds({"Retry-After": "7"}) == 7.0
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({}) is None


def test_meta_rate_limit_and_transient_codes_are_retried():
    assert [meta.interpret(400, graph_error(code), {}).kind for code in (1, 2, 4, 17, 341, 368, 80003)] == \
        [TRANSIENT] * 7
    assert meta.interpret(400, graph_error(99999, transient=True), {}).kind == TRANSIENT


def test_meta_token_and_permission_errors_stop_the_destination():
    assert [meta.interpret(400, graph_error(code, 463), {}).kind for code in (190, 200)] == [AUTH, AUTH]


def test_meta_invalid_parameter_refuses_the_batch_with_its_trace_id():
    reply = meta.interpret(400, graph_error(100, 2804003), {})
    assert (reply.kind, reply.message, reply.trace_id) == (REJECTED, "Meta error 100/2804003: m", "trace")


def test_meta_success_reports_events_received_and_trace():
    reply = meta.interpret(200, json.dumps({"events_received": 3, "messages": [], "fbtrace_id": "t1"}), {})
    assert (reply.kind, reply.reported, reply.trace_id) == (OK, {"events_received": 3}, "t1")


def google() -> GoogleAdsConversions:
    return GoogleAdsConversions(Destination("g", "google_ads_conversions", True, "marketing", 90, "Purchase"))


def google_error(status: str, code: dict) -> str:
    return json.dumps({"error": {"code": 400, "status": status, "message": "m",
                                 "details": [{"errors": [{"errorCode": code, "message": "m"}]}]}})


def test_google_concurrent_modification_arrives_as_400_and_is_retried():
    reply = google().interpret("upload", 400, google_error("ABORTED", {"databaseError": "CONCURRENT_MODIFICATION"}),
                               {})
    assert reply.kind == TRANSIENT


def test_google_unauthenticated_refreshes_the_token_once_then_stops():
    client = google()
    client.access_token = "old"
    first = client.interpret("upload", 401, google_error("UNAUTHENTICATED", {}), {})
    second = client.interpret("upload", 401, google_error("UNAUTHENTICATED", {}), {})
    assert (first.kind, client.access_token, second.kind) == (TRANSIENT, None, AUTH)


def test_google_partial_failure_maps_field_paths_to_rows():
    body = json.dumps({"results": [{}, {}, {}], "partialFailureError": {"code": 3, "message": "some failed",
                       "details": [{"errors": [
                           {"errorCode": {"conversionUploadError": "UNPARSEABLE_GCLID"}, "message": "bad gclid",
                            "location": {"fieldPathElements": [{"fieldName": "conversions", "index": 2}]}}]}]}})
    reply = google().interpret("upload", 200, body, {"request-id": "r1"})
    assert (reply.kind, reply.failed_rows, reply.trace_id) == (
        PARTIAL, {2: "Google Ads UNPARSEABLE_GCLID: bad gclid"}, "r1")


def tiktok(code: int) -> str:
    return TikTokEvents(Destination("t", "tiktok_events", True, "marketing", 7, "CompletePayment")).interpret(
        "web", 200, json.dumps({"code": code, "message": "m", "request_id": "r"}), {}).kind


def test_tiktok_reads_its_body_code_because_errors_come_back_as_http_200():
    assert [tiktok(c) for c in (0, 20001, 40100, 40001, 40002, 50002)] == [OK, OK, TRANSIENT, AUTH, REJECTED,
                                                                          TRANSIENT]


def test_pinterest_failed_events_are_partial_failures_in_request_order():
    channel = PinterestConversions(Destination("p", "pinterest_conversions", True, "marketing", 7, "checkout"))
    body = json.dumps({"num_events_received": 2, "num_events_processed": 1, "events": [
        {"status": "processed"}, {"status": "failed", "error_message": "bad em"}]})
    reply = channel.interpret("send", 200, body, {})
    assert (reply.kind, reply.failed_rows) == (PARTIAL, {1: "Pinterest: bad em"})
