"""Connected components of the record -> identifier graph, with per-profile identifier limits.

Two engines give the same partition: `native` reads the linking edges as Arrow-backed NumPy arrays and
solves them with SciPy's connected components (DuckDB, where the data is in-process); `sql` propagates
minimum labels in the warehouse (PostgreSQL and anything remote). Either leaves `_cdp_labels(rid,
record_key, record_type, label)`, the label being the smallest record key of the component, so profile ids
minted from it do not depend on the engine.

Per-profile limits (Segment's limit and priority rule): when a component holds more values of a type than
its `max_per_profile`, the links of the lowest-priority type below the highest-priority violated type are
dropped inside that component, and components are found again. A component that still violates once no
lower type is left (two user ids on one record) is left as it is; the asset's WARN check counts it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import sqlalchemy as sa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sqlalchemy.engine import Connection

from cdp_assets.identity.config import IdentityConfig
from cdp_assets.identity.edges import LIMIT_REASON, literal
from cdp_assets.resources.warehouse import WarehouseResource

MAX_PROPAGATIONS = 200


@dataclass(frozen=True)
class Solution:
    engine: str
    rounds: int  # component searches (one more per round of limit drops)
    limit_drops: int  # edges dropped by per-profile limits


def drop_plan(config: IdentityConfig, counts: dict[int, int]) -> tuple[int, int] | None:
    """For one component's distinct values per type rank: (rank to drop, violated rank), or None.

    None when no limit is exceeded, or when one is but no lower-priority type is left to drop.
    """
    violated = [t.priority for t in config.types
                if t.max_per_profile and counts.get(t.priority, 0) > t.max_per_profile]
    if not violated:
        return None
    worst = min(violated)
    lower = [rank for rank, n in counts.items() if n and rank > worst]
    return (max(lower), worst) if lower else None


def _reason(config: IdentityConfig, violated_rank: int) -> str:
    kind = config.types[violated_rank]
    return LIMIT_REASON.format(limit=kind.max_per_profile, type=kind.name)


def _mark_limit_drops(warehouse: WarehouseResource, conn: Connection, config: IdentityConfig) -> None:
    """Copy the drops listed in `_cdp_drops(rid, type_rank, violated_rank)` onto `_cdp_edges`."""
    reasons = " ".join(f"WHEN {t.priority} THEN {literal(_reason(config, t.priority))}"
                       for t in config.types if t.max_per_profile)
    warehouse.run(conn, f"""
        UPDATE _cdp_edges SET dropped_reason = CASE d.violated_rank {reasons} END
        FROM _cdp_drops AS d
        WHERE _cdp_edges.rid = d.rid AND _cdp_edges.type_rank = d.type_rank AND _cdp_edges.dropped_reason IS NULL""")


def _canonical_labels(warehouse: WarehouseResource, conn: Connection, components: str) -> None:
    """`_cdp_labels` from `components(rid, comp)`: the label is the component's smallest record key."""
    warehouse.run(conn, f"""
        CREATE TEMP TABLE _cdp_labels AS
        WITH c AS (SELECT r.rid, r.record_key, r.record_type, k.comp
                   FROM _cdp_records AS r JOIN {components} AS k ON k.rid = r.rid),
        m AS (SELECT comp, min(record_key) AS label FROM c GROUP BY comp)
        SELECT c.rid, c.record_key, c.record_type, m.label FROM c JOIN m ON m.comp = c.comp""")


