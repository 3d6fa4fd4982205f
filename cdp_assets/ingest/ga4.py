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
"""

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pyarrow as pa
from google.analytics.data_v1beta.types import MetricType, RunReportResponse
from google.api_core import exceptions as google_errors

from cdp_assets import settings
from cdp_assets.ingest.ga4_reports import Ga4Report, column_name
from cdp_assets.ingest.landing import LandingZone
from cdp_assets.resources.ga4 import Ga4Page, Ga4QuotaExhausted, GA4Resource, Ga4Source
from cdp_assets.resources.state import StateTable
from cdp_assets.resources.warehouse import WarehouseResource

# A backfill chunk: a week reads in one request for a typical property and costs one chunk at most
# when the quota stops it.
DAYS_PER_RUN = 7
FETCHES = StateTable(
    name="raw.ga4_fetches",
    create_sql=(
        "CREATE TABLE raw.ga4_fetches (report VARCHAR NOT NULL, partition_date DATE NOT NULL, "
        "source VARCHAR, run_id VARCHAR, fetched_at TIMESTAMP, row_count BIGINT, content_sha256 VARCHAR, "
        "changed BOOLEAN, tokens_consumed BIGINT, chunk_start DATE, chunk_end DATE, chunk_tokens_consumed BIGINT, "
        "tokens_per_day_remaining BIGINT, tokens_per_hour_remaining BIGINT, data_loss_from_other_row BOOLEAN, "
        "subject_to_thresholding BOOLEAN, samples_read_count BIGINT, sampling_space_size BIGINT, "
        "time_zone VARCHAR, currency_code VARCHAR, empty_reason VARCHAR, restricted_metrics VARCHAR, "
        "PRIMARY KEY (report, partition_date))"
    ),
)


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


@dataclass
class Fetch:
    """What the pages of one range request held, gathered across pages."""

    report: Ga4Report
    source: str = ""
    metric_types: dict[str, int] = field(default_factory=dict)
    rows_by_day: dict[date, list[tuple]] = field(default_factory=lambda: defaultdict(list))
    last_day: date | None = None
    requests: int = 0
    tokens_consumed: int = 0
    remaining: dict[str, int | None] = field(default_factory=dict)
    data_loss: bool = False
    thresholded: bool = False
    samples_read: int | None = None
    sampling_space: int | None = None
    time_zone: str | None = None
    currency: str | None = None
    empty_reason: str | None = None
    restricted: set[str] = field(default_factory=set)

    def add(self, page: Ga4Page) -> None:
        response = page.response
        self.source = page.source
        self.requests += 1
        headers = [h.name for h in response.dimension_headers]
        if headers != list(self.report.dimensions):
            raise ValueError(f"GA4 answered dimensions {headers}, but report {self.report.name} asked for "
                             f"{list(self.report.dimensions)}")
        self.metric_types = {h.name: int(h.type_) for h in response.metric_headers}
        date_index = headers.index("date")
        raw = RunReportResponse.pb(response)
        for row in raw.rows:
            dims = [v.value for v in row.dimension_values]
            day = datetime.strptime(dims[date_index], "%Y%m%d").date()
            self.rows_by_day[day].append((*dims, *(v.value for v in row.metric_values)))
            self.last_day = day
        self._add_metadata(response)

    def _add_metadata(self, response: RunReportResponse) -> None:
        meta = response.metadata
        self.data_loss |= bool(meta.data_loss_from_other_row)
        self.thresholded |= bool(meta.subject_to_thresholding)
        for sampling in meta.sampling_metadatas:
            self.samples_read = int(sampling.samples_read_count)
            self.sampling_space = int(sampling.sampling_space_size)
        self.time_zone = meta.time_zone or self.time_zone
        self.currency = meta.currency_code or self.currency
        self.empty_reason = meta.empty_reason or self.empty_reason
        restriction = meta.schema_restriction_response
        for restricted in restriction.active_metric_restrictions if restriction else []:
            self.restricted.add(restricted.metric_name)
        quota = response.property_quota
        self.tokens_consumed += int(quota.tokens_per_day.consumed)
        self.remaining = {"tokens_per_day": _remaining(quota.tokens_per_day),
                          "tokens_per_hour": _remaining(quota.tokens_per_hour)}

    @property
    def sampled(self) -> bool:
        return self.samples_read is not None and self.sampling_space is not None \
            and self.samples_read < self.sampling_space


def _remaining(status) -> int | None:
    return int(status.remaining) if status.consumed or status.remaining else None


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def share_tokens(total: int, days: int) -> list[int]:
    """A range request's tokens shared equally among its days; the shares add up to the total."""
    base, extra = divmod(total, days)
    return [base + (1 if n < extra else 0) for n in range(days)]


