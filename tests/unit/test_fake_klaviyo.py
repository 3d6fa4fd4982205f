"""The Klaviyo fake enforces the rules of spec §3 / vectors §9.3: auth, revision, limits, jobs, lists, consent."""

import json
import subprocess
import sys
from collections import Counter

import pytest
import requests

from tests.fakes.klaviyo import IMPORTS, JSONAPI, FakeKlaviyo

ADA = {"email": "ada@example.com", "external_id": "p_1", "first_name": "Ada", "properties": {"cdp_ltv": 1234.5}}


@pytest.fixture
def fake():
    with FakeKlaviyo() as server:
        yield server
    assert server.crashes == []


def call(fake: FakeKlaviyo, method: str, path: str, body: object = None, **headers: str | None) -> requests.Response:
    sent = {"Authorization": f"Klaviyo-API-Key {fake.api_key}", "revision": "2025-10-15", "Content-Type": JSONAPI,
            **{k.replace("_", "-"): v for k, v in headers.items()}}
    data = None if body is None else body if isinstance(body, bytes) else json.dumps(body)
    return requests.request(method, fake.url + path, data=data, timeout=10,
                            headers={k: v for k, v in sent.items() if v is not None})


def job(*profiles: dict, lists: tuple[str, ...] = ()) -> dict:
    data = {"type": "profile-bulk-import-job",
            "attributes": {"profiles": {"data": [{"type": "profile", "attributes": p} for p in profiles]}}}
    if lists:
        data["relationships"] = {"lists": {"data": [{"type": "list", "id": i} for i in lists]}}
    return {"data": data}


def members(*ids: str) -> dict:
    return {"data": [{"type": "profile", "id": i} for i in ids]}


def run_job(fake: FakeKlaviyo, *profiles: dict) -> str:
    job_id = call(fake, "POST", "/api/profile-bulk-import-jobs", job(*profiles)).json()["data"]["id"]
    assert call(fake, "GET", f"/api/profile-bulk-import-jobs/{job_id}").json()["data"]["attributes"]["status"] == (
        "complete")
    return job_id


def test_a_wrong_key_is_refused_with_401(fake):
    answer = call(fake, "GET", "/api/lists", Authorization="Klaviyo-API-Key pk_wrong")
    assert (answer.status_code, answer.json()["errors"][0]["code"]) == (401, "authentication_failed")


def test_a_bearer_token_is_not_a_private_key(fake):
    assert call(fake, "GET", "/api/lists", Authorization=f"Bearer {fake.api_key}").status_code == 401


def test_a_request_without_revision_is_refused(fake):
    answer = call(fake, "GET", "/api/lists", revision=None)
    assert (answer.status_code, answer.json()["errors"][0]["source"]) == (400, {"parameter": "revision"})


@pytest.mark.parametrize("revision", ["2025-4-15", "2025-02-30", "2025-10-16", "2025-04-15.pre", "latest"])
def test_a_revision_that_is_not_a_published_date_is_refused(fake, revision):
    assert call(fake, "GET", "/api/lists", revision=revision).status_code == 400


def test_an_older_revision_is_accepted_and_counted(fake):
    assert call(fake, "GET", "/api/lists", revision="2025-04-15").status_code == 200
    assert fake.revisions == Counter({"2025-04-15": 1})


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", {"data": {"type": "profile-bulk-import-job",
                                                                     "attributes": {"profiles": {"data": ["x"]}}}}])
def test_a_malformed_body_is_refused_with_400(fake, body):
    assert call(fake, "POST", "/api/profile-bulk-import-jobs", body).status_code == 400


def test_a_body_that_is_not_json_api_is_refused_with_415(fake):
    answer = call(fake, "POST", "/api/profile-bulk-import-jobs", job(ADA), Content_Type="text/plain")
    assert answer.status_code == 415


def test_a_job_of_10001_profiles_is_refused_whole(fake):
    answer = call(fake, "POST", "/api/profile-bulk-import-jobs", job(*({"email": f"u{n}@x.io"} for n in range(10_001))))
    assert (answer.status_code, answer.json()["errors"][0]["source"]) == (400, {"pointer": IMPORTS})
    assert fake.writes == Counter()


