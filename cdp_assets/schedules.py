"""A day's runs, and the schedules that queue them every morning and night.

A day is run as separate runs of `daily_job`, in order, all tagged `cdp/day`:
- (the schedule only) GA4's D-3..D-1 re-read in one range run: GA4 keeps revising a day for about 72 hours
  (late hits, Measurement Protocol events backdated up to 72 h);
- `sources`: the API sources for D (each GA4 report, HubSpot), pulled into raw;
- `transform`: everything else for D, from the CRM files to every destination.
An API source that fails (a 403, a spent quota, an outage) fails its step in the sources run and holds
nothing else back: the transform run still builds profiles, audiences and every destination's requests,
and the marts that read GA4 use the GA4 data loaded so far, saying up to which day. Within one run a
failed step would skip everything downstream of it, which is why the sources have a run of their own.
Schedules start RUNNING, so a fresh deployment works without a click (README: Automation says how to pause).
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import dagster as dg

from cdp_assets import settings

RESTATED_DAYS = 3
RETENTION_HOUR = 3
DAY_TAG = "cdp/day"
STAGE_TAG = "cdp/stage"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# Asset tags: the API sources, pulled in the day's sources run, and which of them GA4's restatement re-reads.
SOURCE_TAGS = {"ga4": {STAGE_TAG: "sources", "cdp/source": "ga4"},
               "hubspot": {STAGE_TAG: "sources", "cdp/source": "hubspot"}}


@dataclass(frozen=True)
class DayRun:
    """One run of a day: its stage, what it materializes, and the partition (or range) it covers."""

    stage: str
    asset_selection: tuple[dg.AssetKey, ...]
    partition_key: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def restatement_range(day: date) -> tuple[date, date]:
    """The GA4 days re-read when `day` is run: D-3 through D-1."""
    return day - timedelta(days=RESTATED_DAYS), day - timedelta(days=1)


def partition_range_tags(first: date, last: date) -> dict[str, str]:
    """Run tags that make one run cover a partition range, as a backfill chunk does."""
    return {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}


def day_selections(tags_by_key: dict[dg.AssetKey, dict[str, str]]
                   ) -> tuple[list[dg.AssetKey], list[dg.AssetKey], list[dg.AssetKey]]:
    """(GA4 reports, every API source, everything else) among the assets of a day, by their tags."""
    keys = sorted(tags_by_key, key=lambda k: k.path)
    sources = [k for k in keys if tags_by_key[k].get(STAGE_TAG) == "sources"]
    ga4 = [k for k in sources if tags_by_key[k].get("cdp/source") == "ga4"]
    return ga4, sources, [k for k in keys if k not in sources]


def day_runs(day: date, ga4: list[dg.AssetKey], sources: list[dg.AssetKey], transform: list[dg.AssetKey],
             restate: bool) -> list[DayRun]:
    """The runs of `day`, in the order they must run (see the module docstring)."""
    tags = {DAY_TAG: day.isoformat()}
    runs = []
    if restate and ga4:
        first, last = restatement_range(day)
        runs.append(DayRun("ga4_restatement", tuple(ga4),
                           tags={**tags, STAGE_TAG: "ga4_restatement", **partition_range_tags(first, last)}))
    runs.append(DayRun("sources", tuple(sources), day.isoformat(), {**tags, STAGE_TAG: "sources"}))
    runs.append(DayRun("transform", tuple(transform), day.isoformat(), {**tags, STAGE_TAG: "transform"}))
    return runs


def daily_schedule(job_name: str, ga4: list[dg.AssetKey], sources: list[dg.AssetKey],
                   transform: list[dg.AssetKey]) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{job_name}_schedule",
        cron_schedule=f"0 {settings.schedule_hour()} * * *",
        execution_timezone=settings.timezone().key,
        job_name=job_name,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every morning, for yesterday (D): re-read GA4's D-1..D-3 (GA4 revises the last 72 hours), "
                    "pull the API sources for D, then run everything else for D. A failing source holds back "
                    "only what needs it.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        now = context.scheduled_execution_time or datetime.now(settings.timezone())
        day = now.astimezone(settings.timezone()).date() - timedelta(days=1)
        for run in day_runs(day, ga4, sources, transform, restate=True):
            yield dg.RunRequest(run_key=f"{run.stage}:{day.isoformat()}", asset_selection=list(run.asset_selection),
                                partition_key=run.partition_key, tags=run.tags)

    return _schedule


def retention_schedule(job_name: str) -> dg.ScheduleDefinition:
    """Every night, before the daily run: purge what is past its retention window."""
    return dg.ScheduleDefinition(
        name=f"{job_name}_schedule", cron_schedule=f"0 {RETENTION_HOUR} * * *", job_name=job_name,
        execution_timezone=settings.timezone().key, default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Every night: purge egress request bodies, quarantined rows and audience membership "
                    "snapshots past their retention windows (CDP_RETENTION_*_DAYS).")
