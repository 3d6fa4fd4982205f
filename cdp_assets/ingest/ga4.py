"""`raw/ga4_<report>`: one daily-partitioned asset per GA4 report, partition = property-local date.

A run covers a partition range (a backfill chunk of up to `DAYS_PER_RUN` days, or one day) and reads it
with one paged range request, so a backfill costs a request per chunk, not per day. The range's rows
replace the range's partitions in one transaction, so re-running gives the same rows, never more.
If the property's quota runs out part-way, the whole days already read are kept, and the run fails
naming the partitions saved, those left and when the quota resets.

Every partition's fetch is logged in `raw.ga4_fetches`: rows, a content hash (so a restated day that did
not change says so), the tokens it cost, and the response metadata GA4 flags data quality with. Those
flags become this asset's checks: rows rolled into "(other)" fail a blocking check; sampling,
thresholding, an empty day after a day with data, and a property time zone other than CDP_TIMEZONE warn.

GA4 is optional: without GA4_PROPERTY_ID and without the sample file, the asset creates its empty table (so
the marts read no traffic and keep every order as unattributed), records `source: not configured` and passes
its checks, saying why. A configured property that refuses (403), runs out of quota or stays down fails
this step alone: it runs in the day's sources run, so nothing else waits on it.
"""

from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg
import requests
from google.api_core import exceptions as google_errors

from cdp_assets import settings
from cdp_assets.checks.gates import run_day
from cdp_assets.ingest.ga4_reports import Ga4Report
from cdp_assets.ingest.ga4_store import (
    DayResult,
    Fetch,
    data_through,
    day_before_rows,
    days_between,
    ensure_table,
    known_metric_types,
    save_days,
)
from cdp_assets.ingest.landing import LandingZone
from cdp_assets.resources.ga4 import Ga4QuotaExhausted, GA4Resource, Ga4Source
from cdp_assets.resources.warehouse import WarehouseResource, pool_for
from cdp_assets.schedules import SOURCE_TAGS
from cdp_assets.sources import latest_not_configured, not_configured

# A backfill chunk: a week reads in one request for a typical property and costs one chunk at most
# when the quota stops it.
DAYS_PER_RUN = 7
WHAT_TO_SET = ("set GA4_PROPERTY_ID (and Google credentials) to read your property, or write the sample with "
               "`cdp-assets generate`")


@dataclass(frozen=True)
class CheckRule:
    name: str
    description: str
    severity: dg.AssetCheckSeverity
    blocking: bool = False


CHECKS = (
    CheckRule("no_data_loss_from_other_row",
              "GA4 did not roll high-cardinality rows into \"(other)\" (dataLossFromOtherRow) on any fetched day.",
              dg.AssetCheckSeverity.ERROR, blocking=True),
    CheckRule("not_sampled", "No fetched day was answered from a sample (samplesReadCount < samplingSpaceSize).",
              dg.AssetCheckSeverity.WARN),
    CheckRule("not_thresholded", "No fetched day had rows withheld by GA4's privacy thresholds.",
              dg.AssetCheckSeverity.WARN),
    CheckRule("no_empty_day_after_data", "No fetched day is empty when the day before it had rows.",
              dg.AssetCheckSeverity.WARN),
    CheckRule("time_zone_is_cdp_timezone",
              "The property reports dates in CDP_TIMEZONE, so partitions and GA4 dates are the same days.",
              dg.AssetCheckSeverity.WARN),
)


def empty_days_after_data(results: list[DayResult], rows_before_first: int | None) -> list[date]:
    """Days with no rows whose previous day had rows (from this run, or the fetch log for the first day)."""
    found, previous = [], rows_before_first
    for result in results:
        if result.rows == 0 and previous:
            found.append(result.day)
        previous = result.rows
    return found


def _span(days: list[date]) -> str:
    if not days:
        return "none"
    if len(days) == 1:
        return days[0].isoformat()
    return f"{days[0].isoformat()}..{days[-1].isoformat()} ({len(days)} partitions)"


