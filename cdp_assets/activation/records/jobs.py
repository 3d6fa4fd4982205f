"""Records written through the destination's asynchronous jobs (Klaviyo bulk imports, Salesforce Bulk API 2.0).

A batch the destination accepts as a job is not yet written: its records wait in `activation.record_jobs`
(and out of the diff) until the job is read back. Jobs are read at the start of every run and a few times
after submitting, never waiting long inside a step: a job still running is read again on the next run.
When it is done, its written records are acknowledged, its refused ones dead-lettered with the
destination's reason, and its unprocessed ones left failed, so they go again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pyarrow as pa
from sqlalchemy.engine import Connection

from cdp_assets.activation import ledger
from cdp_assets.activation.egress import dead_letter_rows
from cdp_assets.activation.ledger import DEAD_LETTER, FAILED, Entry
from cdp_assets.activation.records import state
from cdp_assets.activation.records.config import Sync
from cdp_assets.activation.sender import Item, Sender
from cdp_assets.activation.transport import Reply, Request
from cdp_assets.resources.state import StateTable

RECORD_JOBS = StateTable(
    "activation.record_jobs",
    "CREATE TABLE activation.record_jobs (sync VARCHAR, job_id VARCHAR, record_key VARCHAR, fingerprint VARCHAR, "
    "profile_id VARCHAR, email_sha256 VARCHAR, phone_sha256 VARCHAR, partition_key VARCHAR, submitted_at TIMESTAMP, "
    "run_id VARCHAR)",
)
POLLS_AFTER_SUBMIT = 3


@dataclass
class JobOutcome:
    """How a finished job went, by record key (the SHA-256 of the sync key, as the ledger holds it)."""

    failed: dict[str, str] = field(default_factory=dict)  # refused for good -> the destination's reason
    unprocessed: set[str] = field(default_factory=set)  # never tried by the destination: sent again
    ids: dict[str, str] = field(default_factory=dict)  # the destination's id of each written record
    # True when the job ended without finishing (cancelled, expired): only the records in `ids` were written,
    # every other record that is not in `failed` goes again
    only_listed_written: bool = False

    def went_again(self, key: str) -> bool:
        return key in self.unprocessed or (self.only_listed_written and key not in self.ids
                                           and key not in self.failed)


JobReader = Callable[[str, Callable[[Request], Reply]], "JobOutcome | None"]


def submitted(sender: Sender, sync: Sync, job_of: Callable[[Reply], str | None], written: Callable) -> Callable:
    """The acknowledgement of a batch accepted as a job: its records wait for the job, out of the diff. A batch
    the destination wrote at once (Salesforce's small syncs) is acknowledged by `written` instead."""
    def acked(conn: Connection, operation: str, items: list[Item]) -> None:
        job = job_of(sender.last_reply) if sender.last_reply else None
        if not job:
            written(conn, operation, items)
            return
        RECORD_JOBS.ensure(sender.warehouse, conn)
        sender.warehouse.append_arrow(conn, RECORD_JOBS.name, pa.table({
            "record_key": [i.key for i in items],
            **{c: pa.array([i.extra[c] for i in items], pa.string())
               for c in ("fingerprint", "profile_id", "email_sha256", "phone_sha256")},
            "partition_key": [i.partition_key for i in items]}),
            {"sync": sync.name, "job_id": job, "submitted_at": ledger.now(), "run_id": sender.run_id})
    return acked


def open_jobs(sender: Sender, sync: Sync) -> list[str]:
    with sender.transaction() as conn:
        RECORD_JOBS.ensure(sender.warehouse, conn)
        return [str(j) for (j,) in sender.warehouse.run(
            conn, "SELECT DISTINCT job_id FROM activation.record_jobs WHERE sync = :s ORDER BY job_id",
            {"s": sync.name})]


def settle(sender: Sender, sync: Sync, read: JobReader, call: Callable[[Request], Reply]) -> dict[str, int]:
    """Read every open job once; record the outcome of those that finished. Returns counts."""
    counts = {"jobs_open": 0, "jobs_finished": 0, "written": 0, "dead_letters": 0, "unprocessed": 0}
    for job in open_jobs(sender, sync):
        outcome = read(job, call)
        if outcome is None:
            counts["jobs_open"] += 1
            continue
        counts["jobs_finished"] += 1
        for name, n in _record(sender, sync, job, outcome).items():
            counts[name] += n
    return counts


def _record(sender: Sender, sync: Sync, job: str, outcome: JobOutcome) -> Mapping[str, int]:
    warehouse = sender.warehouse
    with sender.transaction() as conn:
        rows = [dict(zip(("record_key", "fingerprint", "profile_id", "email_sha256", "phone_sha256", "partition_key"),
                         r, strict=True)) for r in warehouse.run(
            conn, "SELECT record_key, fingerprint, profile_id, email_sha256, phone_sha256, partition_key FROM "
                  "activation.record_jobs WHERE sync = :s AND job_id = :j", {"s": sync.name, "j": job})]
        written = [r for r in rows if r["record_key"] not in outcome.failed and not outcome.went_again(
            r["record_key"])]
        state.acknowledge(warehouse, conn, sync.name, sender.run_id, "present", [
            {**{k: v for k, v in r.items() if k != "partition_key"},
             "destination_id": outcome.ids.get(r["record_key"])} for r in written])
        refused = [r for r in rows if r["record_key"] in outcome.failed]
        again = [r for r in rows if r["record_key"] not in outcome.failed and outcome.went_again(r["record_key"])]
        ledger.record(warehouse, conn, sync.name, sender.run_id, [
            *(Entry(r["record_key"], f"upsert:{r['fingerprint']}", r["partition_key"], DEAD_LETTER, 1,
                    outcome.failed[r["record_key"]], job) for r in refused),
            *(Entry(r["record_key"], f"upsert:{r['fingerprint']}", r["partition_key"], FAILED, 1,
                    "the destination's job did not process this record", job) for r in again)])
        dead_letter_rows(warehouse, conn, sync.name, sender.run_id,
                         [(r["partition_key"], r["record_key"], outcome.failed[r["record_key"]]) for r in refused])
        warehouse.run(conn, "DELETE FROM activation.record_jobs WHERE sync = :s AND job_id = :j",
                      {"s": sync.name, "j": job})
    return {"written": len(written), "dead_letters": len(refused), "unprocessed": len(again)}
