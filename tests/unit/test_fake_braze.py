"""The Braze fake enforces the rules of spec §4 / vectors §9.4: auth, batch limits, per-object errors in a 2xx."""

import subprocess
import sys
import time
from collections import Counter

import pytest
import requests

from tests.fakes.braze import BLOCKED_ID, MISSING_ID, FakeBraze

BZ1 = {  # vector BZ-1
    "attributes": [
        {"external_id": "p_1", "email": "ada@example.com", "first_name": "Ada", "cdp_ltv": 1234.5,
         "cdp_segments": {"add": ["vip"], "remove": ["churn_risk"]}},
        {"user_alias": {"alias_name": "lead-77", "alias_label": "crm_lead_id"}, "_update_existing_only": False,
         "cdp_score": 42},
        {"first_name": "NoIdentifier"}],
    "events": [{"external_id": "p_1", "name": "cdp_offline_purchase", "time": "2025-06-01T12:00:00Z",
                "properties": {"store": "SF-01"}}],
    "purchases": [{"external_id": "p_1", "product_id": "sku-1", "currency": "USD", "price": 19.99, "quantity": 2,
                   "time": "2025-06-01T12:00:00Z"}]}


@pytest.fixture
def fake():
    with FakeBraze() as server:
        yield server
    assert server.crashes == []


def call(fake: FakeBraze, path: str, body: object, key: str | None = None, **headers: str) -> requests.Response:
    sent = {"Authorization": f"Bearer {key or fake.api_key}", **headers}
    return requests.post(fake.url + path, json=body, headers=sent, timeout=10)


def people(n: int, start: int = 0) -> list[dict]:
    return [{"external_id": f"p_{i}", "cdp_score": i} for i in range(start, start + n)]


def test_a_wrong_key_is_refused_with_401(fake):
    answer = call(fake, "/users/track", {"attributes": people(1)}, key="wrong")
    assert (answer.status_code, answer.json()["message"], fake.writes) == (401, "Invalid API key: wrong", Counter())


def test_the_spec_vector_answers_201_with_the_refused_object_in_errors(fake):
    answer = call(fake, "/users/track", BZ1)
    assert (answer.status_code, answer.json()) == (201, {
        "message": "success", "attributes_processed": 2, "events_processed": 1, "purchases_processed": 1,
        "errors": [{"type": MISSING_ID, "input_array": "attributes", "index": 2}]})


def test_the_spec_vector_merges_attributes_and_stores_the_event_and_purchase(fake):
    call(fake, "/users/track", BZ1)
    assert fake.users == {"p_1": {"email": "ada@example.com", "first_name": "Ada", "cdp_ltv": 1234.5,
                                  "cdp_segments": ["vip"]}, "alias:crm_lead_id:lead-77": {"cdp_score": 42}}
    assert ([e["name"] for e in fake.events], [p["product_id"] for p in fake.purchases]) == (
        ["cdp_offline_purchase"], ["sku-1"])


def test_a_fully_valid_request_has_no_errors_key(fake):
    answer = call(fake, "/users/track", {"attributes": people(3)})
    assert answer.json() == {"message": "success", "attributes_processed": 3}


def test_76_attribute_objects_are_fatal(fake):
    answer = call(fake, "/users/track", {"attributes": people(76)})
    assert (answer.status_code, answer.json(), fake.writes) == (
        400, {"message": "Max Input Length Exceeded", "errors": []}, Counter())


def test_75_objects_per_array_pass(fake):
    events = [{"external_id": "p_0", "name": "e", "time": "2025-06-01T12:00:00Z"}] * 75
    answer = call(fake, "/users/track", {"attributes": people(75), "events": events})
    assert (answer.status_code, answer.json()["attributes_processed"], answer.json()["events_processed"]) == (
        201, 75, 75)


def test_a_combined_limit_counts_all_arrays():
    with FakeBraze(max_combined=50) as fake:
        events = [{"external_id": "p_0", "name": "e", "time": "2025-06-01T12:00:00Z"}] * 21
        assert call(fake, "/users/track", {"attributes": people(30), "events": events}).status_code == 400
        assert call(fake, "/users/track", {"attributes": people(30), "events": events[:20]}).status_code == 201


def test_a_poisoned_value_and_a_blocklisted_id_fail_alone(fake):
    fake.poison("p_1")
    answer = call(fake, "/users/track", {"attributes": [*people(3), {"external_id": "null", "x": 1}]}).json()
    assert (answer["attributes_processed"], answer["errors"]) == (2, [
        {"type": BLOCKED_ID, "input_array": "attributes", "index": 1},
        {"type": BLOCKED_ID, "input_array": "attributes", "index": 3}])
    assert fake.writes == Counter({"p_0": 1, "p_2": 1})


def test_a_poisoned_attribute_value_names_the_attribute(fake):
    fake.poison("bad-value")
    answer = call(fake, "/users/track", {"attributes": [{"external_id": "p_0", "tier": "bad-value"}]}).json()
    assert answer["errors"] == [{"type": "'tier' has an invalid value", "input_array": "attributes", "index": 0}]


def test_an_event_without_time_and_a_purchase_without_currency_are_refused(fake):
    answer = call(fake, "/users/track", {
        "events": [{"external_id": "p_0", "name": "e"}],
        "purchases": [{"external_id": "p_0", "product_id": "s", "price": 1, "time": "2025-06-01T12:00:00Z"}]}).json()
    assert [(e["input_array"], e["index"]) for e in answer["errors"]] == [("events", 0), ("purchases", 0)]
    assert (answer["events_processed"], answer["purchases_processed"], fake.events, fake.purchases) == (0, 0, [], [])


