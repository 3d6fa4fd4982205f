"""Benchmark: Meta Conversions API egress, ours against Meta's own SDK, to the same local fake.

    make bench     # or: .venv/bin/python -m benchmarks.egress [--events 100000] [--large 1000000] [--pairs 1]

The fake (`tests/fakes/ads.py`) runs in its own process and validates every body like Meta does.
- **Baseline**: facebook-business (the official SDK): one `Event` with `UserData` and `CustomData` per
  conversion, its own normalization and hashing, `EventRequest(...).execute()` per 1,000 events, one after
  another. It starts from the rows already in memory (their read from the warehouse is not timed).
- **Ours**: what `activation/meta_capi` does live, end to end: the day's conversions read from the warehouse
  (`core.conversions` joined to profiles and consent), events built and hashed into `activation.outbox`
  page by page, the ledger planned in SQL, then sent in batches of 1,000 with the ledger marked in flight
  and sent around each request and every request body logged to `activation.egress_requests`.
Peak RSS is each measuring process's own. `--large` repeats ours with more events to show RSS stays flat.
"""

import json
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from benchmarks.fresh_process import OUT, measure, parser

DAY = (datetime.now(UTC) - timedelta(days=1)).date()


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seed_warehouse(warehouse, events: int) -> None:
    """core tables holding `events` consented conversions of DAY, each with its own person."""
    start = f"TIMESTAMP '{DAY.isoformat()} 00:00:00'"
    with warehouse.begin() as conn:
        for schema in ("core",):
            warehouse.run(conn, f"CREATE SCHEMA IF NOT EXISTS {schema}")
        warehouse.run(conn, f"""CREATE TABLE core.conversions AS SELECT
            'O' || lpad(CAST(i AS VARCHAR), 9, '0') AS order_id, 'p_' || CAST(i AS VARCHAR) AS profile_id,
            'C' || CAST(i AS VARCHAR) AS contact_id, {start} + to_seconds(i % 86000) AS order_ts,
            CAST(10 + i % 500 AS DECIMAL(12, 2)) + 0.99 AS value, 'USD' AS currency, 'website' AS action_source,
            'person' || CAST(i AS VARCHAR) || '@example.com' AS email,
            '+1650' || lpad(CAST(2000000 + i % 7000000 AS VARCHAR), 7, '0') AS phone_e164,
            '203.0.113.' || CAST(i % 250 AS VARCHAR) AS client_ip,
            'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15' AS user_agent,
            'fb.1.1554763741205.IwAR' || CAST(i AS VARCHAR) AS fbc, 'fb.1.1558571054389.' || CAST(i AS VARCHAR) AS fbp,
            NULL AS gclid, NULL AS ttclid, 'https://shop.example.com/checkout/thanks' AS event_source_url,
            'SKU-' || CAST(i % 100 AS VARCHAR) AS product_ids
            FROM range({events}) AS t(i)""")
        warehouse.run(conn, """CREATE TABLE core.unified_profiles AS SELECT profile_id, email, phone_e164,
            'Ann' AS first_name, 'Lee' AS last_name, 'South San Francisco' AS city, 'CA' AS state,
            '94025' AS postal_code, 'US' AS country FROM core.conversions""")
        warehouse.run(conn, f"""CREATE TABLE core.consent AS SELECT profile_id, contact_id, p.purpose,
            TRUE AS granted, {start} AS ts FROM core.conversions
            CROSS JOIN (VALUES ('marketing'), ('ads_personalization')) AS p(purpose)""")
        for table in ("core.suppressed_profiles", "core.deletion_pending_profiles"):
            warehouse.run(conn, f"CREATE TABLE {table} (profile_id VARCHAR)")


def ours(db: Path, url: str, events: int) -> dict:
    import os

    from cdp_assets.activation.config import Destination
    from cdp_assets.activation.conversions import _send
    from cdp_assets.activation.destinations.meta.client import MetaCapi
    from cdp_assets.activation.outbox import build_outbox
    from cdp_assets.activation.transport import RetryPolicy
    from cdp_assets.partitions import daily_partitions
    from cdp_assets.resources.warehouse import WarehouseResource
    from tests.fakes.ads import FakeAds

    os.environ.update({k: v for k, v in FakeAds.env_for(url).items() if k.startswith("META_")})
    warehouse = WarehouseResource(url=f"duckdb:///{db}")
    seed_warehouse(warehouse, events)
    destination = Destination("meta_capi", "meta_capi", True, "marketing", 7, "Purchase")
    channel = MetaCapi(destination)
    started = time.perf_counter()
    plan = build_outbox(warehouse, destination, daily_partitions(), [DAY.isoformat()], datetime.now(UTC))
    built, rss_built = time.perf_counter(), _rss_mib()
    result = _send(warehouse, destination, channel, [DAY.isoformat()], "bench", RetryPolicy(),
                   plan.counts["outbox_rows"])
    seconds = time.perf_counter() - started
    assert not plan.problems and result["records_sent"] == events, (plan.problems, result)
    return {"seconds": seconds, "build_seconds": built - started, "events": events, "rss_mib": _rss_mib(),
            "rss_after_build_mib": rss_built,
            "requests": result["requests_sent"]}


