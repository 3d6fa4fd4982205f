"""Identity resolution in the warehouse: record -> identifier edges, guards, connected components, stable ids.

Records are CRM contacts and orders. Each links to the identifiers it carries (contact id, email, phone,
GA client id); records sharing an identifier are the same person. Edges are record -> identifier, never
record <-> record pairs, so a value shared by many records costs linear work. Components are found by
min-label propagation in SQL, so the data never leaves the warehouse.
"""


import dagster as dg
from sqlalchemy.engine import Connection
from sqlglot import exp

from cdp_assets.identity.config import IdentityConfig, load_identity_config
from cdp_assets.resources.state import StateTable
from cdp_assets.resources.warehouse import WarehouseResource

MAX_ITERATIONS = 100
RECORD_PROFILES = StateTable(
    "core.record_profiles",
    "CREATE TABLE core.record_profiles (record_key VARCHAR PRIMARY KEY, record_type VARCHAR, profile_id VARCHAR)",
)

# (identifier type, column in contacts, column in orders); contact_id is every contact's own identifier.
IDENTIFIER_COLUMNS = {
    "contact_id": ("contact_id", "contact_id"),
    "email": ("email", "email"),
    "phone": ("phone_e164", "phone_e164"),
    "ga_client_id": ("ga_client_id", None),
}


def _literal(value: str) -> str:
    return exp.Literal.string(value).sql(dialect="duckdb")


def edges_sql(config: IdentityConfig) -> str:
    """Every record -> identifier edge, with the reason a guard drops it (NULL when it links)."""
    selects = ["SELECT 'order:' || order_id AS record_key, 'order_id' AS id_type, order_id AS id_value "
               "FROM staging.stg_crm_orders"]
    for id_type in config.identifier_types:
        contact_col, order_col = IDENTIFIER_COLUMNS[id_type]
        selects.append(f"SELECT 'contact:' || contact_id, {_literal(id_type)}, {contact_col} "
                       f"FROM staging.stg_crm_contacts WHERE {contact_col} IS NOT NULL")
        if order_col:
            selects.append(f"SELECT 'order:' || order_id, {_literal(id_type)}, {order_col} "
                           f"FROM staging.stg_crm_orders WHERE {order_col} IS NOT NULL")
    exact = ", ".join(_literal(v) for v in config.blocked_exact) or "NULL"
    patterns = " OR ".join(f"regexp_matches(e.id_value, {_literal(p)})" for p in config.blocked_patterns) or "FALSE"
    return f"""
WITH e AS ({' UNION ALL '.join(selects)}),
degree AS (SELECT id_type, id_value, count(DISTINCT record_key) AS records FROM e GROUP BY id_type, id_value)
SELECT e.record_key, e.id_type, e.id_value,
    CASE
        WHEN e.id_type IN ('contact_id', 'order_id') THEN NULL
        WHEN lower(e.id_value) IN ({exact}) THEN 'blocked value'
        WHEN {patterns} THEN 'blocked pattern'
        WHEN d.records > {int(config.max_records_per_identifier)}
            THEN 'shared by more than {int(config.max_records_per_identifier)} records'
    END AS dropped_reason
FROM e JOIN degree AS d ON d.id_type = e.id_type AND d.id_value = e.id_value
"""


def connected_components(warehouse: WarehouseResource, conn: Connection) -> int:
    """Label every record in `_cdp_labels` with the smallest record key of its component; returns iterations."""
    warehouse.run(conn, "CREATE TEMP TABLE _cdp_links AS SELECT record_key, id_type || ':' || id_value AS node "
                        "FROM _cdp_edges WHERE dropped_reason IS NULL")
    warehouse.run(conn, "CREATE TEMP TABLE _cdp_labels AS SELECT DISTINCT record_key, record_key AS label "
                        "FROM _cdp_edges")
    for iteration in range(1, MAX_ITERATIONS + 1):
        warehouse.run(conn, """
            CREATE TEMP TABLE _cdp_next AS
            WITH node_label AS (
                SELECT l.node, min(b.label) AS label
                FROM _cdp_links AS l JOIN _cdp_labels AS b ON b.record_key = l.record_key GROUP BY l.node
            )
            SELECT b.record_key, least(b.label, coalesce(min(n.label), b.label)) AS label
            FROM _cdp_labels AS b
            LEFT JOIN _cdp_links AS l ON l.record_key = b.record_key
            LEFT JOIN node_label AS n ON n.node = l.node
            GROUP BY b.record_key, b.label""")
        changed = warehouse.scalar(conn, "SELECT count(*) FROM _cdp_next AS x JOIN _cdp_labels AS b "
                                         "ON b.record_key = x.record_key WHERE x.label <> b.label")
        warehouse.run(conn, "DROP TABLE _cdp_labels")
        warehouse.run(conn, "ALTER TABLE _cdp_next RENAME TO _cdp_labels")
        if changed == 0:
            return iteration
    raise RuntimeError(f"identity components did not converge in {MAX_ITERATIONS} iterations")


