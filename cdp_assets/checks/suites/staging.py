"""Staging stage: keys unique, formats normalized, values in range (blocking: the hand-off into core), and
the day's orders in their usual volume (a warning)."""

from cdp_assets.checks.gates import Gate, Volume
from cdp_assets.checks.rules import Between, InSet, Matches, NotNull, RefersTo, Unique
from cdp_assets.ingest.validation import EMAIL_PATTERN, ISO_4217

E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
STAGED_ORDERS = "staging.stg_crm_orders.order_id"

GATES = [
    Gate("staging.stg_crm_contacts", "contact_keys_and_formats_are_valid",
         "contact_id is unique; emails are lowercase addresses; phones are E.164.",
         (Unique("contact_id"), NotNull("contact_id"), Matches("email", regex=EMAIL_PATTERN),
          Matches("email", regex=r"^[^A-Z]*$"), Matches("phone_e164", regex=E164_PATTERN))),
    Gate("staging.stg_crm_orders", "order_keys_and_values_are_valid",
         "order_id is unique; value is non-negative; currency is ISO 4217; order_ts is set.",
         (Unique("order_id"), NotNull("order_id"), NotNull("order_ts"), NotNull("currency"),
          Between("value", low=0), InSet("currency", values=tuple(sorted(ISO_4217)))),
         relation="(SELECT order_id, CAST(value AS DOUBLE) AS value, currency, order_ts FROM staging.stg_crm_orders)"),
    Volume("staging.stg_crm_orders", "orders_volume_is_usual",
           "The day's orders are in line with the trailing 14 days.", day_expression="order_ts"),
    Gate("staging.stg_order_values", "order_values_are_one_row_per_staged_order",
         "Each staged order appears once, with its local date.",
         (Unique("order_id"), NotNull("order_date"), RefersTo("order_id", parent=STAGED_ORDERS))),
    Gate("staging.exchange_rates", "exchange_rates_are_usable",
         "Every rate has a currency code, a start date and a positive value.",
         (NotNull("currency"), NotNull("valid_from"), Matches("currency", regex=CURRENCY_PATTERN),
          Between("rate_to_reporting", low=1e-9))),
]
