"""The egress log: a dry-run plan replaces its own (destination, partition) and nothing else."""

from cdp_assets.activation.egress import record_dry_run
from cdp_assets.activation.transport import Request


def plan(n: int) -> list[Request]:
    return [Request("track_events", "POST", "http://127.0.0.1/events", {"data": [i]}, 1) for i in range(n)]


def logged(warehouse) -> list[tuple]:
    with warehouse.begin() as conn:
        return [tuple(r) for r in warehouse.run(
            conn, "SELECT destination, partition_key, batch_no, request_body, status FROM activation.egress_requests "
                  "ORDER BY destination, partition_key, batch_no")]


def test_rerecording_a_partition_replaces_only_that_partition(warehouse):
    with warehouse.begin() as conn:
        record_dry_run(warehouse, conn, "meta_capi", "2026-11-20", "run-1", plan(2), [])
        record_dry_run(warehouse, conn, "meta_capi", "2026-11-21", "run-1", plan(1), [("O9", "too old")])
        record_dry_run(warehouse, conn, "other", "2026-11-20", "run-1", plan(1), [])
    with warehouse.begin() as conn:
        record_dry_run(warehouse, conn, "meta_capi", "2026-11-20", "run-2", plan(1), [])

    assert logged(warehouse) == [
        ("meta_capi", "2026-11-20", 1, '{"data":[0]}', "dry_run"),
        ("meta_capi", "2026-11-21", 1, '{"data":[0]}', "dry_run"),
        ("other", "2026-11-20", 1, '{"data":[0]}', "dry_run"),
    ]
    with warehouse.begin() as conn:
        assert [tuple(r) for r in warehouse.run(conn, "SELECT record_key, reason FROM activation.dead_letters")] \
            == [("O9", "too old")]
