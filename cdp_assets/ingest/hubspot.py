"""HubSpot contacts and deals pulled incrementally and landed as canonical files for the CRM loader.

Each run reads what changed since the stored watermark (`raw.hubspot_watermarks`) and what was archived,
and writes `hubspot-api-contacts-*.jsonl.gz` / `hubspot-api-deals-*.jsonl.gz` into `CDP_LANDING_DIR/crm/`.
The CRM loaders then validate and load them exactly like file drops (same checks, ledger and
quarantine), so API data and exports meet in the same canonical tables. Files are written under a
temporary name and renamed when complete; the watermark moves only after that, so a failed pull is
simply pulled again.
"""

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import chain, islice
from pathlib import Path

import dagster as dg

from cdp_assets.ingest.landing import LandingZone
from cdp_assets.resources.hubspot import HubSpotResource
from cdp_assets.resources.state import StateTable
from cdp_assets.resources.warehouse import WarehouseResource, pool_for
from cdp_assets.schedules import SOURCE_TAGS
from cdp_assets.sources import not_configured

WATERMARKS = StateTable(
    "raw.hubspot_watermarks",
    "CREATE TABLE raw.hubspot_watermarks (object_type VARCHAR PRIMARY KEY, modified_before TIMESTAMP, "
    "archived_after TIMESTAMP, updated_at TIMESTAMP)",
)
CONTACT_PROPERTIES = ["email", "phone", "mobilephone", "firstname", "lastname", "city", "state", "zip", "country",
                      "lastmodifieddate"]
DEAL_PROPERTIES = ["amount", "closedate", "deal_currency_code", "dealstage", "hs_lastmodifieddate"]
DEAL_STATUS = {"closedwon": "completed", "closedlost": "cancelled"}
# Search results trail writes by a few seconds; windows stop short of now so none is missed (archived
# records read again next time are harmless: the same content is the same row to staging).
INDEX_LAG = timedelta(minutes=1)
WHAT_TO_SET = "set HUBSPOT_ACCESS_TOKEN (a private app token with the CRM contacts and deals read scopes)"
BEGINNING = datetime(2006, 1, 1, tzinfo=UTC)  # before HubSpot existed: the first pull reads everything


def contact_row(record: dict, deleted: bool) -> dict[str, str | None]:
    p = record.get("properties") or {}
    return {
        "contact_id": str(record["id"]), "email": p.get("email"), "phone": p.get("phone") or p.get("mobilephone"),
        "first_name": p.get("firstname"), "last_name": p.get("lastname"), "city": p.get("city"),
        "state": p.get("state"), "postal_code": p.get("zip"), "country": p.get("country"),
        "updated_at": record.get("archivedAt") if deleted else (p.get("lastmodifieddate") or record.get("updatedAt")),
        "deleted": "true" if deleted else "false",
    }


def deal_row(record: dict, contact_id: str | None, archived: bool,
             company_currency: str | None) -> dict[str, str | None]:
    p = record.get("properties") or {}
    stage = (p.get("dealstage") or "").strip()
    return {
        "order_id": str(record["id"]), "contact_id": contact_id, "order_ts": p.get("closedate"),
        # Single-currency accounts leave deal_currency_code empty: the deal is in the company currency.
        "value": p.get("amount"), "currency": p.get("deal_currency_code") or company_currency,
        "status": "archived" if archived else DEAL_STATUS.get(stage.lower(), stage),
    }


