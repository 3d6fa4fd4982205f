"""Meta CAPI events and Custom Audience rows: what is hashed, what is not, and what Meta would reject."""

from datetime import UTC, datetime
from decimal import Decimal

from cdp_assets.activation.meta import (
    AUDIENCE_SCHEMA,
    MetaSettings,
    audience_bodies,
    audience_row,
    events_body,
    purchase_event,
    purchase_problem,
)
from cdp_assets.privacy.pii import sha256_hex

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
CONVERSION = {
    "order_id": "O42", "contact_id": " User-123 ", "order_ts": datetime(2026, 11, 21, 18, 30),
    "value": Decimal("123.45"), "currency": "USD", "action_source": "website",
    "client_ip": "203.0.113.7", "user_agent": "Mozilla/5.0", "fbc": "fb.1.1554763741205.AbCdEf",
    "fbp": "fb.1.1558571054389.1098115397", "event_source_url": "https://shop.example.com/thanks",
    "product_ids": "SKU-1|SKU-2", "email": "John_Smith@gmail.com", "phone_e164": "+16505551212",
    "first_name": "Mary", "last_name": "O'Brien-Smith", "city": "St. Louis", "state": "Missouri",
    "postal_code": "63101", "country": "United States",
}


def test_purchase_event_hashes_customer_information_and_passes_click_ids_through():
    event = purchase_event(CONVERSION)

    assert event == {
        "event_name": "Purchase",
        "event_time": 1795285800,
        "event_id": "O42",
        "action_source": "website",
        "event_source_url": "https://shop.example.com/thanks",
        "user_data": {
            "em": ["62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"],
            "ph": ["e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"],
            "fn": ["6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"],
            "ln": ["16765783f9c8c8a3accf27f1abb877688cb5904c21a4a7afb5f125bcfcb246ba"],
            "ct": ["8ba24bdf99947996f3000259be455de791b06fcc0e802ce05031030df1ee8ea3"],
            "st": [sha256_hex("mo")],
            "zp": [sha256_hex("63101")],
            "country": ["79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621"],
            "external_id": ["fcdec6df4d44dbc637c7c5b58efface52a7f8a88535423430255be0bb89bedd8"],
            "client_ip_address": "203.0.113.7",
            "client_user_agent": "Mozilla/5.0",
            "fbc": "fb.1.1554763741205.AbCdEf",
            "fbp": "fb.1.1558571054389.1098115397",
        },
        "custom_data": {"currency": "usd", "value": 123.45, "order_id": "O42",
                        "contents": [{"id": "SKU-1", "quantity": 1}, {"id": "SKU-2", "quantity": 1}]},
    }


def test_event_within_the_window_may_be_sent():
    assert purchase_problem(purchase_event(CONVERSION), NOW, 7) is None


def test_event_older_than_seven_days_is_refused_with_its_age():
    event = purchase_event({**CONVERSION, "order_ts": datetime(2026, 11, 10, 12, 0)})

    assert purchase_problem(event, NOW, 7) == "event_time is 12 days old; Meta accepts at most 7"


def test_physical_store_events_may_be_62_days_old():
    event = purchase_event({**CONVERSION, "order_ts": datetime(2026, 10, 1), "action_source": "physical_store"})

    assert purchase_problem(event, NOW, 7) is None


def test_website_event_without_user_agent_is_refused():
    event = purchase_event({**CONVERSION, "user_agent": None})

    assert purchase_problem(event, NOW, 7) == "website events need client_user_agent and event_source_url"


def test_event_with_nothing_to_match_on_is_refused():
    bare = {k: v for k, v in CONVERSION.items()
            if k not in ("email", "phone_e164", "contact_id", "fbc", "fbp", "client_ip")}
    event = purchase_event({**bare, "action_source": "phone_call"})

    assert purchase_problem(event, NOW, 7) == "no customer information to match on"


def test_test_event_code_is_added_only_when_configured():
    assert events_body([], None) == {"data": []}
    assert events_body([], "TEST123") == {"data": [], "test_event_code": "TEST123"}


def test_audience_row_follows_the_schema_with_an_unhashed_extern_id():
    row = audience_row({"profile_id": "p_1", "email": "  Jane.Doe@Gmail.COM ", "phone_e164": None,
                        "first_name": "Mary", "last_name": None, "city": None, "state": "CA",
                        "postal_code": "94025-1234", "country": "US"})

    assert dict(zip(AUDIENCE_SCHEMA, row, strict=True)) == {
        "EXTERN_ID": "p_1",
        "EMAIL": "831f6494ad6be4fcb3a724c3d5fef22d3ceffa3c62ef3a7984e45a0ea177f982",
        "PHONE": "",
        "FN": "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec",
        "LN": "",
        "CT": "",
        "ST": "6959097001d10501ac7d54c0bdb8db61420f658f2922cc26e46d536119a31126",
        "ZIP": "b9a9cf3cd3723a2e91b7c23ecf68456e872b6e5d86e5cab7f3d45a7302da32c7",
        "COUNTRY": "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621",
    }


def test_member_without_email_or_phone_cannot_be_uploaded():
    assert audience_row({"profile_id": "p_1", "email": None, "phone_e164": None, "first_name": "Mary"}) is None


def test_audience_upload_is_split_into_numbered_batches_of_ten_thousand():
    rows = [["p", "h", "", "", "", "", "", "", ""]] * 25_001

    bodies = audience_bodies(rows, session=99)

    assert [len(b["payload"]["data"]) for b in bodies] == [10_000, 10_000, 5_001]
    assert [b["session"] for b in bodies] == [
        {"session_id": 99, "batch_seq": 1, "last_batch_flag": False, "estimated_num_total": 25_001},
        {"session_id": 99, "batch_seq": 2, "last_batch_flag": False, "estimated_num_total": 25_001},
        {"session_id": 99, "batch_seq": 3, "last_batch_flag": True, "estimated_num_total": 25_001},
    ]


def test_missing_account_ids_show_as_placeholders_in_urls(monkeypatch):
    monkeypatch.setenv("META_GRAPH_URL", "http://127.0.0.1:9999/")
    settings = MetaSettings.from_env()

    assert settings.events_url() == "http://127.0.0.1:9999/v25.0/{META_PIXEL_ID}/events"
    assert settings.audience_users_url(None) == "http://127.0.0.1:9999/v25.0/{AUDIENCE_ID}/users"
