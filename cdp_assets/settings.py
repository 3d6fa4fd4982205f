"""The environment variables that configure cdp_assets, read in one place (see README: Configuration)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

DEFAULT_WAREHOUSE_URL = "duckdb:///data/warehouse.duckdb"
BUNDLED_EXCHANGE_RATES = Path(__file__).resolve().parent / "config" / "exchange_rates.csv"
DEFAULT_LANDING_DIR = "data/landing"
DEFAULT_START_DATE = date(2024, 1, 1)
EGRESS_MODES = ("dry_run", "live")
# Consent purposes: what a destination maps to and what an audience member must have granted.
PURPOSES = ("marketing", "ads_personalization")


class ConfigError(ValueError):
    """A configuration file a user edits is wrong; the message names the file and the field."""


def reject_unknown(where: str, settings: Mapping, known: Iterable[str]) -> None:
    """Fail on a setting nobody reads: a misspelt key must not be silently ignored."""
    unknown = set(settings) - set(known)
    if unknown:
        raise ConfigError(f"{where} has unknown settings {', '.join(sorted(unknown))}")


def one_of(where: str, value: object, choices: Sequence[str]) -> str:
    """`value` when it is one of `choices`, else a ConfigError naming them."""
    if value not in choices:
        raise ConfigError(f"{where} must be one of {', '.join(choices)}")
    return value



def warehouse_url() -> str:
    return os.environ.get("CDP_WAREHOUSE_URL") or DEFAULT_WAREHOUSE_URL


def duckdb_memory_limit() -> str | None:
    """`CDP_DUCKDB_MEMORY_LIMIT` (such as `2GB`): how much memory DuckDB may hold before it spills to disk.
    Unset, DuckDB's own default (80% of the machine's memory) applies."""
    return os.environ.get("CDP_DUCKDB_MEMORY_LIMIT") or None


def landing_dir() -> Path:
    return Path(os.environ.get("CDP_LANDING_DIR") or DEFAULT_LANDING_DIR)


def start_date() -> date:
    """`CDP_START_DATE` (YYYY-MM-DD, default 2024-01-01): the first daily partition; set it to your history's
    first day so the UI's partition bars start where the data does."""
    raw = (os.environ.get("CDP_START_DATE") or "").strip()
    if not raw:
        return DEFAULT_START_DATE
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ConfigError(f"CDP_START_DATE={raw!r} is not a date; write it as YYYY-MM-DD, such as 2025-01-01") from None


def timezone() -> ZoneInfo:
    return ZoneInfo(os.environ.get("CDP_TIMEZONE") or "UTC")


def exchange_rates_file() -> Path:
    """The exchange-rate CSV the marts convert revenue with: `CDP_EXCHANGE_RATES_FILE`, else the bundled one."""
    return Path(os.environ.get("CDP_EXCHANGE_RATES_FILE") or BUNDLED_EXCHANGE_RATES)


def reporting_currency() -> str:
    """The ISO 4217 currency the marts' `*_reporting` columns are in (`CDP_REPORTING_CURRENCY`, default USD)."""
    currency = (os.environ.get("CDP_REPORTING_CURRENCY") or "USD").strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ConfigError(f"CDP_REPORTING_CURRENCY={currency!r} is not an ISO 4217 code such as USD or EUR")
    return currency


def egress_mode() -> str:
    mode = os.environ.get("CDP_EGRESS_MODE") or "dry_run"
    if mode not in EGRESS_MODES:
        raise ConfigError(f"CDP_EGRESS_MODE={mode!r} is not one of {', '.join(EGRESS_MODES)}")
    return mode


def yesterday() -> date:
    """The default partition: yesterday in CDP_TIMEZONE."""
    return datetime.now(timezone()).date() - timedelta(days=1)


def _whole_number(name: str, default: int, low: int, high: int) -> int:
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ConfigError(f"{name}={raw!r} must be a whole number from {low} to {high}")
    return int(raw)


def schedule_hour() -> int:
    """`CDP_SCHEDULE_HOUR` (0-23, default 6): the hour, in CDP_TIMEZONE, the daily schedule starts."""
    return _whole_number("CDP_SCHEDULE_HOUR", 6, 0, 23)


def retention_days() -> dict[str, int]:
    """How many days each kind of operational data is kept before the retention asset purges it."""
    return {
        "request_bodies": _whole_number("CDP_RETENTION_REQUEST_BODY_DAYS", 30, 1, 36_500),
        "quarantine": _whole_number("CDP_RETENTION_QUARANTINE_DAYS", 90, 1, 36_500),
        "membership_snapshots": _whole_number("CDP_RETENTION_SNAPSHOT_DAYS", 180, 1, 36_500),
    }


def alert_webhook_url() -> str | None:
    """`CDP_ALERT_WEBHOOK_URL`: where run failures are posted (Slack-compatible JSON); unset, none are posted."""
    return os.environ.get("CDP_ALERT_WEBHOOK_URL") or None


def alert_log() -> Path:
    """`CDP_ALERT_LOG` (default `data/alerts/run_failures.jsonl`): every run failure, one JSON line each."""
    return Path(os.environ.get("CDP_ALERT_LOG") or "data/alerts/run_failures.jsonl")
