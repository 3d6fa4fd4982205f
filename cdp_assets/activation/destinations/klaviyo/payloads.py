"""Klaviyo's JSON:API bodies: a record as a bulk-import profile (Klaviyo's own attributes, location fields and
everything else as JSON-typed custom properties), the job bodies around them, and how big they are."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from cdp_assets.activation.destinations.base import formatted
from cdp_assets.activation.records.config import FieldMap
from cdp_assets.activation.transport import encode_body

# Profile attributes Klaviyo stores itself; any other mapped field is a custom property.
ATTRIBUTES = frozenset({"email", "phone_number", "external_id", "first_name", "last_name", "organization", "locale",
                        "title", "image"})
LOCATION = frozenset({"address1", "address2", "city", "country", "region", "zip", "timezone", "latitude",
                      "longitude", "ip"})
MAX_JOB_BYTES = 5 * 1024 * 1024  # Klaviyo's payload limit for every new API (decompressed)


def record_key(key_value: str) -> str:
    """The framework's record key of a sync key value, as the targets compute it in SQL."""
    return hashlib.sha256(key_value.encode("utf-8")).hexdigest()


def json_value(value: Any, kind: str) -> Any:
    """A warehouse value as the JSON a custom property takes: numbers as numbers, booleans as booleans, dates and
    timestamps as ISO 8601 text (Klaviyo recognises them as dates)."""
    if value is None:
        return None
    if kind == "number":
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == "bool":
        return bool(value)
    if kind in ("date", "datetime") and isinstance(value, date | datetime):
        return formatted(value, kind)
    return str(value)


def profile(key: FieldMap, key_value: str, fields: tuple[FieldMap, ...], values: Mapping[str, Any]) -> dict:
    """One bulk-import profile. Bulk import cannot clear a field with null, so a custom property whose value is
    gone is unset through `meta.patch_properties`; an empty attribute is left as Klaviyo has it."""
    attributes: dict[str, Any] = {key.field: key_value}
    location: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    unset: list[str] = []
    for field in fields:
        value = json_value(values.get(field.field), field.type)
        if field.field in ATTRIBUTES or field.field in LOCATION:
            if value is not None:
                (attributes if field.field in ATTRIBUTES else location)[field.field] = value
        elif value is None:
            unset.append(field.field)
        else:
            properties[field.field] = value
    if location:
        attributes["location"] = location
    if properties:
        attributes["properties"] = properties
    row: dict[str, Any] = {"type": "profile", "attributes": attributes}
    if unset:
        row["meta"] = {"patch_properties": {"unset": unset}}
    return row


def import_job(profiles: list[dict]) -> dict:
    return {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": profiles}}}}


def subscription_job(emails: list[str]) -> dict:
    """Email marketing consent granted for these people (no list: a list's double opt-in does not apply)."""
    return {"data": {"type": "profile-subscription-bulk-create-job", "attributes": {"profiles": {"data": [
        {"type": "profile", "attributes": {"email": email, "subscriptions": {"email": {"marketing": {
            "consent": "SUBSCRIBED"}}}}} for email in emails]}}}}


def members(profile_ids: list[str]) -> dict:
    return {"data": [{"type": "profile", "id": profile_id} for profile_id in profile_ids]}


def deletion_job(profile_id: str) -> dict:
    return {"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data": {
        "type": "profile", "id": profile_id}}}}}


def encoded_bytes(body: Any) -> int:
    """The size of a body as it is sent."""
    return len(encode_body(body).encode("utf-8"))
