"""`staging/exchange_rates`: the rates the marts convert revenue into the reporting currency with.

The rates are a CSV kept in the repo (`cdp_assets/config/exchange_rates.csv`, approximate ECB reference
rates, base EUR) or the user's own file (`CDP_EXCHANGE_RATES_FILE`), with the columns
`rate_date,base_currency,quote_currency,rate`: one unit of base buys `rate` units of quote, from
rate_date until the file's next date. One file has one base currency. Revenue in currency C becomes
reporting currency R as `amount * rate(R) / rate(C)` (the base's own rate is 1), so any currency in the
file can be the reporting one (`CDP_REPORTING_CURRENCY`, default USD).
"""

import csv
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import pyarrow as pa

from cdp_assets import settings
from cdp_assets.ingest.validation import ISO_4217
from cdp_assets.resources.warehouse import WarehouseResource

COLUMNS = ["rate_date", "base_currency", "quote_currency", "rate"]
TABLE = "staging.exchange_rates"
OPEN_END = date(9999, 12, 31)


@dataclass(frozen=True)
class Rate:
    day: date
    base: str
    quote: str
    rate: float


def read_rates(path: Path) -> list[Rate]:
    """The file's rates, validated; an error names the file, the line and what is wrong."""
    if not path.is_file():
        raise settings.ConfigError(f"exchange-rate file {path} does not exist (CDP_EXCHANGE_RATES_FILE)")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        if header != COLUMNS:
            raise settings.ConfigError(f"{path}: the header must be {','.join(COLUMNS)}, not {','.join(header)}")
        rates, seen = [], set()
        for line, fields in enumerate(reader, start=2):
            if not any(f.strip() for f in fields):
                continue
            where = f"{path}:{line}"
            if len(fields) != len(COLUMNS):
                raise settings.ConfigError(f"{where}: expected {len(COLUMNS)} fields, found {len(fields)}")
            day_text, base, quote, rate_text = (f.strip() for f in fields)
            try:
                day = date.fromisoformat(day_text)
            except ValueError:
                raise settings.ConfigError(f"{where}: rate_date {day_text!r} is not YYYY-MM-DD") from None
            for currency in (base.upper(), quote.upper()):
                if currency not in ISO_4217:
                    raise settings.ConfigError(f"{where}: {currency!r} is not an ISO 4217 currency")
            try:
                rate = float(rate_text)
            except ValueError:
                rate = -1.0
            if not rate > 0:
                raise settings.ConfigError(f"{where}: rate {rate_text!r} must be a positive number")
            if (day, quote.upper()) in seen:
                raise settings.ConfigError(f"{where}: a second {quote.upper()} rate for {day}")
            seen.add((day, quote.upper()))
            rates.append(Rate(day, base.upper(), quote.upper(), rate))
    bases = sorted({r.base for r in rates})
    if len(bases) != 1:
        raise settings.ConfigError(f"{path}: one base currency per file, found {', '.join(bases) or 'no rates'}")
    return rates


def reporting_rates(rates: list[Rate], reporting: str) -> list[tuple[str, date, date, float]]:
    """(currency, valid_from, valid_to, rate_to_reporting) intervals, one per currency and rate date.

    Each interval runs from one date in the file to the next; a currency's latest rate on or before a
    day applies to it. Days before a currency's (or the reporting currency's) first rate have none.
    """
    base = rates[0].base
    days = sorted({r.day for r in rates})
    history: dict[str, list[tuple[date, float]]] = {base: [(days[0], 1.0)]}
    for rate in sorted(rates, key=lambda r: r.day):
        history.setdefault(rate.quote, []).append((rate.day, rate.rate))
    if reporting not in history:
        raise settings.ConfigError(f"CDP_REPORTING_CURRENCY={reporting} has no rate in the exchange-rate file; "
                                   f"it has {', '.join(sorted(history))}")

    def as_of(currency: str, day: date) -> float | None:
        points = history[currency]
        index = bisect_right([d for d, _ in points], day) - 1
        return points[index][1] if index >= 0 else None

    intervals = []
    for start, end in zip(days, [*days[1:], OPEN_END], strict=True):
        target = as_of(reporting, start)
        for currency in sorted(history):
            own = as_of(currency, start)
            if own is not None and target is not None:
                intervals.append((currency, start, end, target / own))
    return intervals


def exchange_rates_asset(dialect: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=dg.AssetKey(["staging", "exchange_rates"]),
        group_name="staging",
        kinds={"python", "csv", dialect},
        owners=["team:data-eng"],
        pool="warehouse",
    )
    def exchange_rates(warehouse: WarehouseResource) -> dg.MaterializeResult:
        """Exchange rates into the reporting currency (CDP_REPORTING_CURRENCY), one row per currency and period.

        From the repo's exchange-rate CSV or CDP_EXCHANGE_RATES_FILE. The marts multiply an amount by
        `rate_to_reporting` of its currency for the period holding its day; a currency or day with no
        rate leaves the converted amount empty rather than guessing.
        """
        path = settings.exchange_rates_file()
        reporting = settings.reporting_currency()
        try:
            intervals = reporting_rates(read_rates(path), reporting)
        except settings.ConfigError as error:
            raise dg.Failure(str(error)) from None
        table = pa.table({
            "currency": pa.array([i[0] for i in intervals], pa.string()),
            "valid_from": pa.array([i[1] for i in intervals], pa.date32()),
            "valid_to": pa.array([i[2] for i in intervals], pa.date32()),
            "rate_to_reporting": pa.array([i[3] for i in intervals], pa.float64()),
        })
        with warehouse.begin() as conn:
            warehouse.ensure_schemas(conn, ["staging"])
            warehouse.run(conn, f"DROP TABLE IF EXISTS {TABLE}")
            warehouse.run(conn, f"CREATE TABLE {TABLE} (currency VARCHAR, valid_from DATE, valid_to DATE, "
                                "rate_to_reporting DOUBLE, reporting_currency VARCHAR)")
            warehouse.append_arrow(conn, TABLE, table, constants={"reporting_currency": reporting})
            schema = warehouse.column_schema(conn, TABLE)
        return dg.MaterializeResult(metadata={
            "dagster/row_count": len(intervals),
            "dagster/table_name": TABLE,
            "dagster/column_schema": schema,
            "source_file": str(path),
            "reporting_currency": reporting,
            "currencies": len({i[0] for i in intervals}),
            "first_rate_date": str(min(i[1] for i in intervals)),
        })

    return exchange_rates
