"""Klaviyo bulk import jobs read back: the job's status, its import errors and the profiles it wrote, each
matched to its record by the sync key Klaviyo echoes (`original_payload` for an error, the profile's own
attributes for a written one): Klaviyo takes no per-record id of ours."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from cdp_assets.activation.destinations.base import Call
from cdp_assets.activation.destinations.klaviyo.payloads import record_key
from cdp_assets.activation.records.jobs import JobOutcome
from cdp_assets.activation.transport import OK, Request

RUNNING = ("queued", "processing")
PAGE_SIZE = 100  # Klaviyo's largest page


class ReadFailed(RuntimeError):
    """A page of a finished job could not be read; the job is read again on the next run."""


def pages(base: str, path: str, call: Call, operation: str) -> Iterator[dict[str, Any]]:
    """Every item of a paged listing, following `links.next` (on our own base, so a test's fake stays local)."""
    url: str | None = f"{base}{path}?page[size]={PAGE_SIZE}"
    while url:
        reply = call(Request(operation, "GET", url, None, 0))
        if reply.kind != OK:
            raise ReadFailed(reply.message)
        yield from reply.data.get("data") or []
        following = (reply.data.get("links") or {}).get("next")
        url = None
        if following:
            parts = urlsplit(following)
            url = f"{base}{parts.path}" + (f"?{parts.query}" if parts.query else "")


def read_job(base: str, job_id: str, key_field: str, call: Call) -> JobOutcome | None:
    """How job `job_id` went, by record key; None while Klaviyo is still running it (or could not say)."""
    path = f"/api/profile-bulk-import-jobs/{job_id}"
    status = call(Request("import_job_status", "GET", f"{base}{path}", None, 0))
    if status.http_status == 404:  # expired (Klaviyo keeps a job for 7 days): every record goes again
        return JobOutcome(only_listed_written=True)
    state = ((status.data.get("data") or {}).get("attributes") or {}).get("status")
    if status.kind != OK or state in RUNNING or state is None:
        return None
    try:
        outcome = JobOutcome(only_listed_written=state != "complete")  # cancelled: what it did not write goes again
        for error in pages(base, f"{path}/import-errors", call, "import_job_errors"):
            attributes = error.get("attributes") or {}
            value = (attributes.get("original_payload") or {}).get(key_field)
            if value is not None:
                outcome.failed[record_key(str(value))] = (
                    f"Klaviyo {attributes.get('code') or 'invalid'}: {str(attributes.get('detail'))[:300]}")
        for written in pages(base, f"{path}/profiles", call, "import_job_profiles"):
            value = (written.get("attributes") or {}).get(key_field)
            if value is not None and written.get("id"):
                outcome.ids[record_key(str(value))] = str(written["id"])
    except ReadFailed:
        return None
    return outcome
