"""Benchmark: a records sync of 1M profiles with 10 mapped traits to HubSpot, ours against HubSpot's own SDK,
to the same local fake.

    make bench     # or: .venv/bin/python -m benchmarks.records_sync [--profiles 1000000] [--pairs 1]

The fake (`tests/fakes/hubspot_crm.py`) runs in its own process and validates every input like HubSpot does.
- **Baseline**: hubspot-api-client (the official SDK): `crm.contacts.batch_api.upsert` of 100 inputs per
  request, one request after another, from rows already in memory (their read is not timed).
- **Ours**: what `activation/hubspot_contacts`-style syncs do live, end to end: targets and their fingerprints
  built in the warehouse, the diff against what HubSpot acknowledged, pages of changed records read with each
  record already built and encoded as JSON by the warehouse, the ledger marked in flight and sent around each
  request, every request logged to `activation.egress_requests`, each acknowledgement journaled and folded into
  `activation.record_state`. Then a day with 1 % of the traits changed.
Client-side cost is the measuring process's own CPU time (user + system, DuckDB's threads included) per
record; the fake's work is in its own process. Peak RSS is each measuring process's own. Both run with
`CDP_DUCKDB_MEMORY_LIMIT` at `--duckdb-memory-limit` (512MB; `default` leaves DuckDB's own 80 % of memory):
left alone, DuckDB keeps every block it touched cached, a gigabyte at a million profiles.
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

from benchmarks.fresh_process import OUT, measure, parser

TOKEN = "pat-test-token"
TRAITS = [("lifetime_value", "number"), ("order_count", "number"), ("average_order_value", "number"),
          ("recency_score", "number"), ("frequency_score", "number"), ("monetary_score", "number"),
          ("rfm_segment", "string"), ("lifetime_value_currency", "string"), ("first_order_at", "datetime"),
          ("last_order_at", "datetime")]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seed(warehouse, profiles: int) -> None:
    with warehouse.begin() as conn:
        for schema in ("core", "activation"):
            warehouse.run(conn, f"CREATE SCHEMA IF NOT EXISTS {schema}")
        warehouse.run(conn, f"""CREATE TABLE core.unified_profiles AS SELECT
            'p_' || CAST(i AS VARCHAR) AS profile_id, 'person' || CAST(i AS VARCHAR) || '@example.com' AS email,
            CAST(10 + i % 5000 AS DECIMAL(18, 2)) + 0.5 AS lifetime_value, 1 + i % 12 AS order_count,
            CAST(10 + i % 500 AS DECIMAL(18, 2)) AS average_order_value, 1 + i % 5 AS recency_score,
            1 + (i // 5) % 5 AS frequency_score, 1 + (i // 25) % 5 AS monetary_score,
            CAST(1 + i % 5 AS VARCHAR) || CAST(1 + (i // 5) % 5 AS VARCHAR) || '3' AS rfm_segment,
            'USD' AS lifetime_value_currency,
            TIMESTAMP '2025-01-01 00:00:00' + to_seconds(i % 9000000) AS first_order_at,
            TIMESTAMP '2026-06-01 00:00:00' + to_seconds(i % 9000000) AS last_order_at
            FROM range({profiles}) AS t(i)""")
        for table in ("core.suppressed_profiles", "core.deletion_pending_profiles"):
            warehouse.run(conn, f"CREATE TABLE {table} (profile_id VARCHAR)")


def sync_spec(folder: Path):
    from cdp_assets.activation.destinations.registry import discover
    from cdp_assets.activation.records.config import parse_sync

    settings = {"destination": "hubspot", "object": "contacts", "model": "core.unified_profiles",
                "key": {"column": "email", "field": "email"}, "consent_purpose": "none", "suppressed": "include",
                "fields": {c: {"field": f"cdp_{c}", "type": t} for c, t in TRAITS}}
    path = folder / "bench_contacts.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    columns = ("profile_id", "email", *(c for c, _ in TRAITS))
    return parse_sync(path, settings, discover(), {"core.unified_profiles": columns}, ())


def _materialize(warehouse, sync) -> dict:
    import dagster as dg

    from cdp_assets.activation.destinations.registry import discover
    from cdp_assets.activation.records.asset import records_sync_asset
    from cdp_assets.activation.transport import RetryPolicy

    asset = records_sync_asset(sync, discover()["hubspot"], lambda keys: [], RetryPolicy(), "duckdb")
    result = dg.materialize([asset], resources={"warehouse": warehouse}, raise_on_error=True)
    [event] = result.asset_materializations_for_node("activation__bench_contacts")
    return {k: v.value for k, v in event.metadata.items()}


def _diff_seconds(warehouse, sync) -> float:
    from cdp_assets.activation.records import run

    started = time.perf_counter()
    run.build_targets(warehouse, sync, False, run.Plan())
    return time.perf_counter() - started


def ours(db: Path, url: str, profiles: int) -> dict:
    from cdp_assets.resources.warehouse import WarehouseResource

    os.environ.update({"HUBSPOT_API_URL": url, "HUBSPOT_ACCESS_TOKEN": TOKEN, "CDP_EGRESS_MODE": "live",
                       "HUBSPOT_MAX_REQUESTS_PER_10S": "1000000000", "GX_ANALYTICS_ENABLED": "false"})
    warehouse = WarehouseResource(url=f"duckdb:///{db}")
    seed(warehouse, profiles)
    sync = sync_spec(Path(tempfile.mkdtemp()))
    first_diff = _diff_seconds(warehouse, sync)
    cpu, started = _cpu(), time.perf_counter()
    first = _materialize(warehouse, sync)
    first_cpu, first_seconds = _cpu() - cpu, time.perf_counter() - started
    with warehouse.begin() as conn:  # 1 % of the people: one trait each
        warehouse.run(conn, "UPDATE core.unified_profiles SET order_count = order_count + 1 "
                            "WHERE CAST(substr(profile_id, 3) AS BIGINT) % 100 = 7")
    changed_diff = _diff_seconds(warehouse, sync)
    cpu, started = _cpu(), time.perf_counter()
    day = _materialize(warehouse, sync)
    return {"profiles": profiles, "first_sent": first["sent"], "first_seconds": first_seconds,
            "first_cpu_seconds": first_cpu, "cpu_us_per_record": first_cpu / first["sent"] * 1e6,
            "first_diff_seconds": first_diff, "changed_diff_seconds": changed_diff,
            "changed_sent": day["sent"], "changed_expected": profiles // 100 + (1 if profiles % 100 > 7 else 0),
            "changed_seconds": time.perf_counter() - started, "changed_cpu_seconds": _cpu() - cpu,
            "requests": first["requests_sent"], "rss_mib": _rss_mib()}


def sdk(db: Path, url: str, profiles: int) -> dict:
    import hubspot
    from hubspot.crm.contacts import BatchInputSimplePublicObjectBatchInputUpsert, SimplePublicObjectBatchInputUpsert

    from cdp_assets.activation.destinations.base import formatted
    from cdp_assets.resources.warehouse import WarehouseResource

    warehouse = WarehouseResource(url=f"duckdb:///{db}")
    seed(warehouse, profiles)
    with warehouse.begin() as conn:
        rows = warehouse.run(conn, "SELECT * FROM core.unified_profiles ORDER BY profile_id").mappings().all()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    requests.post(f"{url}/crm/v3/properties/contacts/groups", json={"name": "cdp", "label": "CDP"}, headers=headers,
                  timeout=10)
    for column, kind in TRAITS:
        pair = {"number": ("number", "number"), "string": ("string", "text"), "datetime": ("datetime", "date")}[kind]
        requests.post(f"{url}/crm/v3/properties/contacts", headers=headers, timeout=10, json={
            "groupName": "cdp", "name": f"cdp_{column}", "label": column, "type": pair[0], "fieldType": pair[1]})
    batch_api = hubspot.Client.create(access_token=TOKEN, host=url).crm.contacts.batch_api
    cpu, started = _cpu(), time.perf_counter()
    for first in range(0, len(rows), 100):
        inputs = [SimplePublicObjectBatchInputUpsert(id=row["email"], id_property="email", properties={
            f"cdp_{c}": formatted(row[c], t) for c, t in TRAITS}) for row in rows[first:first + 100]]
        answer = batch_api.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs))
        assert len(answer.results) == len(inputs)
    spent = _cpu() - cpu
    return {"profiles": profiles, "first_sent": profiles, "first_seconds": time.perf_counter() - started,
            "first_cpu_seconds": spent, "cpu_us_per_record": spent / profiles * 1e6,
            "requests": (profiles + 99) // 100, "rss_mib": _rss_mib()}


def _fake() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "tests.fakes.hubspot_crm"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    return process, process.stdout.readline().strip()


def main() -> None:
    arguments = parser(__doc__, ["ours", "sdk"])
    arguments.add_argument("--profiles", type=int, default=1_000_000)
    arguments.add_argument("--url")
    arguments.add_argument("--duckdb-memory-limit", default="512MB")
    args = arguments.parse_args()
    if args.duckdb_memory_limit != "default":
        os.environ["CDP_DUCKDB_MEMORY_LIMIT"] = args.duckdb_memory_limit
    if args.one:
        print(json.dumps({"ours": ours, "sdk": sdk}[args.one](args.db, args.url, args.profiles)))
        return
    OUT.mkdir(exist_ok=True)
    results: dict[str, list[dict]] = {"sdk": [], "ours": []}
    for pair in range(args.pairs):
        for which in ("sdk", "ours"):
            process, url = _fake()
            try:
                results[which].append(measure("benchmarks.records_sync", which, pair, "--url", url,
                                              "--profiles", str(args.profiles)))
                stats = requests.get(f"{url}/_stats", timeout=10).json()
                results[which][-1]["fake_stats"] = stats
            finally:
                process.stdin.close()
                process.wait(timeout=60)
    summary = {
        "profiles": args.profiles, "duckdb_memory_limit": args.duckdb_memory_limit,
        "ours_cpu_us_per_record": [round(r["cpu_us_per_record"], 1) for r in results["ours"]],
        "sdk_cpu_us_per_record": [round(r["cpu_us_per_record"], 1) for r in results["sdk"]],
        "ours_over_sdk_client_cost": round(statistics.median(
            o["cpu_us_per_record"] / s["cpu_us_per_record"] for s, o in zip(results["sdk"], results["ours"],
                                                                           strict=True)), 3),
        "ours_first_sync_seconds": [round(r["first_seconds"], 1) for r in results["ours"]],
        "sdk_first_sync_seconds": [round(r["first_seconds"], 1) for r in results["sdk"]],
        "ours_diff_seconds_first_and_changed_day": [(round(r["first_diff_seconds"], 2),
                                                     round(r["changed_diff_seconds"], 2)) for r in results["ours"]],
        "changed_day_sent_vs_changed": [(r["changed_sent"], r["changed_expected"]) for r in results["ours"]],
        "ours_rss_mib": [round(r["rss_mib"]) for r in results["ours"]],
        "sdk_rss_mib": [round(r["rss_mib"]) for r in results["sdk"]],
        "raw": results,
    }
    print(json.dumps(summary, indent=1, default=str))


if __name__ == "__main__":
    main()