def sql_type(metric_type: int) -> str:
    return "BIGINT" if metric_type == MetricType.TYPE_INTEGER else "DOUBLE"


def content_hash(rows: list[tuple]) -> str:
    return hashlib.sha256(json.dumps(sorted(rows)).encode("utf-8")).hexdigest()


def _columns(report: Ga4Report, metric_types: dict[str, int]) -> list[tuple[str, str]]:
    dims = [(column_name(d), "DATE" if d == "date" else "VARCHAR") for d in report.dimensions]
    metrics = [(column_name(m), sql_type(metric_types.get(m, MetricType.TYPE_FLOAT))) for m in report.metrics]
    return [("property_id", "VARCHAR"), *dims, *metrics, ("currency_code", "VARCHAR"), ("_source", "VARCHAR"),
            ("_fetched_at", "TIMESTAMP")]


def ensure_table(warehouse: WarehouseResource, conn, report: Ga4Report, metric_types: dict[str, int]) -> None:
    columns = _columns(report, metric_types)
    if not warehouse.table_exists(conn, report.table):
        warehouse.run(conn, f"CREATE TABLE {report.table} ({', '.join(f'{n} {t}' for n, t in columns)})")
        return
    existing = [name for name, _ in warehouse.columns(conn, report.table)]
    if existing != [name for name, _ in columns]:
        raise ValueError(
            f"{report.table} has columns {existing}, but report {report.name} now produces "
            f"{[n for n, _ in columns]}; drop {report.table} and backfill its partitions to adopt the new report"
        )


def _arrow(report: Ga4Report, fetch: Fetch, days: Iterable[date]) -> pa.Table:
    columns = _columns(report, fetch.metric_types)[1:1 + len(report.dimensions) + len(report.metrics)]
    rows = [row for day in days for row in fetch.rows_by_day.get(day, [])]
    arrays = []
    for index, (name, kind) in enumerate(columns):
        values = [row[index] for row in rows]
        try:
            if kind == "DATE":
                arrays.append(pa.array([datetime.strptime(v, "%Y%m%d").date() for v in values], pa.date32()))
            elif kind == "BIGINT":
                arrays.append(pa.array([int(v) for v in values], pa.int64()))
            elif kind == "DOUBLE":
                arrays.append(pa.array([float(v) for v in values], pa.float64()))
            else:
                arrays.append(pa.array(values, pa.string()))
        except ValueError as error:
            raise ValueError(f"{fetch.source}: report {report.name} column {name} ({kind}) holds a value that is "
                             f"not one: {error}") from None
    return pa.table(arrays, names=[name for name, _ in columns])


@dataclass(frozen=True)
class DayResult:
    day: date
    rows: int
    tokens: int
    changed: bool


