"""Salesforce Contacts kept in step with the unified profile, on DuckDB and PostgreSQL, against the local fake:
sObject Collections for small runs, Bulk API 2.0 jobs for large ones."""

import pytest

from tests.destinations.records_world import build_world, execute, go_live, materialize, metadata, query
from tests.destinations.salesforce_world import define_custom_fields, paths, salesforce_sync, sent_ids
from tests.fakes.salesforce import FakeSalesforce

BULK = {"options": {"bulk_threshold": 2}}


def fake_org(monkeypatch, **settings):
    fake = FakeSalesforce(**settings)
    go_live(monkeypatch, fake)
    define_custom_fields(fake)
    return fake


@pytest.fixture
def salesforce(monkeypatch):
    with fake_org(monkeypatch) as fake:
        yield fake


@pytest.fixture
def slow_jobs(monkeypatch):
    """An org whose Bulk jobs take longer than the reads one run makes."""
    with fake_org(monkeypatch, job_polls_until_done=2) as fake:
        yield fake


@pytest.fixture
def world(warehouse, tmp_path):
    build_world(warehouse)
    return warehouse, salesforce_sync(tmp_path)


@pytest.fixture
def bulk_world(warehouse, tmp_path):
    build_world(warehouse)
    return warehouse, salesforce_sync(tmp_path, **BULK)


def failure(result) -> str:
    """The asset's failure as the UI shows it, without the exception's class name."""
    message = result.failure_data_for_node("activation__salesforce_contacts").error.message
    return message.removeprefix("dagster._core.definitions.events.Failure: ").strip()


ADA = {"CDP_Profile_Id__c": "p1", "Email": "ada@example.com", "FirstName": "Ada", "LastName": "Lovelace",
       "Phone": "+14155550101", "CDP_Lifetime_Value__c": 1234.5, "CDP_Order_Count__c": 7.0,
       "CDP_Last_Order_At__c": "2026-11-30T10:00:00.000Z", "CDP_RFM_Segment__c": "545"}
BOB = {"CDP_Profile_Id__c": "p2", "Email": "bob@example.com", "FirstName": "Bob", "LastName": "Byte", "Phone": None,
       "CDP_Lifetime_Value__c": 0.0, "CDP_Order_Count__c": 0.0, "CDP_Last_Order_At__c": None,
       "CDP_RFM_Segment__c": None}


def test_a_first_small_sync_writes_every_profile_once_through_collections_with_exact_values(world, salesforce):
    warehouse, sync = world
    assert materialize(warehouse, sync).success
    assert sorted(sent_ids(salesforce)) == ["p1", "p2", "p3", "p4"]
    assert len(paths(salesforce, "PATCH", "/composite/sobjects/Contact/CDP_Profile_Id__c")) == 1
    assert paths(salesforce, "POST", "/jobs/ingest") == []
    assert set(salesforce.writes.values()) == {1}
    assert salesforce.records["Contact"]["p1"] == ADA
    assert salesforce.records["Contact"]["p2"] == BOB


def test_the_salesforce_id_of_each_record_is_kept(world, salesforce):
    warehouse, sync = world
    materialize(warehouse, sync)
    ids = dict(query(warehouse, "SELECT profile_id, destination_id FROM activation.record_state "
                                "WHERE sync = 'salesforce_contacts'"))
    assert ids == {f"p{n}": salesforce.ids[("Contact", f"p{n}")] for n in range(1, 5)}


def test_a_first_large_sync_goes_through_one_bulk_job_settled_in_the_same_run(bulk_world, salesforce):
    warehouse, sync = bulk_world
    result = materialize(warehouse, sync)
    assert result.success
    assert len(paths(salesforce, "POST", "/jobs/ingest")) == 1
    assert paths(salesforce, "PATCH", "/composite/sobjects/Contact/CDP_Profile_Id__c") == []
    assert sorted(sent_ids(salesforce)) == ["p1", "p2", "p3", "p4"]
    assert salesforce.records["Contact"]["p1"] == ADA
    assert salesforce.records["Contact"]["p2"] == BOB
    assert query(warehouse, "SELECT count(*) FROM activation.record_state WHERE sync = 'salesforce_contacts' "
                            "AND status = 'present' AND destination_id LIKE '003%'") == [(4,)]
    assert query(warehouse, "SELECT count(*) FROM activation.record_jobs") == [(0,)]


