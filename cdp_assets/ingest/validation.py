"""Row- and field-level validation of CRM rows on the way into `raw`, as SQL that DuckDB runs over the file itself.

Every checked value is first trimmed of all Unicode whitespace and invisible characters (tabs, no-break and
ideographic spaces, zero-width spaces and joiners, a byte-order mark): `"\tana@example.org "` is a valid
address. Each rule is a reason and the SQL condition of the rows it rejects. A row rule quarantines the whole
row: its key, the timestamp that orders its versions or its deletion flag is unusable, or (orders) its value.
A field rule drops only that field from an accepted row (an unusable email or consent answer; phones are read
in `phones.py`), recorded with its reason in the entity's field quarantine. A quarantined row carries every
reason it failed, joined by "; ". Accepted rows gain typed columns parsed from the trimmed text (`_updated_at`,
`_email`, `_value`, ...), so the SQL downstream, portable to PostgreSQL, never trims or guesses a format.
DuckDB is the local engine whatever the warehouse: it reads and checks the file in parallel, and on a DuckDB
warehouse the rows never leave it.
"""

from collections.abc import Callable
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
# Whitespace (RE2's \s, vertical tab, next line), the Unicode separators (\p{Z}: no-break, thin, ideographic
# spaces...) and the invisible characters exports carry: Mongolian vowel separator, zero-width space, non-joiner
# and joiner, word joiner, byte-order mark.
INVISIBLE = r"[\s\x{0B}\x{85}\p{Z}\x{180E}\x{200B}-\x{200D}\x{2060}\x{FEFF}]"
DECIMAL_PATTERN = r"[0-9]+(\.[0-9]+)?"
MAX_INTEGER_DIGITS = 16  # values are stored as DECIMAL(18, 2)
MAX_CLOCK_SKEW = timedelta(days=1)
# What real CRMs export for a yes/no field, and the answers among them that grant consent or delete.
CONSENT_ANSWERS = ("true", "false", "yes", "no", "y", "n", "1", "0", "opted_in", "opted_out", "granted",
                   "denied", "")
GRANTED = ("true", "yes", "y", "1", "opted_in", "granted")
DELETED_ANSWERS = ("true", "false", "yes", "no", "1", "0", "")
DELETED = ("true", "yes", "1")
ISO_4217 = frozenset(currency.alpha_3 for currency in pycountry.currencies)
# Cleaned columns read after the checks (the phone parse, the rules judged after drops); the others are not kept.
CLEANED_KEPT = ("phone", "contact_id")


@dataclass(frozen=True)
class Rule:
    reason: str
    rejects: str  # SQL condition over the row (cleaned and typed columns included); NULL counts as passing
    column: str | None = None  # the field the rule drops from an accepted row; None: the row is quarantined


@dataclass(frozen=True)
class Typed:
    sql_type: str
    sql: str  # over the cleaned text columns


@dataclass(frozen=True)
class Checks:
    """What validation does to one entity's rows."""

    cleaned: tuple[str, ...]  # text columns trimmed into `_clean_<column>` before any rule reads them
    typed: dict[str, Typed]  # columns added to every row, parsed from the cleaned text
    rules: Callable[[datetime], list[Rule]]
    # Row rules judged once unusable fields are dropped: they read `_email` and the phone's `_phone_e164`.
    after_drops: tuple[Rule, ...] = ()


def cleaned(column: str) -> str:
    return f"_clean_{column}"


def clean_sql(column: str) -> str:
    """The text without the whitespace and invisible characters around it (DuckDB's RE2 syntax)."""
    return f"regexp_replace({column}, '^{INVISIBLE}+|{INVISIBLE}+$', '', 'g')"


