"""Blocking quality gates between stages: raw -> staging -> core -> audiences/activation.

Each gate is a Great Expectations suite run as a blocking Dagster asset check. A failure skips every
downstream step in its run, and egress also refuses to run while any gate's latest result is a failure.
"""


from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
import pandas as pd

from cdp_assets.checks.gx import validate_frame
from cdp_assets.ingest.validation import EMAIL_PATTERN, ISO_4217
from cdp_assets.resources.warehouse import WarehouseResource

E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
PROFILE_ID_PATTERN = r"^p_[0-9a-f]{20}$"


@dataclass(frozen=True)
class Gate:
    table: str
    name: str
    description: str
    query: str
    suite: Callable[[], list]

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey(self.table.split("."))

    @property
    def check_key(self) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(self.asset_key, self.name)


def _gxe():
    import great_expectations.expectations as gxe

    return gxe


def _not_null(*columns: str) -> list:
    return [_gxe().ExpectColumnValuesToNotBeNull(column=c) for c in columns]


def _unique(column: str) -> list:
    return [_gxe().ExpectColumnValuesToBeUnique(column=column), *_not_null(column)]


def _non_empty() -> list:
    return [_gxe().ExpectTableRowCountToBeBetween(min_value=1)]


GATES = [
    Gate("raw.crm_contacts", "crm_contacts_rows_are_complete",
         "Loaded contacts exist and every one has a contact id, a parsed updated_at and its source file.",
         "SELECT contact_id, _updated_at, _source FROM raw.crm_contacts",
         lambda: [*_non_empty(), *_not_null("contact_id", "_updated_at", "_source")]),
    Gate("raw.crm_orders", "crm_orders_rows_are_complete",
         "Loaded orders exist and every one has an order id, a parsed order_ts, a value and its source file.",
         "SELECT order_id, _order_ts, value, _source FROM raw.crm_orders",
         lambda: [*_non_empty(), *_not_null("order_id", "_order_ts", "value", "_source")]),
    Gate("staging.stg_crm_contacts", "contact_keys_and_formats_are_valid",
         "contact_id is unique; emails are lowercase addresses; phones are E.164.",
         "SELECT contact_id, email, phone_e164 FROM staging.stg_crm_contacts",
         lambda: [*_unique("contact_id"),
                  _gxe().ExpectColumnValuesToMatchRegex(column="email", regex=EMAIL_PATTERN),
                  _gxe().ExpectColumnValuesToMatchRegex(column="email", regex=r"^[^A-Z]*$"),
                  _gxe().ExpectColumnValuesToMatchRegex(column="phone_e164", regex=E164_PATTERN)]),
    Gate("staging.stg_crm_orders", "order_keys_and_values_are_valid",
         "order_id is unique; value is non-negative; currency is ISO 4217; order_ts is set.",
         "SELECT order_id, CAST(value AS DOUBLE) AS value, currency, order_ts FROM staging.stg_crm_orders",
         lambda: [*_unique("order_id"), *_not_null("order_ts", "currency"),
                  _gxe().ExpectColumnValuesToBeBetween(column="value", min_value=0),
                  _gxe().ExpectColumnValuesToBeInSet(column="currency", value_set=sorted(ISO_4217))]),
    Gate("core.record_profiles", "every_record_has_one_profile",
         "Each CRM record belongs to exactly one well-formed profile id.",
         "SELECT record_key, profile_id FROM core.record_profiles",
         lambda: [*_unique("record_key"), *_not_null("profile_id"),
                  _gxe().ExpectColumnValuesToMatchRegex(column="profile_id", regex=PROFILE_ID_PATTERN)]),
    Gate("core.unified_profiles", "profile_ids_are_unique",
         "One row per profile id.",
         "SELECT profile_id FROM core.unified_profiles",
         lambda: [*_non_empty(), *_unique("profile_id")]),
    Gate("core.conversions", "conversions_are_attributable",
         "Each conversion appears once, belongs to a profile, and has a non-negative value.",
         "SELECT order_id, profile_id, CAST(value AS DOUBLE) AS value FROM core.conversions",
         lambda: [*_unique("order_id"), *_not_null("profile_id"),
                  _gxe().ExpectColumnValuesToBeBetween(column="value", min_value=0)]),
]


def audience_gate(table: str) -> Gate:
    """The blocking gate every audience passes before activation reads its snapshot."""
    return Gate(table, "audience_members_are_unique", "Each profile appears at most once in the audience.",
                f"SELECT profile_id FROM {table}", lambda: _unique("profile_id"))


def gate_check(gate: Gate) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=gate.asset_key, name=gate.name, description=gate.description, blocking=True,
                    pool="warehouse")
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.begin() as conn:
            frame = pd.read_sql(warehouse.sql(gate.query), conn)
        return validate_frame(frame, gate.suite(), gate.name)

    return _check
