"""Meta: Conversions API events (`/{pixel_id}/events`) and Custom Audience members (`/{audience_id}/users`).

The token travels in the `Authorization` header, never in a URL. Graph errors are read from the body:
codes 1, 2, 4, 17, 341, 368, 80003 and `is_transient` are retried; 190 (token) and 200 (permission) stop
the destination; anything else refuses the batch, which the sender then bisects (one invalid event
makes Meta reject the whole request).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cdp_assets.activation.config import Destination
from cdp_assets.activation.events import (
    PHYSICAL_STORE_MAX_AGE_DAYS,
    currency_problem,
    epoch,
    event_id,
    identifiers,
    limited_data_use,
    products,
    time_problem,
)
from cdp_assets.activation.transport import AUTH, OK, REJECTED, TRANSIENT, Reply, Request, http_reply

CAPI_BATCH_LIMIT = 1_000
AUDIENCE_BATCH_LIMIT = 10_000
AUDIENCE_SCHEMA = ["EXTERN_ID", "EMAIL", "PHONE", "FN", "LN", "CT", "ST", "ZIP", "COUNTRY"]
AUDIENCE_FIELDS = ("em", "ph", "fn", "ln", "ct", "st", "zp", "country")
CAPI_FIELDS = (*AUDIENCE_FIELDS, "external_id")
TRANSIENT_CODES = {1, 2, 4, 17, 341, 368, 80003}
AUTH_CODES = {190, 200}


def interpret(status: int, text: str, headers: Mapping[str, str]) -> Reply:
    reply = http_reply(status, text, headers)
    error = reply.data.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        reply.trace_id = error.get("fbtrace_id")
        reply.message = f"Meta error {code}/{error.get('error_subcode')}: {error.get('message')}"
        if code in AUTH_CODES:
            reply.kind = AUTH
        elif error.get("is_transient") or code in TRANSIENT_CODES:
            reply.kind = TRANSIENT
        elif reply.kind != TRANSIENT:  # an HTML or unknown 5xx stays transient
            reply.kind = REJECTED
    elif reply.kind == OK:
        reply.trace_id = reply.data.get("fbtrace_id")
        reply.reported = {k: int(reply.data[k]) for k in ("events_received", "num_received", "num_invalid_entries")
                          if isinstance(reply.data.get(k), int)}
    return reply


class MetaClient:
    """Shared by both Meta channels: base URL, version, token and how answers are read."""

    def __init__(self, destination: Destination) -> None:
        self.destination = destination
        self.graph_url = (destination.setting("META_GRAPH_URL") or "https://graph.facebook.com").rstrip("/")
        self.version = destination.setting("META_API_VERSION") or "v25.0"
        self.token = destination.setting("META_ACCESS_TOKEN")
        self.hashing = destination.ad_platform.hashing.name  # the rules its identifiers are prepared by

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}

    def secrets(self) -> list[str | None]:
        return [self.token]

    def interpret(self, operation: str, status: int, text: str, headers: Mapping[str, str]) -> Reply:
        return interpret(status, text, headers)


class MetaCapi(MetaClient):
    batch_limit = CAPI_BATCH_LIMIT

    def __init__(self, destination: Destination) -> None:
        super().__init__(destination)
        self.pixel_id = destination.setting("META_PIXEL_ID")
        self.test_event_code = destination.setting("META_TEST_EVENT_CODE")

    def missing(self) -> list[str]:
        return [self.destination.variable(v) for v, value in (("META_ACCESS_TOKEN", self.token),
                                                              ("META_PIXEL_ID", self.pixel_id)) if not value]

    def request(self, operation: str, payloads: list[Any], last_batch: bool) -> Request:
        body: dict[str, Any] = {"data": payloads}
        if self.test_event_code:
            body["test_event_code"] = self.test_event_code
        url = f"{self.graph_url}/{self.version}/{self.pixel_id or '{META_PIXEL_ID}'}/events"
        return Request(operation, "POST", url, body, len(payloads))

    def event(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A CAPI event for one conversion row; `event_id` is what the site's pixel sends as eventID."""
        user_data: dict[str, Any] = {f: [v] for f, v in identifiers(self.hashing, row, CAPI_FIELDS).items()}
        for key, column in (("client_ip_address", "client_ip"), ("client_user_agent", "user_agent"),
                            ("fbc", "fbc"), ("fbp", "fbp")):
            if row.get(column):
                user_data[key] = row[column]
        event: dict[str, Any] = {
            "event_name": self.destination.event_name, "event_time": epoch(row["order_ts"]),
            "event_id": event_id(self.destination, row), "action_source": row["action_source"],
            "user_data": user_data,
            "custom_data": {"currency": (row["currency"] or "").lower(), "value": float(row["value"]),
                            "order_id": row["order_id"], "contents": [{"id": p, "quantity": 1} for p in products(row)]},
            "data_processing_options": [],
        }
        if row.get("event_source_url"):
            event["event_source_url"] = row["event_source_url"]
        state = limited_data_use(row)
        if state is not None:
            event.update(data_processing_options=["LDU"], data_processing_options_country=1,
                         data_processing_options_state=state)
        return event

    def problem(self, event: Mapping[str, Any], now: datetime) -> str | None:
        """Why Meta would reject this event (and with it the whole request), or None if it may be sent."""
        limit = PHYSICAL_STORE_MAX_AGE_DAYS if event["action_source"] == "physical_store" \
            else self.destination.max_event_age_days or 7
        user = event["user_data"]
        website = event["action_source"] == "website"
        if website and not (user.get("client_user_agent") and event.get("event_source_url")):
            return "website events need client_user_agent and event_source_url"
        if not any(k in user for k in ("em", "ph", "external_id", "fbc", "fbp", "client_ip_address")):
            return "no customer information to match on"
        return time_problem(event["event_time"], now, limit, "Meta") or \
            currency_problem(event["custom_data"]["currency"])


