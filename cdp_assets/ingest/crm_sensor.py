"""The sensor that launches CRM ingestion when files arrive in `CDP_LANDING_DIR/crm/`.

It looks only at the file system (name, size, modification time) and keeps what it has seen in its
Dagster cursor; it never opens the warehouse, which on DuckDB a running job may hold (ARCHITECTURE
principle 10). A file that both CRM loaders already saw in that state (their latest materializations say
so: a `cdp-assets run`, the demo or the daily job loaded it) launches nothing. Whether a file's content is
new is decided by the loader's SHA-256 ledger, so a file touched without changes costs one short run that
loads nothing.
"""

import hashlib
import json

import dagster as dg

from cdp_assets.ingest.landing import LandingZone

CRM_INGEST_JOB = "crm_ingest_job"
# Materialization metadata of each CRM loader: the folder's files as the load found them.
SEEN_KEY = "crm_files_seen"
LOADERS = (dg.AssetKey(["raw", "crm_contacts"]), dg.AssetKey(["raw", "crm_orders"]))


def loaded_states(instance: dg.DagsterInstance) -> dict[str, list[int]]:
    """The files every CRM loader's latest load found, in the state it found them (an empty map until both ran)."""
    common: dict[str, list[int]] | None = None
    for key in LOADERS:
        event = instance.get_latest_materialization_event(key)
        value = event.asset_materialization.metadata.get(SEEN_KEY) if event and event.asset_materialization else None
        states = dict(value.value) if value is not None else {}
        common = states if common is None else {n: s for n, s in common.items() if states.get(n) == s}
    return common or {}


@dg.sensor(
    job_name=CRM_INGEST_JOB,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches CRM ingestion when a file in CDP_LANDING_DIR/crm/ is new or changed (name, size, "
                "modification time) and no load has seen it yet; never opens the warehouse.",
)
def crm_files_sensor(context: dg.SensorEvaluationContext, landing: LandingZone) -> dg.SensorResult:
    states = landing.crm_file_states()
    seen = json.loads(context.cursor) if context.cursor else {}
    loaded = loaded_states(context.instance)
    changed = sorted(name for name, state in states.items() if seen.get(name) != state and loaded.get(name) != state)
    cursor = json.dumps(states, sort_keys=True)
    if not changed:
        return dg.SensorResult(skip_reason=f"no new or changed files in {landing.crm_dir} that a load has not "
                                           "seen", cursor=cursor)
    key = hashlib.sha256(json.dumps({n: states[n] for n in changed}, sort_keys=True).encode()).hexdigest()[:16]
    context.log.info(f"{len(changed)} new or changed file(s): {', '.join(changed)}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=key, tags={"cdp/changed_files": str(len(changed))})],
        cursor=cursor,
    )