# A component keeps the prior profile id held by most of its records (ties: lowest id); an id claimed
# by two components after a split stays with the component holding more of its records.
ASSIGN_SQL = """
CREATE TEMP TABLE _cdp_assign AS
WITH candidates AS (
    SELECT l.label, p.profile_id, count(*) AS records
    FROM _cdp_labels AS l JOIN core.record_profiles AS p ON p.record_key = l.record_key
    GROUP BY l.label, p.profile_id
),
claims AS (
    SELECT profile_id, label, row_number() OVER (PARTITION BY profile_id ORDER BY records DESC, label) AS claim_rank
    FROM candidates
),
kept AS (SELECT label, min(profile_id) AS profile_id FROM claims WHERE claim_rank = 1 GROUP BY label),
minted AS (
    SELECT label, 'p_' || substr(md5(label), 1, 20) AS profile_id FROM _cdp_labels GROUP BY label
)
SELECT
    l.record_key,
    split_part(l.record_key, ':', 1) AS record_type,
    coalesce(k.profile_id, CASE
        WHEN m.profile_id IN (SELECT profile_id FROM kept) THEN 'p_' || substr(md5(l.label || '#split'), 1, 20)
        ELSE m.profile_id END) AS profile_id
FROM _cdp_labels AS l
LEFT JOIN kept AS k ON k.label = l.label
JOIN minted AS m ON m.label = l.label
"""


STAGED_RECORDS = [dg.AssetKey(["staging", "stg_crm_contacts"]), dg.AssetKey(["staging", "stg_crm_orders"])]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(["core", "record_profiles"], group_name="core", kinds={"python", "sql"},
                     owners=["team:data-eng"], deps=STAGED_RECORDS,
                     description="Which profile each CRM record (contact or order) belongs to. "
                                 "profile_id is stable across runs unless two profiles merge."),
        dg.AssetSpec(["core", "profile_identifiers"], group_name="core", kinds={"python", "sql"},
                     owners=["team:data-eng"], deps=STAGED_RECORDS,
                     description="Every identifier (contact id, email, phone, GA client id) of every profile."),
        dg.AssetSpec(["core", "identity_audit"], group_name="core", kinds={"python", "sql"},
                     owners=["team:data-eng"], deps=STAGED_RECORDS,
                     description="Identifier links the guards refused (blocked values, over-shared values), "
                                 "with the reason."),
    ],
    pool="warehouse",
)
def identity_graph(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Stitch CRM contacts and orders into people by shared contact id, email, phone and GA client id."""
    config = load_identity_config()
    with warehouse.begin() as conn:
        RECORD_PROFILES.ensure(warehouse, conn)
        warehouse.run(conn, f"CREATE TEMP TABLE _cdp_edges AS {edges_sql(config)}")
        iterations = connected_components(warehouse, conn)
        warehouse.run(conn, ASSIGN_SQL)
        previous = warehouse.scalar(conn, "SELECT count(DISTINCT profile_id) FROM core.record_profiles")
        warehouse.run(conn, "DELETE FROM core.record_profiles")
        warehouse.run(conn, "INSERT INTO core.record_profiles SELECT record_key, record_type, profile_id "
                            "FROM _cdp_assign")
        warehouse.replace_table(conn, "core.profile_identifiers", """
            SELECT DISTINCT a.profile_id, e.id_type, e.id_value
            FROM _cdp_edges AS e JOIN _cdp_assign AS a ON a.record_key = e.record_key
            WHERE e.dropped_reason IS NULL AND e.id_type <> 'order_id'""")
        warehouse.replace_table(conn, "core.identity_audit", """
            SELECT record_key, id_type, id_value, dropped_reason AS reason
            FROM _cdp_edges WHERE dropped_reason IS NOT NULL""")
        records, profiles, largest = warehouse.run(conn, """
            SELECT count(*), count(DISTINCT profile_id),
                   (SELECT max(n) FROM (SELECT count(*) AS n FROM _cdp_assign GROUP BY profile_id) AS s)
            FROM _cdp_assign""").one()
        dropped = dict(warehouse.run(conn, "SELECT reason, count(*) FROM core.identity_audit GROUP BY reason")
                       .fetchall())
        identifiers = warehouse.row_count(conn, "core.profile_identifiers")
        for temp in ("_cdp_assign", "_cdp_labels", "_cdp_links", "_cdp_edges"):
            warehouse.run(conn, f"DROP TABLE {temp}")
    context.log.info(f"{records} records -> {profiles} profiles in {iterations} iterations")
    yield dg.MaterializeResult(asset_key=["core", "record_profiles"], metadata={
        "dagster/row_count": int(records), "dagster/table_name": "core.record_profiles",
        "profiles": int(profiles), "profiles_before": int(previous or 0), "largest_profile_records": int(largest or 0),
        "iterations": iterations,
    })
    yield dg.MaterializeResult(asset_key=["core", "profile_identifiers"], metadata={
        "dagster/row_count": identifiers, "dagster/table_name": "core.profile_identifiers"})
    yield dg.MaterializeResult(asset_key=["core", "identity_audit"], metadata={
        "dagster/row_count": int(sum(dropped.values())), "dagster/table_name": "core.identity_audit",
        **{f"dropped: {reason}": int(n) for reason, n in dropped.items()}})