def test_a_bulk_job_still_running_at_the_end_of_a_run_is_settled_by_the_next_run(bulk_world, slow_jobs):
    warehouse, sync = bulk_world
    materialize(warehouse, sync)
    assert salesforce_records(slow_jobs) == {}
    assert query(warehouse, "SELECT count(*) FROM activation.record_jobs") == [(4,)]
    result = materialize(warehouse, sync)
    assert sorted(salesforce_records(slow_jobs)) == ["p1", "p2", "p3", "p4"]
    assert len(paths(slow_jobs, "POST", "/jobs/ingest")) == 1
    assert query(warehouse, "SELECT count(*) FROM activation.record_state WHERE status = 'present'") == [(4,)]
    assert metadata(result)["records_sent"] == 0


def salesforce_records(fake: FakeSalesforce) -> dict:
    return fake.records["Contact"]


def test_a_rerun_sends_nothing(world, salesforce):
    warehouse, sync = world
    materialize(warehouse, sync)
    result = materialize(warehouse, sync)
    assert sorted(sent_ids(salesforce)) == ["p1", "p2", "p3", "p4"]
    assert (metadata(result)["added"], metadata(result)["changed"], metadata(result)["records_sent"]) == (0, 0, 0)


def test_changing_one_trait_of_one_person_sends_exactly_that_record(world, salesforce):
    warehouse, sync = world
    materialize(warehouse, sync)
    execute(warehouse, "UPDATE core.unified_profiles SET lifetime_value = 99.5 WHERE profile_id = 'p3'")
    result = materialize(warehouse, sync)
    assert sent_ids(salesforce)[4:] == ["p3"]
    assert salesforce.records["Contact"]["p3"]["CDP_Lifetime_Value__c"] == 99.5
    assert metadata(result)["changed"] == 1


def test_a_failed_bulk_row_dead_letters_only_that_record_with_salesforces_error(bulk_world, salesforce):
    warehouse, sync = bulk_world
    salesforce.poison("213")  # Cy's RFM segment
    result = materialize(warehouse, sync)
    assert metadata(result)["dead_letters"] == 1
    assert sorted(salesforce_records(salesforce)) == ["p1", "p2", "p4"]
    assert query(warehouse, "SELECT reason FROM activation.dead_letters WHERE destination = 'salesforce_contacts'") \
        == [("Salesforce FIELD_CUSTOM_VALIDATION_EXCEPTION: Rejected by validation rule CDP_Test_Rule:--",)]
    assert query(warehouse, "SELECT count(*) FROM activation.record_state WHERE status = 'present'") == [(3,)]


def test_an_unprocessed_bulk_row_goes_again_in_a_new_job_on_the_next_run(bulk_world, salesforce):
    warehouse, sync = bulk_world
    salesforce.fail_next("UNPROCESSED")
    materialize(warehouse, sync)
    assert salesforce_records(salesforce) == {}
    assert query(warehouse, "SELECT count(*) FROM activation.dead_letters") == [(0,)]
    materialize(warehouse, sync)
    assert len(paths(salesforce, "POST", "/jobs/ingest")) == 2
    assert sorted(salesforce_records(salesforce)) == ["p1", "p2", "p3", "p4"]
    assert set(salesforce.writes.values()) == {1}


def test_an_expired_session_is_refreshed_once_and_the_sync_succeeds(world, salesforce):
    warehouse, sync = world
    salesforce.fail_next("INVALID_SESSION_ID")
    assert materialize(warehouse, sync).success
    assert salesforce.tokens_minted == 2
    assert sorted(salesforce_records(salesforce)) == ["p1", "p2", "p3", "p4"]


def test_a_session_refused_again_after_its_refresh_stops_the_sync_in_one_line(world, salesforce):
    warehouse, sync = world
    salesforce.fail_next("INVALID_SESSION_ID", "INVALID_SESSION_ID")
    result = materialize(warehouse, sync)
    assert not result.success
    assert failure(result) == (
        "salesforce_contacts: salesforce_contacts: the platform refused the credentials (Salesforce 401 "
        "INVALID_SESSION_ID: Session expired or invalid); fix the token, then re-run")
    assert salesforce_records(salesforce) == {}


def test_a_wrong_refresh_token_fails_the_sync_in_one_line_without_secrets(world, salesforce, monkeypatch):
    warehouse, sync = world
    monkeypatch.setenv("SALESFORCE_REFRESH_TOKEN", "sf-wrong-refresh")
    result = materialize(warehouse, sync)
    assert not result.success
    message = failure(result)
    assert message == ("salesforce_contacts: salesforce_contacts: Salesforce OAuth token refresh refused: HTTP 400 "
                       "invalid_grant; check SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET and "
                       "SALESFORCE_REFRESH_TOKEN")
    assert "sf-wrong-refresh" not in message and "sf-secret" not in message
    assert salesforce_records(salesforce) == {}


