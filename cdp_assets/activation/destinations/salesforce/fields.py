"""The fields a sync writes must exist in the org: Salesforce's custom fields (`CDP_*__c`) are created by an admin,
never by the sync. One describe call at plan time names every missing or mistyped field before anything is sent
(Salesforce would otherwise refuse each record, or fail each Bulk job, with INVALID_FIELD)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cdp_assets.activation.destinations.base import SetupFailed
from cdp_assets.activation.records.config import Sync

# Our field type -> the Salesforce field types that take it; a string goes into any text-like field.
TAKES = {"number": {"double", "int", "long", "currency", "percent"}, "bool": {"boolean"}, "date": {"date"},
         "datetime": {"datetime"}}


def check_fields(sync: Sync, sobject: str, describe: Mapping[str, Any]) -> None:
    """Raise SetupFailed naming what the `GET …/sobjects/{SObject}/describe` answer says is wrong for this sync."""
    known = {str(f.get("name")): f for f in describe.get("fields") or [] if isinstance(f, dict)}
    wanted = (sync.key, *sync.all_fields)
    missing = [f.field for f in wanted if f.field not in known]
    if missing:
        raise SetupFailed(f"Salesforce {sobject} has no field {', '.join(missing)}; an admin creates the sync's "
                          f"custom fields in Setup (Object Manager → {sobject} → Fields & Relationships), the sync "
                          "never creates them")
    key = known[sync.key.field]
    if not (key.get("externalId") or key.get("idLookup")):
        raise SetupFailed(f"Salesforce {sobject}.{sync.key.field} is not an External ID field; mark it External ID "
                          "(and Unique) in Setup so records can be upserted by it")
    mistyped = [f"{f.field} ({known[f.field].get('type')}, the sync writes {f.type})" for f in wanted
                if f.type in TAKES and known[f.field].get("type") not in TAKES[f.type]]
    if mistyped:
        raise SetupFailed(f"Salesforce {sobject} fields of another type: {', '.join(mistyped)}; change the field's "
                          "type in the sync YAML or in Setup")
