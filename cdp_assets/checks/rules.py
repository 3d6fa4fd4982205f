"""Data-quality rules, each stated once and checkable two ways: as a Great Expectations expectation on a
DataFrame (small tables), or as a count of unexpected rows computed in the warehouse (large tables, and the
rules no chunk of rows can decide: uniqueness and references to another table).

`table` is a table name or a parenthesized SELECT (to cast or derive columns). `unexpected` is a SQL
condition, over the checked relation aliased `t`, that is true for exactly the rows the
expectation would call unexpected; it gives the count on the aggregate path and the samples on both.
"""

from dataclasses import dataclass
from typing import Any


def _gxe():
    # Great Expectations costs seconds to import: only checks that run pay for it.
    import great_expectations.expectations as gxe

    return gxe


def _literal(value: Any) -> str:
    return str(value) if isinstance(value, int | float) else "'" + str(value).replace("'", "''") + "'"


@dataclass(frozen=True)
class Rule:
    """A rule on one column of the checked table (`column` None: on the table)."""

    column: str | None
    # Whether the unexpected values say anything (a NULL does not).
    has_samples = True

    @property
    def expectation_type(self) -> str:
        raise NotImplementedError

    def expectation(self, table: str) -> Any | None:
        """The GX expectation for the pandas path; None when only the warehouse can decide the rule."""
        raise NotImplementedError

    def unexpected(self, table: str) -> str:
        raise NotImplementedError

    def count_sql(self, table: str) -> str | None:
        """A query of its own counting the unexpected rows, for rules a one-pass `sum(CASE ...)` must not hold:
        inside a select list PostgreSQL runs a subquery once per row, never as a join."""
        return None

    @property
    def label(self) -> str:
        return f"{self.expectation_type}({self.column})" if self.column else self.expectation_type


@dataclass(frozen=True)
class NotNull(Rule):
    expectation_type = "expect_column_values_to_not_be_null"
    has_samples = False

    def expectation(self, table: str) -> Any:
        return _gxe().ExpectColumnValuesToNotBeNull(column=self.column)

    def unexpected(self, table: str) -> str:
        return f"t.{self.column} IS NULL"


@dataclass(frozen=True)
class Unique(Rule):
    expectation_type = "expect_column_values_to_be_unique"

    def expectation(self, table: str) -> Any:
        return _gxe().ExpectColumnValuesToBeUnique(column=self.column)

    def unexpected(self, table: str) -> str:
        # Every row of a repeated value is unexpected, as GX counts it.
        return (f"t.{self.column} IN (SELECT u.{self.column} FROM {table} AS u WHERE u.{self.column} IS NOT NULL "
                f"GROUP BY u.{self.column} HAVING count(*) > 1)")

    def count_sql(self, table: str) -> str:
        return (f"SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM {table} AS t WHERE t.{self.column} "
                f"IS NOT NULL GROUP BY t.{self.column} HAVING count(*) > 1) AS repeated")


@dataclass(frozen=True)
class Matches(Rule):
    regex: str = ""

    expectation_type = "expect_column_values_to_match_regex"

    def expectation(self, table: str) -> Any:
        return _gxe().ExpectColumnValuesToMatchRegex(column=self.column, regex=self.regex)

    def unexpected(self, table: str) -> str:
        return f"t.{self.column} IS NOT NULL AND NOT regexp_matches(t.{self.column}, {_literal(self.regex)})"


@dataclass(frozen=True)
class Between(Rule):
    low: float | None = None
    high: float | None = None

    expectation_type = "expect_column_values_to_be_between"

    def expectation(self, table: str) -> Any:
        return _gxe().ExpectColumnValuesToBeBetween(column=self.column, min_value=self.low, max_value=self.high)

    def unexpected(self, table: str) -> str:
        bounds = ([f"t.{self.column} < {self.low}"] if self.low is not None else []) + \
                 ([f"t.{self.column} > {self.high}"] if self.high is not None else [])
        return " OR ".join(bounds)


@dataclass(frozen=True)
class InSet(Rule):
    values: tuple[str, ...] = ()

    expectation_type = "expect_column_values_to_be_in_set"

    def expectation(self, table: str) -> Any:
        return _gxe().ExpectColumnValuesToBeInSet(column=self.column, value_set=list(self.values))

    def unexpected(self, table: str) -> str:
        return f"t.{self.column} IS NOT NULL AND t.{self.column} NOT IN ({', '.join(map(_literal, self.values))})"


@dataclass(frozen=True)
class RefersTo(Rule):
    """Referential integrity: every non-null value appears in `parent` (`schema.table.column`)."""

    parent: str = ""

    expectation_type = "expect_column_values_to_exist_in_parent"

    def expectation(self, table: str) -> None:
        return None

    def unexpected(self, table: str) -> str:
        parent_table, parent_column = self.parent.rsplit(".", 1)
        return (f"t.{self.column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {parent_table} AS p "
                f"WHERE p.{parent_column} = t.{self.column})")

    def count_sql(self, table: str) -> str:
        # In a WHERE clause NOT EXISTS is planned as an anti-join.
        return f"SELECT count(*) FROM {table} AS t WHERE {self.unexpected(table)}"

    @property
    def label(self) -> str:
        return f"{self.expectation_type}({self.column} -> {self.parent})"
