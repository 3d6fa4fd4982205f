"""A local webhook receiver on 127.0.0.1 that checks what the webhook destination promises its receivers.

`POST /<any path>` only (the path is part of the URL a user sets). Every request must carry
`X-CDP-Timestamp` (unix seconds, within `tolerance` of now) and `X-CDP-Signature: sha256=<hex>`, the
HMAC-SHA256 with `secret` of `<timestamp>.<raw body>`; the check is this file's own, not the destination's
code, and anything else is 401 `{"error": "bad signature"}`. The body must be JSON
`{"sync", "operation": "upsert" | "clear" | "delete", "sent_at": "<ISO 8601 UTC>", "batch_id", "records"}` with
1 to `max_records` records: `{"key", "record_id", "fields": {...}}` for an upsert, `{"record_id"}` alone for a
clear or a delete (a personal key there is a 400, as is any other shape).

A batch whose `batch_id` was accepted before is answered 200 `{"duplicate": true}` and counted in
`.duplicates`, never applied again (the deduplication the batch id exists for). An accepted batch is kept in
`.batches`, each record counted in `.deliveries` (record_id → records received) and applied to `.held`
(record_id → fields: an upsert sets them, a clear empties them, a delete removes the record). `poison(value)`
answers 422 `{"error": ...}` for any batch holding `value` as a key, record id or field value, so the sender
must bisect to isolate it.

Faults (`fail_next`, in order, on POSTs): "429" (with `Retry-After: <retry_after>`), "500", "timeout", "drop"
(closed before anything is applied) and "accept_then_drop" (applied, then closed unanswered); `kill` as in
ads.py. Every request is logged in `.requests`; those past the faults also in `.received`, with their raw
bytes, so a test can check a signature itself.
"""

import hashlib
import hmac
import sys
import time
from collections import Counter
from datetime import datetime

from tests.fakes._faulty_http import FaultyServer

OPERATIONS = ("upsert", "clear", "delete")
MAX_RECORDS = 1000
BODY_KEYS = {"sync", "operation", "sent_at", "batch_id", "records"}


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.body = status, {"error": message}


def _utc_iso(value: object) -> bool:
    if not isinstance(value, str) or not value.endswith("Z"):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


class FakeWebhook(FaultyServer):
    answer_faults = ("429", "500")

    def __init__(self, secret: str = "whsec-test-secret", tolerance: float = 300.0, max_records: int = MAX_RECORDS,
                 retry_after: str = "0") -> None:
        super().__init__()
        self.secret, self.tolerance, self.max_records, self.retry_after = secret, tolerance, max_records, retry_after
        self.path = "/hooks/catch/42/s3cr3t-path/"
        self.received: list[dict] = []  # {"headers", "raw"} of every request past the faults
        self.batches: list[dict] = []
        self.deliveries: Counter = Counter()
        self.held: dict[str, dict] = {}
        self.duplicates = 0
        self.refused: Counter = Counter()  # status → requests refused with it
        self.poisoned: set[str] = set()
        self._batch_ids: set[str] = set()

    @property
    def hook_url(self) -> str:
        """The URL a sync is given: a path with a token in it, like a Zapier catch hook."""
        return self.url + self.path

    def env(self, sync: str) -> dict[str, str]:
        name = f"CDP_WEBHOOK_{sync.upper()}"
        return {f"{name}_URL": self.hook_url, f"{name}_SECRET": self.secret}

    def poison(self, value: str) -> None:
        """Refuse (422) any batch that holds `value`."""
        with self._lock:
            self.poisoned.add(value)

    def records_received(self) -> int:
        return sum(self.deliveries.values())

    # ---- checks ---------------------------------------------------------------------------------------
    def _check_signature(self, headers, raw: bytes) -> None:
        timestamp, signed = headers.get("X-CDP-Timestamp"), headers.get("X-CDP-Signature") or ""
        if not timestamp or not timestamp.isascii() or not timestamp.isdigit():
            raise Refused(401, "bad signature: X-CDP-Timestamp must be unix seconds")
        if abs(time.time() - int(timestamp)) > self.tolerance:
            raise Refused(401, "bad signature: the timestamp is too old")
        expected = hmac.new(self.secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signed, f"sha256={expected}"):
            raise Refused(401, "bad signature")

    def _check_body(self, body: object) -> dict:
        if not isinstance(body, dict) or set(body) != BODY_KEYS:
            raise Refused(400, f"the body must be a JSON object with exactly {', '.join(sorted(BODY_KEYS))}")
        if body["operation"] not in OPERATIONS or not _utc_iso(body["sent_at"]):
            raise Refused(400, "operation must be upsert, clear or delete, and sent_at ISO 8601 UTC")
        if not isinstance(body["batch_id"], str) or not body["batch_id"]:
            raise Refused(400, "batch_id is required")
        records = body["records"]
        if not isinstance(records, list) or not 1 <= len(records) <= self.max_records:
            raise Refused(400, f"records must hold 1 to {self.max_records} records")
        for record in records:
            wanted = {"key", "record_id", "fields"} if body["operation"] == "upsert" else {"record_id"}
            if not isinstance(record, dict) or set(record) != wanted or not isinstance(record["record_id"], str):
                raise Refused(400, f"a {body['operation']} record must be exactly {', '.join(sorted(wanted))}")
            if "fields" in record and not isinstance(record["fields"], dict):
                raise Refused(400, "fields must be an object")
        return body

    def _poisoned(self, records: list[dict]) -> str | None:
        for record in records:
            values = [record.get("key"), record["record_id"], *(record.get("fields") or {}).values()]
            hit = next((str(v) for v in values if v is not None and str(v) in self.poisoned), None)
            if hit is not None:
                return f"record {record['record_id']} refused: a field holds a value this receiver does not take"
        return None

    def _apply(self, body: dict) -> None:
        self.batches.append(body)
        for record in body["records"]:
            record_id = record["record_id"]
            self.deliveries[record_id] += 1
            if body["operation"] == "upsert":
                self.held[record_id] = {"key": record["key"], **record["fields"]}
            elif body["operation"] == "clear":
                self.held[record_id] = {}
            else:
                self.held.pop(record_id, None)

    # ---- dispatch -------------------------------------------------------------------------------------
    def _carries_records(self, method: str, path: str) -> bool:
        return method == "POST"

    def _fault_answer(self, fault: str) -> tuple[int, dict, dict[str, str]]:
        if fault == "429":
            return 429, {"error": "slow down"}, {"Retry-After": self.retry_after}
        return 500, {"error": "internal error"}, {}

    def _handle(self, method: str, path: str, query: dict, headers, raw: bytes,
                body: object) -> tuple[int, dict, dict[str, str]]:
        self.received.append({"headers": dict(headers), "raw": raw})
        try:
            if method != "POST" or path != self.path:
                raise Refused(404, f"no hook at {method} {path}")
            self._check_signature(headers, raw)
            if headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
                raise Refused(400, "Content-Type must be application/json")
            checked = self._check_body(body)
            if checked["batch_id"] in self._batch_ids:
                self.duplicates += 1
                return 200, {"duplicate": True}, {}
            poisoned = self._poisoned(checked["records"])
            if poisoned:
                raise Refused(422, poisoned)
            self._batch_ids.add(checked["batch_id"])
            self._apply(checked)
            return 200, {"accepted": len(checked["records"])}, {}
        except Refused as refused:
            self.refused[refused.status] += 1
            return refused.status, refused.body, {}


if __name__ == "__main__":
    with FakeWebhook() as server:
        print(server.hook_url, flush=True)
        sys.stdin.read()  # serve until the parent closes our stdin
