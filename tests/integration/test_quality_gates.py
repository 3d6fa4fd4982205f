"""Quality gates: the same verdicts whether a table is validated in pandas or from warehouse aggregates,
samples that never show personal data, references, freshness and volume."""

import hashlib
from datetime import UTC, date, datetime, timedelta

import pytest

from cdp_assets.checks.gates import Freshness, Gate, Volume
from cdp_assets.checks.rules import Between, InSet, Matches, NotNull, RefersTo, Unique

RULES = (Unique("order_id"), NotNull("order_id"), Between("value", low=0),
         InSet("currency", values=("EUR", "USD")), Matches("email", regex=r"^[^A-Z]*$"),
         RefersTo("order_id", parent="s.orders_known.order_id"))
ROWS = [("o1", 10.0, "USD", "a@x.com"), ("o1", 5.0, "EUR", "b@x.com"), ("o2", -1.0, "XYZ", "C@x.com"),
        (None, 3.0, "USD", None), ("o3", 1.0, "USD", "d@x.com")]
EXPECTED = {
    "expect_column_values_to_be_unique(order_id)": (2, ["o1"]),
    "expect_column_values_to_not_be_null(order_id)": (1, []),
    "expect_column_values_to_be_between(value)": (1, ["-1.0"]),
    "expect_column_values_to_be_in_set(currency)": (1, ["XYZ"]),
    "expect_column_values_to_match_regex(email)": (1, ["sha256:" + hashlib.sha256(b"C@x.com").hexdigest()[:12]]),
    "expect_column_values_to_exist_in_parent(order_id -> s.orders_known.order_id)": (1, ["o3"]),
}


@pytest.fixture
def orders(warehouse):
    with warehouse.begin() as conn:
        warehouse.ensure_schemas(conn, ["s"])
        warehouse.run(conn, "CREATE TABLE s.orders (order_id VARCHAR, value DOUBLE, currency VARCHAR, email VARCHAR)")
        warehouse.run(conn, "CREATE TABLE s.orders_known (order_id VARCHAR)")
        warehouse.run(conn, "INSERT INTO s.orders_known VALUES ('o1'), ('o2')")
        for row in ROWS:
            warehouse.run(conn, "INSERT INTO s.orders VALUES (:o, :v, :c, :e)",
                          dict(zip("ovce", row, strict=True)))
    return warehouse


def failures_of(outcome) -> dict:
    return {f["expectation"]: (f["unexpected_count"], f["samples"]) for f in outcome.failures}


def test_a_small_table_is_validated_in_pandas(orders):
    outcome = Gate("s.orders", "orders_ok", "", RULES).outcome(orders, date(2026, 11, 21))
    assert outcome.path == "pandas + sql aggregates"  # the reference can only be checked in the warehouse
    assert outcome.rows == 5
    assert failures_of(outcome) == EXPECTED


def test_a_large_table_gets_the_same_verdict_from_warehouse_aggregates(orders, monkeypatch):
    monkeypatch.setenv("CDP_CHECK_PANDAS_MAX_ROWS", "4")
    outcome = Gate("s.orders", "orders_ok", "", RULES).outcome(orders, date(2026, 11, 21))
    assert outcome.path == "sql aggregates"
    assert failures_of(outcome) == EXPECTED


def test_samples_of_personal_columns_are_hashed_never_in_clear(orders):
    gate = Gate("s.orders", "orders_ok", "", RULES)
    result = gate.outcome(orders, date(2026, 11, 21)).result(gate.severity)
    assert "C@x.com" not in str(result.metadata)


def test_a_passing_table_gives_a_passing_result(orders):
    gate = Gate("s.orders_known", "known_ok", "", (NotNull("order_id"), Unique("order_id")))
    result = gate.outcome(orders, date(2026, 11, 21)).result(gate.severity)
    assert result.passed
    assert result.metadata["expectations_evaluated"].value == 2


def test_an_empty_table_passes_its_rules(orders):
    """A source that has never had rows is not a broken one: only the volume check judges a table emptying."""
    with orders.begin() as conn:
        orders.run(conn, "DELETE FROM s.orders")
    outcome = Gate("s.orders", "orders_ok", "", RULES).outcome(orders, date(2026, 11, 21))
    assert (outcome.rows, outcome.failures) == (0, [])