def test_a_job_of_10000_profiles_is_accepted(fake):
    answer = call(fake, "POST", "/api/profile-bulk-import-jobs", job(*({"email": f"u{n}@x.io"} for n in range(10_000))))
    assert (answer.status_code, answer.json()["data"]["attributes"]["total_count"]) == (202, 10_000)


def test_a_payload_over_5_mb_is_refused(fake):
    rows = ({"email": f"u{n}@x.io", "properties": {"pad": "x" * 1100}} for n in range(5_000))
    answer = call(fake, "POST", "/api/profile-bulk-import-jobs", job(*rows))
    assert answer.status_code == 400 and "5242880 bytes" in answer.json()["errors"][0]["detail"]


def test_a_job_is_queued_then_processing_then_complete():
    with FakeKlaviyo(import_polls_until_done=2) as fake:
        created = call(fake, "POST", "/api/profile-bulk-import-jobs", job(ADA, {"email": "not-an-email"}))
        attributes = created.json()["data"]["attributes"]
        assert (created.status_code, attributes["status"], attributes["total_count"]) == (202, "queued", 2)
        path = f"/api/profile-bulk-import-jobs/{created.json()['data']['id']}"
        polls = [call(fake, "GET", path).json()["data"]["attributes"] for _ in range(3)]
    assert [(p["status"], p["completed_count"], p["failed_count"]) for p in polls] == [
        ("processing", 0, 0), ("complete", 1, 1), ("complete", 1, 1)]


def test_import_errors_name_the_row_and_echo_its_payload(fake):
    job_id = run_job(fake, ADA, {"email": "not-an-email", "external_id": "p_2"})
    errors = call(fake, "GET", f"/api/profile-bulk-import-jobs/{job_id}/import-errors").json()["data"]
    assert [e["attributes"] for e in errors] == [{
        "code": "invalid", "title": "Invalid input.", "detail": "Invalid email address",
        "source": {"pointer": f"{IMPORTS}/1/attributes/email"},
        "original_payload": {"email": "not-an-email", "external_id": "p_2"}}]


def test_a_bad_phone_a_missing_identifier_and_a_poisoned_email_fail_alone(fake):
    fake.poison("bob@example.com")
    job_id = run_job(fake, {"email": "c@x.io", "phone_number": "555-1234"}, {"first_name": "Nobody"},
                     {"email": "bob@example.com"}, ADA)
    errors = call(fake, "GET", f"/api/profile-bulk-import-jobs/{job_id}/import-errors").json()["data"]
    assert [e["attributes"]["source"]["pointer"] for e in errors] == [
        f"{IMPORTS}/0/attributes/phone_number", f"{IMPORTS}/1/attributes", f"{IMPORTS}/2/attributes"]
    assert fake.writes == Counter({"ada@example.com": 1})


def test_import_errors_are_paged_through_links_next(fake):
    job_id = run_job(fake, *({"email": f"bad{n}"} for n in range(3)))
    first = call(fake, "GET", f"/api/profile-bulk-import-jobs/{job_id}/import-errors?page[size]=2").json()
    second = requests.get(first["links"]["next"], headers={"Authorization": f"Klaviyo-API-Key {fake.api_key}",
                                                           "revision": "2025-10-15"}, timeout=10).json()
    assert (len(first["data"]), len(second["data"]), second["links"]["next"]) == (2, 1, None)


def test_import_errors_are_empty_until_the_job_is_complete():
    with FakeKlaviyo(import_polls_until_done=2) as fake:
        job_id = call(fake, "POST", "/api/profile-bulk-import-jobs", job({"email": "bad"})).json()["data"]["id"]
        assert call(fake, "GET", f"/api/profile-bulk-import-jobs/{job_id}/import-errors").json()["data"] == []