def check_results(key: dg.AssetKey, fetch: Fetch, results: list[DayResult],
                  rows_before_first: int | None) -> list[dg.AssetCheckResult]:
    days = [r.day for r in results]
    empty = empty_days_after_data(results, rows_before_first)
    expected_zone = settings.timezone().key
    outcomes = {
        "no_data_loss_from_other_row": (not fetch.data_loss, {"days": _span(days)}),
        "not_sampled": (not fetch.sampled, {"samples_read_count": fetch.samples_read,
                                            "sampling_space_size": fetch.sampling_space}),
        "not_thresholded": (not fetch.thresholded, {"days": _span(days)}),
        "no_empty_day_after_data": (not empty, {"empty_days": ", ".join(d.isoformat() for d in empty) or "none"}),
        "time_zone_is_cdp_timezone": (fetch.time_zone in (None, expected_zone),
                                      {"property_time_zone": fetch.time_zone or "not reported",
                                       "cdp_timezone": expected_zone}),
    }
    return [
        dg.AssetCheckResult(asset_key=key, check_name=rule.name, passed=outcomes[rule.name][0], severity=rule.severity,
                            metadata={k: v for k, v in outcomes[rule.name][1].items() if v is not None})
        for rule in CHECKS
    ]


def _partition_table(results: list[DayResult]) -> dg.MetadataValue:
    lines = ["| partition | rows | tokens | changed |", "|---|---:|---:|---|"]
    lines += [f"| {r.day.isoformat()} | {r.rows} | {r.tokens} | {'yes' if r.changed else 'no'} |" for r in results]
    return dg.MetadataValue.md("\n".join(lines))


def quota_message(report: Ga4Report, stop: Ga4QuotaExhausted, saved: list[date], left: list[date]) -> str:
    pacific = "midnight Pacific time" if "day" in stop.quota else "the top of the hour"
    return (f"GA4 quota exhausted ({stop.quota}) while reading {report.table}: {stop}. "
            f"Saved: {_span(saved)}. Left: {_span(left)}. The quota resets at "
            f"{stop.resets_at:%Y-%m-%d %H:%M} UTC ({pacific}); re-run the failed partitions after that. "
            "Nothing was retried, so no more quota was spent.")


def read_range(source: Ga4Source, report: Ga4Report, start: date, end: date) -> tuple[Fetch, Ga4QuotaExhausted | None]:
    """Read the range page by page; a quota stop returns what arrived before it along with the stop."""
    fetch = Fetch(report=report, source=source.label)
    try:
        for page in source.pages(report, start, end):
            fetch.add(page)
    except Ga4QuotaExhausted as stop:
        return fetch, stop
    return fetch, None


def _ensure_report_table(warehouse: WarehouseResource, report: Ga4Report) -> None:
    """The report's table exists, empty if nothing was ever read: the marts read it whether GA4 is configured,
    down since its first day, or loaded."""
    with warehouse.begin() as conn:
        warehouse.ensure_schemas(conn, ["raw"])
        if not warehouse.table_exists(conn, report.table):
            ensure_table(warehouse, conn, report, known_metric_types(report))


def _not_configured(warehouse: WarehouseResource, report: Ga4Report, key: dg.AssetKey,
                    days: int) -> dg.MaterializeResult:
    """Checks that pass saying why: nothing arrived, so there is nothing to judge."""
    with warehouse.begin() as conn:
        schema = warehouse.column_schema(conn, report.table)
    source = not_configured(WHAT_TO_SET)
    return dg.MaterializeResult(
        metadata={"source": source, "dagster/row_count": 0, "dagster/column_schema": schema, "partitions": days,
                  "partitions_changed": 0, "requests": 0, "retries": 0, "tokens_consumed": 0},
        check_results=[dg.AssetCheckResult(asset_key=key, check_name=rule.name, passed=True, severity=rule.severity,
                                           metadata={"skipped": f"GA4 is {source}"}) for rule in CHECKS])


