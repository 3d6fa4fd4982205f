"""Salesforce: Contacts (or Leads) upserted by an external id field, through sObject Collections for small runs and
Bulk API 2.0 ingest jobs for large ones.

A run with fewer changed records than `options.bulk_threshold` (default 2,000) writes them 200 at a time with
`PATCH …/composite/sobjects/{SObject}/{ExternalIdField}` (`allOrNone: false`): each item's `success` is read,
failures by index become dead letters, a locked row goes again. A larger run opens one Bulk job per batch: the
job is created just before its CSV is uploaded (the records are already marked in flight), and it is closed
(`UploadComplete`) the first time it is read, so a run killed between the upload and the close still gets its job
processed by the next run. Jobs are read without blocking a step (`records/jobs.py`).

Every answer classes `UNABLE_TO_LOCK_ROW` and `REQUEST_LIMIT_EXCEEDED` as transient; `INVALID_SESSION_ID` mints a
new token and sends once more, a second refusal stops the destination.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cdp_assets.activation.destinations.base import Call, SetupFailed
from cdp_assets.activation.destinations.salesforce import answers
from cdp_assets.activation.destinations.salesforce import payloads as bodies
from cdp_assets.activation.destinations.salesforce.auth import VARIABLES, SalesforceToken
from cdp_assets.activation.destinations.salesforce.fields import check_fields
from cdp_assets.activation.destinations.salesforce.payloads import SOBJECTS, Row
from cdp_assets.activation.records.config import Sync
from cdp_assets.activation.records.jobs import JobOutcome
from cdp_assets.activation.transport import AUTH, OK, TRANSIENT, Reply, Request, http_reply

API_VERSION = "v62.0"
COLLECTION_LIMIT = 200
# Records per Bulk job: a page of changes holds at most 5,000, far under the 150 MB (base64) a job's CSV may hold.
BULK_LIMIT = 10_000
DEFAULT_BULK_THRESHOLD = 2_000
TRANSIENT_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED"})
FINISHED = ("JobComplete", "Failed", "Aborted")
RESULTS = ("successfulResults", "failedResults", "unprocessedrecords")
JSON, CSV = "application/json", "text/csv"
DRY_RUN_JOB = "{JOB_ID}"


class SalesforceRecords:
    """One sync's Salesforce client."""

    batch_limit = COLLECTION_LIMIT

    def __init__(self, sync: Sync) -> None:
        self.sync = sync
        self.instance = (os.environ.get("SALESFORCE_INSTANCE_URL") or "").rstrip("/")
        self.data = f"{self.instance or '{SALESFORCE_INSTANCE_URL}'}/services/data/{API_VERSION}"
        self.sobject = SOBJECTS[sync.object]
        self.token = SalesforceToken()
        self.threshold = int(sync.options.get("bulk_threshold", DEFAULT_BULK_THRESHOLD))
        self.bulk = False
        self.parked: str | None = None
        self.parked_until: datetime | None = None
        self._call: Call | None = None
        self._content_type = JSON
        self._refreshed = False  # the token was refreshed after INVALID_SESSION_ID, and nothing succeeded since
        self._rows: list[Row] = []  # the records of the Collections request last built
        self._job: str | None = None  # the Bulk job of the upload last built

    # ---- what the sender needs -------------------------------------------------------------------------
    def missing(self) -> list[str]:
        values = {"SALESFORCE_INSTANCE_URL": self.instance, "SALESFORCE_CLIENT_ID": self.token.client_id,
                  "SALESFORCE_CLIENT_SECRET": self.token.client_secret,
                  "SALESFORCE_REFRESH_TOKEN": self.token.refresh_token}
        return [name for name in VARIABLES if not values[name]]

    def secrets(self) -> list[str | None]:
        return self.token.secrets()

    def headers(self) -> dict[str, str]:
        # Asked on every attempt: after INVALID_SESSION_ID the token was forgotten and this mints a new one.
        return {"Authorization": f"Bearer {self.token.bearer()}", "Content-Type": self._content_type}

    def expect(self, records: int) -> None:
        """The run writes this many records: Bulk API jobs from the threshold on, Collections below it."""
        self.bulk = records >= self.threshold

    def limit(self, operation: str) -> int:
        return BULK_LIMIT if self.bulk else COLLECTION_LIMIT

    def record(self, key_value: str, fields: Mapping[str, Any], trace: str) -> Row:
        return bodies.row(self.sync, key_value, fields, trace)

    def left(self, destination_id: str, fields: Mapping[str, Any], trace: str) -> Any:
        raise ValueError("Salesforce syncs leave records that leave the model as they are (on_leave: nothing)")

    def request(self, operation: str, payloads: list[Any], last_batch: bool) -> Request:
        if operation != "upsert":
            raise ValueError(f"Salesforce has no operation {operation!r}")
        if self.bulk:
            self._job = self._open_job()
            self._content_type = CSV
            return Request(operation, "PUT", f"{self.data}/jobs/ingest/{self._job}/batches", None, len(payloads),
                           encoded=bodies.bulk_csv(self.sync, payloads))
        self._rows, self._content_type = list(payloads), JSON
        return Request(operation, "PATCH", f"{self.data}/composite/sobjects/{self.sobject}/{self.sync.key.field}",
                       bodies.collection_body(self.sync, payloads), len(payloads))

    def interpret(self, operation: str, status: int, text: str, headers: Mapping[str, str]) -> Reply:
        reply = http_reply(status, text, headers)
        if reply.kind == OK:
            self._refreshed = False
            return self._upserted(reply) if operation == "upsert" else reply
        code, message = answers.first_error(text)
        reply.message = f"Salesforce {status} {code or 'error'}: {message[:200]}"
        if status == 401 or code == "INVALID_SESSION_ID":
            # The session expired or was revoked: one new token, one more attempt; refused again, we stop.
            reply.kind = AUTH if self._refreshed else TRANSIENT
            self._refreshed = True
            self.token.forget()
        elif code in TRANSIENT_CODES:
            reply.kind = TRANSIENT
        elif operation == "upsert" and self.bulk and "multiple contents" in message:
            # A retried upload whose first attempt arrived (its answer was lost): the job holds this CSV.
            reply.kind = OK
            return self._upserted(reply)
        return reply

    def _upserted(self, reply: Reply) -> Reply:
        if not self.bulk:
            return answers.collection_reply(reply, [r.values for r in self._rows], [r.trace for r in self._rows])
        reply.data, reply.trace_id = {"job_id": self._job}, self._job
        return reply

    # ---- Bulk API 2.0 jobs -------------------------------------------------------------------------------
    def _send(self, call: Call, operation: str, method: str, url: str, body: dict | None = None) -> Reply:
        self._content_type = JSON
        return call(Request(operation, method, url, body, 0))

    def _open_job(self) -> str:
        """A new upsert job for the next upload; a placeholder in a dry run."""
        if self._call is None:
            return DRY_RUN_JOB
        created = self._send(self._call, "create_job", "POST", f"{self.data}/jobs/ingest", bodies.job_body(self.sync))
        if created.kind != OK or not created.data.get("id"):
            raise SetupFailed(f"Salesforce Bulk job could not be created: {created.message}")
        return str(created.data["id"])

    def job_of(self, reply: Reply) -> str | None:
        job = reply.data.get("job_id")
        return str(job) if job else None

    def job_outcome(self, job_id: str, call: Call) -> JobOutcome | None:
        """Close the job if its upload is complete but it is still Open; once finished, its records' outcome."""
        url = f"{self.data}/jobs/ingest/{job_id}"
        info = self._send(call, "job_status", "GET", url)
        state = info.data.get("state")
        if info.kind != OK or state not in FINISHED:
            if info.kind == OK and state == "Open":
                self._send(call, "close_job", "PATCH", url, {"state": "UploadComplete"})
            return None
        results = [self._send(call, "job_results", "GET", f"{url}/{name}/") for name in RESULTS]
        if any(r.kind != OK for r in results):
            return None
        error = info.data.get("errorMessage") if state == "Failed" else None
        return answers.job_outcome(self.sync.key.field, *(r.body_text for r in results), job_error=error)

    # ---- set-up before any record is written -------------------------------------------------------------
    def prepare(self, call: Call | None) -> list[Request]:
        """Check with one describe call that every mapped field exists with a type that takes its values (a dry
        run, `call` None, cannot ask and plans no set-up: Salesforce fields are an admin's to create)."""
        self._call = call
        if call is None:
            return []
        described = self._send(call, "describe", "GET", f"{self.data}/sobjects/{self.sobject}/describe")
        if described.kind != OK:
            raise SetupFailed(f"Salesforce {self.sobject} could not be described: {described.message}")
        check_fields(self.sync, self.sobject, described.data)
        return []

    def list_ids(self, names: list[str], call: Call | None) -> tuple[dict[str, str], list[Request]]:
        return {}, []  # Salesforce objects declare no lists: audiences go as fields
