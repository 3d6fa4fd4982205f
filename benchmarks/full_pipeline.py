"""Benchmark: the whole daily graph at full scale, stage by stage, on DuckDB and on PostgreSQL.

    make bench     # or: .venv/bin/python -m benchmarks.full_pipeline [--contacts 1000000] [--days 90]
                   #        [--postgres postgresql://postgres@127.0.0.1:5432/test]

Generated data (`cdp_assets.sample_data`, seed 42): about 1M contact rows and 2M order rows over `--days` days in
one CRM drop, the GA4 transactions of the web orders, and `--days` days of GA4 traffic rows. First the GA4
reports of the days before D are backfilled the way the UI's backfill runs them (not part of the daily
figure), then the daily job runs for D: CRM files, staging, identity, core, marts, audiences and every
destination in dry run, with every asset check. Wall time per step comes from Dagster's own step events; peak
RSS per step is sampled every 100 ms over the whole process tree (the multiprocess executor used on PostgreSQL
runs steps in child processes). The PostgreSQL server's own memory is not counted.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

from benchmarks.crm_ingest import CONTACT_ROWS_PER_PERSON, ORDER_WEIGHTS
from benchmarks.fresh_process import OUT

END_DAY = date(2026, 11, 21)
PAGE = os.sysconf("SC_PAGE_SIZE")


def ensure_landing(contacts: int, days: int) -> Path:
    """The generated landing folder for this scale, written once and reused."""
    from cdp_assets.sample_data import write_crm_extracts, write_ga4_sample

    landing = OUT / f"full_{contacts}_{days}"
    if not (landing / "ga4" / "daily_traffic.jsonl").exists():
        started = time.perf_counter()
        counts = write_crm_extracts(landing, round(contacts / CONTACT_ROWS_PER_PERSON), END_DAY, days,
                                    order_weights=ORDER_WEIGHTS)
        traffic = write_ga4_sample(landing, END_DAY - timedelta(days=days - 1), END_DAY)
        print(f"generated {counts['contacts']:,} contacts, {counts['orders']:,} orders, "
              f"{counts['ga4_transactions']:,} GA4 transactions and {traffic:,} GA4 traffic rows "
              f"in {time.perf_counter() - started:.0f}s", flush=True)
    return landing


def tree_rss_bytes(root: int) -> int:
    """Resident memory of `root` and every process below it, read from /proc."""
    parents, rss = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        rss[int(entry)] = int(fields[21]) * PAGE
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(child for child, parent in parents.items() if parent == pid)
    return total


class RssSampler(threading.Thread):
    """Samples the process tree's RSS every 100 ms; `peak(start, end)` is the highest between two moments."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, int]] = []
        self.running = True

    def run(self) -> None:
        while self.running:
            self.samples.append((time.time(), tree_rss_bytes(os.getpid())))
            time.sleep(0.1)

    def peak(self, start: float, end: float) -> float:
        inside = [rss for moment, rss in self.samples if start <= moment <= end + 0.1]
        return max(inside, default=0) / 2**20


def step_times(instance, run_id: str) -> list[tuple[str, float, float]]:
    """(step, start, end) per step of the run, from its event log."""
    import dagster as dg

    starts, spans = {}, []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = record.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            spans.append((event.step_key, starts.get(event.step_key, record.timestamp), record.timestamp))
    return sorted(spans, key=lambda span: span[1])


def run_once(url: str, landing: Path, days: int) -> dict:
    """Backfill GA4 for the days before D, then run the daily job for D; the figures of the daily run."""
    import dagster as dg

    from cdp_assets.cli import backfill_ga4
    from cdp_assets.definitions import build_definitions
    from cdp_assets.resources.warehouse import WarehouseResource
    from cdp_assets.runs import run_day

    sampler = RssSampler()
    sampler.start()
    with tempfile.TemporaryDirectory() as home:
        instance = dg.DagsterInstance.local_temp(home)
        defs = build_definitions(WarehouseResource(url=url), landing_dir=str(landing))
        started = time.time()
        chunks = backfill_ga4(defs, END_DAY - timedelta(days=days - 1), END_DAY - timedelta(days=1), instance,
                              log_level="WARNING")
        backfill_s = time.time() - started
        started = time.time()
        outcome = run_day(defs, END_DAY, instance, log_level="WARNING")
        ended = time.time()
        steps = [{"step": step, "seconds": round(end - start, 1), "peak_rss_mib": round(sampler.peak(start, end))}
                 for run in outcome.runs for step, start, end in step_times(instance, run.run_id)]
    sampler.running = False
    return {"warehouse": url.split(":", 1)[0], "ga4_backfill_s": round(backfill_s, 1),
            "ga4_backfill_ok": all(o.ok for o in chunks), "daily_s": round(ended - started, 1),
            "daily_peak_rss_mib": round(sampler.peak(started, ended)), "daily_ok": outcome.ok,
            "failed": outcome.failed_steps + outcome.failed_checks, "steps": steps}


def measure(url: str, landing: Path, days: int) -> dict:
    """One run in a fresh interpreter, so its memory is its own."""
    output = subprocess.run([sys.executable, "-m", "benchmarks.full_pipeline", "--one", url, "--landing",
                             str(landing), "--days", str(days)], check=True, capture_output=True, text=True,
                            env={**os.environ, "CDP_EGRESS_MODE": "dry_run"}).stdout
    return json.loads(output.strip().splitlines()[-1])


def reset_postgres(url: str) -> None:
    import sqlalchemy as sa

    from cdp_assets.resources.warehouse import STAGE_SCHEMAS, normalize_url

    engine = sa.create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        # cdp_meta too: its registry of state tables must go with the tables.
        for schema in (*STAGE_SCHEMAS, "maintenance"):
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    engine.dispose()


def print_run(result: dict) -> None:
    print(f"\n{result['warehouse']}: daily run {result['daily_s']}s, peak RSS {result['daily_peak_rss_mib']} MiB, "
          f"{'succeeded' if result['daily_ok'] else 'FAILED ' + ', '.join(result['failed'])}; "
          f"GA4 backfill of the days before {result['ga4_backfill_s']}s")
    for step in sorted(result["steps"], key=lambda s: -s["seconds"]):
        print(f"  {step['step']:<55} {step['seconds']:>7.1f}s {step['peak_rss_mib']:>7,} MiB")


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arguments.add_argument("--contacts", type=int, default=1_000_000)
    arguments.add_argument("--days", type=int, default=90)
    arguments.add_argument("--postgres", help="also run on this PostgreSQL URL (its cdp schemas are dropped)")
    arguments.add_argument("--skip-duckdb", action="store_true", help="run on PostgreSQL only")
    arguments.add_argument("--one")
    arguments.add_argument("--landing", type=Path)
    args = arguments.parse_args()
    if args.one:
        print(json.dumps(run_once(args.one, args.landing, args.days)))
        return
    landing = ensure_landing(args.contacts, args.days)
    results = []
    if not args.skip_duckdb:
        db = OUT / "full_pipeline.duckdb"
        db.unlink(missing_ok=True)
        results.append(measure(f"duckdb:///{db}", landing, args.days))
        db.unlink(missing_ok=True)
        print_run(results[-1])
    if args.postgres:
        reset_postgres(args.postgres)
        results.append(measure(args.postgres, landing, args.days))
        print_run(results[-1])
    (OUT / "full_pipeline.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
