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
        raise ValueError(f"CDP_EGRESS_MODE={mode!r} is not one of {', '.join(EGRESS_MODES)}")
    return mode


def yesterday() -> date:
    """The default partition: yesterday in CDP_TIMEZONE."""
    return datetime.now(timezone()).date() - timedelta(days=1)
