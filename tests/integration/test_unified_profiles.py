"""The golden record: the latest non-empty value per field, the same on every run and warehouse."""

from datetime import date

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
# (order, contact, email, phone, placed, value, currency, counts as a conversion)
ORDERS = """
CREATE TABLE staging.stg_crm_orders AS SELECT * FROM (VALUES
    ('O1', 'C1', NULL, NULL, CAST('2026-11-02 09:00:00' AS TIMESTAMP), CAST(20.00 AS DECIMAL(18, 2)), 'USD', TRUE),
    ('O2', NULL, 'bob@x.com', NULL, CAST('2026-10-01 09:00:00' AS TIMESTAMP), CAST(10.00 AS DECIMAL(18, 2)), 'EUR',
     TRUE),
    ('O3', NULL, 'bob@x.com', NULL, CAST('2026-10-05 09:00:00' AS TIMESTAMP), CAST(30.00 AS DECIMAL(18, 2)), 'EUR',
     TRUE),
    ('O4', NULL, 'bob@x.com', NULL, CAST('2026-10-07 09:00:00' AS TIMESTAMP), CAST(99.00 AS DECIMAL(18, 2)), 'EUR',
     FALSE)
) AS t(order_id, contact_id, email, phone_e164, order_ts, value, currency, counts_as_conversion)
"""
# (order, local date, value in EUR, reporting currency)
ORDER_VALUES = """
CREATE TABLE staging.stg_order_values AS SELECT * FROM (VALUES
    ('O1', DATE '2026-11-02', CAST(18.00 AS DECIMAL(18, 2)), 'EUR'),
    ('O2', DATE '2026-10-01', CAST(10.00 AS DECIMAL(18, 2)), 'EUR'),
    ('O3', DATE '2026-10-05', CAST(30.00 AS DECIMAL(18, 2)), 'EUR'),
    ('O4', DATE '2026-10-07', CAST(99.00 AS DECIMAL(18, 2)), 'EUR')
) AS t(order_id, order_date, value_reporting, reporting_currency)
"""
# (order, placed, value, currency, value in EUR, attributed, source, medium, counts as a conversion)
ATTRIBUTION = """
CREATE TABLE marts.order_attribution AS SELECT * FROM (VALUES
    ('O1', CAST('2026-11-02 09:00:00' AS TIMESTAMP), CAST(20.00 AS DECIMAL(18, 2)), 'USD',
     CAST(18.00 AS DECIMAL(18, 2)), FALSE, '(unattributed)', '(unattributed)', TRUE),
    ('O2', CAST('2026-10-01 09:00:00' AS TIMESTAMP), CAST(10.00 AS DECIMAL(18, 2)), 'EUR',
     CAST(10.00 AS DECIMAL(18, 2)), TRUE, 'google', 'cpc', TRUE),
    ('O3', CAST('2026-10-05 09:00:00' AS TIMESTAMP), CAST(30.00 AS DECIMAL(18, 2)), 'EUR',
     CAST(30.00 AS DECIMAL(18, 2)), TRUE, 'meta', 'paid_social', TRUE),
    ('O4', CAST('2026-10-07 09:00:00' AS TIMESTAMP), CAST(99.00 AS DECIMAL(18, 2)), 'EUR',
     CAST(99.00 AS DECIMAL(18, 2)), TRUE, 'google', 'cpc', FALSE)
) AS t(order_id, order_ts, value, currency, value_reporting, attributed, session_source, session_medium,
       counts_as_conversion)
"""
CONSENT = """
CREATE TABLE core.consent AS SELECT * FROM (VALUES
    ('p_1', 'C1', 'marketing', FALSE, 'crm:a.csv', CAST('2026-11-01 10:00:00' AS TIMESTAMP)),
    ('p_1', 'C2', 'marketing', TRUE, 'crm:a.csv', CAST('2026-11-02 10:00:00' AS TIMESTAMP))
) AS t(profile_id, contact_id, purpose, granted, source, ts)
"""
RECORDS = """
CREATE TABLE core.record_profiles AS SELECT * FROM (VALUES
    ('contact:C1', 'contact', 'p_1'), ('contact:C2', 'contact', 'p_1'), ('contact:C3', 'contact', 'p_1'),
    ('order:O1', 'order', 'p_1'), ('order:O2', 'order', 'p_2'), ('order:O3', 'order', 'p_2'),
    ('order:O4', 'order', 'p_2')
) AS t(record_key, record_type, profile_id)
"""


