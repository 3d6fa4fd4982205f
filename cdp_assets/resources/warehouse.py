"""The warehouse: one SQLAlchemy URL picks DuckDB (embedded default) or PostgreSQL.

SQL in this project is written once, in the DuckDB dialect, and transpiled with sqlglot for other
warehouses. Bulk data moves through each warehouse's native path (Arrow scans on DuckDB, COPY on
PostgreSQL), never through row-by-row inserts.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy as sa
import sqlglot
from pydantic import PrivateAttr
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool
from sqlglot import exp

from cdp_assets import settings

# The run tag naming the warehouse a run writes: one Dagster instance serves one warehouse.
WAREHOUSE_TAG = "cdp/warehouse"
STAGE_SCHEMAS = ("raw", "quarantine", "staging", "core", "marts", "audiences", "activation", "cdp_meta")


def normalize_url(url: str) -> str:
    """Accept the plain `postgresql://` form users expect and pick the psycopg 3 driver for it."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def dialect_of(url: str) -> str:
    backend = sa.engine.make_url(normalize_url(url)).get_backend_name()
    if backend == "postgresql":
        return "postgres"
    if backend == "duckdb":
        return "duckdb"
    raise settings.ConfigError(f"CDP_WAREHOUSE_URL uses {backend!r}; supported warehouses are duckdb and postgresql")


def warehouse_identity(url: str) -> str:
    """The warehouse a URL names, never its password: `duckdb:<absolute file path>` or `postgresql://user@host/db`."""
    parsed = sa.engine.make_url(normalize_url(url))
    if parsed.get_backend_name() == "duckdb":
        return f"duckdb:{Path(parsed.database or ':memory:').resolve()}"
    return parsed.set(drivername=parsed.get_backend_name(), password=None).render_as_string(hide_password=False)


def other_warehouse(instance: dg.DagsterInstance, identity: str) -> str | None:
    """Why this instance must not run against `identity`, when it already holds runs of another warehouse.

    Its history, plots and the gate results egress consults would otherwise mix two warehouses."""
    others = sorted({v for _, values in instance.get_run_tags(tag_keys=[WAREHOUSE_TAG]) for v in values} - {identity})
    if not others:
        return None
    return (f"this Dagster instance already holds runs of another warehouse ({others[0]}), and one instance serves "
            f"one warehouse so that run history, plots and quality-gate results never mix; to use {identity}, "
            "give it a Dagster home of its own (DAGSTER_HOME=<a folder with a dagster.yaml>), or point "
            "CDP_WAREHOUSE_URL back at that warehouse")


def pool_for(dialect: str, api_pool: str) -> str:
    """The concurrency pool of a step that calls an API and writes the warehouse. DuckDB has one writer per file,
    so there every such step shares the `warehouse` pool with the SQL steps, whichever run it belongs to (a CLI
    run and a scheduled one included); a server warehouse takes many writers, and the API's own pool applies."""
    return "warehouse" if dialect == "duckdb" else api_pool


# sqlglot writes bind parameters in the driver's own style (%(name)s for psycopg); SQLAlchemy's text()
# binds :name, so the parameters are turned back.
DRIVER_PARAM = re.compile(r"%\((\w+)\)s")


@lru_cache(maxsize=1024)
def transpile(sql: str, dialect: str) -> str:
    """Translate DuckDB-dialect SQL to the warehouse's dialect (identity on DuckDB)."""
    if dialect == "duckdb":
        return sql
    statements = [_text_digests(tree, dialect).sql(dialect=dialect) for tree in sqlglot.parse(sql, read="duckdb")]
    return DRIVER_PARAM.sub(r":\1", ";\n".join(statements))


def _text_digests(tree: exp.Expression, dialect: str) -> exp.Expression:
    """DuckDB's sha256(text) hashes the UTF-8 bytes; PostgreSQL's sha256 takes bytes, so encode them first."""
    if dialect == "postgres":
        for digest in tree.find_all(exp.SHA2):
            digest.set("this", exp.func("convert_to", digest.this, exp.Literal.string("UTF8")))
    return tree


