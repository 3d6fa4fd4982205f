"""Reading Salesforce's answers: REST errors (a JSON array of `{message, errorCode}`), sObject Collections items
(one per record, in request order, each with its own `success`) and Bulk API 2.0 result CSVs, whose rows come in
no guaranteed order and are matched back to records by the external id they carry.

Salesforce quotes the values it refused in its messages ("invalid email address: ada@…"); the record's own
values are taken out of every reason kept, because reasons reach dead letters and the run's metadata.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

from cdp_assets.activation.records.jobs import JobOutcome
from cdp_assets.activation.transport import OK, PARTIAL, TRANSIENT, Reply

# Per-record failures that pass: the record is sent again rather than dead-lettered.
PASSING_CODES = frozenset({"UNABLE_TO_LOCK_ROW"})
# A whole Bulk job refused for its CSV (a header naming an unknown field): its rows are dead letters, not retries.
PERMANENT_JOB_ERRORS = ("InvalidBatch", "ClientInputError")


def first_error(text: str) -> tuple[str, str]:
    """(errorCode, message) of a REST error answer; empty strings when the body is not Salesforce's array."""
    try:
        answer = json.loads(text) if text else None
    except ValueError:
        return "", text[:200]
    if isinstance(answer, list) and answer and isinstance(answer[0], dict):
        return str(answer[0].get("errorCode") or ""), str(answer[0].get("message") or "")
    return "", ""


def without_values(message: str, values: Iterable[Any]) -> str:
    """`message` with each of the record's textual values replaced by `[value]` (numbers are kept: they are
    amounts and counts, and replacing digits would garble the message)."""
    for value in sorted({str(v) for v in values if v is not None}, key=len, reverse=True):
        if len(value) >= 2 and any(not c.isdigit() and c not in ".-" for c in value):
            message = message.replace(value, "[value]")
    return message


def record_key(value: str) -> str:
    """The ledger's key of a record: the SHA-256 of its key value as text, as the sync's targets compute it."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def collection_reply(reply: Reply, rows: list[Mapping[str, Any]], traces: list[str]) -> Reply:
    """Read a Collections answer into the reply: ids of the written records (by trace id), failures by index in the
    batch, locked rows among them marked to go again."""
    try:
        items = json.loads(reply.body_text)
    except ValueError:
        items = None
    if not isinstance(items, list) or len(items) != len(traces):
        reply.kind = TRANSIENT
        reply.message = (f"Salesforce answered for {len(items) if isinstance(items, list) else 0} of {len(traces)} "
                         "records; the batch is sent again")
        return reply
    created = 0
    for n, item in enumerate(items):
        if isinstance(item, dict) and item.get("success"):
            reply.ids[traces[n]] = str(item.get("id"))
            created += bool(item.get("created"))
            continue
        errors = (item.get("errors") if isinstance(item, dict) else None) or [{}]
        code = str(errors[0].get("statusCode") or "UNKNOWN")
        message = without_values(str(errors[0].get("message") or ""), rows[n].values())
        reply.failed_rows[n] = f"Salesforce {code}: {message}"
        if code in PASSING_CODES:
            reply.retry_rows.add(n)
    reply.kind = PARTIAL if reply.failed_rows else OK
    reply.reported = {"created": created, "updated": len(reply.ids) - created}
    return reply


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def job_outcome(key_field: str, successful: str, failed: str, unprocessed: str, job_error: str | None) -> JobOutcome:
    """A finished job's three result CSVs as the records' outcome, keyed by record key.

    A failed row is a dead letter with Salesforce's `sf__Error`, unless the row was only locked (sent again);
    unprocessed rows go again, unless the whole job was refused for its CSV (then they are dead letters with the
    job's error message, since sending the same CSV again would fail the same way).
    """
    outcome = JobOutcome()
    for result in _csv_rows(successful):
        outcome.ids[record_key(result[key_field])] = result.get("sf__Id") or ""
    for result in _csv_rows(failed):
        key = record_key(result[key_field])
        error = result.get("sf__Error") or ""
        code, _, message = error.partition(":")
        if code in PASSING_CODES:
            outcome.unprocessed.add(key)
        else:
            values = [v for k, v in result.items() if not k.startswith("sf__")]
            outcome.failed[key] = f"Salesforce {code or 'error'}: {without_values(message, values)}"
    refused = bool(job_error) and str(job_error).startswith(PERMANENT_JOB_ERRORS)
    for result in _csv_rows(unprocessed):
        key = record_key(result[key_field])
        if refused:
            outcome.failed[key] = f"Salesforce job failed: {job_error}"
        else:
            outcome.unprocessed.add(key)
    return outcome
