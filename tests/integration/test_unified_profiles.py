"""The golden record: the latest non-empty value per field, the same on every run and warehouse."""

import dagster as dg

from cdp_assets.definitions import build_definitions

CONTACTS = """
CREATE TABLE staging.stg_crm_contacts AS SELECT * FROM (VALUES
    ('C2', 'ann@x.com', NULL, 'Anne', 'Lee', 'Austin', 'TX', '78701', 'US', NULL, TRUE,
     CAST('2026-11-01 10:00:00' AS TIMESTAMP), 'a.csv', 3),
    ('C1', 'ann@x.com', '+14155550134', 'Ann', NULL, NULL, NULL, NULL, 'US', NULL, TRUE,
     CAST('2026-11-01 10:00:00' AS TIMESTAMP), 'a.csv', 2),
    ('C3', 'ann.old@x.com', NULL, 'Annie', 'Leigh', 'Dallas', NULL, NULL, NULL, NULL, FALSE,
     CAST('2025-01-01 00:00:00' AS TIMESTAMP), 'a.csv', 4)
) AS t(contact_id, email, phone_e164, first_name, last_name, city, state, postal_code, country, ga_client_id,
       consent_marketing, updated_at, source_file, line_number)
"""
ORDERS = """
CREATE TABLE staging.stg_crm_orders AS SELECT * FROM (VALUES
    ('O1', 'C1', NULL, NULL, CAST('2026-11-02 09:00:00' AS TIMESTAMP), CAST(20.00 AS DECIMAL(18, 2)), 'USD',
     'completed')
) AS t(order_id, contact_id, email, phone_e164, order_ts, value, currency, status)
"""
RECORDS = """
CREATE TABLE core.record_profiles AS SELECT * FROM (VALUES
    ('contact:C1', 'contact', 'p_1'), ('contact:C2', 'contact', 'p_1'), ('contact:C3', 'contact', 'p_1'),
    ('order:O1', 'order', 'p_1')
) AS t(record_key, record_type, profile_id)
"""


def test_ties_in_recency_go_to_the_lowest_record_key(warehouse):
    with warehouse.begin() as conn:
        warehouse.ensure_schemas(conn)
        for statement in (CONTACTS, ORDERS, RECORDS):
            warehouse.run(conn, statement)
    asset = build_definitions(warehouse).resolve_assets_def(dg.AssetKey(["core", "unified_profiles"]))

    assert dg.materialize([asset]).success

    with warehouse.begin() as conn:
        row = warehouse.run(conn, "SELECT email, phone_e164, first_name, last_name, city, order_count, "
                                  "CAST(lifetime_value AS DOUBLE), lifetime_value_currency "
                                  "FROM core.unified_profiles").one()
    assert tuple(row) == ("ann@x.com", "+14155550134", "Ann", "Lee", "Austin", 1, 20.0, "USD")
