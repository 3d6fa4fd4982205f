"""The sender against local fakes: effectively once under faults and kills, bisection, partial failures."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cdp_assets.activation import ledger
from cdp_assets.activation.config import Destination
from cdp_assets.activation.destinations.google_ads.client import GoogleAdsConversions
from cdp_assets.activation.destinations.meta.client import MetaCapi
from cdp_assets.activation.destinations.pinterest.client import PinterestConversions
from cdp_assets.activation.destinations.tiktok.client import TikTokEvents
from cdp_assets.activation.ledger import SENT, TO_SEND, Entry
from cdp_assets.activation.sender import DestinationStopped, Gathered, Item, Sender
from cdp_assets.activation.transport import RetryPolicy
from cdp_assets.resources.warehouse import WarehouseResource
from tests.fakes.ads import META_TOKEN, FakeAds

READ_TIMEOUT = 3.0  # each injected timeout costs this much; an answer takes milliseconds
HASH = "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"
# Retries without waiting. The read timeout stays far above any answer a loaded machine can delay: a
# timeout on an answer the fake accepted would be a legitimate resend, and these tests count every copy.
FAST = RetryPolicy(attempts=8, base_seconds=0.001, max_seconds=0.01, timeout=(10.0, 30.0))


def destination(platform: str, name: str | None = None) -> Destination:
    names = {"meta_capi": "Purchase", "tiktok_events": "CompletePayment", "pinterest_conversions": "checkout",
             "google_ads_conversions": "Purchase"}
    return Destination(name or platform, platform, True, "marketing", 7, names[platform])


def meta_event(n: int) -> dict:
    return {"event_name": "Purchase", "event_time": int(time.time()) - 3600, "event_id": f"order-{n}",
            "action_source": "system_generated", "user_data": {"em": [HASH]},
            "custom_data": {"currency": "usd", "value": 10.0, "order_id": f"order-{n}"}}


def items(payloads: list[dict], key: str = "event_id") -> list[Item]:
    return [Item(p[key], p, "2026-11-21") for p in payloads]


def statuses(warehouse: WarehouseResource, destination_name: str) -> dict[str, int]:
    with warehouse.begin() as conn:
        return dict(warehouse.run(conn, "SELECT status, count(*) FROM activation.sync_ledger WHERE destination = :d "
                                        "GROUP BY status", {"d": destination_name}).fetchall())


@pytest.fixture
def env(monkeypatch):
    def apply(fake: FakeAds) -> None:
        for name, value in fake.env().items():
            monkeypatch.setenv(name, value)
    return apply


@pytest.fixture
def duck(tmp_path) -> WarehouseResource:
    return WarehouseResource(url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}")


def test_100k_events_under_20_percent_faults_arrive_exactly_once(duck, env):
    # A request answered after the client gave up is one the platform accepted with the answer lost: the
    # sender rightly sends it again and Meta deduplicates it. An injected timeout is never answered, and the
    # read timeout is far above what a loaded machine adds to an answer, so every event arrives exactly once.
    policy = RetryPolicy(attempts=8, base_seconds=0.001, max_seconds=0.01, timeout=(10.0, READ_TIMEOUT))
    with FakeAds(fault_rate=0.2) as fake:
        env(fake)
        sender = Sender(duck, "meta_capi", MetaCapi(destination("meta_capi")), "run-1", policy)
        sender.deliver("track_events", items([meta_event(n) for n in range(100_000)]), 1_000, {})

        assert len(fake.accepted["meta"]) == 100_000
        assert fake.duplicates("meta") == 0
        assert statuses(duck, "meta_capi") == {SENT: 100_000}
        assert sender.tally.retries == sum(n for fault, n in fake.faults_served.items() if fault)
        assert set(fake.faults_served) == {None, "429", "500", "transient", "timeout", "drop"}


def test_a_poisoned_event_is_isolated_by_bisection_and_dead_lettered(duck, env):
    with FakeAds() as fake:
        env(fake)
        fake.poison.add("order-613")
        sender = Sender(duck, "meta_capi", MetaCapi(destination("meta_capi")), "run-1", FAST)
        sender.deliver("track_events", items([meta_event(n) for n in range(1_000)]), 1_000, {})

        assert len(fake.accepted["meta"]) == 999
        assert statuses(duck, "meta_capi") == {SENT: 999, "dead_letter": 1}
        with duck.begin() as conn:
            assert duck.run(conn, "SELECT record_key, reason FROM activation.dead_letters").fetchall() == [
                ("order-613", "Meta error 100/2804048: Invalid parameter")]
        assert sender.tally.bisections == 10


def test_retry_after_is_waited_for_before_the_next_attempt(duck, env):
    waits = []
    with FakeAds() as fake:
        env(fake)
        fake.fail_next("429")
        policy = RetryPolicy(attempts=3, base_seconds=0.001, max_seconds=0.01, sleep=waits.append)
        Sender(duck, "meta_capi", MetaCapi(destination("meta_capi")), "run-1", policy).deliver(
            "track_events", items([meta_event(1)]), 1_000, {})
    assert len(waits) == 1 and waits[0] >= 0.0
    assert statuses(duck, "meta_capi") == {SENT: 1}


def test_records_left_failed_by_transient_errors_are_sent_by_the_next_run_once(duck, env):
    with FakeAds() as fake:
        env(fake)
        fake.fail_next(*["500"] * 3)
        policy = RetryPolicy(attempts=3, base_seconds=0.001, max_seconds=0.01)
        events = items([meta_event(n) for n in range(5)])
        Sender(duck, "meta_capi", MetaCapi(destination("meta_capi")), "run-1", policy).deliver(
            "track_events", events, 1_000, {})
        assert statuses(duck, "meta_capi") == {"failed": 5}

        Sender(duck, "meta_capi", MetaCapi(destination("meta_capi")), "run-2", policy).deliver(
            "track_events", events, 1_000, {e.key: 3 for e in events})
        assert statuses(duck, "meta_capi") == {SENT: 5}
        assert fake.duplicates("meta") == 0


def test_an_expired_token_stops_the_destination_and_never_appears_in_the_log(duck, env):
    with FakeAds() as fake:
        env(fake)
        fake.fail_next("auth")
        sender = Sender(duck, "meta_capi", MetaCapi(destination("meta_capi")), "run-1", FAST)
        with pytest.raises(DestinationStopped, match="refused the credentials") as stopped:
            sender.deliver("track_events", items([meta_event(1), meta_event(2)]), 1, {})
    assert META_TOKEN not in str(stopped.value)
    with duck.begin() as conn:
        logged = duck.run(conn, "SELECT string_agg(url || request_body || response_body, '') "
                                "FROM activation.egress_requests").fetchall()[0][0]
    assert META_TOKEN not in logged
    assert statuses(duck, "meta_capi") == {"failed": 1}
    assert len(fake.requests) == 1


def test_google_partial_failure_dead_letters_only_the_failed_rows(duck, env):
    with FakeAds() as fake:
        env(fake)
        fake.poison.add("order-2")
        channel = GoogleAdsConversions(destination("google_ads_conversions"))
        conversions = [{"conversionAction": "customers/1234567890/conversionActions/777",
                        "conversionDateTime": "2026-11-21 10:00:00+00:00", "orderId": f"order-{n}",
                        "conversionValue": 1.0, "currencyCode": "USD", "userIdentifiers": [{"hashedEmail": HASH}]}
                       for n in range(4)]
        Sender(duck, "google_ads_conversions", channel, "run-1", FAST).deliver(
            "upload_click_conversions", items(conversions, "orderId"), 2_000, {})

        assert fake.accepted["google"] == {"order-0", "order-1", "order-3"}
        assert statuses(duck, "google_ads_conversions") == {SENT: 3, "dead_letter": 1}


def test_google_refreshes_its_token_once_on_unauthenticated(duck, env):
    with FakeAds() as fake:
        env(fake)
        channel = GoogleAdsConversions(destination("google_ads_conversions"))
        channel.access_token = "expired"
        conversion = {"conversionAction": "customers/1/conversionActions/7", "orderId": "order-1",
                      "conversionDateTime": "2026-11-21 10:00:00+00:00", "conversionValue": 1.0,
                      "currencyCode": "USD", "userIdentifiers": [{"hashedEmail": HASH}]}
        Sender(duck, "google_ads_conversions", channel, "run-1", FAST).deliver(
            "upload_click_conversions", items([conversion], "orderId"), 2_000, {})
        assert fake.accepted["google"] == {"order-1"}
        assert [r["path"] for r in fake.requests].count("/token") == 1


def test_tiktok_errors_in_a_200_body_are_read_from_its_code(duck, env):
    with FakeAds() as fake:
        env(fake)
        fake.fail_next("transient")
        fake.poison.add("order-1")
        events = [{"event": "CompletePayment", "event_time": int(time.time()), "event_id": f"order-{n}",
                   "user": {"email": [HASH]}, "properties": {"currency": "USD", "value": 1.0}} for n in range(2)]
        Sender(duck, "tiktok_events", TikTokEvents(destination("tiktok_events")), "run-1", FAST).deliver(
            "web", items(events), 1_000, {})
        assert fake.accepted["tiktok"] == {("CompletePayment", "order-0")}
        assert statuses(duck, "tiktok_events") == {SENT: 1, "dead_letter": 1}


def test_pinterest_per_event_status_is_mapped_back_to_rows(duck, env):
    with FakeAds() as fake:
        env(fake)
        fake.poison.add("order-0")
        events = [{"event_name": "checkout", "action_source": "web", "event_time": int(time.time()),
                   "event_id": f"order-{n}", "user_data": {"em": [HASH]},
                   "custom_data": {"currency": "USD", "value": "1.00"}} for n in range(3)]
        sender = Sender(duck, "pinterest_conversions", PinterestConversions(destination("pinterest_conversions")),
                        "run-1", FAST)
        sender.deliver("send_events", items(events), 1_000, {})
        assert fake.accepted["pinterest"] == {("checkout", "order-1"), ("checkout", "order-2")}
        assert statuses(duck, "pinterest_conversions") == {SENT: 2, "dead_letter": 1}
        assert sender.tally.reported == {"num_events_received": 3, "num_events_processed": 2}


KILLED_SENDER = textwrap.dedent("""
    import sys
    from tests.integration.test_sender import FAST, destination, plan_and_send
    from cdp_assets.resources.warehouse import WarehouseResource
    plan_and_send(WarehouseResource(url=sys.argv[1]), "killed-run", FAST)
