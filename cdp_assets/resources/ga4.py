"""Google Analytics 4 Data API (`GA4_PROPERTY_ID`, `GA4_API_URL`) through the real `google-analytics-data` client.

A report for a date range is read with `run_report`, ordered by its dimensions (date first) and paged
by limit/offset until `row_count` rows have arrived; the API caps a page at 250,000 rows whatever is
asked. Every request returns the property's quota. A 429 or 503 is retried with exponential backoff
(the client has no retry of its own), except a 429 that says a token quota is exhausted: retrying that
only burns the hour, so it stops at once with the time the quota resets.

Credentials are Google's application-default credentials (or `GOOGLE_APPLICATION_CREDENTIALS`).
`GA4_API_URL` points the client at another endpoint over REST with anonymous credentials, which is how
tests and local runs talk to a fake server. Without a property id the sample written by
`cdp-assets generate` is read instead and no client is built.
"""

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import dagster as dg
from google.analytics.data_v1beta.types import (
    DateRange,
    Dimension,
    DimensionHeader,
    DimensionValue,
    Metric,
    MetricHeader,
    MetricValue,
    OrderBy,
    ResponseMetaData,
    Row,
    RunReportRequest,
    RunReportResponse,
)
from google.api_core import exceptions as google_errors
from google.api_core.retry import Retry

from cdp_assets import settings
from cdp_assets.ingest.ga4_reports import METRIC_TYPES, Ga4Report

MAX_PAGE_ROWS = 250_000
# Daily quotas reset at midnight Pacific time; hourly ones within the hour.
QUOTA_ZONE = ZoneInfo("America/Los_Angeles")
TOKEN_QUOTAS = ("tokens_per_day", "tokens_per_hour", "tokens_per_project_per_hour")
EXHAUSTED = re.compile(r"exhausted\b.*\b(tokens|server errors)\b", re.IGNORECASE)


class Ga4QuotaExhausted(RuntimeError):
    """The property's quota is spent; nothing more can be read until `resets_at`."""

    def __init__(self, quota: str, resets_at: datetime, detail: str) -> None:
        super().__init__(detail)
        self.quota = quota
        self.resets_at = resets_at


def quota_reset(quota: str, now: datetime) -> datetime:
    """When `quota` (e.g. tokens_per_day) is refilled: next Pacific midnight for daily quotas, else the hour."""
    if "day" in quota:
        local = now.astimezone(QUOTA_ZONE)
        return datetime.combine(local.date() + timedelta(days=1), time(), QUOTA_ZONE).astimezone(UTC)
    return (now + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)


def exhausted_quota(response: RunReportResponse) -> str | None:
    """The name of the first token quota the response shows at zero remaining, if any."""
    quota = response.property_quota
    for name in TOKEN_QUOTAS:
        status = getattr(quota, name)
        if (status.consumed or status.remaining) and status.remaining <= 0:
            return name
    return None


def is_quota_stop(error: Exception) -> bool:
    return isinstance(error, google_errors.TooManyRequests) and bool(EXHAUSTED.search(error.message or ""))


def is_transient(error: Exception) -> bool:
    """429 (concurrency, bursts) and 503 are worth another try; an exhausted token quota is not."""
    if isinstance(error, google_errors.ServiceUnavailable):
        return True
    return isinstance(error, google_errors.TooManyRequests) and not is_quota_stop(error)


@dataclass(frozen=True)
class Ga4Page:
    """One `run_report` answer and where it came from (`ga4:properties/123` or `sample:<file>`)."""

    response: RunReportResponse
    source: str


class Ga4Source(Protocol):
    """Something that answers a report for a date range, page by page."""

    label: str

    def pages(self, report: Ga4Report, start: date, end: date) -> Iterator[Ga4Page]: ...


