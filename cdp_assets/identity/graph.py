"""Identity resolution in the warehouse: record -> identifier edges, guards, components, stable ids.

Records (CRM contacts and orders, by default) link to the identifiers they carry; records sharing a
linking identifier are one person. Edges are record -> identifier, never record <-> record pairs, so a
value shared by many records costs linear work. Everything is SQL in the warehouse except the
connected-components kernel on DuckDB, which reads integer edge arrays in-process (`components.py`).

A full run rebuilds every table. An incremental run (`incremental.py`) restitches only the profiles that
new, changed or removed records touch and leaves every other row as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from cdp_assets.identity.components import Solution, solve
from cdp_assets.identity.config import IdentityConfig
from cdp_assets.identity.edges import edges_sql, id_type_sql, literal, records_sql
from cdp_assets.identity.stable_ids import PROFILE_MERGES, RECORD_PROFILES, assign
from cdp_assets.resources.state import StateTable
from cdp_assets.resources.warehouse import WarehouseResource

IDENTITY_STATE = StateTable(
    "core.identity_state",
    "CREATE TABLE core.identity_state (source VARCHAR PRIMARY KEY, loaded_through TIMESTAMP, records BIGINT, "
    "fingerprint VARCHAR, updated_at TIMESTAMP)",
)
TEMP_TABLES = ("_cdp_assign", "_cdp_labels", "_cdp_edges", "_cdp_records")


@dataclass
class IdentityRun:
    mode: str  # full | incremental
    records: int = 0
    records_restitched: int = 0
    edges: int = 0
    profiles: int = 0
    largest_profile_records: int = 0
    merges: int = 0
    splits: int = 0
    solution: Solution | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    profiles_over_limits: int = 0
    reason_for_full: str | None = None


def ensure_state(warehouse: WarehouseResource, conn: Connection) -> None:
    """Create or migrate the identity state tables, and let DuckDB write this connection's tables unordered."""
    for table in (RECORD_PROFILES, PROFILE_MERGES, IDENTITY_STATE):
        table.ensure(warehouse, conn)
    if warehouse.dialect == "duckdb":
        # Every identity table is a set: keeping row order only serializes DuckDB's writers (W1: 11.6 s -> 9.5 s).
        # The connection is the step's own (NullPool), so the setting ends with it.
        conn.exec_driver_sql("SET preserve_insertion_order = false")


def drop_temps(warehouse: WarehouseResource, conn: Connection, names: tuple[str, ...] = TEMP_TABLES) -> None:
    for temp in names:
        warehouse.run(conn, f"DROP TABLE IF EXISTS {temp}")


def save_watermarks(warehouse: WarehouseResource, conn: Connection, config: IdentityConfig) -> None:
    """Remember, per source, the latest load seen and how many records it held, for the next incremental run."""
    warehouse.run(conn, f"DELETE FROM {IDENTITY_STATE.name}")
    for source in config.sources:
        loaded = f"max(CAST({source.loaded_at} AS TIMESTAMP))" if source.loaded_at else "NULL"
        warehouse.run(conn, f"INSERT INTO {IDENTITY_STATE.name} SELECT :source, {loaded}, count(*), :fingerprint, "
                            f"current_timestamp FROM {source.table} WHERE {source.key} IS NOT NULL",
                      {"source": source.name, "fingerprint": config.fingerprint})


# The edge table is the one physical copy of the graph; identifiers and audit are views over it, so a run
# writes each edge once and an incremental run has nothing else to keep in step.
VIEWS = {
    "core.profile_identifiers": "SELECT DISTINCT profile_id, id_type, id_value FROM core.identity_edges "
                                "WHERE dropped_reason IS NULL",
    "core.identity_audit": "SELECT record_key, id_type, id_value, dropped_reason AS reason, profile_id "
                           "FROM core.identity_edges WHERE dropped_reason IS NOT NULL",
}


