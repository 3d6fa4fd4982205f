"""GA4 Measurement Protocol (`/mp/collect`): purchases GA4 never saw, sent to the property they belong in.

One body per order: a body carries one `client_id`, and no two orders share a person's session here. The
secret travels in the query string, so it is scrubbed from every logged URL and message. Production answers 2xx
to anything, so a 2xx is no receipt: a record is `sent_unconfirmed` unless the validation server
(`/debug/mp/collect`) checked it first (`validation.py`); what that server names is dead-lettered instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from cdp_assets.activation.config import Destination
from cdp_assets.activation.destinations.ga4_measurement_protocol import validation
from cdp_assets.activation.events import currency_problem, epoch, identifiers, products, time_problem
from cdp_assets.activation.sender import Item
from cdp_assets.activation.transport import AUTH, OK, REJECTED, Reply, Request, assemble, http_reply
from cdp_assets.privacy.geo import country_code
from cdp_assets.privacy.hashing import lower, state

DEFAULT_URL = "https://www.google-analytics.com"
GOOGLE_FIELDS = ("em", "ph", "fn", "ln", "zp", "country")
USER_DATA = {"em": "sha256_email_address", "ph": "sha256_phone_number"}
ADDRESS = {"fn": "sha256_first_name", "ln": "sha256_last_name", "zp": "postal_code", "country": "country"}
COLLECT, VALIDATE = "collect", "validate"


class MeasurementProtocol:
    batch_limit = 1  # one body per request: each carries one person's client id

    def __init__(self, destination: Destination) -> None:
        self.destination = destination
        self.api_url = (destination.setting("GA4_MP_URL") or DEFAULT_URL).rstrip("/")
        self.measurement_id = destination.setting("GA4_MEASUREMENT_ID")
        self.api_secret = destination.setting("GA4_API_SECRET")
        self.hashing = destination.ad_platform.hashing.name
        self.share = validation.sample_share(destination.setting("GA4_MP_VALIDATION_SAMPLE"))

    def missing(self) -> list[str]:
        return [self.destination.variable(v) for v, value in (("GA4_MEASUREMENT_ID", self.measurement_id),
                                                              ("GA4_API_SECRET", self.api_secret)) if not value]

    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json"}

    def secrets(self) -> list[str | None]:
        return [self.api_secret]

    def request(self, operation: str, payloads: list[Any], last_batch: bool) -> Request:
        path = "/debug/mp/collect" if operation == VALIDATE else "/mp/collect"
        query = (f"measurement_id={self.measurement_id or '{GA4_MEASUREMENT_ID}'}"
                 f"&api_secret={self.api_secret or '{GA4_API_SECRET}'}")
        [body] = payloads
        return Request(operation, "POST", f"{self.api_url}{path}?{query}", body, 1)

    def interpret(self, operation: str, status: int, text: str, headers: Mapping[str, str]) -> Reply:
        reply = http_reply(status, text, headers)
        if reply.kind != OK:
            # Google checks neither the secret nor the id (it answers 2xx whatever they are), so there is no
            # authentication error to stop on: a 4xx is a body it refused.
            reply.kind = REJECTED if reply.kind == AUTH else reply.kind
            reply.message = f"GA4 Measurement Protocol HTTP {status}: {text[:200]}"
            return reply
        if operation == VALIDATE:
            messages = reply.data.get("validationMessages") or []
            if messages:
                reply.kind = REJECTED
                reply.message = "GA4 validation: " + "; ".join(
                    f"{m.get('validationCode')} at {m.get('fieldPath') or 'the body'}: {m.get('description')}"
                    for m in messages)[:500]
            return reply
        reply.unconfirmed = True
        return reply

    def check_first(self, warehouse: Any, items: list[Item], call: Callable[[Request, Item], Reply]
                    ) -> tuple[list[Item], list[tuple[Item, str]], list[tuple[Item, str]]]:
        """Bodies of a new shape, and the sample, checked by the validation server before anything is sent."""
        return validation.validate_first(
            warehouse, self.destination.name, self.share, items,
            lambda item: assemble(lambda records: self.request(VALIDATE, records, True), [item.payload]), call)

    def would_validate(self, warehouse: Any, bodies: list[tuple[str, Any]]) -> int:
        """How many of a dry run's bodies a live run would check first."""
        return len(validation.chosen(warehouse, self.destination.name, self.share, bodies))

    def record_key(self, event: Mapping[str, Any]) -> str:
        """The ledger key of a body: its order id (the `transaction_id` GA4 deduplicates on)."""
        events = event.get("events") or [{}]
        return str(events[0].get("params", {}).get("transaction_id") or event.get("event_id"))

    def event(self, row: Mapping[str, Any]) -> dict[str, Any]:
        found = identifiers(self.hashing, row, GOOGLE_FIELDS)
        user_data: dict[str, Any] = {USER_DATA[f]: [found[f]] for f in USER_DATA if f in found}
        address = {ADDRESS[f]: found[f] for f in ADDRESS if f in found}
        region = country_code(row.get("country"))
        city, region_code = lower((row.get("city") or "").strip(), region), state(row.get("state") or "", region)
        address.update({k: v for k, v in (("city", city), ("region", region_code)) if v})
        if address:
            user_data["address"] = [address]
        items = Counter(products(row))
        params: dict[str, Any] = {
            "transaction_id": str(row["order_id"]), "value": round(float(row["value"]), 2),
            "currency": (row["currency"] or "").upper(), "engagement_time_msec": 1,
        }
        if items:
            params["items"] = [{"item_id": item, "quantity": n} for item, n in items.items()]
        body: dict[str, Any] = {
            "client_id": row.get("ga_client_id") or "", "user_id": str(row["profile_id"]),
            "timestamp_micros": epoch(row["order_ts"]) * 1_000_000,
            # Only people who granted the destination's purpose get this far; ads personalization is its own.
            "consent": {"ad_user_data": "GRANTED",
                        "ad_personalization": "GRANTED" if row.get("ads_personalization") else "DENIED"},
            "events": [{"name": self.destination.event_name, "params": params}],
        }
        if user_data:
            body["user_data"] = user_data
        return body

    def problem(self, event: Mapping[str, Any], now: datetime) -> str | None:
        if not event["client_id"]:
            return "no GA4 client id: the contact has no ga_client_id, and a client id is never invented"
        params = event["events"][0]["params"]
        seconds = event["timestamp_micros"] // 1_000_000
        return time_problem(seconds, now.astimezone(UTC), self.destination.max_event_age_days or 3,
                            "the GA4 Measurement Protocol") or currency_problem(params["currency"])
