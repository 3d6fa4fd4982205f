"""The HubSpot CRM fake enforces the write rules of spec §1 and answers the wire shapes of §9.1 (HS-1..HS-9)."""

import json

import pytest
import requests

from tests.fakes.hubspot_crm import FakeHubSpotCrm

UPSERT = "/crm/v3/objects/contacts/batch/upsert"


def client(fake: FakeHubSpotCrm) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {fake.token}"
    return session


def define(fake: FakeHubSpotCrm, name: str, kind: str, field_type: str, **extra: object) -> requests.Response:
    body = {"groupName": "cdp", "name": name, "label": name, "type": kind, "fieldType": field_type, **extra}
    return client(fake).post(f"{fake.url}/crm/v3/properties/contacts", json=body, timeout=5)


def upsert(fake: FakeHubSpotCrm, *inputs: dict) -> requests.Response:
    return client(fake).post(fake.url + UPSERT, json={"inputs": list(inputs)}, timeout=5)


def by_email(email: str, **properties: str) -> dict:
    return {"id": email, "idProperty": "email", "properties": properties}


@pytest.fixture
def hub():
    with FakeHubSpotCrm() as fake:
        group = client(fake).post(f"{fake.url}/crm/v3/properties/contacts/groups", json={"name": "cdp", "label": "CDP"})
        assert group.status_code == 201
        assert define(fake, "cdp_profile_id", "string", "text", hasUniqueValue=True).status_code == 201
        assert define(fake, "cdp_orders", "number", "number").status_code == 201
        yield fake


def test_upsert_by_email_creates_then_updates_the_same_contact(hub):
    created = upsert(hub, by_email("ada@example.com", firstname="Ada"))
    updated = upsert(hub, by_email("ada@example.com", firstname="Ada Lovelace", cdp_orders="7"))
    assert created.status_code == updated.status_code == 200
    assert [(r["id"], r["new"]) for r in created.json()["results"]] == [("101", True)]
    assert [(r["id"], r["new"]) for r in updated.json()["results"]] == [("101", False)]
    assert updated.json()["results"][0]["properties"] == {
        "firstname": "Ada Lovelace", "cdp_orders": "7", "email": "ada@example.com", "hs_object_id": "101"}
    assert hub.contact_by_email("ada@example.com")["properties"]["firstname"] == "Ada Lovelace"
    assert hub.writes == {"101": 2}
    assert updated.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"


def test_an_invalid_number_fails_alone_in_a_207_carrying_its_trace_id(hub):
    answer = upsert(hub,
                    {"id": "p_1", "idProperty": "cdp_profile_id", "objectWriteTraceId": "ledger-1",
                     "properties": {"email": "ada@example.com", "cdp_orders": "7"}},
                    {"id": "p_2", "idProperty": "cdp_profile_id", "objectWriteTraceId": "ledger-2",
                     "properties": {"email": "carl@example.com", "cdp_orders": "seven"}})
    assert answer.status_code == 207
    body = answer.json()
    assert [r["objectWriteTraceId"] for r in body["results"]] == ["ledger-1"]
    assert body["numErrors"] == 1
    assert body["errors"] == [{
        "status": "error", "category": "VALIDATION_ERROR", "context": {"objectWriteTraceId": ["ledger-2"]},
        "message": 'Property values were not valid: [{"isValid":false,"message":"seven was not a valid number.",'
                   '"error":"INVALID_INTEGER","name":"cdp_orders"}]'}]
    assert hub.contact_by_email("carl@example.com") is None


def test_a_poisoned_value_fails_that_input_only(hub):
    hub.poison("bad@example.com")
    answer = upsert(hub, by_email("ada@example.com"), by_email("bad@example.com"))
    assert answer.status_code == 207
    assert [r["properties"]["email"] for r in answer.json()["results"]] == ["ada@example.com"]
    assert answer.json()["errors"][0]["context"] == {"id": ["bad@example.com"]}


def test_duplicate_ids_in_one_batch_are_a_400(hub):
    answer = upsert(hub, by_email("ada@example.com"), by_email("Ada@example.com"))
    assert answer.status_code == 400
    assert answer.json()["message"] == "Duplicate IDs found in batch input: [ada@example.com]. IDs must be unique"
    assert hub.contacts == {}


def test_more_than_100_inputs_are_a_400(hub):
    answer = upsert(hub, *(by_email(f"p{n}@example.com") for n in range(101)))
    assert answer.status_code == 400
    assert answer.json()["category"] == "VALIDATION_ERROR"
    assert upsert(hub, *(by_email(f"p{n}@example.com") for n in range(100))).status_code == 200


def test_an_unknown_property_refuses_the_whole_request(hub):
    answer = upsert(hub, by_email("ada@example.com", firstname="Ada"), by_email("bob@example.com", cdp_unknown="1"))
    assert answer.status_code == 400
    problems = json.loads(answer.json()["message"].removeprefix("Property values were not valid: "))
    assert problems == [{"isValid": False, "message": 'Property "cdp_unknown" does not exist',
                         "error": "PROPERTY_DOESNT_EXIST", "name": "cdp_unknown"}]
    assert hub.contacts == {}


def test_a_body_without_inputs_is_accepted_with_no_results(hub):
    answer = client(hub).post(hub.url + UPSERT, json={"properties": {"email": "x@example.com"}}, timeout=5)
    assert answer.status_code == 200
    assert (answer.json()["status"], answer.json()["results"], hub.contacts) == ("COMPLETE", [], {})