def save_days(
    warehouse: WarehouseResource, report: Ga4Report, fetch: Fetch, days: list[date], chunk: tuple[date, date],
    property_id: str, run_id: str,
) -> list[DayResult]:
    """Replace `days` (contiguous) with the fetched rows and log each day's fetch, in one transaction."""
    if not days:
        return []
    fetched_at = datetime.now(UTC).replace(tzinfo=None)
    tokens = share_tokens(fetch.tokens_consumed, len(days_between(*chunk)))
    token_of = dict(zip(days_between(*chunk), tokens, strict=True))
    results = []
    with warehouse.begin() as conn:
        FETCHES.ensure(warehouse, conn)
        ensure_table(warehouse, conn, report, fetch.metric_types)
        bounds = {"first": days[0], "last": days[-1], "report": report.name}
        previous = dict(warehouse.run(
            conn, "SELECT partition_date, content_sha256 FROM raw.ga4_fetches WHERE report = :report "
                  "AND partition_date BETWEEN :first AND :last", bounds).fetchall())
        warehouse.run(conn, f"DELETE FROM {report.table} WHERE date BETWEEN :first AND :last", bounds)
        warehouse.append_arrow(conn, report.table, _arrow(report, fetch, days), constants={
            "property_id": property_id, "currency_code": fetch.currency, "_source": fetch.source,
            "_fetched_at": fetched_at,
        })
        warehouse.run(conn, "DELETE FROM raw.ga4_fetches WHERE report = :report "
                            "AND partition_date BETWEEN :first AND :last", bounds)
        for day in days:
            rows = fetch.rows_by_day.get(day, [])
            digest = content_hash(rows)
            old = previous.get(day)
            results.append(DayResult(day, len(rows), token_of[day], old != digest))
            warehouse.run(conn, (
                "INSERT INTO raw.ga4_fetches VALUES (:report, :day, :source, :run_id, :fetched_at, :rows, :digest, "
                ":changed, :tokens, :chunk_start, :chunk_end, :chunk_tokens, :day_left, :hour_left, :data_loss, "
                ":thresholded, :samples_read, :sampling_space, :time_zone, :currency, :empty_reason, :restricted)"
            ), {
                "report": report.name, "day": day, "source": fetch.source, "run_id": run_id,
                "fetched_at": fetched_at, "rows": len(rows), "digest": digest, "changed": old != digest,
                "tokens": token_of[day], "chunk_start": chunk[0], "chunk_end": chunk[1],
                "chunk_tokens": fetch.tokens_consumed, "day_left": fetch.remaining.get("tokens_per_day"),
                "hour_left": fetch.remaining.get("tokens_per_hour"), "data_loss": fetch.data_loss,
                "thresholded": fetch.thresholded, "samples_read": fetch.samples_read,
                "sampling_space": fetch.sampling_space, "time_zone": fetch.time_zone, "currency": fetch.currency,
                "empty_reason": fetch.empty_reason or None,
                "restricted": ",".join(sorted(fetch.restricted)) or None,
            })
    return results


def _day_before_rows(warehouse: WarehouseResource, report: Ga4Report, day: date) -> int | None:
    with warehouse.begin() as conn:
        if not warehouse.table_exists(conn, FETCHES.name):
            return None
        return warehouse.scalar(conn, "SELECT row_count FROM raw.ga4_fetches WHERE report = :r AND partition_date = :d",
                                {"r": report.name, "d": day})


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
        pool="ga4_api",
        check_specs=[dg.AssetCheckSpec(rule.name, asset=key, description=rule.description, blocking=rule.blocking)
                     for rule in CHECKS],
        metadata={"dagster/table_name": report.table, "ga4_report": report.name},
    )
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource, ga4: GA4Resource,
               landing: LandingZone) -> dg.MaterializeResult:
        key_range = context.partition_key_range
        start, end = date.fromisoformat(key_range.start), date.fromisoformat(key_range.end)
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
        all_days = days_between(start, end)
        property_id = str(ga4.property_id) if ga4.configured else "sample"

        def save(days: list[date]) -> list[DayResult]:
            try:
                return save_days(warehouse, report, fetch, days, (start, end), property_id, context.run_id)
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
        rows_before = _day_before_rows(warehouse, report, start - timedelta(days=1))
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
