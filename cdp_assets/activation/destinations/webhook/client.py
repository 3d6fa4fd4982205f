"""A webhook: JSON batches POSTed to the sync's URL, signed with HMAC-SHA256 of the exact bytes sent.

The URL and the secret are the sync's own: `CDP_WEBHOOK_<NAME>_URL` and `CDP_WEBHOOK_<NAME>_SECRET`, NAME
being the sync's name upper-cased. Each body carries a `batch_id` derived from what it holds (the sync, the
operation and every record, not the time it was sent), so a batch sent again (a retry, or a re-run after a
crash) carries the same id and the receiver can keep one. Any 2xx acknowledges every record of the batch;
408, 429 and 5xx are retried (never sooner than `Retry-After`); 401 and 403 stop the sync; any other 4xx
refuses the batch, which the sender splits until the record the receiver refuses stands alone.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from cdp_assets.activation.destinations.base import Call, SetupFailed, formatted
from cdp_assets.activation.destinations.webhook.signing import signed_headers
from cdp_assets.activation.records.config import Sync
from cdp_assets.activation.transport import OK, Reply, Request, http_reply
from cdp_assets.settings import ConfigError, reject_unknown

DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE = 100, 1000
OPERATIONS = ("upsert", "clear", "delete")
OPTIONS = ("batch_size", "clear")


def variables(sync_name: str) -> tuple[str, str]:
    """The URL and secret variables of a sync: `zapier_leads` reads CDP_WEBHOOK_ZAPIER_LEADS_URL and _SECRET."""
    prefix = f"CDP_WEBHOOK_{sync_name.upper()}"
    return f"{prefix}_URL", f"{prefix}_SECRET"


def check_options(where: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The sync's `options:` for a webhook: `batch_size` (1 to 1000, default 100) and `clear` (the fields that
    may carry personal data in clear)."""
    reject_unknown(where, options, OPTIONS)
    size = options.get("batch_size", DEFAULT_BATCH_SIZE)
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_BATCH_SIZE:
        raise ConfigError(f"{where}.batch_size must be a whole number from 1 to {MAX_BATCH_SIZE} (found {size!r})")
    clear = options.get("clear") or []
    if not isinstance(clear, list) or not all(isinstance(name, str) and name for name in clear):
        raise ConfigError(f"{where}.clear must list the fields that may carry personal data in clear, such as "
                          "[email, first_name]")
    return {"batch_size": size, "clear": tuple(clear)}


def private_part(url: str) -> str | None:
    """What of a webhook URL may be a credential, never logged: everything after the host (a Zapier or Slack
    hook's token is its path), or the whole URL when it names a user or is not a URL at all."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if not parts.scheme or not parts.netloc or "@" in parts.netloc or not url.startswith(origin):
        return url
    rest = url[len(origin):]
    return rest if rest not in ("", "/") else None


def json_value(value: Any, kind: str) -> Any:
    """A warehouse value as JSON: numbers as numbers, booleans as booleans, dates and timestamps as ISO 8601
    (UTC, milliseconds), anything else as text; NULL (and a number that is not finite) as null."""
    if value is None:
        return None
    if kind == "bool":
        return bool(value)
    if kind == "number":
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        if not number.is_finite():
            return None
        return int(number) if number == number.to_integral_value() else float(number)
    if kind in ("date", "datetime") and isinstance(value, date | datetime):
        return formatted(value, kind)
    return str(value)


def batch_id(sync: str, operation: str, records: list[dict[str, Any]]) -> str:
    """The same batch always gets the same id: a digest of the sync, the operation and the records."""
    canonical = json.dumps([sync, operation, records], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


class WebhookRecords:
    """One sync's webhook client."""

    def __init__(self, sync: Sync) -> None:
        self.sync = sync
        self.url_variable, self.secret_variable = variables(sync.name)
        self.url = os.environ.get(self.url_variable) or None
        self.secret = os.environ.get(self.secret_variable) or None
        self.batch_limit = int(sync.options.get("batch_size", DEFAULT_BATCH_SIZE))
        self.parked: str | None = None  # a webhook has no daily limit to park on
        self.parked_until: datetime | None = None
        self._batch: list[str] = []  # the record ids of the request last built: the one being sent

    # ---- what the sender needs -------------------------------------------------------------------------
    def missing(self) -> list[str]:
        return [name for name, value in ((self.url_variable, self.url), (self.secret_variable, self.secret))
                if not value]

    def secrets(self) -> list[str | None]:
        return [self.secret, private_part(self.url) if self.url else None]

    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json"}

    def sign(self, request: Request) -> dict[str, str]:
        """The signature of this attempt, over the exact bytes it sends, with the time it is sent."""
        return signed_headers(self.secret or "", request.data or b"")

    def limit(self, operation: str) -> int:
        return self.batch_limit

    def record(self, key_value: str, fields: Mapping[str, Any], trace: str) -> dict[str, Any]:
        return {"key": key_value, "record_id": trace,
                "fields": {f.field: json_value(fields[f.field], f.type) for f in self.sync.all_fields}}

    def left(self, destination_id: str, fields: Mapping[str, Any], trace: str) -> dict[str, Any]:
        """A record that left the model is named by its record id only: its key may be personal data."""
        return {"record_id": trace}

    def request(self, operation: str, payloads: list[Any], last_batch: bool) -> Request:
        if operation not in OPERATIONS:
            raise ValueError(f"a webhook has no operation {operation!r}")
        # A deleted record's payload is its destination id, which for a webhook is its record id.
        records = payloads if operation == "upsert" else [
            {"record_id": p["record_id"] if isinstance(p, dict) else str(p)} for p in payloads]
        self._batch = [str(r["record_id"]) for r in records]
        body = {"sync": self.sync.name, "operation": operation,
                "sent_at": formatted(datetime.now(UTC), "datetime"),
                "batch_id": batch_id(self.sync.name, operation, records), "records": records}
        return Request(operation, "POST", self.url or f"{{{self.url_variable}}}", body, len(records))

    def interpret(self, operation: str, status: int, text: str, headers: Mapping[str, str]) -> Reply:
        reply = http_reply(status, text, headers)
        if reply.kind == OK:
            reply.ids = {record_id: record_id for record_id in self._batch}
        else:
            reply.message = f"webhook answered HTTP {status}: {' '.join(text.split())[:300] or 'no body'}"
        return reply

    # ---- set-up before any record is written -------------------------------------------------------------
    def prepare(self, call: Call | None) -> list[Request]:
        """Nothing to set up at a webhook; a live run checks the URL is one."""
        if call is not None and urlsplit(self.url or "").scheme not in ("http", "https"):
            raise SetupFailed(f"{self.url_variable} must be an http:// or https:// URL")
        return []

    def list_ids(self, names: list[str], call: Call | None) -> tuple[dict[str, str], list[Request]]:
        return {}, []
