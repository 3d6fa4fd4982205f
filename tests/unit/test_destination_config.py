"""destinations.yaml is validated on load: every mistake is named with its file and field."""

import pytest

from cdp_assets.activation.config import conversion_statuses, load_audience_syncs, load_destinations
from cdp_assets.audiences.config import AudienceSettings
from cdp_assets.settings import ConfigError


def write(tmp_path, text: str):
    path = tmp_path / "destinations.yaml"
    path.write_text(text)
    return path


def test_the_shipped_file_enables_the_seven_destinations_with_their_event_names():
    destinations = load_destinations()
    assert {d.name: (d.platform, d.event_name, d.max_event_age_days) for d in destinations.values()} == {
        "meta_capi": ("meta_capi", "Purchase", 7),
        "meta_custom_audiences": ("meta_custom_audiences", None, None),
        "google_ads_conversions": ("google_ads_conversions", "Purchase", 90),
        "google_customer_match": ("google_customer_match", None, None),
        "tiktok_events": ("tiktok_events", "CompletePayment", 7),
        "pinterest_conversions": ("pinterest_conversions", "checkout", 7),
        "ga4_measurement_protocol": ("ga4_measurement_protocol", "purchase", 3),
    }
    assert conversion_statuses() == ("completed", "paid", "fulfilled")


def test_an_unknown_platform_is_refused_by_name(tmp_path):
    with pytest.raises(ConfigError, match=r"destinations\.snap\.platform must be one of .*meta_capi"):
        load_destinations(write(tmp_path, "destinations:\n  snap:\n    platform: snapchat\n"))


def test_an_account_may_rename_only_its_own_platforms_variables(tmp_path):
    path = write(tmp_path, "destinations:\n  eu:\n    platform: meta_capi\n    env: {TIKTOK_ACCESS_TOKEN: X}\n")
    with pytest.raises(ConfigError, match=r"destinations\.eu\.env may rename only this platform's variables"):
        load_destinations(path)


def test_an_event_id_template_may_use_only_order_and_contact_ids(tmp_path):
    path = write(tmp_path, "destinations:\n  m:\n    platform: meta_capi\n    event_id: '{session_id}'\n")
    with pytest.raises(ConfigError, match=r"event_id may use only \{order_id\} and \{contact_id\}"):
        load_destinations(path)


def test_a_misspelt_setting_is_refused(tmp_path):
    path = write(tmp_path, "destinations:\n  m:\n    platform: meta_capi\n    enabeld: true\n")
    with pytest.raises(ConfigError, match="unknown settings enabeld"):
        load_destinations(path)


def test_cancelled_and_refunded_orders_can_never_count_as_conversions(tmp_path):
    path = write(tmp_path, "conversions:\n  statuses: [completed, refunded]\ndestinations: {}\n")
    with pytest.raises(ConfigError, match="lists refunded; a cancelled or refunded order is never a conversion"):
        conversion_statuses(path)


def test_an_audience_cannot_be_sent_to_a_conversions_destination():
    audience = AudienceSettings("buyers", "marketing", "add_remove", {"meta_capi": "1"})
    with pytest.raises(ConfigError, match=r"destinations\.meta_capi takes conversion events, not audiences"):
        load_audience_syncs(load_destinations(), {"buyers": audience})
