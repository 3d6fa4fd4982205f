"""GA4 report definitions from `cdp_assets/config/ga4_reports.yaml`, validated on load.

A definition is checked against the Data API's naming rules before any request is made, so a typo
(`sessionsource`, a metric listed as a dimension, a filter on a field the report does not request)
fails the code location's load with the file, the report and the fix, not a run at 6 a.m.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from google.analytics.data_v1beta.types import FilterExpression

from cdp_assets.settings import ConfigError

REPORTS_YAML = Path(__file__).resolve().parent.parent / "config" / "ga4_reports.yaml"
REPORT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,50}$")
STANDARD_NAME = re.compile(r"^[a-z][A-Za-z0-9]*$")
# Custom fields carry their scope as a prefix; the part after ':' is an event parameter, user property
# or event name (letters, digits and underscores, at most 40 characters).
CUSTOM_NAME = re.compile(r"^([A-Za-z]+):([A-Za-z][A-Za-z0-9_]{0,39})$")
DIMENSION_PREFIXES = ("customEvent", "customUser", "customItem")
METRIC_PREFIXES = ("customEvent", "averageCustomEvent", "countCustomEvent", "keyEvents",
                   "sessionKeyEventRate", "userKeyEventRate")
# Connector vendors report these per-request limits; Google's reference does not state them, so
# reports are kept within them rather than discovering the limit through a failed request.
MAX_DIMENSIONS = 9
MAX_METRICS = 10
# Standard metrics and their types, as the Data API's metadata reports them. Used to catch a metric
# listed as a dimension, and to type the sample source's columns as the API would.
METRIC_TYPES = {
    "sessions": "TYPE_INTEGER", "totalUsers": "TYPE_INTEGER", "newUsers": "TYPE_INTEGER",
    "activeUsers": "TYPE_INTEGER", "engagedSessions": "TYPE_INTEGER", "eventCount": "TYPE_INTEGER",
    "keyEvents": "TYPE_INTEGER", "transactions": "TYPE_INTEGER", "ecommercePurchases": "TYPE_INTEGER",
    "screenPageViews": "TYPE_INTEGER", "addToCarts": "TYPE_INTEGER", "checkouts": "TYPE_INTEGER",
    "purchaseRevenue": "TYPE_CURRENCY", "totalRevenue": "TYPE_CURRENCY", "grossPurchaseRevenue": "TYPE_CURRENCY",
    "itemRevenue": "TYPE_CURRENCY", "refundAmount": "TYPE_CURRENCY",
    "engagementRate": "TYPE_FLOAT", "bounceRate": "TYPE_FLOAT", "sessionsPerUser": "TYPE_FLOAT",
    "averageSessionDuration": "TYPE_SECONDS", "userEngagementDuration": "TYPE_SECONDS",
}
# Standard dimensions a CDP reports on; only used to point at a near miss (`sessionsource`).
KNOWN_DIMENSIONS = {
    "date", "dateHour", "sessionSource", "sessionMedium", "sessionSourceMedium", "sessionCampaignName",
    "sessionCampaignId", "sessionDefaultChannelGroup", "sessionManualTerm", "firstUserSource", "firstUserMedium",
    "firstUserCampaignName", "firstUserDefaultChannelGroup", "deviceCategory", "platform", "browser",
    "operatingSystem", "country", "region", "city", "landingPage", "landingPagePlusQueryString", "pagePath",
    "hostName", "eventName", "transactionId", "itemId", "itemName", "streamId", "newVsReturning", "language",
}
# Columns every raw.ga4_<report> table carries besides the report's own fields.
RESERVED_COLUMNS = ("property_id", "currency_code", "_source", "_fetched_at")
KNOWN_SETTINGS = {"name", "description", "dimensions", "metrics", "dimension_filter"}


@dataclass(frozen=True)
class Ga4Report:
    name: str
    description: str
    dimensions: tuple[str, ...]
    metrics: tuple[str, ...]
    dimension_filter: dict | None = None

    @property
    def table(self) -> str:
        return f"raw.ga4_{self.name}"

    @property
    def asset_key(self) -> list[str]:
        """The asset's key path, `raw/ga4_<name>`, the same as its table."""
        return self.table.split(".")

    @property
    def filter_expression(self) -> FilterExpression | None:
        if self.dimension_filter is None:
            return None
        return FilterExpression.from_json(json.dumps(self.dimension_filter))


def column_name(api_name: str) -> str:
    """The warehouse column for a GA4 field: `sessionSource` -> `session_source`, `customEvent:plan` ->
    `custom_event_plan`. Lower case, so PostgreSQL needs no quoting."""
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", api_name.replace(":", "_"))
    return snake.lower()


def _check_name(where: str, name: object, prefixes: tuple[str, ...]) -> str:
    if not isinstance(name, str):
        raise ConfigError(f"{where}: {name!r} is not a field name")
    if STANDARD_NAME.match(name):
        return name
    custom = CUSTOM_NAME.match(name)
    if custom and custom.group(1) in prefixes:
        return name
    if custom:
        raise ConfigError(f"{where}: {name!r} has an unknown scope {custom.group(1)!r}; "
                          f"custom fields start with one of {', '.join(prefixes)}")
    raise ConfigError(f"{where}: {name!r} is not a GA4 API name; standard names are lowerCamelCase "
                      "(sessionSource) and custom ones are scope:parameter (customEvent:plan_tier)")


