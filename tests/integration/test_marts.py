"""The campaign marts on hand-built GA4, order and exchange-rate rows, with exact figures on both warehouses."""

from datetime import date
from decimal import Decimal

import dagster as dg
import pytest

from cdp_assets.definitions import build_definitions

RATES = """
CREATE TABLE staging.exchange_rates AS SELECT * FROM (VALUES
    ('USD', DATE '2026-01-01', DATE '9999-12-31', 1.0, 'USD'),
    ('EUR', DATE '2026-01-01', DATE '2026-01-10', 1.1, 'USD'),
    ('EUR', DATE '2026-01-10', DATE '9999-12-31', 1.2, 'USD')
) AS t(currency, valid_from, valid_to, rate_to_reporting, reporting_currency)
"""
# Times are UTC; the marts run with CDP_TIMEZONE=America/New_York, so O3 is a 5 January order.
ORDERS = """
CREATE TABLE staging.stg_crm_orders AS SELECT * FROM (VALUES
    ('O1', 'C1', CAST('2026-01-05 15:00:00' AS TIMESTAMP), 'completed', TRUE, CAST(100.00 AS DECIMAL(18, 2)), 'USD'),
    ('O2', 'C2', CAST('2026-01-05 16:00:00' AS TIMESTAMP), 'paid', TRUE, CAST(50.00 AS DECIMAL(18, 2)), 'EUR'),
    ('O3', 'C3', CAST('2026-01-06 03:00:00' AS TIMESTAMP), 'completed', TRUE, CAST(30.00 AS DECIMAL(18, 2)), 'USD'),
    ('O4', 'C4', CAST('2026-01-10 12:00:00' AS TIMESTAMP), 'cancelled', FALSE, CAST(80.00 AS DECIMAL(18, 2)), 'EUR'),
    ('O5', 'C5', CAST('2026-01-10 12:00:00' AS TIMESTAMP), 'completed', TRUE, CAST(40.00 AS DECIMAL(18, 2)), 'GBP'),
    ('O6', 'C1', CAST('2026-01-10 13:00:00' AS TIMESTAMP), 'completed', TRUE, CAST(20.00 AS DECIMAL(18, 2)), 'EUR')
) AS t(order_id, contact_id, order_ts, status, counts_as_conversion, value, currency)
"""
# O6 was reported twice (a duplicate purchase hit the next day): the first touch by date wins.
TRANSACTIONS = """
CREATE TABLE raw.ga4_transactions AS SELECT * FROM (VALUES
    (DATE '2026-01-05', 'O1', 'google', 'cpc', 'brand', 100.0, 'USD'),
    (DATE '2026-01-05', 'O2', 'google', 'cpc', 'brand', 55.0, 'USD'),
    (DATE '2026-01-10', 'O4', 'newsletter', 'email', 'weekly', 96.0, 'USD'),
    (DATE '2026-01-10', 'O6', 'newsletter', 'email', 'weekly', 24.0, 'USD'),
    (DATE '2026-01-11', 'O6', 'google', 'cpc', 'brand', 24.0, 'USD')
) AS t(date, transaction_id, session_source, session_medium, session_campaign_name, purchase_revenue,
       currency_code)
"""
TRAFFIC = """
CREATE TABLE raw.ga4_daily_traffic AS SELECT * FROM (VALUES
    (DATE '2026-01-05', 'google', 'cpc', 'brand', 'desktop', 60, 50, 40, 3, 100.0, 'USD'),
    (DATE '2026-01-05', 'google', 'cpc', 'brand', 'mobile', 40, 35, 20, 2, 55.0, 'USD'),
    (DATE '2026-01-10', 'newsletter', 'email', 'weekly', 'desktop', 10, 9, 5, 1, 24.0, 'USD'),
    (DATE '2026-01-10', '(direct)', '(none)', '(direct)', 'mobile', 25, 20, 10, 0, 0.0, 'USD')
) AS t(date, session_source, session_medium, session_campaign_name, device_category, sessions, total_users,
       engaged_sessions, key_events, purchase_revenue, currency_code)
"""
D5, D10 = date(2026, 1, 5), date(2026, 1, 10)
UNATTRIBUTED = ("(unattributed)",) * 3


@pytest.fixture
def marts(warehouse, monkeypatch):
    monkeypatch.setenv("CDP_TIMEZONE", "America/New_York")
    with warehouse.begin() as conn:
        warehouse.ensure_schemas(conn)
        for statement in (RATES, ORDERS, TRANSACTIONS, TRAFFIC):
            warehouse.run(conn, statement)
    defs = build_definitions(warehouse)
    assets = [defs.resolve_assets_def(dg.AssetKey(key.split("/")))
              for key in ("staging/stg_order_values", "marts/order_attribution", "marts/campaign_performance")]
    assert dg.materialize(assets).success
    return warehouse


def rows(warehouse, sql: str) -> list[tuple]:
    with warehouse.begin() as conn:
        return [tuple(r) for r in warehouse.run(conn, sql)]


