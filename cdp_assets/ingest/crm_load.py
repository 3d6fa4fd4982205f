"""One CRM file checked and loaded, in one transaction: accepted rows into `raw`, the fields dropped from them
into the field quarantine, rejected rows into `quarantine`.

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
from cdp_assets.ingest.validation import Rule, checked_sql, field_columns, prepare, reasons_sql
from cdp_assets.resources.state import StateTable
from cdp_assets.resources.warehouse import WarehouseResource

LEDGER = StateTable(
    "raw.crm_file_ledger",
    "CREATE TABLE raw.crm_file_ledger (entity VARCHAR, file_name VARCHAR, file_sha256 VARCHAR, "
    "rows_read BIGINT, rows_loaded BIGINT, rows_quarantined BIGINT, loaded_at TIMESTAMP, "
    "fields_quarantined BIGINT, PRIMARY KEY (entity, file_sha256))",
    # Files loaded before fields were dropped one by one dropped none.
    version=2, migrations={2: ["ALTER TABLE raw.crm_file_ledger ADD COLUMN fields_quarantined BIGINT",
                               "UPDATE raw.crm_file_ledger SET fields_quarantined = 0"]},
)
LEDGER_INSERT = ("INSERT INTO raw.crm_file_ledger (entity, file_name, file_sha256, rows_read, rows_loaded, "
                 "rows_quarantined, fields_quarantined, loaded_at) "
                 "VALUES (:entity, :name, :sha, :read, :loaded, :quarantined, :fields, :at)")
CHECKED, PAIRS, CACHED, PARSES = "_cdp_checked", "_cdp_pairs", "_cdp_cached", "_cdp_parses"
CONFLICTS, FINAL = "_cdp_conflicts", "_cdp_final"


@dataclass
class FileLoad:
    read: int = 0
    loaded: int = 0
    quarantined: int = 0  # whole rows, the malformed lines among them
    malformed: int = 0  # lines whose fields could not be read, quarantined without their content
    fields_quarantined: int = 0  # fields dropped from loaded rows
    exact_duplicates: int = 0
    phones_parsed: int = 0
    extra_columns: list[str] = field(default_factory=list)

    def add(self, other: "FileLoad") -> None:
        for name in ("read", "loaded", "quarantined", "malformed", "fields_quarantined", "exact_duplicates",
                     "phones_parsed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def run_duckdb(engine: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    """Execute on a DuckDB connection and drain the result (DuckDB 2 results stream and hold the connection)."""
    return engine.execute(sql, params or []).fetchall()


def _check_file(engine: duckdb.DuckDBPyConnection, entity: CrmEntity, mapping: Mapping, path: Path,
                rules: list[Rule]) -> FileSource:
    """Read the file and run the SQL checks into the temporary table `_cdp_checked`, in file order, and list the
    lines that are not rows in `_cdp_skipped`.

    Each row also gets `_fp`, a hash of all its values, so duplicates and conflicts are found by grouping.
    """
    prepare(engine)
    source = open_source(engine, path, mapping)
    query = checked_sql(source.sql, source.columns, entity.checks, rules)
    fingerprint = ", ".join([*entity.text_columns, "extra"])
    try:
        run_duckdb(engine, f"CREATE OR REPLACE TEMP TABLE {CHECKED} AS "
                           f"SELECT *, hash({fingerprint}) AS _fp FROM ({query}) AS checked")
        run_duckdb(engine, f"CREATE OR REPLACE TEMP TABLE {SKIPPED} AS {source.skipped}")
    except duckdb.Error as error:
        raise scrub_error(path, error) from None
    run_duckdb(engine, f"CREATE OR REPLACE TEMP TABLE {PAIRS} AS "
                       f"{distinct_pairs_sql(CHECKED, '_clean_phone', entity.has_country)}")
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
    """Define `_cdp_final`: rows with line numbers, phones and their final `reason` (NULL when the row is
    accepted, every reason it failed when it is not); returns the exact duplicate rows.

    Keys holding rows with different values are found by grouping (cheaper than a window over every
    row), and `_cdp_final` is a view: its rows are written once, straight into raw or quarantine.
    """
    country = country_key("c.country" if entity.has_country else None)
    keys = ", ".join(f"{expression} AS k{i}" for i, expression in enumerate(entity.key_sql("c")))
    # A blank key is already a reason of its own; rows without one do not conflict with each other.
    run_duckdb(engine, f"CREATE OR REPLACE TEMP TABLE {CONFLICTS} AS SELECT {keys} FROM {CHECKED} AS c "
                       f"WHERE {entity.key_sql('c')[0]} <> '' GROUP BY ALL HAVING min(_fp) <> max(_fp)")
    same_key = " AND ".join(f"k.k{i} = {expression}" for i, expression in enumerate(entity.key_sql("c")))
    conflict = Rule(entity.conflict_reason, "_conflict")
    late = reasons_sql([*entity.checks.after_drops, conflict])
    run_duckdb(engine, f"""
        CREATE OR REPLACE TEMP VIEW {FINAL} AS
        SELECT r.* EXCLUDE (reason, _row_reason, _late_reason, _conflict),
               CASE WHEN r._row_reason IS NOT NULL OR r._late_reason IS NOT NULL
                    THEN concat_ws('; ', r.reason, r._why_phone, r._late_reason) END AS reason
        FROM (SELECT j.*, {late} AS _late_reason FROM (
            SELECT c.* EXCLUDE (_fp), p.e164 AS _phone_e164, p.reason AS _why_phone, k.k0 IS NOT NULL AS _conflict
            FROM ({numbered_sql(CHECKED, first_line)}) AS c
            LEFT JOIN {PARSES} AS p ON p.phone_raw = c._clean_phone AND p.country_raw = {country}
            LEFT JOIN {CONFLICTS} AS k ON {same_key}) AS j) AS r""")
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


def _fields_sql(entity: CrmEntity, fields: list[str]) -> str:
    """The fields dropped from the accepted rows: (id, column_name, value as landed, reason, line_number)."""
    dropped = ", ".join(f"{{'column_name': '{c}', 'value': {c}, 'reason': _why_{c}}}" for c in fields)
    return f"""
        SELECT {entity.id_column}, field.column_name, field.value, field.reason, line_number FROM (
            SELECT {entity.id_column}, _line_number AS line_number, unnest([{dropped}]) AS field
            FROM {FINAL} WHERE reason IS NULL AND ({" OR ".join(f"_why_{c} IS NOT NULL" for c in fields)})) AS fields
        WHERE field.reason IS NOT NULL"""


def _move_checked(warehouse: WarehouseResource, conn: Connection, engine: duckdb.DuckDBPyConnection,
                  entity: CrmEntity, fields: list[str], stamp: dict[str, object]) -> FileLoad:
    """Accepted rows into raw, their dropped fields into the field quarantine, rejected rows and malformed lines
    into quarantine; returns the counts (the malformed lines among the quarantined rows)."""
    raw_columns, raw_select = entity.raw_select()
    quarantine_columns, quarantine_select = entity.quarantine_select()
    kept = {"_source": stamp["source"], "_file_sha256": stamp["sha"], "_loaded_at": stamp["at"]}
    rejected = {"source_file": stamp["source"], "file_sha256": stamp["sha"], "quarantined_at": stamp["at"]}
    loaded = _move(warehouse, conn, engine, entity.raw_table.name, raw_columns,
                   f"SELECT {raw_select} FROM {FINAL} WHERE reason IS NULL", kept)
    dropped = _move(warehouse, conn, engine, entity.fields_table.name,
                    f"{entity.id_column}, column_name, value, reason, line_number", _fields_sql(entity, fields),
                    rejected)
    quarantined = _move(warehouse, conn, engine, entity.quarantine_table.name, quarantine_columns,
                        f"SELECT {quarantine_select} FROM {FINAL} WHERE reason IS NOT NULL", rejected)
    malformed = _move(warehouse, conn, engine, entity.quarantine_table.name, "line_number, reason",
                      f"SELECT line_number, reason FROM {SKIPPED} WHERE reason IS NOT NULL", rejected)
    return FileLoad(loaded + quarantined + malformed, loaded, quarantined + malformed, malformed, dropped)


def load_file(warehouse: WarehouseResource, entity: CrmEntity, mapping: Mapping, path: Path, sha: str,
              now: datetime) -> FileLoad:
    """Check a file and load it, with its ledger row and its new phone parses, in one warehouse transaction."""
    stamp = {"source": path.name, "sha": sha, "at": now.astimezone(UTC).replace(tzinfo=None)}
    rules = entity.checks.rules(now)
    with warehouse.begin() as conn:
        local = warehouse.dialect != "duckdb"
        engine = duckdb.connect() if local else conn.connection.driver_connection
        try:
            source = _check_file(engine, entity, mapping, path, rules)
            phones = _read_phones(warehouse, conn, engine, stamp["at"])
            duplicates = _finish_checks(engine, entity, source.first_line)
            result = _move_checked(warehouse, conn, engine, entity, [*field_columns(rules), "phone"], stamp)
            run_duckdb(engine, f"DROP VIEW {FINAL}")
            for table in (CONFLICTS, PARSES, PAIRS, CHECKED, SKIPPED, *source.temporary, *([CACHED] if local else [])):
                run_duckdb(engine, f"DROP TABLE {table}")
        finally:
            if local:
                engine.close()
        result.exact_duplicates, result.phones_parsed, result.extra_columns = duplicates, phones, source.extras
        warehouse.run(conn, LEDGER_INSERT, {
            "entity": entity.name, "name": path.name, "sha": sha, "read": result.read, "loaded": result.loaded,
            "quarantined": result.quarantined, "fields": result.fields_quarantined, "at": stamp["at"]})
    return result
