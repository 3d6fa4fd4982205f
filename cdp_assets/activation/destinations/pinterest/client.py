"""Pinterest Conversions API (`/v5/ad_accounts/{id}/events`), `Authorization: Bearer` conversion token.

A 200 answer lists a status per event in request order; failed ones are mapped back to their rows and
dead-lettered while the rest count as sent. Pinterest deduplicates web events by `event_id`; it does
not deduplicate offline events.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cdp_assets.activation.config import Destination
from cdp_assets.activation.events import currency_problem, epoch, event_id, identifiers, products, time_problem
from cdp_assets.activation.transport import OK, PARTIAL, Reply, Request, http_reply

BATCH_LIMIT = 1_000
FIELDS = ("em", "ph", "fn", "ln", "ct", "st", "zp", "country", "external_id")


class PinterestConversions:
    batch_limit = BATCH_LIMIT

    def __init__(self, destination: Destination) -> None:
        self.destination = destination
        self.api_url = (destination.setting("PINTEREST_API_URL") or "https://api.pinterest.com").rstrip("/")
        self.token = destination.setting("PINTEREST_ACCESS_TOKEN")
        self.ad_account_id = destination.setting("PINTEREST_AD_ACCOUNT_ID")
        self.hashing = destination.ad_platform.hashing.name  # the rules its identifiers are prepared by

    def missing(self) -> list[str]:
        return [self.destination.variable(v) for v, value in (("PINTEREST_ACCESS_TOKEN", self.token),
                                                              ("PINTEREST_AD_ACCOUNT_ID", self.ad_account_id))
                if not value]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}

    def secrets(self) -> list[str | None]:
        return [self.token]

    def request(self, operation: str, payloads: list[Any], last_batch: bool) -> Request:
        account = self.ad_account_id or "{PINTEREST_AD_ACCOUNT_ID}"
        return Request(operation, "POST", f"{self.api_url}/v5/ad_accounts/{account}/events", {"data": payloads},
                       len(payloads))

    def interpret(self, operation: str, status: int, text: str, headers: Mapping[str, str]) -> Reply:
        reply = http_reply(status, text, headers)
        reply.trace_id = headers.get("x-request-id")
        if reply.kind != OK:
            reply.message = f"Pinterest HTTP {status}: {reply.data.get('message') or text[:200]}"
            return reply
        events = reply.data.get("events") or []
        reply.failed_rows = {n: f"Pinterest: {e.get('error_message') or e.get('status')}"
                             for n, e in enumerate(events) if str(e.get("status")).lower() != "processed"}
        reply.kind = PARTIAL if reply.failed_rows else OK
        reply.reported = {k: int(reply.data[k]) for k in ("num_events_received", "num_events_processed")
                          if isinstance(reply.data.get(k), int)}
        return reply

    def event(self, row: Mapping[str, Any]) -> dict[str, Any]:
        user: dict[str, Any] = {f: [v] for f, v in identifiers(self.hashing, row, FIELDS).items()}
        for key, column in (("client_ip_address", "client_ip"), ("client_user_agent", "user_agent")):
            if row.get(column):
                user[key] = row[column]
        event: dict[str, Any] = {
            "event_name": self.destination.event_name, "event_time": epoch(row["order_ts"]),
            "event_id": event_id(self.destination, row),
            "action_source": "web" if row["action_source"] == "website" else "offline",
            "opt_out": False, "user_data": user,
            "custom_data": {"currency": (row["currency"] or "").upper(), "value": f"{float(row['value']):.2f}",
                            "order_id": row["order_id"], "content_ids": products(row), "num_items": len(products(row))},
        }
        if row.get("event_source_url"):
            event["event_source_url"] = row["event_source_url"]
        return event

    def problem(self, event: Mapping[str, Any], now: datetime) -> str | None:
        user = event["user_data"]
        if "em" not in user and "hashed_maids" not in user and not (
                user.get("client_ip_address") and user.get("client_user_agent")):
            return "Pinterest needs an email, a mobile ad id, or IP address and user agent together"
        return time_problem(event["event_time"], now, self.destination.max_event_age_days or 7, "Pinterest") \
            or currency_problem(event["custom_data"]["currency"])
