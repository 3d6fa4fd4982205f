"""Records encoded as JSON in the warehouse: a destination whose record is a fixed shape (`base.Shape`) of the
sync key's value, the record key and the mapped fields as CRM strings (HubSpot's upsert input) has each page of
changes read with every record already JSON, so Python only joins records into batches. Building, formatting
and encoding a million records one by one in Python cost more than sending them.

The SQL formats each field exactly as `base.formatted` does, for the column types both warehouses write as text
the way Python does: integers, decimals and doubles (numbers without trailing zeros), booleans, dates and
timestamps (ISO 8601 UTC with milliseconds), and text. What it cannot match leaves the record's JSON NULL, and
that record is built in Python: a double the warehouse writes with an exponent, NaN, a year outside 1000-9999.
A sync with a field of any other column type (REAL, a timestamp with time zone as a date, a boolean mapped as a
string) is built in Python throughout.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from cdp_assets.activation.destinations.base import FIELDS, KEY, TRACE, Part, Shape
from cdp_assets.activation.records.config import Sync
from cdp_assets.activation.records.sql import sent_columns
from cdp_assets.ingest.sql_text import literal

INTEGER = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
           "UHUGEINT"}
DOUBLE = {"DOUBLE", "DOUBLE PRECISION"}
TEXT = {"VARCHAR", "TEXT", "CHARACTER VARYING"}
TIMESTAMP = {"TIMESTAMP", "TIMESTAMP WITHOUT TIME ZONE"}
TIMESTAMPTZ = {"TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"}


def _family(column_type: str) -> str:
    kind = column_type.upper()
    if kind in INTEGER:
        return "integer"
    if kind.startswith(("DECIMAL", "NUMERIC")):
        return "decimal"
    for family, names in (("double", DOUBLE), ("text", TEXT), ("timestamp", TIMESTAMP),
                          ("timestamptz", TIMESTAMPTZ)):
        if kind in names:
            return family
    return kind.lower()  # boolean, date, or a type no field is formatted from in SQL


def _number(text: str) -> str:
    """A decimal's or double's text without trailing zeros; NULL (built in Python) for an exponent or NaN."""
    stripped = f"rtrim(rtrim({text}, '0'), '.')"
    return (f"CASE WHEN strpos(lower({text}), 'e') > 0 OR NOT (right({text}, 1) BETWEEN '0' AND '9') THEN NULL "
            f"WHEN strpos({text}, '.') = 0 THEN (CASE WHEN {text} = '-0' THEN '0' ELSE {text} END) "
            f"WHEN {stripped} IN ('', '-0') THEN '0' ELSE {stripped} END")


def _day(value: str) -> str:
    return f"CASE WHEN year({value}) BETWEEN 1000 AND 9999 THEN strftime({value}, '%Y-%m-%d') END"


def _moment(value: str) -> str:
    """ISO 8601 with milliseconds (truncated, as Python's isoformat does) and Z."""
    milliseconds = f"lpad(CAST(CAST(floor(extract('millisecond' FROM {value})) AS BIGINT) % 1000 AS VARCHAR), 3, '0')"
    return (f"CASE WHEN year({value}) BETWEEN 1000 AND 9999 THEN strftime({value}, '%Y-%m-%d') || 'T' || "
            f"strftime({value}, '%H:%M:%S') || '.' || {milliseconds} || 'Z' END")


def _formatted(column: str, kind: str, family: str) -> str | None:
    """SQL of `formatted(column, kind)`: '' for NULL, NULL where Python must format it; None for a column type
    the warehouse cannot format as Python does."""
    text = f"CAST({column} AS VARCHAR)"
    exact = {
        ("string", "text"): column, ("string", "integer"): text,
        ("number", "integer"): text, ("number", "decimal"): _number(text), ("number", "double"): _number(text),
        ("bool", "boolean"): f"CASE WHEN {column} THEN 'true' ELSE 'false' END",
        ("datetime", "timestamp"): _moment(column), ("datetime", "timestamptz"): _moment(f"timezone('UTC', {column})"),
        ("datetime", "date"): _day(column), ("datetime", "text"): column,
        ("date", "date"): _day(column), ("date", "timestamp"): _day(column), ("date", "text"): column,
    }.get((kind, family))
    return None if exact is None else f"CASE WHEN {column} IS NULL THEN '' ELSE {exact} END"


def _json(shape: Shape, fields: Mapping[str, str]) -> str:
    """The shape as JSON text: names and constants encoded here, the sync key, the record key and the formatted
    fields (`p_<n>`) by the warehouse's `to_json`. Concatenated rather than built with json_object, whose text
    PostgreSQL spaces differently: both warehouses send byte-identical requests."""
    def value(part: str | Part) -> str:
        if part == FIELDS:
            return _object([(name, f"CAST(to_json({sql}) AS VARCHAR)") for name, sql in fields.items()])
        column = {KEY: "key_value", TRACE: "record_key"}.get(part)
        return f"CAST(to_json({column}) AS VARCHAR)" if column else literal(json.dumps(part, ensure_ascii=False))
    return _object([(name, value(part)) for name, part in shape.items()])


def _object(members: list[tuple[str, str]]) -> str:
    """SQL concatenating a JSON object from (name, SQL of the member's JSON text) pairs."""
    parts = [f"{literal(('{' if n == 0 else ',') + json.dumps(name, ensure_ascii=False) + ':')} || {sql}"
             for n, (name, sql) in enumerate(members)]
    return "(" + " || ".join(parts or ["'{'"]) + " || '}')"


def page_sql(sync: Sync, shape: Shape, types: Mapping[str, str], table: str) -> str | None:
    """The changes of one page (`:a` < rn <= `:b`), each with `record_json` (NULL where Python builds it) and
    its field columns only where Python builds it; None when a field's column type cannot be formatted in SQL."""
    columns = sent_columns(sync)
    formats = [_formatted(c, f.type, _family(types[c])) for f, c in zip(sync.all_fields, columns, strict=True)]
    if any(f is None for f in formats):
        return None
    named = [f"{sql} AS p_{n}" for n, sql in enumerate(formats)]
    fields = {f.field: f"p_{n}" for n, f in enumerate(sync.all_fields)}
    unmatched = " OR ".join(f"p_{n} IS NULL" for n in range(len(formats))) or "FALSE"
    fallback = ", ".join(f"CASE WHEN record_json IS NULL THEN {c} END AS {c}" for c in columns)
    return f"""
SELECT rn, change, ledger_status, ledger_attempts, record_key, key_value, fingerprint, profile_id, email_sha256,
       phone_sha256, record_json{', ' + fallback if fallback else ''}
FROM (SELECT *, CASE WHEN {unmatched} THEN NULL ELSE {_json(shape, fields)} END AS record_json
      FROM (SELECT *{''.join(', ' + n for n in named)} FROM {table} WHERE rn > :a AND rn <= :b) AS formatted
     ) AS encoded
ORDER BY rn"""
