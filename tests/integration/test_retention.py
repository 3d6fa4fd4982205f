"""Retention: what is past its window is purged, what is within it or still needed stays."""

from datetime import datetime, timedelta

import dagster as dg

from cdp_assets.activation.egress import EGRESS_REQUESTS
from cdp_assets.audiences.assets import MEMBERSHIPS, SNAPSHOTS
from cdp_assets.ingest.crm_entities import CONTACTS
from cdp_assets.retention import purge, retention_asset

NOW = datetime(2026, 11, 22, 12, 0)
OLD = NOW - timedelta(days=400)
RECENT = NOW - timedelta(days=2)


def seed(warehouse) -> None:
    with warehouse.begin() as conn:
        for table in (EGRESS_REQUESTS, MEMBERSHIPS, SNAPSHOTS, CONTACTS.quarantine_table, CONTACTS.fields_table):
            table.ensure(warehouse, conn)
        for created in (OLD, RECENT):
            warehouse.run(conn, "INSERT INTO activation.egress_requests (destination, request_body, response_body, "
                                "status, created_at) VALUES ('meta_capi', '{\"data\": []}', '{}', 'sent', :t)",
                          {"t": created})
            warehouse.run(conn, "INSERT INTO quarantine.crm_contacts (contact_id, reason, quarantined_at) "
                                "VALUES (:c, 'invalid email', :t)", {"c": f"C{created:%j}", "t": created})
            warehouse.run(conn, "INSERT INTO quarantine.crm_contact_fields (contact_id, column_name, value, reason, "
                                "quarantined_at) VALUES (:c, 'phone', 'n/a', 'phone is not a phone number', :t)",
                          {"c": f"C{created:%j}", "t": created})
        # Two old snapshots of one audience: the older is purged, the latest is kept however old it is.
        for taken, members in ((OLD - timedelta(days=1), ["p1", "p2"]), (OLD, ["p2"])):
            for member in members:
                warehouse.run(conn, "INSERT INTO audiences.memberships VALUES ('buyers', :p, CAST(:t AS DATE), :t)",
                              {"p": member, "t": taken})
            warehouse.run(conn, "INSERT INTO audiences.snapshots VALUES ('buyers', :t, :n, 0, 0)",
                          {"t": taken, "n": len(members)})


def test_purge_empties_old_request_bodies_and_keeps_their_rows(warehouse):
    seed(warehouse)
    purged = purge(warehouse, NOW)
    with warehouse.begin() as conn:
        rows = warehouse.run(conn, "SELECT created_at, request_body IS NULL, response_body IS NULL "
                                   "FROM activation.egress_requests ORDER BY created_at").fetchall()
    assert purged["request bodies"] == 1
    assert [tuple(r) for r in rows] == [(OLD, True, True), (RECENT, False, False)]


def purge_then_read(warehouse, query: str) -> tuple[dict[str, int], list[tuple]]:
    """Seed, purge as of NOW, and return what was purged and the rows `query` still finds."""
    seed(warehouse)
    purged = purge(warehouse, NOW)
    with warehouse.begin() as conn:
        return purged, [tuple(r) for r in warehouse.run(conn, query).fetchall()]


def test_purge_deletes_quarantined_rows_past_the_window(warehouse):
    purged, left = purge_then_read(warehouse, "SELECT quarantined_at FROM quarantine.crm_contacts")
    assert purged["quarantined contacts"] == 1
    assert purged["quarantined orders"] == 0  # never created: nothing to purge
    assert [r[0] for r in left] == [RECENT]


def test_purge_deletes_dropped_fields_past_the_quarantine_window(warehouse):
    purged, left = purge_then_read(warehouse, "SELECT quarantined_at FROM quarantine.crm_contact_fields")
    assert (purged["quarantined contact fields"], purged["quarantined order fields"]) == (1, 0)
    assert [r[0] for r in left] == [RECENT]


def test_purge_keeps_each_audiences_latest_snapshot(warehouse):
    purged, left = purge_then_read(warehouse, "SELECT profile_id, snapshot_ts FROM audiences.memberships")
    assert purged["membership snapshots"] == 2
    assert [tuple(r) for r in left] == [("p2", OLD)]


def test_windows_come_from_the_environment(warehouse, monkeypatch):
    seed(warehouse)
    monkeypatch.setenv("CDP_RETENTION_REQUEST_BODY_DAYS", "1")
    monkeypatch.setenv("CDP_RETENTION_QUARANTINE_DAYS", "1000")
    purged = purge(warehouse, NOW)
    assert purged["request bodies"] == 2
    assert purged["quarantined contacts"] == 0


def test_the_asset_records_each_purge_and_passes_its_check(warehouse):
    seed(warehouse)
    result = dg.materialize([retention_asset(warehouse.dialect)], resources={"warehouse": warehouse})
    materialization = result.asset_materializations_for_node("maintenance__retention_runs")[0]
    with warehouse.begin() as conn:
        logged = warehouse.run(conn, "SELECT target, window_days FROM maintenance.retention_runs "
                                     "ORDER BY target").fetchall()
    assert result.get_asset_check_evaluations()[0].passed
    assert materialization.metadata["window_days: request_bodies"].value == 30
    assert [tuple(r) for r in logged] == [("membership snapshots", 180), ("quarantined contact fields", 90),
                                          ("quarantined contacts", 90), ("quarantined order fields", 90),
                                          ("quarantined orders", 90), ("request bodies", 30)]
