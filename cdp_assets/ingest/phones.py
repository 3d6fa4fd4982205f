"""Phone numbers normalized to E.164 with phonenumbers, each distinct (value, country) parsed once ever."""


from datetime import UTC, datetime

import dagster as dg
import pyarrow as pa

from cdp_assets.privacy.geo import country_code
from cdp_assets.privacy.pii import PhoneError, to_e164
from cdp_assets.resources.state import StateTable
from cdp_assets.resources.warehouse import WarehouseResource

PHONE_NUMBERS = StateTable(
    "staging.phone_numbers",
    "CREATE TABLE staging.phone_numbers (phone_raw VARCHAR, country_raw VARCHAR, region VARCHAR, "
    "e164 VARCHAR, reason VARCHAR, parsed_at TIMESTAMP, PRIMARY KEY (phone_raw, country_raw))",
)

# Orders carry no country, so a guest's national-format phone has nothing to be read in: it is
# recorded with that reason, and the order still links to its person by email.
NEW_PHONES_SQL = """
SELECT DISTINCT n.phone_raw, n.country_raw FROM (
    SELECT trim(phone) AS phone_raw, coalesce(upper(trim(country)), '') AS country_raw
    FROM raw.crm_contacts WHERE trim(phone) <> ''
    UNION ALL
    SELECT trim(phone) AS phone_raw, '' AS country_raw FROM raw.crm_orders WHERE trim(phone) <> ''
) AS n
WHERE NOT EXISTS (
    SELECT 1 FROM staging.phone_numbers AS p WHERE p.phone_raw = n.phone_raw AND p.country_raw = n.country_raw
)
"""


def parse_phone(phone_raw: str, country_raw: str) -> tuple[str | None, str | None, str | None]:
    """(region, e164, reason): the number in E.164, or None with the reason it could not be read."""
    region = country_code(country_raw)
    try:
        return region, to_e164(phone_raw, region), None
    except PhoneError as error:
        return region, None, str(error)


@dg.asset(
    key=["staging", "phone_numbers"],
    group_name="staging",
    kinds={"python"},
    owners=["team:data-eng"],
    deps=[dg.AssetKey(["raw", "crm_contacts"]), dg.AssetKey(["raw", "crm_orders"])],
    pool="warehouse",
)
def phone_numbers(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Every phone number seen in CRM data, in E.164 form or with the reason it is unusable.

    Each distinct (phone as written, contact country) pair is parsed once with the phonenumbers
    library and kept, so later loads only parse values never seen before.
    """
    with warehouse.begin() as conn:
        PHONE_NUMBERS.ensure(warehouse, conn)
        pending = warehouse.run(conn, NEW_PHONES_SQL).fetchall()
    parsed = [parse_phone(phone, country) for phone, country in pending]
    now = datetime.now(UTC).replace(tzinfo=None)
    table = pa.table({
        "phone_raw": [p for p, _ in pending],
        "country_raw": [c for _, c in pending],
        "region": [r for r, _, _ in parsed],
        "e164": [e for _, e, _ in parsed],
        "reason": [why for _, _, why in parsed],
        "parsed_at": pa.array([now] * len(pending), pa.timestamp("s")),
    })
    with warehouse.begin() as conn:
        if pending:
            warehouse.append_arrow(conn, PHONE_NUMBERS.name, table)
        total, invalid = warehouse.run(
            conn, "SELECT count(*), count(*) FILTER (WHERE e164 IS NULL) FROM staging.phone_numbers").one()
    newly_invalid = sum(1 for _, e, _ in parsed if e is None)
    context.log.info(f"parsed {len(pending)} new phone values, {newly_invalid} unusable")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": int(total),
        "dagster/table_name": PHONE_NUMBERS.name,
        "phones_parsed": len(pending),
        "phones_unusable_new": newly_invalid,
        "phones_unusable_total": int(invalid),
    })
