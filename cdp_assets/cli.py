"""`cdp-assets`: the one documented command line (run a day, backfill GA4, replay, preview or run a sync, run the
demo, generate data).

Every mistake a user can make here (a date out of range, a warehouse that cannot be reached, a folder that
cannot be created) is one line on stderr and exit code 2, checked before anything is written; a run that
fails exits 1 and names each failed step with its root error.
"""

import argparse
import os
import sys
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from cdp_assets import settings
from cdp_assets.runs import DayOutcome, RunOutcome, execute, report, run_day
from cdp_assets.schedules import partition_range_tags
from cdp_assets.sync_commands import add_commands

DAILY_JOB = "daily_job"


def open_instance(home: Path | None = None) -> dg.DagsterInstance:
    """The instance `dagster dev` in this folder would use, so runs show up in the UI's history."""
    if home is not None:
        return dg.DagsterInstance.from_config(str(home))
    if os.environ.get("DAGSTER_HOME"):
        if not Path(os.environ["DAGSTER_HOME"]).is_dir():
            raise settings.ConfigError(f"DAGSTER_HOME={os.environ['DAGSTER_HOME']} is not a folder; create it "
                                       "(mkdir -p) or unset DAGSTER_HOME to use this project's dagster.yaml")
        return dg.DagsterInstance.get()
    if Path("dagster.yaml").is_file():
        return dg.DagsterInstance.from_config(os.getcwd())
    raise settings.ConfigError("no dagster.yaml here and DAGSTER_HOME is not set; run it from the project folder "
                               "(where dagster.yaml is) or set DAGSTER_HOME")


def check_day(day: date, what: str = "--date") -> None:
    """A day can be run once it is over in CDP_TIMEZONE, and only from CDP_START_DATE on."""
    latest, zone = settings.yesterday(), settings.timezone().key
    if day == latest + timedelta(days=1):
        raise settings.ConfigError(f"{what} {day} is today in CDP_TIMEZONE ({zone}) and not over yet; the latest day "
                                   f"that can run is {latest}")
    if day > latest:
        raise settings.ConfigError(f"{what} {day} is in the future; the latest day that can run is {latest} "
                                   f"(yesterday in {zone})")
    if day < settings.start_date():
        raise settings.ConfigError(f"{what} {day} is before CDP_START_DATE ({settings.start_date()}), where the "
                                   "daily partitions begin; set CDP_START_DATE to your history's first day")


def check_setup(url: str) -> None:
    """Everything a run needs, checked once before anything is written: settings, the landing folder, and a
    PostgreSQL warehouse that answers (a DuckDB file is not opened here: a running job may hold it)."""
    from cdp_assets.resources.warehouse import dialect_of, normalize_url

    dialect = dialect_of(url)
    settings.egress_mode()
    settings.reporting_currency()
    settings.schedule_hour()
    landing = settings.landing_dir()
    try:
        landing.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise settings.ConfigError(f"CDP_LANDING_DIR={landing} cannot be created: {error.strerror}") from None
    if dialect == "postgres":
        engine = sa.create_engine(normalize_url(url), poolclass=NullPool)
        shown = sa.engine.make_url(url).render_as_string(hide_password=True)
        try:
            with engine.connect():
                pass
        except sa.exc.OperationalError as error:
            detail = str(error.orig).strip().splitlines()[-1] if error.orig else "no answer"
            raise settings.ConfigError(f"cannot connect to the warehouse {shown}: {detail}") from None
        finally:
            engine.dispose()


def prepared_instance(url: str) -> dg.DagsterInstance:
    """The instance, once it is known to serve this warehouse (one instance, one warehouse)."""
    from cdp_assets.resources.warehouse import other_warehouse, warehouse_identity

    check_setup(url)
    instance = open_instance()
    refusal = other_warehouse(instance, warehouse_identity(url))
    if refusal:
        raise settings.ConfigError(refusal)
    return instance


def chunks(first: date, last: date, days: int) -> list[tuple[date, date]]:
    """[first, last] cut into ranges of at most `days` days, in order, as a backfill's runs are."""
    ranges, start = [], first
    while start <= last:
        end = min(start + timedelta(days=days - 1), last)
        ranges.append((start, end))
        start = end + timedelta(days=1)
    return ranges


