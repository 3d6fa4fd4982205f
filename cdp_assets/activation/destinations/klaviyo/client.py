"""Klaviyo (JSON:API, pinned revision): profiles written through bulk import jobs (10,000 profiles and 5 MB a
job), read back later; audiences kept as lists by relationship; email marketing consent sent once per
consented person through subscription jobs; deletions through data privacy deletion jobs.

Answers: 202 accepted (a job), 204 done, 429 waits for its `Retry-After`, 5xx is retried, 401/403 stops the
destination, any other 4xx refuses the batch (the sender halves it until the bad record stands alone).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from cdp_assets.activation.destinations.base import Call, SetupFailed
from cdp_assets.activation.destinations.klaviyo import payloads as wire
from cdp_assets.activation.destinations.klaviyo.imports import read_job
from cdp_assets.activation.records.config import Sync
from cdp_assets.activation.records.jobs import JobOutcome
from cdp_assets.activation.transport import OK, Reply, Request, http_reply

DEFAULT_URL = "https://a.klaviyo.com"
REVISION = "2025-10-15"  # pinned: a newer revision is adopted deliberately, with this folder's tests
JSONAPI = "application/vnd.api+json"
IMPORT_LIMIT, LIST_LIMIT, SUBSCRIBE_LIMIT = 10_000, 1_000, 1_000
LIMITS = {"upsert": IMPORT_LIMIT, "list_add": LIST_LIMIT, "list_remove": LIST_LIMIT, "subscribe": SUBSCRIBE_LIMIT,
          "gdpr_delete": 1}


class KlaviyoRecords:
    """One sync's Klaviyo client."""

    batch_limit = IMPORT_LIMIT

    def __init__(self, sync: Sync) -> None:
        self.sync = sync
        self.base = (os.environ.get("KLAVIYO_API_URL") or DEFAULT_URL).rstrip("/")
        self.key = os.environ.get("KLAVIYO_API_KEY") or None
        self.parked: str | None = None  # Klaviyo has no daily limit: its 429s name the seconds to wait
        self.parked_until: datetime | None = None

    # ---- what the sender needs -------------------------------------------------------------------------
    def missing(self) -> list[str]:
        return [] if self.key else ["KLAVIYO_API_KEY"]

    def secrets(self) -> list[str | None]:
        return [self.key]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Klaviyo-API-Key {self.key}", "revision": REVISION, "Accept": JSONAPI,
                "Content-Type": JSONAPI}

    def limit(self, operation: str) -> int:
        return LIMITS.get(operation.split(":")[0], IMPORT_LIMIT)

    def too_large(self, request: Request) -> bool:
        """Klaviyo refuses any body over 5 MB: the sender splits such a batch before sending it."""
        return len(request.text.encode("utf-8")) > wire.MAX_JOB_BYTES

    def record(self, key_value: str, fields: Mapping[str, Any], trace: str) -> dict[str, Any]:
        """One bulk-import profile (the trace id is not sent: Klaviyo echoes the key instead)."""
        return wire.profile(self.sync.key, key_value, self.sync.all_fields, fields)

    def left(self, destination_id: str, fields: Mapping[str, Any], trace: str) -> dict[str, Any]:
        raise ValueError("Klaviyo syncs take on_leave: nothing; a person who leaves stays in Klaviyo")

    def follow_ups(self) -> tuple[str, ...]:
        """Sent once per written record: email marketing consent, only on a sync whose every record consented to
        marketing (the targets hold no one else) and that is keyed by email (so every record has one)."""
        return ("subscribe",) if self.sync.consent_purpose == "marketing" and self.sync.key.field == "email" else ()

    def follow_up(self, operation: str, key_value: str, fields: Mapping[str, Any]) -> str:
        """The element of a subscription request: the person's email, the sync's key."""
        return key_value

    def request(self, operation: str, payloads: list[Any], last_batch: bool) -> Request:
        kind, _, list_id = operation.partition(":")
        api = f"{self.base}/api"
        if kind == "upsert":
            return Request(operation, "POST", f"{api}/profile-bulk-import-jobs/", wire.import_job(payloads),
                           len(payloads))
        if kind in ("list_add", "list_remove"):
            return Request(operation, "POST" if kind == "list_add" else "DELETE",
                           f"{api}/lists/{list_id}/relationships/profiles/", wire.members(payloads),
                           len(payloads))
        if kind == "subscribe":
            return Request(operation, "POST", f"{api}/profile-subscription-bulk-create-jobs/",
                           wire.subscription_job(payloads), len(payloads))
        if kind == "gdpr_delete":
            return Request(operation, "POST", f"{api}/data-privacy-deletion-jobs/",
                           wire.deletion_job(payloads[0]), 1)
        raise ValueError(f"Klaviyo has no operation {operation!r}")

    def interpret(self, operation: str, status: int, text: str, headers: Mapping[str, str]) -> Reply:
        reply = http_reply(status, text, headers)
        if reply.kind == OK:
            return reply
        [error, *_] = reply.data.get("errors") or [{}]
        reply.message = (f"Klaviyo {status} {error.get('code') or ''}: "
                         f"{str(error.get('detail') or error.get('title') or text[:200])[:300]}")
        reply.trace_id = error.get("id")
        if status == 429 and reply.retry_after is None:
            reply.retry_after = 1.0  # "Immediate retries will always receive a 429"
        if status == 404 and operation.startswith("gdpr_delete"):
            reply.kind = OK  # the profile is already gone: the deletion holds
        return reply

    # ---- jobs ------------------------------------------------------------------------------------------
    def job_of(self, reply: Reply) -> str | None:
        """The import job a batch became (every accepted import is a job)."""
        data = reply.data.get("data") or {}
        return str(data["id"]) if data.get("type") == "profile-bulk-import-job" and data.get("id") else None

    def job_outcome(self, job_id: str, call: Call) -> JobOutcome | None:
        return read_job(self.base, job_id, self.sync.key.field, call)

    # ---- set-up before any record is written -------------------------------------------------------------
    def prepare(self, call: Call | None) -> list[Request]:
        """Nothing to create: custom properties need no definition in Klaviyo."""
        return []

    def list_ids(self, names: list[str], call: Call | None) -> tuple[dict[str, str], list[Request]]:
        """The list of each name (the oldest, if several share it: Klaviyo does not keep names unique), looked up
        and created once; placeholders in a dry run."""
        ids, made = {}, []
        for name in names:
            create = Request("create_list", "POST", f"{self.base}/api/lists/",
                             {"data": {"type": "list", "attributes": {"name": name}}}, 0)
            if call is None:
                ids[name], made = f"{{LIST_ID:{name}}}", [*made, create]
                continue
            wanted = quote(f'equals(name,{json.dumps(name)})', safe="")
            found = call(Request("find_list", "GET", f"{self.base}/api/lists/?filter={wanted}", None, 0))
            if found.kind != OK:
                raise SetupFailed(f"Klaviyo list {name!r} could not be looked up: {found.message}")
            listed = sorted(found.data.get("data") or [], key=lambda item: (item.get("attributes") or {}).get(
                "created") or "")
            if not listed:
                found = call(create)
                if found.kind != OK:
                    raise SetupFailed(f"Klaviyo list {name!r} could not be created: {found.message}")
                made.append(create)
                listed = [found.data.get("data") or {}]
            if not listed[0].get("id"):
                raise SetupFailed(f"Klaviyo answered list {name!r} without an id")
            ids[name] = str(listed[0]["id"])
        return ids, made
