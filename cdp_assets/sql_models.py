"""`dbt_like_sql/`: every `.sql` file is one asset, keyed `[folder, file stem]` and grouped by folder.

A model is a single SELECT in the DuckDB dialect. Its dependencies are the `schema.table` references
sqlglot finds in it (CTE names excluded), never a hand-kept list. The file's SHA-1 is its code_version.
Settings sit in the file's leading comment block as `-- key: value` lines; the other comment lines are
the description analysts read in the UI:

    -- Orders that count as conversions, one row per order.
    -- partition_column: order_ts

Known settings: `partition_column` (a timestamp column; the model becomes daily-partitioned and each
run replaces only its day's rows) and `owners` (comma-separated). A cycle, an unknown table, or an
unknown setting is a load-time error that names the file.

`{{ timezone }}` in a model is replaced by CDP_TIMEZONE (for local dates of UTC timestamps),
`{{ golden_<field> }}` by the golden-record rule of `cdp_assets/config/golden_record.yaml` and
`{{ audience_members }}` by a SELECT of every audience's members; they are part of the code version, so
changing one (or adding an audience) marks the model's table as stale in the UI.
"""


import hashlib
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from functools import lru_cache
from pathlib import Path

import dagster as dg
import sqlglot
from sqlglot import exp
from sqlglot.lineage import lineage

from cdp_assets import settings
from cdp_assets.checks.state import closed_gates
from cdp_assets.identity.golden_record import golden_record_variables
from cdp_assets.resources.warehouse import WarehouseResource

SQL_ROOT = Path(__file__).resolve().parent.parent / "dbt_like_sql"
SETTING = re.compile(r"^--\s*(\w+):\s*(.*?)\s*$")
KNOWN_SETTINGS = {"partition_column", "owners"}
TEMPLATE_VARIABLE = re.compile(r"\{\{\s*(\w+)\s*\}\}")
SourceMetadata = Callable[[dg.AssetExecutionContext, WarehouseResource], dict]


class SqlModelError(ValueError):
    """A problem in a SQL model file, found while loading definitions."""


@dataclass(frozen=True)
class SqlModel:
    path: Path
    key: dg.AssetKey
    sql: str
    description: str
    deps: tuple[dg.AssetKey, ...]
    code_version: str
    partition_column: str | None
    owners: tuple[str, ...]

    @property
    def table(self) -> str:
        return ".".join(self.key.path)


def _header(path: Path, text: str) -> tuple[str, dict[str, str]]:
    lines, settings = [], {}
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        match = SETTING.match(line)
        if match:
            name, value = match.groups()
            if name not in KNOWN_SETTINGS:
                raise SqlModelError(f"{path}: unknown setting {name!r}; known: {', '.join(sorted(KNOWN_SETTINGS))}")
            settings[name] = value
        else:
            lines.append(line[2:].strip())
    return " ".join(x for x in lines if x), settings


