"""The outbound check of a records sync follows its destination's own PII policy."""

from collections import Counter

from cdp_assets.activation.destinations.registry import discover
from cdp_assets.activation.records.safety import record_problems
from tests.destinations.records_world import make_sync

HUBSPOT = discover()["hubspot"]


def problems(tmp_path, outbound, **changes) -> dict:
    found: Counter = Counter()
    sync = make_sync(tmp_path, **changes)
    record_problems(outbound, sync, HUBSPOT.policy(sync), found)
    return dict(found)


def test_a_crm_may_receive_the_personal_fields_its_sync_maps_in_clear(tmp_path):
    assert problems(tmp_path, {"email": "ada@example.com", "firstname": "Ada", "cdp_lifetime_value": "12"}) == {}


def test_a_declared_but_unmapped_personal_field_fails(tmp_path):
    assert problems(tmp_path, {"email": "ada@example.com", "phone": "+14155550101"}) == {
        "phone is personal data the sync does not map": 1}


def test_an_email_in_a_field_outside_the_policy_fails(tmp_path):
    fields = {"rfm_segment": {"field": "cdp_notes"}}
    assert problems(tmp_path, {"email": "ada@example.com", "cdp_notes": "write to ada@example.com"},
                    fields=fields) == {"cdp_notes holds something shaped like an email address": 1}


def test_a_phone_in_a_field_outside_the_policy_fails(tmp_path):
    fields = {"rfm_segment": {"field": "cdp_notes"}}
    assert problems(tmp_path, {"cdp_notes": "+1 415 555 0101"}, fields=fields) == {
        "cdp_notes holds something shaped like a phone number": 1}


def test_dates_and_numbers_are_never_taken_for_phone_numbers(tmp_path):
    assert problems(tmp_path, {"cdp_last_order_at": "2026-11-30T10:00:00.000Z", "cdp_lifetime_value": "123456789.5"}
                    ) == {}