def test_events_are_never_deduplicated(fake):
    event = {"external_id": "p_0", "name": "e", "time": "2025-06-01T12:00:00Z"}
    call(fake, "/users/track", {"events": [event]})
    call(fake, "/users/track", {"events": [event]})
    assert len(fake.events) == 2


def test_null_removes_inc_increments_and_remove_edits_an_array(fake):
    call(fake, "/users/track", {"attributes": [{"external_id": "p_0", "a": 1, "n": 2, "tags": ["x", "y"]}]})
    call(fake, "/users/track", {"attributes": [{"external_id": "p_0", "a": None, "n": {"inc": 3},
                                                "tags": {"remove": ["x"], "add": ["y", "z"]}}]})
    assert (fake.users["p_0"], fake.writes["p_0"]) == ({"n": 5, "tags": ["y", "z"]}, 2)


def test_an_alias_only_object_updates_existing_users_only_by_default(fake):
    answer = call(fake, "/users/track", {"attributes": [
        {"user_alias": {"alias_name": "lead-1", "alias_label": "crm"}, "cdp_score": 1}]})
    assert (answer.json()["attributes_processed"], fake.users) == (1, {})


def test_an_email_identifier_updates_the_user_with_that_email(fake):
    call(fake, "/users/track", {"attributes": [{"external_id": "p_0", "email": "a@x.io"}]})
    call(fake, "/users/track", {"attributes": [{"email": "a@x.io", "tier": "gold"}]})
    assert fake.users == {"p_0": {"email": "a@x.io", "tier": "gold"}}


def test_a_body_that_is_not_an_object_is_refused(fake):
    assert call(fake, "/users/track", ["x"]).status_code == 400


def test_a_body_with_no_data_is_refused(fake):
    assert call(fake, "/users/track", {"attributes": []}).status_code == 400


def test_a_success_carries_the_rate_limit_headers(fake):
    headers = call(fake, "/users/track", {"attributes": people(1)}).headers
    assert (headers["X-RateLimit-Limit"], headers["X-RateLimit-Remaining"]) == ("3000", "2999")
    assert int(headers["X-RateLimit-Reset"]) > time.time()


def test_the_window_refuses_the_request_past_the_limit_with_429():
    with FakeBraze(track_limit=2) as fake:
        fake.limits["/users/track"] = (2, 3600.0)  # a window no loaded machine outlasts
        answers = [call(fake, "/users/track", {"attributes": people(1, n)}) for n in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert (answers[2].headers["X-RateLimit-Remaining"], fake.writes) == ("0", Counter({"p_0": 1, "p_1": 1}))


def test_an_injected_429_names_a_reset_at_most_a_second_ahead_and_no_retry_after(fake):
    fake.fail_next("429")
    before = time.time()
    answer = call(fake, "/users/track", {"attributes": people(1)})
    assert (answer.status_code, answer.json(), answer.headers["X-RateLimit-Remaining"]) == (
        429, {"message": "Rate limit exceeded"}, "0")
    assert int(before) < int(answer.headers["X-RateLimit-Reset"]) <= int(time.time()) + 1
    assert "Retry-After" not in answer.headers and fake.writes == Counter()


@pytest.mark.parametrize("fault", ["500", "503", "401"])
def test_an_injected_error_applies_nothing(fake, fault):
    fake.fail_next(fault)
    assert call(fake, "/users/track", {"attributes": people(1)}).status_code == int(fault)
    assert fake.writes == Counter()


def test_queued_is_a_202_that_was_applied(fake):
    fake.fail_next("queued")
    answer = call(fake, "/users/track", {"attributes": people(1)})
    assert (answer.status_code, answer.json(), fake.writes) == (202, {"message": "queued"}, Counter({"p_0": 1}))


@pytest.mark.parametrize(("fault", "writes"), [("drop", Counter()), ("accept_then_drop", Counter({"p_0": 1}))])
def test_a_dropped_connection_is_unanswered_and_applied_only_after_accepting(fake, fault, writes):
    fake.fail_next(fault)
    with pytest.raises(requests.ConnectionError):
        call(fake, "/users/track", {"attributes": people(1)})
    assert fake.writes == writes


def test_kill_after_accepting_kills_the_client_once_the_write_is_applied(fake):
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as client:
        fake.kill(client.pid, on_request=2, after_accepting=True)
        call(fake, "/users/track", {"attributes": people(1)})
        with pytest.raises(requests.ConnectionError):
            call(fake, "/users/track", {"attributes": people(1, 1)})
        assert client.wait(timeout=5) == -9
    assert fake.writes == Counter({"p_0": 1, "p_1": 1})


def test_delete_answers_the_count_and_removes_the_users(fake):
    call(fake, "/users/track", {"attributes": people(3)})
    answer = call(fake, "/users/delete", {"external_ids": ["p_0", "p_1"]})
    assert (answer.status_code, answer.json()) == (201, {"deleted": 2, "message": "success"})
    assert (list(fake.users), fake.deleted) == (["p_2"], ["p_0", "p_1"])


def test_delete_takes_at_most_50_ids(fake):
    answer = call(fake, "/users/delete", {"external_ids": [f"p_{n}" for n in range(51)]})
    assert (answer.status_code, answer.json()["message"], fake.deleted) == (400, "Max Input Length Exceeded", [])


def test_delete_takes_one_identifier_type(fake):
    answer = call(fake, "/users/delete", {"external_ids": ["p_0"], "braze_ids": ["b_0"]})
    assert (answer.status_code, fake.deleted) == (400, [])


def test_an_unknown_route_is_404(fake):
    assert call(fake, "/users/identify", {}).status_code == 404