def build_profiles(warehouse) -> None:
    with warehouse.begin() as conn:
        warehouse.ensure_schemas(conn)
        for statement in (CONTACTS, ORDERS, ORDER_VALUES, ATTRIBUTION, CONSENT, RECORDS):
            warehouse.run(conn, statement)
    defs = build_definitions(warehouse)
    assets = [defs.resolve_assets_def(dg.AssetKey(["core", name])) for name in ("unified_profiles", "channel_traits")]
    assert dg.materialize(assets).success


def test_ties_in_recency_go_to_the_lowest_record_key(warehouse):
    build_profiles(warehouse)

    with warehouse.begin() as conn:
        row = warehouse.run(conn, "SELECT email, phone_e164, first_name, last_name, city, order_count, "
                                  "CAST(lifetime_value AS DOUBLE), lifetime_value_currency "
                                  "FROM core.unified_profiles WHERE profile_id = 'p_1'").one()
    assert tuple(row) == ("ann@x.com", "+14155550134", "Ann", "Lee", "Austin", 1, 20.0, "USD")


def test_order_traits_count_conversions_and_convert_lifetime_value(warehouse):
    build_profiles(warehouse)

    with warehouse.begin() as conn:
        row = warehouse.run(conn, "SELECT profile_id, order_count, CAST(lifetime_value AS DOUBLE), "
                                  "CAST(average_order_value AS DOUBLE), CAST(lifetime_value_reporting AS DOUBLE), "
                                  "CAST(last_order_at AS DATE), "
                                  "days_since_last_order = current_date - DATE '2026-10-05' "
                                  "FROM core.unified_profiles ORDER BY profile_id").fetchall()
    assert [tuple(r) for r in row] == [
        ("p_1", 1, 20.0, 20.0, 18.0, date(2026, 11, 2), False),
        ("p_2", 2, 40.0, 20.0, 40.0, date(2026, 10, 5), True)]


def test_profiles_are_built_from_the_crm_alone():
    """A late or failing GA4 cannot hold profiles back: they read no GA4 table, directly or through marts."""
    graph = build_definitions().resolve_asset_graph()
    upstream = graph.get(dg.AssetKey(["core", "unified_profiles"])).parent_keys
    seen, pending = set(), list(upstream)
    while pending:
        key = pending.pop()
        if key not in seen:
            seen.add(key)
            pending.extend(graph.get(key).parent_keys)
    assert sorted(k.to_user_string() for k in seen if k.path[0] == "marts" or "ga4" in k.path[-1]) == []


def test_the_preferred_channel_is_the_most_attributed_one_and_a_tie_goes_to_the_latest(warehouse):
    build_profiles(warehouse)

    with warehouse.begin() as conn:
        rows = warehouse.run(conn, "SELECT profile_id, preferred_channel, preferred_channel_orders, attributed_orders "
                                   "FROM core.channel_traits ORDER BY profile_id").fetchall()
    # p_1's only order was not attributed, so p_1 has no row; O4 of p_2 is not a conversion.
    assert [tuple(r) for r in rows] == [("p_2", "meta / paid_social", 1, 2)]


def test_rfm_scores_rank_purchasers_in_quintiles(warehouse):
    build_profiles(warehouse)

    with warehouse.begin() as conn:
        rows = warehouse.run(conn, "SELECT profile_id, recency_score, frequency_score, monetary_score, rfm_segment "
                                   "FROM core.unified_profiles ORDER BY profile_id").fetchall()
    assert [tuple(r) for r in rows] == [("p_1", 2, 1, 1, "211"), ("p_2", 1, 2, 2, "122")]


def test_consent_per_purpose_is_the_latest_answer_and_absent_means_not_granted(warehouse):
    build_profiles(warehouse)

    with warehouse.begin() as conn:
        rows = warehouse.run(conn, "SELECT profile_id, consent_marketing, consent_ads_personalization "
                                   "FROM core.unified_profiles ORDER BY profile_id").fetchall()
    assert [tuple(r) for r in rows] == [("p_1", True, False), ("p_2", False, False)]
