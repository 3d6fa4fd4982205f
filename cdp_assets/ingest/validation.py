"""Row-level validation of CRM rows on the way into `raw`, as SQL that DuckDB runs over the file itself.

Each rule is a reason and the SQL condition of the rows it rejects; a row failing several rules gets all
their reasons, joined by "; ". Accepted rows gain typed columns (`_updated_at`, `_order_ts`) parsed from
the many timestamp forms CRMs export, so the SQL downstream never has to guess a format. DuckDB is the
local engine whatever the warehouse: it reads and checks the file in parallel, and on a DuckDB warehouse
the rows never leave it.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa
import pycountry

from cdp_assets.ingest.lines import NO_LINES, SKIPPED, numbered_sql

# ISO 8601 in any of its forms is read by a cast (an offset or Z is converted to UTC; none means UTC);
# the US forms CRMs also export are tried after it, for the rows the cast could not read.
US_FORMATS = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y")
EMAIL_PATTERN = r"[^@\s]+@[^@\s]+\.[^@\s]+"
DECIMAL_PATTERN = r"[0-9]+(\.[0-9]+)?"
MAX_INTEGER_DIGITS = 16  # staging stores values as DECIMAL(18, 2)
MAX_CLOCK_SKEW = timedelta(days=1)
# What real CRMs export for a yes/no field; staging reads them the same way (stg_crm_contacts.sql).
CONSENT_ANSWERS = ("true", "false", "yes", "no", "y", "n", "1", "0", "opted_in", "opted_out", "granted",
                   "denied", "")
DELETED_ANSWERS = ("true", "false", "yes", "no", "1", "0", "")
ISO_4217 = frozenset(currency.alpha_3 for currency in pycountry.currencies)


@dataclass(frozen=True)
class Rule:
    reason: str
    rejects: str  # SQL condition over the row (typed columns included); NULL counts as passing


def _text(values: tuple[str, ...] | frozenset[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in sorted(values)) + "]"


def timestamp_sql(column: str) -> str:
    """A UTC TIMESTAMP parsed from text; needs the session time zone to be UTC (see `prepare`)."""
    text = f"trim({column})"
    return f"coalesce(timezone('UTC', try_cast({text} AS TIMESTAMPTZ)), try_strptime({text}, {_text(US_FORMATS)}))"


def prepare(conn: duckdb.DuckDBPyConnection) -> None:
    """Session settings the checks rely on: naive timestamps mean UTC, and tables keep insertion order."""
    conn.execute("SET TimeZone = 'UTC'").fetchall()
    conn.execute("SET preserve_insertion_order = true").fetchall()


def _blank(column: str) -> str:
    return f"coalesce(trim({column}), '') = ''"


def _email(column: str) -> Rule:
    return Rule("email is not a valid address",
                f"NOT {_blank(column)} AND NOT regexp_full_match(trim({column}), '{EMAIL_PATTERN}')")


def _timestamp_rules(column: str, typed: str, now: datetime) -> list[Rule]:
    latest = (now + MAX_CLOCK_SKEW).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return [
        Rule(f"{column} is not a recognised timestamp", f"NOT {_blank(column)} AND {typed} IS NULL"),
        Rule(f"{column} is missing", _blank(column)),
        Rule(f"{column} is in the future", f"{typed} > TIMESTAMP '{latest}'"),
    ]


def _answer(column: str, accepted: tuple[str, ...]) -> Rule:
    return Rule(f"{column} is not one of {', '.join(a for a in accepted if a)} or blank",
                f"NOT list_contains({_text(frozenset(accepted))}, lower(trim({column})))")


def contact_rules(now: datetime) -> list[Rule]:
    return [Rule("contact_id is missing", _blank("contact_id")), _email("email"),
            *_timestamp_rules("updated_at", "_updated_at", now),
            _answer("consent_marketing", CONSENT_ANSWERS), _answer("consent_ads_personalization", CONSENT_ANSWERS),
            _answer("deleted", DELETED_ANSWERS)]


def order_rules(now: datetime) -> list[Rule]:
    negative = f"regexp_full_match(trim(value), '-{DECIMAL_PATTERN}')"
    return [
        Rule("order_id is missing", _blank("order_id")),
        Rule("order has no contact_id, email or phone",
             f"{_blank('contact_id')} AND {_blank('email')} AND {_blank('phone')}"),
        _email("email"),
        *_timestamp_rules("order_ts", "_order_ts", now),
        Rule("value is negative", negative),
        Rule("value is too large",
             f"regexp_full_match(trim(value), '-?[0-9]{{{MAX_INTEGER_DIGITS + 1},}}(\\.[0-9]+)?')"),
        Rule("value is not a number",
             f"NOT coalesce(regexp_full_match(trim(value), '{DECIMAL_PATTERN}'), FALSE) "
             f"AND NOT coalesce({negative}, FALSE)"),
        Rule("currency is not an ISO 4217 code",
             f"NOT coalesce(list_contains({_text(ISO_4217)}, upper(trim(currency))), FALSE)"),
    ]


def checked_sql(source: str, columns: list[str], typed: dict[str, str], rules: list[Rule]) -> str:
    """The rows of `source` with their typed columns and `reason` (NULL when the row is accepted).

    `columns` are the select expressions of the text columns; `typed` maps each typed column to the
    text column it is parsed from.
    """
    typed_columns = ", ".join(f"{timestamp_sql(text)} AS {name}" for name, text in typed.items())
    reasons = ", ".join(f"CASE WHEN coalesce({rule.rejects}, FALSE) THEN '{rule.reason}' END" for rule in rules)
    return f"""
        SELECT typed.*, nullif(concat_ws('; ', {reasons}), '') AS reason
        FROM (SELECT {", ".join(columns)}, {typed_columns} FROM {source}) AS typed"""


def check_table(data: pa.Table, typed: dict[str, str], rules: list[Rule], first_line: int = 2) -> pa.Table:
    """Run the checks on rows already in memory (what the loader does to a file); for tests and tools."""
    with duckdb.connect() as conn:
        prepare(conn)
        conn.register("rows_in", data)
        conn.execute(f"CREATE TABLE checked AS {checked_sql('rows_in', data.schema.names, typed, rules)}").fetchall()
        conn.execute(f"CREATE TEMP TABLE {SKIPPED} AS {NO_LINES}").fetchall()
        return conn.sql(f"{numbered_sql('checked', first_line)} ORDER BY _line_number").to_arrow_table()