def test_every_order_is_attributed_to_its_ga4_transaction_or_to_unattributed(marts):
    assert rows(marts, "SELECT order_id, order_date, attributed, transaction_date, session_source, session_medium, "
                       "session_campaign_name FROM marts.order_attribution ORDER BY order_id") == [
        ("O1", D5, True, D5, "google", "cpc", "brand"),
        ("O2", D5, True, D5, "google", "cpc", "brand"),
        ("O3", D5, False, None, *UNATTRIBUTED),
        ("O4", D10, True, D10, "newsletter", "email", "weekly"),
        ("O5", D10, False, None, *UNATTRIBUTED),
        ("O6", D10, True, D10, "newsletter", "email", "weekly"),
    ]


def test_order_values_keep_their_currency_and_convert_at_the_order_dates_rate(marts):
    assert rows(marts, "SELECT order_id, value, currency, value_reporting, reporting_currency, "
                       "CAST(ga_purchase_revenue AS DOUBLE), ga_currency "
                       "FROM marts.order_attribution ORDER BY order_id") == [
        ("O1", Decimal("100.00"), "USD", Decimal("100.00"), "USD", 100.0, "USD"),
        ("O2", Decimal("50.00"), "EUR", Decimal("55.00"), "USD", 55.0, "USD"),
        ("O3", Decimal("30.00"), "USD", Decimal("30.00"), "USD", None, None),
        ("O4", Decimal("80.00"), "EUR", Decimal("96.00"), "USD", 96.0, "USD"),
        ("O5", Decimal("40.00"), "GBP", None, "USD", None, None),  # the rate file has no GBP
        ("O6", Decimal("20.00"), "EUR", Decimal("24.00"), "USD", 24.0, "USD"),
    ]


def test_campaign_days_add_ga4_traffic_to_the_conversion_orders_attributed_to_them(marts):
    assert rows(marts, "SELECT date, session_source, session_medium, session_campaign_name, sessions, users, "
                       "engaged_sessions, CAST(key_events AS DOUBLE), crm_orders, conversion_rate "
                       "FROM marts.campaign_performance ORDER BY 1, 2, 3, 4") == [
        (D5, *UNATTRIBUTED, 0, 0, 0, 0.0, 1, None),
        (D5, "google", "cpc", "brand", 100, 85, 60, 5.0, 2, 0.02),
        (D10, "(direct)", "(none)", "(direct)", 25, 20, 10, 0.0, 0, 0.0),
        (D10, *UNATTRIBUTED, 0, 0, 0, 0.0, 1, None),
        (D10, "newsletter", "email", "weekly", 10, 9, 5, 1.0, 1, 0.1),  # O4 was cancelled
    ]


def test_campaign_revenue_is_never_summed_across_currencies(marts):
    assert rows(marts, "SELECT date, session_source, ga_revenue, ga_currency, ga_revenue_reporting, crm_revenue, "
                       "crm_currency, crm_revenue_reporting, crm_orders_without_rate, reporting_currency, "
                       "revenue_per_session FROM marts.campaign_performance ORDER BY 1, 2, 3, 4") == [
        (D5, "(unattributed)", None, None, None, Decimal("30.00"), "USD", Decimal("30.00"), 0, "USD", None),
        # USD and EUR orders: no native total, only the converted one
        (D5, "google", Decimal("155.00"), "USD", Decimal("155.00"), None, None, Decimal("155.00"), 0, "USD", 1.55),
        (D10, "(direct)", Decimal("0.00"), "USD", Decimal("0.00"), None, None, None, 0, "USD", None),
        (D10, "(unattributed)", None, None, None, Decimal("40.00"), "GBP", None, 1, "USD", None),
        (D10, "newsletter", Decimal("24.00"), "USD", Decimal("24.00"), Decimal("20.00"), "EUR", Decimal("24.00"), 0,
         "USD", 2.4),
    ]


def test_a_users_rate_file_and_reporting_currency_replace_the_bundled_ones(warehouse, tmp_path, monkeypatch):
    path = tmp_path / "finance_rates.csv"
    path.write_text("rate_date,base_currency,quote_currency,rate\n2026-01-01,USD,EUR,0.8\n", encoding="utf-8")
    monkeypatch.setenv("CDP_EXCHANGE_RATES_FILE", str(path))
    monkeypatch.setenv("CDP_REPORTING_CURRENCY", "eur")
    asset = build_definitions(warehouse).resolve_assets_def(dg.AssetKey(["staging", "exchange_rates"]))
    assert dg.materialize([asset]).success
    assert rows(warehouse, "SELECT currency, valid_from, rate_to_reporting, reporting_currency "
                           "FROM staging.exchange_rates ORDER BY currency") == [
        ("EUR", date(2026, 1, 1), 1.0, "EUR"), ("USD", date(2026, 1, 1), 0.8, "EUR")]
