"""An ad platform is one folder: a throwaway one declared in a temporary folder is a `platform:` of destinations.yaml,
with its icons, hashing rules, PII policy and outbox operation, and no other file changes."""

import textwrap
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cdp_assets.activation.config import load_destinations
from cdp_assets.activation.destinations.registry import ad_platforms, discover
from cdp_assets.activation.outbox import build_page
from cdp_assets.activation.plan import asset_args
from cdp_assets.activation.safety import body_problems
from cdp_assets.privacy.hashing import prepare
from cdp_assets.settings import ConfigError

# Pinterest's channel and rules, but Google's form of an email (Gmail dots dropped), so its hashes are its own.
THROWAWAY = '''
"""An ad platform that exists only in this test."""
from cdp_assets.activation.destinations.ads import AdPlatform
from cdp_assets.activation.destinations.base import PiiPolicy
from cdp_assets.activation.destinations.google_ads.hashing import google_email
from cdp_assets.activation.destinations.pinterest.client import PinterestConversions
from cdp_assets.activation.destinations.pinterest.hashing import RULES
from cdp_assets.privacy.hashing import FieldRule, HashingRules

PLATFORMS = (AdPlatform(
    name="acme_conversions", strategy="events", title="Acme Conversions", kind="acme", channel=PinterestConversions,
    variables=("PINTEREST_ACCESS_TOKEN", "PINTEREST_AD_ACCOUNT_ID", "PINTEREST_API_URL"),
    pii=PiiPolicy(hashed=frozenset({"em", "ph", "fn", "ln", "external_id"}),
                  clear=frozenset({"client_ip_address", "client_user_agent"}),
                  exempt=frozenset({"event_source_url", "event_id", "order_id", "content_ids"})),
    hashing=HashingRules("acme", {**RULES.fields, "em": FieldRule(google_email)}),
    event_name="sale", max_event_age_days=3, operation="acme_events"),)
'''
YAML = """
destinations:
  acme:
    platform: acme_conversions
    enabled: true
    consent_purpose: marketing
    env: {PINTEREST_ACCESS_TOKEN: ACME_TOKEN}
"""
ROW = {"order_id": "O42", "contact_id": "c1", "order_ts": datetime(2026, 11, 21, 18, 30), "value": Decimal("9.50"),
       "currency": "EUR", "action_source": "website", "client_ip": "203.0.113.7", "user_agent": "Mozilla/5.0",
       "event_source_url": "https://shop.example.com/thanks", "product_ids": "SKU-1", "email": "Jane.Doe@gmail.com",
       "phone_e164": "+16505551212", "first_name": "Jane", "last_name": "Doe", "city": "Paris", "state": None,
       "postal_code": "75001", "country": "France", "suppressed": False, "deletion_pending": False, "consented": True}


@pytest.fixture
def acme(tmp_path, monkeypatch):
    (tmp_path / "ads" / "acme").mkdir(parents=True)
    (tmp_path / "ads" / "acme" / "__init__.py").write_text(textwrap.dedent(THROWAWAY))
    monkeypatch.setenv("CDP_DESTINATION_DIRS", str(tmp_path / "ads"))
    (tmp_path / "destinations.yaml").write_text(YAML)
    return load_destinations(tmp_path / "destinations.yaml")["acme"]


def test_an_ad_platform_folder_outside_the_package_is_a_platform_of_destinations_yaml(acme):
    assert (acme.platform, acme.event_name, acme.max_event_age_days, acme.variable("PINTEREST_ACCESS_TOKEN")) == \
        ("acme_conversions", "sale", 3, "ACME_TOKEN")
    assert asset_args(acme, [], "duckdb")["kinds"] == {"python", "acme", "duckdb"}
    assert "acme_conversions" in ad_platforms() and "acme" not in discover()


def test_its_events_are_hashed_by_its_rules_and_checked_by_its_policy(acme):
    assert prepare("acme", "em", "Jane.Doe@gmail.com") == prepare("google", "em", "Jane.Doe@gmail.com") != \
        prepare("pinterest", "em", "Jane.Doe@gmail.com")
    names = list(ROW)
    table, plan = build_page(acme, names, [tuple(ROW[n] for n in names)], "2026-11-21",
                             datetime(2026, 11, 22, tzinfo=UTC))
    assert table.column("operation").to_pylist() == ["acme_events"]
    (event,) = plan.samples
    assert event["user_data"]["em"] == [prepare("acme", "em", "Jane.Doe@gmail.com")]
    assert (plan.problems, table.column("problem").to_pylist()) == ({}, [None])


def test_its_policy_decides_what_may_travel_in_clear(acme):
    platform = acme.ad_platform
    # Its policy does not take ge hashed or fbc in clear, as Pinterest's and Meta's do: both are scanned as text.
    body = {"data": [{"user_data": {"em": ["jane@example.com"], "ge": ["jane@example.com"],
                                    "client_ip_address": "203.0.113.7", "fbc": "+1 650 555 1212"}}]}
    assert body_problems([body], [], platform) == {
        "em is not 64 lowercase hex": 1, "ge holds something shaped like an email address": 1,
        "fbc holds something shaped like a phone number": 1}


def test_a_platform_declared_twice_is_refused(tmp_path, monkeypatch):
    for folder in ("acme", "acme_again"):
        (tmp_path / "ads" / folder).mkdir(parents=True)
        (tmp_path / "ads" / folder / "__init__.py").write_text(textwrap.dedent(THROWAWAY))
    with pytest.raises(ConfigError, match="an ad platform named 'acme_conversions' is already defined in"):
        ad_platforms([tmp_path / "ads"])