def test_an_import_adds_its_profiles_to_the_job_lists_and_reports_their_ids(fake):
    list_id = fake.add_list("vip")
    job_id = call(fake, "POST", "/api/profile-bulk-import-jobs", job(ADA, lists=(list_id,))).json()["data"]["id"]
    call(fake, "GET", f"/api/profile-bulk-import-jobs/{job_id}")
    ids = call(fake, "GET", f"/api/profile-bulk-import-jobs/{job_id}/relationships/profiles").json()["data"]
    assert ids == [{"type": "profile", "id": fake.id_of("ada@example.com")}]
    assert fake.list_emails(list_id) == {"ada@example.com"}


def test_a_job_naming_an_unknown_list_is_refused(fake):
    assert call(fake, "POST", "/api/profile-bulk-import-jobs", job(ADA, lists=("nope",))).status_code == 400


def test_bulk_import_ignores_null_while_profile_import_clears(fake):
    run_job(fake, {**ADA, "title": "CTO"})
    run_job(fake, {"email": "ada@example.com", "title": None})
    assert fake.by_email("ada@example.com")["title"] == "CTO"
    answer = call(fake, "POST", "/api/profile-import", {"data": {"type": "profile", "attributes": {
        "email": "ada@example.com", "title": None}}})
    assert answer.status_code == 200 and "title" not in fake.by_email("ada@example.com")
    assert fake.writes == Counter({"ada@example.com": 3})


def test_profile_import_creates_with_201(fake):
    answer = call(fake, "POST", "/api/profile-import", {"data": {"type": "profile", "attributes": ADA}})
    assert (answer.status_code, answer.json()["data"]["id"]) == (201, fake.id_of("ada@example.com"))


def test_a_profile_is_found_by_email_filter(fake):
    profile_id = fake.add_profile(**ADA)
    found = call(fake, "GET", '/api/profiles?filter=equals(email,"ada@example.com")').json()["data"]
    assert [p["id"] for p in found] == [profile_id]


def test_a_list_is_created_and_found_by_name(fake):
    created = call(fake, "POST", "/api/lists", {"data": {"type": "list", "attributes": {"name": "cdp: vip"}}})
    found = call(fake, "GET", '/api/lists?filter=equals(name,"cdp: vip")').json()["data"]
    assert (created.status_code, [f["id"] for f in found]) == (201, [created.json()["data"]["id"]])


def test_list_members_are_added_and_removed_with_204(fake):
    list_id, ada, bob = fake.add_list("vip"), fake.add_profile(email="a@x.io"), fake.add_profile(email="b@x.io")
    added = call(fake, "POST", f"/api/lists/{list_id}/relationships/profiles", members(ada, bob))
    removed = call(fake, "DELETE", f"/api/lists/{list_id}/relationships/profiles", members(ada))
    assert [(a.status_code, a.content, a.headers["Content-Length"]) for a in (added, removed)] == [(204, b"", "0")] * 2
    assert fake.list_members(list_id) == {bob}


def test_a_list_call_over_1000_profiles_is_refused(fake):
    list_id, ada = fake.add_list("vip"), fake.add_profile(email="a@x.io")
    answer = call(fake, "POST", f"/api/lists/{list_id}/relationships/profiles", members(*[ada] * 1001))
    assert answer.status_code == 400 and fake.list_members(list_id) == set()


def test_a_list_call_with_an_unknown_profile_or_list_is_refused(fake):
    list_id = fake.add_list("vip")
    assert call(fake, "POST", f"/api/lists/{list_id}/relationships/profiles", members("nobody")).status_code == 400
    assert call(fake, "POST", "/api/lists/nope/relationships/profiles", members("nobody")).status_code == 404


def subscription(verb: str, *emails: str, historical: bool = False, consented_at: str | None = None) -> dict:
    marketing = {"consent": "SUBSCRIBED", **({"consented_at": consented_at} if consented_at else {})}
    return {"data": {"type": f"profile-subscription-bulk-{verb}-job", "attributes": {
        "historical_import": historical, "profiles": {"data": [
            {"type": "profile", "attributes": {"email": e, "subscriptions": {"email": {"marketing": marketing}}}}
            for e in emails]}}}}


