"""Parity oracle: with guards off our profiles are exactly Splink's deterministic clusters; with guards on,
junk values merge nobody."""

import pyarrow as pa
import pytest
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from benchmarks.identity_workloads import IDENTIFIERS, generate, identity_config, pair_counts
from cdp_assets.identity.incremental import run_identity

RECORDS_DDL = ("CREATE TABLE bench.records (unique_id BIGINT, source VARCHAR, cluster BIGINT, email VARCHAR, "
               "phone VARCHAR, user_id VARCHAR, anonymous_id VARCHAR, crm_id VARCHAR, loaded_at TIMESTAMP)")


@pytest.fixture(scope="module")
def junk_workload() -> pa.Table:
    return generate(2000, seed=42, junk_rate=0.02)


def splink_clusters(records: pa.Table) -> dict[int, int]:
    db_api = DuckDBAPI()
    frame = db_api.register(records.select(["unique_id", *IDENTIFIERS]).to_pandas())
    settings = SettingsCreator(link_type="dedupe_only", comparisons=[],
                               blocking_rules_to_generate_predictions=[block_on(c) for c in IDENTIFIERS])
    linker = Linker(frame, settings)
    pairs = linker.inference.deterministic_link()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, None).as_pandas_dataframe()
    return dict(zip(clusters["unique_id"], clusters["cluster_id"], strict=True))


def our_profiles(warehouse, records: pa.Table, guards: bool) -> dict[int, str]:
    # At this scale a junk value is held by about 20 records, so the degree cap scales down with it.
    config = identity_config(guards=guards, max_records=10)
    with warehouse.begin() as conn:
        warehouse.ensure_schemas(conn, ["bench"])
        conn.exec_driver_sql("DROP TABLE IF EXISTS bench.records")
        conn.exec_driver_sql(RECORDS_DDL)
        warehouse.append_arrow(conn, "bench.records", records)
        run_identity(warehouse, conn, config, "parity", full=True)
        rows = warehouse.run(conn, "SELECT record_key, profile_id FROM core.record_profiles").fetchall()
    return {int(key.split(":")[1]): profile for key, profile in rows}


def partition(assignment: dict) -> set[frozenset]:
    members: dict[object, set] = {}
    for record, group in assignment.items():
        members.setdefault(group, set()).add(record)
    return {frozenset(m) for m in members.values()}


def test_without_guards_our_profiles_are_splinks_clusters(warehouse, junk_workload):
    ours = our_profiles(warehouse, junk_workload, guards=False)
    theirs = splink_clusters(junk_workload)

    assert len(ours) == junk_workload.num_rows == len(theirs)
    assert partition(ours) == partition(theirs)
    assert max(len(m) for m in partition(ours)) > 100  # the junk values did merge strangers


def test_with_guards_junk_values_merge_nobody_and_recall_holds(warehouse, junk_workload):
    truth = junk_workload.column("cluster").to_pylist()
    ids = junk_workload.column("unique_id").to_pylist()
    guarded = our_profiles(warehouse, junk_workload, guards=True)
    unguarded = splink_clusters(junk_workload)

    true_pairs, predicted, actual = pair_counts([guarded[i] for i in ids], truth)
    splink_true, _, _ = pair_counts([unguarded[i] for i in ids], truth)

    assert true_pairs == predicted  # precision 1.0
    assert abs(true_pairs / actual - splink_true / actual) <= 0.001
