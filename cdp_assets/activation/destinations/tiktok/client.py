"""TikTok Events API 2.0 (`/open_api/v1.3/event/track/`), token in the `Access-Token` header.

TikTok answers HTTP 200 even on failure, so the body `code` decides: 0 is success, 40100 (too many
requests) is retried, 40001 (auth) stops the destination, any other code refuses the batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cdp_assets.activation.config import Destination
from cdp_assets.activation.events import (
    currency_problem,
    epoch,
    event_id,
    identifiers,
    limited_data_use,
    products,
    time_problem,
)
from cdp_assets.activation.transport import AUTH, OK, REJECTED, TRANSIENT, Reply, Request, http_reply

BATCH_LIMIT = 1_000
FIELDS = ("em", "ph", "external_id", "zp", "ct", "st", "country")
USER_KEYS = {"em": "email", "ph": "phone", "external_id": "external_id"}
SUCCESS_CODES = {0, 20001}
TRANSIENT_CODES = {40100}
AUTH_CODES = {40001, 40105}


class TikTokEvents:
    batch_limit = BATCH_LIMIT

    def __init__(self, destination: Destination) -> None:
        self.destination = destination
        self.api_url = (destination.setting("TIKTOK_API_URL") or "https://business-api.tiktok.com").rstrip("/")
        self.token = destination.setting("TIKTOK_ACCESS_TOKEN")
        self.pixel_code = destination.setting("TIKTOK_PIXEL_CODE")
        self.hashing = destination.ad_platform.hashing.name  # the rules its identifiers are prepared by

    def missing(self) -> list[str]:
        return [self.destination.variable(v) for v, value in (("TIKTOK_ACCESS_TOKEN", self.token),
                                                              ("TIKTOK_PIXEL_CODE", self.pixel_code)) if not value]

    def headers(self) -> dict[str, str]:
        return {"Access-Token": self.token or "", "Content-Type": "application/json"}

    def secrets(self) -> list[str | None]:
        return [self.token]

    def request(self, operation: str, payloads: list[Any], last_batch: bool) -> Request:
        # operation is the event_source: one request carries events of one source (web or offline).
        body = {"event_source": operation, "event_source_id": self.pixel_code or "{TIKTOK_PIXEL_CODE}",
                "data": payloads}
        return Request(operation, "POST", f"{self.api_url}/open_api/v1.3/event/track/", body, len(payloads))

    def interpret(self, operation: str, status: int, text: str, headers: Mapping[str, str]) -> Reply:
        reply = http_reply(status, text, headers)
        code = reply.data.get("code")
        reply.trace_id = reply.data.get("request_id")
        if reply.kind != OK or not isinstance(code, int):
            if reply.kind == OK:
                reply.kind, reply.message = TRANSIENT, "TikTok answered without a code"
            return reply
        reply.message = f"TikTok code {code}: {reply.data.get('message')}"
        if code in SUCCESS_CODES:
            reply.reported = {"accepted_requests": 1}
        elif code in TRANSIENT_CODES or code >= 50000:
            reply.kind = TRANSIENT
        elif code in AUTH_CODES:
            reply.kind = AUTH
        else:
            reply.kind = REJECTED
        return reply

    @staticmethod
    def source(row: Mapping[str, Any]) -> str:
        return "web" if row["action_source"] == "website" else "offline"

    def event(self, row: Mapping[str, Any]) -> dict[str, Any]:
        found = identifiers(self.hashing, row, FIELDS)
        user: dict[str, Any] = {USER_KEYS[k]: [found[k]] for k in USER_KEYS if k in found}
        for key, field in (("zip_code", "zp"), ("city", "ct"), ("state", "st"), ("country", "country")):
            if field in found:
                user[key] = found[field]
        for key, column in (("ttclid", "ttclid"), ("ip", "client_ip"), ("user_agent", "user_agent")):
            if row.get(column):
                user[key] = row[column]
        event: dict[str, Any] = {
            "event": self.destination.event_name, "event_time": epoch(row["order_ts"]),
            "event_id": event_id(self.destination, row), "user": user,
            "properties": {"currency": (row["currency"] or "").upper(), "value": float(row["value"]),
                           "order_id": row["order_id"], "content_type": "product",
                           "contents": [{"content_id": p, "quantity": 1} for p in products(row)]},
            "limited_data_use": limited_data_use(row) is not None,
        }
        if row.get("event_source_url"):
            event["page"] = {"url": row["event_source_url"]}
        return event

    def problem(self, event: Mapping[str, Any], now: datetime) -> str | None:
        user = event["user"]
        if not any(k in user for k in ("email", "phone", "external_id", "ttclid", "ip")):
            return "no customer information to match on"
        return time_problem(event["event_time"], now, self.destination.max_event_age_days or 7, "TikTok") \
            or currency_problem(event["properties"]["currency"])