class WarehouseResource(dg.ConfigurableResource):
    """The analytics warehouse that every stage reads and writes (`CDP_WAREHOUSE_URL`)."""

    url: str

    _engine: Engine | None = PrivateAttr(default=None)

    @property
    def dialect(self) -> str:
        return dialect_of(self.url)

    def engine(self) -> Engine:
        if self._engine is None:
            url = sa.engine.make_url(normalize_url(self.url))
            if self.dialect == "duckdb":
                if url.database in (None, "", ":memory:"):
                    raise ValueError("CDP_WAREHOUSE_URL must name a DuckDB file; an in-memory database "
                                     "would vanish between steps")
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            # DuckDB allows one writing process per file: NullPool closes the file as soon as a
            # connection is returned, so no idle pooled connection keeps the lock.
            poolclass = NullPool if self.dialect == "duckdb" else None
            limit = settings.duckdb_memory_limit() if self.dialect == "duckdb" else None
            connect_args = {"config": {"memory_limit": limit}} if limit else {}
            if self.dialect == "postgres":
                # Our tables are built whole (CREATE TABLE AS) and carry no indexes, so a nested loop is never
                # the right join at scale, yet PostgreSQL picks one whenever it underestimates a side: a CTE
                # or GROUP BY it guesses at 200 rows joined to 1M profiles ran for hours. Hash and merge
                # joins stay linear whatever the estimate.
                connect_args = {"options": "-c enable_nestloop=off"}
            self._engine = sa.create_engine(url, poolclass=poolclass, connect_args=connect_args)
        return self._engine

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Refuse a run on an instance that serves another warehouse, and mark the run with this one (runs a
        job launches carry the tag already; a materialization launched from the asset graph does not)."""
        instance, run = context.instance, context.run
        if instance is None or run is None:
            return
        identity = warehouse_identity(self.url)
        refusal = other_warehouse(instance, identity)
        if refusal:
            raise dg.Failure(f"cdp_assets refuses to run: {refusal}")
        if run.tags.get(WAREHOUSE_TAG) != identity:
            instance.add_run_tags(run.run_id, {WAREHOUSE_TAG: identity})

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection inside one transaction: everything in the block commits or nothing does."""
        with self.engine().begin() as conn:
            yield conn

    @contextmanager
    def session(self) -> Iterator[Connection]:
        """One connection for many short transactions (`with conn.begin():` each), as a long loader or sender
        commits page by page. On DuckDB it checkpoints every 256 MB of changes rather than every 16 MB: the
        default checkpointed every few pages of request bodies, each time slower as the tables grew, while
        waiting for the connection to close kept every change since in memory."""
        with self.engine().connect() as conn:
            if self.dialect == "duckdb":
                conn.exec_driver_sql("SET checkpoint_threshold = '256MB'")
                conn.commit()
            yield conn

    def sql(self, duckdb_sql: str) -> str:
        return transpile(duckdb_sql, self.dialect)

    def run(self, conn: Connection, duckdb_sql: str, params: dict | None = None) -> sa.CursorResult:
        """Execute DuckDB-dialect SQL (one statement), transpiled for this warehouse."""
        return conn.execute(sa.text(self.sql(duckdb_sql)), params or {})

    def scalar(self, conn: Connection, duckdb_sql: str, params: dict | None = None):
        # Fetch to the end: DuckDB 2 refuses other work on a connection with an unfinished result.
        rows = self.run(conn, duckdb_sql, params).fetchall()
        return rows[0][0] if rows else None

    def ensure_schemas(self, conn: Connection, schemas: Sequence[str] = STAGE_SCHEMAS) -> None:
        for schema in schemas:
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")

    def table_exists(self, conn: Connection, table: str) -> bool:
        schema, name = table.split(".")
        return bool(self.scalar(
            conn,
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = :s AND table_name = :n",
            {"s": schema, "n": name},
        ))

    def columns(self, conn: Connection, table: str) -> list[tuple[str, str]]:
        """(name, type) of a table's columns in order, read from information_schema (no reflection)."""
        schema, name = table.split(".")
        rows = self.run(
            conn,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = :s AND table_name = :n ORDER BY ordinal_position",
            {"s": schema, "n": name},
        ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def column_schema(self, conn: Connection, table: str) -> dg.TableSchema:
        """The table's columns as Dagster `dagster/column_schema` metadata."""
        return dg.TableSchema(columns=[dg.TableColumn(name, kind.lower()) for name, kind in self.columns(conn, table)])

    def row_count(self, conn: Connection, table: str) -> int:
        return int(self.scalar(conn, f"SELECT count(*) FROM {table}"))

    def table_metadata(self, conn: Connection, table: str) -> dict:
        """The standard metadata of a table an asset wrote: row count, name and column schema."""
        return {"dagster/row_count": self.row_count(conn, table), "dagster/table_name": table,
                "dagster/column_schema": self.column_schema(conn, table)}

    def replace_table(self, conn: Connection, table: str, select_sql: str) -> None:
        """Rebuild a whole table from a DuckDB-dialect SELECT, atomically within `conn`'s transaction."""
        query = self.sql(select_sql)
        if self.dialect == "duckdb":
            conn.exec_driver_sql(f"CREATE OR REPLACE TABLE {table} AS {query}")
        else:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
            conn.exec_driver_sql(f"CREATE TABLE {table} AS {query}")
        self.analyze(conn, table)

    def analyze(self, conn: Connection, table: str) -> None:
        """Refresh the planner's statistics of a table just rebuilt or bulk-loaded. PostgreSQL has none for a
        new table until autovacuum comes by, and guessed a 1M-row consent table at 5,873 rows: its plan for the
        day's conversions was a nested loop that ran for hours. DuckDB keeps its statistics as it writes."""
        if self.dialect != "duckdb":
            conn.exec_driver_sql(f"ANALYZE {table}")

    def replace_partition(
        self, conn: Connection, table: str, column: str, start: datetime, end: datetime, select_sql: str
    ) -> None:
        """Replace the rows of `table` whose `column` falls in [start, end) with those of the SELECT."""
        query = self.sql(select_sql)
        window = f"{column} >= :start AND {column} < :end"
        bounds = {"start": start.replace(tzinfo=None), "end": end.replace(tzinfo=None)}
        conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM ({query}) AS m WHERE 1 = 0")
        existing = [c for c, _ in self.columns(conn, table)]
        produced = list(conn.exec_driver_sql(f"SELECT * FROM ({query}) AS m WHERE 1 = 0").keys())
        if existing != produced:
            raise ValueError(
                f"{table} has columns {existing} but its model now produces {produced}; "
                f"drop {table} and backfill its partitions to adopt the new columns"
            )
        conn.execute(sa.text(f"DELETE FROM {table} WHERE {window}"), bounds)
        conn.execute(sa.text(f"INSERT INTO {table} SELECT * FROM ({query}) AS m WHERE {window}"), bounds)
        self.analyze(conn, table)

    def append_arrow(
        self, conn: Connection, table: str, data: pa.RecordBatchReader | pa.Table,
        constants: dict[str, object] | None = None,
    ) -> None:
        """Bulk-append Arrow data whose column names match `table`'s (DuckDB Arrow scan / Postgres COPY).

        `constants` fill further columns with one value for every row (the source file, the load time).
        """
        constants = constants or {}
        columns = list(data.schema.names)
        names = ", ".join([*columns, *constants])
        if self.dialect == "duckdb":
            values = ", ".join([*columns, *(f":{k}" for k in constants)])
            duck = conn.connection.driver_connection
            duck.register("_cdp_arrow_in", data)
            try:
                conn.execute(sa.text(f"INSERT INTO {table} ({names}) SELECT {values} FROM _cdp_arrow_in"),
                             constants)
            finally:
                duck.unregister("_cdp_arrow_in")
            return
        batches = data.to_batches() if isinstance(data, pa.Table) else data
        with conn.connection.driver_connection.cursor() as cur, cur.copy(
            f"COPY {table} ({names}) FROM STDIN (FORMAT csv)"
        ) as copy:
            for batch in batches:
                for name, value in constants.items():
                    batch = batch.append_column(name, pa.array([value] * batch.num_rows))
                buffer = io.BytesIO()
                pa_csv.write_csv(batch, buffer, pa_csv.WriteOptions(include_header=False))
                copy.write(buffer.getvalue())
