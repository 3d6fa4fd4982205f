"""A small warehouse holding what the GA4 Measurement Protocol destination reads, and its asset run for a day.

The orders of `day` (yesterday, so within the Measurement Protocol's 72 hours): a store purchase, a phone order,
a web order GA4 recorded, a web order GA4 missed, a store purchase of someone without a GA4 client id, and a
store purchase of someone who did not consent.
"""

from __future__ import annotations

from datetime import date, datetime, time

import dagster as dg

from cdp_assets import settings
from cdp_assets.activation.config import Destination, load_destinations
from cdp_assets.activation.conversions import conversions_asset
from cdp_assets.activation.transport import RetryPolicy
from cdp_assets.ingest.ga4_store import FETCHES
from cdp_assets.partitions import daily_partitions
from cdp_assets.resources.warehouse import WarehouseResource

FAST = RetryPolicy(attempts=3, base_seconds=0.001, max_seconds=0.01, timeout=(10.0, 30.0))
PROFILES = [
    # profile_id, email, phone, first, last, city, state, postcode, country, consent
    ("p1", "Test@Example.com", "+15551234567", "Jane", "Doe", "San Francisco", "CA", "94105", "US", True),
    ("p2", "bob@example.com", None, "Bob", "Byte", None, None, None, None, True),
    ("p3", "cy@example.com", None, None, None, None, None, None, None, True),
    ("p4", "di@example.com", None, None, None, None, None, None, None, False),
]
CLIENT_IDS = {"c1": "1234567890.1717243200", "c2": "2222222222.1717243200", "c4": "4444444444.1717243200"}
ORDERS = [
    # order_id, profile, action_source, value, products
    ("T-1001", "p1", "physical_store", "39.98", "sku-1|sku-1"),
    ("T-1002", "p2", "phone_call", "12.50", None),
    ("T-2001", "p1", "website", "20.00", "sku-2"),  # GA4 recorded it
    ("T-2002", "p2", "website", "15.00", None),  # GA4 missed it
    ("T-1003", "p3", "physical_store", "9.99", None),  # no GA4 client id
    ("T-1004", "p4", "physical_store", "5.00", None),  # no consent
]
TABLES = [
    "CREATE TABLE core.unified_profiles (profile_id VARCHAR, email VARCHAR, phone_e164 VARCHAR, first_name VARCHAR, "
    "last_name VARCHAR, city VARCHAR, state VARCHAR, postal_code VARCHAR, country VARCHAR)",
    "CREATE TABLE core.conversions (order_id VARCHAR, profile_id VARCHAR, contact_id VARCHAR, order_ts TIMESTAMP, "
    "value DECIMAL(18, 2), currency VARCHAR, action_source VARCHAR, email VARCHAR, phone_e164 VARCHAR, "
    "product_ids VARCHAR)",
    "CREATE TABLE staging.stg_order_values (order_id VARCHAR, order_date DATE)",
    "CREATE TABLE staging.stg_crm_contacts (contact_id VARCHAR, ga_client_id VARCHAR)",
    "CREATE TABLE core.consent (contact_id VARCHAR, profile_id VARCHAR, purpose VARCHAR, granted BOOLEAN, "
    "source VARCHAR, ts TIMESTAMP)",
    "CREATE TABLE core.suppressed_profiles (profile_id VARCHAR)",
    "CREATE TABLE core.deletion_pending_profiles (profile_id VARCHAR)",
    "CREATE TABLE raw.ga4_transactions (date DATE, transaction_id VARCHAR, purchase_revenue DOUBLE)",
]


def day() -> date:
    return settings.yesterday()


def order_time(on: date, hour: int = 12) -> datetime:
    return datetime.combine(on, time(hour))


def execute(warehouse: WarehouseResource, statement: str, params: dict | None = None) -> None:
    with warehouse.begin() as conn:
        warehouse.run(conn, statement, params)


def query(warehouse: WarehouseResource, statement: str, params: dict | None = None) -> list[tuple]:
    with warehouse.begin() as conn:
        return [tuple(r) for r in warehouse.run(conn, statement, params).all()]


def add_order(warehouse: WarehouseResource, order_id: str, profile: str, source: str, value: str,
              products: str | None, at: datetime) -> None:
    contact = "c" + profile[1:]
    execute(warehouse, "INSERT INTO core.conversions SELECT :o, :p, :c, :at, CAST(:v AS DECIMAL(18, 2)), 'USD', :s, "
                       "NULL, NULL, :products", {"o": order_id, "p": profile, "c": contact, "at": at, "v": value,
                                                 "s": source, "products": products})
    execute(warehouse, "INSERT INTO staging.stg_order_values VALUES (:o, :d)", {"o": order_id, "d": at.date()})


def ga4_loaded_through(warehouse: WarehouseResource, through: date) -> None:
    """GA4's transactions report fetched for every day up to `through`."""
    with warehouse.begin() as conn:
        FETCHES.ensure(warehouse, conn)
        warehouse.run(conn, "DELETE FROM raw.ga4_fetches WHERE report = 'transactions'")
        warehouse.run(conn, "INSERT INTO raw.ga4_fetches (report, partition_date) VALUES ('transactions', :d)",
                      {"d": through})


def build_world(warehouse: WarehouseResource) -> None:
    with warehouse.begin() as conn:
        warehouse.ensure_schemas(conn)
        for ddl in TABLES:
            warehouse.run(conn, ddl)
        for row in PROFILES:
            warehouse.run(conn, "INSERT INTO core.unified_profiles VALUES (:a, :b, :c, :d, :e, :f, :g, :h, :i)",
                          dict(zip("abcdefghi", row[:9], strict=True)))
            for purpose in ("marketing", "ads_personalization"):
                warehouse.run(conn, "INSERT INTO core.consent VALUES (:c, :p, :purpose, :g, 'crm', :ts)",
                              {"c": "c" + row[0][1:], "p": row[0], "purpose": purpose, "g": row[9],
                               "ts": datetime(2026, 1, 1)})
        for contact in ("c1", "c2", "c3", "c4"):
            warehouse.run(conn, "INSERT INTO staging.stg_crm_contacts VALUES (:c, :g)",
                          {"c": contact, "g": CLIENT_IDS.get(contact)})
        warehouse.run(conn, "INSERT INTO raw.ga4_transactions VALUES (:d, 'T-2001', 20.0)", {"d": day()})
    for order_id, profile, source, value, products in ORDERS:
        add_order(warehouse, order_id, profile, source, value, products, order_time(day()))
    ga4_loaded_through(warehouse, day())


def destination() -> Destination:
    return load_destinations()["ga4_measurement_protocol"]


def run_day(warehouse: WarehouseResource, on: date | None = None) -> dg.ExecuteInProcessResult:
    asset = conversions_asset(destination(), daily_partitions(), lambda keys: [], FAST, warehouse.dialect)
    return dg.materialize([asset], resources={"warehouse": warehouse}, partition_key=(on or day()).isoformat(),
                          raise_on_error=False)


def metadata(result: dg.ExecuteInProcessResult) -> dict:
    [event] = result.asset_materializations_for_node("activation__ga4_measurement_protocol")
    return {k: v.value for k, v in event.metadata.items()}


def ledger(warehouse: WarehouseResource) -> dict[str, str]:
    return dict(query(warehouse, "SELECT record_key, status FROM activation.sync_ledger "
                                 "WHERE destination = 'ga4_measurement_protocol' ORDER BY record_key"))
