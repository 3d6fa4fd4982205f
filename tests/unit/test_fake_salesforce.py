"""The Salesforce fake speaks the spec's wire shapes (crm_destinations.md §2, vectors SF-1..SF-8)."""

import pytest
import requests

from tests.fakes.salesforce import FakeSalesforce

CONTACT = {"type": "Contact"}
SF3_CSV = ("CDP_Id__c,LastName,Email,CDP_LTV__c\np_1,Lovelace,ada@example.com,1234.5\n"
           "p_2,Babbage,charles@example.com,99\np_3,,nobody@example.com,0\n")
SF2_JOB = {"object": "Contact", "externalIdFieldName": "CDP_Id__c", "contentType": "CSV", "operation": "upsert",
           "lineEnding": "LF", "columnDelimiter": "COMMA"}


@pytest.fixture
def sf():
    with FakeSalesforce(job_polls_until_done=1) as fake:
        fake.define_field("Contact", "CDP_Id__c", "string", external_id=True)
        fake.define_field("Contact", "CDP_LTV__c", "double")
        yield fake


def refresh(sf: FakeSalesforce, refresh_token: str = "sf-refresh") -> requests.Response:
    env = sf.env()
    return requests.post(env["SALESFORCE_TOKEN_URL"], timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": env["SALESFORCE_CLIENT_ID"],
        "client_secret": env["SALESFORCE_CLIENT_SECRET"]})


class Api:
    def __init__(self, sf: FakeSalesforce) -> None:
        self.base, self.session = f"{sf.url}/services/data/v62.0", requests.Session()
        self.login(sf)

    def login(self, sf: FakeSalesforce) -> None:
        self.session.headers["Authorization"] = "Bearer " + refresh(sf).json()["access_token"]

    def __call__(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, self.base + path, timeout=10, **kwargs)

    def upsert(self, *records: dict, all_or_none: bool = False) -> requests.Response:
        body = {"allOrNone": all_or_none, "records": [{"attributes": CONTACT, **r} for r in records]}
        return self("PATCH", "/composite/sobjects/Contact/CDP_Id__c", json=body)

    def job(self, csv_text: str, **settings: str) -> str:
        job_id = self("POST", "/jobs/ingest", json={**SF2_JOB, **settings}).json()["id"]
        assert self("PUT", f"/jobs/ingest/{job_id}/batches", data=csv_text.encode(),
                    headers={"Content-Type": "text/csv"}).status_code == 201
        assert self("PATCH", f"/jobs/ingest/{job_id}", json={"state": "UploadComplete"}).status_code == 200
        return job_id

    def finish(self, job_id: str) -> dict:
        states = [self("GET", f"/jobs/ingest/{job_id}").json() for _ in range(2)]
        assert states[0]["state"] == "InProgress"
        return states[1]


@pytest.fixture
def api(sf):
    return Api(sf)


def test_the_refresh_token_grant_mints_a_bearer_token_for_the_instance(sf):
    answer = refresh(sf)
    assert answer.status_code == 200
    token = answer.json()
    assert token["access_token"] in sf.tokens
    assert (token["instance_url"], token["token_type"]) == (sf.url, "Bearer")
    assert set(token) >= {"access_token", "instance_url", "id", "token_type", "issued_at", "signature"}


def test_a_wrong_refresh_token_is_invalid_grant(sf):
    answer = refresh(sf, "stolen")
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")
    assert sf.tokens == set()


def test_expired_tokens_answer_invalid_session_id_until_the_client_refreshes(sf, api):
    sf.expire_tokens()
    answer = api.upsert({"CDP_Id__c": "p_1", "LastName": "Lovelace"})
    assert answer.status_code == 401
    assert answer.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    api.login(sf)
    assert api.upsert({"CDP_Id__c": "p_1", "LastName": "Lovelace"}).status_code == 200