def ga4_report_asset(report: Ga4Report, partitions_def: dg.PartitionsDefinition, dialect: str) -> dg.AssetsDefinition:
    """One asset for one report in `ga4_reports.yaml`."""
    key = dg.AssetKey(report.asset_key)

    @dg.asset(
        key=key,
        group_name="raw",
        description=f"{report.description} GA4 Data API rows, one partition per property-local day, "
                    f"replaced on every run (dimensions: {', '.join(report.dimensions)}; metrics: "
                    f"{', '.join(report.metrics)}).",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=DAYS_PER_RUN),
        kinds={"python", "google", dialect},
        owners=["team:data-eng"],
        pool=pool_for(dialect, "ga4_api"),
        tags=SOURCE_TAGS["ga4"],
        check_specs=[dg.AssetCheckSpec(rule.name, asset=key, description=rule.description, blocking=rule.blocking)
                     for rule in CHECKS],
        metadata={"dagster/table_name": report.table, "ga4_report": report.name},
    )
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource, ga4: GA4Resource,
               landing: LandingZone) -> dg.MaterializeResult:
        key_range = context.partition_key_range
        start, end = date.fromisoformat(key_range.start), date.fromisoformat(key_range.end)
        _ensure_report_table(warehouse, report)
        if not ga4.configured and not (landing.ga4_dir / f"{report.name}.jsonl").is_file():
            context.log.info(f"GA4 is not configured for {report.table}: {WHAT_TO_SET}")
            return _not_configured(warehouse, report, key, len(days_between(start, end)))
        retries: list[Exception] = []

        def on_retry(error: Exception) -> None:
            retries.append(error)
            context.log.warning(f"GA4 answered {getattr(error, 'code', '?')} ({type(error).__name__}); "
                                "retrying with exponential backoff")

        source = ga4.source(landing.ga4_dir, on_retry=on_retry)
        try:
            fetch, stop = read_range(source, report, start, end)
        except (FileNotFoundError, ValueError) as error:  # no sample, or a sample that is not the API's shape
            raise dg.Failure(str(error)) from None
        except google_errors.RetryError as error:
            raise dg.Failure(f"GA4 kept failing for {report.table} {start}..{end} until the retry deadline "
                             f"({ga4.retry_deadline_seconds:.0f} s): {error.cause or error}") from None
        except google_errors.GoogleAPICallError as error:
            raise dg.Failure(f"GA4 refused report {report.name} for {start}..{end}: {error.message}") from None
        except requests.RequestException as error:  # the REST transport could not reach the Data API at all
            raise dg.Failure(f"GA4 could not be reached for report {report.name} ({start}..{end}): "
                             f"{type(error).__name__}") from None
        all_days = days_between(start, end)
        property_id = str(ga4.property_id) if ga4.configured else "sample"

        def save(days: list[date]) -> list[DayResult]:
            try:
                return save_days(warehouse, report, fetch, days, (start, end), property_id, context.run.run_id)
            except ValueError as error:  # a value that is not its column's type, or the report's columns changed
                raise dg.Failure(str(error)) from None

        if stop is not None:
            # Pages come ordered by date, so every day before the last one seen is complete.
            saved = [d for d in all_days if fetch.last_day is not None and d < fetch.last_day]
            left = [d for d in all_days if d not in saved]
            for result in save(saved):
                context.log_event(dg.AssetMaterialization(asset_key=key, partition=result.day.isoformat(),
                                                          metadata={"rows": result.rows, "tokens": result.tokens}))
            raise dg.Failure(quota_message(report, stop, saved, left), allow_retries=False)
        rows_before = day_before_rows(warehouse, report, start - timedelta(days=1))
        results = save(all_days)
        with warehouse.begin() as conn:
            schema = warehouse.column_schema(conn, report.table)
        rows = sum(r.rows for r in results)
        metadata = {
            "source": "ga4" if ga4.configured else "sample",
            "source_detail": fetch.source,
            "dagster/row_count": rows,
            "dagster/column_schema": schema,
            "partitions": len(results),
            "partitions_changed": sum(r.changed for r in results),
            "requests": fetch.requests,
            "retries": len(retries),
            "tokens_consumed": fetch.tokens_consumed,
            "per_partition": _partition_table(results),
        }
        if fetch.remaining.get("tokens_per_day") is not None:
            metadata["tokens_per_day_remaining"] = fetch.remaining["tokens_per_day"]
        if fetch.currency:
            metadata["currency_code"] = fetch.currency
        return dg.MaterializeResult(metadata=metadata,
                                    check_results=check_results(key, fetch, results, rows_before))

    return _asset


def ga4_freshness(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                  reports: list[Ga4Report]) -> dict:
    """What a table built on GA4 says about the GA4 data it saw: up to which day it reaches and how many days
    short of the run's day that is (GA4 late or failing), or that GA4 is not configured."""
    through = data_through(warehouse, reports)
    if through is not None:
        return {"ga4_data_through": through.isoformat(),
                "ga4_days_behind": max((run_day(context) - through).days, 0)}
    if any(latest_not_configured(context.instance, dg.AssetKey(r.asset_key)) for r in reports):
        return {"ga4_data_through": f"none: GA4 is not configured ({WHAT_TO_SET})"}
    return {"ga4_data_through": "none: no GA4 report has been loaded yet"}
