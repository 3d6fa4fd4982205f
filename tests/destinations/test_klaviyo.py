"""Klaviyo profiles kept in step with the unified profile, on DuckDB and PostgreSQL, against the local fake."""

from dataclasses import replace

import pytest

from tests.destinations.klaviyo_world import klaviyo_sync, materialize
from tests.destinations.records_world import FAST, build_world, execute, go_live, metadata, query
from tests.fakes.klaviyo import FakeKlaviyo

IMPORTS = "/api/profile-bulk-import-jobs/"
SUBSCRIBES = "/api/profile-subscription-bulk-create-jobs/"


@pytest.fixture
def klaviyo(monkeypatch):
    with FakeKlaviyo(import_polls_until_done=2) as fake:
        go_live(monkeypatch, fake)
        yield fake


@pytest.fixture
def world(warehouse, tmp_path):
    build_world(warehouse)
    return warehouse, klaviyo_sync(tmp_path)


def imported(fake: FakeKlaviyo) -> list[str]:
    """The email of every profile of every import job the fake received, in order."""
    return [p["attributes"]["email"] for r in fake.requests if r["method"] == "POST" and r["path"] == IMPORTS
            for p in r["body"]["data"]["attributes"]["profiles"]["data"]]


def vip_list(fake: FakeKlaviyo) -> str:
    [list_id] = [i for i, v in fake.lists.items() if v["name"] == "cdp: vip"]
    return list_id


def open_jobs(warehouse) -> int:
    return query(warehouse, "SELECT count(*) FROM activation.record_jobs")[0][0]


def test_a_first_sync_imports_every_eligible_profile_once_with_exact_values(world, klaviyo):
    warehouse, sync = world
    assert materialize(warehouse, sync).success
    assert sorted(imported(klaviyo)) == ["ada@example.com", "cy@example.com"]
    assert dict(klaviyo.writes) == {"ada@example.com": 1, "cy@example.com": 1}
    ada = klaviyo.by_email("ada@example.com")
    assert {k: v for k, v in ada.items() if k != "id"} == {
        "email": "ada@example.com", "phone_number": "+14155550101", "first_name": "Ada", "last_name": "Lovelace",
        "properties": {"cdp_lifetime_value": 1234.5, "cdp_order_count": 7,
                       "cdp_last_order_at": "2026-11-30T10:00:00.000Z", "cdp_rfm_segment": "545",
                       "cdp_audience_vip": True}}


def test_a_job_that_completes_within_the_polls_after_submitting_is_settled_in_the_same_run(world, klaviyo):
    warehouse, sync = world
    materialize(warehouse, sync)
    assert open_jobs(warehouse) == 0
    assert sorted(query(warehouse, "SELECT destination_id FROM activation.record_state WHERE status = 'present'")) \
        == sorted([(klaviyo.id_of("ada@example.com"),), (klaviyo.id_of("cy@example.com"),)])


def test_a_job_still_running_after_the_polls_is_settled_on_the_next_run(world, klaviyo):
    warehouse, sync = world
    klaviyo.import_polls_until_done = 4
    materialize(warehouse, sync)
    assert open_jobs(warehouse) == 2
    assert klaviyo.list_emails(vip_list(klaviyo)) == set()
    materialize(warehouse, sync)
    assert open_jobs(warehouse) == 0
    assert klaviyo.list_emails(vip_list(klaviyo)) == {"ada@example.com"}
    assert dict(klaviyo.writes) == {"ada@example.com": 1, "cy@example.com": 1}


def test_a_rerun_sends_nothing(world, klaviyo):
    warehouse, sync = world
    materialize(warehouse, sync)
    writes = len([r for r in klaviyo.requests if r["method"] in ("POST", "DELETE")])
    result = materialize(warehouse, sync)
    assert len([r for r in klaviyo.requests if r["method"] in ("POST", "DELETE")]) == writes
    assert (metadata(result)["added"], metadata(result)["changed"], metadata(result)["records_sent"]) == (0, 0, 0)


def test_changing_one_trait_of_one_person_imports_exactly_that_profile(world, klaviyo):
    warehouse, sync = world
    materialize(warehouse, sync)
    execute(warehouse, "UPDATE core.unified_profiles SET lifetime_value = 99.5 WHERE profile_id = 'p3'")
    before = len(imported(klaviyo))
    result = materialize(warehouse, sync)
    assert imported(klaviyo)[before:] == ["cy@example.com"]
    assert klaviyo.by_email("cy@example.com")["properties"]["cdp_lifetime_value"] == 99.5
    assert metadata(result)["changed"] == 1


def test_an_import_error_dead_letters_only_that_record_with_klaviyos_message(world, klaviyo):
    warehouse, sync = world
    klaviyo.poison("cy@example.com")
    result = materialize(warehouse, sync)
    assert metadata(result)["dead_letters"] == 1
    assert query(warehouse, "SELECT reason FROM activation.dead_letters WHERE destination = 'lifecycle_profiles'") \
        == [("Klaviyo invalid: The profile was rejected",)]
    assert query(warehouse, "SELECT count(*) FROM activation.record_state WHERE status = 'present'") == [(1,)]
    assert klaviyo.by_email("cy@example.com") is None