def test_the_invalid_session_fault_expires_the_token_so_a_plain_retry_fails_again(sf, api):
    sf.fail_next("INVALID_SESSION_ID")
    assert api.upsert({"CDP_Id__c": "p_1", "LastName": "Lovelace"}).status_code == 401
    assert api.upsert({"CDP_Id__c": "p_1", "LastName": "Lovelace"}).status_code == 401
    assert sf.records["Contact"] == {}


def test_collections_answer_each_item_in_request_order_like_vector_sf7(sf, api):
    assert sf.add("Contact", "p_1", CDP_Id__c="p_1", LastName="Old") == "003XX0000000001AAA"
    answer = api.upsert({"CDP_Id__c": "p_1", "LastName": "Lovelace", "Email": "ada@example.com"},
                        {"CDP_Id__c": "p_4", "LastName": "Hopper", "Email": "grace@example.com"},
                        {"CDP_Id__c": "p_1", "LastName": "Dup", "Email": "dup@example.com"})
    assert answer.status_code == 200
    assert answer.headers["Sforce-Limit-Info"] == "api-usage=1/100000"
    assert answer.json() == [
        {"id": "003XX0000000001AAA", "success": True, "errors": [], "created": False},
        {"id": "003XX0000000002AAA", "success": True, "errors": [], "created": True},
        {"success": False, "errors": [{"statusCode": "DUPLICATE_VALUE",
                                       "message": "Duplicate external id specified: p_1", "fields": []}]}]
    assert sf.records["Contact"]["p_1"] == {"CDP_Id__c": "p_1", "LastName": "Lovelace", "Email": "ada@example.com"}
    assert sf.writes == {("Contact", "p_1"): 1, ("Contact", "p_4"): 1}


def test_collections_refuse_unknown_fields_missing_keys_and_bad_values_per_item(api):
    errors = [item["errors"][0] for item in api.upsert(
        {"CDP_Id__c": "p_1", "LastName": "Lovelace", "Shoe_Size__c": 9}, {"LastName": "Nobody"},
        {"CDP_Id__c": "p_2", "LastName": "Babbage", "Email": "not-an-email"}, {"CDP_Id__c": "p_3"}).json()]
    assert errors == [
        {"statusCode": "INVALID_FIELD", "message": "No such column 'Shoe_Size__c' on sobject of type Contact",
         "fields": []},
        {"statusCode": "MISSING_ARGUMENT", "message": "CDP_Id__c not specified", "fields": []},
        {"statusCode": "INVALID_EMAIL_ADDRESS", "message": "Email: invalid email address: not-an-email",
         "fields": ["Email"]},
        {"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [LastName]",
         "fields": ["LastName"]}]


def test_collections_take_200_records_and_refuse_201_whole(sf, api):
    records = [{"CDP_Id__c": f"p_{n}", "LastName": "Doe"} for n in range(201)]
    too_many = api.upsert(*records)
    assert too_many.status_code == 400
    assert too_many.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert sf.writes == {}
    assert [item["success"] for item in api.upsert(*records[:200]).json()] == [True] * 200


def test_a_locked_row_fails_one_item_once_and_the_retry_is_written(sf, api):
    sf.fail_next("UNABLE_TO_LOCK_ROW")
    first = api.upsert({"CDP_Id__c": "p_1", "LastName": "Lovelace"}, {"CDP_Id__c": "p_2", "LastName": "Babbage"})
    assert [item["success"] for item in first.json()] == [False, True]
    assert first.json()[0]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    assert api.upsert({"CDP_Id__c": "p_1", "LastName": "Lovelace"}).json()[0]["success"] is True
    assert sf.writes == {("Contact", "p_1"): 1, ("Contact", "p_2"): 1}


