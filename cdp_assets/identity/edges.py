"""Records and record -> identifier edges, with the guard that drops each refused edge and why.

Every statement here runs inside the identity step's transaction and leaves temp tables:

- `_cdp_records(rid, record_key, record_type, holder, t_<type>...)`: one row per record, its normalized
  identifiers in one column per type. `holder` is who the record counts as towards a value's degree.
- `_cdp_edges(rid, nid, type_rank, id_value, holder, dropped_reason)`: one row per record -> identifier
  edge. `nid` numbers the identifier values for the connected-components kernel;
  `dropped_reason` is NULL when the edge links.
"""

from __future__ import annotations

from sqlglot import exp

from cdp_assets.identity.config import IdentityConfig, Source

NORMALIZE_SQL = {"none": "{}", "trim": "trim({})", "lowercase": "lower(trim({}))"}
LIMIT_REASON = "profile limit: more than {limit} {type} values in one profile"
DEGREE_REASON = "shared by more than {limit} records"


def literal(value: str) -> str:
    return exp.Literal.string(value).sql(dialect="duckdb")


def type_column(id_type: str) -> str:
    return f"t_{id_type}"


def _source_select(config: IdentityConfig, source: Source, where: str) -> str:
    src = config.sources.index(source)
    record_key = f"{literal(source.name + ':')} || CAST(s.{source.key} AS VARCHAR)"
    columns = []
    for id_type in config.types:
        column = source.identifiers.get(id_type.name)
        value = NORMALIZE_SQL[id_type.normalize].format(f"CAST(s.{column} AS VARCHAR)") if column else "NULL"
        columns.append(f"{value} AS {type_column(id_type.name)}")
    holder = record_key
    if source.degree_key:
        kind = config.type(source.degree_key)
        value = NORMALIZE_SQL[kind.normalize].format(f"CAST(s.{source.identifiers[source.degree_key]} AS VARCHAR)")
        holder = f"coalesce({literal(kind.name + ':')} || {value}, {record_key})"
    return (f"SELECT {record_key} AS record_key, {literal(source.name)} AS record_type, {src} AS src, "
            f"{holder} AS holder, "
            f"{', '.join(columns)} FROM {source.table} AS s WHERE s.{source.key} IS NOT NULL{where}")


def records_sql(config: IdentityConfig, where: dict[str, str] | None = None) -> str:
    """SELECT of every record of every source; `where` adds a condition (over alias `s`) per source name."""
    where = where or {}
    selects = [_source_select(config, s, f" AND ({where[s.name]})" if s.name in where else "")
               for s in config.sources if s.name in where or not where]
    return "SELECT row_number() OVER () AS rid, r.* FROM (" + " UNION ALL ".join(selects) + ") AS r"


def _own_key_types(config: IdentityConfig) -> list[tuple[Source, str]]:
    """(source, identifier type) pairs where the identifier is the record's own key: never blocked."""
    return [(s, t) for s in config.sources for t, c in s.identifiers.items() if c == s.key]


def id_type_sql(config: IdentityConfig, rank: str) -> str:
    """The identifier type's name from its rank column."""
    return f"CASE {rank} " + " ".join(f"WHEN {t.priority} THEN {literal(t.name)}" for t in config.types) + " END"


def type_rank_sql(config: IdentityConfig, name: str) -> str:
    """The identifier type's rank from its name column."""
    return f"CASE {name} " + " ".join(f"WHEN {literal(t.name)} THEN {t.priority}" for t in config.types) + " END"


def source_rank_sql(config: IdentityConfig, name: str) -> str:
    """The source's position in the config (`src`) from its name column."""
    return f"CASE {name} " + " ".join(f"WHEN {literal(s.name)} THEN {i}" for i, s in enumerate(config.sources)) + " END"


def reason_sql(config: IdentityConfig, holders: str) -> str:
    """CASE giving the guard that refuses an edge `e(src, type_rank, id_value)` whose value has `holders`."""
    exact = ", ".join(literal(v) for v in config.blocked_exact) or "NULL"
    pattern = "|".join(f"(?:{p})" for p in config.blocked_patterns)
    own = " OR ".join(f"(e.src = {config.sources.index(s)} AND e.type_rank = {config.type(t).priority})"
                      for s, t in _own_key_types(config)) or "FALSE"
    caps = " ".join(f"WHEN e.type_rank = {t.priority} AND {holders} > {t.max_records} "
                    f"THEN {literal(DEGREE_REASON.format(limit=t.max_records))}"
                    for t in config.types if t.max_records)
    return f"""CASE
        WHEN {own} THEN NULL
        WHEN lower(e.id_value) IN ({exact}) THEN 'blocked value'
        {f"WHEN regexp_matches(lower(e.id_value), {literal(pattern)}) THEN 'blocked pattern'" if pattern else ""}
        {caps}
    END"""


def unpivot_sql(config: IdentityConfig, records: str = "_cdp_records") -> str:
    """One row per (record, identifier) of `records`, which has a `t_<type>` column per identifier type."""
    return " UNION ALL ".join(
        f"SELECT rid, record_key, record_type, holder, {literal(t.name)} AS id_type, {t.priority} AS type_rank, "
        f"{type_column(t.name)} AS id_value FROM {records} WHERE {type_column(t.name)} IS NOT NULL"
        for t in config.types)


def edges_sql(config: IdentityConfig) -> str:
    """SELECT of every edge of `_cdp_records`, numbered and judged by the guards.

    Edges carry integers and the value only: record keys and names join back when the tables are written.
    """
    # Without degree keys every record is its own holder and holds a value once per type: count(*) is exact
    # and no holder needs carrying.
    keyed = any(s.degree_key for s in config.sources)
    holder = ", holder" if keyed else ""
    unpivot = " UNION ALL ".join(
        f"SELECT rid, src, {t.priority} AS type_rank, {type_column(t.name)} AS id_value{holder} "
        f"FROM _cdp_records WHERE {type_column(t.name)} IS NOT NULL" for t in config.types)
    return f"""
WITH e AS ({unpivot}),
v AS (
    SELECT type_rank, id_value, {"count(DISTINCT holder)" if keyed else "count(*)"} AS holders,
           row_number() OVER () AS nid
    FROM e GROUP BY type_rank, id_value
)
SELECT e.rid, v.nid, e.type_rank, e.id_value, {"e.holder" if keyed else "CAST(NULL AS VARCHAR)"} AS holder,
       {reason_sql(config, 'v.holders')} AS dropped_reason
FROM e JOIN v ON v.type_rank = e.type_rank AND v.id_value = e.id_value
"""