class Ga4ApiSource:
    def __init__(self, client, property_id: str, page_size: int, retry: Retry, timeout: float) -> None:
        self.client = client
        self.property = f"properties/{property_id.removeprefix('properties/')}"
        self.label = f"ga4:{self.property}"
        self.page_size = page_size
        self.retry = retry
        self.timeout = timeout

    def request(self, report: Ga4Report, start: date, end: date, offset: int) -> RunReportRequest:
        return RunReportRequest(
            property=self.property,
            dimensions=[Dimension(name=d) for d in report.dimensions],
            metrics=[Metric(name=m) for m in report.metrics],
            date_ranges=[DateRange(start_date=start.isoformat(), end_date=end.isoformat())],
            dimension_filter=report.filter_expression,
            # Offset paging needs a stable order; date first lets a stopped read keep its whole days.
            order_bys=[OrderBy(dimension=OrderBy.DimensionOrderBy(dimension_name=d)) for d in report.dimensions],
            limit=self.page_size,
            offset=offset,
            return_property_quota=True,
        )

    def pages(self, report: Ga4Report, start: date, end: date) -> Iterator[Ga4Page]:
        offset = 0
        while True:
            try:
                response = self.client.run_report(self.request(report, start, end, offset), retry=self.retry,
                                                  timeout=self.timeout)
            except google_errors.TooManyRequests as error:
                if not is_quota_stop(error):
                    raise
                quota = "tokens_per_day" if "per day" in (error.message or "").lower() else "tokens_per_hour"
                raise Ga4QuotaExhausted(quota, quota_reset(quota, datetime.now(UTC)),
                                        f"GA4 refused {self.property}: {error.message}") from None
            yield Ga4Page(response, self.label)
            offset += len(response.rows)
            if offset >= response.row_count or not response.rows:
                return
            spent = exhausted_quota(response)
            if spent:
                raise Ga4QuotaExhausted(spent, quota_reset(spent, datetime.now(UTC)),
                                        f"{self.property} has 0 {spent.replace('_', ' ')} left after "
                                        f"{offset:,} of {response.row_count:,} rows")


class Ga4SampleSource:
    """The sample `cdp-assets generate` writes (`<landing>/ga4/<report>.jsonl`), answered as the API would."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.label = f"sample:{folder}"

    def pages(self, report: Ga4Report, start: date, end: date) -> Iterator[Ga4Page]:
        path = self.folder / f"{report.name}.jsonl"
        if not path.is_file():
            raise FileNotFoundError(
                f"GA4_PROPERTY_ID is not set, so {report.table} reads the sample {path}, which does not exist. "
                "Set GA4_PROPERTY_ID (and Google credentials) to read your property, or write the sample with "
                "`cdp-assets generate`."
            )
        first, last = start.strftime("%Y%m%d"), end.strftime("%Y%m%d")
        rows = []
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}:{number} is not a JSON object: {error}") from None
                if not first <= record.get("date", "") <= last:
                    continue
                missing = [f for f in (*report.dimensions, *report.metrics) if f not in record]
                if missing:
                    raise ValueError(f"{path}:{number} has no {', '.join(missing)}, which report "
                                     f"{report.name} asks for")
                rows.append(record)
        rows.sort(key=lambda r: [r[d] for d in report.dimensions])
        response = RunReportResponse(
            dimension_headers=[DimensionHeader(name=d) for d in report.dimensions],
            metric_headers=[MetricHeader(name=m, type_=METRIC_TYPES.get(m, "TYPE_FLOAT")) for m in report.metrics],
            rows=[Row(dimension_values=[DimensionValue(value=r[d]) for d in report.dimensions],
                      metric_values=[MetricValue(value=r[m]) for m in report.metrics]) for r in rows],
            row_count=len(rows),
            metadata=ResponseMetaData(currency_code="USD", time_zone=settings.timezone().key),
        )
        yield Ga4Page(response, self.label)


class GA4Resource(dg.ConfigurableResource):
    """The GA4 property whose reports are ingested (`GA4_PROPERTY_ID`; `GA4_API_URL` for another endpoint)."""

    property_id: str | None = None
    api_url: str | None = None
    page_size: int = MAX_PAGE_ROWS
    timeout_seconds: float = 60.0
    retry_initial_seconds: float = 1.0
    retry_maximum_seconds: float = 60.0
    retry_deadline_seconds: float = 600.0

    @property
    def configured(self) -> bool:
        return bool(self.property_id)

    def client(self):
        from google.analytics.data_v1beta import BetaAnalyticsDataClient

        if self.api_url:
            from google.auth.credentials import AnonymousCredentials

            return BetaAnalyticsDataClient(credentials=AnonymousCredentials(), transport="rest",
                                           client_options={"api_endpoint": self.api_url})
        return BetaAnalyticsDataClient()

    def retry(self, on_retry: Callable[[Exception], None] | None = None) -> Retry:
        return Retry(predicate=is_transient, initial=self.retry_initial_seconds, maximum=self.retry_maximum_seconds,
                     multiplier=2.0, timeout=self.retry_deadline_seconds, on_error=on_retry)

    def source(self, sample_dir: Path, on_retry: Callable[[Exception], None] | None = None) -> Ga4Source:
        """The property through the API when a property id is set, else the sample in `sample_dir`."""
        if not self.configured:
            return Ga4SampleSource(sample_dir)
        page_size = max(1, min(self.page_size, MAX_PAGE_ROWS))
        return Ga4ApiSource(self.client(), str(self.property_id), page_size, self.retry(on_retry),
                            self.timeout_seconds)
