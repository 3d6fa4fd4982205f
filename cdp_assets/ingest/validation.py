"""Row-level validation of CRM batches on the way into `raw`, vectorized with Arrow compute.

Each rule yields a human-readable reason for the rows it rejects; a row that fails several rules gets
all their reasons. Accepted rows gain typed columns (`_updated_at`, `_order_ts`) parsed from the many
timestamp forms CRMs export, so the SQL downstream never has to guess a format.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pycountry
import pyarrow.compute as pc

# Naive forms are read as UTC; offsets (including a literal Z) are converted to UTC.
TIMESTAMP_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
)
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
DECIMAL_PATTERN = r"^[0-9]+(\.[0-9]+)?$"
MAX_CLOCK_SKEW = timedelta(days=1)

ISO_4217 = frozenset(currency.alpha_3 for currency in pycountry.currencies)


@dataclass(frozen=True)
class Validated:
    accepted: pa.Table
    rejected: pa.Table  # original columns + `reason`


def _blank(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return pc.fill_null(pc.equal(pc.utf8_trim_whitespace(column), ""), True)


def parse_timestamps(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """UTC timestamps (naive, seconds) for every recognised form; null where none matches."""
    trimmed = pc.utf8_trim_whitespace(column)
    parsed = []
    for form in TIMESTAMP_FORMATS:
        values = pc.strptime(trimmed, format=form, unit="s", error_is_null=True)
        if values.type.tz is not None:
            values = values.cast(pa.timestamp("s", tz="UTC")).cast(pa.timestamp("s"))
        parsed.append(values)
    return pc.coalesce(*parsed)


def _rule(failed: pa.Array, reason: str) -> pa.Array:
    return pc.if_else(pc.fill_null(failed, False), pa.scalar(reason), pa.scalar(None, pa.string()))


def _combine(rules: list[pa.Array]) -> pa.Array:
    """Per row, the reasons of every failed rule joined by "; ", or null when all passed."""
    reasons = rules[0]
    for rule in rules[1:]:
        joined = pc.binary_join_element_wise(reasons, rule, "; ")
        reasons = pc.if_else(pc.is_null(reasons), rule, pc.if_else(pc.is_null(rule), reasons, joined))
    return reasons


def _split(batch: pa.RecordBatch, rules: list[pa.Array], typed: dict[str, pa.Array]) -> Validated:
    reasons = _combine(rules)
    ok = pc.is_null(reasons)
    table = pa.Table.from_batches([batch])
    accepted = table.filter(ok)
    for name, values in typed.items():
        accepted = accepted.append_column(name, pc.filter(values, ok))
    rejected = table.filter(pc.invert(ok)).append_column("reason", pc.filter(reasons, pc.invert(ok)))
    return Validated(accepted, rejected)


def _email_rule(column: pa.Array) -> pa.Array:
    present = pc.invert(_blank(column))
    valid = pc.match_substring_regex(pc.utf8_trim_whitespace(column), EMAIL_PATTERN)
    return _rule(pc.and_(present, pc.invert(pc.fill_null(valid, False))), "email is not a valid address")


def _timestamp_rules(column: pa.Array, name: str, now: datetime) -> tuple[pa.Array, list[pa.Array]]:
    parsed = parse_timestamps(column)
    latest = pa.scalar((now + MAX_CLOCK_SKEW).astimezone(UTC).replace(tzinfo=None), pa.timestamp("s"))
    return parsed, [
        _rule(pc.and_(pc.invert(_blank(column)), pc.is_null(parsed)), f"{name} is not a recognised timestamp"),
        _rule(_blank(column), f"{name} is missing"),
        _rule(pc.greater(parsed, latest), f"{name} is in the future"),
    ]


def validate_contacts(batch: pa.RecordBatch, now: datetime) -> Validated:
    updated_at, time_rules = _timestamp_rules(batch.column("updated_at"), "updated_at", now)
    rules = [
        _rule(_blank(batch.column("contact_id")), "contact_id is missing"),
        _email_rule(batch.column("email")),
        *time_rules,
    ]
    return _split(batch, rules, {"_updated_at": updated_at})


def validate_orders(batch: pa.RecordBatch, now: datetime) -> Validated:
    order_ts, time_rules = _timestamp_rules(batch.column("order_ts"), "order_ts", now)
    value = pc.utf8_trim_whitespace(batch.column("value"))
    numeric = pc.fill_null(pc.match_substring_regex(value, DECIMAL_PATTERN), False)
    negative = pc.fill_null(pc.match_substring_regex(value, r"^-[0-9]+(\.[0-9]+)?$"), False)
    currency = pc.utf8_upper(pc.utf8_trim_whitespace(batch.column("currency")))
    no_identifier = pc.and_(
        pc.and_(_blank(batch.column("contact_id")), _blank(batch.column("email"))), _blank(batch.column("phone"))
    )
    rules = [
        _rule(_blank(batch.column("order_id")), "order_id is missing"),
        _rule(no_identifier, "order has no contact_id, email or phone"),
        _email_rule(batch.column("email")),
        *time_rules,
        _rule(negative, "value is negative"),
        _rule(pc.and_(pc.invert(numeric), pc.invert(negative)), "value is not a number"),
        _rule(pc.invert(pc.fill_null(pc.is_in(currency, pa.array(sorted(ISO_4217))), False)),
              "currency is not an ISO 4217 code"),
    ]
    return _split(batch, rules, {"_order_ts": order_ts})
