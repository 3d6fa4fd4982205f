"""The one Definitions object: every asset, check, job, schedule and resource of cdp_assets."""

from __future__ import annotations

import os
import warnings

import dagster as dg

from cdp_assets import settings
from cdp_assets.activation.audience_sync import audience_sync_asset
from cdp_assets.activation.config import load_audience_syncs, load_destinations
from cdp_assets.activation.conversions import conversions_asset
from cdp_assets.activation.records.asset import records_sync_asset
from cdp_assets.activation.records.catalog import load_catalog
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
from cdp_assets.ingest.ga4 import ga4_freshness, ga4_report_asset
from cdp_assets.ingest.ga4_reports import load_reports
from cdp_assets.ingest.hubspot import hubspot_asset
from cdp_assets.ingest.landing import LandingZone
from cdp_assets.ingest.mappings import load_mappings
from cdp_assets.lineage import ancestors, gates_on, parent_map
from cdp_assets.partitions import daily_partitions
from cdp_assets.privacy.deletions import deletion_status_asset
from cdp_assets.privacy.requests import DELETIONS, SUPPRESSIONS, privacy_list_asset
from cdp_assets.resources.ga4 import GA4Resource
from cdp_assets.resources.hubspot import DEFAULT_API_URL, HubSpotResource
from cdp_assets.resources.warehouse import WAREHOUSE_TAG, WarehouseResource, dialect_of, warehouse_identity
from cdp_assets.retention import RETENTION_KEY, retention_asset
from cdp_assets.schedules import daily_schedule, day_selections, retention_schedule
from cdp_assets.settings import ConfigError
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
                      ga4: GA4Resource | None = None, retry_policy: RetryPolicy | None = None,
                      hubspot: HubSpotResource | None = None) -> dg.Definitions:
    """Assemble the project; tests and the demo pass their own warehouse, landing folder, source clients and
    egress retry policy (short waits)."""
    if warehouse is None:
        warehouse = WarehouseResource(url=_warehouse_url_config())
        url = settings.warehouse_url()
    else:
        url = warehouse.url
    dialect = dialect_of(url)
    partitions = daily_partitions()
    policy = retry_policy or RetryPolicy()

    mappings = load_mappings()
    deletions = privacy_list_asset(DELETIONS, dialect)
    hubspot_extracts = hubspot_asset(dialect)
    # Loads wait for deletion requests, so a requested person is purged before staging ever sees them.
    crm_assets = [crm_file_asset(entity, dialect, mappings, deps=(deletions.key, hubspot_extracts.key))
                  for entity in (CONTACTS, ORDERS)]
    reports = load_reports()
    ga4_assets = [ga4_report_asset(report, partitions, dialect) for report in reports]
    destinations = {name: d for name, d in load_destinations().items() if d.enabled}
    python_assets = [deletions, privacy_list_asset(SUPPRESSIONS, dialect), *crm_assets, hubspot_extracts,
                     identity_asset(dialect), *ga4_assets, exchange_rates_asset(dialect)]
    python_keys = {key for a in python_assets for key in a.keys} | {dg.AssetKey(["core", "deletion_status"])}
    models = load_models(SQL_ROOT, external=python_keys)
    audience_models = [m for m in models if m.key.path[0] == "audiences"]
    audiences = {m.key.path[-1]: load_audience_settings(m.path) for m in audience_models}
    record_destinations, record_syncs = load_catalog(models)
    taken = sorted({s.name for s in record_syncs} & set(destinations))
    if taken:
        raise ConfigError(f"syncs {', '.join(taken)} share a name with a destination in destinations.yaml; "
                          "rename the sync file")
    # Deletion status is read after the syncs, which carry removals and deletions to the destinations.
    audience_egress = [dg.AssetKey(["activation", d.name]) for d in destinations.values()
                       if d.ad_platform.strategy == "audiences"]
    # A file export deletes nobody record by record (its past files go when pruned), so it has no status there.
    record_egress = {s.name: record_destinations[s.destination].deletes for s in record_syncs
                     if record_destinations[s.destination].snapshot is None}
    python_assets.append(deletion_status_asset(dialect, audience_egress, record_egress))
    all_gates = [*STAGE_GATES, *(audience_gate(m.table) for m in audience_models)]

    # A hand-off waits on the blocking gates upstream of it and only those: nothing that needs no GA4 data
    # waits on a gate of GA4's.
    parents = parent_map(python_assets, {m.key: m.deps for m in models})
    blocking = [g.check_key for g in all_gates if g.blocking] + [
        spec.key for a in python_assets for spec in a.check_specs if spec.blocking]

    def gates_upstream_of(keys) -> list[dg.AssetCheckKey]:
        keys = set(keys)
        return gates_on(blocking, keys | ancestors(parents, keys))

    ga4_keys = {a.key for a in ga4_assets}

    def model_asset(model):
        reads_ga4 = bool(ga4_keys & ({*model.deps} | ancestors(parents, model.deps)))
        return sql_asset(model, dialect, partitions, gates=gates_on(blocking, model.deps),
                         source_metadata=(lambda c, w: ga4_freshness(c, w, reports)) if reads_ga4 else None)

    syncs = load_audience_syncs(destinations, audiences)
    # Each ad platform's strategy decides its asset.
    strategies = {
        "events": lambda d: conversions_asset(d, partitions, gates_upstream_of, policy, dialect),
        "audiences": lambda d: audience_sync_asset(d, [s for s in syncs if s.destination == d.name],
                                                   gates_upstream_of, policy, dialect),
    }
    egress = [strategies[d.ad_platform.strategy](d) for d in destinations.values()]
    egress += [records_sync_asset(s, record_destinations[s.destination], gates_upstream_of, policy, dialect)
               for s in record_syncs]

    assets: list[dg.AssetsDefinition] = [*python_assets, *[model_asset(m) for m in models if m not in audience_models],
              *[audience_asset(m, audiences[m.key.path[-1]], dialect) for m in audience_models], *egress,
              retention_asset(dialect)]
    # Every run carries the warehouse it writes, so one Dagster instance never mixes two warehouses' history.
    tags = {WAREHOUSE_TAG: warehouse_identity(url)}
    # A sync with its own schedule runs on it, not with the day.
    scheduled = {dg.AssetKey(["activation", s.name]): s for s in record_syncs if s.schedule}
    daily_job = dg.define_asset_job(DAILY_JOB, selection=dg.AssetSelection.all() - dg.AssetSelection.assets(
                                        RETENTION_KEY, *scheduled), tags=tags,
                                    description="The whole graph for one day: that day's partitions and "
                                                "every unpartitioned asset. The schedule and `cdp-assets run` "
                                                "run it as a sources run, then everything else.")
    crm_ingest_job = dg.define_asset_job(
        CRM_INGEST_JOB, selection=dg.AssetSelection.assets(*[a.key for a in crm_assets], *python_assets[:2]),
        tags=tags, description="Load new CRM files, deletion requests and suppression lists from "
                               "CDP_LANDING_DIR/crm/.")
    retention_job = dg.define_asset_job(RETENTION_JOB, selection=dg.AssetSelection.assets(RETENTION_KEY), tags=tags,
                                        description="Purge operational data past its retention window.")
    ga4_run, sources, transform = day_selections({k: a.tags_by_key.get(k, {}) for a in assets for k in a.keys
                                                  if k != RETENTION_KEY and k not in scheduled})
    sync_jobs = [dg.define_asset_job(f"{s.name}_job", selection=dg.AssetSelection.assets(key), tags=tags,
                                     description=f"The {s.name} sync, on its own schedule ({s.schedule}).")
                 for key, s in scheduled.items()]
    sync_schedules = [dg.ScheduleDefinition(name=f"{job.name}_schedule", cron_schedule=s.schedule, job=job,
                                            execution_timezone=settings.timezone().key,
                                            default_status=dg.DefaultScheduleStatus.RUNNING)
                      for job, s in zip(sync_jobs, scheduled.values(), strict=True)]
    with warnings.catch_warnings():
        # Code references are a beta API in Dagster 1.13; it warns once per asset on every load.
        warnings.simplefilter("ignore", dg.BetaWarning)
        assets = dg.with_source_code_references(assets)
    return dg.Definitions(
        # Each asset links to the Python that builds it (SQL models also to their .sql file).
        assets=assets,
        asset_checks=[gate_check(g) for g in all_gates],
        jobs=[daily_job, crm_ingest_job, retention_job, *sync_jobs],
        schedules=[daily_schedule(DAILY_JOB, ga4_run, sources, transform),
                   retention_schedule(RETENTION_JOB), *sync_schedules],
        sensors=[crm_files_sensor, run_failure_alerts],
        resources={"warehouse": warehouse, "hubspot": hubspot or _hubspot(), "ga4": ga4 or _ga4(),
                   "landing": LandingZone(path=landing_dir or str(settings.landing_dir()))},
        # DuckDB allows one writing process, so runs execute in-process there (ARCHITECTURE principle 10).
        executor=dg.in_process_executor if dialect == "duckdb" else dg.multiprocess_executor,
    )


defs = build_definitions()