def referenced_tables(path: Path, sql: str) -> set[tuple[str, str]]:
    """(schema, table) pairs a model reads, excluding its own CTEs."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as error:
        raise SqlModelError(f"{path}: SQL does not parse: {error}") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise SqlModelError(f"{path}: a model must be exactly one SELECT statement")
    tree = statements[0]
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    tables = set()
    for table in tree.find_all(exp.Table):
        if not table.db and table.name in ctes:
            continue
        if not table.db:
            raise SqlModelError(f"{path}: table {table.name!r} has no schema; write it as schema.{table.name}")
        tables.add((table.db, table.name))
    return tables


def audience_members(root: Path = SQL_ROOT) -> str:
    """`{{ audience_members }}`: one SELECT of (audience, profile_id) over every audience's table, one row per
    member, so a model covers every audience under `root/audiences/` (and depends on each) without naming them."""
    names = sorted(p.stem for p in (root / "audiences").glob("*.sql"))
    if not names:
        return "SELECT CAST(NULL AS VARCHAR) AS audience, CAST(NULL AS VARCHAR) AS profile_id WHERE FALSE"
    return "\n    UNION ALL\n    ".join(f"SELECT DISTINCT '{n}' AS audience, profile_id FROM audiences.{n}"
                                      for n in names)


def template_values(root: Path = SQL_ROOT) -> dict[str, str]:
    """The `{{ name }}` variables: `timezone` (CDP_TIMEZONE), the golden-record rules `golden_<field>`,
    `conversion_statuses` (the order statuses of destinations.yaml that count as conversions) and
    `audience_members` (every audience's members, as (audience, profile_id) rows)."""
    from cdp_assets.activation.config import conversion_statuses  # it reads SQL_ROOT from this module

    statuses = ", ".join(f"'{s}'" for s in conversion_statuses())
    return {"timezone": settings.timezone().key, "conversion_statuses": statuses,
            "audience_members": audience_members(root), **golden_record_variables()}


def render(path: Path, text: str, values: dict[str, str] | None = None) -> str:
    """Replace the model's `{{ name }}` variables with `values` (default: `template_values()`)."""
    values = template_values() if values is None else values

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            raise SqlModelError(f"{path}: unknown variable {{{{ {name} }}}}; known: {', '.join(sorted(values))}")
        return values[name]

    return TEMPLATE_VARIABLE.sub(value, text)


def parse_model(root: Path, path: Path, values: dict[str, str] | None = None) -> SqlModel:
    text = render(path, path.read_text(encoding="utf-8"), template_values(root) if values is None else values)
    description, settings = _header(path, text)
    # Ends in a newline, so a comment on the model's last line never swallows SQL wrapped around it.
    body = text.strip().rstrip(";") + "\n"
    key = dg.AssetKey([path.parent.name, path.stem])
    deps = tuple(sorted((dg.AssetKey(list(t)) for t in referenced_tables(path, body)), key=lambda k: k.path))
    if key in deps:
        raise SqlModelError(f"{path}: the model reads its own table {key.to_user_string()}")
    owners = tuple(o.strip() for o in settings.get("owners", "team:data-eng").split(",") if o.strip())
    return SqlModel(
        path=path, key=key, sql=body, description=description or f"SQL model {path.relative_to(root)}",
        deps=deps, code_version=hashlib.sha1(text.encode("utf-8")).hexdigest(),
        partition_column=settings.get("partition_column"), owners=owners,
    )


def _check_graph(models: list[SqlModel], external: set[dg.AssetKey]) -> None:
    by_key = {m.key: m for m in models}
    for model in models:
        for dep in model.deps:
            if dep not in by_key and dep not in external:
                raise SqlModelError(f"{model.path}: reads {dep.to_user_string()}, which no asset produces")
    state: dict[dg.AssetKey, str] = {}

    def visit(model: SqlModel, trail: list[SqlModel]) -> None:
        if state.get(model.key) == "done":
            return
        if state.get(model.key) == "open":
            cycle = [m.path.name for m in trail[trail.index(model):]] + [model.path.name]
            raise SqlModelError(f"{model.path}: dependency cycle {' -> '.join(cycle)}")
        state[model.key] = "open"
        for dep in model.deps:
            if dep in by_key:
                visit(by_key[dep], [*trail, model])
        state[model.key] = "done"

    for model in models:
        visit(model, [])


def load_models(root: Path, external: Iterable[dg.AssetKey]) -> list[SqlModel]:
    """Parse every model under `root`; `external` are the keys produced by Python assets."""
    # The variables are read once: they come from YAML files every model shares.
    values = template_values(root)
    models = [parse_model(root, path, values) for path in sorted(root.glob("*/*.sql"))]
    _check_graph(models, set(external))
    return models


@lru_cache(maxsize=256)
def _upstream_columns(sql: str) -> tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...]:
    # One qualification for every output column (sqlglot shares its work across them), and once per SQL
    # text per process: lineage used to cost a third of a small daily run.
    nodes = lineage(None, sqlglot.parse_one(sql, read="duckdb"), None, dialect="duckdb")
    found = []
    for column, node in nodes.items():
        leaves = {(leaf.source.db, leaf.source.name, leaf.name.split(".")[-1]) for leaf in node.walk()
                  if not leaf.downstream and isinstance(leaf.source, exp.Table) and leaf.source.db}
        if leaves:
            found.append((column, tuple(sorted(leaves))))
    return tuple(found)


def column_lineage(model: SqlModel) -> dg.TableColumnLineage:
    """Which upstream columns each output column is computed from, read from the SQL by sqlglot."""
    return dg.TableColumnLineage(deps_by_column={
        column: [dg.TableColumnDep(asset_key=dg.AssetKey([db, table]), column_name=name) for db, table, name in deps]
        for column, deps in _upstream_columns(model.sql)})