def _text(values: tuple[str, ...] | frozenset[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in sorted(values)) + "]"


def timestamp_sql(column: str) -> str:
    """A UTC TIMESTAMP parsed from cleaned text; needs the session time zone to be UTC (see `prepare`)."""
    text = cleaned(column)
    return f"coalesce(timezone('UTC', try_cast({text} AS TIMESTAMPTZ)), try_strptime({text}, {_text(US_FORMATS)}))"


def email_sql(column: str) -> str:
    """The address lower-cased, or NULL when it is not one (an invisible character inside it included)."""
    text = cleaned(column)
    return f"CASE WHEN regexp_full_match({text}, '{EMAIL_PATTERN}') AND NOT regexp_matches({text}, '{INVISIBLE}') " \
           f"THEN lower({text}) END"


def answer_sql(column: str, meaning_true: tuple[str, ...]) -> str:
    """TRUE for an answer meaning yes, FALSE for any other (blank and unreadable included), NULL if absent."""
    text = cleaned(column)
    return f"CASE WHEN {text} IS NOT NULL THEN list_contains({_text(meaning_true)}, lower({text})) END"


def prepare(conn: duckdb.DuckDBPyConnection) -> None:
    """Session settings the checks rely on: naive timestamps mean UTC, and tables keep insertion order."""
    conn.execute("SET TimeZone = 'UTC'").fetchall()
    conn.execute("SET preserve_insertion_order = true").fetchall()


def _blank(column: str) -> str:
    return f"coalesce({cleaned(column)}, '') = ''"


def _email(column: str) -> Rule:
    return Rule("email is not a valid address", f"NOT {_blank(column)} AND _email IS NULL", column)


def _timestamp_rules(column: str, typed: str, now: datetime) -> list[Rule]:
    latest = (now + MAX_CLOCK_SKEW).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return [
        Rule(f"{column} is not a recognised timestamp", f"NOT {_blank(column)} AND {typed} IS NULL"),
        Rule(f"{column} is missing", _blank(column)),
        Rule(f"{column} is in the future", f"{typed} > TIMESTAMP '{latest}'"),
    ]


def _answer(column: str, accepted: tuple[str, ...], drops_field: bool) -> Rule:
    return Rule(f"{column} is not one of {', '.join(a for a in accepted if a)} or blank",
                f"NOT list_contains({_text(frozenset(accepted))}, lower({cleaned(column)}))",
                column if drops_field else None)


def contact_rules(now: datetime) -> list[Rule]:
    return [Rule("contact_id is missing", _blank("contact_id")), _email("email"),
            *_timestamp_rules("updated_at", "_updated_at", now),
            # An unreadable consent answer counts as not granted; an unreadable deletion flag, if dropped,
            # would silently un-delete the person, so it quarantines the row.
            _answer("consent_marketing", CONSENT_ANSWERS, drops_field=True),
            _answer("consent_ads_personalization", CONSENT_ANSWERS, drops_field=True),
            _answer("deleted", DELETED_ANSWERS, drops_field=False)]


def order_rules(now: datetime) -> list[Rule]:
    value = cleaned("value")
    negative = f"regexp_full_match({value}, '-{DECIMAL_PATTERN}')"
    return [
        Rule("order_id is missing", _blank("order_id")),
        _email("email"),
        *_timestamp_rules("order_ts", "_order_ts", now),
        Rule("value is negative", negative),
        Rule("value is too large",
             f"regexp_full_match({value}, '-?[0-9]{{{MAX_INTEGER_DIGITS + 1},}}(\\.[0-9]+)?')"),
        Rule("value is not a number",
             f"NOT coalesce(regexp_full_match({value}, '{DECIMAL_PATTERN}'), FALSE) "
             f"AND NOT coalesce({negative}, FALSE)"),
        Rule("currency is not an ISO 4217 code", f"NOT coalesce(list_contains({_text(ISO_4217)}, _currency), FALSE)"),
    ]


CONTACT_CHECKS = Checks(
    cleaned=("contact_id", "email", "phone", "updated_at", "consent_marketing", "consent_ads_personalization",
             "deleted"),
    typed={"_updated_at": Typed("TIMESTAMP", timestamp_sql("updated_at")),
           "_email": Typed("VARCHAR", email_sql("email")),
           "_consent_marketing": Typed("BOOLEAN", answer_sql("consent_marketing", GRANTED)),
           "_consent_ads_personalization": Typed("BOOLEAN", answer_sql("consent_ads_personalization", GRANTED)),
           "_deleted": Typed("BOOLEAN", f"coalesce({answer_sql('deleted', DELETED)}, FALSE)")},
    rules=contact_rules,
)
ORDER_CHECKS = Checks(
    cleaned=("order_id", "contact_id", "email", "phone", "order_ts", "value", "currency"),
    typed={"_order_ts": Typed("TIMESTAMP", timestamp_sql("order_ts")),
           "_email": Typed("VARCHAR", email_sql("email")),
           "_value": Typed("DECIMAL(18, 2)", f"try_cast({cleaned('value')} AS DECIMAL(18, 2))"),
           "_currency": Typed("VARCHAR", f"upper({cleaned('currency')})")},
    rules=order_rules,
    after_drops=(Rule("order has no contact_id, email or phone",
                      f"{_blank('contact_id')} AND _email IS NULL AND _phone_e164 IS NULL"),),
)


def field_columns(rules: list[Rule]) -> list[str]:
    """The fields rules may drop, in rule order."""
    return list(dict.fromkeys(rule.column for rule in rules if rule.column))


def reasons_sql(rules: list[Rule] | tuple[Rule, ...]) -> str:
    """The reasons of the rules a row fails, joined by "; ", or NULL."""
    cases = ", ".join(f"CASE WHEN coalesce({rule.rejects}, FALSE) THEN '{rule.reason}' END" for rule in rules)
    return f"nullif(concat_ws('; ', {cases}), '')" if rules else "CAST(NULL AS VARCHAR)"


def checked_sql(source: str, columns: list[str], checks: Checks, rules: list[Rule]) -> str:
    """The rows of `source` with their typed columns, the cleaned phone and contact id, `reason` (every rule
    they fail), `_row_reason` (the rules that quarantine the row) and `_why_<field>` per field a rule may drop.

    `columns` are the select expressions of the text columns.
    """
    cleaning = ", ".join(f"{clean_sql(c)} AS {cleaned(c)}" for c in checks.cleaned)
    typing = ", ".join(f"{t.sql} AS {name}" for name, t in checks.typed.items())
    fields = "".join(f", {reasons_sql([r for r in rules if r.column == c])} AS _why_{c}" for c in field_columns(rules))
    row_rules = [r for r in rules if r.column is None]
    landed = f"SELECT {', '.join(columns)} FROM {source}"
    dropped = ", ".join(cleaned(c) for c in checks.cleaned if c not in CLEANED_KEPT)
    return f"""
        SELECT typed.* EXCLUDE ({dropped}), {reasons_sql(rules)} AS reason, {reasons_sql(row_rules)} AS _row_reason
               {fields}
        FROM (SELECT clean.*, {typing} FROM (
            SELECT landed.*, {cleaning} FROM ({landed}) AS landed) AS clean) AS typed"""


def check_table(data: pa.Table, checks: Checks, now: datetime, first_line: int = 2) -> pa.Table:
    """Run the checks on rows already in memory (what the loader does to a file); for tests and tools."""
    with duckdb.connect() as conn:
        prepare(conn)
        conn.register("rows_in", data)
        query = checked_sql("rows_in", data.schema.names, checks, checks.rules(now))
        conn.execute(f"CREATE TABLE checked AS {query}").fetchall()
        conn.execute(f"CREATE TEMP TABLE {SKIPPED} AS {NO_LINES}").fetchall()
        return conn.sql(f"{numbered_sql('checked', first_line)} ORDER BY _line_number").to_arrow_table()
