"""Benchmark: a 1M-contact + 2M-order CRM drop through validation into staging on DuckDB.

    make bench     # or: .venv/bin/python -m benchmarks.crm_ingest [--contacts 1000000] [--pairs 3]

Baseline: DuckDB's bare load of the same two files (`CREATE TABLE AS SELECT * FROM read_csv(...)`, type
sniffing on). Ours: what the raw assets and staging models do: hash each file, read it as text, run every
row check in SQL, read each distinct (phone, country) with phonenumbers on every core, split rows into raw
and quarantine with the ledger row, then build `staging.stg_crm_contacts` and `staging.stg_crm_orders`.
Each measurement runs in a fresh process on a fresh DuckDB file; the contenders alternate and the ratio
reported is the median of (ours / baseline) over the pairs. `ours_warm` is the same load into a warehouse
whose phone cache already knows these numbers (a daily full re-export of known people); its warm-up is
not timed. Peak RSS is the measuring process's (the phone workers are separate interpreters, each holding
one chunk of values).
"""

import json
import resource
import statistics
import time
from datetime import UTC, date, datetime
from pathlib import Path

from benchmarks.fresh_process import OUT, measure, parser

CONTACT_ROWS_PER_PERSON = 1.125  # what the generator's seed 42 produces
ORDER_WEIGHTS = (0, 10, 55, 35)  # 2.25 orders per person: 2M orders for 1M contacts


def ensure_files(contacts: int) -> Path:
    from cdp_assets.sample_data import write_crm_extracts

    target = OUT / f"drop_{contacts}"
    if not (target / "crm" / "orders.csv").exists():
        started = time.perf_counter()
        counts = write_crm_extracts(target, round(contacts / CONTACT_ROWS_PER_PERSON), date(2026, 11, 21),
                                    order_weights=ORDER_WEIGHTS)
        print(f"generated {counts['contacts']} contacts and {counts['orders']} orders "
              f"in {time.perf_counter() - started:.1f}s")
    return target / "crm"


def _warm_phone_cache(warehouse, crm: Path) -> None:
    """Load the drop once and empty everything but the phone cache: a daily re-export of known people."""
    from cdp_assets.ingest import crm_load
    from cdp_assets.ingest.crm_entities import CONTACTS, ORDERS
    from cdp_assets.ingest.mappings import load_mappings, mapping_for

    for entity, name in ((CONTACTS, "contacts.csv"), (ORDERS, "orders.csv")):
        crm_load.load_file(warehouse, entity, mapping_for(load_mappings(), name), crm / name, f"warm-{name}",
                           datetime.now(UTC))
    with warehouse.begin() as conn:
        for table in ("raw.crm_contacts", "raw.crm_orders", "quarantine.crm_contacts", "quarantine.crm_orders",
                      "raw.crm_file_ledger"):
            warehouse.run(conn, f"DELETE FROM {table}")


