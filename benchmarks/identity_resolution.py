"""Benchmark: our identity stage against Splink 5 on the `cdp_landscape.md` section 1.7 workloads.

    make bench     # or: .venv/bin/python -m benchmarks.identity_resolution [--workloads w0 w1 w2 w3] [--pairs 1]

Baseline: Splink 5's deterministic linking on DuckDB (`dedupe_only`, one `block_on` rule per identifier,
`deterministic_link()` then `cluster_pairwise_predictions_at_threshold()`), timed from registering the
records to the clusters. Ours: `run_identity` in full, end to end: records and edges built in SQL,
blocklist, degree cap and per-profile limits, SciPy components, stable profile ids, and
`core.record_profiles`, `core.identity_edges`, `core.profile_identifiers` and `core.identity_audit` written.
`incremental`: after a full run, 1 % more people arrive (a later `loaded_at`) and an incremental run
restitches them; its time is set against that process's own full run. Every measurement runs in a fresh
process on the same Parquet file and DuckDB version; peak RSS is read when the timed section ends, before
pair precision and recall against the true person are computed in SQL.
"""

import json
import resource
import sys
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from benchmarks.fresh_process import OUT, measure, parser
from benchmarks.identity_workloads import IDENTIFIERS, generate, identity_config

MODULE = "benchmarks.identity_resolution"
WORKLOADS = {"w0": (100_000, 0.002), "w1": (1_000_000, 0.002), "w2": (300_000, 0.02), "w3": (3_000_000, 0.002)}
QUALITY_SQL = """
WITH j AS (SELECT {label} AS label, cluster FROM {clusters} AS c JOIN read_parquet('{records}') AS r ON {on}),
tp AS (SELECT sum(n * (n - 1) / 2) AS v FROM (SELECT count(*) AS n FROM j GROUP BY label, cluster)),
pred AS (SELECT sum(n * (n - 1) / 2) AS v, count(*) AS clusters, max(n) AS largest
         FROM (SELECT count(*) AS n FROM j GROUP BY label)),
act AS (SELECT sum(n * (n - 1) / 2) AS v FROM (SELECT count(*) AS n FROM j GROUP BY cluster))
SELECT tp.v, pred.v, act.v, pred.clusters, pred.largest FROM tp, pred, act
"""


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def quality(con, clusters: str, records: Path, label: str, on: str) -> dict:
    tp, predicted, actual, clusters_n, largest = con.execute(
        QUALITY_SQL.format(clusters=clusters, records=records, label=label, on=on)).fetchone()
    return {"precision": float(tp) / float(predicted) if predicted else 1.0, "recall": float(tp) / float(actual),
            "clusters": int(clusters_n), "largest_cluster": int(largest)}


def run_splink(records: Path) -> dict:
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    started = time.perf_counter()
    db_api = DuckDBAPI()
    frame = db_api.register(pq.read_table(records, columns=["unique_id", *IDENTIFIERS]))
    settings = SettingsCreator(link_type="dedupe_only", comparisons=[],
                               blocking_rules_to_generate_predictions=[block_on(c) for c in IDENTIFIERS])
    linker = Linker(frame, settings)
    pairs = linker.inference.deterministic_link()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, None)
    seconds = time.perf_counter() - started
    peak = peak_mib()
    con = db_api.duckdb_con
    result = {"seconds": seconds, "peak_rss_mib": peak,
              "pairs": con.execute(f"SELECT count(*) FROM {pairs.physical_name}").fetchone()[0]}
    return result | quality(con, clusters.physical_name, records, "c.cluster_id", "r.unique_id = c.unique_id")


def load(db: Path, records: Path):
    from cdp_assets.resources.warehouse import WarehouseResource

    warehouse = WarehouseResource(url=f"duckdb:///{db}")
    with warehouse.begin() as conn:
        warehouse.ensure_schemas(conn, ["bench"])
        conn.exec_driver_sql(f"CREATE TABLE bench.records AS SELECT * FROM read_parquet('{records}')")
    return warehouse


def run_ours(records: Path, db: Path, delta: Path | None) -> dict:
    from cdp_assets.identity.incremental import run_identity

    warehouse = load(db, records)
    config = identity_config()
    started = time.perf_counter()
    with warehouse.begin() as conn:
        run = run_identity(warehouse, conn, config, "bench", full=True)
    seconds = time.perf_counter() - started
    result = {"seconds": seconds, "peak_rss_mib": peak_mib(), "engine": run.solution.engine,
              "component_searches": run.solution.rounds}
    if delta is not None:
        with warehouse.begin() as conn:
            conn.exec_driver_sql(f"INSERT INTO bench.records SELECT * FROM read_parquet('{delta}')")
        started = time.perf_counter()
        with warehouse.begin() as conn:
            increment = run_identity(warehouse, conn, config, "bench-delta")
        result |= {"incremental_seconds": time.perf_counter() - started, "incremental_mode": increment.mode,
                   "records_restitched": increment.records_restitched,
                   "peak_rss_mib_with_incremental": peak_mib()}
        return result
    warehouse.engine().dispose()
    con = duckdb.connect(str(db), read_only=True)
    result["edges"] = con.execute("SELECT count(*) FROM core.identity_edges").fetchone()[0]
    result["dropped_edges"] = con.execute("SELECT count(*) FROM core.identity_audit").fetchone()[0]
    return result | quality(con, "core.record_profiles", records, "c.profile_id",
                            "c.record_key = 'record:' || CAST(r.unique_id AS VARCHAR)")


def workload_files(name: str) -> tuple[Path, Path, int]:
    people, junk = WORKLOADS[name]
    records, delta = OUT / f"identity_{name}.parquet", OUT / f"identity_{name}_delta.parquet"
    if not records.exists() or not delta.exists():
        OUT.mkdir(exist_ok=True)
        pq.write_table(generate(people, junk_rate=junk), records)
        pq.write_table(generate(people // 100, seed=7, junk_rate=junk, first_id=people,
                                loaded_at=datetime(2026, 1, 2)), delta)
    return records, delta, pq.read_metadata(records).num_rows


def main() -> None:
    arguments = parser(__doc__, ["splink", "ours", "incremental"])
    arguments.add_argument("--workloads", nargs="+", default=["w0", "w2", "w1"], choices=sorted(WORKLOADS))
    arguments.add_argument("--timeout", type=float, default=900,
                           help="seconds after which a Splink run is stopped and reported as timed out")
    arguments.add_argument("--records", type=Path)
    arguments.add_argument("--delta", type=Path)
    options = arguments.parse_args()
    if options.one:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        if options.one == "splink":
            result = run_splink(options.records)
        else:
            result = run_ours(options.records, options.db, options.delta if options.one == "incremental" else None)
        print(json.dumps(result))
        return
    for name in options.workloads:
        records, delta, rows = workload_files(name)
        for pair in range(options.pairs):
            splink = measure(MODULE, "splink", pair, "--records", str(records), timeout=options.timeout)
            ours = measure(MODULE, "ours", pair, "--records", str(records))
            increment = measure(MODULE, "incremental", pair, "--records", str(records), "--delta", str(delta))
            finished = "seconds" in splink
            print(json.dumps({
                "workload": name, "records": rows, "pair": pair, "splink": splink, "ours": ours,
                "incremental": increment,
                "speedup_records_per_s": splink["seconds"] / ours["seconds"] if finished else None,
                "rss_ours_over_splink": ours["peak_rss_mib"] / splink["peak_rss_mib"] if finished else None,
                "incremental_over_full": increment["incremental_seconds"] / increment["seconds"],
            }), flush=True)


if __name__ == "__main__":
    main()
