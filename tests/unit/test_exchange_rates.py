"""The exchange-rate CSV: validated on read, turned into per-period rates into the reporting currency."""

from datetime import date

import pytest

from cdp_assets.ingest.exchange_rates import OPEN_END, read_rates, reporting_rates
from cdp_assets.settings import ConfigError

HEADER = "rate_date,base_currency,quote_currency,rate\n"


def rates_file(tmp_path, body: str):
    path = tmp_path / "rates.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def test_the_bundled_file_reads_with_one_base_currency():
    from cdp_assets.settings import BUNDLED_EXCHANGE_RATES

    rates = read_rates(BUNDLED_EXCHANGE_RATES)
    assert {r.base for r in rates} == {"EUR"}
    assert {r.quote for r in rates} == {"USD", "GBP", "JPY", "CHF", "CAD", "AUD"}


def test_an_amount_converts_through_the_base_currency(tmp_path):
    rates = read_rates(rates_file(tmp_path, "2026-01-01,EUR,USD,1.25\n2026-01-01,EUR,GBP,0.8\n"))
    assert reporting_rates(rates, "USD") == [
        ("EUR", date(2026, 1, 1), OPEN_END, 1.25),
        ("GBP", date(2026, 1, 1), OPEN_END, 1.5625),
        ("USD", date(2026, 1, 1), OPEN_END, 1.0),
    ]


def test_a_rate_holds_until_the_files_next_date(tmp_path):
    rates = read_rates(rates_file(tmp_path, "2026-01-01,EUR,USD,1.25\n2026-02-01,EUR,USD,1.0\n"
                                            "2026-01-15,EUR,GBP,0.8\n"))
    assert reporting_rates(rates, "EUR") == [
        ("EUR", date(2026, 1, 1), date(2026, 1, 15), 1.0),
        ("USD", date(2026, 1, 1), date(2026, 1, 15), 0.8),
        ("EUR", date(2026, 1, 15), date(2026, 2, 1), 1.0),
        ("GBP", date(2026, 1, 15), date(2026, 2, 1), 1.25),
        ("USD", date(2026, 1, 15), date(2026, 2, 1), 0.8),
        ("EUR", date(2026, 2, 1), OPEN_END, 1.0),
        ("GBP", date(2026, 2, 1), OPEN_END, 1.25),
        ("USD", date(2026, 2, 1), OPEN_END, 1.0),
    ]


@pytest.mark.parametrize(("body", "message"), [
    ("2026-13-01,EUR,USD,1.1\n", ":2: rate_date '2026-13-01' is not YYYY-MM-DD"),
    ("2026-01-01,EUR,XYZ,1.1\n", ":2: 'XYZ' is not an ISO 4217 currency"),
    ("2026-01-01,EUR,USD,0\n", ":2: rate '0' must be a positive number"),
    ("2026-01-01,EUR,USD,abc\n", ":2: rate 'abc' must be a positive number"),
    ("2026-01-01,EUR,USD\n", ":2: expected 4 fields, found 3"),
    ("2026-01-01,EUR,USD,1.1\n2026-01-01,EUR,USD,1.2\n", ":3: a second USD rate for 2026-01-01"),
    ("2026-01-01,EUR,USD,1.1\n2026-01-01,USD,GBP,0.8\n", "one base currency per file, found EUR, USD"),
])
def test_a_bad_line_is_refused_naming_the_file_and_line(tmp_path, body, message):
    path = rates_file(tmp_path, body)
    with pytest.raises(ConfigError) as error:
        read_rates(path)
    assert f"{path}" in str(error.value) and message in str(error.value)


def test_a_reporting_currency_without_rates_is_refused(tmp_path):
    rates = read_rates(rates_file(tmp_path, "2026-01-01,EUR,USD,1.1\n"))
    with pytest.raises(ConfigError, match="CDP_REPORTING_CURRENCY=JPY has no rate in the exchange-rate file; "
                                          "it has EUR, USD"):
        reporting_rates(rates, "JPY")
