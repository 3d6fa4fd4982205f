"""The daily schedule: yesterday's partitions of everything, after restating GA4's last three days.

Schedules start RUNNING, so a fresh deployment works without a click (README: Automation says how to pause).
GA4 keeps revising a day for about 72 hours (late hits, Measurement Protocol events backdated up to 72 h),
so each tick first re-reads D-1..D-3 of every GA4 report in one range run, then runs the whole graph for
D. Both runs are queued in that order; with the run queue at one run at a time (dagster.yaml, as DuckDB
needs) the marts of D's run are built on the restated days.
"""

from datetime import date, datetime, timedelta

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from cdp_assets import settings

RESTATED_DAYS = 3
RETENTION_HOUR = 3


def restatement_range(day: date) -> tuple[date, date]:
    """The GA4 days re-read when `day` is run: D-3 through D-1."""
    return day - timedelta(days=RESTATED_DAYS), day - timedelta(days=1)


def partition_range_tags(first: date, last: date) -> dict[str, str]:
    """Run tags that make one run cover a partition range, as a backfill chunk does."""
    return {ASSET_PARTITION_RANGE_START_TAG: first.isoformat(), ASSET_PARTITION_RANGE_END_TAG: last.isoformat()}


def daily_schedule(job: UnresolvedAssetJobDefinition, ga4_keys: list[dg.AssetKey]) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{job.name}_schedule",
        cron_schedule=f"0 {settings.schedule_hour()} * * *",
        execution_timezone=settings.timezone().key,
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every morning: re-read GA4's D-1..D-3 (GA4 revises the last 72 hours), then run the whole "
                    "graph for yesterday (D).",
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        now = context.scheduled_execution_time or datetime.now(settings.timezone())
        day = now.astimezone(settings.timezone()).date() - timedelta(days=1)
        first, last = restatement_range(day)
        yield dg.RunRequest(run_key=f"ga4_restatement:{day.isoformat()}", asset_selection=ga4_keys,
                            tags={**partition_range_tags(first, last), "cdp/restatement": "ga4"})
        yield dg.RunRequest(run_key=f"daily:{day.isoformat()}", partition_key=day.isoformat())

    return _schedule


def retention_schedule(job: UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    """Every night, before the daily run: purge what is past its retention window."""
    return dg.ScheduleDefinition(
        name=f"{job.name}_schedule", cron_schedule=f"0 {RETENTION_HOUR} * * *", job=job,
        execution_timezone=settings.timezone().key, default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every night: purge egress request bodies, quarantined rows and audience membership "
                    "snapshots past their retention windows (CDP_RETENTION_*_DAYS).")
