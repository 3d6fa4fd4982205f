"""One CRM file checked and loaded: accepted rows into `raw`, rejected rows into `quarantine`, in one transaction.

DuckDB reads and checks the file itself, in parallel (the warehouse connection on a DuckDB warehouse, a
local DuckDB otherwise), so no row passes through pandas. The file's phones are read with phonenumbers
once per distinct (value, country) never seen before. Rows sharing a key with other values in one file are
quarantined together; exact duplicate rows are counted and kept (staging keeps one). Lines the reader could not
split into the header's fields are quarantined with their line number and reason only (`lines.py`).
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from sqlalchemy.engine import Connection

from cdp_assets.ingest.crm_entities import CrmEntity
from cdp_assets.ingest.files import FileSource, open_source, scrub_error
from cdp_assets.ingest.lines import SKIPPED, numbered_sql
from cdp_assets.ingest.mappings import Mapping
from cdp_assets.ingest.phones import PHONE_NUMBERS, country_key, distinct_pairs_sql, new_pairs, parse_phones
from cdp_assets.ingest.validation import checked_sql, prepare
from cdp_assets.resources.state import StateTable
from cdp_assets.resources.warehouse import WarehouseResource

LEDGER = StateTable(
    "raw.crm_file_ledger",
    "CREATE TABLE raw.crm_file_ledger (entity VARCHAR, file_name VARCHAR, file_sha256 VARCHAR, "
    "rows_read BIGINT, rows_loaded BIGINT, rows_quarantined BIGINT, loaded_at TIMESTAMP, "
    "PRIMARY KEY (entity, file_sha256))",
)
CHECKED, PAIRS, CACHED, PARSES = "_cdp_checked", "_cdp_pairs", "_cdp_cached", "_cdp_parses"
CONFLICTS, FINAL = "_cdp_conflicts", "_cdp_final"


@dataclass
class FileLoad:
    read: int = 0
    loaded: int = 0
    quarantined: int = 0  # whole rows, the malformed lines among them
    malformed: int = 0  # lines whose fields could not be read, quarantined without their content
    exact_duplicates: int = 0
    phones_parsed: int = 0
    extra_columns: list[str] = field(default_factory=list)

    def add(self, other: "FileLoad") -> None:
        for name in ("read", "loaded", "quarantined", "malformed", "exact_duplicates", "phones_parsed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def run_duckdb(engine: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    """Execute on a DuckDB connection and drain the result (DuckDB 2 results stream and hold the connection)."""
    return engine.execute(sql, params or []).fetchall()


def _check_file(engine: duckdb.DuckDBPyConnection, entity: CrmEntity, mapping: Mapping, path: Path,
                now: datetime) -> FileSource:
    """Read the file and run the SQL checks into the temporary table `_cdp_checked`, in file order, and list the
    lines that are not rows in `_cdp_skipped`.

    Each row also gets `_fp`, a hash of all its values, so duplicates and conflicts are found by grouping.
    """
    prepare(engine)
    source = open_source(engine, path, mapping)
    query = checked_sql(source.sql, source.columns, entity.typed, entity.rules(now))
    fingerprint = ", ".join([*entity.text_columns, "extra"])
    try:
        run_duckdb(engine, f"CREATE OR REPLACE TEMP TABLE {CHECKED} AS "
                           f"SELECT *, hash({fingerprint}) AS _fp FROM ({query}) AS checked")
        run_duckdb(engine, f"CREATE OR REPLACE TEMP TABLE {SKIPPED} AS {source.skipped}")
    except duckdb.Error as error:
        raise scrub_error(path, error) from None
    run_duckdb(engine, f"CREATE OR REPLACE TEMP TABLE {PAIRS} AS "
                       f"{distinct_pairs_sql(CHECKED, entity.has_country)}")
    return source


def _cached_parses(warehouse: WarehouseResource, conn: Connection, engine: duckdb.DuckDBPyConnection) -> str:
    """The name, in `engine`, of the cached parses of this file's phone pairs."""
    if warehouse.dialect == "duckdb":
        return PHONE_NUMBERS.name
    # Only the pairs this file holds travel from the warehouse, through a temporary table there.
    warehouse.run(conn, f"CREATE TEMP TABLE {PAIRS} (phone_raw VARCHAR, country_raw VARCHAR) ON COMMIT DROP")
    warehouse.append_arrow(conn, PAIRS, engine.sql(f"SELECT * FROM {PAIRS}").to_arrow_reader())
    rows = warehouse.run(conn, f"SELECT p.phone_raw, p.country_raw, p.e164, p.reason FROM {PHONE_NUMBERS.name} "
                               f"AS p JOIN {PAIRS} AS n ON p.phone_raw = n.phone_raw "
                               "AND p.country_raw = n.country_raw").fetchall()
    cached = pa.table([pa.array([r[i] for r in rows], pa.string()) for i in range(4)],
                      names=["phone_raw", "country_raw", "e164", "reason"])
    engine.register("_cdp_cached_in", cached)
    run_duckdb(engine, f"CREATE OR REPLACE TEMP TABLE {CACHED} AS SELECT * FROM _cdp_cached_in")
    engine.unregister("_cdp_cached_in")
    return CACHED


