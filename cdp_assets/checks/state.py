"""The latest verdict of quality gates across runs, read from the Dagster instance.

A blocking check skips what depends on it within its own run only. Egress, and the SQL models that read
a source pulled in a run of its own (GA4), also look up the latest completed result of the gates upstream
of them, so no run can build or send from data a gate stopped (ARCHITECTURE principle 11).
"""

from collections.abc import Iterable

import dagster as dg

COMPLETED = ("SUCCEEDED", "FAILED")
# Executions are read newest first; a gate skipped this many times in a row counts as never evaluated.
HISTORY = 100


def closed_gates(instance: dg.DagsterInstance, checks: Iterable[dg.AssetCheckKey],
                 never_evaluated_closes: bool = True) -> list[str]:
    """The checks whose latest completed result is a failure (and, if asked, those never completed), each
    with the reason, such as `raw/ga4_transactions:no_data_loss_from_other_row (failed in run 1a2b...)`."""
    closed = []
    for key in checks:
        history = instance.event_log_storage.get_asset_check_execution_history(key, limit=HISTORY)
        latest = next((record for record in history if record.status.value in COMPLETED), None)
        if latest is None:
            if never_evaluated_closes:
                closed.append(f"{key.to_user_string()} (never evaluated)")
        elif latest.status.value == "FAILED":
            closed.append(f"{key.to_user_string()} (failed in run {latest.run_id})")
    return closed