def backfill_ga4(defs: dg.Definitions, first: date, last: date, instance: dg.DagsterInstance,
                 log_level: str = "INFO") -> list[RunOutcome]:
    """Materialize every GA4 report for [first, last], one Dagster run per backfill chunk (as the UI's
    asset backfill does with their BackfillPolicy). Stops at the first chunk that fails."""
    from cdp_assets.ingest.ga4 import DAYS_PER_RUN
    from cdp_assets.ingest.ga4_reports import load_reports

    keys = [dg.AssetKey(report.asset_key) for report in load_reports()]
    outcomes = []
    for start, end in chunks(first, last, DAYS_PER_RUN):
        outcomes.append(execute(defs, DAILY_JOB, f"GA4 {start}..{end}", instance, log_level, asset_selection=keys,
                                tags={**partition_range_tags(start, end), "cdp/backfill": f"ga4 {first}..{last}"}))
        if not outcomes[-1].ok:
            break
    return outcomes


def report_day(outcome: DayOutcome, day: date) -> int:
    for run in outcome.runs:
        report(run)
    if outcome.ok:
        print(f"{day}: every run succeeded")
        return 0
    failed = [f"{run.label} ({', '.join([*run.failed_steps, *run.failed_checks]) or 'failed'})"
              for run in outcome.runs if not run.ok]
    print(f"{day}: FAILED in {'; '.join(failed)}")
    return 1


def _run(args: argparse.Namespace) -> int:
    day = args.date or settings.yesterday()
    check_day(day)
    instance = prepared_instance(settings.warehouse_url())
    from cdp_assets.definitions import build_definitions  # loading it builds the definitions: after the checks

    return report_day(run_day(build_definitions(), day, instance), day)


def _ga4_backfill(args: argparse.Namespace) -> int:
    last = args.to or settings.yesterday()
    if args.first > last:
        raise settings.ConfigError(f"--from {args.first} is after --to {last}")
    check_day(args.first, "--from")
    check_day(last, "--to")
    instance = prepared_instance(settings.warehouse_url())
    from cdp_assets.definitions import build_definitions  # loading it builds the definitions: after the checks

    outcomes = backfill_ga4(build_definitions(), args.first, last, instance)
    for outcome in outcomes:
        report(outcome)
    return 0 if all(o.ok for o in outcomes) else 1


def replay_dead_letters(defs: dg.Definitions, destination: str, instance: dg.DagsterInstance,
                        log_level: str = "INFO") -> tuple[dict[str, int], RunOutcome | None]:
    """Put a destination's dead letters back to pending and run its egress asset over the days they belong to.

    Returns the records replayed per partition and the run's outcome (None when there was nothing to replay).
    """
    from cdp_assets.activation import ledger
    from cdp_assets.runs import wait_for_other_runs

    check_destination(defs, destination)
    key = dg.AssetKey(["activation", destination])
    wait_for_other_runs(instance)
    # build_resources resolves the warehouse URL the way a run does (it may be an EnvVar).
    with dg.build_resources({"warehouse": defs.resources["warehouse"]}) as resources, \
            resources.warehouse.begin() as conn:
        ledger.ensure_tables(resources.warehouse, conn)
        replayed = ledger.replay(resources.warehouse, conn, destination)
    if not replayed:
        return replayed, None
    tags = {"cdp/replay": destination}
    if defs.resolve_assets_def(key).partitions_def is not None:
        days = sorted(date.fromisoformat(p) for p in replayed)
        tags.update(partition_range_tags(days[0], days[-1]))
    return replayed, execute(defs, DAILY_JOB, f"replay {destination}", instance, log_level, asset_selection=[key],
                             tags=tags)


def _replay(args: argparse.Namespace) -> int:
    instance = prepared_instance(settings.warehouse_url())
    from cdp_assets.definitions import build_definitions  # loading it builds the definitions: after the checks

    defs = build_definitions()
    if settings.egress_mode() == "dry_run":
        check_destination(defs, args.destination)
        print(f"{args.destination}: CDP_EGRESS_MODE is dry_run, so nothing was ever sent or refused by the platform; "
              "the dead letters of a dry-run plan are records that could not be turned into a valid request. Fix "
              "the data or the configuration that made them fail and re-run their day (`cdp-assets run --date "
              "YYYY-MM-DD`): the plan is rebuilt and they leave activation.dead_letters. Replay is for the dead "
              "letters of live sends.")
        return 0
    replayed, outcome = replay_dead_letters(defs, args.destination, instance)
    if outcome is None:
        print(f"{args.destination}: no dead letters to replay")
        return 0
    print(f"{args.destination}: {sum(replayed.values())} dead letters back to pending "
          f"({', '.join(f'{p}: {n}' for p, n in replayed.items())})")
    report(outcome)
    return 0 if outcome.ok else 1