class MetaAudience(MetaClient):
    """One Custom Audience upload: add (POST /users), remove (DELETE /users) or replace (/usersreplace), all
    batches of one upload in one session (`session_id`, increasing `batch_seq`, `last_batch_flag`)."""

    batch_limit = AUDIENCE_BATCH_LIMIT
    fields = AUDIENCE_FIELDS

    def __init__(self, destination: Destination, audience_id: str | None) -> None:
        super().__init__(destination)
        self.audience_id = audience_id
        self.session: dict[str, Any] = {}

    def missing(self) -> list[str]:
        return [self.destination.variable("META_ACCESS_TOKEN")] if not self.token else []

    def row(self, profile_id: str, hashed: Mapping[str, str]) -> list[str]:
        """A multi-key schema row in AUDIENCE_SCHEMA order, "" where unknown; EXTERN_ID (the profile id) is
        sent unhashed, as Custom Audiences expect."""
        return [profile_id, *(hashed.get(k, "") for k in AUDIENCE_FIELDS)]

    def start_session(self, session_id: int, next_batch_seq: int, estimated_total: int) -> None:
        self.session = {"session_id": session_id, "batch_seq": next_batch_seq, "estimated_num_total": estimated_total}

    def request(self, operation: str, payloads: list[Any], last_batch: bool) -> Request:
        session = {"session_id": self.session["session_id"], "batch_seq": self.session["batch_seq"],
                   "last_batch_flag": last_batch, "estimated_num_total": self.session["estimated_num_total"]}
        self.session["batch_seq"] += 1
        target = f"{self.graph_url}/{self.version}/{self.audience_id or '{AUDIENCE_ID}'}"
        method, path = {"add": ("POST", "users"), "remove": ("DELETE", "users"),
                        "replace": ("POST", "usersreplace")}[operation]
        return Request(operation, method, f"{target}/{path}",
                       {"payload": {"schema": AUDIENCE_SCHEMA, "data": payloads}, "session": session}, len(payloads))
