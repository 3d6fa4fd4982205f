"""Great Expectations 1.x suites run as Dagster asset checks, on the pandas path (works on every warehouse).

Great Expectations is imported lazily: it costs seconds, and the code location should load fast.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg
import pandas as pd


def _errored(result: Any) -> bool:
    info = result.exception_info or {}
    if "raised_exception" in info:
        return bool(info["raised_exception"])
    return any(isinstance(v, dict) and v.get("raised_exception") for v in info.values())


def validate_frame(df: pd.DataFrame, expectations: list, suite_name: str) -> dg.AssetCheckResult:
    """Validate a DataFrame against expectations; the result carries counts, never row values."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (context.data_sources.add_pandas("cdp").add_dataframe_asset(suite_name)
             .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": df}))
    outcome = batch.validate(gx.ExpectationSuite(name=suite_name, expectations=expectations))
    failed = [r for r in outcome.results if not r.success]
    return dg.AssetCheckResult(
        passed=bool(outcome.success),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "rows_validated": len(df),
            "expectations_evaluated": int(outcome.statistics["evaluated_expectations"]),
            "success_percent": float(outcome.statistics["success_percent"] or 0.0),
            "failed_expectations": dg.MetadataValue.json([
                {"expectation": r.expectation_config.type,
                 "column": r.expectation_config.kwargs.get("column"),
                 "unexpected_count": r.result.get("unexpected_count"),
                 "errored": _errored(r)}
                for r in failed
            ]),
        },
    )
