"""The sensor that launches CRM ingestion when files arrive in `CDP_LANDING_DIR/crm/`.

It looks only at the file system (name, size, modification time) and keeps what it has seen in its
Dagster cursor; it never opens the warehouse, which on DuckDB a running job may hold (ARCHITECTURE
principle 10). Whether a file's content is new is decided by the loader's SHA-256 ledger, so a file
touched without changes costs one short run that loads nothing.
"""

import hashlib
import json

import dagster as dg

from cdp_assets.ingest.landing import LandingZone

CRM_INGEST_JOB = "crm_ingest_job"


def _file_states(landing: LandingZone) -> dict[str, list[int]]:
    states = {}
    for path in landing.crm_files():
        stat = path.stat()
        states[path.name] = [stat.st_size, stat.st_mtime_ns]
    return states


@dg.sensor(
    job_name=CRM_INGEST_JOB,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches CRM ingestion when a file in CDP_LANDING_DIR/crm/ is new or changed (name, size, "
                "modification time); never opens the warehouse.",
)
def crm_files_sensor(context: dg.SensorEvaluationContext, landing: LandingZone) -> dg.SensorResult:
    states = _file_states(landing)
    seen = json.loads(context.cursor) if context.cursor else {}
    changed = sorted(name for name, state in states.items() if seen.get(name) != state)
    cursor = json.dumps(states, sort_keys=True)
    if not changed:
        return dg.SensorResult(skip_reason=f"no new or changed files in {landing.crm_dir}", cursor=cursor)
    key = hashlib.sha256(json.dumps({n: states[n] for n in changed}, sort_keys=True).encode()).hexdigest()[:16]
    context.log.info(f"{len(changed)} new or changed file(s): {', '.join(changed)}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=key, tags={"cdp/changed_files": str(len(changed))})],
        cursor=cursor,
    )
