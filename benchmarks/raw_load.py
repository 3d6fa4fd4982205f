"""Benchmark: a 1M-row CRM contacts CSV into `raw` on DuckDB, against DuckDB's own CTAS from read_csv.

    make bench            # or: .venv/bin/python -m benchmarks.raw_load [--rows 1000000] [--pairs 3]

Each measurement runs in a fresh process on a fresh DuckDB file, so its peak RSS is its own. The two
contenders alternate; the ratio reported is the median over the pairs of (ours / baseline).
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
CONTACT_ROWS_PER_PERSON = 1.137  # what the generator's seed 42 produces


def ensure_csv(rows: int) -> Path:
    from cdp_assets.sample_data import write_crm_extracts

    target = OUT / f"landing_{rows}"
    contacts = target / "crm" / "contacts.csv"
    if not contacts.exists():
        people = round(rows / CONTACT_ROWS_PER_PERSON)
        started = time.perf_counter()
        counts = write_crm_extracts(target, people, date(2026, 11, 21))
        print(f"generated {counts['contacts']} contact rows in {time.perf_counter() - started:.1f}s")
    return contacts


def ours(csv_path: Path, db: Path) -> int:
    """The raw contacts asset's load path: hash, read, validate, split into raw and quarantine, ledger."""
    from cdp_assets.ingest.crm_files import CONTACTS, LEDGER, _load_file
    from cdp_assets.ingest.files import file_sha256
    from cdp_assets.resources.warehouse import WarehouseResource

    warehouse = WarehouseResource(url=f"duckdb:///{db}")
    with warehouse.begin() as conn:
        for table in (LEDGER, CONTACTS.raw_table, CONTACTS.quarantine_table):
            table.ensure(warehouse, conn)
    counts = _load_file(warehouse, CONTACTS, csv_path, file_sha256(csv_path), datetime.now(UTC))
    return counts["loaded"] + counts["quarantined"]


def baseline(csv_path: Path, db: Path) -> int:
    import duckdb

    with duckdb.connect(str(db)) as conn:
        conn.execute(f"CREATE TABLE crm_contacts AS SELECT * FROM read_csv('{csv_path}')")
        return conn.execute("SELECT count(*) FROM crm_contacts").fetchone()[0]


def measure_one(which: str, csv_path: Path, db: Path) -> None:
    # Imports are paid once per Dagster process, not per load: keep them out of the timing.
    import duckdb  # noqa: F401

    if which == "ours":
        import cdp_assets.ingest.crm_files  # noqa: F401

    started = time.perf_counter()
    rows = (ours if which == "ours" else baseline)(csv_path, db)
    elapsed = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"which": which, "seconds": elapsed, "rows": rows, "peak_rss_mib": peak_mib}))


def run(which: str, csv_path: Path, pair: int) -> dict:
    db = OUT / f"{which}_{pair}.duckdb"
    db.unlink(missing_ok=True)
    output = subprocess.run([sys.executable, "-m", "benchmarks.raw_load", "--one", which, "--csv", str(csv_path),
                             "--db", str(db)], check=True, capture_output=True, text=True).stdout
    db.unlink(missing_ok=True)
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--one", choices=["ours", "baseline"])
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--db", type=Path)
    args = parser.parse_args()
    if args.one:
        measure_one(args.one, args.csv, args.db)
        return
    OUT.mkdir(exist_ok=True)
    csv_path = ensure_csv(args.rows)
    results = []
    for pair in range(args.pairs):
        base = run("baseline", csv_path, pair)
        mine = run("ours", csv_path, pair)
        results.append((mine, base))
        print(f"pair {pair + 1}: ours {mine['seconds']:.2f}s ({mine['peak_rss_mib']:.0f} MiB), "
              f"duckdb read_csv {base['seconds']:.2f}s ({base['peak_rss_mib']:.0f} MiB), "
              f"ratio {mine['seconds'] / base['seconds']:.2f}")
    ratio = statistics.median(m["seconds"] / b["seconds"] for m, b in results)
    print(f"\nrows: {results[0][0]['rows']} (ours: raw + quarantine) vs {results[0][1]['rows']} (baseline)")
    print(f"median ours: {statistics.median(m['seconds'] for m, _ in results):.2f}s, "
          f"median baseline: {statistics.median(b['seconds'] for _, b in results):.2f}s")
    print(f"median ratio ours/baseline: {ratio:.2f} (target <= 1.5)")
    print(f"peak RSS: ours {max(m['peak_rss_mib'] for m, _ in results):.0f} MiB, "
          f"baseline {max(b['peak_rss_mib'] for _, b in results):.0f} MiB")


if __name__ == "__main__":
    main()