def _native(warehouse: WarehouseResource, conn: Connection, config: IdentityConfig) -> Solution:
    duck = conn.connection.driver_connection
    n_records = int(warehouse.scalar(conn, "SELECT coalesce(max(rid), 0) FROM _cdp_records"))
    n_nodes = int(warehouse.scalar(conn, "SELECT coalesce(max(nid), 0) FROM _cdp_edges"))
    links = duck.execute("SELECT rid, nid, type_rank FROM _cdp_edges WHERE dropped_reason IS NULL").fetchnumpy()
    rid = np.asarray(links["rid"], dtype=np.int64) - 1
    node = np.asarray(links["nid"], dtype=np.int64) - 1 + n_records
    rank = np.asarray(links["type_rank"], dtype=np.int64)
    del links
    size = n_records + n_nodes
    types = len(config.types)
    node_rank = np.zeros(size, dtype=np.int64)
    node_rank[node] = rank
    active = np.ones(len(rid), dtype=bool)
    drops: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    rounds = 0
    limited = any(t.max_per_profile for t in config.types)
    while True:
        rounds += 1
        graph = coo_matrix((np.ones(int(active.sum()), dtype=np.int8), (rid[active], node[active])),
                           shape=(size, size)).tocsr()
        count, labels = connected_components(graph, directed=True, connection="weak")
        del graph
        if not limited:
            break
        linked = np.zeros(size, dtype=bool)
        linked[node[active]] = True
        linked_nodes = np.flatnonzero(linked)
        per_type = np.bincount(labels[linked_nodes] * types + node_rank[linked_nodes],
                               minlength=count * types).reshape(count, types)
        limits = np.array([t.max_per_profile or np.iinfo(np.int64).max for t in config.types])
        violating = np.flatnonzero((per_type > limits).any(axis=1))
        drop_rank = np.full(count, -1, dtype=np.int64)
        violated = np.full(count, -1, dtype=np.int64)
        for comp in violating:
            plan = drop_plan(config, {r: int(n) for r, n in enumerate(per_type[comp]) if n})
            if plan:
                drop_rank[comp], violated[comp] = plan
        edge_comp = labels[rid]
        dropped = active & (drop_rank[edge_comp] == rank)
        if not dropped.any():
            break
        drops.append((rid[dropped] + 1, rank[dropped], violated[edge_comp[dropped]]))
        active &= ~dropped
    if drops:
        table = pa.table({name: np.concatenate([d[i] for d in drops])
                          for i, name in enumerate(("rid", "type_rank", "violated_rank"))})
        duck.register("_cdp_drops", table)
        _mark_limit_drops(warehouse, conn, config)
        duck.unregister("_cdp_drops")
    duck.register("_cdp_comp", pa.table({"rid": np.arange(1, n_records + 1, dtype=np.int64),
                                         "comp": labels[:n_records]}))
    _canonical_labels(warehouse, conn, "_cdp_comp")
    duck.unregister("_cdp_comp")
    return Solution("native", rounds, sum(len(d[0]) for d in drops))


def _propagate(warehouse: WarehouseResource, conn: Connection) -> None:
    """Minimum-label propagation over `_cdp_links` into `_cdp_comp(rid, comp)` until nothing changes."""
    warehouse.run(conn, "DROP TABLE IF EXISTS _cdp_comp")
    warehouse.run(conn, "CREATE TEMP TABLE _cdp_comp AS SELECT rid, rid AS comp FROM _cdp_records")
    for _ in range(MAX_PROPAGATIONS):
        warehouse.run(conn, """
            CREATE TEMP TABLE _cdp_next AS
            WITH node_label AS (
                SELECT l.nid, min(c.comp) AS comp FROM _cdp_links AS l JOIN _cdp_comp AS c ON c.rid = l.rid
                GROUP BY l.nid
            ),
            best AS (
                SELECT l.rid, min(n.comp) AS comp FROM _cdp_links AS l JOIN node_label AS n ON n.nid = l.nid
                GROUP BY l.rid
            )
            SELECT c.rid, least(c.comp, coalesce(b.comp, c.comp)) AS comp
            FROM _cdp_comp AS c LEFT JOIN best AS b ON b.rid = c.rid""")
        changed = warehouse.scalar(conn, "SELECT count(*) FROM _cdp_next AS x JOIN _cdp_comp AS c "
                                         "ON c.rid = x.rid WHERE x.comp <> c.comp")
        warehouse.run(conn, "DROP TABLE _cdp_comp")
        warehouse.run(conn, "ALTER TABLE _cdp_next RENAME TO _cdp_comp")
        if not changed:
            return
    raise RuntimeError(f"identity components did not converge in {MAX_PROPAGATIONS} propagations")


