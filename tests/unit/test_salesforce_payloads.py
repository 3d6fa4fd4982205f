"""Salesforce request bodies and answers, read without a server."""

from datetime import datetime
from decimal import Decimal

import pytest

from cdp_assets.activation.destinations.base import SetupFailed
from cdp_assets.activation.destinations.salesforce import options
from cdp_assets.activation.destinations.salesforce.answers import collection_reply, job_outcome, record_key
from cdp_assets.activation.destinations.salesforce.client import SalesforceRecords
from cdp_assets.activation.destinations.salesforce.fields import check_fields
from cdp_assets.activation.destinations.salesforce.payloads import bulk_csv, collection_body, job_body, row
from cdp_assets.activation.transport import AUTH, OK, PARTIAL, TRANSIENT, Reply
from cdp_assets.settings import ConfigError
from tests.destinations.salesforce_world import salesforce_sync


@pytest.fixture
def sync(tmp_path):
    return salesforce_sync(tmp_path)


def ada(sync, trace="t1"):
    return row(sync, "p1", {"Email": "ada@example.com", "FirstName": "Ada", "LastName": None, "Phone": None,
                            "CDP_Lifetime_Value__c": Decimal("1234.50"), "CDP_Order_Count__c": 7,
                            "CDP_Last_Order_At__c": datetime(2026, 11, 30, 10, 0), "CDP_RFM_Segment__c": "545"}, trace)


def test_a_collections_item_carries_its_type_numbers_as_numbers_and_none_as_null(sync):
    assert collection_body(sync, [ada(sync)]) == {"allOrNone": False, "records": [{
        "attributes": {"type": "Contact"}, "CDP_Profile_Id__c": "p1", "Email": "ada@example.com", "FirstName": "Ada",
        "LastName": None, "Phone": None, "CDP_Lifetime_Value__c": 1234.5, "CDP_Order_Count__c": 7,
        "CDP_Last_Order_At__c": "2026-11-30T10:00:00.000Z", "CDP_RFM_Segment__c": "545"}]}


def test_a_leads_sync_writes_lead_records(tmp_path):
    leads = salesforce_sync(tmp_path, object="leads")
    assert collection_body(leads, [ada(leads)])["records"][0]["attributes"] == {"type": "Lead"}
    assert job_body(leads)["object"] == "Lead"


def test_a_bulk_csv_has_the_key_first_and_clears_none_with_na(sync):
    assert bulk_csv(sync, [ada(sync)]) == (
        "CDP_Profile_Id__c,Email,FirstName,LastName,Phone,CDP_Lifetime_Value__c,CDP_Order_Count__c,"
        "CDP_Last_Order_At__c,CDP_RFM_Segment__c\n"
        "p1,ada@example.com,Ada,#N/A,#N/A,1234.5,7,2026-11-30T10:00:00.000Z,545\n")


def test_a_bulk_job_upserts_by_the_external_id_field(sync):
    assert job_body(sync) == {"object": "Contact", "externalIdFieldName": "CDP_Profile_Id__c", "contentType": "CSV",
                              "operation": "upsert", "lineEnding": "LF", "columnDelimiter": "COMMA"}


def test_collections_items_are_read_by_index_and_a_locked_row_goes_again():
    answer = ('[{"id":"003A","success":true,"errors":[],"created":true},'
              '{"success":false,"errors":[{"statusCode":"INVALID_EMAIL_ADDRESS",'
              '"message":"Email: invalid email address: ada@example","fields":["Email"]}]},'
              '{"success":false,"errors":[{"statusCode":"UNABLE_TO_LOCK_ROW","message":"unable to obtain access"}]}]')
    rows = [{"Email": "a@b.co"}, {"Email": "ada@example"}, {"Email": "c@d.co"}]
    reply = collection_reply(Reply(OK, 200, answer), rows, ["t1", "t2", "t3"])
    assert (reply.kind, reply.ids, reply.retry_rows) == (PARTIAL, {"t1": "003A"}, {2})
    assert reply.failed_rows == {1: "Salesforce INVALID_EMAIL_ADDRESS: Email: invalid email address: [value]",
                                 2: "Salesforce UNABLE_TO_LOCK_ROW: unable to obtain access"}


