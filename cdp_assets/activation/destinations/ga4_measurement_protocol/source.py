"""The orders GA4 cannot have seen, for the Measurement Protocol: each day's completed offline orders, and its
web orders with no GA4 transaction once GA4's data for that day has loaded.

A web order whose day GA4 has not loaded yet, or while GA4's quality gates are not passing, is held (`held`
says why), not sent: GA4 may still report it. A web order GA4 recorded is never sent. Orders from other sources
(an app, whose stream GA4 sees itself) are not sent either. Offline orders never wait for GA4.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from cdp_assets.activation.queries import CONSENT_JOINS, EXCLUSIONS, LATEST_CONSENT
from cdp_assets.ingest.ga4_reports import load_reports
from cdp_assets.ingest.ga4_store import data_through
from cdp_assets.resources.warehouse import WarehouseResource

OFFLINE_SOURCES = ("physical_store", "phone_call", "system_generated", "other")
TRANSACTIONS_TABLE = "raw.ga4_transactions"
NEVER = date(1, 1, 1)


def _sql(recorded: str, held: str) -> str:
    offline = ", ".join(f"'{s}'" for s in OFFLINE_SOURCES)
    return f"""
WITH {LATEST_CONSENT}
SELECT c.order_id, c.contact_id, c.profile_id, c.order_ts, c.value, c.currency, c.action_source, c.product_ids,
       s.ga_client_id, coalesce(c.email, p.email) AS email, coalesce(c.phone_e164, p.phone_e164) AS phone_e164,
       p.first_name, p.last_name, p.city, p.state, p.postal_code, p.country,
       CASE WHEN c.action_source = 'website' AND v.order_date > :ga4_through THEN '{held}' END AS held,
       {EXCLUSIONS.format(alias="c")}
FROM core.conversions AS c
JOIN core.unified_profiles AS p ON p.profile_id = c.profile_id
JOIN staging.stg_order_values AS v ON v.order_id = c.order_id
LEFT JOIN staging.stg_crm_contacts AS s ON s.contact_id = c.contact_id {CONSENT_JOINS.format(alias="c")}
WHERE c.order_ts >= :start AND c.order_ts < :end
  AND (c.action_source IN ({offline}) OR (c.action_source = 'website' AND NOT ({recorded})))
ORDER BY c.order_id
"""


def conversions_sql(warehouse: WarehouseResource, closed: list[str]) -> tuple[str, dict[str, Any]]:
    """The day's rows to send, and how far GA4's transactions can be trusted to reach: none loaded, or its gates
    (`closed`) failing, and every web order is held."""
    transactions = [r for r in load_reports() if r.name == "transactions"]
    through = data_through(warehouse, transactions) if transactions else None
    with warehouse.begin() as conn:
        loaded = warehouse.table_exists(conn, TRANSACTIONS_TABLE)
    recorded = f"c.order_id IN (SELECT transaction_id FROM {TRANSACTIONS_TABLE})" if loaded else "FALSE"
    held = "the GA4 quality gates are not passing" if closed else "GA4 has not loaded this day yet"
    trusted = through if loaded and through and not closed else NEVER
    return _sql(recorded, held), {"ga4_through": trusted}