def _read_phones(warehouse: WarehouseResource, conn: Connection, engine: duckdb.DuckDBPyConnection,
                 at: datetime) -> int:
    """Give every phone pair of the file its parse in `_cdp_parses`, parsing only pairs never seen."""
    cached = _cached_parses(warehouse, conn, engine)
    pending = new_pairs(engine, PAIRS, cached)
    parsed = parse_phones(pending)
    engine.register("_cdp_parsed_in", parsed)
    run_duckdb(engine, f"CREATE OR REPLACE TEMP TABLE {PARSES} AS "
                       f"SELECT p.phone_raw, p.country_raw, p.e164, p.reason FROM {cached} AS p "
                       f"JOIN {PAIRS} AS n ON p.phone_raw = n.phone_raw AND p.country_raw = n.country_raw "
                       "UNION ALL SELECT phone_raw, country_raw, e164, reason FROM _cdp_parsed_in")
    engine.unregister("_cdp_parsed_in")
    if pending:
        warehouse.append_arrow(conn, PHONE_NUMBERS.name, parsed, {"parsed_at": at})
    return len(pending)


def _finish_checks(engine: duckdb.DuckDBPyConnection, entity: CrmEntity, first_line: int) -> int:
    """Define `_cdp_final`: rows with line numbers, phones and every reason; returns the exact duplicate rows.

    Keys holding rows with different values are found by grouping (cheaper than a window over every
    row), and `_cdp_final` is a view: its rows are written once, straight into raw or quarantine.
    """
    country = country_key("c.country" if entity.has_country else None)
    keys = ", ".join(f"{expression} AS k{i}" for i, expression in enumerate(entity.key_sql("c")))
    # A blank key is already a reason of its own; rows without one do not conflict with each other.
    run_duckdb(engine, f"CREATE OR REPLACE TEMP TABLE {CONFLICTS} AS SELECT {keys} FROM {CHECKED} AS c "
                       f"WHERE {entity.key_sql('c')[0]} <> '' GROUP BY ALL HAVING min(_fp) <> max(_fp)")
    same_key = " AND ".join(f"k.k{i} = {expression}" for i, expression in enumerate(entity.key_sql("c")))
    run_duckdb(engine, f"""
        CREATE OR REPLACE TEMP VIEW {FINAL} AS
        SELECT c.* EXCLUDE (reason, _fp), p.e164 AS _phone_e164,
               nullif(concat_ws('; ', c.reason, p.reason,
                                CASE WHEN k.k0 IS NOT NULL THEN '{entity.conflict_reason}' END), '') AS reason
        FROM ({numbered_sql(CHECKED, first_line)}) AS c
        LEFT JOIN {PARSES} AS p ON p.phone_raw = trim(c.phone) AND p.country_raw = {country}
        LEFT JOIN {CONFLICTS} AS k ON {same_key}""")
    [(duplicates,)] = run_duckdb(engine, f"SELECT count(*) - count(DISTINCT _fp) FROM {CHECKED}")
    return int(duplicates)


