"""Conversion events and audience rows per platform: what is hashed, what is not, what would be refused."""

from datetime import UTC, datetime
from decimal import Decimal

from cdp_assets.activation.config import Destination
from cdp_assets.activation.destinations.google_ads.client import (
    GoogleAdsConversions,
    GoogleCustomerMatch,
    user_identifiers,
)
from cdp_assets.activation.destinations.meta.client import AUDIENCE_SCHEMA, MetaAudience, MetaCapi
from cdp_assets.activation.destinations.pinterest.client import PinterestConversions
from cdp_assets.activation.destinations.tiktok.client import TikTokEvents
from cdp_assets.privacy.pii import sha256_hex

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
CONVERSION = {
    "order_id": "O42", "contact_id": " User-123 ", "order_ts": datetime(2026, 11, 21, 18, 30),
    "value": Decimal("123.45"), "currency": "USD", "action_source": "website",
    "client_ip": "203.0.113.7", "user_agent": "Mozilla/5.0", "fbc": "fb.1.1554763741205.AbCdEf",
    "fbp": "fb.1.1558571054389.1098115397", "event_source_url": "https://shop.example.com/thanks",
    "product_ids": "SKU-1|SKU-2", "email": "John_Smith@gmail.com", "phone_e164": "+16505551212",
    "first_name": "Mary", "last_name": "O'Brien-Smith", "city": "St. Louis", "state": "Missouri",
    "postal_code": "63101", "country": "United States", "gclid": "Cj0KCQjw", "ttclid": "E.C.P.tt",
    "ads_personalization": True,
}
EM_META = "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"
PH_DIGITS = "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"
PH_PLUS = "1e231c66011e7a2d867a9cfae267a6aff103cf4913640b6e71a99850fc0ffbc8"
EXTERNAL_ID = "fcdec6df4d44dbc637c7c5b58efface52a7f8a88535423430255be0bb89bedd8"


def destination(platform: str, event_name: str | None = "Purchase", **overrides) -> Destination:
    return Destination(platform, platform, True, "marketing", overrides.pop("max_age", 7), event_name, **overrides)


META = MetaCapi(destination("meta_capi"))


def test_meta_event_hashes_customer_information_and_passes_click_ids_through():
    assert META.event(CONVERSION) == {
        "event_name": "Purchase", "event_time": 1795285800, "event_id": "O42", "action_source": "website",
        "event_source_url": "https://shop.example.com/thanks",
        "user_data": {
            "em": [EM_META], "ph": [PH_DIGITS],
            "fn": ["6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"],
            "ln": ["16765783f9c8c8a3accf27f1abb877688cb5904c21a4a7afb5f125bcfcb246ba"],
            "ct": ["8ba24bdf99947996f3000259be455de791b06fcc0e802ce05031030df1ee8ea3"],
            "st": [sha256_hex("mo")], "zp": [sha256_hex("63101")],
            "country": ["79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621"],
            "external_id": [EXTERNAL_ID], "client_ip_address": "203.0.113.7", "client_user_agent": "Mozilla/5.0",
            "fbc": "fb.1.1554763741205.AbCdEf", "fbp": "fb.1.1558571054389.1098115397",
        },
        "custom_data": {"currency": "usd", "value": 123.45, "order_id": "O42",
                        "contents": [{"id": "SKU-1", "quantity": 1}, {"id": "SKU-2", "quantity": 1}]},
        "data_processing_options": [],
    }


def test_event_id_follows_the_configured_pixel_template():
    templated = MetaCapi(destination("meta_capi", event_id="purchase-{order_id}"))
    assert templated.event(CONVERSION)["event_id"] == "purchase-O42"


def test_a_californian_without_ads_personalization_consent_is_sent_with_limited_data_use():
    event = META.event({**CONVERSION, "state": "California", "ads_personalization": False})
    assert (event["data_processing_options"], event["data_processing_options_country"],
            event["data_processing_options_state"]) == (["LDU"], 1, 1000)


def test_event_within_the_window_may_be_sent():
    assert META.problem(META.event(CONVERSION), NOW) is None


