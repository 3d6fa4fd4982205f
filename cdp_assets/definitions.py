"""The one Definitions object: every asset, check, job, schedule and resource of cdp_assets."""

from __future__ import annotations

import os

import dagster as dg

from cdp_assets import settings
from cdp_assets.activation.audience_sync import audience_sync_asset
from cdp_assets.activation.config import load_audience_syncs, load_destinations
from cdp_assets.activation.conversions import conversions_asset
from cdp_assets.activation.transport import RetryPolicy
from cdp_assets.alerts import run_failure_alerts
from cdp_assets.audiences.assets import audience_asset
from cdp_assets.audiences.config import load_audience_settings
from cdp_assets.checks.gates import gate_check
from cdp_assets.checks.suites import STAGE_GATES
from cdp_assets.checks.suites.audiences import audience_gate
from cdp_assets.identity.assets import identity_asset
from cdp_assets.ingest.crm_entities import CONTACTS, ORDERS
from cdp_assets.ingest.crm_files import crm_file_asset
from cdp_assets.ingest.crm_sensor import CRM_INGEST_JOB, crm_files_sensor
from cdp_assets.ingest.exchange_rates import exchange_rates_asset
from cdp_assets.ingest.ga4 import ga4_report_asset
from cdp_assets.ingest.ga4_reports import load_reports
from cdp_assets.ingest.hubspot import hubspot_extracts
from cdp_assets.ingest.landing import LandingZone
from cdp_assets.ingest.mappings import load_mappings
from cdp_assets.partitions import daily_partitions
from cdp_assets.privacy.deletions import deletion_status_asset
from cdp_assets.privacy.requests import DELETIONS, SUPPRESSIONS, privacy_list_asset
from cdp_assets.resources.ga4 import GA4Resource
from cdp_assets.resources.hubspot import DEFAULT_API_URL, HubSpotResource
from cdp_assets.resources.warehouse import WarehouseResource, dialect_of
from cdp_assets.retention import RETENTION_KEY, retention_asset
from cdp_assets.schedules import daily_schedule, retention_schedule
from cdp_assets.sql_models import SQL_ROOT, load_models, sql_asset

DAILY_JOB = "daily_job"
RETENTION_JOB = "retention_job"


def _warehouse_url_config() -> str | dg.EnvVar:
    # Through EnvVar the UI shows the variable's name, not a URL that may hold a password.
    return dg.EnvVar("CDP_WAREHOUSE_URL") if os.environ.get("CDP_WAREHOUSE_URL") else settings.DEFAULT_WAREHOUSE_URL


def _hubspot() -> HubSpotResource:
    # EnvVar only for variables that are set: the UI then shows their names, never a token.
    return HubSpotResource(
        access_token=dg.EnvVar("HUBSPOT_ACCESS_TOKEN") if os.environ.get("HUBSPOT_ACCESS_TOKEN") else None,
        api_url=dg.EnvVar("HUBSPOT_API_URL") if os.environ.get("HUBSPOT_API_URL") else DEFAULT_API_URL,
    )


def _ga4() -> GA4Resource:
    return GA4Resource(
        property_id=dg.EnvVar("GA4_PROPERTY_ID") if os.environ.get("GA4_PROPERTY_ID") else None,
        api_url=dg.EnvVar("GA4_API_URL") if os.environ.get("GA4_API_URL") else None,
    )


