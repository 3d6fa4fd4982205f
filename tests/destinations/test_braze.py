"""The shipped Braze sync (`braze_users.yaml`) against a local Braze: typed attributes by external_id, only
what changed, per-object errors dead-lettered alone, 429s waited for, a bad key stopping the sync, deletions
through /users/delete, and consent judged before anything is built."""

import time
from collections import Counter

import pytest

from cdp_assets.activation.destinations.registry import discover
from tests.destinations.braze_world import (
    SlowResetBraze,
    braze_sync,
    build_braze_world,
    egress_rows,
    ledger,
    record_key,
    record_state,
    request_deletion,
    sent_ids,
    track_bodies,
)
from tests.destinations.records_world import SNAPSHOT, execute, materialize, metadata, query
from tests.fakes.braze import BLOCKED_ID, FakeBraze

ADA = {"external_id": "p1", "email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace",
       "phone": "+14155550101", "country": "GB", "cdp_lifetime_value": 1234.5, "cdp_order_count": 7,
       "cdp_last_order_at": "2026-11-30T10:00:00.000Z", "cdp_rfm_segment": "545", "cdp_audience_vip": True}
CY = {"external_id": "p3", "email": "cy@example.com", "first_name": "Cy", "last_name": "Cache",
      "phone": "+14155550103", "country": "US", "cdp_lifetime_value": 80, "cdp_order_count": 1,
      "cdp_last_order_at": "2026-10-02T08:30:00.000Z", "cdp_rfm_segment": "213", "cdp_audience_vip": False}
DI = {"external_id": "p4", "email": None, "first_name": "Di", "last_name": "Disk", "phone": "+14155550104",
      "country": None, "cdp_lifetime_value": 15, "cdp_order_count": 1, "cdp_last_order_at": "2026-09-01T12:00:00.000Z",
      "cdp_rfm_segment": "111", "cdp_audience_vip": False}


@pytest.fixture(autouse=True)
def no_braze_settings(monkeypatch):
    """Whatever the developer's shell exports, a test starts with Braze unconfigured."""
    for name in discover()["braze"].variables:
        monkeypatch.delenv(name, raising=False)


def live(fake: FakeBraze, monkeypatch) -> None:
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CDP_EGRESS_MODE", "live")


@pytest.fixture
def braze(monkeypatch):
    with FakeBraze() as fake:
        live(fake, monkeypatch)
        yield fake
    assert fake.crashes == []


@pytest.fixture
def world(warehouse):
    build_braze_world(warehouse)
    return warehouse


def by_id(objects: list[dict]) -> dict[str, dict]:
    return {o["external_id"]: o for o in objects}


def test_a_first_sync_writes_every_eligible_profile_once_with_typed_values(world, braze, tmp_path):
    sync = braze_sync(tmp_path)
    result = materialize(world, sync)
    assert result.success
    [request] = [r for r in braze.requests if r["path"] == "/users/track"]
    assert request["headers"]["Authorization"] == f"Bearer {braze.api_key}"
    # Bob (p2) never granted marketing consent; the others are each written once, with JSON-typed values.
    assert by_id(request["body"]["attributes"]) == {"p1": ADA, "p3": CY, "p4": DI}
    assert braze.writes == Counter({"p1": 1, "p3": 1, "p4": 1})
    assert braze.users["p4"] == {k: v for k, v in DI.items() if v is not None and k != "external_id"}
    assert record_state(world, sync) == {record_key(p): (p, "present") for p in ("p1", "p3", "p4")}
    assert set(ledger(world, sync).values()) == {("sent", None)}
    meta = metadata(result)
    assert (meta["records_sent"], meta["platform_attributes_processed"], meta["outcome"]) == (3, 3, "ok")
    assert meta["sample_record"]["email"] == "[redacted]"


def test_a_re_run_sends_nothing(world, braze, tmp_path):
    sync = braze_sync(tmp_path)
    materialize(world, sync)
    seen = len(braze.requests)
    result = materialize(world, sync)
    assert result.success and len(braze.requests) == seen and metadata(result)["records_sent"] == 0


