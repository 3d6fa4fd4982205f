"""A small warehouse holding what a records sync reads, and the sync's asset run against it.

Building the rows directly (rather than running a whole day) keeps each test to the sync's own behaviour
and lets every test run on DuckDB and on PostgreSQL with a fresh database of its own.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import dagster as dg
import yaml

from cdp_assets.activation.destinations.registry import discover
from cdp_assets.activation.records.asset import records_sync_asset
from cdp_assets.activation.records.config import Sync, parse_sync
from cdp_assets.activation.transport import RetryPolicy
from cdp_assets.resources.warehouse import WarehouseResource

FAST = RetryPolicy(attempts=3, base_seconds=0.001, max_seconds=0.01, timeout=(10.0, 30.0))
SNAPSHOT = datetime(2026, 12, 1, 6, 0)
PROFILES = [
    # profile_id, email, phone, first, last, lifetime value, orders, last order, rfm, consent
    ("p1", "ada@example.com", "+14155550101", "Ada", "Lovelace", "1234.50", 7, datetime(2026, 11, 30, 10, 0), "545",
     True),
    ("p2", "bob@example.com", None, "Bob", "Byte", "0.00", 0, None, None, False),
    ("p3", "cy@example.com", "+14155550103", "Cy", "Cache", "80.00", 1, datetime(2026, 10, 2, 8, 30), "213", True),
    ("p4", None, "+14155550104", "Di", "Disk", "15.00", 1, datetime(2026, 9, 1, 12, 0), "111", True),
]
TABLES = [
    "CREATE TABLE core.unified_profiles (profile_id VARCHAR, email VARCHAR, phone_e164 VARCHAR, first_name VARCHAR, "
    "last_name VARCHAR, lifetime_value DECIMAL(18, 2), order_count INTEGER, last_order_at TIMESTAMP, "
    "rfm_segment VARCHAR, consent_marketing BOOLEAN)",
    "CREATE TABLE core.consent (contact_id VARCHAR, profile_id VARCHAR, purpose VARCHAR, granted BOOLEAN, "
    "source VARCHAR, ts TIMESTAMP)",
    "CREATE TABLE core.suppressed_profiles (profile_id VARCHAR)",
    "CREATE TABLE core.deletion_pending_profiles (profile_id VARCHAR)",
    "CREATE TABLE core.deletion_requests (request_id VARCHAR, id_type VARCHAR, id_sha256 VARCHAR, status VARCHAR)",
    "CREATE TABLE audiences.snapshots (audience VARCHAR, snapshot_ts TIMESTAMP)",
    "CREATE TABLE audiences.memberships (audience VARCHAR, profile_id VARCHAR, snapshot_ts TIMESTAMP)",
]
HUBSPOT_SYNC = {
    "destination": "hubspot", "object": "contacts", "model": "core.unified_profiles",
    "key": {"column": "email", "field": "email"}, "mode": "upsert", "on_leave": "clear", "consent_purpose": "none",
    "fields": {"profile_id": {"field": "cdp_profile_id"}, "first_name": {"field": "firstname"},
               "lifetime_value": {"field": "cdp_lifetime_value", "type": "number"},
               "order_count": {"field": "cdp_order_count", "type": "number"},
               "last_order_at": {"field": "cdp_last_order_at", "type": "datetime"},
               "rfm_segment": {"field": "cdp_rfm_segment"}},
    "audiences": {"field": "cdp_audience_{audience}", "list": "cdp: {audience}"},
}
COLUMNS = ("profile_id", "email", "phone_e164", "first_name", "last_name", "lifetime_value", "order_count",
           "last_order_at", "rfm_segment", "consent_marketing")


def build_world(warehouse: WarehouseResource, vip: tuple[str, ...] = ("p1",)) -> None:
    with warehouse.begin() as conn:
        warehouse.ensure_schemas(conn)
        for ddl in TABLES:
            warehouse.run(conn, ddl)
        for row in PROFILES:
            warehouse.run(conn, "INSERT INTO core.unified_profiles VALUES (:a, :b, :c, :d, :e, "
                                "CAST(:f AS DECIMAL(18, 2)), :g, :h, :i, :j)",
                          dict(zip("abcdefghij", row, strict=True)))
            warehouse.run(conn, "INSERT INTO core.consent VALUES (:c, :p, 'marketing', :g, 'crm', :ts)",
                          {"c": "c" + row[0], "p": row[0], "g": row[9], "ts": SNAPSHOT})
        warehouse.run(conn, "INSERT INTO audiences.snapshots VALUES ('vip', :ts)", {"ts": SNAPSHOT})
        for profile in vip:
            warehouse.run(conn, "INSERT INTO audiences.memberships VALUES ('vip', :p, :ts)",
                          {"p": profile, "ts": SNAPSHOT})


def execute(warehouse: WarehouseResource, statement: str, params: dict | None = None) -> None:
    with warehouse.begin() as conn:
        warehouse.run(conn, statement, params)


def query(warehouse: WarehouseResource, statement: str, params: dict | None = None) -> list[tuple]:
    with warehouse.begin() as conn:
        return [tuple(r) for r in warehouse.run(conn, statement, params)]


def make_sync(tmp_path: Path, name: str = "crm_contacts", **changes: object) -> Sync:
    settings = {**HUBSPOT_SYNC, **changes}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return parse_sync(path, settings, discover(), {"core.unified_profiles": COLUMNS}, ("vip",))


def materialize(warehouse: WarehouseResource, sync: Sync, full_resync: bool = False,
                instance: dg.DagsterInstance | None = None) -> dg.ExecuteInJobResult:
    asset = records_sync_asset(sync, discover()[sync.destination], lambda keys: [], FAST, warehouse.dialect)
    return dg.materialize([asset], resources={"warehouse": warehouse}, instance=instance, raise_on_error=False,
                          run_config={"ops": {f"activation__{sync.name}": {"config": {"full_resync": full_resync}}}})


def metadata(result: dg.ExecuteInJobResult) -> dict:
    [event] = result.asset_materializations_for_node(result.all_node_events[0].node_name)
    return {k: v.value for k, v in event.metadata.items()}


def go_live(monkeypatch, fake) -> None:
    """Point the destination's client at `fake` (its `env()`), in live egress."""
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CDP_EGRESS_MODE", "live")
