"""The egress log (`activation.egress_requests`), dead letters, and the gate that guards every send."""


from collections.abc import Iterable
from datetime import UTC, datetime
from itertools import islice

import dagster as dg
import pyarrow as pa
from sqlalchemy.engine import Connection

from cdp_assets.activation.transport import Request, scrub
from cdp_assets.checks.state import closed_gates
from cdp_assets.resources.state import StateTable
from cdp_assets.resources.warehouse import WarehouseResource

EGRESS_REQUESTS = StateTable(
    "activation.egress_requests",
    "CREATE TABLE activation.egress_requests (destination VARCHAR, operation VARCHAR, method VARCHAR, "
    "url VARCHAR, partition_key VARCHAR, run_id VARCHAR, batch_no INTEGER, record_count INTEGER, "
    "request_body VARCHAR, status VARCHAR, http_status INTEGER, attempt INTEGER, response_body VARCHAR, "
    "created_at TIMESTAMP)",
)
DEAD_LETTERS = StateTable(
    "activation.dead_letters",
    "CREATE TABLE activation.dead_letters (destination VARCHAR, partition_key VARCHAR, record_key VARCHAR, "
    "reason VARCHAR, run_id VARCHAR, created_at TIMESTAMP)",
)
# Dry-run dead letters carry this run id, so a re-plan replaces them and never a live run's.
DRY_RUN_ID = "dry_run"
LOG_CHUNK = 20  # requests per append: about 10 MB of Meta events


def batched(items: Iterable, size: int) -> Iterable[list]:
    """Lists of up to `size` items, in order (itertools.batched arrives with Python 3.12)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def record_dry_run(
    warehouse: WarehouseResource, conn: Connection, destination: str, partition_key: str, run_id: str,
    requests: Iterable[Request], dead_letters: list[tuple[str, str]], secrets: Iterable[str | None] = (),
) -> int:
    """Replace the dry-run plan and dead letters of (destination, partition) with this run's; returns how many
    requests were recorded. Requests are written as they come, a few at a time, so a large plan streams.
    `secrets` are scrubbed from the URLs (a webhook's URL may be its only credential).

    Dead letters of a live destination are kept: they are the ledger's, replayed, not re-planned.
    """
    for table in (EGRESS_REQUESTS, DEAD_LETTERS):
        table.ensure(warehouse, conn)
    where = {"d": destination, "p": partition_key}
    warehouse.run(conn, "DELETE FROM activation.egress_requests WHERE destination = :d AND partition_key = :p "
                        "AND status = 'dry_run'", where)
    warehouse.run(conn, "DELETE FROM activation.dead_letters WHERE destination = :d AND partition_key = :p "
                        "AND run_id = :dry", {**where, "dry": DRY_RUN_ID})
    now = datetime.now(UTC).replace(tzinfo=None)
    recorded = 0
    for chunk in batched(requests, LOG_CHUNK):
        count = len(chunk)
        warehouse.append_arrow(conn, EGRESS_REQUESTS.name, pa.table({
            "destination": [destination] * count,
            "operation": [r.operation for r in chunk],
            "method": [r.method for r in chunk],
            "url": [scrub(r.url, secrets) for r in chunk],
            "partition_key": [partition_key] * count,
            "run_id": [run_id] * count,
            "batch_no": pa.array(range(recorded + 1, recorded + count + 1), pa.int32()),
            "record_count": pa.array([r.record_count for r in chunk], pa.int32()),
            "request_body": [r.text for r in chunk],
            "status": ["dry_run"] * count,
            "http_status": pa.nulls(count, pa.int32()),
            "attempt": pa.array([0] * count, pa.int32()),
            "response_body": pa.nulls(count, pa.string()),
            "created_at": pa.array([now] * count, pa.timestamp("s")),
        }))
        recorded += count
    dead_letter_rows(warehouse, conn, destination, DRY_RUN_ID, [(partition_key, k, r) for k, r in dead_letters])
    return recorded


def dead_letter_rows(warehouse: WarehouseResource, conn: Connection, destination: str, run_id: str,
                     rows: list[tuple[str, str, str]]) -> None:
    """Append (partition, record key, reason) dead letters of one destination."""
    if not rows:
        return
    DEAD_LETTERS.ensure(warehouse, conn)
    n = len(rows)
    at = datetime.now(UTC).replace(tzinfo=None)
    warehouse.append_arrow(conn, DEAD_LETTERS.name, pa.table({
        "destination": [destination] * n, "partition_key": [p for p, _, _ in rows],
        "record_key": [k for _, k, _ in rows], "reason": [r for _, _, r in rows],
        "run_id": [run_id] * n, "created_at": pa.array([at] * n, pa.timestamp("s")),
    }))


def egress_preamble(context: dg.AssetExecutionContext, gates: list[dg.AssetCheckKey], purpose: str | None) -> None:
    """Refuse to prepare or send anything while a gate upstream is failing or has never been evaluated."""
    closed = closed_gates(context.instance, gates)
    if not closed and purpose is None:
        context.log.warning("this destination maps to no consent purpose in destinations.yaml, so nobody "
                            "consented to it and nothing is prepared (fail closed)")
    if closed:
        raise dg.Failure("egress refused: upstream quality gates are not passing: " + "; ".join(closed),
                         metadata={"closed_gates": dg.MetadataValue.json(closed)})
