"""The outbound-body check: raw emails or phones, unhashed fields and repeated event ids are caught."""

from cdp_assets.activation.destinations.registry import ad_platforms
from cdp_assets.activation.safety import body_problems, match_quality

CAPI, AUDIENCES = (ad_platforms()[name] for name in ("meta_capi", "meta_custom_audiences"))
HASH = "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"


def test_a_clean_body_has_no_problems():
    body = {"data": [{"event_id": "1", "user_data": {"em": [HASH], "client_ip_address": "203.0.113.7",
                                                     "fbc": "fb.1.1554763741205.AbC"},
                      "event_source_url": "https://shop.example.com/a@b"}]}
    assert body_problems([body], [("Purchase", "1")], CAPI) == {}


def test_a_raw_email_anywhere_else_is_caught():
    body = {"data": [{"custom_data": {"contents": [{"note": "call jane.doe@example.com"}]}}]}
    assert body_problems([body], [], CAPI) == {"note holds something shaped like an email address": 1}


def test_a_raw_phone_is_caught():
    assert body_problems([{"data": [{"custom_data": {"note": "+1 (650) 555-1212"}}]}], [], CAPI) == {
        "note holds something shaped like a phone number": 1}


def test_a_hashed_field_that_is_not_64_lowercase_hex_is_caught():
    assert body_problems([{"data": [{"user_data": {"em": ["jane@example.com"], "ph": [HASH.upper()]}}]}], [],
                         CAPI) == {
        "em is not 64 lowercase hex": 1, "ph is not 64 lowercase hex": 1}


def test_an_unhashed_audience_column_is_caught_but_extern_id_is_not_hashed():
    body = {"payload": {"schema": ["EXTERN_ID", "EMAIL"], "data": [["p_1", "jane@example.com"], ["p_2", HASH]]}}
    assert body_problems([body], [], AUDIENCES) == {"EMAIL is not 64 lowercase hex": 1}


def test_repeated_event_ids_are_counted():
    assert body_problems([], [("Purchase", "1"), ("Purchase", "1"), ("Purchase", "2")], CAPI) == {
        "event ids repeated in one plan": 1}


def test_match_quality_weighs_the_identifiers_an_event_carries():
    full = {"user_data": {"em": [HASH], "ph": [HASH], "fbc": "c", "fbp": "p", "external_id": [HASH],
                          "client_ip_address": "ip", "client_user_agent": "ua", "fn": [HASH], "zp": [HASH]}}
    assert (match_quality(full), match_quality({"user_data": {"em": [HASH]}}), match_quality({"user_data": {}})) == \
        (10.0, 2.73, 0.0)