def check_destination(defs: dg.Definitions, destination: str) -> None:
    """Refuse an unknown destination, naming the enabled ones."""
    known = sorted(k.path[1] for k in defs.resolve_all_asset_keys() if k.path[0] == "activation")
    if destination not in known:
        raise settings.ConfigError(f"no enabled destination in destinations.yaml or sync in config/syncs/ named "
                                   f"{destination!r}; enabled: {', '.join(known)}")


def _generate(args: argparse.Namespace) -> int:
    from cdp_assets.sample_data import write_crm_extracts, write_ga4_sample

    landing = Path(args.landing_dir or settings.landing_dir())
    end = args.end or settings.yesterday()
    try:
        (landing / "crm").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise settings.ConfigError(f"the landing folder {landing} cannot be created: {error.strerror}") from None
    counts = write_crm_extracts(landing, args.people, end, args.days, args.seed)
    ga4_rows = write_ga4_sample(landing, end - timedelta(days=args.days - 1), end, args.seed)
    print(f"wrote {counts['contacts']} contact rows and {counts['orders']} order rows for {counts['people']} people "
          f"to {landing / 'crm'}, and {ga4_rows} GA4 report rows to {landing / 'ga4'}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from cdp_assets.demo import run_demo

    return run_demo(args.people, args.days)


class Parser(argparse.ArgumentParser):
    """argparse, with its mistakes on one line (no usage block above them)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: {message}", file=sys.stderr)
        sys.exit(2)


def a_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; write it as YYYY-MM-DD") from None


def at_least_one(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number of at least 1")
    return int(text)


def parser() -> Parser:
    top = Parser(prog="cdp-assets", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="materialize the whole graph for one day through Dagster")
    run.add_argument("--date", type=a_day, help="YYYY-MM-DD (default: yesterday in CDP_TIMEZONE)")
    run.set_defaults(handler=_run)

    demo = commands.add_parser("demo", help="generate sample data in data/demo/ and run the pipeline on it, in dry run")
    demo.add_argument("--people", type=at_least_one, default=3000)
    demo.add_argument("--days", type=at_least_one, default=30)
    demo.set_defaults(handler=_demo)

    backfill = commands.add_parser("ga4-backfill", help="materialize every GA4 report for a date range, one run per "
                                                        "week-long chunk (as a backfill from the UI does)")
    backfill.add_argument("--from", dest="first", type=a_day, required=True, help="YYYY-MM-DD")
    backfill.add_argument("--to", type=a_day, help="YYYY-MM-DD (default: yesterday in CDP_TIMEZONE)")
    backfill.set_defaults(handler=_ga4_backfill)

    replay = commands.add_parser("replay", help="send a destination's dead letters again, after the data or "
                                                 "the configuration that made them fail was fixed")
    replay.add_argument("--destination", required=True, help="a destination name from destinations.yaml")
    replay.set_defaults(handler=_replay)

    add_commands(commands, prepared_instance)

    generate = commands.add_parser("generate", help="write deterministic messy sample data to the landing folder")
    generate.add_argument("--people", type=at_least_one, default=3000)
    generate.add_argument("--days", type=at_least_one, default=30)
    generate.add_argument("--end", type=a_day, help="last day of orders (default: yesterday)")
    generate.add_argument("--seed", type=int, default=42)
    generate.add_argument("--landing-dir", help="default: CDP_LANDING_DIR or data/landing")
    generate.set_defaults(handler=_generate)
    return top


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as stop:  # --help (0) or a mistake argparse reported in one line (2)
        return int(stop.code or 0)
    try:
        return args.handler(args)
    except settings.ConfigError as error:
        print(f"cdp-assets: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # a failure nobody foresaw still gets one line, never a traceback
        first = (str(error).strip().splitlines() or [""])[0]
        print(f"cdp-assets: {type(error).__name__}: {first}", file=sys.stderr)
        return 1


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
