"""CRM file drops (`CDP_LANDING_DIR/crm/`) loaded into `raw`, with rejected rows in `quarantine`.

Each file is loaded once: a ledger keyed on the file's SHA-256 skips files already loaded, and a file
whose content changed is loaded again as a new version (staging keeps the latest row per key). A file
loads in one transaction, so a crash never leaves half a file behind.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
from sqlalchemy.engine import Connection

from cdp_assets.ingest.files import SUFFIXES, FileFormatError, file_sha256, open_source, scrub_error
from cdp_assets.ingest.validation import (
    Rule,
    checked_sql,
    contact_rules,
    line_number_sql,
    order_rules,
    prepare,
)
from cdp_assets.resources.state import StateTable
from cdp_assets.resources.warehouse import WarehouseResource
from cdp_assets.sample_data import CONTACT_COLUMNS, ORDER_COLUMNS

LEDGER = StateTable(
    "raw.crm_file_ledger",
    "CREATE TABLE raw.crm_file_ledger (entity VARCHAR, file_name VARCHAR, file_sha256 VARCHAR, "
    "rows_read BIGINT, rows_loaded BIGINT, rows_quarantined BIGINT, loaded_at TIMESTAMP, "
    "PRIMARY KEY (entity, file_sha256))",
)
CHECKED = "_cdp_checked"
NUMBERED = "_cdp_numbered"


class LandingZone(dg.ConfigurableResource):
    """Where CRM and analytics files land (`CDP_LANDING_DIR`); CRM extracts sit in `crm/` below it."""

    path: str

    def crm_files(self, prefix: str) -> list[Path]:
        folder = Path(self.path) / "crm"
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir()
                      if p.is_file() and p.name.startswith(prefix) and p.suffix.lower() in SUFFIXES)


@dataclass(frozen=True)
class CrmEntity:
    name: str
    columns: list[str]
    optional: tuple[str, ...]
    typed: dict[str, str]  # typed column validation adds -> the text column it is parsed from
    rules: Callable[[datetime], list[Rule]]
    description: str

    @property
    def text_columns(self) -> list[str]:
        return [*self.columns, *self.optional]

    @property
    def raw_table(self) -> StateTable:
        cols = ", ".join(f"{c} VARCHAR" for c in self.text_columns)
        typed = ", ".join(f"{c} TIMESTAMP" for c in self.typed)
        return StateTable(
            f"raw.crm_{self.name}",
            f"CREATE TABLE raw.crm_{self.name} ({cols}, {typed}, _line_number BIGINT, _source VARCHAR, "
            "_file_sha256 VARCHAR, _loaded_at TIMESTAMP)",
        )

    @property
    def quarantine_table(self) -> StateTable:
        cols = ", ".join(f"{c} VARCHAR" for c in self.text_columns)
        return StateTable(
            f"quarantine.crm_{self.name}",
            f"CREATE TABLE quarantine.crm_{self.name} ({cols}, source_file VARCHAR, line_number BIGINT, "
            "reason VARCHAR, file_sha256 VARCHAR, quarantined_at TIMESTAMP)",
        )

    def raw_select(self) -> tuple[str, str]:
        """(target columns, select list) moving accepted rows from the checked table into raw."""
        columns = [*self.text_columns, *self.typed, "_line_number"]
        return ", ".join([*columns, "_source", "_file_sha256", "_loaded_at"]), ", ".join(columns)

    def quarantine_select(self) -> tuple[str, str]:
        columns = self.text_columns
        return (", ".join([*columns, "line_number", "reason", "source_file", "file_sha256", "quarantined_at"]),
                ", ".join([*columns, "_line_number AS line_number", "reason"]))


CONTACTS = CrmEntity(
    name="contacts",
    columns=[c for c in CONTACT_COLUMNS if c != "deleted"],
    optional=("deleted",),
    typed={"_updated_at": "updated_at"},
    rules=contact_rules,
    description="CRM contacts as landed from contacts*.csv|jsonl|parquet drops, one row per file line "
                "that passed validation.",
)
ORDERS = CrmEntity(
    name="orders",
    columns=ORDER_COLUMNS,
    optional=(),
    typed={"_order_ts": "order_ts"},
    rules=order_rules,
    description="CRM orders as landed from orders*.csv|jsonl|parquet drops, one row per file line "
                "that passed validation.",
)


def _run(engine: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    """Execute on a DuckDB connection and drain the result (DuckDB 2 results stream and hold the connection)."""
    return engine.execute(sql, params or []).fetchall()


def _check_file(engine: duckdb.DuckDBPyConnection, entity: CrmEntity, path: Path, now: datetime) -> None:
    """Read and check the file into the temporary table `_cdp_checked` of `engine` (a DuckDB connection).

    Reading and checking run in parallel, and the table keeps file order, so each row's rowid gives its line.
    """
    prepare(engine)
    source = open_source(engine, path, entity.columns, entity.optional)
    query = checked_sql(source.sql, source.columns, entity.typed, entity.rules(now))
    try:
        _run(engine, f"CREATE OR REPLACE TEMP TABLE {CHECKED} AS {query}")
    except duckdb.Error as error:
        raise scrub_error(path, error) from None
    _run(engine, f"CREATE OR REPLACE TEMP VIEW {NUMBERED} AS SELECT *, "
                 f"{line_number_sql(CHECKED, source.first_line)} AS _line_number FROM {CHECKED}")


def _move_checked(
    warehouse: WarehouseResource, conn: Connection, engine: duckdb.DuckDBPyConnection, entity: CrmEntity,
    stamp: dict[str, object],
) -> tuple[int, int]:
    """Accepted rows into raw, rejected rows into quarantine; returns how many went to each."""
    raw_columns, raw_select = entity.raw_select()
    quarantine_columns, quarantine_select = entity.quarantine_select()
    moves = [(entity.raw_table.name, raw_columns, raw_select, "reason IS NULL",
              {"_source": stamp["source"], "_file_sha256": stamp["sha"], "_loaded_at": stamp["at"]}),
             (entity.quarantine_table.name, quarantine_columns, quarantine_select, "reason IS NOT NULL",
              {"source_file": stamp["source"], "file_sha256": stamp["sha"], "quarantined_at": stamp["at"]})]
    moved = []
    for table, target, select, where, constants in moves:
        if warehouse.dialect == "duckdb":
            [(count,)] = _run(engine, f"INSERT INTO {table} ({target}) SELECT {select}, ?, ?, ? FROM {NUMBERED} "
                                      f"WHERE {where}", list(constants.values()))
        else:
            [(count,)] = _run(engine, f"SELECT count(*) FROM {NUMBERED} WHERE {where}")
            rows = engine.sql(f"SELECT {select} FROM {NUMBERED} WHERE {where}").to_arrow_reader()
            warehouse.append_arrow(conn, table, rows, constants)
        moved.append(int(count))
    return moved[0], moved[1]


def _load_file(
    warehouse: WarehouseResource, entity: CrmEntity, path: Path, sha: str, now: datetime
) -> dict[str, int]:
    """Check a file and load it, with its ledger row, in one warehouse transaction."""
    stamp = {"source": path.name, "sha": sha, "at": now.astimezone(UTC).replace(tzinfo=None)}
    with warehouse.begin() as conn:
        # On DuckDB the warehouse connection checks the file itself; elsewhere a local DuckDB does.
        local = warehouse.dialect != "duckdb"
        engine = duckdb.connect() if local else conn.connection.driver_connection
        try:
            _check_file(engine, entity, path, now)
            loaded, quarantined = _move_checked(warehouse, conn, engine, entity, stamp)
            _run(engine, f"DROP VIEW {NUMBERED}")
            _run(engine, f"DROP TABLE {CHECKED}")
        finally:
            if local:
                engine.close()
        counts = {"read": loaded + quarantined, "loaded": loaded, "quarantined": quarantined}
        warehouse.run(
            conn,
            "INSERT INTO raw.crm_file_ledger VALUES (:entity, :name, :sha, :read, :loaded, :quarantined, :at)",
            {"entity": entity.name, "name": path.name, "sha": sha, "read": counts["read"],
             "loaded": counts["loaded"], "quarantined": counts["quarantined"], "at": stamp["at"]},
        )
    return counts


def crm_file_asset(entity: CrmEntity, dialect: str) -> dg.AssetsDefinition:
    readable = dg.AssetCheckSpec(f"crm_{entity.name}_files_are_readable", asset=["raw", f"crm_{entity.name}"],
                                 description="Every landed file could be read with the canonical columns.")

    @dg.asset(
        key=["raw", f"crm_{entity.name}"],
        group_name="raw",
        kinds={"python", dialect},
        owners=["team:data-eng"],
        description=entity.description,
        check_specs=[readable],
        pool="warehouse",
    )
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
               landing: LandingZone) -> dg.MaterializeResult:
        now = datetime.now(UTC)
        with warehouse.begin() as conn:
            for table in (LEDGER, entity.raw_table, entity.quarantine_table):
                table.ensure(warehouse, conn)
            done = {r[0] for r in warehouse.run(
                conn, "SELECT file_sha256 FROM raw.crm_file_ledger WHERE entity = :e", {"e": entity.name})}
        totals = {"read": 0, "loaded": 0, "quarantined": 0}
        skipped, unreadable = [], []
        files = landing.crm_files(entity.name)
        if not files:
            context.log.warning(f"no {entity.name}*{'|'.join(SUFFIXES)} files in {Path(landing.path) / 'crm'}")
        for path in files:
            sha = file_sha256(path)
            if sha in done:
                skipped.append(path.name)
                continue
            try:
                counts = _load_file(warehouse, entity, path, sha, now)
            except FileFormatError as error:
                context.log.error(f"not loaded: {error}")
                unreadable.append(str(error))
                continue
            context.log.info(f"{path.name}: {counts['loaded']} rows loaded, {counts['quarantined']} quarantined")
            done.add(sha)
            for k in totals:
                totals[k] += counts[k]
        with warehouse.begin() as conn:
            rows = warehouse.row_count(conn, entity.raw_table.name)
            schema = warehouse.column_schema(conn, entity.raw_table.name)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "dagster/table_name": entity.raw_table.name,
                "dagster/column_schema": schema,
                "rows_read": totals["read"],
                "rows_loaded": totals["loaded"],
                "rows_quarantined": totals["quarantined"],
                "files_skipped_already_loaded": len(skipped),
                "files_unreadable": len(unreadable),
            },
            check_results=[dg.AssetCheckResult(
                check_name=readable.name,
                passed=not unreadable,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"unreadable_files": dg.MetadataValue.json(unreadable)},
            )],
        )

    return _asset
