"""Stable profile ids: a component keeps the id its records already had; merges and splits are logged.

A component keeps the prior profile id held by most of its records (ties: the lowest id). When two
profiles merge, the other id retires and `core.profile_merges` records `merge` from it into the survivor.
When a profile splits, the part holding most of its records keeps the id; the other parts take an id of
their own (or join another existing profile), recorded as `split`. A new component mints
`p_` + the first 20 hex digits of the MD5 of its smallest record key, the same on every engine and run.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from cdp_assets.resources.state import StateTable
from cdp_assets.resources.warehouse import WarehouseResource

# Version 2 drops the primary key: its index cost more than the rest of the write at a million records,
# and the identity run itself refuses duplicate record keys before anything is written.
RECORD_PROFILES = StateTable(
    "core.record_profiles",
    "CREATE TABLE core.record_profiles (record_key VARCHAR, record_type VARCHAR, profile_id VARCHAR)",
    version=2,
    migrations={2: [
        "CREATE TABLE core.record_profiles_v2 AS SELECT record_key, record_type, profile_id FROM core.record_profiles",
        "DROP TABLE core.record_profiles",
        "ALTER TABLE core.record_profiles_v2 RENAME TO record_profiles",
    ]},
)
PROFILE_MERGES = StateTable(
    "core.profile_merges",
    "CREATE TABLE core.profile_merges (event VARCHAR, from_profile_id VARCHAR, to_profile_id VARCHAR, "
    "records BIGINT, run_id VARCHAR, logged_at TIMESTAMP)",
)


def assign_sql(prior: str) -> str:
    """`_cdp_assign(rid, record_key, record_type, profile_id, label)` from `_cdp_labels` and the `prior` ids.

    `prior` holds the previous ids of the labelled records (all of them, or an incremental run's subgraph);
    a minted id is checked against every id in use.
    """
    return f"""
CREATE TEMP TABLE _cdp_assign AS
WITH candidates AS (
    SELECT l.label, p.profile_id, count(*) AS records
    FROM _cdp_labels AS l JOIN {prior} AS p ON p.record_key = l.record_key
    GROUP BY l.label, p.profile_id
),
claims AS (
    SELECT profile_id, label, row_number() OVER (PARTITION BY profile_id ORDER BY records DESC, label) AS claim_rank
    FROM candidates
),
kept AS (SELECT label, min(profile_id) AS profile_id FROM claims WHERE claim_rank = 1 GROUP BY label),
minted AS (
    SELECT label, 'p_' || substr(md5(label), 1, 20) AS profile_id FROM _cdp_labels GROUP BY label
),
taken AS (
    SELECT DISTINCT m.label FROM minted AS m JOIN {RECORD_PROFILES.name} AS r ON r.profile_id = m.profile_id
    WHERE m.label NOT IN (SELECT label FROM kept)
)
SELECT
    l.rid, l.record_key, l.record_type, l.label,
    coalesce(k.profile_id, CASE
        WHEN m.label IN (SELECT label FROM taken) THEN 'p_' || substr(md5(l.label || '#split'), 1, 20)
        ELSE m.profile_id END) AS profile_id
FROM _cdp_labels AS l
LEFT JOIN kept AS k ON k.label = l.label
JOIN minted AS m ON m.label = l.label
"""


def changes_sql(prior: str) -> str:
    """(event, from, to, records): profiles merged into a survivor, and records split off a profile."""
    return f"""
WITH moves AS (
    SELECT p.profile_id AS from_profile_id, a.profile_id AS to_profile_id, count(*) AS records
    FROM _cdp_assign AS a JOIN {prior} AS p ON p.record_key = a.record_key
    WHERE p.profile_id <> a.profile_id
    GROUP BY p.profile_id, a.profile_id
),
kept AS (SELECT DISTINCT profile_id FROM _cdp_assign)
SELECT CASE WHEN m.from_profile_id IN (SELECT profile_id FROM kept) THEN 'split' ELSE 'merge' END AS event,
       m.from_profile_id, m.to_profile_id, m.records
FROM moves AS m
"""


def assign(warehouse: WarehouseResource, conn: Connection, prior: str, run_id: str) -> dict[str, int]:
    """Give every labelled record its profile id and log merges and splits; returns counts per event."""
    warehouse.run(conn, assign_sql(prior))
    warehouse.run(conn, f"INSERT INTO {PROFILE_MERGES.name} SELECT c.event, c.from_profile_id, c.to_profile_id, "
                        f"c.records, :run_id, current_timestamp FROM ({changes_sql(prior)}) AS c",
                  {"run_id": run_id})
    counts = dict(warehouse.run(conn, f"SELECT event, count(*) FROM {PROFILE_MERGES.name} WHERE run_id = :run_id "
                                      "GROUP BY event", {"run_id": run_id}).fetchall())
    return {"merges": int(counts.get("merge", 0)), "splits": int(counts.get("split", 0))}
