"""Meta Conversions API events and Custom Audience rows, built exactly as they are sent.

Identifiers are normalized and hashed per Meta's rules (cdp_assets.privacy.pii); click and browser ids
(fbc, fbp), IP address and user agent are sent as they are, never hashed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cdp_assets.privacy.geo import country_code
from cdp_assets.privacy.pii import meta_hash

CAPI_BATCH_LIMIT = 1_000
AUDIENCE_BATCH_LIMIT = 10_000
AUDIENCE_SCHEMA = ["EXTERN_ID", "EMAIL", "PHONE", "FN", "LN", "CT", "ST", "ZIP", "COUNTRY"]
PHYSICAL_STORE_MAX_AGE_DAYS = 62
MAX_FUTURE_SKEW = timedelta(minutes=1)
PROFILE_FIELDS = (("em", "email"), ("ph", "phone_e164"), ("fn", "first_name"), ("ln", "last_name"),
                  ("ct", "city"), ("st", "state"), ("zp", "postal_code"), ("country", "country"))


@dataclass(frozen=True)
class MetaSettings:
    """Meta account settings from the environment; missing ids become visible placeholders in dry run."""

    graph_url: str
    api_version: str
    pixel_id: str | None
    test_event_code: str | None

    @classmethod
    def from_env(cls) -> MetaSettings:
        return cls(
            graph_url=(os.environ.get("META_GRAPH_URL") or "https://graph.facebook.com").rstrip("/"),
            api_version=os.environ.get("META_API_VERSION") or "v25.0",
            pixel_id=os.environ.get("META_PIXEL_ID") or None,
            test_event_code=os.environ.get("META_TEST_EVENT_CODE") or None,
        )

    def events_url(self) -> str:
        return f"{self.graph_url}/{self.api_version}/{self.pixel_id or '{META_PIXEL_ID}'}/events"

    def audience_users_url(self, audience_id: str | None) -> str:
        return f"{self.graph_url}/{self.api_version}/{audience_id or '{AUDIENCE_ID}'}/users"


def _hashed(row: Mapping[str, Any]) -> dict[str, str]:
    region = country_code(row.get("country"))
    hashed = {field: meta_hash(field, row.get(column), region) for field, column in PROFILE_FIELDS}
    hashed["external_id"] = meta_hash("external_id", row.get("contact_id"))
    return {k: v for k, v in hashed.items() if v}


def _epoch(moment: datetime) -> int:
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def purchase_event(row: Mapping[str, Any]) -> dict[str, Any]:
    """A CAPI Purchase event for one conversion row; event_id is the order id, as the site's pixel sends it."""
    user_data: dict[str, Any] = {field: [digest] for field, digest in _hashed(row).items()}
    for key, column in (("client_ip_address", "client_ip"), ("client_user_agent", "user_agent"),
                        ("fbc", "fbc"), ("fbp", "fbp")):
        if row.get(column):
            user_data[key] = row[column]
    products = [p for p in (row.get("product_ids") or "").split("|") if p]
    event: dict[str, Any] = {
        "event_name": "Purchase",
        "event_time": _epoch(row["order_ts"]),
        "event_id": row["order_id"],
        "action_source": row["action_source"],
        "user_data": user_data,
        "custom_data": {
            "currency": row["currency"].lower(),
            "value": float(row["value"]),
            "order_id": row["order_id"],
            "contents": [{"id": p, "quantity": 1} for p in products],
        },
    }
    if row.get("event_source_url"):
        event["event_source_url"] = row["event_source_url"]
    return event


def purchase_problem(event: Mapping[str, Any], now: datetime, max_age_days: int) -> str | None:
    """Why Meta would reject this event (and with it the whole request), or None if it may be sent."""
    limit = PHYSICAL_STORE_MAX_AGE_DAYS if event["action_source"] == "physical_store" else max_age_days
    age = now - datetime.fromtimestamp(event["event_time"], UTC)
    if age > timedelta(days=limit):
        return f"event_time is {age.days} days old; Meta accepts at most {limit}"
    if age < -MAX_FUTURE_SKEW:
        return "event_time is in the future"
    user = event["user_data"]
    if event["action_source"] == "website" and not (user.get("client_user_agent") and event.get("event_source_url")):
        return "website events need client_user_agent and event_source_url"
    if not any(k in user for k in ("em", "ph", "external_id", "fbc", "fbp", "client_ip_address")):
        return "no customer information to match on"
    return None


def events_body(events: list[dict[str, Any]], test_event_code: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"data": events}
    if test_event_code:
        body["test_event_code"] = test_event_code
    return body


def audience_row(member: Mapping[str, Any]) -> list[str] | None:
    """A multi-key schema row (AUDIENCE_SCHEMA order; "" where unknown), or None without email or phone.

    EXTERN_ID is the profile id, sent unhashed as Meta's Custom Audiences expect.
    """
    hashed = _hashed({**member, "contact_id": None})
    if "em" not in hashed and "ph" not in hashed:
        return None
    keys = ("em", "ph", "fn", "ln", "ct", "st", "zp", "country")
    return [member["profile_id"], *(hashed.get(k, "") for k in keys)]


def session_id(*parts: str) -> int:
    """A stable 63-bit upload session id, so a re-run of the same upload builds the same requests."""
    return int(hashlib.sha256(":".join(parts).encode()).hexdigest()[:15], 16)


def audience_bodies(rows: list[list[str]], session: int) -> list[dict[str, Any]]:
    """Add-users request bodies of at most AUDIENCE_BATCH_LIMIT rows, numbered in one upload session."""
    batches = [rows[i:i + AUDIENCE_BATCH_LIMIT] for i in range(0, len(rows), AUDIENCE_BATCH_LIMIT)]
    return [
        {
            "payload": {"schema": AUDIENCE_SCHEMA, "data": batch},
            "session": {"session_id": session, "batch_seq": seq, "last_batch_flag": seq == len(batches),
                        "estimated_num_total": len(rows)},
        }
        for seq, batch in enumerate(batches, start=1)
    ]
