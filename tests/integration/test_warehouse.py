"""The warehouse resource on DuckDB and PostgreSQL: atomic partition replacement, bulk loads, state tables."""

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from cdp_assets.resources.state import StateTable

EVENTS = """
SELECT * FROM (VALUES
    ('a', CAST('2026-03-01 10:00:00' AS TIMESTAMP)),
    ('b', CAST('2026-03-02 09:00:00' AS TIMESTAMP)),
    ('c', CAST('2026-03-02 23:59:59' AS TIMESTAMP)),
    ('d', CAST('2026-03-03 00:00:00' AS TIMESTAMP))
) AS t(event_id, event_ts)
"""
DAY = (datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))


def event_ids(warehouse) -> list[str]:
    with warehouse.begin() as conn:
        return [r[0] for r in warehouse.run(conn, "SELECT event_id FROM core.events ORDER BY event_id")]


def test_replacing_a_partition_writes_only_that_day(warehouse):
    with warehouse.begin() as conn:
        warehouse.ensure_schemas(conn)
        warehouse.replace_partition(conn, "core.events", "event_ts", *DAY, EVENTS)

    assert event_ids(warehouse) == ["b", "c"]


def test_replacing_a_partition_twice_gives_the_same_rows(warehouse):
    for _ in range(2):
        with warehouse.begin() as conn:
            warehouse.ensure_schemas(conn)
            warehouse.replace_partition(conn, "core.events", "event_ts", *DAY, EVENTS)

    assert event_ids(warehouse) == ["b", "c"]


def test_a_partition_replace_that_fails_leaves_the_old_rows(warehouse):
    with warehouse.begin() as conn:
        warehouse.ensure_schemas(conn)
        warehouse.replace_partition(conn, "core.events", "event_ts", *DAY, EVENTS)

    with pytest.raises(ValueError, match=r"drop core\.events and backfill"), warehouse.begin() as conn:
        warehouse.replace_partition(conn, "core.events", "event_ts", *DAY,
                                    "SELECT event_id, event_ts, 1 AS extra FROM (" + EVENTS + ") AS e")

    assert event_ids(warehouse) == ["b", "c"]


def test_full_rebuild_replaces_the_table(warehouse):
    with warehouse.begin() as conn:
        warehouse.ensure_schemas(conn)
        warehouse.replace_table(conn, "core.events", EVENTS)
        warehouse.replace_table(conn, "core.events", "SELECT 'z' AS event_id")

    assert event_ids(warehouse) == ["z"]


def test_arrow_append_keeps_nulls_apart_from_empty_strings(warehouse):
    data = pa.table({"a": ["x", "", None], "n": pa.array([1, None, 3], pa.int64())})
    with warehouse.begin() as conn:
        warehouse.ensure_schemas(conn)
        warehouse.run(conn, "CREATE TABLE raw.t (a VARCHAR, n BIGINT)")
        warehouse.append_arrow(conn, "raw.t", data)
        rows = warehouse.run(conn, "SELECT a, n FROM raw.t ORDER BY n NULLS FIRST").fetchall()

    assert [tuple(r) for r in rows] == [("", None), ("x", 1), (None, 3)]


def test_state_table_is_created_at_its_version(warehouse):
    table = StateTable("core.ledger", "CREATE TABLE core.ledger (k VARCHAR)", version=1)
    with warehouse.begin() as conn:
        table.ensure(warehouse, conn)
        stored = warehouse.scalar(conn, "SELECT version FROM cdp_meta.state_tables WHERE table_name = 'core.ledger'")

    assert stored == 1


def test_state_table_is_migrated_in_place_keeping_its_rows(warehouse):
    v1 = StateTable("core.ledger", "CREATE TABLE core.ledger (k VARCHAR)")
    v2 = StateTable("core.ledger", "CREATE TABLE core.ledger (k VARCHAR, attempts INTEGER)", version=2,
                    migrations={2: ["ALTER TABLE core.ledger ADD COLUMN attempts INTEGER DEFAULT 0"]})
    with warehouse.begin() as conn:
        v1.ensure(warehouse, conn)
        warehouse.run(conn, "INSERT INTO core.ledger VALUES ('kept')")
    with warehouse.begin() as conn:
        v2.ensure(warehouse, conn)
        rows = warehouse.run(conn, "SELECT k, attempts FROM core.ledger").fetchall()
        version = warehouse.scalar(conn, "SELECT version FROM cdp_meta.state_tables WHERE table_name = 'core.ledger'")

    assert [tuple(r) for r in rows] == [("kept", 0)]
    assert version == 2


def test_an_older_build_refuses_a_table_a_newer_build_migrated(warehouse):
    newer = StateTable("core.ledger", "CREATE TABLE core.ledger (k VARCHAR)", version=3)
    older = StateTable("core.ledger", "CREATE TABLE core.ledger (k VARCHAR)", version=2)
    with warehouse.begin() as conn:
        newer.ensure(warehouse, conn)

    with pytest.raises(RuntimeError, match="schema version 3, newer than this build"), warehouse.begin() as conn:
        older.ensure(warehouse, conn)


def test_a_run_against_another_warehouse_than_the_instances_is_refused_and_the_first_is_tagged(tmp_path):
    import dagster as dg

    from cdp_assets.resources.warehouse import WarehouseResource

    first = WarehouseResource(url=f"duckdb:///{tmp_path / 'first.duckdb'}")
    other = WarehouseResource(url=f"duckdb:///{tmp_path / 'other.duckdb'}")

    @dg.asset
    def touches(warehouse: WarehouseResource) -> None:
        with warehouse.begin():
            pass

    instance = dg.DagsterInstance.ephemeral()
    ok = dg.materialize([touches], instance=instance, resources={"warehouse": first})
    refused = dg.materialize([touches], instance=instance, resources={"warehouse": other}, raise_on_error=False)

    assert instance.get_run_by_id(ok.run_id).tags["cdp/warehouse"] == f"duckdb:{tmp_path / 'first.duckdb'}"
    assert not refused.success
    failure = next(e for e in refused.all_events if e.event_type == dg.DagsterEventType.RESOURCE_INIT_FAILURE)
    assert "this Dagster instance already holds runs of another warehouse" in str(failure.event_specific_data.error)
    assert not (tmp_path / "other.duckdb").exists()