@pytest.fixture
def arrivals(warehouse):
    with warehouse.begin() as conn:
        warehouse.ensure_schemas(conn, ["s"])
        warehouse.run(conn, "CREATE TABLE s.arrivals (loaded_at TIMESTAMP, day DATE)")
    return warehouse


def add_rows(warehouse, day: date, count: int, loaded_at: datetime) -> None:
    with warehouse.begin() as conn:
        for _ in range(count):
            warehouse.run(conn, "INSERT INTO s.arrivals VALUES (:t, :d)", {"t": loaded_at, "d": day})


def test_a_source_loaded_within_its_window_is_fresh(arrivals):
    add_rows(arrivals, date(2026, 11, 20), 1, datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=30))
    outcome = Freshness("s.arrivals", "fresh", "", column="loaded_at", max_age_hours=36).outcome(arrivals, None)
    assert outcome.failures == []
    assert outcome.extra["age_hours"] == pytest.approx(30, abs=0.1)


def test_a_source_that_has_not_arrived_by_its_expected_time_fails_freshness(arrivals):
    add_rows(arrivals, date(2026, 11, 20), 1, datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=40))
    outcome = Freshness("s.arrivals", "fresh", "", column="loaded_at", max_age_hours=36).outcome(arrivals, None)
    assert [f["expectation"] for f in outcome.failures] == ["newest loaded_at at most 36 hours old"]


def test_a_source_that_never_arrived_fails_freshness(arrivals):
    outcome = Freshness("s.arrivals", "fresh", "", column="loaded_at").outcome(arrivals, None)
    assert outcome.failures[0]["samples"] == ["no rows have arrived"]


def fill_history(warehouse, day: date, counts: list[int]) -> None:
    moment = datetime(2026, 11, 1)
    for back, count in enumerate(reversed(counts), start=1):
        add_rows(warehouse, day - timedelta(days=back), count, moment)


def test_a_day_in_line_with_the_trailing_fortnight_passes_volume(arrivals):
    day = date(2026, 11, 21)
    fill_history(arrivals, day, [10, 12, 11, 9, 10, 11, 12, 10])
    add_rows(arrivals, day, 11, datetime(2026, 11, 1))
    outcome = Volume("s.arrivals", "volume", "", day_expression="day").outcome(arrivals, day)
    assert outcome.failures == []
    assert (outcome.extra["rows_on_day"], outcome.extra["history_days"]) == (11, 8)


def test_a_day_far_below_the_trailing_fortnight_fails_volume(arrivals):
    day = date(2026, 11, 21)
    fill_history(arrivals, day, [10, 12, 11, 9, 10, 11, 12, 10])
    add_rows(arrivals, day, 2, datetime(2026, 11, 1))
    outcome = Volume("s.arrivals", "volume", "", day_expression="day").outcome(arrivals, day)
    assert [f["samples"] for f in outcome.failures] == [["2"]]
    assert (outcome.extra["expected_low"], outcome.extra["expected_high"]) == (8, 14)


def test_volume_is_not_judged_without_a_week_of_history(arrivals):
    day = date(2026, 11, 21)
    fill_history(arrivals, day, [10, 12, 11])
    outcome = Volume("s.arrivals", "volume", "", day_expression="day").outcome(arrivals, day)
    assert (outcome.failures, outcome.evaluated, outcome.extra["history_days"]) == ([], 0, 3)


def test_a_gate_run_before_its_table_exists_fails_with_a_clear_message(warehouse):
    import dagster as dg

    from cdp_assets.checks.gates import gate_check

    check = gate_check(Gate("s.never_built", "never_built_ok", "", (NotNull("id"),)))
    result = dg.materialize([dg.AssetSpec(["s", "never_built"]), check], resources={"warehouse": warehouse},
                            selection=dg.AssetSelection.checks(check), raise_on_error=False)
    evaluation = result.get_asset_check_evaluations()[0]
    assert not evaluation.passed
    assert evaluation.metadata["error"].value == "s.never_built does not exist yet: materialize s/never_built first"
