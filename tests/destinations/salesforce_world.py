"""The shipped Salesforce sync against the records world, and a fake org holding the fields it maps."""

from __future__ import annotations

from pathlib import Path

import yaml

from cdp_assets.activation.destinations.registry import discover
from cdp_assets.activation.records.config import SYNCS_DIR, Sync, parse_sync
from tests.destinations.records_world import COLUMNS
from tests.fakes.salesforce import FakeSalesforce

SHIPPED = SYNCS_DIR / "salesforce_contacts.yaml"
CUSTOM_FIELDS = {"CDP_Lifetime_Value__c": "double", "CDP_Order_Count__c": "double",
                 "CDP_Last_Order_At__c": "datetime", "CDP_RFM_Segment__c": "string"}


def salesforce_sync(tmp_path: Path, **changes: object) -> Sync:
    """The shipped `salesforce_contacts.yaml`, with `changes` applied (a lower bulk threshold, say)."""
    settings = {**yaml.safe_load(SHIPPED.read_text(encoding="utf-8")), **changes}
    path = tmp_path / "salesforce_contacts.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return parse_sync(path, settings, discover(), {"core.unified_profiles": COLUMNS}, ("vip",))


def define_custom_fields(fake: FakeSalesforce, *leave_out: str) -> None:
    """What the org's admin creates before the first live run (all but `leave_out`)."""
    for name, kind in CUSTOM_FIELDS.items():
        if name not in leave_out:
            fake.define_field("Contact", name, kind, length=10 if kind == "string" else 255)


def sent_ids(fake: FakeSalesforce) -> list[str]:
    """The external id of every record of every Collections request and Bulk upload the fake received, in order."""
    ids = []
    for request in fake.requests:
        if request["method"] == "PATCH" and "/composite/sobjects/" in request["path"]:
            ids += [r["CDP_Profile_Id__c"] for r in request["body"]["records"]]
        elif request["method"] == "PUT" and request["path"].endswith("/batches"):
            ids += [line.split(",")[0] for line in request["body"].splitlines()[1:]]
    return ids


def paths(fake: FakeSalesforce, method: str, ending: str) -> list[str]:
    return [r["path"] for r in fake.requests if r["method"] == method and r["path"].endswith(ending)]
