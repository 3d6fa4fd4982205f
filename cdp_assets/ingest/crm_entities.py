"""The two CRM entities, contacts and orders: their canonical columns, checks and warehouse tables."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cdp_assets.ingest.mappings import CANONICAL
from cdp_assets.ingest.phones import country_key
from cdp_assets.ingest.validation import Rule, contact_rules, order_rules
from cdp_assets.resources.state import StateTable

# Columns validation adds to an accepted row, parsed from its text columns.
TYPED_COLUMNS = {"_updated_at": "TIMESTAMP", "_order_ts": "TIMESTAMP", "_phone_e164": "VARCHAR"}


@dataclass(frozen=True)
class CrmEntity:
    name: str
    typed: dict[str, str]  # timestamp column validation adds -> the text column it is parsed from
    key: tuple[str, ...]  # columns whose rows, sharing values but differing elsewhere in one file, conflict
    conflict_reason: str
    rules: Callable[[datetime], list[Rule]]
    description: str
    has_country: bool  # whether a phone can be read in the row's own country

    @property
    def text_columns(self) -> list[str]:
        return list(CANONICAL[self.name])

    def key_sql(self, alias: str) -> list[str]:
        """The key as SQL over `alias`; text columns compared trimmed, as staging keys them."""
        return [f"trim({alias}.{c})" if c in self.text_columns else f"{alias}.{c}" for c in self.key]

    @property
    def typed_columns(self) -> list[str]:
        return [*self.typed, "_phone_e164"]

    @property
    def raw_table(self) -> StateTable:
        cols = ", ".join(f"{c} VARCHAR" for c in self.text_columns)
        typed = ", ".join(f"{c} {TYPED_COLUMNS[c]}" for c in self.typed_columns)
        phone_key = f"AND p.country_raw = {country_key('t.country' if self.has_country else None)}"
        version_2 = [f"ALTER TABLE raw.crm_{self.name} ADD COLUMN extra VARCHAR",
                     f"ALTER TABLE raw.crm_{self.name} ADD COLUMN _phone_e164 VARCHAR",
                     # Rows loaded before phones were read during validation take the parse already cached.
                     f"UPDATE raw.crm_{self.name} AS t SET _phone_e164 = p.e164 FROM staging.phone_numbers AS p "
                     f"WHERE p.phone_raw = trim(t.phone) {phone_key}"]
        if self.name == "contacts":
            # Version 1 required the consent column, so its blanks were answers: not granted.
            version_2 += ["ALTER TABLE raw.crm_contacts ADD COLUMN consent_ads_personalization VARCHAR",
                          "UPDATE raw.crm_contacts SET consent_marketing = '' WHERE consent_marketing IS NULL"]
        return StateTable(
            f"raw.crm_{self.name}",
            f"CREATE TABLE raw.crm_{self.name} ({cols}, extra VARCHAR, {typed}, _line_number BIGINT, "
            "_source VARCHAR, _file_sha256 VARCHAR, _loaded_at TIMESTAMP)",
            version=2, migrations={2: version_2},
        )

    @property
    def quarantine_table(self) -> StateTable:
        cols = ", ".join(f"{c} VARCHAR" for c in self.text_columns)
        version_2 = [f"ALTER TABLE quarantine.crm_{self.name} ADD COLUMN extra VARCHAR"]
        if self.name == "contacts":
            version_2.append("ALTER TABLE quarantine.crm_contacts ADD COLUMN consent_ads_personalization VARCHAR")
        return StateTable(
            f"quarantine.crm_{self.name}",
            f"CREATE TABLE quarantine.crm_{self.name} ({cols}, extra VARCHAR, source_file VARCHAR, "
            "line_number BIGINT, reason VARCHAR, file_sha256 VARCHAR, quarantined_at TIMESTAMP)",
            version=2, migrations={2: version_2},
        )

    def raw_select(self) -> tuple[str, str]:
        """(target columns, select list) moving accepted rows from the checked rows into raw."""
        columns = ", ".join([*self.text_columns, "extra", *self.typed_columns, "_line_number"])
        return columns, columns

    def quarantine_select(self) -> tuple[str, str]:
        """(target columns, select list) moving rejected rows from the checked rows into quarantine."""
        columns = [*self.text_columns, "extra"]
        return (", ".join([*columns, "line_number", "reason"]),
                ", ".join([*columns, "_line_number AS line_number", "reason"]))


CONTACTS = CrmEntity(
    name="contacts",
    typed={"_updated_at": "updated_at"},
    key=("contact_id", "_updated_at"),
    conflict_reason="contact_id appears again in this file with other values and the same updated_at",
    rules=contact_rules,
    description="CRM contacts as landed from file drops and the HubSpot API, one row per file line "
                "that passed validation.",
    has_country=True,
)
ORDERS = CrmEntity(
    name="orders",
    typed={"_order_ts": "order_ts"},
    key=("order_id",),
    conflict_reason="order_id appears again in this file with other values",
    rules=order_rules,
    description="CRM orders (and closed deals) as landed from file drops and the HubSpot API, one row per "
                "file line that passed validation.",
    has_country=False,
)
ENTITIES = {entity.name: entity for entity in (CONTACTS, ORDERS)}
