"""Egress end to end: the daily graph sends to local fakes of every platform, effectively once."""

import dataclasses
import shutil

import dagster as dg
import pytest

from cdp_assets import definitions, settings
from cdp_assets.activation.platforms.meta import MetaAudience
from cdp_assets.activation.transport import RetryPolicy
from cdp_assets.cli import replay_dead_letters
from cdp_assets.definitions import build_definitions
from cdp_assets.resources.warehouse import WarehouseResource
from cdp_assets.runs import run_day
from tests.fakes.ads import FakeAds

# Retries without waiting; a read timeout far above what a loaded machine adds to an answer, because an
# answer that came too late is a legitimate resend and these tests count every copy that arrived.
FAST = RetryPolicy(attempts=4, base_seconds=0.001, max_seconds=0.01, timeout=(10.0, 30.0))
EVENT_PLATFORMS = {"meta": "meta_capi", "google": "google_ads_conversions", "tiktok": "tiktok_events",
                   "pinterest": "pinterest_conversions"}
AUDIENCE_EGRESS = ["meta_custom_audiences", "google_customer_match"]
ALL_EGRESS = (*EVENT_PLATFORMS.values(), *AUDIENCE_EGRESS)


@pytest.fixture
def audience_ids(monkeypatch):
    """Every audience mapped to an id per destination (the shipped YAML leaves them empty)."""
    real = definitions.load_audience_settings

    def with_ids(path):
        settings = real(path)
        return dataclasses.replace(settings, destinations={d: f"{path.stem}-{d}" for d in settings.destinations})

    monkeypatch.setattr(definitions, "load_audience_settings", with_ids)


@pytest.fixture
def fake(monkeypatch, audience_ids):
    with FakeAds() as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("CDP_EGRESS_MODE", "live")
        yield server


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, sample_landing):
    """A DuckDB warehouse after one dry-run day (kept pristine beside it), and the instance holding its gate results.

    Each test works on a copy put back at the warehouse's own path: one instance serves one warehouse."""
    path = tmp_path_factory.mktemp("prepared") / "warehouse.duckdb"
    instance = dg.DagsterInstance.ephemeral()
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("CDP_EGRESS_MODE", raising=False)
        outcome = run_day(build_definitions(WarehouseResource(url=f"duckdb:///{path}"), str(sample_landing)),
                          settings.yesterday(), instance, "WARNING")
    assert outcome.ok
    shutil.copy(path, path.with_name("pristine.duckdb"))
    return path, instance


@pytest.fixture
def copy(prepared) -> tuple[WarehouseResource, dg.DagsterInstance]:
    path, instance = prepared
    shutil.copy(path.with_name("pristine.duckdb"), path)
    return WarehouseResource(url=f"duckdb:///{path}"), instance


def egress(warehouse, sample_landing, instance, day, names=ALL_EGRESS):
    defs = build_definitions(warehouse, str(sample_landing), retry_policy=FAST)
    job = defs.resolve_implicit_global_asset_job_def()
    keys = [dg.AssetKey(["activation", n]) for n in names]
    partitioned = any(defs.resolve_assets_def(k).partitions_def for k in keys)
    return job.execute_in_process(asset_selection=keys, instance=instance, raise_on_error=False,
                                  partition_key=day.isoformat() if partitioned else None)


def ledger(warehouse) -> dict[tuple[str, str], int]:
    with warehouse.begin() as conn:
        rows = warehouse.run(conn, "SELECT destination, status, count(*) FROM activation.sync_ledger "
                                   "GROUP BY destination, status").fetchall()
    return {(d, s): n for d, s, n in rows}


def record_requests(fake) -> int:
    return sum(1 for r in fake.requests if fake._carries_records(r["path"]))


