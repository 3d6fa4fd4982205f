"""Raw stage: loaded rows are complete (blocking: the hand-off into staging), and sources arrive on time
in their usual volume (warnings)."""

from cdp_assets.checks.gates import Freshness, Gate, LoadVolume, Volume
from cdp_assets.checks.rules import InSet, NotNull, Unique

# CRM extracts arrive daily; a day and a half allows for a late drop before anyone is warned.
CRM_MAX_AGE_HOURS = 36
# GA4 finishes day D during D+1 (in the property's time zone): D-1 must be in by the end of the next day.
GA4_MAX_AGE_HOURS = 48

GATES = [
    Gate("raw.crm_contacts", "crm_contacts_rows_are_complete",
         "Every loaded contact has a contact id, a parsed updated_at and its source file (none loaded yet is fine).",
         (NotNull("contact_id"), NotNull("_updated_at"), NotNull("_source"))),
    Gate("raw.crm_orders", "crm_orders_rows_are_complete",
         "Every loaded order has an order id, a parsed order_ts, a value and its source file (a CRM without "
         "orders is fine).",
         (NotNull("order_id"), NotNull("_order_ts"), NotNull("_value"), NotNull("_source"))),
    Freshness("raw.crm_contacts", "crm_contacts_arrived_on_time",
              f"A contacts file was loaded in the last {CRM_MAX_AGE_HOURS} hours.",
              column="_loaded_at", max_age_hours=CRM_MAX_AGE_HOURS),
    Freshness("raw.crm_orders", "crm_orders_arrived_on_time",
              f"An orders file was loaded in the last {CRM_MAX_AGE_HOURS} hours.",
              column="_loaded_at", max_age_hours=CRM_MAX_AGE_HOURS),
    LoadVolume("raw.crm_file_ledger", "crm_contacts_volume_is_usual",
               "The newest day's contacts files hold a usual number of rows; files with none after files with "
               "rows warn.", entity="contacts", asset="raw.crm_contacts"),
    LoadVolume("raw.crm_file_ledger", "crm_orders_volume_is_usual",
               "The newest day's orders files hold a usual number of rows; files with none after files with "
               "rows warn.", entity="orders", asset="raw.crm_orders"),
    Freshness("raw.ga4_daily_traffic", "ga4_daily_traffic_arrived_on_time",
              "GA4 traffic is loaded up to yesterday or the day before.", column="date",
              max_age_hours=GA4_MAX_AGE_HOURS),
    Freshness("raw.ga4_transactions", "ga4_transactions_arrived_on_time",
              "GA4 transactions are loaded up to yesterday or the day before.", column="date",
              max_age_hours=GA4_MAX_AGE_HOURS),
    Volume("raw.ga4_daily_traffic", "ga4_daily_traffic_volume_is_usual",
           "The day's GA4 traffic rows are in line with the trailing 14 days.", day_expression="date"),
    Volume("raw.ga4_transactions", "ga4_transactions_volume_is_usual",
           "The day's GA4 transactions are in line with the trailing 14 days.", day_expression="date"),
    Gate("raw.hubspot_watermarks", "hubspot_watermarks_are_well_formed",
         "One watermark per HubSpot object type, each with its time set.",
         (Unique("object_type"), NotNull("modified_before"), InSet("object_type", values=("contacts", "deals"))),
         blocking=False, optional=True, asset="raw.hubspot_extracts"),
]