""")


def plan_and_send(warehouse: WarehouseResource, run_id: str, policy: RetryPolicy) -> None:
    """What a conversions asset does: enter all 5,000 events in the ledger, then send those not yet sent."""
    events = [meta_event(n) for n in range(5_000)]
    with warehouse.begin() as conn:
        ledger.ensure_tables(warehouse, conn)
        entries = ledger.plan(warehouse, conn, "meta_capi", run_id,
                              [Entry(e["event_id"], "track_events", "2026-11-21", "pending", 0) for e in events])
    due = [e for e in events if entries[e["event_id"]].status in TO_SEND]
    Sender(warehouse, "meta_capi", MetaCapi(destination("meta_capi")), run_id, policy).deliver(
        "track_events", items(due), 1_000, {e["event_id"]: entries[e["event_id"]].attempts for e in due})


def _run_until_killed(fake: FakeAds, url: str, on_request: int, after_accepting: bool, env: dict) -> int:
    process = subprocess.Popen([sys.executable, "-c", KILLED_SENDER, url], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    fake.kill(process.pid, on_request, after_accepting)
    return process.wait(timeout=120)


@pytest.mark.parametrize(("after_accepting", "duplicated"), [(False, 0), (True, 1000)],
                         ids=["killed-before-the-platform-accepted", "killed-after-accepting-before-the-ledger-commit"])
def test_a_sender_killed_mid_sync_resumes_and_loses_nothing(duck, after_accepting, duplicated):
    with FakeAds() as fake:
        environment = {**os.environ, **fake.env(), "PYTHONPATH": str(Path(__file__).parents[2])}
        status = _run_until_killed(fake, duck.url, 3, after_accepting, environment)
        assert status == -9
        with duck.begin() as conn:
            in_flight = duck.scalar(conn, "SELECT count(*) FROM activation.sync_ledger WHERE status = 'in_flight'")
        assert in_flight == 1000  # the batch whose fate the ledger could not know
        with pytest.MonkeyPatch.context() as patch:
            for name, value in fake.env().items():
                patch.setenv(name, value)
            plan_and_send(duck, "resumed-run", FAST)

        assert len(fake.accepted["meta"]) == 5000
        # Inside the window the resent batch reached Meta twice; Meta keeps one per (event_name, event_id).
        assert fake.duplicates("meta") == duplicated
        assert statuses(duck, "meta_capi") == {SENT: 5000}


class _Acknowledged(Gathered):
    def __init__(self) -> None:
        self.gathered: list[str] = []
        self.writes: list[list[str]] = []

    def gather(self, operation, items, reply) -> None:
        self.gathered += [i.key for i in items]

    def write(self, conn) -> None:
        self.writes.append(self.gathered)
        self.gathered = []


def test_a_buffered_sender_commits_a_deliver_calls_batches_in_one_transaction(duck, env, monkeypatch):
    with FakeAds() as fake:
        env(fake)
        fake.poison.add("order-7")
        sender = Sender(duck, "meta_capi", MetaCapi(destination("meta_capi")), "run-1", FAST, buffered=True)
        transactions = []
        opened = sender.transaction
        monkeypatch.setattr(sender, "transaction", lambda: transactions.append(1) or opened())
        acknowledged = _Acknowledged()
        sender.deliver("track_events", items([meta_event(n) for n in range(250)]), 100, {}, acknowledged,
                       marked=True)

        assert len(transactions) == 1
        assert acknowledged.writes == [[f"order-{n}" for n in range(250) if n != 7]]
        with duck.begin() as conn:
            ledger.fold(duck, conn, "meta_capi")
        assert statuses(duck, "meta_capi") == {"dead_letter": 1, SENT: 249}
        with duck.begin() as conn:
            assert duck.scalar(conn, "SELECT count(*) FROM activation.egress_requests") == sender.tally.requests == 17
            assert duck.run(conn, "SELECT record_key FROM activation.dead_letters").fetchall() == [("order-7",)]