def test_a_poisoned_value_fails_its_validation_rule_every_time(sf, api):
    sf.poison("bad@example.com")
    for _ in range(2):
        item = api.upsert({"CDP_Id__c": "p_1", "LastName": "Lovelace", "Email": "bad@example.com"}).json()[0]
        assert item["errors"][0]["statusCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert sf.writes == {}


def test_all_or_none_writes_nothing_when_one_record_fails(sf, api):
    items = api.upsert({"CDP_Id__c": "p_1", "LastName": "Lovelace"}, {"CDP_Id__c": "p_2"}, all_or_none=True).json()
    assert [item["errors"][0]["statusCode"] for item in items] == ["ALL_OR_NONE_OPERATION_ROLLED_BACK",
                                                                 "REQUIRED_FIELD_MISSING"]
    assert sf.writes == {}


def test_a_lead_also_needs_its_company_and_custom_fields_must_end_in_c(sf, api):
    answer = api("PATCH", "/composite/sobjects/Lead/CDP_Profile_Id__c", json={"records": [
        {"attributes": {"type": "Lead"}, "CDP_Profile_Id__c": "p_1", "LastName": "Lovelace"}]})
    assert answer.json()[0]["errors"] == [{"statusCode": "REQUIRED_FIELD_MISSING",
                                           "message": "Required fields are missing: [Company]", "fields": ["Company"]}]
    with pytest.raises(ValueError, match="cannot define"):
        sf.define_field("Lead", "Shoe_Size", "double")


def test_a_bulk_job_runs_open_upload_complete_in_progress_job_complete_with_sf6_results(sf, api):
    sf.add("Contact", "p_1", CDP_Id__c="p_1", LastName="Old")
    created = api("POST", "/jobs/ingest", json=SF2_JOB).json()
    job_id = created["id"]
    assert (job_id, created["state"]) == ("750XX0000000002AAA", "Open")
    assert created["contentUrl"] == "services/data/v62.0/jobs/ingest/750XX0000000002AAA/batches"
    upload = api.session.put(f"{sf.url}/{created['contentUrl']}", data=SF3_CSV.encode(), timeout=10,
                             headers={"Content-Type": "text/csv"})
    assert (upload.status_code, upload.content, upload.headers["Content-Length"]) == (201, b"", "0")
    assert api("PATCH", f"/jobs/ingest/{job_id}", json={"state": "UploadComplete"}).json()["state"] == "UploadComplete"
    done = api.finish(job_id)
    assert (done["state"], done["numberRecordsProcessed"], done["numberRecordsFailed"]) == ("JobComplete", 3, 1)
    assert api("GET", f"/jobs/ingest/{job_id}/successfulResults/").text == (
        '"sf__Id","sf__Created",CDP_Id__c,LastName,Email,CDP_LTV__c\n'
        '"003XX0000000001AAA","false",p_1,Lovelace,ada@example.com,1234.5\n'
        '"003XX0000000003AAA","true",p_2,Babbage,charles@example.com,99\n')
    assert api("GET", f"/jobs/ingest/{job_id}/failedResults/").text == (
        '"sf__Id","sf__Error",CDP_Id__c,LastName,Email,CDP_LTV__c\n'
        '"","REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --",p_3,,nobody@example.com,0\n')
    assert api("GET", f"/jobs/ingest/{job_id}/unprocessedrecords/").text == "CDP_Id__c,LastName,Email,CDP_LTV__c\n"
    assert sf.records["Contact"]["p_2"] == {"CDP_Id__c": "p_2", "LastName": "Babbage",
                                            "Email": "charles@example.com", "CDP_LTV__c": 99.0}


def test_a_bulk_header_naming_an_unknown_field_fails_the_job_and_leaves_every_row_unprocessed(sf, api):
    bad_csv = "CDP_Id__c,LastName,CDP_LTVX__c\np_1,Lovelace,1\n"
    done = api.finish(api.job(bad_csv))
    assert (done["state"], done["errorMessage"]) == ("Failed", "InvalidBatch : Field name not found : CDP_LTVX__c")
    assert api("GET", f"/jobs/ingest/{done['id']}/unprocessedrecords/").text == bad_csv
    assert sf.writes == {}


def test_bulk_rows_fail_for_a_repeated_key_and_a_locked_row(sf, api):
    sf.fail_next("UNABLE_TO_LOCK_ROW")
    job_id = api.job("CDP_Id__c,LastName\np_1,Lovelace\np_2,Babbage\np_2,Again\np_3,Hopper\n")
    assert api.finish(job_id)["numberRecordsFailed"] == 3
    assert api("GET", f"/jobs/ingest/{job_id}/failedResults/").text == (
        '"sf__Id","sf__Error",CDP_Id__c,LastName\n'
        '"","UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record or 1 records: '
        '001XX0000000001AAA:--",p_1,Lovelace\n'
        '"","DUPLICATE_VALUE:Duplicate external id specified: p_2:--",p_2,Babbage\n'
        '"","DUPLICATE_VALUE:Duplicate external id specified: p_2:--",p_2,Again\n')
    assert sf.writes == {("Contact", "p_3"): 1}


def test_the_unprocessed_fault_fails_the_job_with_the_rest_of_the_rows_unprocessed(sf, api):
    job_id = api.job("CDP_Id__c,LastName\np_1,Lovelace\np_2,Babbage\np_3,Hopper\n")
    assert api("GET", f"/jobs/ingest/{job_id}").json()["state"] == "InProgress"
    sf.fail_next("UNABLE_TO_LOCK_ROW", "UNPROCESSED")  # p_1 is locked, p_2 onwards never processed
    done = api("GET", f"/jobs/ingest/{job_id}").json()
    assert (done["state"], done["numberRecordsProcessed"], done["numberRecordsFailed"]) == ("Failed", 1, 1)
    assert api("GET", f"/jobs/ingest/{job_id}/unprocessedrecords/").text == "CDP_Id__c,LastName\np_2,Babbage\n" \
                                                                            "p_3,Hopper\n"


def test_a_second_upload_and_an_oversized_upload_are_refused(sf, api):
    sf.max_upload_bytes = 40  # base64 of 30 bytes
    job_id = api("POST", "/jobs/ingest", json=SF2_JOB).json()["id"]
    put = lambda body: api("PUT", f"/jobs/ingest/{job_id}/batches", data=body,  # noqa: E731
                           headers={"Content-Type": "text/csv"}).status_code
    assert put(b"x" * 31) == 400
    assert put(b"x" * 30) == 201
    assert put(b"x") == 400


def test_results_of_an_unfinished_job_are_refused(api):
    job_id = api.job("CDP_Id__c,LastName\np_1,Lovelace\n")
    answer = api("GET", f"/jobs/ingest/{job_id}/successfulResults/")
    assert (answer.status_code, answer.json()[0]["errorCode"]) == (409, "INVALIDJOBSTATE")


def test_request_limit_exceeded_is_a_403_with_the_spec_body(sf, api):
    sf.fail_next("REQUEST_LIMIT_EXCEEDED")
    answer = api.upsert({"CDP_Id__c": "p_1", "LastName": "Lovelace"})
    assert answer.status_code == 403
    assert answer.json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert sf.writes == {}


def test_the_daily_allocation_runs_out_after_api_limit_calls(sf, api):
    sf.api_limit = 1
    assert api("GET", "/limits").json() == {"DailyApiRequests": {"Max": 1, "Remaining": 0}}
    assert api("GET", "/limits").json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_server_errors_and_drops_are_served_in_order_then_calls_succeed(sf, api):
    sf.fail_next("500", "503", "drop", "accept_then_drop")
    record = {"CDP_Id__c": "p_1", "LastName": "Lovelace"}
    assert api.upsert(record).json()[0]["errorCode"] == "UNKNOWN_EXCEPTION"
    assert api.upsert(record).status_code == 503
    for _ in range(2):
        with pytest.raises(requests.ConnectionError):
            api.upsert(record)
    assert sf.writes == {("Contact", "p_1"): 1}  # the accepted-then-dropped one was written
    assert api.upsert(record).json()[0]["created"] is False
