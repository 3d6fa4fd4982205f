"""`cdp-assets demo`: sample data through the whole pipeline into the embedded warehouse, in dry run."""

import os
import time
from datetime import timedelta

from cdp_assets import settings
from cdp_assets.cli import backfill_ga4, open_instance, report, run_day
from cdp_assets.resources.warehouse import WarehouseResource
from cdp_assets.sample_data import write_crm_extracts, write_ga4_sample

STAGE_TABLES = [
    ("raw", ["raw.crm_contacts", "raw.crm_orders"]),
    ("quarantine", ["quarantine.crm_contacts", "quarantine.crm_orders", "quarantine.crm_contact_fields",
                    "quarantine.crm_order_fields"]),
    ("staging", ["staging.stg_crm_contacts", "staging.stg_crm_orders"]),
    ("ga4", ["raw.ga4_daily_traffic", "raw.ga4_transactions"]),
    ("core", ["core.record_profiles", "core.unified_profiles", "core.profile_identifiers", "core.consent",
              "core.conversions"]),
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


def run_demo(people: int, days: int) -> int:
    os.environ["CDP_EGRESS_MODE"] = "dry_run"  # the demo never sends anything
    from cdp_assets.definitions import build_definitions

    day = settings.yesterday()
    landing = settings.landing_dir()
    started = time.perf_counter()
    counts = write_crm_extracts(landing, people, day, days)
    write_ga4_sample(landing, day - timedelta(days=days - 1), day)
    print(f"sample data: {counts['people']} people, {counts['contacts']} contact rows, {counts['orders']} order "
          f"rows over {days} days in {landing / 'crm'}")
    defs, instance = build_definitions(), open_instance()
    # The days before D first, as a backfill from the UI would, so the marts see the whole month of GA4.
    for label, chunk in backfill_ga4(defs, day - timedelta(days=days - 1), day - timedelta(days=1), instance,
                                     log_level="WARNING"):
        if not chunk.ok:
            report(chunk, label)
            return 1
    outcome = run_day(defs, day, instance, log_level="WARNING")
    report(outcome, day)
    summarize(WarehouseResource(url=settings.warehouse_url()))
    print(f"\ndone in {time.perf_counter() - started:.1f}s. Next: `make ui` and open http://127.0.0.1:3000 "
          "to see the asset graph, this run and every check; the dry-run request bodies are in "
          "activation.egress_requests.")
    return 0 if outcome.ok else 1