def test_a_property_with_a_wrong_type_and_field_type_pair_is_refused(hub):
    answer = define(hub, "cdp_ltv", "number", "text")
    assert answer.status_code == 400
    assert answer.json()["category"] == "VALIDATION_ERROR"
    assert hub.property("cdp_ltv") is None
    assert define(hub, "cdp_ltv", "number", "number").status_code == 201
    assert define(hub, "cdp_ltv", "number", "number").status_code == 409


def test_a_list_is_looked_up_created_and_edited_by_record_id(hub):
    session, lists = client(hub), f"{hub.url}/crm/v3/lists"
    upsert(hub, by_email("ada@example.com"), by_email("bob@example.com"))
    missing = session.get(f"{lists}/object-type-id/0-1/name/CDP%20VIP", timeout=5)
    assert (missing.status_code, missing.json()["message"]) == (404, "List does not exist with name CDP VIP.")
    created = session.post(lists, json={"name": "CDP VIP", "objectTypeId": "0-1", "processingType": "MANUAL"})
    list_id = created.json()["list"]["listId"]
    assert session.get(f"{lists}/object-type-id/0-1/name/CDP%20VIP").json()["list"]["listId"] == list_id
    added = session.put(f"{lists}/{list_id}/memberships/add", json=["101", "102", "999999"])
    assert added.json() == {"recordsIdsAdded": ["101", "102"], "recordIdsRemoved": [], "recordIdsMissing": ["999999"]}
    both = session.put(f"{lists}/{list_id}/memberships/add-and-remove",
                       json={"recordIdsToAdd": ["101"], "recordIdsToRemove": ["102"]})
    assert both.json() == {"recordsIdsAdded": [], "recordIdsRemoved": ["102"], "recordIdsMissing": []}
    assert hub.list_members("CDP VIP") == {"ada@example.com"}
    page = session.get(f"{lists}/{list_id}/memberships?limit=250").json()
    assert [m["recordId"] for m in page["results"]] == ["101"]


def test_requests_past_the_burst_get_the_ten_secondly_429():
    with FakeHubSpotCrm(burst=3, window_seconds=3600) as fake:  # no request ages out of the window
        session = client(fake)
        answers = [session.get(f"{fake.url}/crm/v3/properties/contacts", timeout=5) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-HubSpot-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert (answers[3].json()["policyName"], answers[3].json()["errorType"]) == ("TEN_SECONDLY_ROLLING", "RATE_LIMIT")


def test_an_injected_daily_429_refuses_one_write(hub):
    hub.fail_next("429_daily")
    refused = upsert(hub, by_email("ada@example.com"))
    assert refused.status_code == 429
    assert (refused.json()["message"], refused.json()["policyName"]) == ("You have reached your daily limit.", "DAILY")
    assert hub.contacts == {}
    assert upsert(hub, by_email("ada@example.com")).status_code == 200


def test_accept_then_drop_applies_the_write_but_never_answers(hub):
    hub.fail_next("accept_then_drop")
    with pytest.raises(requests.ConnectionError):
        upsert(hub, by_email("ada@example.com"))
    assert hub.writes == {"101": 1}


def test_a_wrong_token_is_a_401(hub):
    answer = requests.post(hub.url + UPSERT, json={"inputs": []}, headers={"Authorization": "Bearer nope"}, timeout=5)
    assert (answer.status_code, answer.json()["category"]) == (401, "INVALID_AUTHENTICATION")


def test_gdpr_delete_removes_the_contact_and_its_memberships(hub):
    session, lists = client(hub), f"{hub.url}/crm/v3/lists"
    upsert(hub, by_email("ada@example.com"))
    list_id = session.post(lists, json={"name": "VIP", "objectTypeId": "0-1", "processingType": "MANUAL"}).json()[
        "list"]["listId"]
    session.put(f"{lists}/{list_id}/memberships/add", json=["101"])
    body = {"objectId": "ada@example.com", "idProperty": "email"}
    deleted = session.post(f"{hub.url}/crm/v3/objects/contacts/gdpr-delete", json=body)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert hub.contact_by_email("ada@example.com") is None
    assert (hub.list_members("VIP"), hub.gdpr_deleted) == (set(), ["ada@example.com"])
    again = session.post(f"{hub.url}/crm/v3/objects/contacts/gdpr-delete", json=body)
    assert (again.status_code, again.json()["category"]) == (404, "OBJECT_NOT_FOUND")


@pytest.mark.parametrize(("kind", "field_type", "value", "stored"), [
    ("bool", "booleancheckbox", "true", "true"),
    ("bool", "booleancheckbox", "yes", None),
    ("date", "date", "1430438400000", "2015-05-01"),
    ("date", "date", "1430438400001", None),
    ("datetime", "date", "2020-02-29T03:30:17Z", "2020-02-29T03:30:17.000Z"),
    ("datetime", "date", "yesterday", None),
    ("enumeration", "checkbox", "vip;churn_risk", "vip;churn_risk"),
    ("enumeration", "select", "gold", None),
    ("number", "number", "", None),  # "" clears: accepted, nothing stored
])
def test_values_are_checked_by_property_type(hub, kind, field_type, value, stored):
    options = [{"label": v, "value": v} for v in ("vip", "churn_risk")] if kind == "enumeration" else None
    assert define(hub, "cdp_trait", kind, field_type, **({"options": options} if options else {})).status_code == 201
    answer = upsert(hub, by_email("ada@example.com", cdp_trait=value))
    assert answer.status_code == (200 if stored is not None or value == "" else 207)
    contact = hub.contact_by_email("ada@example.com")
    assert (contact or {"properties": {}})["properties"].get("cdp_trait") == stored