def _sql(warehouse: WarehouseResource, conn: Connection, config: IdentityConfig) -> Solution:
    warehouse.run(conn, "CREATE TEMP TABLE _cdp_links AS SELECT rid, nid, type_rank FROM _cdp_edges "
                        "WHERE dropped_reason IS NULL")
    limits = " ".join(f"WHEN {t.priority} THEN {t.max_per_profile}" for t in config.types if t.max_per_profile)
    rounds, dropped_total = 0, 0
    while True:
        rounds += 1
        _propagate(warehouse, conn)
        if not limits:
            break
        counts = warehouse.run(conn, f"""
            WITH per_type AS (
                SELECT c.comp, l.type_rank, count(DISTINCT l.nid) AS n
                FROM _cdp_links AS l JOIN _cdp_comp AS c ON c.rid = l.rid GROUP BY c.comp, l.type_rank
            )
            SELECT comp, type_rank, n FROM per_type WHERE comp IN (
                SELECT comp FROM per_type WHERE n > CASE type_rank {limits} ELSE n END)""").fetchall()
        by_comp: dict[int, dict[int, int]] = {}
        for comp, type_rank, n in counts:
            by_comp.setdefault(comp, {})[type_rank] = n
        plans = {comp: drop_plan(config, per_type) for comp, per_type in by_comp.items()}
        rows = [{"comp": comp, "r": plan[0], "v": plan[1]} for comp, plan in plans.items() if plan]
        if not rows:
            break
        warehouse.run(conn, "DROP TABLE IF EXISTS _cdp_plan")
        warehouse.run(conn, "CREATE TEMP TABLE _cdp_plan (comp BIGINT, drop_rank INTEGER, violated_rank INTEGER)")
        conn.execute(sa.text(warehouse.sql("INSERT INTO _cdp_plan VALUES (:comp, :r, :v)")), rows)
        warehouse.run(conn, "DROP TABLE IF EXISTS _cdp_drops")
        warehouse.run(conn, """
            CREATE TEMP TABLE _cdp_drops AS
            SELECT l.rid, l.nid, l.type_rank, p.violated_rank
            FROM _cdp_links AS l JOIN _cdp_comp AS c ON c.rid = l.rid
            JOIN _cdp_plan AS p ON p.comp = c.comp AND p.drop_rank = l.type_rank""")
        dropped_total += warehouse.row_count(conn, "_cdp_drops")
        warehouse.run(conn, "DELETE FROM _cdp_links WHERE EXISTS (SELECT 1 FROM _cdp_drops AS d "
                            "WHERE d.rid = _cdp_links.rid AND d.nid = _cdp_links.nid)")
        _mark_limit_drops(warehouse, conn, config)
    _canonical_labels(warehouse, conn, "_cdp_comp")
    for temp in ("_cdp_comp", "_cdp_links", "_cdp_plan", "_cdp_drops"):
        warehouse.run(conn, f"DROP TABLE IF EXISTS {temp}")
    return Solution("sql", rounds, dropped_total)


def solve(warehouse: WarehouseResource, conn: Connection, config: IdentityConfig, engine: str = "auto") -> Solution:
    """Label every record of `_cdp_records` in `_cdp_labels`, marking limit drops on `_cdp_edges`."""
    if engine == "auto":
        engine = "native" if warehouse.dialect == "duckdb" else "sql"
    if engine == "native" and warehouse.dialect != "duckdb":
        raise ValueError("the native identity engine reads the edges in-process and needs a DuckDB warehouse; "
                         "use engine: sql or auto")
    return _native(warehouse, conn, config) if engine == "native" else _sql(warehouse, conn, config)