def test_event_older_than_seven_days_is_refused_with_its_age():
    event = META.event({**CONVERSION, "order_ts": datetime(2026, 11, 10, 12, 0)})
    assert META.problem(event, NOW) == "event_time is 12 days old; Meta accepts at most 7"


def test_physical_store_events_may_be_62_days_old():
    event = META.event({**CONVERSION, "order_ts": datetime(2026, 10, 1), "action_source": "physical_store"})
    assert META.problem(event, NOW) is None


def test_website_event_without_user_agent_is_refused():
    event = META.event({**CONVERSION, "user_agent": None})
    assert META.problem(event, NOW) == "website events need client_user_agent and event_source_url"


def test_event_with_nothing_to_match_on_is_refused():
    bare = {k: v for k, v in CONVERSION.items()
            if k not in ("email", "phone_e164", "contact_id", "fbc", "fbp", "client_ip")}
    assert META.problem(META.event({**bare, "action_source": "phone_call"}), NOW) == \
        "no customer information to match on"


def test_a_currency_that_is_not_iso_4217_is_refused():
    assert META.problem(META.event({**CONVERSION, "currency": "XXY"}), NOW) == \
        "currency 'xxy' is not an ISO 4217 code"


def test_test_event_code_is_added_only_when_configured(monkeypatch):
    assert META.request("track_events", [], True).body == {"data": []}
    monkeypatch.setenv("META_TEST_EVENT_CODE", "TEST123")
    assert MetaCapi(destination("meta_capi")).request("track_events", [], True).body == \
        {"data": [], "test_event_code": "TEST123"}


def test_a_second_account_reads_its_own_renamed_variables(monkeypatch):
    monkeypatch.setenv("META_PIXEL_ID", "111")
    monkeypatch.setenv("META_PIXEL_ID_EU", "222")
    eu = MetaCapi(destination("meta_capi", env={"META_PIXEL_ID": "META_PIXEL_ID_EU"}))
    assert eu.request("track_events", [], True).url == "https://graph.facebook.com/v25.0/222/events"


def test_missing_account_ids_show_as_placeholders_in_urls(monkeypatch):
    monkeypatch.setenv("META_GRAPH_URL", "http://127.0.0.1:9999/")
    capi = MetaCapi(destination("meta_capi"))
    audience = MetaAudience(destination("meta_custom_audiences"), None)
    audience.start_session(7, 1, 1)
    assert capi.request("track_events", [], True).url == "http://127.0.0.1:9999/v25.0/{META_PIXEL_ID}/events"
    assert audience.request("add", [], True).url == "http://127.0.0.1:9999/v25.0/{AUDIENCE_ID}/users"
    assert capi.missing() == ["META_ACCESS_TOKEN", "META_PIXEL_ID"]


def test_audience_row_follows_the_schema_with_an_unhashed_extern_id():
    channel = MetaAudience(destination("meta_custom_audiences"), "6000")
    row = channel.row("p_1", {"em": "831f6494", "st": "69590970", "zp": "b9a9cf3c"})
    assert dict(zip(AUDIENCE_SCHEMA, row, strict=True)) == {
        "EXTERN_ID": "p_1", "EMAIL": "831f6494", "PHONE": "", "FN": "", "LN": "", "CT": "", "ST": "69590970",
        "ZIP": "b9a9cf3c", "COUNTRY": ""}


def test_audience_batches_share_a_session_with_increasing_seq_and_one_last_flag():
    channel = MetaAudience(destination("meta_custom_audiences"), "6000")
    channel.start_session(99, 1, 25_001)
    bodies = [channel.request("add", [["p"]], last).body for last in (False, False, True)]
    assert [b["session"] for b in bodies] == [
        {"session_id": 99, "batch_seq": 1, "last_batch_flag": False, "estimated_num_total": 25_001},
        {"session_id": 99, "batch_seq": 2, "last_batch_flag": False, "estimated_num_total": 25_001},
        {"session_id": 99, "batch_seq": 3, "last_batch_flag": True, "estimated_num_total": 25_001},
    ]


def test_removes_go_out_as_delete_and_replace_as_usersreplace():
    channel = MetaAudience(destination("meta_custom_audiences"), "6000")
    channel.start_session(1, 1, 1)
    assert [(r.method, r.url.rsplit("/", 1)[1]) for r in
            (channel.request("remove", [], True), channel.request("replace", [], True))] == \
        [("DELETE", "users"), ("POST", "usersreplace")]


