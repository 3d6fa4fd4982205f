"""Computed traits as HubSpot properties: created once, in the `cdp` property group, with the type and
fieldType of the sync's field type; a property that exists with another type stops the sync before any
record is written (HubSpot would refuse every record with PROPERTY_DOESNT_EXIST or a type error)."""

from __future__ import annotations

from typing import Any

from cdp_assets.activation.destinations.base import Call, SetupFailed
from cdp_assets.activation.records.config import Sync
from cdp_assets.activation.transport import OK, Request

GROUP = {"name": "cdp", "label": "CDP (cdp_assets)", "displayOrder": -1}
# Our field type -> HubSpot (type, fieldType); the pairs HubSpot accepts are in the Properties API guide.
TYPES = {"string": ("string", "text"), "number": ("number", "number"), "bool": ("bool", "booleancheckbox"),
         "date": ("date", "date"), "datetime": ("datetime", "date")}
BOOL_OPTIONS = [{"label": "Yes", "value": "true", "displayOrder": 0}, {"label": "No", "value": "false",
                                                                        "displayOrder": 1}]
# Properties every HubSpot account has; a dry run does not plan to create them.
BUILT_IN = {"email", "firstname", "lastname", "phone", "mobilephone", "city", "state", "zip", "country", "address",
            "company", "jobtitle", "website", "lifecyclestage", "hs_object_id"}


def _label(name: str) -> str:
    """`cdp_lifetime_value` -> `CDP lifetime value`, as the property shows in HubSpot."""
    words = name.split("_")
    return " ".join(["CDP" if words[0] == "cdp" else words[0].capitalize(), *words[1:]])


def wanted_properties(sync: Sync) -> list[dict[str, Any]]:
    """The property definitions the sync writes to, besides HubSpot's own; the key is a unique property."""
    wanted = []
    for field in (sync.key, *sync.all_fields):
        kind, field_type = TYPES[field.type]
        definition: dict[str, Any] = {"groupName": GROUP["name"], "name": field.field,
                                      "label": _label(field.field), "type": kind,
                                      "fieldType": field_type}
        if field.type == "bool":
            definition["options"] = BOOL_OPTIONS
        if field is sync.key:
            definition["hasUniqueValue"] = True
        wanted.append(definition)
    return wanted


def ensure_properties(base: str, object_type: str, wanted: list[dict[str, Any]], call: Call | None) -> list[Request]:
    """Create what is missing (`call` None: return what a first sync would create, without asking)."""
    url = f"{base}/crm/v3/properties/{object_type}"
    group = Request("create_property_group", "POST", f"{url}/groups", dict(GROUP), 0)
    if call is None:
        creates = [Request("create_property", "POST", url, w, 0) for w in wanted if w["name"] not in BUILT_IN]
        return [group, *creates] if creates else []
    listed = call(Request("list_properties", "GET", url, None, 0))
    if listed.kind != OK:
        raise SetupFailed(f"HubSpot properties of {object_type} could not be read: {listed.message}")
    existing = {p.get("name"): p for p in listed.data.get("results") or []}
    made: list[Request] = []
    for definition in wanted:
        found = existing.get(definition["name"])
        if found is None:
            continue
        if definition["name"] not in BUILT_IN and found.get("type") != definition["type"]:
            raise SetupFailed(f"HubSpot property {definition['name']} is of type {found.get('type')} but the sync "
                              f"writes {definition['type']}; change the field's type in the sync YAML or map it "
                              "to another property")
    missing = [w for w in wanted if w["name"] not in existing]
    if not missing:
        return made
    if call(Request("find_property_group", "GET", f"{url}/groups/{GROUP['name']}", None, 0)).http_status == 404:
        created = call(group)
        if created.kind != OK and created.http_status != 409:
            raise SetupFailed(f"HubSpot property group cdp could not be created: {created.message}")
        made.append(group)
    for definition in missing:
        create = Request("create_property", "POST", url, definition, 0)
        created = call(create)
        if created.kind != OK and created.http_status != 409:
            raise SetupFailed(f"HubSpot property {definition['name']} could not be created: {created.message}")
        made.append(create)
    return made