def test_a_live_day_sends_each_consented_conversion_once_to_every_platform(warehouse, sample_landing, run_day_key,
                                                                          fake):
    outcome = run_day(build_definitions(warehouse, str(sample_landing), retry_policy=FAST), run_day_key,
                      dg.DagsterInstance.ephemeral(), "WARNING")

    assert outcome.ok, (outcome.failed_steps, outcome.failed_checks)
    assert {p: len(fake.accepted[p]) for p in EVENT_PLATFORMS} == {"meta": 4, "google": 4, "tiktok": 4,
                                                                  "pinterest": 4}
    assert sum(fake.deliveries.values()) == 16
    assert {k: v for k, v in ledger(warehouse).items() if k[0] in EVENT_PLATFORMS.values()} == {
        (d, "sent"): 4 for d in EVENT_PLATFORMS.values()}
    assert len(fake.audiences["purchasers_30d-meta_custom_audiences"]) == 104
    assert len(fake.audiences["high_value_customers-meta_custom_audiences"]) == 13


def test_running_the_same_day_again_sends_nothing_twice(copy, sample_landing, run_day_key, fake):
    warehouse, instance = copy
    assert egress(warehouse, sample_landing, instance, run_day_key).success
    sent, deliveries = record_requests(fake), sum(fake.deliveries.values())

    assert egress(warehouse, sample_landing, instance, run_day_key).success

    assert record_requests(fake) == sent
    assert sum(fake.deliveries.values()) == deliveries
    assert fake.duplicates("meta") == fake.duplicates("pinterest") == 0


def test_a_dry_run_acknowledges_nothing_so_live_sends_every_pending_record(copy, sample_landing, run_day_key, fake):
    warehouse, instance = copy
    with warehouse.begin() as conn:
        assert not warehouse.table_exists(conn, "activation.sync_ledger") or ledger(warehouse) == {}

    assert egress(warehouse, sample_landing, instance, run_day_key).success

    assert len(fake.accepted["meta"]) == 4
    with warehouse.begin() as conn:
        statuses = warehouse.run(conn, "SELECT DISTINCT status FROM activation.egress_requests "
                                       "WHERE destination = 'meta_capi'").scalars().all()
    assert sorted(statuses) == ["dry_run", "sent"]


def _latest_members(warehouse, audience):
    with warehouse.begin() as conn:
        return warehouse.run(conn, "SELECT profile_id FROM audiences.memberships WHERE audience = :a AND snapshot_ts = "
                                   "(SELECT max(snapshot_ts) FROM audiences.snapshots WHERE audience = :a) "
                                   "ORDER BY profile_id", {"a": audience}).scalars().all()


def test_a_member_who_left_is_removed_before_a_new_member_is_added(copy, sample_landing, run_day_key, fake):
    warehouse, instance = copy
    assert egress(warehouse, sample_landing, instance, run_day_key, ["meta_custom_audiences"]).success
    members = _latest_members(warehouse, "purchasers_30d")
    with warehouse.begin() as conn:
        newcomer = warehouse.run(conn, "SELECT profile_id FROM core.unified_profiles WHERE consent_marketing AND "
                                       "email IS NOT NULL AND profile_id NOT IN (SELECT profile_id FROM "
                                       "audiences.memberships) ORDER BY profile_id LIMIT 1").scalar_one()
        warehouse.run(conn, "UPDATE audiences.memberships SET profile_id = :new WHERE audience = 'purchasers_30d' "
                            "AND profile_id = :old", {"new": newcomer, "old": members[0]})
    fake.requests.clear()

    assert egress(warehouse, sample_landing, instance, run_day_key, ["meta_custom_audiences"]).success

    sent = [(r["method"], len(r["body"]["payload"]["data"])) for r in fake.requests]
    assert sent == [("DELETE", 1), ("POST", 1)]
    assert len(fake.audiences["purchasers_30d-meta_custom_audiences"]) == 104


def test_a_profile_merge_that_keeps_the_identifiers_sends_nothing(copy, sample_landing, run_day_key, fake):
    warehouse, instance = copy
    assert egress(warehouse, sample_landing, instance, run_day_key, AUDIENCE_EGRESS).success
    member = _latest_members(warehouse, "purchasers_30d")[0]
    with warehouse.begin() as conn:
        for table in ("audiences.memberships", "core.unified_profiles", "core.consent"):
            warehouse.run(conn, f"UPDATE {table} SET profile_id = 'p_merged000000000000000' WHERE profile_id = :p",
                          {"p": member})
    fake.requests.clear()

    assert egress(warehouse, sample_landing, instance, run_day_key, AUDIENCE_EGRESS).success

    assert record_requests(fake) == 0


