"""Great Expectations 1.x suites run as Dagster asset checks, on the pandas path (works on every warehouse).

Two ways in, one result shape:
- a table of up to `CDP_CHECK_PANDAS_MAX_ROWS` rows (default 250,000) is read whole and each rule is its
  own GX column expectation;
- a larger table is never read: the warehouse counts each rule's unexpected rows in one aggregate query,
  and GX validates that one-row frame of counts (`expect_column_values_to_be_between`, at most 0).
Rules only the warehouse can decide (references to another table) take the aggregate path at any size.
Results name the failing expectation, its unexpected count and up to five samples, hashed when the column
holds personal data. GX is imported lazily: it costs seconds, and the code location should load fast.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import pandas as pd
from sqlalchemy.engine import Connection

from cdp_assets.checks.rules import Rule
from cdp_assets.resources.warehouse import WarehouseResource

DEFAULT_PANDAS_MAX_ROWS = 250_000
SAMPLES = 5
# Columns whose values are personal data: their samples are shown as a short SHA-256, never in clear.
PERSONAL_COLUMNS = frozenset({
    "email", "phone", "phone_e164", "first_name", "last_name", "city", "state", "postal_code", "client_ip",
    "user_agent", "fbc", "fbp", "gclid", "ttclid", "ga_client_id", "id_value", "event_source_url",
})


def pandas_max_rows() -> int:
    return int(os.environ.get("CDP_CHECK_PANDAS_MAX_ROWS") or DEFAULT_PANDAS_MAX_ROWS)


def redact(column: str | None, value: Any) -> str:
    """A sample value fit for metadata: personal data becomes `sha256:<12 hex>`."""
    text = str(value)
    if column in PERSONAL_COLUMNS:
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:12]
    return text[:64]


@dataclass
class Outcome:
    """What a validation found: rows validated, how, and per failed rule its count and samples."""

    rows: int
    path: str
    evaluated: int
    failures: list[dict[str, Any]] = field(default_factory=list)
    errored: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def result(self, severity: dg.AssetCheckSeverity) -> dg.AssetCheckResult:
        passed = not self.failures and not self.errored
        return dg.AssetCheckResult(
            passed=passed, severity=severity,
            metadata={"rows_validated": self.rows, "validation_path": self.path,
                      "expectations_evaluated": self.evaluated, "expectations_failed": len(self.failures),
                      "failed_expectations": dg.MetadataValue.json(self.failures), **self.extra},
        )


def _errored(result: Any) -> bool:
    info = result.exception_info or {}
    if "raised_exception" in info:
        return bool(info["raised_exception"])
    return any(isinstance(v, dict) and v.get("raised_exception") for v in info.values())


def run_suite(frame: pd.DataFrame, expectations: list, suite_name: str) -> list[Any]:
    """GX's results for `expectations` on `frame`, through an ephemeral context and a whole-frame batch."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (context.data_sources.add_pandas("cdp").add_dataframe_asset(suite_name)
             .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame}))
    outcome = batch.validate(gx.ExpectationSuite(name=suite_name, expectations=expectations))
    return list(outcome.results)


def samples(warehouse: WarehouseResource, conn: Connection, table: str, rule: Rule) -> list[str]:
    if not rule.has_samples:
        return []
    rows = warehouse.run(conn, f"SELECT DISTINCT t.{rule.column} FROM {table} AS t WHERE {rule.unexpected(table)} "
                               f"ORDER BY 1 LIMIT {SAMPLES}").fetchall()
    return [redact(rule.column, row[0]) for row in rows]


def _failure(rule: Rule, count: int, sample: list[str], errored: bool = False) -> dict[str, Any]:
    return {"expectation": rule.label, "column": rule.column, "unexpected_count": count, "samples": sample,
            **({"errored": True} if errored else {})}


def validate_table(warehouse: WarehouseResource, table: str, rules: Sequence[Rule], suite_name: str) -> Outcome:
    """Validate `table` against `rules`: in pandas when it is small, from warehouse aggregates when it is large."""
    with warehouse.begin() as conn:
        rows = int(warehouse.scalar(conn, f"SELECT count(*) FROM {table} AS t"))
        in_pandas = [r for r in rules if rows <= pandas_max_rows() and r.expectation(table) is not None]
        in_sql = [r for r in rules if r not in in_pandas]
        failures, evaluated, errored = [], 0, False
        if in_pandas:
            columns = sorted({r.column for r in in_pandas if r.column}) or ["1 AS _row"]
            frame = pd.read_sql(warehouse.sql(f"SELECT {', '.join(columns)} FROM {table} AS t"), conn)
            results = run_suite(frame, [r.expectation(table) for r in in_pandas], suite_name)
            by_rule = {(r.expectation_type, r.column): r for r in in_pandas}
            for result in results:
                evaluated += 1
                if result.success:
                    continue
                config = result.expectation_config
                rule = by_rule[(config.type, config.kwargs.get("column"))]
                count = result.result.get("unexpected_count")
                failures.append(_failure(rule, int(count) if count is not None else 0,
                                         samples(warehouse, conn, table, rule), _errored(result)))
                errored = errored or _errored(result)
        if in_sql:
            counts = aggregate_counts(warehouse, conn, table, in_sql)
            found = validate_counts(counts, {r.label: 0 for r in in_sql}, suite_name)
            evaluated += len(in_sql)
            for rule in in_sql:
                if rule.label in found:
                    failures.append(_failure(rule, counts[rule.label], samples(warehouse, conn, table, rule)))
    return Outcome(rows=rows, path="pandas" if not in_sql else "sql aggregates" if not in_pandas
                   else "pandas + sql aggregates", evaluated=evaluated, failures=failures, errored=errored)


def aggregate_counts(warehouse: WarehouseResource, conn: Connection, table: str, rules: Sequence[Rule]) -> dict:
    """Each rule's unexpected-row count, computed by the warehouse: row-by-row rules in one pass over `table`,
    set rules (uniqueness, references) in a query of their own."""
    counts = {r.label: int(warehouse.scalar(conn, r.count_sql(table)) or 0) for r in rules if r.count_sql(table)}
    one_pass = [r for r in rules if r.label not in counts]
    if one_pass:
        sums = [f"sum(CASE WHEN {r.unexpected(table)} THEN 1 ELSE 0 END)" for r in one_pass]
        values = warehouse.run(conn, f"SELECT {', '.join(sums)} FROM {table} AS t").one()
        counts |= {rule.label: int(value or 0) for rule, value in zip(one_pass, values, strict=True)}
    return {rule.label: counts[rule.label] for rule in rules}


def validate_counts(values: dict[str, float], bounds: dict[str, float | tuple[float | None, float | None]],
                    suite_name: str) -> set[str]:
    """GX on a one-row frame of figures the warehouse computed: the names whose figure is out of bounds.

    A bound is a maximum, or a (minimum, maximum) pair where None leaves that side open."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    from great_expectations.expectations import ExpectColumnValuesToBeBetween

    frame = pd.DataFrame({f"f{i}": [values[name]] for i, name in enumerate(values)})
    names = {f"f{i}": name for i, name in enumerate(values)}
    expectations = []
    for column, name in names.items():
        bound = bounds[name]
        low, high = bound if isinstance(bound, tuple) else (None, bound)
        expectations.append(ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high))
    return {names[r.expectation_config.kwargs["column"]] for r in run_suite(frame, expectations, suite_name)
            if not r.success}