def ours(crm: Path, db: Path, warm: bool = False) -> dict[str, float]:
    from cdp_assets.ingest import crm_load
    from cdp_assets.ingest.crm_entities import CONTACTS, ORDERS
    from cdp_assets.ingest.files import file_sha256
    from cdp_assets.ingest.mappings import load_mappings, mapping_for
    from cdp_assets.ingest.phones import PHONE_NUMBERS
    from cdp_assets.resources.warehouse import WarehouseResource
    from cdp_assets.sql_models import SQL_ROOT, parse_model

    phases = {"phone_parsing": 0.0, "phones_parsed": 0}
    parse = crm_load.parse_phones

    def timed_parse(pairs):
        started = time.perf_counter()
        result = parse(pairs)
        phases["phone_parsing"] += time.perf_counter() - started
        phases["phones_parsed"] += len(pairs)
        return result

    crm_load.parse_phones = timed_parse
    warehouse = WarehouseResource(url=f"duckdb:///{db}")
    mappings = load_mappings()
    with warehouse.begin() as conn:
        for table in (crm_load.LEDGER, PHONE_NUMBERS, *(table for entity in (CONTACTS, ORDERS) for table in (
                entity.raw_table, entity.quarantine_table, entity.fields_table))):
            table.ensure(warehouse, conn)
    if warm:
        _warm_phone_cache(warehouse, crm)
        phases.update(phone_parsing=0.0, phones_parsed=0)
    rows = 0
    began = started = time.perf_counter()
    for entity, name in ((CONTACTS, "contacts.csv"), (ORDERS, "orders.csv")):
        path = crm / name
        loaded = crm_load.load_file(warehouse, entity, mapping_for(mappings, name), path, file_sha256(path),
                                    datetime.now(UTC))
        rows += loaded.read
    phases["into_raw"] = time.perf_counter() - started
    started = time.perf_counter()
    with warehouse.begin() as conn:
        for name in ("stg_crm_contacts", "stg_crm_orders"):
            model = parse_model(SQL_ROOT, SQL_ROOT / "staging" / f"{name}.sql")
            warehouse.replace_table(conn, model.table, model.sql)
    phases["staging"] = time.perf_counter() - started
    return {"rows": rows, **phases, "seconds": time.perf_counter() - began}


def baseline(crm: Path, db: Path) -> dict[str, float]:
    import duckdb

    with duckdb.connect(str(db)) as conn:
        for name in ("contacts", "orders"):
            conn.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv('{crm / name}.csv')").fetchall()
        [(rows,)] = conn.execute("SELECT (SELECT count(*) FROM contacts) + (SELECT count(*) FROM orders)").fetchall()
    return {"rows": rows}


def measure_one(which: str, crm: Path, db: Path) -> None:
    # Imports are paid once per Dagster process, not per load: keep them out of the timing.
    import duckdb  # noqa: F401

    if which != "baseline":
        import cdp_assets.ingest.crm_load
        import cdp_assets.sql_models  # noqa: F401

    if which == "baseline":
        started = time.perf_counter()
        result = baseline(crm, db)
        result["seconds"] = time.perf_counter() - started
    else:
        result = ours(crm, db, warm=which == "ours_warm")  # times itself, leaving the warm-up out
    print(json.dumps({
        "which": which, **result,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


def main() -> None:
    arguments = parser(__doc__, ["ours", "ours_warm", "baseline"])
    arguments.add_argument("--contacts", type=int, default=1_000_000)
    arguments.add_argument("--crm", type=Path)
    args = arguments.parse_args()
    if args.one:
        measure_one(args.one, args.crm, args.db)
        return
    OUT.mkdir(exist_ok=True)
    crm = ensure_files(args.contacts)
    ratios: dict[str, list[float]] = {"ours": [], "ours_warm": []}
    for pair in range(args.pairs):
        base = measure("benchmarks.crm_ingest", "baseline", pair, "--crm", str(crm))
        print(f"pair {pair + 1}: baseline {base['seconds']:.2f}s ({base['rows']} rows, "
              f"{base['peak_rss_mib']:.0f} MiB)")
        for which in ratios:
            mine = measure("benchmarks.crm_ingest", which, pair, "--crm", str(crm))
            ratios[which].append(mine["seconds"] / base["seconds"])
            print(f"  {which}: {mine['seconds']:.2f}s = {ratios[which][-1]:.2f}x ({mine['rows']} rows read, "
                  f"{mine['peak_rss_mib']:.0f} MiB) | into raw "
                  f"{mine['into_raw']:.2f}s of which phone parsing {mine['phone_parsing']:.2f}s for "
                  f"{mine['phones_parsed']} values | staging {mine['staging']:.2f}s")
    for which, values in ratios.items():
        print(f"median ratio {which}/baseline: {statistics.median(values):.2f} over {len(values)} pairs")


if __name__ == "__main__":
    main()