@lru_cache(maxsize=256)
def _column_comments(sql: str) -> tuple[tuple[str, str], ...]:
    tree = sqlglot.parse_one(sql, read="duckdb")
    select = tree if isinstance(tree, exp.Select) else next(tree.find_all(exp.Select))
    return tuple((e.alias_or_name, " ".join(c.strip() for c in e.comments)) for e in select.expressions if e.comments)


@lru_cache(maxsize=256)
def _output_columns(sql: str) -> tuple[str, ...]:
    tree = sqlglot.parse_one(sql, read="duckdb")
    select = tree if isinstance(tree, exp.Select) else next(tree.find_all(exp.Select))
    return tuple(e.alias_or_name for e in select.expressions)


def output_columns(model: SqlModel) -> tuple[str, ...]:
    """The columns the model's final SELECT produces, in order."""
    return _output_columns(model.sql)


def column_descriptions(model: SqlModel) -> dict[str, str]:
    """What each output column means, from the comment that ends its line in the model's final SELECT
    (`count(*) AS orders_30d,  -- conversion orders in the last 30 days`); analysts read them in the UI."""
    return dict(_column_comments(model.sql))


def described_schema(warehouse: WarehouseResource, conn, model: SqlModel) -> dg.TableSchema:
    """The table's columns and types as built, each with its description from the model's SQL."""
    descriptions = column_descriptions(model)
    return dg.TableSchema(columns=[dg.TableColumn(c.name, c.type, description=descriptions.get(c.name))
                                   for c in warehouse.column_schema(conn, model.table).columns])


def _code_reference(path: Path) -> dg.CodeReferencesMetadataValue:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.CodeReferencesMetadataValue(code_references=[dg.LocalFileCodeReference(file_path=str(path))])


def model_metadata(model: SqlModel) -> dict:
    """A model's definition metadata: its file, linked from the UI."""
    return {"sql_file": str(model.path.relative_to(SQL_ROOT.parent) if model.path.is_relative_to(SQL_ROOT.parent)
                            else model.path),
            "dagster/code_references": _code_reference(model.path)}


def sql_asset(model: SqlModel, dialect: str, partitions_def: dg.PartitionsDefinition,
              gates: Sequence[dg.AssetCheckKey] = (), source_metadata: SourceMetadata | None = None
              ) -> dg.AssetsDefinition:
    """One asset for one model file: a full rebuild, or daily partitions replaced in one transaction.

    `gates` are the blocking checks on the tables it reads: a model is not built while the latest result of
    one is a failure, even when that table was loaded in another run (the day's sources run, say).
    `source_metadata` adds what the model should say about the sources it is built on (how far GA4 reaches).
    """
    partitioned = model.partition_column is not None

    @dg.asset(
        key=model.key,
        deps=list(model.deps),
        group_name=model.key.path[0],
        description=model.description,
        code_version=model.code_version,
        kinds={"sql", dialect},
        owners=list(model.owners),
        partitions_def=partitions_def if partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        metadata=model_metadata(model),
        pool="warehouse",
    )
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        closed = closed_gates(context.instance, gates, never_evaluated_closes=False)
        if closed:
            raise dg.Failure(f"{model.table} not rebuilt: a quality gate on what it reads is failing: "
                             + "; ".join(closed), metadata={"closed_gates": dg.MetadataValue.json(closed)})
        with warehouse.begin() as conn:
            warehouse.ensure_schemas(conn, [model.key.path[0]])
            # Key on this asset's own partitioning: in a mixed run an unpartitioned asset also sees a key.
            if partitioned:
                window = context.partition_time_window
                warehouse.replace_partition(conn, model.table, model.partition_column,
                                            window.start.astimezone(UTC), window.end.astimezone(UTC), model.sql)
            else:
                warehouse.replace_table(conn, model.table, model.sql)
            rows = warehouse.row_count(conn, model.table)
            schema = described_schema(warehouse, conn, model)
        return dg.MaterializeResult(metadata={
            "dagster/row_count": rows,
            "dagster/table_name": model.table,
            "dagster/column_schema": schema,
            "dagster/column_lineage": column_lineage(model),
            **(source_metadata(context, warehouse) if source_metadata else {}),
        })

    return _asset
