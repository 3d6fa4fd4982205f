"""`cdp-assets demo`: sample data through the whole pipeline, in dry run, in a folder of its own.

The demo never touches real data: whatever CDP_WAREHOUSE_URL, CDP_LANDING_DIR or DAGSTER_HOME say, it writes
its sample files, its DuckDB warehouse and its Dagster run history under `data/demo/` (emptied first), reads
no real source (GA4 and HubSpot are left unconfigured: GA4 is read from the sample) and sends nothing.
`make ui-demo` opens the UI on that folder with the settings the demo wrote to `data/demo/demo.env`.
"""

import os
import shutil
import time
from datetime import timedelta
from pathlib import Path

from cdp_assets import settings
from cdp_assets.cli import backfill_ga4, open_instance, report_day
from cdp_assets.resources.ga4 import GA4Resource
from cdp_assets.resources.hubspot import HubSpotResource
from cdp_assets.resources.warehouse import WarehouseResource
from cdp_assets.runs import report, run_day
from cdp_assets.sample_data import write_crm_extracts, write_ga4_sample

DEMO_HOME = Path("data") / "demo"
# The demo's Dagster instance: run history under its own folder, one run at a time as DuckDB needs.
INSTANCE_YAML = """telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 1
  pools:
    default_limit: 1
    granularity: op
"""

STAGE_TABLES = [
    ("raw", ["raw.crm_contacts", "raw.crm_orders"]),
    ("quarantine", ["quarantine.crm_contacts", "quarantine.crm_orders", "quarantine.crm_contact_fields",
                    "quarantine.crm_order_fields"]),
    ("staging", ["staging.stg_crm_contacts", "staging.stg_crm_orders"]),
    ("ga4", ["raw.ga4_daily_traffic", "raw.ga4_transactions"]),
    ("core", ["core.record_profiles", "core.unified_profiles", "core.profile_identifiers", "core.consent",
              "core.conversions", "core.channel_traits"]),
    ("privacy", ["core.deletion_requests", "core.deletion_status", "core.suppressions", "core.suppressed_profiles"]),
    ("marts", ["marts.order_attribution", "marts.campaign_performance"]),
    ("audiences", ["audiences.memberships"]),
    ("activation", ["activation.egress_requests", "activation.dead_letters"]),
]


def summarize(warehouse: WarehouseResource) -> None:
    with warehouse.begin() as conn:
        print("\nrows per stage:")
        for stage, tables in STAGE_TABLES:
            counts = [f"{t.split('.')[1]}={warehouse.row_count(conn, t)}" for t in tables
                      if warehouse.table_exists(conn, t)]
            print(f"  {stage:<11} {', '.join(counts)}")
        if not warehouse.table_exists(conn, "activation.egress_requests"):
            print("\nthe pipeline stopped before activation: see the failed checks and steps above")
            return
        profiles = warehouse.row_count(conn, "core.unified_profiles")
        records = warehouse.row_count(conn, "core.record_profiles")
        print(f"\nprofiles: {profiles} people stitched from {records} CRM records")
        if warehouse.table_exists(conn, "marts.campaign_performance"):
            matched, orders = warehouse.run(conn, "SELECT count(*) FILTER (WHERE attributed), count(*) "
                                                  "FROM marts.order_attribution").one()
            print(f"attribution: {matched} of {orders} CRM orders matched a GA4 transaction; the rest are "
                  "'(unattributed)'")
            for source, medium, campaign, revenue, currency in warehouse.run(conn, (
                    "SELECT session_source, session_medium, session_campaign_name, sum(crm_revenue_reporting), "
                    "max(reporting_currency) FROM marts.campaign_performance WHERE crm_orders > 0 "
                    "GROUP BY 1, 2, 3 ORDER BY 4 DESC NULLS LAST, 1, 2, 3 LIMIT 3")):
                print(f"campaign {source} / {medium} / {campaign}: {revenue} {currency} CRM revenue")
        sizes = ("SELECT s.audience, s.members FROM audiences.snapshots AS s WHERE s.snapshot_ts = "
                 "(SELECT max(l.snapshot_ts) FROM audiences.snapshots AS l WHERE l.audience = s.audience) "
                 "ORDER BY s.audience")
        for audience, size in warehouse.run(conn, sizes):
            print(f"audience {audience}: {size} members")
        for destination, requests, records_ in warehouse.run(
                conn, "SELECT destination, count(*), sum(record_count) FROM activation.egress_requests "
                      "WHERE status = 'dry_run' GROUP BY destination ORDER BY destination"):
            print(f"destination {destination}: {requests} requests prepared ({records_} records), dry run")
        for destination, reason, n in warehouse.run(
                conn, "SELECT destination, reason, count(*) FROM activation.dead_letters "
                      "GROUP BY destination, reason ORDER BY destination, reason"):
            print(f"dead letters {destination}: {n} x {reason}")


def prepare_home(day_first: str) -> dict[str, str]:
    """An empty demo folder with its own Dagster instance; returns the settings every demo process uses."""
    home = DEMO_HOME.resolve()
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(INSTANCE_YAML, encoding="utf-8")
    environment = {"DAGSTER_HOME": str(home), "CDP_WAREHOUSE_URL": f"duckdb:///{home / 'warehouse.duckdb'}",
                   "CDP_LANDING_DIR": str(home / "landing"), "CDP_START_DATE": day_first,
                   "CDP_EGRESS_MODE": "dry_run", "GA4_PROPERTY_ID": "", "HUBSPOT_ACCESS_TOKEN": "",
                   "CDP_ALERT_LOG": str(home / "alerts" / "run_failures.jsonl"), "CDP_ALERT_WEBHOOK_URL": ""}
    (home / "demo.env").write_text("".join(f"{k}={v}\n" for k, v in environment.items()), encoding="utf-8")
    return environment


def run_demo(people: int, days: int) -> int:
    from cdp_assets.definitions import build_definitions

    day = settings.yesterday()
    first = day - timedelta(days=days - 1)
    started = time.perf_counter()
    environment = prepare_home(first.isoformat())
    os.environ.update(environment)  # this process only: partitions start on the demo's first day
    landing = Path(environment["CDP_LANDING_DIR"])
    counts = write_crm_extracts(landing, people, day, days)
    write_ga4_sample(landing, first, day)
    print(f"sample data: {counts['people']} people, {counts['contacts']} contact rows, {counts['orders']} order "
          f"rows over {days} days in {landing / 'crm'} (the demo's own folder, {DEMO_HOME}/)")
    warehouse = WarehouseResource(url=environment["CDP_WAREHOUSE_URL"])
    defs = build_definitions(warehouse, str(landing), ga4=GA4Resource(), hubspot=HubSpotResource())
    instance = open_instance(Path(environment["DAGSTER_HOME"]))
    # The days before D first, as a backfill from the UI would, so the marts see the whole month of GA4.
    if days > 1:
        for chunk in backfill_ga4(defs, first, day - timedelta(days=1), instance, log_level="WARNING"):
            if not chunk.ok:
                report(chunk)
                return 1
    code = report_day(run_day(defs, day, instance, log_level="WARNING"), day)
    summarize(warehouse)
    print(f"\ndone in {time.perf_counter() - started:.1f}s. Next: `make ui-demo` and open http://127.0.0.1:3000 "
          "to see the asset graph, these runs and every check; the dry-run request bodies are in "
          f"activation.egress_requests of {DEMO_HOME}/warehouse.duckdb.")
    return code