def test_a_replace_audience_swaps_the_whole_membership_in_one_session(copy, sample_landing, run_day_key, fake):
    warehouse, instance = copy
    assert egress(warehouse, sample_landing, instance, run_day_key, ["meta_custom_audiences"]).success

    replaced = [r for r in fake.requests if r["path"].endswith("/usersreplace")]
    assert [(r["body"]["session"]["batch_seq"], r["body"]["session"]["last_batch_flag"]) for r in replaced] == \
        [(1, True)]
    with warehouse.begin() as conn:
        assert warehouse.run(conn, "SELECT operation, status FROM activation.upload_sessions WHERE "
                                   "audience = 'high_value_customers'").all() == [("replace", "closed")]


def test_an_interrupted_upload_resumes_its_session_where_it_stopped(copy, sample_landing, run_day_key, fake,
                                                                    monkeypatch):
    warehouse, instance = copy
    monkeypatch.setattr(MetaAudience, "batch_limit", 40)
    # high_value_customers' one batch and purchasers_30d's first go through; its second meets four 429s (the
    # whole retry budget), so the upload stops there and the session stays open.
    fake.fail_next(None, None, "429", "429", "429", "429")
    assert egress(warehouse, sample_landing, instance, run_day_key, ["meta_custom_audiences"]).success
    with warehouse.begin() as conn:
        session, next_seq = warehouse.run(conn, "SELECT session_id, next_batch_seq FROM activation.upload_sessions "
                                                "WHERE audience = 'purchasers_30d' AND status = 'open'").one()
    fake.requests.clear()

    assert egress(warehouse, sample_landing, instance, run_day_key, ["meta_custom_audiences"]).success

    resumed = [r["body"]["session"] for r in fake.requests if "purchasers_30d" in r["path"]]
    assert [(s["session_id"], s["batch_seq"]) for s in resumed] == [(int(session), next_seq), (int(session),
                                                                                                 next_seq + 1)]
    assert resumed[-1]["last_batch_flag"] is True
    assert len(fake.audiences["purchasers_30d-meta_custom_audiences"]) == 104
    assert fake.audience_ops.most_common(1)[0][1] == 1


def test_a_customer_match_job_is_run_and_its_outcome_read_by_the_next_run(copy, sample_landing, run_day_key, fake):
    warehouse, instance = copy
    assert egress(warehouse, sample_landing, instance, run_day_key, ["google_customer_match"]).success
    with warehouse.begin() as conn:
        assert warehouse.run(conn, "SELECT status FROM activation.upload_sessions WHERE operation = 'job'"
                                   ).scalars().all() == ["running", "running"]

    again = egress(warehouse, sample_landing, instance, run_day_key, ["google_customer_match"])

    metadata = again.asset_materializations_for_node("activation__google_customer_match")[0].metadata
    assert metadata["job_status_success"].value == 2
    assert len(fake.audiences["purchasers_30d-google_customer_match"]) == 104


def test_live_without_credentials_skips_the_destination_with_a_warning(copy, sample_landing, run_day_key, fake,
                                                                      monkeypatch):
    warehouse, instance = copy
    monkeypatch.delenv("TIKTOK_ACCESS_TOKEN")

    result = egress(warehouse, sample_landing, instance, run_day_key, ["tiktok_events"])

    assert result.success
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "credentials_are_configured"]
    assert (check.passed, check.severity, check.metadata["effect"].value) == (
        False, dg.AssetCheckSeverity.WARN, "skipped: nothing sent")
    assert not fake.accepted["tiktok"]


