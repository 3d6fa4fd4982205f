"""`cdp-assets`: the one documented command line (run a day, run the demo, generate sample data)."""

import argparse
import os
import sys
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from cdp_assets import settings


@dataclass
class RunOutcome:
    run_id: str
    success: bool
    failed_steps: list[str] = field(default_factory=list)
    skipped_steps: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    warned_checks: list[str] = field(default_factory=list)
    passed_checks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.success and not self.failed_checks


def open_instance() -> dg.DagsterInstance:
    """The instance `dagster dev` in this folder would use, so runs show up in the UI's history."""
    if os.environ.get("DAGSTER_HOME"):
        return dg.DagsterInstance.get()
    if Path("dagster.yaml").is_file():
        return dg.DagsterInstance.from_config(os.getcwd())
    raise SystemExit("cdp-assets: no dagster.yaml here and DAGSTER_HOME is not set; run it from the project "
                     "folder (where dagster.yaml is) or set DAGSTER_HOME")


def run_day(defs: dg.Definitions, day: date, instance: dg.DagsterInstance, log_level: str = "INFO") -> RunOutcome:
    """Materialize partition `day` of every partitioned asset and every unpartitioned asset, checks included."""
    from cdp_assets.definitions import DAILY_JOB

    job = defs.resolve_job_def(DAILY_JOB)
    result = job.execute_in_process(
        partition_key=day.isoformat(), instance=instance, raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
    return _outcome(result)


def _outcome(result: dg.ExecuteInProcessResult) -> RunOutcome:
    outcome = RunOutcome(run_id=result.run_id, success=result.success)
    finished = set()
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            outcome.failed_steps.append(event.step_key)
        if event.event_type in (dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.STEP_SUCCESS):
            finished.add(event.step_key)
    # Steps held back by a failed upstream step or blocking check leave no event of their own.
    outcome.skipped_steps = [s for s in result.dagster_run.step_keys_to_execute or [] if s not in finished]
    for evaluation in result.get_asset_check_evaluations():
        name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        if evaluation.passed:
            outcome.passed_checks.append(name)
        elif evaluation.severity == dg.AssetCheckSeverity.ERROR:
            outcome.failed_checks.append(name)
        else:
            outcome.warned_checks.append(name)
    return outcome


def chunks(first: date, last: date, days: int) -> list[tuple[date, date]]:
    """[first, last] cut into ranges of at most `days` days, in order, as a backfill's runs are."""
    ranges, start = [], first
    while start <= last:
        end = min(start + timedelta(days=days - 1), last)
        ranges.append((start, end))
        start = end + timedelta(days=1)
    return ranges


def backfill_ga4(defs: dg.Definitions, first: date, last: date, instance: dg.DagsterInstance,
                 log_level: str = "INFO") -> list[tuple[str, RunOutcome]]:
    """Materialize every GA4 report for [first, last], one Dagster run per backfill chunk (as the UI's
    asset backfill does with their BackfillPolicy). Stops at the first chunk that fails."""
    from cdp_assets.ingest.ga4 import DAYS_PER_RUN
    from cdp_assets.ingest.ga4_reports import load_reports
    from cdp_assets.schedules import partition_range_tags

    keys = [dg.AssetKey(report.asset_key) for report in load_reports()]
    job = defs.resolve_implicit_global_asset_job_def()
    outcomes = []
    for start, end in chunks(first, last, DAYS_PER_RUN):
        result = job.execute_in_process(
            asset_selection=keys, instance=instance, raise_on_error=False,
            tags={**partition_range_tags(start, end), "cdp/backfill": f"ga4 {first}..{last}"},
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        )
        outcomes.append((f"{start}..{end}", _outcome(result)))
        if not outcomes[-1][1].ok:
            break
    return outcomes


def report(outcome: RunOutcome, partitions: date | str) -> None:
    print(f"run {outcome.run_id} for {partitions}: {'succeeded' if outcome.ok else 'FAILED'}")
    print(f"  checks: {len(outcome.passed_checks)} passed, {len(outcome.failed_checks)} failed, "
          f"{len(outcome.warned_checks)} warnings")
    for name in outcome.failed_checks:
        print(f"  failed check: {name}")
    for name in outcome.warned_checks:
        print(f"  warning: {name} (see the check's metadata in the UI)")
    for step in outcome.failed_steps:
        print(f"  failed step: {step}")
    if outcome.skipped_steps:
        print(f"  skipped because an upstream step or blocking check failed: {', '.join(outcome.skipped_steps)}")


def _run(args: argparse.Namespace) -> int:
    from cdp_assets.definitions import build_definitions

    day = args.date or settings.yesterday()
    outcome = run_day(build_definitions(), day, open_instance())
    report(outcome, day)
    return 0 if outcome.ok else 1


def _ga4_backfill(args: argparse.Namespace) -> int:
    from cdp_assets.definitions import build_definitions

    last = args.to or settings.yesterday()
    if args.first > last:
        print(f"cdp-assets: --from {args.first} is after --to {last}", file=sys.stderr)
        return 2
    outcomes = backfill_ga4(build_definitions(), args.first, last, open_instance())
    for label, outcome in outcomes:
        report(outcome, label)
    return 0 if all(o.ok for _, o in outcomes) else 1


def replay_dead_letters(defs: dg.Definitions, destination: str, instance: dg.DagsterInstance,
                        log_level: str = "INFO") -> tuple[dict[str, int], RunOutcome | None]:
    """Put a destination's dead letters back to pending and run its egress asset over the days they belong to.

    Returns the records replayed per partition and the run's outcome (None when there was nothing to replay).
    """
    from cdp_assets.activation import ledger
    from cdp_assets.schedules import partition_range_tags

    key = dg.AssetKey(["activation", destination])
    if key not in defs.resolve_all_asset_keys():
        raise settings.ConfigError(f"no enabled destination named {destination!r} in destinations.yaml")
    # build_resources resolves the warehouse URL the way a run does (it may be an EnvVar).
    with dg.build_resources({"warehouse": defs.resources["warehouse"]}) as resources, \
            resources.warehouse.begin() as conn:
        ledger.ensure_tables(resources.warehouse, conn)
        replayed = ledger.replay(resources.warehouse, conn, destination)
    if not replayed:
        return replayed, None
    job = defs.resolve_implicit_global_asset_job_def()
    tags = {"cdp/replay": destination}
    if defs.resolve_assets_def(key).partitions_def is not None:
        days = sorted(date.fromisoformat(p) for p in replayed)
        tags.update(partition_range_tags(days[0], days[-1]))
    result = job.execute_in_process(asset_selection=[key], instance=instance, raise_on_error=False, tags=tags,
                                    run_config={"loggers": {"console": {"config": {"log_level": log_level}}}})
    return replayed, _outcome(result)


def _replay(args: argparse.Namespace) -> int:
    from cdp_assets.definitions import build_definitions

    replayed, outcome = replay_dead_letters(build_definitions(), args.destination, open_instance())
    if outcome is None:
        print(f"{args.destination}: no dead letters to replay")
        return 0
    print(f"{args.destination}: {sum(replayed.values())} dead letters back to pending "
          f"({', '.join(f'{p}: {n}' for p, n in replayed.items())})")
    report(outcome, ", ".join(replayed))
    return 0 if outcome.ok else 1


def _generate(args: argparse.Namespace) -> int:
    from cdp_assets.sample_data import write_crm_extracts, write_ga4_sample

    landing = Path(args.landing_dir or settings.landing_dir())
    end = args.end or settings.yesterday()
    counts = write_crm_extracts(landing, args.people, end, args.days, args.seed)
    ga4_rows = write_ga4_sample(landing, end - timedelta(days=args.days - 1), end, args.seed)
    print(f"wrote {counts['contacts']} contact rows and {counts['orders']} order rows for {counts['people']} people "
          f"to {landing / 'crm'}, and {ga4_rows} GA4 report rows to {landing / 'ga4'}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from cdp_assets.demo import run_demo

    return run_demo(args.people, args.days)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cdp-assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="materialize the whole graph for one day through Dagster")
    run.add_argument("--date", type=date.fromisoformat, help="YYYY-MM-DD (default: yesterday in CDP_TIMEZONE)")
    run.set_defaults(handler=_run)

    demo = commands.add_parser("demo", help="generate sample data and run the pipeline on it, in dry run")
    demo.add_argument("--people", type=int, default=3000)
    demo.add_argument("--days", type=int, default=30)
    demo.set_defaults(handler=_demo)

    backfill = commands.add_parser("ga4-backfill", help="materialize every GA4 report for a date range, one run per "
                                                        "week-long chunk (as a backfill from the UI does)")
    backfill.add_argument("--from", dest="first", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
    backfill.add_argument("--to", type=date.fromisoformat, help="YYYY-MM-DD (default: yesterday in CDP_TIMEZONE)")
    backfill.set_defaults(handler=_ga4_backfill)

    replay = commands.add_parser("replay", help="send a destination's dead letters again, after the data or "
                                                 "the configuration that made them fail was fixed")
    replay.add_argument("--destination", required=True, help="a destination name from destinations.yaml")
    replay.set_defaults(handler=_replay)

    generate = commands.add_parser("generate", help="write deterministic messy sample data to the landing folder")
    generate.add_argument("--people", type=int, default=3000)
    generate.add_argument("--days", type=int, default=30)
    generate.add_argument("--end", type=date.fromisoformat, help="last day of orders (default: yesterday)")
    generate.add_argument("--seed", type=int, default=42)
    generate.add_argument("--landing-dir", help="default: CDP_LANDING_DIR or data/landing")
    generate.set_defaults(handler=_generate)

    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except settings.ConfigError as error:
        print(f"cdp-assets: {error}", file=sys.stderr)
        return 2


def entry() -> None:
    """The `cdp-assets` console script.

    DuckDB 2's nanobind bindings print a wall of benign "leaked instance" warnings during interpreter
    teardown when duckdb_engine and Great Expectations share a process (nothing is lost: see
    nanobind's refleaks documentation). Everything is committed and flushed by now, so the command
    exits without that teardown.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
