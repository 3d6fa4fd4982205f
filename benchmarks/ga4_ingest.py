"""Benchmark: a week of a large GA4 report, read through the real client from the local fake, into DuckDB.

    make bench     # or: .venv/bin/python -m benchmarks.ga4_ingest [--rows-per-day 40000] [--pairs 3]

Baseline: the real `google-analytics-data` client reading every page of the range request (HTTP, JSON,
protobuf), nothing else. Ours: what `raw/ga4_daily_traffic` does with the same pages: gather rows by day,
build Arrow columns, replace the week in `raw.ga4_daily_traffic` and write `raw.ga4_fetches` (content hash,
tokens, flags) in one transaction. The ratio is what ingestion adds over the bare API read. The fake serves
pages of up to 250,000 rows, as the API caps them, from a thread of the measuring process, so its JSON
encoding is in both timings. Each measurement runs in a fresh process on a fresh DuckDB file; the ratio is
the median over the pairs; peak RSS is the process's.
"""

import json
import resource
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from benchmarks.fresh_process import OUT, measure, parser

FIRST = date(2026, 11, 1)
DAYS = 7


def traffic_rows(rows_per_day: int):
    devices, countries = ("desktop", "mobile", "tablet"), ("United States", "Germany", "France", "Japan")
    for offset in range(DAYS):
        stamp = (FIRST + timedelta(days=offset)).strftime("%Y%m%d")
        for n in range(rows_per_day):
            yield {"date": stamp, "sessionSource": f"source{n % 50}", "sessionMedium": "cpc",
                   "sessionCampaignName": f"campaign{n // 12}", "sessionDefaultChannelGroup": "Paid Search",
                   "deviceCategory": devices[n % 3], "country": countries[n % 4], "sessions": str(n % 97),
                   "totalUsers": str(n % 89), "engagedSessions": str(n % 53), "keyEvents": str(n % 7),
                   "purchaseRevenue": f"{(n % 1000) / 7:.2f}"}


def measure_one(which: str, rows_per_day: int, db: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from cdp_assets.ingest.ga4 import days_between, read_range, save_days
    from cdp_assets.ingest.ga4_reports import METRIC_TYPES, load_reports
    from cdp_assets.resources.ga4 import GA4Resource
    from cdp_assets.resources.warehouse import WarehouseResource
    from tests.fakes.ga4 import FakeGA4

    report = {r.name: r for r in load_reports()}["daily_traffic"]
    last = FIRST + timedelta(days=DAYS - 1)
    with FakeGA4(tokens_per_day=10_000_000) as fake:
        fake.add_rows(traffic_rows(rows_per_day), METRIC_TYPES)
        source = GA4Resource(property_id=fake.property_id, api_url=fake.url).source(None)
        started = time.perf_counter()
        if which == "baseline":
            rows = sum(len(page.response.rows) for page in source.pages(report, FIRST, last))
        else:
            warehouse = WarehouseResource(url=f"duckdb:///{db}")
            fetch, _ = read_range(source, report, FIRST, last)
            results = save_days(warehouse, report, fetch, days_between(FIRST, last), (FIRST, last), "bench",
                                "bench")
            rows = sum(r.rows for r in results)
        seconds = time.perf_counter() - started
        requests = len(fake.requests)
    print(json.dumps({"which": which, "rows": rows, "requests": requests, "seconds": seconds,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    arguments = parser(__doc__, ["ours", "baseline"])
    arguments.add_argument("--rows-per-day", type=int, default=40_000)
    args = arguments.parse_args()
    if args.one:
        measure_one(args.one, args.rows_per_day, args.db)
        return
    OUT.mkdir(exist_ok=True)
    ratios = []
    for pair in range(args.pairs):
        base, mine = (measure("benchmarks.ga4_ingest", which, pair, "--rows-per-day", str(args.rows_per_day))
                      for which in ("baseline", "ours"))
        ratios.append(mine["seconds"] / base["seconds"])
        print(f"pair {pair + 1}: baseline {base['seconds']:.2f}s ({base['rows']} rows in {base['requests']} "
              f"requests, {base['peak_rss_mib']:.0f} MiB) | ours {mine['seconds']:.2f}s = {ratios[-1]:.2f}x "
              f"({mine['rows']} rows, {mine['rows'] / mine['seconds']:,.0f} rows/s, {mine['peak_rss_mib']:.0f} MiB)")
    print(f"median ratio ours/baseline: {statistics.median(ratios):.2f} over {len(ratios)} pairs")


if __name__ == "__main__":
    main()