def test_changing_one_trait_of_one_person_sends_exactly_that_record(world, braze, tmp_path):
    sync = braze_sync(tmp_path)
    materialize(world, sync)
    execute(world, "UPDATE core.unified_profiles SET order_count = 2, lifetime_value = 99.90 WHERE profile_id = 'p3'")
    materialize(world, sync)
    assert track_bodies(braze)[-1] == [{**CY, "cdp_order_count": 2, "cdp_lifetime_value": 99.9}]
    assert braze.users["p3"]["cdp_order_count"] == 2 and braze.writes == Counter({"p1": 1, "p3": 2, "p4": 1})


def test_leaving_an_audience_flips_its_boolean(world, braze, tmp_path):
    sync = braze_sync(tmp_path)
    materialize(world, sync)
    later = SNAPSHOT.replace(day=2)
    execute(world, "INSERT INTO audiences.snapshots VALUES ('vip', :ts)", {"ts": later})
    execute(world, "INSERT INTO audiences.memberships VALUES ('vip', 'p3', :ts)", {"ts": later})
    materialize(world, sync)
    assert by_id(track_bodies(braze)[-1]) == {"p1": {**ADA, "cdp_audience_vip": False},
                                              "p3": {**CY, "cdp_audience_vip": True}}
    assert (braze.users["p1"]["cdp_audience_vip"], braze.users["p3"]["cdp_audience_vip"]) == (False, True)


def test_an_error_for_one_object_in_a_2xx_dead_letters_only_that_record(world, braze, tmp_path):
    braze.poison("p3")  # Braze refuses p3's object (a blocklisted external_id) and accepts the rest
    sync = braze_sync(tmp_path)
    result = materialize(world, sync)
    assert result.success
    assert query(world, "SELECT record_key, reason FROM activation.dead_letters WHERE destination = :d",
                 {"d": sync.name}) == [(record_key("p3"), f"Braze: {BLOCKED_ID}")]
    assert ledger(world, sync) == {record_key("p1"): ("sent", None), record_key("p4"): ("sent", None),
                                   record_key("p3"): ("dead_letter", f"Braze: {BLOCKED_ID}")}
    assert set(record_state(world, sync)) == {record_key("p1"), record_key("p4")}
    assert (metadata(result)["records_sent"], metadata(result)["dead_letters"]) == (2, 1)
    # Refused for good: not sent again until its values change or its dead letter is replayed.
    seen = len(braze.requests)
    materialize(world, sync)
    assert len(braze.requests) == seen


def test_a_429_is_waited_for_until_the_reset_and_the_batch_goes_through(warehouse, monkeypatch, tmp_path):
    build_braze_world(warehouse)
    with SlowResetBraze() as fake:
        live(fake, monkeypatch)
        fake.fail_next("429")
        sync = braze_sync(tmp_path)
        began = time.monotonic()
        result = materialize(warehouse, sync)
        waited = time.monotonic() - began
    assert result.success and fake.crashes == []
    assert waited > 1.0  # the reset was two seconds ahead (whole seconds); the retry backoff alone is 10 ms
    assert len(track_bodies(fake)) == 2 and fake.writes == Counter({"p1": 1, "p3": 1, "p4": 1})
    assert [(s, h, a) for _, _, s, h, a, _ in egress_rows(warehouse, sync)] == [("failed", 429, 1), ("sent", 201, 2)]
    assert set(ledger(warehouse, sync).values()) == {("sent", None)}


def test_a_bad_api_key_fails_the_asset_in_one_line_and_sends_nothing_more(world, braze, monkeypatch, tmp_path):
    monkeypatch.setenv("BRAZE_API_KEY", "not-the-key")
    sync = braze_sync(tmp_path, options={"batch_size": 1})  # three batches: only the first may leave
    result = materialize(world, sync)
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert "\n" not in message and "Braze 401" in message and "not-the-key" not in message
    assert len(braze.requests) == 1 and braze.writes == Counter()
    # Refused credentials stop the sync: its records were marked in flight with their page and go next run.
    assert {s for s, _ in ledger(world, sync).values()} <= {"failed", "in_flight"}
    assert not query(world, "SELECT * FROM activation.record_state")


def test_a_deletion_request_reaches_users_delete_and_leaves_no_record_state(world, braze, tmp_path):
    sync = braze_sync(tmp_path)
    materialize(world, sync)
    request_deletion(world, "p1", " Ada@Example.com ")
    seen = len(braze.requests)
    result = materialize(world, sync)
    assert result.success
    later = braze.requests[seen:]
    assert [(r["path"], r["body"]) for r in later] == [("/users/delete", {"external_ids": ["p1"]})]
    assert braze.deleted == ["p1"] and "p1" not in braze.users
    assert record_key("p1") not in record_state(world, sync)
    assert metadata(result)["deleted"] == 1