def test_google_conversion_hashes_plus_e164_phones_and_carries_consent_and_gclid():
    google = GoogleAdsConversions(destination("google_ads_conversions", max_age=90))
    conversion = google.event({**CONVERSION, "ads_personalization": False})
    assert conversion == {
        "conversionAction": "customers/{GOOGLE_ADS_CUSTOMER_ID}/conversionActions/{GOOGLE_ADS_CONVERSION_ACTION}",
        "conversionDateTime": "2026-11-21 18:30:00+00:00", "orderId": "O42", "conversionValue": 123.45,
        "currencyCode": "USD", "gclid": "Cj0KCQjw",
        "userIdentifiers": [
            {"hashedEmail": sha256_hex("john_smith@gmail.com")}, {"hashedPhoneNumber": PH_PLUS},
            {"addressInfo": {"hashedFirstName": sha256_hex("mary"), "hashedLastName": sha256_hex("o'brien-smith"),
                             "countryCode": "US", "postalCode": "63101"}}],
        "consent": {"adUserData": "GRANTED", "adPersonalization": "DENIED"},
    }
    assert google.problem(conversion, NOW) is None


def test_google_identifiers_leave_out_an_incomplete_address():
    assert user_identifiers({"em": "a", "fn": "b", "ln": "c", "country": "US"}) == [{"hashedEmail": "a"}]


def test_customer_match_operations_go_to_the_job_with_partial_failure_enabled():
    channel = GoogleCustomerMatch(destination("google_customer_match", None), "555")
    channel.job = "customers/1/offlineUserDataJobs/9"
    request = channel.request("remove", [{"userIdentifiers": [{"hashedEmail": "a"}]}], True)
    assert (request.url, request.body) == (
        "https://googleads.googleapis.com/v22/customers/1/offlineUserDataJobs/9:addOperations",
        {"enablePartialFailure": True, "operations": [{"remove": {"userIdentifiers": [{"hashedEmail": "a"}]}}]})


def test_tiktok_event_hashes_plus_e164_and_sends_address_fields_in_clear():
    tiktok = TikTokEvents(destination("tiktok_events", "CompletePayment"))
    event = tiktok.event(CONVERSION)
    assert event["user"] == {
        "email": [EM_META], "phone": [PH_PLUS], "external_id": [EXTERNAL_ID], "zip_code": sha256_hex("63101"),
        "city": "stlouis", "state": "mo", "country": "us", "ttclid": "E.C.P.tt", "ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0"}
    assert (event["event"], event["limited_data_use"], tiktok.source(CONVERSION)) == ("CompletePayment", False, "web")


def test_pinterest_event_sends_value_as_a_string_and_needs_email_or_ip_and_agent():
    pinterest = PinterestConversions(destination("pinterest_conversions", "checkout"))
    event = pinterest.event(CONVERSION)
    assert (event["custom_data"]["value"], event["action_source"], event["user_data"]["ph"]) == \
        ("123.45", "web", [PH_DIGITS])
    anonymous = pinterest.event({**CONVERSION, "email": None, "client_ip": None})
    assert pinterest.problem(anonymous, NOW) == \
        "Pinterest needs an email, a mobile ad id, or IP address and user agent together"


def test_a_row_that_cannot_become_an_event_is_dead_lettered_with_the_reason_not_a_failed_run():
    from cdp_assets.activation.outbox import build_page

    good = {**CONVERSION, "suppressed": False, "deletion_pending": False, "consented": True}
    broken = {**good, "order_id": "O43", "value": None}
    names = list(good)
    table, plan = build_page(destination("meta_capi"), names, [tuple(good[n] for n in names),
                                                               tuple(broken[n] for n in names)], "2026-11-21", NOW)

    assert table.column("record_key").to_pylist() == ["O42", "O43"]
    assert table.column("problem").to_pylist() == [
        None, "cannot build the event: TypeError: float() argument must be a string or a real number, not 'NoneType'"]
    assert (plan.counts["events_prepared"], plan.counts["dead_letters"]) == (1, 1)
