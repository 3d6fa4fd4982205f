"""Braze REST: users written with `POST /users/track` (attribute objects by `external_id`, 75 a request),
cleared with nulls through the same endpoint, and deleted with `POST /users/delete` (50 `external_ids` a
request).

Braze answers a 2xx even when it refused some objects: the refused ones are listed in `errors` by their index
in the request's `attributes` array, so each is dead-lettered with Braze's message and the others are
acknowledged. An error that names no object of the request (no index) sends the batch back to be split, so
the sender isolates the record it belongs to; resending attributes is harmless (they are set, not added). A
429 is waited for until `X-RateLimit-Reset` (UNIX seconds; Braze sends no Retry-After); a response saying no
request is left in the window makes the next request wait for the reset too. 401, 403 (a key without the
`users.track` / `users.delete` permission) and 404 (an unknown key or the wrong instance's endpoint) stop the
sync; 5xx is retried; a 202 `queued` (Braze in maintenance) is accepted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from cdp_assets.activation.destinations.base import Call
from cdp_assets.activation.destinations.braze.payloads import attribute_value, header, object_errors, reset_wait
from cdp_assets.activation.records.config import Sync
from cdp_assets.activation.transport import AUTH, OK, PARTIAL, REJECTED, Reply, Request, http_reply

TRACK_LIMIT = 75  # attribute objects per /users/track request (per array; 50 combined on some newer contracts)
DELETE_LIMIT = 50  # identifiers per /users/delete request
WINDOW_SECONDS = 3.0  # /users/track's rate-limit window, the wait when a 429 names no reset
PLACEHOLDER = "{BRAZE_REST_ENDPOINT}"


class Tracked(NamedTuple):
    """One attribute object and the ledger key of its record (never sent: Braze would store it)."""

    trace: str
    attributes: dict[str, Any]


def rest_endpoint(value: str | None) -> str | None:
    """The instance's REST endpoint as a base URL; the dashboard shows it with or without `https://`."""
    value = (value or "").strip().rstrip("/")
    if not value:
        return None
    return value if value.startswith(("https://", "http://")) else f"https://{value}"


class BrazeRecords:
    """One sync's Braze client."""

    def __init__(self, sync: Sync) -> None:
        self.sync = sync
        self.batch_limit = int(sync.options.get("batch_size") or TRACK_LIMIT)
        self.endpoint = rest_endpoint(os.environ.get("BRAZE_REST_ENDPOINT"))
        self.base = self.endpoint or PLACEHOLDER  # a dry run without it plans against the placeholder
        self.key = os.environ.get("BRAZE_API_KEY") or None
        self.parked: str | None = None
        self._batch: list[tuple[str, str]] = []  # (trace, external_id) of the attribute objects last requested
        self._resume_at = 0.0  # epoch seconds: the window was spent, wait for its reset before the next request

    # ---- what the sender needs -------------------------------------------------------------------------
    def missing(self) -> list[str]:
        return [name for name, value in (("BRAZE_API_KEY", self.key), ("BRAZE_REST_ENDPOINT", self.endpoint))
                if not value]

    def secrets(self) -> list[str | None]:
        return [self.key]

    def headers(self) -> dict[str, str]:
        wait = self._resume_at - time.time()
        if wait > 0:
            time.sleep(min(wait, WINDOW_SECONDS * 20))
        return {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}

    def limit(self, operation: str) -> int:
        return DELETE_LIMIT if operation in ("delete", "gdpr_delete") else self.batch_limit

    def record(self, key_value: str, fields: Mapping[str, Any], trace: str) -> Tracked:
        """One attribute object: the external_id and every mapped field in its type (None clears it)."""
        values = {f.field: attribute_value(fields[f.field], f.type) for f in self.sync.all_fields}
        return Tracked(trace, {"external_id": key_value, **values})

    def left(self, destination_id: str, fields: Mapping[str, Any], trace: str) -> Tracked:
        """The object that clears a record that left the model (`on_leave: clear`): null for every mapped field."""
        return Tracked(trace, {"external_id": destination_id, **{f.field: None for f in self.sync.all_fields}})

    def request(self, operation: str, payloads: list[Any], last_batch: bool) -> Request:
        if operation in ("upsert", "clear"):
            objects = [p.attributes for p in payloads]
            self._batch = [(p.trace, str(p.attributes["external_id"])) for p in payloads]
            return Request(operation, "POST", f"{self.base}/users/track", {"attributes": objects}, len(objects))
        if operation in ("delete", "gdpr_delete"):
            return Request(operation, "POST", f"{self.base}/users/delete",
                           {"external_ids": [str(p) for p in payloads]}, len(payloads))
        raise ValueError(f"Braze has no operation {operation!r}")

    def interpret(self, operation: str, status: int, text: str, headers: Mapping[str, str]) -> Reply:
        reply = http_reply(status, text, headers)
        if header(headers, "X-RateLimit-Remaining") == "0":
            wait = reset_wait(headers)
            self._resume_at = time.time() + wait if wait else 0.0
        if status == 429:
            wait = reply.retry_after if reply.retry_after is not None else reset_wait(headers)
            reply.retry_after = WINDOW_SECONDS if wait is None else wait
            reply.message = f"Braze 429 rate limited: waiting {reply.retry_after:.1f} s for X-RateLimit-Reset"
            self._resume_at = 0.0  # the retry waits already
            return reply
        if reply.kind != OK:
            reply.message = f"Braze {status}: {str(reply.data.get('message') or text[:200]).strip()}"
            if status == 404:
                reply.kind = AUTH
                reply.message += " (an unknown API key, or BRAZE_REST_ENDPOINT is not your workspace's instance)"
            return reply
        if operation in ("upsert", "clear"):
            return self._track_reply(reply, operation)
        deleted = reply.data.get("deleted")
        if isinstance(deleted, int):
            reply.reported = {"users_deleted": deleted}
        return reply

    def _track_reply(self, reply: Reply, operation: str) -> Reply:
        failed, unplaced = object_errors(reply.data, len(self._batch))
        if unplaced and len(self._batch) == 1:
            failed[0] = "; ".join([*([failed[0]] if 0 in failed else []), *unplaced])
        elif unplaced:
            reply.kind = REJECTED  # split the batch until the record the error belongs to stands alone
            reply.message = f"Braze reported errors it placed on no object ({'; '.join(unplaced)[:300]})"
            return reply
        reply.failed_rows = failed
        reply.kind = PARTIAL if failed else OK
        if operation == "upsert":
            reply.ids = {trace: external_id for n, (trace, external_id) in enumerate(self._batch) if n not in failed}
        processed = reply.data.get("attributes_processed")
        reply.reported = {"attributes_processed": processed} if isinstance(processed, int) else {}
        if reply.data.get("message") == "queued":
            reply.reported["requests_queued"] = 1
        return reply

    # ---- set-up before any record is written -------------------------------------------------------------
    def prepare(self, call: Call | None) -> list[Request]:
        """Nothing to create: Braze makes a custom attribute the first time a user carries it."""
        return []

    def list_ids(self, names: list[str], call: Call | None) -> tuple[dict[str, str], list[Request]]:
        return {}, []  # audiences are boolean attributes; Braze users have no lists here

