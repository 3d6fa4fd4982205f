"""Audiences: consent, suppression and deletion enforced centrally; every run appends a snapshot."""

import dagster as dg

from cdp_assets.definitions import build_definitions

SETUP = [
    "CREATE TABLE staging.stg_crm_orders AS SELECT * FROM (VALUES "
    "('O1', current_date - INTERVAL 1 DAY, TRUE), ('O2', current_date - INTERVAL 2 DAY, TRUE), "
    "('O3', current_date - INTERVAL 3 DAY, TRUE), ('O4', current_date - INTERVAL 4 DAY, TRUE)) "
    "AS t(order_id, order_ts, counts_as_conversion)",
    "CREATE TABLE core.record_profiles AS SELECT * FROM (VALUES ('order:O1', 'order', 'p_ok'), "
    "('order:O2', 'order', 'p_no_consent'), ('order:O3', 'order', 'p_suppressed'), ('order:O4', 'order', 'p_deleted')"
    ") AS t(record_key, record_type, profile_id)",
    "CREATE TABLE core.unified_profiles AS SELECT * FROM (VALUES ('p_ok', TRUE), ('p_no_consent', FALSE), "
    "('p_suppressed', TRUE), ('p_deleted', TRUE)) AS t(profile_id, consent_marketing)",
    "CREATE TABLE core.suppressed_profiles AS SELECT 'p_suppressed' AS profile_id",
    "CREATE TABLE core.deletion_pending_profiles AS SELECT 'p_deleted' AS profile_id",
]


def materialize_audience(warehouse) -> dg.MaterializeResult:
    asset = build_definitions(warehouse).resolve_assets_def(dg.AssetKey(["audiences", "purchasers_30d"]))
    result = dg.materialize([asset])
    return result.asset_materializations_for_node(asset.op.name)[0].metadata


def members(warehouse) -> list[tuple]:
    with warehouse.begin() as conn:
        return sorted(tuple(r) for r in warehouse.run(
            conn, "SELECT audience, profile_id FROM audiences.memberships WHERE snapshot_ts = "
                  "(SELECT max(snapshot_ts) FROM audiences.snapshots)"))


def test_only_consented_unsuppressed_undeleted_profiles_are_members(warehouse):
    with warehouse.begin() as conn:
        warehouse.ensure_schemas(conn)
        for statement in SETUP:
            warehouse.run(conn, statement)

    metadata = materialize_audience(warehouse)

    assert members(warehouse) == [("purchasers_30d", "p_ok")]
    assert {k: v.value for k, v in metadata.items() if k.startswith(("excluded", "size", "added", "removed"))} == {
        "size": 1, "added": 1, "removed": 0, "excluded: deletion pending": 1, "excluded: no marketing consent": 1,
        "excluded: suppressed": 1}


def test_a_profile_that_withdraws_consent_drops_out_of_the_next_snapshot(warehouse):
    with warehouse.begin() as conn:
        warehouse.ensure_schemas(conn)
        for statement in SETUP:
            warehouse.run(conn, statement)
    materialize_audience(warehouse)
    with warehouse.begin() as conn:
        warehouse.run(conn, "UPDATE core.unified_profiles SET consent_marketing = FALSE WHERE profile_id = 'p_ok'")

    metadata = materialize_audience(warehouse)

    assert members(warehouse) == []
    assert (metadata["size"].value, metadata["added"].value, metadata["removed"].value) == (0, 0, 1)
    with warehouse.begin() as conn:
        assert warehouse.scalar(conn, "SELECT count(*) FROM audiences.snapshots") == 2
