"""Incremental identity runs: restitch only the profiles that new, changed or removed records touch.

New or changed records are those loaded after the last run's watermark (each source's `loaded_at`).
Removed records (deleted contacts, purged people) are found by counting: a source holds fewer old
records than the last run stored only when some left, and only then are keys compared.

The restitched subgraph is closed, so the result equals a full run's:
- every profile that held a changed record;
- every profile holding a value a changed record carries or carried, when that value links before or
  after the change (its holder count, and so the degree guard, may have changed). A value blocked or over
  its cap both before and after changes nothing for its holders, so a junk value does not pull in the
  thousands of profiles holding it;
- every profile sharing a value that a per-profile limit dropped inside the set, repeatedly, because
  limits are resolved on the component as it was before the drops.
Anything else is untouched: its edges and their reasons are as the last run left them.
A changed configuration, a missing watermark or too many changes make the run a full one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from cdp_assets.identity.components import solve
from cdp_assets.identity.config import IdentityConfig
from cdp_assets.identity.edges import (
    DEGREE_REASON,
    LIMIT_REASON,
    literal,
    reason_sql,
    records_sql,
    source_rank_sql,
    type_rank_sql,
    unpivot_sql,
)
from cdp_assets.identity.graph import (
    IDENTITY_STATE,
    IdentityRun,
    check_unique_records,
    drop_temps,
    edge_rows_sql,
    ensure_state,
    full_run,
    save_watermarks,
)
from cdp_assets.identity.stable_ids import RECORD_PROFILES, assign
from cdp_assets.resources.warehouse import WarehouseResource

MAX_CLOSURE_ROUNDS = 20
INCREMENTAL_TEMPS = ("_cdp_changed", "_cdp_gone", "_cdp_new_edges", "_cdp_touched", "_cdp_hits", "_cdp_affected",
                     "_cdp_sub_edges", "_cdp_limited", "_cdp_prior")
LIMIT_PREFIX = LIMIT_REASON.split(":")[0] + ":%"
DEGREE_PREFIX = DEGREE_REASON.split("{")[0] + "%"


def _timestamp(value: datetime | None) -> str:
    return "NULL" if value is None else f"CAST({literal(value.isoformat(sep=' '))} AS TIMESTAMP)"


def _why_full(warehouse: WarehouseResource, conn: Connection, config: IdentityConfig) -> str | None:
    """Why this run cannot be incremental, or None when it can."""
    if any(s.loaded_at is None for s in config.sources):
        return "a source has no loaded_at column"
    if not warehouse.table_exists(conn, "core.identity_edges"):
        return "there is no previous run"
    state = {r.source: r for r in warehouse.run(conn, f"SELECT * FROM {IDENTITY_STATE.name}")}
    if set(state) != {s.name for s in config.sources}:
        return "the sources changed since the last run"
    if any(r.fingerprint != config.fingerprint for r in state.values()):
        return "the identity configuration changed since the last run"
    return None


def _find_changes(warehouse: WarehouseResource, conn: Connection, config: IdentityConfig) -> int:
    """`_cdp_records` (new and changed records), `_cdp_gone` (records that left) and `_cdp_changed` (both).

    Returns how many of them were stored before (changed or removed, not new)."""
    state = {r.source: r for r in warehouse.run(conn, f"SELECT source, loaded_through FROM {IDENTITY_STATE.name}")}
    newer = {s.name: f"CAST(s.{s.loaded_at} AS TIMESTAMP) > {_timestamp(state[s.name].loaded_through)}"
             if state[s.name].loaded_through else "TRUE" for s in config.sources}
    warehouse.run(conn, f"CREATE TEMP TABLE _cdp_records AS {records_sql(config, newer)}")
    check_unique_records(warehouse, conn)
    warehouse.run(conn, "CREATE TEMP TABLE _cdp_gone (record_key VARCHAR, record_type VARCHAR)")
    stored = dict(warehouse.run(conn, f"SELECT record_type, count(*) FROM {RECORD_PROFILES.name} "
                                      "GROUP BY record_type").fetchall())
    known = 0
    for source in config.sources:
        old = warehouse.scalar(conn, f"SELECT count(*) FROM {source.table} AS s WHERE s.{source.key} IS NOT NULL "
                                     f"AND NOT ({newer[source.name]})")
        restated = warehouse.scalar(conn, f"SELECT count(*) FROM _cdp_records AS r JOIN {RECORD_PROFILES.name} AS p "
                                          "ON p.record_key = r.record_key WHERE r.record_type = :t",
                                    {"t": source.name})
        known += restated
        if stored.get(source.name, 0) > old + restated:
            warehouse.run(conn, f"""
                INSERT INTO _cdp_gone
                SELECT p.record_key, p.record_type FROM {RECORD_PROFILES.name} AS p
                WHERE p.record_type = :t AND p.record_key NOT IN (
                    SELECT {literal(source.name + ':')} || CAST(s.{source.key} AS VARCHAR) FROM {source.table} AS s
                    WHERE s.{source.key} IS NOT NULL)""", {"t": source.name})
    warehouse.run(conn, "CREATE TEMP TABLE _cdp_changed AS SELECT record_key FROM _cdp_records "
                        "UNION SELECT record_key FROM _cdp_gone")
    return known + warehouse.row_count(conn, "_cdp_gone")


def _affected_profiles(warehouse: WarehouseResource, conn: Connection, config: IdentityConfig, known: int) -> None:
    """`_cdp_touched` values with their new holder counts and `_cdp_affected` profiles, closed under limits.

    `known` counts the changed records stored before; when none were, they have no old edges to look up."""
    warehouse.run(conn, f"CREATE TEMP TABLE _cdp_new_edges AS {unpivot_sql(config)}")
    warehouse.run(conn, f"""
        CREATE TEMP TABLE _cdp_old_edges AS
        SELECT e.* FROM core.identity_edges AS e
        WHERE {'TRUE' if known else 'FALSE'} AND e.record_key IN (SELECT record_key FROM _cdp_changed)""")
    warehouse.run(conn, """
        CREATE TEMP TABLE _cdp_touched_keys AS
        SELECT id_type, id_value FROM _cdp_new_edges UNION SELECT id_type, id_value FROM _cdp_old_edges""")
    warehouse.run(conn, """
        CREATE TEMP TABLE _cdp_hits AS
        SELECT e.* FROM core.identity_edges AS e
        JOIN _cdp_touched_keys AS t ON t.id_type = e.id_type AND t.id_value = e.id_value
        WHERE e.record_key NOT IN (SELECT record_key FROM _cdp_changed)""")
    warehouse.run(conn, """
        CREATE TEMP TABLE _cdp_touched AS
        SELECT id_type, id_value, count(DISTINCT holder) AS holders FROM (
            SELECT id_type, id_value, coalesce(holder, record_key) AS holder FROM _cdp_hits UNION ALL
            SELECT id_type, id_value, holder FROM _cdp_new_edges) AS h
        GROUP BY id_type, id_value""")
    # A holder of a touched value is affected only when the value links before or after the change: a junk
    # value that stays blocked or over its cap changes nothing for the thousands of profiles holding it.
    warehouse.run(conn, f"""
        CREATE TEMP TABLE _cdp_affected AS
        SELECT profile_id FROM _cdp_old_edges
        UNION SELECT p.profile_id FROM core.record_profiles AS p JOIN _cdp_gone AS g ON g.record_key = p.record_key
        UNION SELECT e.profile_id FROM (
            SELECT h.profile_id, h.id_value, h.dropped_reason, t.holders,
                   {source_rank_sql(config, "split_part(h.record_key, ':', 1)")} AS src,
                   {type_rank_sql(config, 'h.id_type')} AS type_rank
            FROM _cdp_hits AS h JOIN _cdp_touched AS t ON t.id_type = h.id_type AND t.id_value = h.id_value
        ) AS e
        WHERE e.dropped_reason IS NULL OR e.dropped_reason LIKE {literal(LIMIT_PREFIX)}
           OR ({reason_sql(config, 'e.holders')}) IS NULL""")
    for temp in ("_cdp_old_edges", "_cdp_touched_keys"):
        warehouse.run(conn, f"DROP TABLE {temp}")
    for _ in range(MAX_CLOSURE_ROUNDS):
        # Limits were resolved on the component before the drops: profiles sharing a limit-dropped value go too.
        warehouse.run(conn, "DROP TABLE IF EXISTS _cdp_limited")
        warehouse.run(conn, f"""
            CREATE TEMP TABLE _cdp_limited AS
            SELECT DISTINCT e.id_type, e.id_value FROM core.identity_edges AS e
            WHERE e.dropped_reason LIKE {literal(LIMIT_PREFIX)}
              AND e.profile_id IN (SELECT profile_id FROM _cdp_affected)""")
        if not warehouse.row_count(conn, "_cdp_limited"):
            return
        added = warehouse.run(conn, """
            INSERT INTO _cdp_affected
            SELECT DISTINCT o.profile_id FROM core.identity_edges AS o
            JOIN _cdp_limited AS v ON v.id_type = o.id_type AND v.id_value = o.id_value
            WHERE o.profile_id NOT IN (SELECT profile_id FROM _cdp_affected)""").rowcount
        if not added:
            return
    raise RuntimeError(f"identity: profiles sharing limit-dropped values did not close in {MAX_CLOSURE_ROUNDS} rounds")


def _build_subgraph(warehouse: WarehouseResource, conn: Connection, config: IdentityConfig) -> None:
    """`_cdp_records` and `_cdp_edges` over the affected profiles' records, shaped as a full run's."""
    warehouse.run(conn, """
        CREATE TEMP TABLE _cdp_sub_edges AS
        SELECT n.record_key, n.record_type, n.holder, n.id_type, n.id_value, CAST(NULL AS VARCHAR) AS old_reason
        FROM _cdp_new_edges AS n
        UNION ALL
        SELECT e.record_key, split_part(e.record_key, ':', 1), coalesce(e.holder, e.record_key), e.id_type,
               e.id_value, e.dropped_reason
        FROM core.identity_edges AS e
        WHERE e.profile_id IN (SELECT profile_id FROM _cdp_affected)
          AND e.record_key NOT IN (SELECT record_key FROM _cdp_changed)""")
    warehouse.run(conn, "CREATE TEMP TABLE _cdp_prior AS SELECT p.* FROM core.record_profiles AS p "
                        "WHERE p.profile_id IN (SELECT profile_id FROM _cdp_affected)")
    warehouse.run(conn, "ALTER TABLE _cdp_records RENAME TO _cdp_new_records")
    warehouse.run(conn, """
        CREATE TEMP TABLE _cdp_records AS
        SELECT row_number() OVER () AS rid, record_key, record_type FROM (
            SELECT record_key, record_type FROM _cdp_new_records UNION ALL
            SELECT p.record_key, p.record_type FROM _cdp_prior AS p
            WHERE p.record_key NOT IN (SELECT record_key FROM _cdp_changed)) AS r""")
    warehouse.run(conn, "DROP TABLE _cdp_new_records")
    # Touched values take their recount. An untouched value kept its holders: if it linked, they are all in
    # the subgraph and counted here; if it was over its cap, it still is, and keeps its reason.
    warehouse.run(conn, f"""
        CREATE TEMP TABLE _cdp_edges AS
        WITH e AS (
            SELECT r.rid, {source_rank_sql(config, 's.record_type')} AS src, s.holder, s.id_type, s.id_value,
                   {type_rank_sql(config, 's.id_type')} AS type_rank, s.old_reason
            FROM _cdp_sub_edges AS s JOIN _cdp_records AS r ON r.record_key = s.record_key
        ),
        v AS (
            SELECT e.id_type, e.id_value, max(t.holders) IS NOT NULL AS touched,
                   coalesce(max(t.holders), count(DISTINCT e.holder)) AS holders, row_number() OVER () AS nid
            FROM e LEFT JOIN _cdp_touched AS t ON t.id_type = e.id_type AND t.id_value = e.id_value
            GROUP BY e.id_type, e.id_value
        )
        SELECT e.rid, v.nid, e.type_rank, e.id_value, e.holder,
               CASE WHEN NOT v.touched AND e.old_reason LIKE {literal(DEGREE_PREFIX)} THEN e.old_reason
                    ELSE {reason_sql(config, 'v.holders')} END AS dropped_reason
        FROM e JOIN v ON v.id_type = e.id_type AND v.id_value = e.id_value""")


def _write_back(warehouse: WarehouseResource, conn: Connection, config: IdentityConfig) -> None:
    """Replace the affected profiles' rows (and the removed records') in the record map and the edge table."""
    affected = "SELECT profile_id FROM _cdp_affected"
    warehouse.run(conn, f"DELETE FROM core.record_profiles WHERE profile_id IN ({affected})")
    warehouse.run(conn, "INSERT INTO core.record_profiles SELECT record_key, record_type, profile_id FROM _cdp_assign")
    warehouse.run(conn, f"DELETE FROM core.identity_edges WHERE profile_id IN ({affected})")
    warehouse.run(conn, f"INSERT INTO core.identity_edges {edge_rows_sql(config)}")


def incremental_run(warehouse: WarehouseResource, conn: Connection, config: IdentityConfig,
                    run_id: str) -> IdentityRun:
    """Restitch what changed since the last run; falls back to a full run when that is not possible or slower."""
    ensure_state(warehouse, conn)
    reason = _why_full(warehouse, conn, config)
    if reason:
        return full_run(warehouse, conn, config, run_id, reason)
    drop_temps(warehouse, conn, (*INCREMENTAL_TEMPS, "_cdp_records"))
    known = _find_changes(warehouse, conn, config)
    changed = warehouse.row_count(conn, "_cdp_changed")
    stored = warehouse.row_count(conn, RECORD_PROFILES.name)
    if changed > config.full_run_above_changed_share * max(stored, 1):
        drop_temps(warehouse, conn, (*INCREMENTAL_TEMPS, "_cdp_records"))
        share = config.full_run_above_changed_share
        return full_run(warehouse, conn, config, run_id, f"{changed} of {stored} records changed (over {share:.0%})")
    run = IdentityRun("incremental")
    if changed:
        _affected_profiles(warehouse, conn, config, known)
        _build_subgraph(warehouse, conn, config)
        run.solution = solve(warehouse, conn, config, config.engine)
        changes = assign(warehouse, conn, "_cdp_prior", run_id)
        run.merges, run.splits = changes["merges"], changes["splits"]
        run.records_restitched = warehouse.row_count(conn, "_cdp_assign")
        _write_back(warehouse, conn, config)
    save_watermarks(warehouse, conn, config)
    drop_temps(warehouse, conn, (*INCREMENTAL_TEMPS, "_cdp_assign", "_cdp_labels", "_cdp_edges", "_cdp_records"))
    return run


def run_identity(warehouse: WarehouseResource, conn: Connection, config: IdentityConfig, run_id: str,
                 full: bool = False) -> IdentityRun:
    """The identity stage: incremental when it can be, full when asked or when it must be."""
    if full:
        return full_run(warehouse, conn, config, run_id, "a full run was asked for")
    return incremental_run(warehouse, conn, config, run_id)