def build_definitions(warehouse: WarehouseResource | None = None, landing_dir: str | None = None,
                      ga4: GA4Resource | None = None, retry_policy: RetryPolicy | None = None) -> dg.Definitions:
    """Assemble the project; tests pass their own warehouse, landing folder, GA4 client settings and egress
    retry policy (short waits)."""
    if warehouse is None:
        warehouse = WarehouseResource(url=_warehouse_url_config())
        dialect = dialect_of(settings.warehouse_url())
    else:
        dialect = warehouse.dialect
    partitions = daily_partitions()

    mappings = load_mappings()
    deletions = privacy_list_asset(DELETIONS, dialect)
    # Loads wait for deletion requests, so a requested person is purged before staging ever sees them.
    crm_assets = [crm_file_asset(entity, dialect, mappings, deps=(deletions.key, hubspot_extracts.key))
                  for entity in (CONTACTS, ORDERS)]
    ga4_assets = [ga4_report_asset(report, partitions, dialect) for report in load_reports()]
    destinations = load_destinations()
    # Deletion status is read after the audience syncs, which carry removals to the platforms.
    audience_egress = [dg.AssetKey(["activation", d.name]) for d in destinations.values()
                       if d.enabled and d.kind == "audiences"]
    python_assets = [deletions, privacy_list_asset(SUPPRESSIONS, dialect), *crm_assets, hubspot_extracts,
                     identity_asset(dialect), deletion_status_asset(dialect, audience_egress), *ga4_assets,
                     exchange_rates_asset(dialect)]
    python_keys = {key for a in python_assets for key in a.keys}
    models = load_models(SQL_ROOT, external=python_keys)
    audience_models = [m for m in models if m.key.path[0] == "audiences"]
    audiences = {m.key.path[-1]: load_audience_settings(m.path) for m in audience_models}
    all_gates = [*STAGE_GATES, *(audience_gate(m.table) for m in audience_models)]

    # Each egress asset waits on the blocking gates upstream of it: conversions do not read audiences.
    core_gates = [gate.check_key for gate in STAGE_GATES if gate.blocking]
    gates = [gate.check_key for gate in all_gates if gate.blocking]
    syncs = load_audience_syncs(destinations, audiences)
    egress = []
    for destination in destinations.values():
        if not destination.enabled:
            continue
        if destination.kind == "events":
            egress.append(conversions_asset(destination, partitions, core_gates, retry_policy or RetryPolicy()))
        else:
            mine = [s for s in syncs if s.destination == destination.name]
            egress.append(audience_sync_asset(destination, mine, gates, retry_policy or RetryPolicy()))

    daily_job = dg.define_asset_job(DAILY_JOB, selection=dg.AssetSelection.all() - dg.AssetSelection.assets(
                                        RETENTION_KEY),
                                    description="The whole graph for one day: that day's partitions and "
                                                "every unpartitioned asset.")
    crm_ingest_job = dg.define_asset_job(
        CRM_INGEST_JOB, selection=dg.AssetSelection.assets(*[a.key for a in crm_assets], *python_assets[:2]),
        description="Load new CRM files, deletion requests and suppression lists from CDP_LANDING_DIR/crm/.")
    retention_job = dg.define_asset_job(RETENTION_JOB, selection=dg.AssetSelection.assets(RETENTION_KEY),
                                        description="Purge operational data past its retention window.")
    return dg.Definitions(
        # Each asset links to the Python that builds it (SQL models also to their .sql file).
        assets=dg.with_source_code_references([
            *python_assets, *[sql_asset(m, dialect, partitions) for m in models if m not in audience_models],
            *[audience_asset(m, audiences[m.key.path[-1]], dialect) for m in audience_models], *egress,
            retention_asset(dialect)]),
        asset_checks=[gate_check(g) for g in all_gates],
        jobs=[daily_job, crm_ingest_job, retention_job],
        schedules=[daily_schedule(daily_job, [a.key for a in ga4_assets]), retention_schedule(retention_job)],
        sensors=[crm_files_sensor, run_failure_alerts],
        resources={"warehouse": warehouse, "hubspot": _hubspot(), "ga4": ga4 or _ga4(),
                   "landing": LandingZone(path=landing_dir or str(settings.landing_dir()))},
        # DuckDB allows one writing process, so runs execute in-process there (ARCHITECTURE principle 10).
        executor=dg.in_process_executor if dialect == "duckdb" else dg.multiprocess_executor,
    )


defs = build_definitions()
