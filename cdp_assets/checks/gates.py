"""Quality gates as Dagster asset checks: rule suites, freshness and volume, one check per gate.

A blocking gate that fails skips every downstream step in its run, and egress also refuses to run while
any blocking gate upstream of it has a failed latest result (ARCHITECTURE principle 11). Freshness and
volume gates warn: a late or thin source is worth a look, not a reason to hold yesterday's data back.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from statistics import mean, pstdev

import dagster as dg

from cdp_assets import settings
from cdp_assets.checks.gx import Outcome, validate_counts, validate_table
from cdp_assets.checks.rules import RefersTo, Rule
from cdp_assets.resources.warehouse import WarehouseResource
from cdp_assets.sources import latest_not_configured

VOLUME_HISTORY_DAYS = 14
VOLUME_MIN_HISTORY = 7
VOLUME_SIGMAS = 3.0
# Days whose row counts hardly vary (a fixed GA4 grid, say) still get this much room either side.
VOLUME_MIN_SPREAD = 0.25


@dataclass(frozen=True)
class Gate:
    """A suite of rules over one table (or a SELECT over it, to cast or derive columns)."""

    table: str
    name: str
    description: str
    rules: tuple[Rule, ...] = ()
    relation: str | None = None
    blocking: bool = True
    # A table the asset only creates when its source is configured (HubSpot, say) may be absent.
    optional: bool = False
    # The asset the gate is attached to, when it is not the table itself (`schema.name`).
    asset: str | None = None

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey((self.asset or self.table).split("."))

    @property
    def check_key(self) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(self.asset_key, self.name)

    @property
    def parents(self) -> list[dg.AssetKey]:
        """Tables the rules refer to: the check waits for them."""
        return sorted({dg.AssetKey(r.parent.split(".")[:2]) for r in self.rules if isinstance(r, RefersTo)}
                      - {self.asset_key}, key=lambda k: k.path)

    @property
    def severity(self) -> dg.AssetCheckSeverity:
        return dg.AssetCheckSeverity.ERROR if self.blocking else dg.AssetCheckSeverity.WARN

    def outcome(self, warehouse: WarehouseResource, day: date) -> Outcome:
        return validate_table(warehouse, self.relation or self.table, self.rules, self.name)


@dataclass(frozen=True)
class Freshness(Gate):
    """The newest value of `column` is at most `max_age_hours` old: the source arrived when expected.
    A DATE column counts from the end of its day."""

    column: str = ""
    max_age_hours: float = 36.0
    blocking: bool = False

    def outcome(self, warehouse: WarehouseResource, day: date) -> Outcome:
        with warehouse.begin() as conn:
            newest = warehouse.scalar(conn, f"SELECT max({self.column}) FROM {self.table}")
        if newest is None:
            return Outcome(rows=0, path="sql aggregates", evaluated=1, failures=[{
                "expectation": f"newest {self.column} at most {self.max_age_hours:g} hours old",
                "column": self.column, "unexpected_count": 1, "samples": ["no rows have arrived"]}])
        if not isinstance(newest, datetime):
            newest = datetime.combine(newest + timedelta(days=1), datetime.min.time())
        age = (datetime.now(UTC).replace(tzinfo=None) - newest.replace(tzinfo=None)).total_seconds() / 3600
        late = validate_counts({"age_hours": age}, {"age_hours": self.max_age_hours}, self.name)
        failures = [{"expectation": f"newest {self.column} at most {self.max_age_hours:g} hours old",
                     "column": self.column, "unexpected_count": 1, "samples": [newest.isoformat()]}] if late else []
        return Outcome(rows=1, path="sql aggregates", evaluated=1, failures=failures,
                       extra={"newest": newest.isoformat(), "age_hours": round(age, 1),
                              "max_age_hours": self.max_age_hours})


def judge_volume(day: date, today: int, history: list[int], name: str, emptied_fails: bool = False) -> Outcome:
    """`today`'s rows against `history` (the trailing days that had rows, oldest first): within 3 standard
    deviations (at least 25 %) of their mean, judged from 7 days of history. With `emptied_fails`, no rows
    after days that had some fails at once: a source that suddenly has none is caught however young it is."""
    extra = {"day": day.isoformat(), "rows_on_day": today, "history_days": len(history)}
    if emptied_fails and today == 0 and any(history):
        return Outcome(rows=0, path="sql aggregates", evaluated=1, extra=extra, failures=[{
            "expectation": f"rows on {day} after earlier days that had rows", "column": None,
            "unexpected_count": 1, "samples": ["0"]}])
    if len(history) < VOLUME_MIN_HISTORY:
        return Outcome(rows=today, path="sql aggregates", evaluated=0, extra=extra)
    centre = mean(history)
    spread = max(VOLUME_SIGMAS * pstdev(history), VOLUME_MIN_SPREAD * centre)
    low, high = max(centre - spread, 0.0), centre + spread
    unusual = validate_counts({"rows_on_day": today}, {"rows_on_day": (low, high)}, name)
    failures = [{"expectation": f"rows on {day} between {low:.0f} and {high:.0f}", "column": None,
                 "unexpected_count": 1, "samples": [str(today)]}] if unusual else []
    return Outcome(rows=today, path="sql aggregates", evaluated=1, failures=failures,
                   extra={**extra, "trailing_mean": round(centre, 1), "expected_low": round(low),
                          "expected_high": round(high)})


@dataclass(frozen=True)
class Volume(Gate):
    """The run's day has a usual number of rows: within 3 standard deviations (at least 25 %) of the mean
    of the trailing 14 days that have rows. With fewer than 7 such days there is nothing to compare with."""

    day_expression: str = ""
    blocking: bool = False

    def outcome(self, warehouse: WarehouseResource, day: date) -> Outcome:
        first = day - timedelta(days=VOLUME_HISTORY_DAYS)
        with warehouse.begin() as conn:
            counts = dict(warehouse.run(conn, f"""
                SELECT CAST({self.day_expression} AS DATE) AS d, count(*) FROM {self.table}
                WHERE CAST({self.day_expression} AS DATE) BETWEEN :first AND :day GROUP BY 1""",
                                        {"first": first, "day": day}).fetchall())
        today = counts.pop(day, 0)
        return judge_volume(day, today, [counts[d] for d in sorted(counts)], self.name)


@dataclass(frozen=True)
class LoadVolume(Gate):
    """The rows in the files of the newest day an entity's files were loaded, against the 14 load days before
    it (from the file ledger). Files with no rows after files that had rows fail at once; a CRM that never had
    rows of this entity (contacts without orders) passes."""

    entity: str = ""
    blocking: bool = False

    def outcome(self, warehouse: WarehouseResource, day: date) -> Outcome:
        with warehouse.begin() as conn:
            loads = warehouse.run(conn, f"""
                SELECT CAST(loaded_at AS DATE) AS d, sum(rows_read) FROM {self.table} WHERE entity = :entity
                GROUP BY 1 ORDER BY 1 DESC LIMIT {VOLUME_HISTORY_DAYS + 1}""", {"entity": self.entity}).fetchall()
        if not loads:
            return Outcome(rows=0, path="sql aggregates", evaluated=0, extra={"history_days": 0})
        (newest, today), *before = loads
        return judge_volume(newest, int(today), [int(n) for _, n in reversed(before)], self.name,
                            emptied_fails=True)


def run_day(context: dg.AssetCheckExecutionContext | dg.AssetExecutionContext) -> date:
    """The day a check judges: the run's partition (or the end of its range), else yesterday."""
    tags = context.run.tags
    key = tags.get("dagster/partition") or tags.get("dagster/asset_partition_range_end")
    return date.fromisoformat(key) if key else settings.yesterday()


def gate_check(gate: Gate) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=gate.asset_key, name=gate.name, description=gate.description, blocking=gate.blocking,
                    additional_deps=gate.parents, pool="warehouse")
    def _check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        # Nothing arrives from a source nobody configured: there is nothing to judge, and the result says why.
        unconfigured = latest_not_configured(context.instance, gate.asset_key)
        if unconfigured:
            return dg.AssetCheckResult(passed=True, metadata={"skipped": f"the source is not configured: "
                                                                         f"{unconfigured}"})
        with warehouse.begin() as conn:
            exists = warehouse.table_exists(conn, gate.table)
        if not exists and gate.optional:
            return dg.AssetCheckResult(passed=True, metadata={"skipped": f"{gate.table} does not exist: its source "
                                                                         "is not configured"})
        if not exists:
            # A check launched on its own (from the UI) before its asset ever ran: say so, not a SQL error.
            return dg.AssetCheckResult(passed=False, severity=gate.severity, metadata={
                "error": f"{gate.table} does not exist yet: materialize {gate.asset_key.to_user_string()} first"})
        return gate.outcome(warehouse, run_day(context)).result(gate.severity)

    return _check