def sdk(db: Path, url: str, events: int) -> dict:
    from facebook_business.adobjects.serverside.action_source import ActionSource
    from facebook_business.adobjects.serverside.content import Content
    from facebook_business.adobjects.serverside.custom_data import CustomData
    from facebook_business.adobjects.serverside.event import Event
    from facebook_business.adobjects.serverside.event_request import EventRequest
    from facebook_business.adobjects.serverside.user_data import UserData
    from facebook_business.api import FacebookAdsApi
    from facebook_business.session import FacebookSession

    from cdp_assets.resources.warehouse import WarehouseResource
    from tests.fakes.ads import META_TOKEN

    warehouse = WarehouseResource(url=f"duckdb:///{db}")
    seed_warehouse(warehouse, events)
    with warehouse.begin() as conn:
        rows = warehouse.run(conn, "SELECT c.*, p.first_name, p.last_name, p.city, p.state, p.postal_code, "
                                   "p.country FROM core.conversions AS c JOIN core.unified_profiles AS p "
                                   "USING (profile_id) ORDER BY order_id").mappings().all()
    FacebookSession.GRAPH = url
    FacebookAdsApi.init(access_token=META_TOKEN, api_version="v25.0")
    started = time.perf_counter()
    for first in range(0, len(rows), 1000):
        batch = []
        for row in rows[first:first + 1000]:
            user = UserData(emails=[row["email"]], phones=[row["phone_e164"]], first_names=[row["first_name"]],
                            last_names=[row["last_name"]], cities=[row["city"]], states=[row["state"]],
                            zip_codes=[row["postal_code"]], country_codes=[row["country"]],
                            external_ids=[row["contact_id"]], client_ip_address=row["client_ip"],
                            client_user_agent=row["user_agent"], fbc=row["fbc"], fbp=row["fbp"])
            custom = CustomData(currency="usd", value=float(row["value"]), order_id=row["order_id"],
                                contents=[Content(product_id=row["product_ids"], quantity=1)])
            batch.append(Event(event_name="Purchase", event_time=int(row["order_ts"].replace(tzinfo=UTC).timestamp()),
                               event_id=row["order_id"], action_source=ActionSource.WEBSITE,
                               event_source_url=row["event_source_url"], user_data=user, custom_data=custom))
        response = EventRequest(events=batch, pixel_id="1234567890").execute()
        assert response.events_received == len(batch)
    return {"seconds": time.perf_counter() - started, "events": events, "rss_mib": _rss_mib(),
            "requests": (events + 999) // 1000}


def _fake() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "tests.fakes.ads"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    return process, process.stdout.readline().strip()


def main() -> None:
    arguments = parser(__doc__, ["ours", "sdk"])
    arguments.add_argument("--events", type=int, default=100_000)
    arguments.add_argument("--large", type=int, default=1_000_000)
    arguments.add_argument("--url")
    args = arguments.parse_args()
    if args.one:
        run = {"ours": ours, "sdk": sdk}[args.one]
        print(json.dumps(run(args.db, args.url, args.events)))
        return
    OUT.mkdir(exist_ok=True)
    results: dict[str, list[dict]] = {"ours": [], "sdk": [], "ours_large": []}
    for pair in range(args.pairs):
        for which in ("sdk", "ours"):
            process, url = _fake()
            try:
                results[which].append(measure("benchmarks.egress", which, pair, "--url", url,
                                              "--events", str(args.events)))
                stats = requests.get(f"{url}/_stats", timeout=10).json()
                assert stats["accepted"].get("meta") == args.events and not stats["duplicates"].get("meta"), stats
                results[which][-1]["fake_busy_seconds"] = stats["busy_seconds"]
            finally:
                process.stdin.close()
                process.wait(timeout=30)
    if args.large:
        process, url = _fake()
        try:
            results["ours_large"].append(measure("benchmarks.egress", "ours", 0, "--url", url,
                                                 "--events", str(args.large)))
        finally:
            process.stdin.close()
            process.wait(timeout=60)
    ratio = statistics.median(s["seconds"] / o["seconds"] for s, o in zip(results["sdk"], results["ours"],
                                                                          strict=True))
    summary = {"events": args.events, "ours_events_per_s": [round(r["events"] / r["seconds"]) for r in results["ours"]],
               "sdk_events_per_s": [round(r["events"] / r["seconds"]) for r in results["sdk"]],
               "ours_over_sdk_events_per_s": round(ratio, 2),
               # The same ratio with the fake's own time (reading, checking, answering) taken out of both.
               "ours_over_sdk_client_side": round(statistics.median(
                   (s["seconds"] - s["fake_busy_seconds"]) / (o["seconds"] - o["fake_busy_seconds"])
                   for s, o in zip(results["sdk"], results["ours"], strict=True)), 2),
               "ours_rss_mib": [round(r["rss_mib"]) for r in results["ours"]],
               "sdk_rss_mib": [round(r["rss_mib"]) for r in results["sdk"]],
               "ours_large": [{"events": r["events"], "seconds": round(r["seconds"], 1),
                               "events_per_s": round(r["events"] / r["seconds"]), "rss_mib": round(r["rss_mib"])}
                              for r in results["ours_large"]],
               "raw": results}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