def test_a_person_joining_an_audience_joins_its_list(world, klaviyo):
    warehouse, sync = world
    materialize(warehouse, sync)
    assert klaviyo.list_emails(vip_list(klaviyo)) == {"ada@example.com"}


def test_a_person_leaving_an_audience_flips_the_property_and_leaves_the_list(world, klaviyo):
    warehouse, sync = world
    materialize(warehouse, sync)
    execute(warehouse, "DELETE FROM audiences.memberships WHERE profile_id = 'p1'")
    result = materialize(warehouse, sync)
    assert klaviyo.by_email("ada@example.com")["properties"]["cdp_audience_vip"] is False
    assert klaviyo.list_emails(vip_list(klaviyo)) == set()
    assert metadata(result)["list_removed"] == 1


def test_the_list_is_created_once_and_found_by_name_afterwards(world, klaviyo):
    warehouse, sync = world
    materialize(warehouse, sync)
    execute(warehouse, "UPDATE core.unified_profiles SET lifetime_value = 99.5 WHERE profile_id = 'p3'")
    materialize(warehouse, sync)
    assert [v["name"] for v in klaviyo.lists.values()] == ["cdp: vip"]


def test_only_consented_people_are_subscribed_to_email_marketing_and_never_twice(world, klaviyo):
    warehouse, sync = world
    materialize(warehouse, sync)
    execute(warehouse, "UPDATE core.unified_profiles SET lifetime_value = 99.5 WHERE profile_id = 'p1'")
    materialize(warehouse, sync)
    assert klaviyo.subscribed == {"ada@example.com", "cy@example.com"}
    subscribed = [p["attributes"]["email"] for r in klaviyo.requests if r["path"] == SUBSCRIBES
                  for p in r["body"]["data"]["attributes"]["profiles"]["data"]]
    assert sorted(subscribed) == ["ada@example.com", "cy@example.com"]


def test_a_first_party_sync_subscribes_nobody(warehouse, tmp_path, klaviyo):
    build_world(warehouse)
    materialize(warehouse, klaviyo_sync(tmp_path, consent_purpose="none"))
    assert sorted(imported(klaviyo)) == ["ada@example.com", "bob@example.com", "cy@example.com"]
    assert klaviyo.subscribed == set()


def test_a_429_is_waited_for_as_long_as_retry_after_says(world, klaviyo):
    warehouse, sync = world
    slept: list[float] = []
    klaviyo.fail_next("429")
    assert materialize(warehouse, sync, replace(FAST, sleep=slept.append)).success
    assert slept[0] == 1.0
    assert dict(klaviyo.writes) == {"ada@example.com": 1, "cy@example.com": 1}


def test_a_refused_key_fails_the_sync_in_one_line(world, klaviyo, monkeypatch):
    warehouse, sync = world
    monkeypatch.setenv("KLAVIYO_API_KEY", "pk_wrong")
    result = materialize(warehouse, sync)
    assert not result.success
    message = result.failure_data_for_node("activation__lifecycle_profiles").error.message
    assert "lifecycle_profiles: " in message and "\n" not in message.strip() and "pk_wrong" not in message
    assert klaviyo.profiles == {}


def test_a_deletion_request_reaches_klaviyos_data_privacy_deletion(world, klaviyo):
    warehouse, sync = world
    materialize(warehouse, sync)
    ada = klaviyo.id_of("ada@example.com")
    execute(warehouse, "INSERT INTO core.deletion_requests VALUES ('r1', 'email', sha256('ada@example.com'), "
                       "'active')")
    execute(warehouse, "INSERT INTO core.deletion_pending_profiles VALUES ('p1')")
    result = materialize(warehouse, sync)
    assert metadata(result)["deleted"] == 1
    assert klaviyo.deleted == [ada]
    assert klaviyo.by_email("ada@example.com") is None
    assert query(warehouse, "SELECT count(*) FROM activation.record_state WHERE profile_id = 'p1'") == [(0,)]


def test_a_dry_run_sends_nothing_and_records_every_request(world, klaviyo, monkeypatch):
    warehouse, sync = world
    monkeypatch.setenv("CDP_EGRESS_MODE", "dry_run")
    result = materialize(warehouse, sync)
    assert klaviyo.requests == []
    operations = [op for (op,) in query(warehouse, "SELECT operation FROM activation.egress_requests "
                                                   "WHERE destination = 'lifecycle_profiles' ORDER BY batch_no")]
    assert operations == ["create_list", "upsert", "subscribe", "list_add:{LIST_ID:cdp: vip}"]
    assert metadata(result)["sample_record"]["email"] == "[redacted]"