def test_a_locked_row_is_left_to_go_again_not_dead_lettered(world, salesforce):
    warehouse, sync = world
    salesforce.fail_next("UNABLE_TO_LOCK_ROW")  # taken by the first record written: p2 (records go by record key)
    result = materialize(warehouse, sync)
    assert (metadata(result)["dead_letters"], metadata(result)["failed"]) == (0, 1)
    assert sorted(salesforce_records(salesforce)) == ["p1", "p3", "p4"]
    assert query(warehouse, "SELECT status, last_error FROM activation.sync_ledger WHERE status <> 'sent'") == [
        ("failed", "Salesforce UNABLE_TO_LOCK_ROW: unable to obtain exclusive access to this record or 1 records: "
                   "001XX0000000001AAA")]
    materialize(warehouse, sync)
    assert sent_ids(salesforce)[4:] == ["p2"]
    assert salesforce.writes[("Contact", "p2")] == 1


def test_a_locked_bulk_row_goes_again_in_a_new_job(bulk_world, salesforce):
    warehouse, sync = bulk_world
    salesforce.fail_next("UNABLE_TO_LOCK_ROW")
    materialize(warehouse, sync)
    assert query(warehouse, "SELECT count(*) FROM activation.dead_letters") == [(0,)]
    assert sorted(salesforce_records(salesforce)) == ["p1", "p3", "p4"]
    materialize(warehouse, sync)
    assert sent_ids(salesforce)[4:] == ["p2"]
    assert sorted(salesforce_records(salesforce)) == ["p1", "p2", "p3", "p4"]


def test_the_daily_api_limit_is_retried_as_transient(world, salesforce):
    warehouse, sync = world
    salesforce.fail_next("REQUEST_LIMIT_EXCEEDED")
    assert materialize(warehouse, sync).success
    assert set(salesforce.writes.values()) == {1} and len(salesforce.writes) == 4


def test_a_mapped_custom_field_missing_in_the_org_fails_the_sync_before_anything_is_sent(warehouse, tmp_path,
                                                                                        monkeypatch):
    build_world(warehouse)
    with FakeSalesforce() as fake:
        go_live(monkeypatch, fake)
        define_custom_fields(fake, "CDP_RFM_Segment__c", "CDP_Order_Count__c")
        result = materialize(warehouse, salesforce_sync(tmp_path))
        assert not result.success
        assert failure(result).startswith(
            "salesforce_contacts: Salesforce Contact has no field CDP_Order_Count__c, CDP_RFM_Segment__c; an admin "
            "creates the sync's custom fields in Setup")
        assert [r["method"] for r in fake.requests if r["path"].startswith("/services/data/")] == ["GET"]


def test_a_dry_run_sends_nothing_and_records_the_collections_requests(world, salesforce, monkeypatch):
    warehouse, sync = world
    monkeypatch.setenv("CDP_EGRESS_MODE", "dry_run")
    result = materialize(warehouse, sync)
    assert salesforce.requests == []
    assert query(warehouse, "SELECT operation, method, url, record_count FROM activation.egress_requests "
                            "WHERE destination = 'salesforce_contacts'") == [
        ("upsert", "PATCH", f"{salesforce.url}/services/data/v62.0/composite/sobjects/Contact/CDP_Profile_Id__c", 4)]
    assert metadata(result)["sample_record"]["Email"] == "[redacted]"


def test_a_large_dry_run_records_the_bulk_upload_with_a_placeholder_job(bulk_world, salesforce, monkeypatch):
    warehouse, sync = bulk_world
    monkeypatch.setenv("CDP_EGRESS_MODE", "dry_run")
    materialize(warehouse, sync)
    assert salesforce.requests == []
    [(url, body)] = query(warehouse, "SELECT url, request_body FROM activation.egress_requests")
    assert url == f"{salesforce.url}/services/data/v62.0/jobs/ingest/{{JOB_ID}}/batches"
    header, *rows = body.splitlines()
    assert header == ("CDP_Profile_Id__c,Email,FirstName,LastName,Phone,CDP_Lifetime_Value__c,CDP_Order_Count__c,"
                      "CDP_Last_Order_At__c,CDP_RFM_Segment__c")
    assert {"p1,ada@example.com,Ada,Lovelace,+14155550101,1234.5,7,2026-11-30T10:00:00.000Z,545",
            "p2,bob@example.com,Bob,Byte,#N/A,0,0,#N/A,#N/A"} < set(rows)
    assert len(rows) == 4