def test_an_expired_token_fails_the_step_with_a_clear_message(copy, sample_landing, run_day_key, fake):
    warehouse, instance = copy
    fake.fail_next("auth")

    result = egress(warehouse, sample_landing, instance, run_day_key, ["meta_capi"])

    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "meta_capi: the platform refused the credentials (Meta error 190/463" in message
    assert "meta-secret-token" not in message


def test_a_dead_letter_is_replayed_after_the_fix(copy, sample_landing, run_day_key, fake):
    warehouse, instance = copy
    with warehouse.begin() as conn:
        order = warehouse.run(conn, "SELECT min(order_id) FROM core.conversions").scalar_one()
    fake.poison.add(order)
    assert egress(warehouse, sample_landing, instance, run_day_key, ["meta_capi"]).success
    assert ledger(warehouse)[("meta_capi", "dead_letter")] == 1
    fake.poison.clear()

    replayed, outcome = replay_dead_letters(build_definitions(warehouse, str(sample_landing), retry_policy=FAST),
                                            "meta_capi", instance, "WARNING")

    assert replayed == {run_day_key.isoformat(): 1}
    assert outcome.ok
    assert ledger(warehouse) == {("meta_capi", "sent"): 4}
    assert ("Purchase", order) in fake.accepted["meta"]


def test_a_deleted_person_is_removed_from_every_audience_destination(copy, sample_landing, run_day_key, fake):
    warehouse, instance = copy
    assert egress(warehouse, sample_landing, instance, run_day_key, AUDIENCE_EGRESS).success
    member = _latest_members(warehouse, "purchasers_30d")[0]
    with warehouse.begin() as conn:
        email_hash = warehouse.run(conn, "SELECT email_sha256 FROM activation.audience_acks WHERE destination = "
                                         "'meta_custom_audiences' AND match_key LIKE 'em:%' ORDER BY match_key "
                                         "LIMIT 1").scalar_one()
        warehouse.run(conn, "INSERT INTO core.deletion_requests VALUES ('test:1', 'email', :h, 'active', NULL, "
                            "'deletions_test.csv', 2, current_timestamp)", {"h": email_hash})
        # The purge empties the person out of core; the snapshot no longer holds them.
        warehouse.run(conn, "DELETE FROM audiences.memberships WHERE profile_id IN (SELECT t.profile_id FROM "
                            "activation.audience_targets AS t WHERE t.email_sha256 = :h)", {"h": email_hash})
    assert member  # the audience had members to remove from

    defs = build_definitions(warehouse, str(sample_landing), retry_policy=FAST)
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        asset_selection=[*(dg.AssetKey(["activation", n]) for n in AUDIENCE_EGRESS),
                         dg.AssetKey(["core", "deletion_status"])], instance=instance, raise_on_error=False)

    assert result.success
    assert not any(email_hash in members for members in fake.audiences.values())
    with warehouse.begin() as conn:
        assert warehouse.run(conn, "SELECT stage, rows_remaining, status FROM core.deletion_status WHERE "
                                   "request_id = 'test:1' AND stage LIKE 'destination:%' ORDER BY stage").all() == [
            ("destination:braze_users", 0, "deleted"), ("destination:google_customer_match", 0, "removed"),
            ("destination:hubspot_contacts", 0, "deleted"), ("destination:meta_custom_audiences", 0, "removed")]


def test_a_day_larger_than_a_page_is_built_and_sent_page_by_page(copy, sample_landing, run_day_key, fake,
                                                                 monkeypatch):
    from cdp_assets.activation import conversions, outbox
    from cdp_assets.activation.platforms.meta import MetaCapi

    warehouse, instance = copy
    monkeypatch.setattr(conversions, "PAGE", 3)
    monkeypatch.setattr(outbox, "PAGE", 3)
    monkeypatch.setattr(MetaCapi, "batch_limit", 2)

    assert egress(warehouse, sample_landing, instance, run_day_key, ["meta_capi"]).success

    assert len(fake.accepted["meta"]) == 4
    assert [len(r["body"]["data"]) for r in fake.requests] == [2, 1, 1]
    assert fake.duplicates("meta") == 0
