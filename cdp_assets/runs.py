"""Runs launched from the command line: executed through Dagster in this process, recorded in the instance the
UI reads, one at a time on DuckDB, alerted like any other, and reported in a few plain lines.

DuckDB takes one writer. The run queue of `dagster dev` or `dagster-daemon` starts a run only while fewer than
`max_concurrent_runs` (one, in this folder's dagster.yaml) are in progress; a run started here counts among
them, since it is recorded in the same instance. Before starting, a command-line run waits, by the same rule,
until no other run is in progress. Steps also take the `warehouse` pool, which every run honours.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import dagster as dg

from cdp_assets import alerts
from cdp_assets.schedules import DayRun, day_runs, day_selections
from cdp_assets.sources import not_configured_reason

IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
WAIT_POLL_SECONDS = 1.0


@dataclass
class RunOutcome:
    run_id: str
    label: str
    success: bool
    failed_steps: dict[str, str] = field(default_factory=dict)  # step -> its root error, in one line
    skipped_steps: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    warned_checks: list[str] = field(default_factory=list)
    passed_checks: list[str] = field(default_factory=list)
    not_configured: dict[str, str] = field(default_factory=dict)  # asset -> what to set
    unreadable_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.success and not self.failed_checks


def _across_runs(name: str) -> property:
    return property(lambda self: [item for run in self.runs for item in getattr(run, name)])


@dataclass
class DayOutcome:
    """The runs of one day, read as one: it is ok when every run is."""

    runs: list[RunOutcome]
    failed_steps = _across_runs("failed_steps")
    failed_checks = _across_runs("failed_checks")
    warned_checks = _across_runs("warned_checks")
    passed_checks = _across_runs("passed_checks")
    skipped_steps = _across_runs("skipped_steps")

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.runs)


def one_line(error: object) -> str:
    """The innermost error of a step failure, on one line, without Dagster's exception class prefix."""
    message = alerts.root_cause(error).strip().splitlines()
    text = message[0] if message else ""
    head, _, rest = text.partition(": ")
    return rest if rest and "." in head and " " not in head else text


def wait_for_other_runs(instance: dg.DagsterInstance, say: Callable[[str], None] = print) -> None:
    """Wait until no other run of this instance is in progress: the rule the run queue follows."""
    told: set[str] = set()
    while records := instance.get_run_records(filters=dg.RunsFilter(statuses=IN_PROGRESS), limit=1):
        run = records[0].dagster_run
        if run.run_id not in told:
            say(f"waiting for run {run.run_id[:8]} ({run.job_name}, {run.status.value.lower()}) to finish: the "
                "warehouse takes one run at a time. If no process runs it any more, terminate it in the UI "
                "(Runs, then Terminate).")
            told.add(run.run_id)
        time.sleep(WAIT_POLL_SECONDS)


def _outcome(result: dg.ExecuteInProcessResult, label: str) -> RunOutcome:
    outcome = RunOutcome(run_id=result.run_id, label=label, success=result.success)
    finished = set()
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = event.event_specific_data.error if event.event_specific_data else None
            outcome.failed_steps[event.step_key] = one_line(error) if error else "failed"
        if event.event_type in (dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.STEP_SUCCESS):
            finished.add(event.step_key)
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            reason = not_configured_reason(dict(materialization.metadata))
            if reason:
                outcome.not_configured[materialization.asset_key.to_user_string()] = reason
    # Steps held back by a failed upstream step or blocking check leave no event of their own.
    outcome.skipped_steps = [s for s in result.dagster_run.step_keys_to_execute or [] if s not in finished]
    for evaluation in result.get_asset_check_evaluations():
        name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        if evaluation.passed:
            outcome.passed_checks.append(name)
            continue
        (outcome.failed_checks if evaluation.severity == dg.AssetCheckSeverity.ERROR
         else outcome.warned_checks).append(name)
        files = evaluation.metadata.get("unreadable_files")
        if files is not None:
            outcome.unreadable_files += [str(f) for f in files.value]
        # A failed blocking check also fails its step: it is reported once, as the check.
        outcome.failed_steps.pop(f"{'__'.join(evaluation.asset_key.path)}_{evaluation.check_name}", None)
    return outcome


def execute(defs: dg.Definitions, job_name: str, label: str, instance: dg.DagsterInstance,
            log_level: str = "INFO", **options) -> RunOutcome:
    """One run of `job_name`, in this process, recorded in `instance`; a failed run is recorded and posted as
    the run-failure sensor would (the sensor leaves runs launched here to us)."""
    wait_for_other_runs(instance)
    job = defs.resolve_job_def(job_name)
    tags = {**options.pop("tags", {}), alerts.LAUNCHED_BY_TAG: "cli"}
    run_config = {**options.pop("run_config", {}), "loggers": {"console": {"config": {"log_level": log_level}}}}
    result = job.execute_in_process(instance=instance, raise_on_error=False, tags=tags, run_config=run_config,
                                    **options)
    outcome = _outcome(result, label)
    if not result.success:
        alerts.alert(alerts.failure_record(result.dagster_run, f"{len(outcome.failed_steps)} step(s) failed",
                                           list(outcome.failed_steps.items()), datetime.now(UTC)))
    return outcome


def plan_day(defs: dg.Definitions, job_name: str, day: date, restate: bool = False) -> list[DayRun]:
    """The runs of `day`, as the daily schedule queues them (without GA4's restatement unless asked)."""
    graph = defs.resolve_asset_graph()
    keys = defs.resolve_job_def(job_name).asset_layer.executable_asset_keys
    return day_runs(day, *day_selections({k: dict(graph.get(k).tags) for k in keys}), restate=restate)


def run_day(defs: dg.Definitions, day: date, instance: dg.DagsterInstance, log_level: str = "INFO",
            job_name: str = "daily_job") -> DayOutcome:
    """Day `day` of the whole graph: the sources run, then everything else, each run recorded in `instance`."""
    return DayOutcome([execute(defs, job_name, f"{run.stage} {day}", instance, log_level,
                    asset_selection=list(run.asset_selection), partition_key=run.partition_key, tags=run.tags)
            for run in plan_day(defs, job_name, day)])


def report(outcome: RunOutcome) -> None:
    print(f"run {outcome.run_id} ({outcome.label}): {'succeeded' if outcome.ok else 'FAILED'}")
    print(f"  checks: {len(outcome.passed_checks)} passed, {len(outcome.failed_checks)} failed, "
          f"{len(outcome.warned_checks)} warnings")
    by_reason: dict[str, list[str]] = {}
    for asset, what in sorted(outcome.not_configured.items()):
        by_reason.setdefault(what, []).append(asset)
    for what, assets in by_reason.items():
        print(f"  not configured: {', '.join(assets)}: {what}")
    for step, error in outcome.failed_steps.items():
        print(f"  failed step: {step}: {error}")
    for name in outcome.failed_checks:
        print(f"  failed check: {name}")
    for problem in outcome.unreadable_files:
        print(f"  unreadable file: {problem}")
    for name in outcome.warned_checks:
        print(f"  warning: {name} (see the check's metadata in the UI)")
    if outcome.skipped_steps:
        print(f"  skipped because an upstream step or blocking check failed: {', '.join(outcome.skipped_steps)}")
