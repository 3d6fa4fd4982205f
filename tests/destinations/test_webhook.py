"""The webhook destination against a local receiver (`tests/fakes/webhook.py`) that checks every signature,
on DuckDB and PostgreSQL: what is posted, how often, and what happens when the receiver fails or refuses."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from cdp_assets.activation.destinations.webhook.signing import verify
from cdp_assets.activation.records import run
from cdp_assets.activation.transport import RetryPolicy
from cdp_assets.settings import ConfigError
from tests.destinations.records_world import build_world, execute, metadata, query
from tests.destinations.webhook_world import ELIGIBLE, SECRET, checks, record_id, run_sync, webhook_sync
from tests.fakes.webhook import FakeWebhook

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def receiver():
    with FakeWebhook(secret=SECRET) as fake:
        yield fake
    assert fake.crashes == []


@pytest.fixture
def live(monkeypatch, receiver):
    """Live mode, with the sync `leads_hook` pointed at the receiver."""
    monkeypatch.setenv("CDP_EGRESS_MODE", "live")
    for name, value in receiver.env("leads_hook").items():
        monkeypatch.setenv(name, value)
    return receiver


@pytest.fixture
def world(warehouse):
    build_world(warehouse)
    return warehouse


def failure(result: dg.ExecuteInProcessResult) -> str:
    return result.get_step_failure_events()[0].step_failure_data.error.message


def posted(fake: FakeWebhook) -> list[list[str]]:
    """The record ids of each batch the receiver applied, in order."""
    return [[r["record_id"] for r in batch["records"]] for batch in fake.batches]


def test_every_request_is_signed_over_the_exact_bytes_sent(world, live, tmp_path):
    result = run_sync(world, webhook_sync(tmp_path))

    assert result.success
    assert len(live.received) == 2
    for request in live.received:
        timestamp, signed = request["headers"]["X-CDP-Timestamp"], request["headers"]["X-CDP-Signature"]
        assert verify(SECRET, request["raw"], timestamp, signed)
        assert not verify("another-secret", request["raw"], timestamp, signed)
    logged = [body for (body,) in query(world, "SELECT request_body FROM activation.egress_requests "
                                               "ORDER BY batch_no, attempt")]
    assert [body.encode() for body in logged] == [r["raw"] for r in live.received]


def test_a_wrong_secret_is_refused_and_stops_the_sync(world, live, tmp_path, monkeypatch):
    monkeypatch.setenv("CDP_WEBHOOK_LEADS_HOOK_SECRET", "not-the-secret")
    result = run_sync(world, webhook_sync(tmp_path))

    assert not result.success
    assert "refused the credentials (webhook answered HTTP 401" in failure(result)
    assert (live.refused[401], live.deliveries) == (1, {})


def test_a_first_sync_posts_every_eligible_record_once_in_batches_of_batch_size(world, live, tmp_path):
    result = run_sync(world, webhook_sync(tmp_path))

    assert result.success
    expected = sorted(record_id(p) for p in ELIGIBLE)
    assert posted(live) == [expected[:2], expected[2:]]
    assert live.deliveries == {r: 1 for r in expected}
    first = live.batches[0]
    assert (first["sync"], first["operation"], first["sent_at"].endswith("Z")) == ("leads_hook", "upsert", True)
    assert live.held[record_id("p1")] == {
        "key": "p1", "email": "ada@example.com", "first_name": "Ada", "lifetime_value": 1234.5, "order_count": 7,
        "last_order_at": "2026-11-30T10:00:00.000Z", "rfm_segment": "545", "audience_vip": True}
    assert live.held[record_id("p4")]["email"] is None
    meta = metadata(result)
    assert (meta["outcome"], meta["records_sent"], meta["requests_sent"]) == ("ok", 3, 2)
    # The hook's path is its token: the log keeps the host only.
    assert query(world, "SELECT DISTINCT url FROM activation.egress_requests") == [(f"{live.url}[redacted]",)]


def test_a_re_run_posts_nothing(world, live, tmp_path):
    sync = webhook_sync(tmp_path)
    run_sync(world, sync)
    requests_before = len(live.requests)

    result = run_sync(world, sync)

    assert result.success
    assert len(live.requests) == requests_before
    assert (metadata(result)["records_sent"], metadata(result)["changed"]) == (0, 0)


def test_one_changed_trait_posts_that_one_record(world, live, tmp_path):
    sync = webhook_sync(tmp_path)
    run_sync(world, sync)
    execute(world, "UPDATE core.unified_profiles SET rfm_segment = '555' WHERE profile_id = 'p3'")

    run_sync(world, sync)

    assert posted(live)[-1] == [record_id("p3")]
    assert live.batches[-1]["records"][0]["fields"]["rfm_segment"] == "555"
    assert live.deliveries[record_id("p3")] == 2
    assert live.records_received() == len(ELIGIBLE) + 1


@pytest.mark.parametrize(("fault", "duplicates"), [("500", 0), ("429", 0), ("drop", 0), ("accept_then_drop", 1)])
def test_a_failed_attempt_then_success_delivers_each_record_once(world, live, tmp_path, fault, duplicates):
    live.fail_next(fault)
    result = run_sync(world, webhook_sync(tmp_path))

    assert result.success
    assert live.deliveries == {record_id(p): 1 for p in ELIGIBLE}
    # A batch the receiver applied but could not answer comes again with its batch_id, and is kept once.
    assert live.duplicates == duplicates
    assert metadata(result)["retries"] == 1
    assert query(world, "SELECT status, count(*) FROM activation.sync_ledger GROUP BY status") == [("sent", 3)]


def test_retry_after_is_honoured(world, monkeypatch, tmp_path):
    slept: list[float] = []
    policy = RetryPolicy(attempts=3, base_seconds=0.001, max_seconds=0.01, timeout=(10.0, 30.0), sleep=slept.append)
    with FakeWebhook(secret=SECRET, retry_after="7") as fake:
        monkeypatch.setenv("CDP_EGRESS_MODE", "live")
        for name, value in fake.env("leads_hook").items():
            monkeypatch.setenv(name, value)
        fake.fail_next("429")
        result = run_sync(world, webhook_sync(tmp_path), policy)

    assert result.success
    assert slept == [7.0]
    assert fake.deliveries == {record_id(p): 1 for p in ELIGIBLE}


def test_a_poisoned_record_is_isolated_by_bisection_and_dead_lettered_alone(world, live, tmp_path):
    live.poison("Cy")  # p3's first name
    sync = webhook_sync(tmp_path, options={"batch_size": 100, "clear": ["email", "first_name"]})
    result = run_sync(world, sync)

    assert result.success
    assert live.deliveries == {record_id("p1"): 1, record_id("p4"): 1}
    assert live.refused[422] == 2  # the batch of three, then p3 alone: its first half (p4 and p1 went through)
    [(key, reason)] = query(world, "SELECT record_key, reason FROM activation.dead_letters")
    assert key == record_id("p3")
    assert reason.startswith("webhook answered HTTP 422:")
    meta = metadata(result)
    assert (meta["records_sent"], meta["dead_letters"], meta["bisections"]) == (2, 1, 1)

    requests_before = len(live.requests)
    run_sync(world, sync)
    assert len(live.requests) == requests_before  # refused for good until its values change or it is replayed


@pytest.mark.parametrize("on_leave", ["clear", "delete"])
def test_a_record_that_leaves_is_named_by_its_record_id_only(world, live, tmp_path, on_leave):
    sync = webhook_sync(tmp_path, on_leave=on_leave)
    run_sync(world, sync)
    execute(world, "DELETE FROM core.unified_profiles WHERE profile_id = 'p1'")

    result = run_sync(world, sync)

    assert result.success
    assert live.batches[-1]["operation"] == on_leave
    assert live.batches[-1]["records"] == [{"record_id": record_id("p1")}]
    assert (record_id("p1") in live.held) == (on_leave == "clear")
    assert metadata(result)["removed"] == 1


def test_a_missing_url_in_live_mode_skips_the_sync_with_a_credentials_warning(world, live, tmp_path, monkeypatch):
    monkeypatch.delenv("CDP_WEBHOOK_LEADS_HOOK_URL")
    result = run_sync(world, webhook_sync(tmp_path))

    assert result.success
    assert (metadata(result)["outcome"], metadata(result)["credentials"]) == (
        "skipped", "missing CDP_WEBHOOK_LEADS_HOOK_URL")
    credentials = checks(result)["credentials_are_configured"]
    assert (credentials.passed, credentials.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert credentials.metadata["effect"].value == "skipped: nothing sent"
    assert live.requests == []


def test_a_dry_run_without_credentials_plans_with_a_placeholder_url(world, tmp_path):
    result = run_sync(world, webhook_sync(tmp_path))

    assert result.success
    assert metadata(result)["credentials"] == "missing CDP_WEBHOOK_LEADS_HOOK_URL, CDP_WEBHOOK_LEADS_HOOK_SECRET"
    rows = query(world, "SELECT url, status, record_count, request_body FROM activation.egress_requests")
    assert [(url, status, n) for url, status, n, _ in rows] == [("{CDP_WEBHOOK_LEADS_HOOK_URL}", "dry_run", 2),
                                                                ("{CDP_WEBHOOK_LEADS_HOOK_URL}", "dry_run", 1)]
    assert [r["key"] for r in json.loads(rows[0][3])["records"]] == ["p3", "p4"]  # by record id
    assert query(world, "SELECT count(*) FROM activation.sync_ledger") in ([(0,)], [])


def test_a_dry_run_with_its_url_logs_the_host_only_and_sends_nothing(world, receiver, tmp_path, monkeypatch):
    for name, value in receiver.env("leads_hook").items():
        monkeypatch.setenv(name, value)
    result = run_sync(world, webhook_sync(tmp_path))

    assert (result.success, metadata(result)["credentials"]) == (True, "configured")
    assert query(world, "SELECT DISTINCT url, status FROM activation.egress_requests") == [
        (f"{receiver.url}[redacted]", "dry_run")]
    assert receiver.requests == []


def test_an_email_in_a_field_not_declared_clear_fails_the_safety_check_and_nothing_is_posted(world, live, tmp_path):
    sync = webhook_sync(tmp_path, options={"batch_size": 2, "clear": ["first_name"]})
    result = run_sync(world, sync)

    safety = checks(result)["outbound_payloads_are_safe"]
    assert not safety.passed
    assert safety.metadata["problems"].value == {"email holds something shaped like an email address": 2}
    assert metadata(result)["outcome"] == "unsafe"
    assert live.requests == []


def test_a_url_that_is_not_http_fails_the_live_sync_before_anything_is_sent(world, live, tmp_path, monkeypatch):
    monkeypatch.setenv("CDP_WEBHOOK_LEADS_HOOK_URL", "hooks.example.com/catch/1")
    result = run_sync(world, webhook_sync(tmp_path))

    assert not result.success
    assert "CDP_WEBHOOK_LEADS_HOOK_URL must be an http:// or https:// URL" in failure(result)
    assert live.requests == []


def test_a_sender_killed_after_the_receiver_applied_a_batch_resends_it_with_the_same_batch_id(world, live, tmp_path):
    sync = webhook_sync(tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "tests.destinations.webhook_world", world.url, str(sync.path)],
                               env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    live.kill(process.pid, on_request=1, after_accepting=True)
    assert process.wait(timeout=300) == -9
    # The whole page is marked in flight (journaled, committed) before its first batch leaves; the killed sender
    # never read an answer, so nothing was folded into the ledger yet.
    assert dict(query(world, "SELECT status, count(*) FROM activation.sync_ledger_journal GROUP BY status")) == {
        "in_flight": 3}
    assert query(world, "SELECT count(*) FROM activation.sync_ledger") == [(0,)]

    result = run_sync(world, sync)

    assert result.success
    assert (live.duplicates, live.deliveries) == (1, {record_id(p): 1 for p in ELIGIBLE})
    assert query(world, "SELECT status, count(*) FROM activation.sync_ledger GROUP BY status") == [("sent", 3)]


def test_the_journals_are_folded_every_fold_after_entries_and_once_every_page_is_sent(world, live, tmp_path,
                                                                                   monkeypatch):
    monkeypatch.setattr(run, "PAGE", 1)
    monkeypatch.setattr(run, "FOLD_AFTER", 4)
    folded, fold = [], run.fold
    monkeypatch.setattr(run, "fold", lambda sender: (folded.append(sender.journaled), fold(sender)))

    result = run_sync(world, webhook_sync(tmp_path))

    assert result.success
    # Each one-record page journals its in-flight mark and its outcome: the second page reaches 4 entries, the
    # third is folded once the pages are done.
    assert folded == [4, 2]
    assert query(world, "SELECT status, count(*) FROM activation.sync_ledger GROUP BY status") == [("sent", 3)]
    assert query(world, "SELECT count(*) FROM activation.record_state WHERE status = 'present'") == [(3,)]
    assert query(world, "SELECT count(*) FROM activation.sync_ledger_journal") == [(0,)]


def test_a_sync_the_destination_stopped_leaves_what_it_sent_folded_into_the_ledger(world, live, tmp_path,
                                                                                  monkeypatch):
    monkeypatch.setenv("CDP_WEBHOOK_LEADS_HOOK_SECRET", "not-the-secret")

    result = run_sync(world, webhook_sync(tmp_path))

    assert not result.success
    # The page of three was marked in flight; the first batch of two was refused, the third record never left.
    assert query(world, "SELECT status, count(*) FROM activation.sync_ledger GROUP BY status ORDER BY status") == [
        ("failed", 2), ("in_flight", 1)]
    assert query(world, "SELECT count(*) FROM activation.sync_ledger_journal") == [(0,)]


# ---- the sync file ---------------------------------------------------------------------------------------

def test_an_unknown_option_is_a_config_error_naming_the_file_and_the_option(tmp_path):
    with pytest.raises(ConfigError, match=r"leads_hook\.yaml: options has unknown settings retries"):
        webhook_sync(tmp_path, options={"batch_size": 10, "retries": 3})


@pytest.mark.parametrize("size", [0, 1001, "10", True])
def test_batch_size_is_a_whole_number_up_to_1000(tmp_path, size):
    with pytest.raises(ConfigError, match=r"leads_hook\.yaml: options\.batch_size must be a whole number from 1 "
                                          r"to 1000"):
        webhook_sync(tmp_path, options={"batch_size": size})


def test_clear_is_a_list_of_field_names(tmp_path):
    with pytest.raises(ConfigError, match=r"leads_hook\.yaml: options\.clear must list the fields"):
        webhook_sync(tmp_path, options={"clear": "email"})


def test_options_default_to_batches_of_100_and_nothing_in_clear(tmp_path):
    assert webhook_sync(tmp_path, options=None).options == {"batch_size": 100, "clear": ()}


def test_the_shipped_example_is_disabled_and_loads_once_enabled(tmp_path, monkeypatch):
    from cdp_assets.activation.records.config import SYNCS_DIR
    from cdp_assets.definitions import build_definitions

    example = (SYNCS_DIR / "webhook_example.yaml").read_text(encoding="utf-8")
    assert "\nenabled: false\n" in example
    (tmp_path / "zapier_leads.yaml").write_text(example.replace("\nenabled: false\n", "\n"), encoding="utf-8")
    monkeypatch.setenv("CDP_SYNCS_DIR", str(tmp_path))

    graph = build_definitions().resolve_asset_graph()

    assert graph.get(dg.AssetKey(["activation", "zapier_leads"])).kinds >= {"webhook"}