def _move(warehouse: WarehouseResource, conn: Connection, engine: duckdb.DuckDBPyConnection, table: str,
          target: str, query: str, constants: dict[str, object]) -> int:
    """Insert the rows of a DuckDB query into a warehouse table, with `constants` in the last columns."""
    if warehouse.dialect == "duckdb":
        [(count,)] = run_duckdb(engine, f"INSERT INTO {table} ({target}, {', '.join(constants)}) "
                                        f"SELECT *, ?, ?, ? FROM ({query}) AS moved", list(constants.values()))
    else:
        [(count,)] = run_duckdb(engine, f"SELECT count(*) FROM ({query}) AS moved")
        warehouse.append_arrow(conn, table, engine.sql(query).to_arrow_reader(), constants)
    return int(count)


def _move_checked(warehouse: WarehouseResource, conn: Connection, engine: duckdb.DuckDBPyConnection,
                  entity: CrmEntity, stamp: dict[str, object]) -> tuple[int, int, int]:
    """Accepted rows into raw, rejected rows and malformed lines into quarantine; returns (loaded, quarantined,
    malformed), the malformed lines counted among the quarantined."""
    raw_columns, raw_select = entity.raw_select()
    quarantine_columns, quarantine_select = entity.quarantine_select()
    kept = {"_source": stamp["source"], "_file_sha256": stamp["sha"], "_loaded_at": stamp["at"]}
    rejected = {"source_file": stamp["source"], "file_sha256": stamp["sha"], "quarantined_at": stamp["at"]}
    loaded = _move(warehouse, conn, engine, entity.raw_table.name, raw_columns,
                   f"SELECT {raw_select} FROM {FINAL} WHERE reason IS NULL", kept)
    quarantined = _move(warehouse, conn, engine, entity.quarantine_table.name, quarantine_columns,
                        f"SELECT {quarantine_select} FROM {FINAL} WHERE reason IS NOT NULL", rejected)
    malformed = _move(warehouse, conn, engine, entity.quarantine_table.name, "line_number, reason",
                      f"SELECT line_number, reason FROM {SKIPPED} WHERE reason IS NOT NULL", rejected)
    return loaded, quarantined + malformed, malformed


def load_file(warehouse: WarehouseResource, entity: CrmEntity, mapping: Mapping, path: Path, sha: str,
              now: datetime) -> FileLoad:
    """Check a file and load it, with its ledger row and its new phone parses, in one warehouse transaction."""
    stamp = {"source": path.name, "sha": sha, "at": now.astimezone(UTC).replace(tzinfo=None)}
    with warehouse.begin() as conn:
        local = warehouse.dialect != "duckdb"
        engine = duckdb.connect() if local else conn.connection.driver_connection
        try:
            source = _check_file(engine, entity, mapping, path, now)
            phones = _read_phones(warehouse, conn, engine, stamp["at"])
            duplicates = _finish_checks(engine, entity, source.first_line)
            loaded, quarantined, malformed = _move_checked(warehouse, conn, engine, entity, stamp)
            run_duckdb(engine, f"DROP VIEW {FINAL}")
            for table in (CONFLICTS, PARSES, PAIRS, CHECKED, SKIPPED, *source.temporary, *([CACHED] if local else [])):
                run_duckdb(engine, f"DROP TABLE {table}")
        finally:
            if local:
                engine.close()
        result = FileLoad(loaded + quarantined, loaded, quarantined, malformed, duplicates, phones, source.extras)
        warehouse.run(
            conn,
            "INSERT INTO raw.crm_file_ledger VALUES (:entity, :name, :sha, :read, :loaded, :quarantined, :at)",
            {"entity": entity.name, "name": path.name, "sha": sha, "read": result.read,
             "loaded": result.loaded, "quarantined": result.quarantined, "at": stamp["at"]},
        )
    return result