def test_a_subscription_job_consents_email_marketing_and_a_delete_job_withdraws_it(fake):
    body = subscription("create", "a@x.io", "b@x.io")
    created = call(fake, "POST", "/api/profile-subscription-bulk-create-jobs", body)
    assert (created.status_code, created.content, fake.subscribed) == (202, b"", {"a@x.io", "b@x.io"})
    call(fake, "POST", "/api/profile-subscription-bulk-delete-jobs", subscription("delete", "a@x.io"))
    assert fake.subscribed == {"b@x.io"}


def test_a_historical_import_needs_consented_at(fake):
    path = "/api/profile-subscription-bulk-create-jobs"
    assert call(fake, "POST", path, subscription("create", "a@x.io", historical=True)).status_code == 400
    assert call(fake, "POST", path, subscription("create", "a@x.io", historical=True,
                                                 consented_at="2025-01-01T00:00:00Z")).status_code == 202


def test_a_subscription_job_over_1000_profiles_is_refused(fake):
    body = subscription("create", *(f"u{n}@x.io" for n in range(1001)))
    assert call(fake, "POST", "/api/profile-subscription-bulk-create-jobs", body).status_code == 400


def deletion(**identifiers: str) -> dict:
    return {"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data": {
        "type": "profile", "attributes": identifiers}}}}}


def test_a_privacy_deletion_removes_the_profile_its_memberships_and_consent(fake):
    list_id, ada = fake.add_list("vip"), fake.add_profile(**ADA)
    fake.lists[list_id]["members"].add(ada)
    fake.subscribed.add("ada@example.com")
    answer = call(fake, "POST", "/api/data-privacy-deletion-jobs", deletion(email="ada@example.com"))
    assert (answer.status_code, fake.deleted, fake.profiles, fake.list_members(list_id), fake.subscribed) == (
        202, ["ada@example.com"], {}, set(), set())


def test_a_privacy_deletion_needs_exactly_one_identifier(fake):
    both = deletion(email="ada@example.com", phone_number="+15005550006")
    assert call(fake, "POST", "/api/data-privacy-deletion-jobs", both).status_code == 400
    assert fake.deleted == []


def test_a_429_carries_retry_after_and_no_rate_limit_headers(fake):
    fake.fail_next("429")
    throttled = call(fake, "POST", "/api/profile-bulk-import-jobs", job(ADA))
    assert (throttled.status_code, throttled.headers["Retry-After"], throttled.json()["errors"][0]["code"]) == (
        429, "1", "throttled")
    assert "RateLimit-Limit" not in throttled.headers and fake.writes == Counter()
    accepted = call(fake, "POST", "/api/profile-bulk-import-jobs", job(ADA))
    assert (accepted.status_code, accepted.headers["RateLimit-Limit"]) == (202, "150")


def test_faults_skip_reads_and_hit_the_next_write(fake):
    fake.fail_next("503")
    assert call(fake, "GET", "/api/lists").status_code == 200
    body = {"data": {"type": "profile", "attributes": ADA}}
    assert call(fake, "POST", "/api/profile-import", body).status_code == 503


def test_a_500_applies_nothing(fake):
    fake.fail_next("500")
    assert call(fake, "POST", "/api/profile-bulk-import-jobs", job(ADA)).status_code == 500
    assert fake.writes == Counter() and fake.jobs == {}


@pytest.mark.parametrize(("fault", "writes"), [("drop", Counter()), ("accept_then_drop", Counter({"p@x.io": 1}))])
def test_a_dropped_connection_is_unanswered_and_applied_only_after_accepting(fake, fault, writes):
    fake.fail_next(fault)
    with pytest.raises(requests.ConnectionError):
        call(fake, "POST", "/api/profile-bulk-import-jobs", job({"email": "p@x.io"}))
    assert fake.writes == writes


def test_kill_before_accepting_kills_the_client_and_applies_nothing(fake):
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as client:
        fake.kill(client.pid, on_request=1, after_accepting=False)
        with pytest.raises(requests.ConnectionError):
            call(fake, "POST", "/api/profile-bulk-import-jobs", job(ADA))
        assert client.wait(timeout=5) == -9
    assert fake.writes == Counter()
