"""Where GA4 report rows are kept: `raw.ga4_<report>` tables, replaced a day range at a time, and the fetch
log `raw.ga4_fetches` (rows, content hash, tokens and GA4's data-quality flags per report and day).

What a range request's pages held is gathered in a `Fetch`; `save_days` replaces those days and logs each
day's fetch in one transaction, so re-running a day or a range gives the same rows, never more.
"""

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
from google.analytics.data_v1beta.types import MetricType, RunReportResponse

from cdp_assets.ingest.ga4_reports import METRIC_TYPES, Ga4Report, column_name
from cdp_assets.resources.ga4 import Ga4Page
from cdp_assets.resources.state import StateTable
from cdp_assets.resources.warehouse import WarehouseResource

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


def known_metric_types(report: Ga4Report) -> dict[str, int]:
    """The types the API reports for the report's metrics, as far as the standard names tell them: what an
    empty table is created with before anything was fetched."""
    return {m: int(MetricType[METRIC_TYPES.get(m, "TYPE_FLOAT")]) for m in report.metrics}


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


def day_before_rows(warehouse: WarehouseResource, report: Ga4Report, day: date) -> int | None:
    with warehouse.begin() as conn:
        if not warehouse.table_exists(conn, FETCHES.name):
            return None
        return warehouse.scalar(conn, "SELECT row_count FROM raw.ga4_fetches WHERE report = :r AND partition_date = :d",
                                {"r": report.name, "d": day})


def data_through(warehouse: WarehouseResource, reports: Iterable[Ga4Report]) -> date | None:
    """The last day every report has been fetched up to (None before any fetch): how far the GA4 data reaches."""
    names = sorted(r.name for r in reports)
    with warehouse.begin() as conn:
        if not names or not warehouse.table_exists(conn, FETCHES.name):
            return None
        listed = ", ".join(f"'{n}'" for n in names)  # report names are validated identifiers
        rows = warehouse.run(conn, f"SELECT report, max(partition_date) FROM {FETCHES.name} "
                                   f"WHERE report IN ({listed}) GROUP BY report").fetchall()
    if len(rows) < len(names):
        return None
    return min(day for _, day in rows)