def test_a_collections_answer_for_fewer_records_than_sent_is_sent_again():
    reply = collection_reply(Reply(OK, 200, '[{"id":"003A","success":true}]'), [{}, {}], ["t1", "t2"])
    assert reply.kind == TRANSIENT


def test_bulk_results_are_matched_back_by_external_id():
    successful = '"sf__Id","sf__Created",CDP_Profile_Id__c,LastName\n"003A","true",p1,Lovelace\n'
    failed = ('"sf__Id","sf__Error",CDP_Profile_Id__c,LastName\n'
              '"","REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --",p3,\n'
              '"","UNABLE_TO_LOCK_ROW:unable to obtain exclusive access:--",p4,Disk\n')
    unprocessed = "CDP_Profile_Id__c,LastName\np5,Eve\n"
    outcome = job_outcome("CDP_Profile_Id__c", successful, failed, unprocessed, None)
    assert outcome.ids == {record_key("p1"): "003A"}
    assert outcome.failed == {record_key("p3"): "Salesforce REQUIRED_FIELD_MISSING: Required fields are missing: "
                                                 "[LastName]:LastName --"}
    assert outcome.unprocessed == {record_key("p4"), record_key("p5")}


def test_the_rows_of_a_job_refused_for_its_csv_are_dead_letters_not_retries():
    outcome = job_outcome("CDP_Profile_Id__c", "", "", "CDP_Profile_Id__c\np1\n",
                          "InvalidBatch : Field name not found : X__c")
    assert outcome.failed == {record_key("p1"): "Salesforce job failed: InvalidBatch : Field name not found : X__c"}


def test_a_record_key_is_the_sha256_of_the_key_value():
    assert record_key("p1") == "f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a"


def test_a_run_below_the_threshold_uses_collections_and_from_it_bulk(sync):
    client = SalesforceRecords(sync)
    client.expect(1999)
    assert (client.bulk, client.limit("upsert")) == (False, 200)
    client.expect(2000)
    assert (client.bulk, client.limit("upsert")) == (True, 10_000)


def test_an_expired_session_is_sent_again_once_then_stops(sync):
    client = SalesforceRecords(sync)
    expired = '[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]'
    assert client.interpret("upsert", 401, expired, {}).kind == TRANSIENT
    assert client.interpret("upsert", 401, expired, {}).kind == AUTH


def test_the_request_limit_is_transient(sync):
    client = SalesforceRecords(sync)
    limit = '[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]'
    assert client.interpret("job_status", 403, limit, {}).kind == TRANSIENT


def test_a_missing_field_and_a_key_that_is_no_external_id_are_named(sync):
    fields = [{"name": n, "type": "string", "externalId": n == "CDP_Profile_Id__c"} for n in
              ("CDP_Profile_Id__c", "Email", "FirstName", "LastName", "Phone", "CDP_Last_Order_At__c")]
    with pytest.raises(SetupFailed, match=r"^Salesforce Contact has no field CDP_Lifetime_Value__c, "
                                          r"CDP_Order_Count__c, CDP_RFM_Segment__c; "):
        check_fields(sync, "Contact", {"fields": fields})


def test_a_number_mapped_to_a_text_field_is_named(sync):
    names = ("CDP_Profile_Id__c", "Email", "FirstName", "LastName", "Phone", "CDP_Lifetime_Value__c",
             "CDP_Order_Count__c", "CDP_Last_Order_At__c", "CDP_RFM_Segment__c")
    types = {"CDP_Order_Count__c": "double", "CDP_Last_Order_At__c": "datetime"}
    fields = [{"name": n, "type": types.get(n, "string"), "externalId": n == "CDP_Profile_Id__c"} for n in names]
    with pytest.raises(SetupFailed, match=r"CDP_Lifetime_Value__c \(string, the sync writes number\)"):
        check_fields(sync, "Contact", {"fields": fields})


def test_the_bulk_threshold_option_must_be_a_whole_number():
    assert options("f.yaml: options", {}) == {"bulk_threshold": 2000}
    with pytest.raises(ConfigError, match=r"^f.yaml: options.bulk_threshold must be a whole number"):
        options("f.yaml: options", {"bulk_threshold": "many"})
    with pytest.raises(ConfigError, match="unknown settings batch"):
        options("f.yaml: options", {"batch": 5})
