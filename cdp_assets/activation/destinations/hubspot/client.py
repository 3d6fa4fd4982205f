"""HubSpot CRM v3: contacts written with `batch/upsert` (100 inputs), cleared with `batch/update`, archived with
`batch/archive`, GDPR-deleted one by one, and audiences kept as MANUAL lists (Lists v3).

Every input carries an `objectWriteTraceId` (the record's ledger key), so a 207's errors are matched back to
their records; after every batch `len(results) + numErrors == len(inputs)` must hold, or the batch is left
for a retry (HubSpot once answered COMPLETE with no results for a malformed body). A 429 names its policy:
`TEN_SECONDLY_ROLLING` waits for the next window; `DAILY` parks the rest of the run until the account's
midnight. The client paces itself to `HUBSPOT_MAX_REQUESTS_PER_10S` (default 100) requests per 10 s.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cdp_assets.activation.destinations.base import (
    FIELDS,
    KEY,
    TRACE,
    Call,
    EncodedRecord,
    SetupFailed,
    Shape,
    formatter,
    render,
)
from cdp_assets.activation.destinations.hubspot.properties import ensure_properties, wanted_properties
from cdp_assets.activation.records.config import Sync
from cdp_assets.activation.transport import AUTH, OK, PARTIAL, TRANSIENT, Reply, Request, encode_body, http_reply

DEFAULT_URL = "https://api.hubapi.com"
BATCH_LIMIT = 100
WINDOW_SECONDS = 10.0
OBJECT_TYPE_IDS = {"contacts": "0-1"}
LIMITS = {"upsert": BATCH_LIMIT, "clear": BATCH_LIMIT, "delete": BATCH_LIMIT, "gdpr_delete": 1}


class HubSpotRecords:
    """One sync's HubSpot client."""

    batch_limit = BATCH_LIMIT

    def __init__(self, sync: Sync) -> None:
        self.sync = sync
        self.base = (os.environ.get("HUBSPOT_API_URL") or DEFAULT_URL).rstrip("/")
        self.token = os.environ.get("HUBSPOT_ACCESS_TOKEN") or None
        self.per_window = int(os.environ.get("HUBSPOT_MAX_REQUESTS_PER_10S") or 100)
        self.parked: str | None = None
        self.parked_until: datetime | None = None
        self.time_zone = ZoneInfo("UTC")
        self._sent: deque[float] = deque()
        self._batch: list[tuple[str, str]] = []  # (trace id, key) of the inputs of the request last built
        self._members: list[str] = []  # the record ids of the membership request last built
        self.objects = f"{self.base}/crm/v3/objects/{sync.object}"
        self._formats = [(f.field, formatter(f.type)) for f in sync.all_fields]
        # One upsert input; the warehouse builds and encodes it (`records/encoded.py`), `record` in Python.
        self.shape: Shape = {"id": KEY, "idProperty": sync.key.field, "objectWriteTraceId": TRACE,
                             "properties": FIELDS}

    # ---- what the sender needs -------------------------------------------------------------------------
    def missing(self) -> list[str]:
        return [] if self.token else ["HUBSPOT_ACCESS_TOKEN"]

    def secrets(self) -> list[str | None]:
        return [self.token]

    def headers(self) -> dict[str, str]:
        self._pace()
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}

    def _pace(self) -> None:
        """Wait until one more request fits in the rolling 10-second window."""
        now = time.monotonic()
        while self._sent and now - self._sent[0] >= WINDOW_SECONDS:
            self._sent.popleft()
        if len(self._sent) >= self.per_window:
            time.sleep(WINDOW_SECONDS - (now - self._sent[0]))
            self._sent.popleft()
        self._sent.append(time.monotonic())

    def limit(self, operation: str) -> int:
        return LIMITS.get(operation.split(":")[0], BATCH_LIMIT)

    def record(self, key_value: str, fields: Mapping[str, Any], trace: str) -> dict[str, Any]:
        """One upsert input: the key, the trace id and every mapped property as HubSpot takes it."""
        return render(self.shape, key_value, trace,
                      {name: format_value(fields[name]) for name, format_value in self._formats})

    def left(self, destination_id: str, fields: Mapping[str, Any], trace: str) -> dict[str, Any]:
        """The input that clears a record that left the model (`on_leave: clear`), addressed by HubSpot id."""
        return {"id": destination_id, "objectWriteTraceId": trace,
                "properties": {f.field: "" for f in self.sync.all_fields}}

    def request(self, operation: str, payloads: list[Any], last_batch: bool) -> Request:
        kind, _, list_id = operation.partition(":")
        if kind in ("upsert", "clear"):
            self._batch = [(p.trace, p.key_value) if isinstance(p, EncodedRecord) else
                           (p["objectWriteTraceId"], str(p["id"])) for p in payloads]
            if len({key.lower() for _, key in self._batch}) != len(payloads):
                raise ValueError("a HubSpot batch may not hold one id twice; the sync's targets must be unique")
            path = "batch/upsert" if kind == "upsert" else "batch/update"
            url = f"{self.objects}/{path}"
            if not any(isinstance(p, EncodedRecord) for p in payloads):
                return Request(operation, "POST", url, {"inputs": payloads}, len(payloads))
            inputs = ",".join(p.text if isinstance(p, EncodedRecord) else encode_body(p) for p in payloads)
            return Request(operation, "POST", url, None, len(payloads), f'{{"inputs":[{inputs}]}}')
        if kind == "delete":
            return Request(operation, "POST", f"{self.objects}/batch/archive",
                           {"inputs": [{"id": p} for p in payloads]}, len(payloads))
        if kind == "gdpr_delete":
            return Request(operation, "POST", f"{self.objects}/gdpr-delete", {"objectId": payloads[0]}, 1)
        if kind in ("list_add", "list_remove"):
            verb = "add" if kind == "list_add" else "remove"
            self._members = [str(p) for p in payloads]
            return Request(operation, "PUT", f"{self.base}/crm/v3/lists/{list_id}/memberships/{verb}",
                           list(payloads), len(payloads))  # type: ignore[arg-type]
        raise ValueError(f"HubSpot has no operation {operation!r}")

    def interpret(self, operation: str, status: int, text: str, headers: Mapping[str, str]) -> Reply:
        reply = http_reply(status, text, headers)
        data = reply.data
        if status == 429:
            return self._rate_limited(reply, headers)
        if reply.kind != OK:
            reply.message = f"HubSpot {status} {data.get('category') or ''}: {data.get('message') or text[:200]}"
            reply.trace_id = data.get("correlationId")
            if status == 403 or status == 401:
                reply.kind = AUTH
            elif status in (423, 477):
                reply.kind = TRANSIENT
                reply.retry_after = reply.retry_after if reply.retry_after is not None else 2.0
            elif status == 404 and operation.startswith("gdpr_delete"):
                reply.kind = OK  # already gone: the deletion holds
            return reply
        kind = operation.split(":")[0]
        if kind in ("upsert", "clear"):
            return self._batch_reply(reply)
        if kind in ("list_add", "list_remove"):
            missing = set(map(str, data.get("recordIdsMissing") or []))
            return reply if not missing else self._missing_members(reply, missing)
        return reply

    def _batch_reply(self, reply: Reply) -> Reply:
        data = reply.data
        results = data.get("results") or []
        errors = data.get("errors") or []
        number_of_errors = int(data.get("numErrors") or len(errors))
        if len(results) + number_of_errors != len(self._batch):
            reply.kind = TRANSIENT
            reply.message = (f"HubSpot answered for {len(results) + number_of_errors} of {len(self._batch)} "
                             "inputs; the batch is sent again")
            return reply
        position = {trace: n for n, (trace, _) in enumerate(self._batch)}
        by_key = {key.lower(): trace for trace, key in self._batch}
        for result in results:
            trace = result.get("objectWriteTraceId") or by_key.get(
                str((result.get("properties") or {}).get(self.sync.key.field, "")).lower())
            if trace:
                reply.ids[trace] = str(result.get("id"))
        for error in errors:
            traces = (error.get("context") or {}).get("objectWriteTraceId") or []
            for trace in traces if isinstance(traces, list) else [traces]:
                if trace in position:
                    reply.failed_rows[position[trace]] = \
                        f"HubSpot {error.get('category') or 'error'}: {str(error.get('message'))[:300]}"
        reply.kind = PARTIAL if reply.failed_rows else OK
        reply.reported = {"created": sum(1 for r in results if r.get("new")),
                          "updated": sum(1 for r in results if r.get("new") is False)}
        return reply

    def _missing_members(self, reply: Reply, missing: set[str]) -> Reply:
        reply.kind = PARTIAL
        for n, record_id in enumerate(self._members):
            if str(record_id) in missing:
                reply.failed_rows[n] = f"HubSpot has no contact {record_id} (merged or deleted there)"
        return reply

    def _rate_limited(self, reply: Reply, headers: Mapping[str, str]) -> Reply:
        policy = reply.data.get("policyName")
        reply.kind = TRANSIENT
        if policy == "DAILY":
            midnight = (datetime.now(self.time_zone) + timedelta(days=1)).replace(hour=0, minute=0, second=0,
                                                                                   microsecond=0)
            self.parked = f"HubSpot daily API limit reached; parked until {midnight.isoformat()}"
            self.parked_until = midnight.astimezone(UTC).replace(tzinfo=None)
            reply.message = self.parked
            reply.retry_after = (midnight - datetime.now(self.time_zone)).total_seconds()
            return reply
        interval = headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
        reply.retry_after = float(interval) / 1000 if interval and interval.isdigit() else WINDOW_SECONDS
        reply.message = f"HubSpot 429 {policy or 'rate limit'}: waiting for the next window"
        return reply

    def confirm(self, records: list[dict[str, Any] | EncodedRecord], call: Call) -> dict[str, str]:
        """Of upsert inputs a killed run left in flight, those HubSpot holds with exactly these values (by
        trace id, with their HubSpot id), read back with batch/read by the sync key."""
        held: dict[str, str] = {}
        payloads = [p.decoded() if isinstance(p, EncodedRecord) else p for p in records]
        for start in range(0, len(payloads), BATCH_LIMIT):
            chunk = payloads[start:start + BATCH_LIMIT]
            wanted = sorted({self.sync.key.field, *(name for p in chunk for name in p["properties"])})
            reply = call(Request("read_back", "POST", f"{self.objects}/batch/read", {
                "idProperty": self.sync.key.field, "properties": wanted,
                "inputs": [{"id": p["id"]} for p in chunk]}, 0))
            found = {str((r.get("properties") or {}).get(self.sync.key.field, "")).lower(): r
                     for r in reply.data.get("results") or []}
            for payload in chunk:
                record = found.get(str(payload["id"]).lower())
                stored = (record or {}).get("properties") or {}
                if record and all(str(stored.get(k) or "") == v for k, v in payload["properties"].items()):
                    held[payload["objectWriteTraceId"]] = str(record["id"])
        return held

    # ---- set-up before any record is written -------------------------------------------------------------
    def prepare(self, call: Call | None) -> list[Request]:
        """Create the `cdp` property group and every mapped property that does not exist yet; in a dry run
        (`call` None) the requests a first sync makes."""
        if call is not None:
            details = call(Request("account_details", "GET", f"{self.base}/account-info/v3/details", None, 0))
            try:
                self.time_zone = ZoneInfo(str(details.data.get("timeZone") or "UTC"))
            except (ZoneInfoNotFoundError, ValueError):
                self.time_zone = ZoneInfo("UTC")
        return ensure_properties(self.base, self.sync.object, wanted_properties(self.sync), call)

    def list_ids(self, names: list[str], call: Call | None) -> tuple[dict[str, str], list[Request]]:
        """The MANUAL list of each name, looked up and created once; placeholders in a dry run."""
        ids, made = {}, []
        for name in names:
            create = Request("create_list", "POST", f"{self.base}/crm/v3/lists",
                             {"name": name, "objectTypeId": OBJECT_TYPE_IDS[self.sync.object],
                              "processingType": "MANUAL"}, 0)
            if call is None:
                ids[name], made = f"{{LIST_ID:{name}}}", [*made, create]
                continue
            found = call(Request("find_list", "GET", f"{self.base}/crm/v3/lists/object-type-id/"
                                 f"{OBJECT_TYPE_IDS[self.sync.object]}/name/{quote(name, safe='')}", None, 0))
            if found.http_status == 404:
                found = call(create)
                made.append(create)
            listed = found.data.get("list") or {}
            if found.kind != OK or not listed.get("listId"):
                raise SetupFailed(f"HubSpot list {name!r} could not be found or created: {found.message}")
            if listed.get("processingType") not in (None, "MANUAL", "SNAPSHOT"):
                raise SetupFailed(f"HubSpot list {name!r} is {listed['processingType']}; only MANUAL lists take "
                                  "memberships from the API. Rename it in HubSpot or change audiences.list")
            ids[name] = str(listed["listId"])
        return ids, made
