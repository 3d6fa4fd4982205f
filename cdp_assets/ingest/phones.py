"""Phone numbers read to E.164 with phonenumbers during validation, each distinct (value, country) once ever.

Parsing is the one check SQL cannot do. A file's distinct (phone, country) pairs are looked up in
`staging.phone_numbers`, a cache of every parse ever made; only pairs never seen are parsed, on every
core, and added to it. Each row then gets its `_phone_e164`, or, when its phone cannot be read in its country,
the reason the phone is dropped from it.
"""

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import duckdb
import pyarrow as pa

from cdp_assets.privacy.geo import country_code
from cdp_assets.privacy.pii import PhoneError, to_e164
from cdp_assets.resources.state import StateTable

PHONE_NUMBERS = StateTable(
    "staging.phone_numbers",
    "CREATE TABLE staging.phone_numbers (phone_raw VARCHAR, country_raw VARCHAR, region VARCHAR, "
    "e164 VARCHAR, reason VARCHAR, parsed_at TIMESTAMP, PRIMARY KEY (phone_raw, country_raw))",
)
# Below this many new values, starting worker processes costs more than it saves.
PARALLEL_THRESHOLD = 20_000
PARSED_SCHEMA = pa.schema([("phone_raw", pa.string()), ("country_raw", pa.string()), ("region", pa.string()),
                           ("e164", pa.string()), ("reason", pa.string())])


def parse_phone(phone_raw: str, country_raw: str) -> tuple[str | None, str | None, str | None]:
    """(region, e164, reason): the number in E.164, or None with the reason it could not be read."""
    region = country_code(country_raw)
    try:
        return region, to_e164(phone_raw, region), None
    except PhoneError as error:
        return region, None, f"phone is {error}" if str(error).startswith("not") else f"phone has {error}"


def _parse_chunk(pairs: list[tuple[str, str]]) -> list[tuple[str | None, str | None, str | None]]:
    return [parse_phone(phone, country) for phone, country in pairs]


def _spawnable() -> bool:
    """Whether spawned workers can re-import the main module (not so for `python -` or a REPL)."""
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    return main is None or Path(main).is_file()


def parse_phones(pairs: list[tuple[str, str]]) -> pa.Table:
    """Parse (phone as written, country as written) pairs, on every core when there are many."""
    workers = os.cpu_count() or 1
    if len(pairs) < PARALLEL_THRESHOLD or workers == 1 or not _spawnable():
        parsed = _parse_chunk(pairs)
    else:
        size = -(-len(pairs) // (workers * 4))
        chunks = [pairs[i:i + size] for i in range(0, len(pairs), size)]
        # spawn, not fork: the parent holds DuckDB and Dagster threads that a fork would copy mid-flight.
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            parsed = [row for chunk in pool.map(_parse_chunk, chunks) for row in chunk]
    return pa.table([[p for p, _ in pairs], [c for _, c in pairs], [r for r, _, _ in parsed],
                     [e for _, e, _ in parsed], [why for _, _, why in parsed]], schema=PARSED_SCHEMA)


def country_key(column: str | None) -> str:
    """SQL for how the cache keys a row's country: trimmed, upper-cased, '' when the row has none."""
    return f"coalesce(upper(trim({column})), '')" if column else "''"


def distinct_pairs_sql(table: str, phone: str, has_country: bool) -> str:
    """The distinct (phone, country) pairs of a checked file's rows, as the cache keys them; `phone` is the
    column holding the trimmed phone."""
    return (f"SELECT DISTINCT {phone} AS phone_raw, {country_key('country' if has_country else None)} "
            f"AS country_raw FROM {table} WHERE {phone} <> ''")


def new_pairs(engine: duckdb.DuckDBPyConnection, pairs_table: str, cached_table: str) -> list[tuple[str, str]]:
    """Pairs of `pairs_table` that `cached_table` (the cache, or the part of it the file needs) lacks."""
    return engine.execute(
        f"SELECT phone_raw, country_raw FROM {pairs_table} AS n WHERE NOT EXISTS (SELECT 1 FROM {cached_table} "
        "AS p WHERE p.phone_raw = n.phone_raw AND p.country_raw = n.country_raw)").fetchall()
