"""The two CRM entities, contacts and orders: their canonical columns, checks and warehouse tables.

Each has a raw table (accepted rows: text as landed, plus the typed columns validation reads from it), a
quarantine table (rejected rows, and lines whose fields could not be read) and a field quarantine (the fields
dropped from accepted rows, with their values as landed). All are state tables migrated in place; a migration
backfills what rows loaded by an earlier version lack, in portable SQL that reads them as that version did.
"""

from dataclasses import dataclass

from cdp_assets.ingest.mappings import CANONICAL
from cdp_assets.ingest.phones import country_key
from cdp_assets.ingest.validation import CONTACT_CHECKS, DELETED, GRANTED, ORDER_CHECKS, Checks
from cdp_assets.resources.state import StateTable


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _phone_backfill(table: str, has_country: bool) -> str:
    """Rows loaded before phones were read during validation take the parse already cached."""
    country = country_key("t.country" if has_country else None)
    return (f"UPDATE {table} AS t SET _phone_e164 = p.e164 FROM staging.phone_numbers AS p "
            f"WHERE p.phone_raw = trim(t.phone) AND p.country_raw = {country}")


def _answer_backfill(column: str) -> str:
    return f"CASE WHEN lower(trim({column})) IN {_in(GRANTED)} THEN TRUE WHEN {column} IS NOT NULL THEN FALSE END"


# Version 3 adds the typed columns staging now reads instead of trimming text itself; for rows already loaded
# they are what staging made of the text until then.
RAW_BACKFILL_3 = {
    "contacts": {"_email": "nullif(lower(trim(email)), '')",
                 "_consent_marketing": _answer_backfill("consent_marketing"),
                 "_consent_ads_personalization": _answer_backfill("consent_ads_personalization"),
                 "_deleted": f"coalesce(lower(trim(deleted)) IN {_in(DELETED)}, FALSE)"},
    "orders": {"_email": "nullif(lower(trim(email)), '')", "_value": "CAST(trim(value) AS DECIMAL(18, 2))",
               "_currency": "upper(trim(currency))"},
}


@dataclass(frozen=True)
class CrmEntity:
    name: str
    checks: Checks
    key: tuple[str, ...]  # columns whose rows, sharing values but differing elsewhere in one file, conflict
    conflict_reason: str
    description: str
    has_country: bool  # whether a phone can be read in the row's own country

    @property
    def text_columns(self) -> list[str]:
        return list(CANONICAL[self.name])

    @property
    def id_column(self) -> str:
        """The column naming the record: a dropped field is filed under it."""
        return self.key[0]

    def key_sql(self, alias: str) -> list[str]:
        """The key as SQL over `alias`; text columns compared trimmed, as staging keys them."""
        return [f"trim({alias}.{c})" if c in self.text_columns else f"{alias}.{c}" for c in self.key]

    @property
    def typed_columns(self) -> list[str]:
        return [*self.checks.typed, "_phone_e164"]

    @property
    def raw_table(self) -> StateTable:
        table = f"raw.crm_{self.name}"
        cols = ", ".join(f"{c} VARCHAR" for c in self.text_columns)
        typed = ", ".join(f"{c} {t.sql_type}" for c, t in self.checks.typed.items())
        version_2 = [f"ALTER TABLE {table} ADD COLUMN extra VARCHAR", f"ALTER TABLE {table} ADD COLUMN _phone_e164 "
                     "VARCHAR", _phone_backfill(table, self.has_country)]
        if self.name == "contacts":
            # Version 1 required the consent column, so its blanks were answers: not granted.
            version_2 += ["ALTER TABLE raw.crm_contacts ADD COLUMN consent_ads_personalization VARCHAR",
                          "UPDATE raw.crm_contacts SET consent_marketing = '' WHERE consent_marketing IS NULL"]
        backfill = RAW_BACKFILL_3[self.name]
        version_3 = [*(f"ALTER TABLE {table} ADD COLUMN {c} {self.checks.typed[c].sql_type}" for c in backfill),
                     f"UPDATE {table} SET " + ", ".join(f"{c} = {sql}" for c, sql in backfill.items())]
        return StateTable(
            table,
            f"CREATE TABLE {table} ({cols}, extra VARCHAR, {typed}, _phone_e164 VARCHAR, _line_number BIGINT, "
            "_source VARCHAR, _file_sha256 VARCHAR, _loaded_at TIMESTAMP)",
            version=3, migrations={2: version_2, 3: version_3},
        )

    @property
    def quarantine_table(self) -> StateTable:
        table = f"quarantine.crm_{self.name}"
        cols = ", ".join(f"{c} VARCHAR" for c in self.text_columns)
        version_2 = [f"ALTER TABLE {table} ADD COLUMN extra VARCHAR"]
        if self.name == "contacts":
            version_2.append("ALTER TABLE quarantine.crm_contacts ADD COLUMN consent_ads_personalization VARCHAR")
        # The identifiers as the loader read them, through which a deletion request finds the row.
        version_3 = [f"ALTER TABLE {table} ADD COLUMN _email VARCHAR", f"ALTER TABLE {table} ADD COLUMN "
                     "_phone_e164 VARCHAR", f"UPDATE {table} SET _email = nullif(lower(trim(email)), '')",
                     _phone_backfill(table, self.has_country)]
        return StateTable(
            table,
            f"CREATE TABLE {table} ({cols}, extra VARCHAR, source_file VARCHAR, line_number BIGINT, reason VARCHAR, "
            "file_sha256 VARCHAR, quarantined_at TIMESTAMP, _email VARCHAR, _phone_e164 VARCHAR)",
            version=3, migrations={2: version_2, 3: version_3},
        )

    @property
    def fields_table(self) -> StateTable:
        """Fields dropped from accepted rows. `column` is a reserved word in SQL, hence `column_name`."""
        table = f"quarantine.crm_{self.name[:-1]}_fields"
        return StateTable(
            table,
            f"CREATE TABLE {table} ({self.id_column} VARCHAR, column_name VARCHAR, value VARCHAR, reason VARCHAR, "
            "source_file VARCHAR, line_number BIGINT, file_sha256 VARCHAR, quarantined_at TIMESTAMP)",
        )

    def raw_select(self) -> tuple[str, str]:
        """(target columns, select list) moving accepted rows from the checked rows into raw."""
        columns = ", ".join([*self.text_columns, "extra", *self.typed_columns, "_line_number"])
        return columns, columns

    def quarantine_select(self) -> tuple[str, str]:
        """(target columns, select list) moving rejected rows from the checked rows into quarantine."""
        columns = [*self.text_columns, "extra", "_email", "_phone_e164"]
        return (", ".join([*columns, "line_number", "reason"]),
                ", ".join([*columns, "_line_number AS line_number", "reason"]))


CONTACTS = CrmEntity(
    name="contacts",
    checks=CONTACT_CHECKS,
    key=("contact_id", "_updated_at"),
    conflict_reason="contact_id appears again in this file with other values and the same updated_at",
    description="CRM contacts as landed from file drops and the HubSpot API, one row per file line "
                "that passed validation (less any field it could not use).",
    has_country=True,
)
ORDERS = CrmEntity(
    name="orders",
    checks=ORDER_CHECKS,
    key=("order_id",),
    conflict_reason="order_id appears again in this file with other values",
    description="CRM orders (and closed deals) as landed from file drops and the HubSpot API, one row per "
                "file line that passed validation (less any email or phone it could not use).",
    has_country=False,
)
ENTITIES = {entity.name: entity for entity in (CONTACTS, ORDERS)}