def test_a_dry_run_sends_nothing_and_records_the_requests(world, braze, monkeypatch, tmp_path):
    monkeypatch.setenv("CDP_EGRESS_MODE", "dry_run")
    sync = braze_sync(tmp_path)
    result = materialize(world, sync)
    assert result.success and braze.requests == []
    [(operation, url, status, http_status, attempt, body)] = egress_rows(world, sync)
    assert (operation, url, status, http_status, attempt) == ("upsert", f"{braze.url}/users/track", "dry_run", None, 0)
    assert by_id(body["attributes"]) == {"p1": ADA, "p3": CY, "p4": DI}
    assert not query(world, "SELECT * FROM activation.record_state")


def test_a_dry_run_without_the_endpoint_plans_against_a_placeholder(world, monkeypatch, tmp_path):
    sync = braze_sync(tmp_path)
    result = materialize(world, sync)
    assert result.success
    assert {url for _, url, *_ in egress_rows(world, sync)} == {"{BRAZE_REST_ENDPOINT}/users/track"}
    assert metadata(result)["credentials"] == "missing BRAZE_API_KEY, BRAZE_REST_ENDPOINT"


def test_live_without_the_endpoint_skips_the_sync(world, monkeypatch, tmp_path):
    monkeypatch.setenv("CDP_EGRESS_MODE", "live")
    monkeypatch.setenv("BRAZE_API_KEY", "some-key")
    result = materialize(world, braze_sync(tmp_path))
    assert result.success and metadata(result)["outcome"] == "skipped"


def test_a_profile_without_marketing_consent_is_never_sent(world, braze, tmp_path):
    sync = braze_sync(tmp_path)
    materialize(world, sync)
    execute(world, "UPDATE core.unified_profiles SET order_count = order_count + 1")  # everyone changes
    materialize(world, sync)
    assert "p2" not in sent_ids(braze) and sorted(sent_ids(braze)) == ["p1", "p1", "p3", "p3", "p4", "p4"]


def test_consent_withdrawn_clears_the_person_at_braze(world, braze, tmp_path):
    sync = braze_sync(tmp_path)
    materialize(world, sync)
    execute(world, "INSERT INTO core.consent VALUES ('cp3', 'p3', 'marketing', FALSE, 'crm', :ts)",
            {"ts": SNAPSHOT.replace(day=2)})
    result = materialize(world, sync)
    assert track_bodies(braze)[-1] == [{"external_id": "p3", **{k: None for k in CY if k != "external_id"}}]
    assert braze.users["p3"] == {} and record_state(world, sync)[record_key("p3")] == ("p3", "cleared")
    assert metadata(result)["removed"] == 1


def test_a_suppressed_profile_is_never_sent(world, braze, tmp_path):
    execute(world, "INSERT INTO core.suppressed_profiles VALUES ('p3')")
    materialize(world, braze_sync(tmp_path))
    assert sorted(sent_ids(braze)) == ["p1", "p4"]


def test_on_leave_nothing_sends_nothing_for_a_leaver(world, braze, tmp_path):
    sync = braze_sync(tmp_path, on_leave="nothing")
    materialize(world, sync)
    execute(world, "INSERT INTO core.suppressed_profiles VALUES ('p3')")
    seen = len(braze.requests)
    materialize(world, sync)
    assert len(braze.requests) == seen and braze.users["p3"]["email"] == "cy@example.com"


def test_on_leave_delete_deletes_the_leaver_through_users_delete(world, braze, tmp_path):
    sync = braze_sync(tmp_path, mode="mirror", on_leave="delete")
    materialize(world, sync)
    execute(world, "DELETE FROM core.unified_profiles WHERE profile_id = 'p4'")
    materialize(world, sync)
    assert braze.requests[-1]["path"] == "/users/delete" and braze.requests[-1]["body"] == {"external_ids": ["p4"]}
    assert braze.deleted == ["p4"] and record_key("p4") not in record_state(world, sync)


def test_batches_hold_at_most_the_batch_size(world, braze, tmp_path):
    materialize(world, braze_sync(tmp_path, options={"batch_size": 2}))
    assert [len(b) for b in track_bodies(braze)] == [2, 1] and len(braze.writes) == 3