def _near_miss(name: str, known: set[str]) -> str | None:
    folded = {k.lower(): k for k in known}
    match = folded.get(name.lower())
    return match if match and match != name else None


def _fields(where: str, spec: dict, key: str, prefixes: tuple[str, ...], limit: int) -> tuple[str, ...]:
    values = spec.get(key)
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}: `{key}` must be a non-empty list of GA4 API names")
    names = tuple(_check_name(f"{where}.{key}", v, prefixes) for v in values)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{where}.{key}: {', '.join(duplicates)} listed twice")
    if len(names) > limit:
        raise ConfigError(f"{where}.{key}: {len(names)} {key}, but a request takes at most {limit}; "
                          "split the report in two")
    return names


def _filter_fields(expression: object) -> set[str]:
    """Every `fieldName` a FilterExpression (as YAML) refers to."""
    found = set()
    if isinstance(expression, dict):
        for key, value in expression.items():
            if key == "fieldName" and isinstance(value, str):
                found.add(value)
            else:
                found |= _filter_fields(value)
    elif isinstance(expression, list):
        for item in expression:
            found |= _filter_fields(item)
    return found


def _parse_report(where: str, spec: object) -> Ga4Report:
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a mapping with name, dimensions and metrics")
    unknown = set(spec) - KNOWN_SETTINGS
    if unknown:
        raise ConfigError(f"{where} has unknown settings {', '.join(sorted(unknown))}; "
                          f"use {', '.join(sorted(KNOWN_SETTINGS))}")
    name = spec.get("name")
    if not isinstance(name, str) or not REPORT_NAME.match(name):
        raise ConfigError(f"{where}.name must be lower_snake_case (it names raw.ga4_<name>), not {name!r}")
    where = f"{where} ({name})"
    dimensions = _fields(where, spec, "dimensions", DIMENSION_PREFIXES, MAX_DIMENSIONS)
    metrics = _fields(where, spec, "metrics", METRIC_PREFIXES, MAX_METRICS)
    if "date" not in dimensions:
        raise ConfigError(f"{where}.dimensions must include `date`: rows are partitioned by it")
    for dimension in dimensions:
        if dimension in METRIC_TYPES:
            raise ConfigError(f"{where}.dimensions: {dimension!r} is a metric; move it to `metrics`")
        near = _near_miss(dimension, KNOWN_DIMENSIONS)
        if near:
            raise ConfigError(f"{where}.dimensions: {dimension!r} is not a GA4 name (names are case-sensitive); "
                              f"did you mean {near!r}?")
    for metric in metrics:
        if metric in KNOWN_DIMENSIONS:
            raise ConfigError(f"{where}.metrics: {metric!r} is a dimension; move it to `dimensions`")
        near = _near_miss(metric, set(METRIC_TYPES))
        if near:
            raise ConfigError(f"{where}.metrics: {metric!r} is not a GA4 name (names are case-sensitive); "
                              f"did you mean {near!r}?")
    both = sorted(set(dimensions) & set(metrics))
    if both:
        raise ConfigError(f"{where}: {', '.join(both)} listed as both a dimension and a metric")
    columns = [column_name(n) for n in (*dimensions, *metrics)]
    clashes = sorted({c for c in columns if columns.count(c) > 1})
    if clashes:
        raise ConfigError(f"{where}: several fields become the column(s) {', '.join(clashes)}")
    reserved = sorted(set(columns) & set(RESERVED_COLUMNS))
    if reserved:
        raise ConfigError(f"{where}: {', '.join(reserved)} would clash with a column every GA4 table carries")
    dimension_filter = spec.get("dimension_filter")
    if dimension_filter is not None:
        if not isinstance(dimension_filter, dict):
            raise ConfigError(f"{where}.dimension_filter must be a FilterExpression mapping")
        try:
            FilterExpression.from_json(json.dumps(dimension_filter))
        except Exception as error:  # protobuf's ParseError names the offending field
            raise ConfigError(f"{where}.dimension_filter is not a GA4 FilterExpression: {error}") from None
        outside = sorted(_filter_fields(dimension_filter) - set(dimensions))
        if outside:
            raise ConfigError(f"{where}.dimension_filter filters on {', '.join(outside)}, which the report does "
                              "not request; the API only filters on requested dimensions")
    description = spec.get("description") or f"GA4 report {name}"
    return Ga4Report(name=name, description=str(description), dimensions=dimensions, metrics=metrics,
                     dimension_filter=dimension_filter)


def load_reports(path: Path | None = None) -> list[Ga4Report]:
    """Every report in the YAML file, validated; errors name the file, the report and the field."""
    path = path or REPORTS_YAML
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("reports"), list):
        raise ConfigError(f"{path}: expected a top-level `reports:` list")
    reports = [_parse_report(f"{path}: reports[{i}]", spec) for i, spec in enumerate(document["reports"])]
    names = [r.name for r in reports]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"{path}: report name(s) {', '.join(repeated)} used twice")
    return reports