def check_unique_records(warehouse: WarehouseResource, conn: Connection) -> None:
    """Refuse a source that holds one record key twice: the record could not belong to one profile."""
    duplicate = warehouse.run(conn, "SELECT record_key, count(*) FROM _cdp_records GROUP BY record_key "
                                    "HAVING count(*) > 1 LIMIT 1").first()
    if duplicate:
        raise ValueError(f"identity: record {duplicate[0]} appears {duplicate[1]} times in its source table; "
                         "a source's key column must be unique (see cdp_assets/config/identity.yaml)")


def edge_rows_sql(config: IdentityConfig) -> str:
    """`core.identity_edges` rows of the run's `_cdp_edges`, with record keys and profiles joined back."""
    return f"""
        SELECT a.record_key, {id_type_sql(config, 'e.type_rank')} AS id_type, e.id_value,
               nullif(e.holder, a.record_key) AS holder, e.dropped_reason, a.profile_id
        FROM _cdp_edges AS e JOIN _cdp_assign AS a ON a.rid = e.rid"""


def write_outputs(warehouse: WarehouseResource, conn: Connection, config: IdentityConfig) -> None:
    """Replace the published identity tables from the run's `_cdp_edges` and `_cdp_assign`."""
    warehouse.replace_table(conn, RECORD_PROFILES.name, "SELECT record_key, record_type, profile_id FROM _cdp_assign")
    for view in VIEWS:  # PostgreSQL binds views to the table they read, so they go first and come back after
        if warehouse.table_exists(conn, view):
            kind = "VIEW" if warehouse.scalar(conn, "SELECT count(*) FROM information_schema.views WHERE "
                                                    "table_schema || '.' || table_name = :v", {"v": view}) else "TABLE"
            conn.exec_driver_sql(f"DROP {kind} {view}")
    warehouse.replace_table(conn, "core.identity_edges", edge_rows_sql(config))
    for view, select in VIEWS.items():
        conn.exec_driver_sql(f"CREATE VIEW {view} AS {warehouse.sql(select)}")


def summarize(warehouse: WarehouseResource, conn: Connection, config: IdentityConfig, run: IdentityRun) -> IdentityRun:
    """Fill in the run's totals over the whole published graph."""
    limits = " ".join(f"WHEN {literal(t.name)} THEN {t.max_per_profile}" for t in config.types if t.max_per_profile)
    if limits:
        run.profiles_over_limits = int(warehouse.scalar(conn, f"""
            SELECT count(DISTINCT profile_id) FROM (
                SELECT profile_id, id_type, count(*) AS n FROM core.profile_identifiers GROUP BY profile_id, id_type
            ) AS c WHERE n > CASE id_type {limits} ELSE n END"""))
    records, profiles, largest = warehouse.run(
        conn, f"SELECT coalesce(sum(n), 0), count(*), coalesce(max(n), 0) FROM (SELECT count(*) AS n "
              f"FROM {RECORD_PROFILES.name} GROUP BY profile_id) AS s").one()
    run.records, run.profiles, run.largest_profile_records = int(records), int(profiles), int(largest)
    run.edges = warehouse.row_count(conn, "core.identity_edges")
    run.dropped = {reason: int(n) for reason, n in warehouse.run(
        conn, "SELECT reason, count(*) FROM core.identity_audit GROUP BY reason ORDER BY reason").fetchall()}
    return run


def full_run(warehouse: WarehouseResource, conn: Connection, config: IdentityConfig, run_id: str,
             reason: str | None = None) -> IdentityRun:
    """Stitch every record of every source and replace the identity tables; profile ids stay stable."""
    ensure_state(warehouse, conn)
    drop_temps(warehouse, conn)
    warehouse.run(conn, f"CREATE TEMP TABLE _cdp_records AS {records_sql(config)}")
    check_unique_records(warehouse, conn)
    warehouse.run(conn, f"CREATE TEMP TABLE _cdp_edges AS {edges_sql(config)}")
    solution = solve(warehouse, conn, config, config.engine)
    changes = assign(warehouse, conn, RECORD_PROFILES.name, run_id)
    write_outputs(warehouse, conn, config)
    save_watermarks(warehouse, conn, config)
    run = IdentityRun("full", solution=solution, reason_for_full=reason, **changes)
    run.records_restitched = warehouse.row_count(conn, "_cdp_assign")
    drop_temps(warehouse, conn)
    return run