def write_jsonl_gz(path: Path, rows: Iterator[dict]) -> int:
    """Write rows to `path` atomically (temporary name, then rename); no file when there are no rows."""
    partial = path.with_name(f".{path.name}.partial")
    count = 0
    try:
        with gzip.open(partial, "wt", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
    except BaseException:
        partial.unlink(missing_ok=True)  # a failed pull leaves nothing behind; the next run pulls it again
        raise
    if count:
        partial.rename(path)
    else:
        partial.unlink()
    return count


def _watermarks(warehouse: WarehouseResource) -> dict[str, tuple[datetime, datetime]]:
    with warehouse.begin() as conn:
        WATERMARKS.ensure(warehouse, conn)
        rows = warehouse.run(conn, "SELECT object_type, modified_before, archived_after FROM raw.hubspot_watermarks")
        return {r[0]: (r[1].replace(tzinfo=UTC), r[2].replace(tzinfo=UTC)) for r in rows}


def _save_watermark(warehouse: WarehouseResource, object_type: str, modified_before: datetime,
                    archived_after: datetime) -> None:
    naive = {"t": object_type, "m": modified_before.replace(tzinfo=None), "a": archived_after.replace(tzinfo=None),
             "u": datetime.now(UTC).replace(tzinfo=None)}
    with warehouse.begin() as conn:
        warehouse.run(conn, "DELETE FROM raw.hubspot_watermarks WHERE object_type = :t", naive)
        warehouse.run(conn, "INSERT INTO raw.hubspot_watermarks VALUES (:t, :m, :a, :u)", naive)


def _archived_since(records: Iterator[dict], since: datetime) -> Iterator[dict]:
    return (r for r in records if r.get("archivedAt") and datetime.fromisoformat(
        r["archivedAt"].replace("Z", "+00:00")) >= since)


def _counted(records: Iterator[dict], tally: dict[str, int], key: str) -> Iterator[dict]:
    for record in records:
        tally[key] += 1
        yield record


def _deal_rows(hubspot: HubSpotResource, records: Iterator[dict], archived: bool,
               company_currency: str | None) -> Iterator[dict]:
    """Deals as order rows, their contact looked up 100 deals at a time, streamed so memory stays flat."""
    while batch := list(islice(records, 100)):
        owners = hubspot.deal_contacts([str(r["id"]) for r in batch])
        yield from (deal_row(r, owners.get(str(r["id"])), archived, company_currency) for r in batch)


# Emitted on every materialization, so the UI plots them even across days HubSpot was not configured.
COUNTS = ("contacts_changed", "contacts_archived", "deals_changed", "deals_archived")


def hubspot_asset(dialect: str) -> dg.AssetsDefinition:
    """The HubSpot extract asset, in the warehouse's pool on DuckDB (it writes its watermarks there)."""

    @dg.asset(
        key=["raw", "hubspot_extracts"],
        group_name="raw",
        kinds={"python", "hubspot", dialect},
        owners=["team:data-eng"],
        pool=pool_for(dialect, "hubspot"),
        tags=SOURCE_TAGS["hubspot"],
        retry_policy=dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL,
                                    jitter=dg.Jitter.PLUS_MINUS),
    )
    def hubspot_extracts(context: dg.AssetExecutionContext, warehouse: WarehouseResource, hubspot: HubSpotResource,
                         landing: LandingZone) -> dg.MaterializeResult:
        """HubSpot contacts and deals changed since the last pull, landed as canonical files for the CRM loaders.

        Deleted (archived) records arrive as contacts flagged deleted and deals with status `archived`.
        Does nothing, and says `not configured`, when HUBSPOT_ACCESS_TOKEN is not set. It runs in the day's
        sources run: when HubSpot fails, the CRM files already landed still load.
        """
        return pull(context, warehouse, hubspot, landing)

    return hubspot_extracts


def pull(context: dg.AssetExecutionContext, warehouse: WarehouseResource, hubspot: HubSpotResource,
         landing: LandingZone) -> dg.MaterializeResult:
    """Pull every object type changed since its watermark and land it as a file."""
    if not hubspot.configured:
        context.log.info(f"HubSpot is not configured: {WHAT_TO_SET}")
        return dg.MaterializeResult(metadata={"source": not_configured(WHAT_TO_SET),
                                              "dagster/row_count": 0, **dict.fromkeys(COUNTS, 0)})
    end = datetime.now(UTC) - INDEX_LAG
    stored = _watermarks(warehouse)
    landing.crm_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {"dagster/row_count": 0}  # rows landed in files for the CRM loaders
    for object_type in ("contacts", "deals"):
        start, archived_after = stored.get(object_type, (BEGINNING, BEGINNING))
        stamp = f"{start:%Y%m%dT%H%M%S}-{end:%Y%m%dT%H%M%S}"
        target = landing.crm_dir / f"hubspot-api-{object_type}-{stamp}.jsonl.gz"
        tally = {"changed": 0, "archived": 0}
        if object_type == "contacts":
            changed = _counted(hubspot.search_modified("contacts", CONTACT_PROPERTIES, start, end), tally, "changed")
            gone = _counted(_archived_since(hubspot.archived("contacts", CONTACT_PROPERTIES), archived_after),
                            tally, "archived")
            rows = chain((contact_row(r, False) for r in changed), (contact_row(r, True) for r in gone))
        else:
            changed = _counted(hubspot.search_modified("deals", DEAL_PROPERTIES, start, end), tally, "changed")
            gone = _counted(_archived_since(hubspot.archived("deals", DEAL_PROPERTIES), archived_after),
                            tally, "archived")
            currency = hubspot.company_currency()
            rows = chain(_deal_rows(hubspot, changed, False, currency), _deal_rows(hubspot, gone, True, currency))
        written = write_jsonl_gz(target, rows)
        counts["dagster/row_count"] += written
        _save_watermark(warehouse, object_type, end, end)
        counts[f"{object_type}_changed"] = tally["changed"]
        counts[f"{object_type}_archived"] = tally["archived"]
        context.log.info(f"HubSpot {object_type}: {tally['changed']} changed, {tally['archived']} archived since "
                         f"{start.isoformat()}; {written} rows landed")
    return dg.MaterializeResult(metadata={**counts, **hubspot.stats, "source": "hubspot",
                                          "modified_before": end.isoformat()})
