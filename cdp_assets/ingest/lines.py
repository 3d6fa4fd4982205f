"""Where each row sits in its file, and the lines whose fields cannot be trusted.

DuckDB's CSV reader, asked to keep going (`store_rejects`), skips every line it cannot split into the header's
fields and records it in a rejects table, all in one pass: a different number of fields, a quote that does
not close where its field ends, text not in the file's encoding, a line over the size limit. Each such line is
quarantined with only its line number and a reason (`line has 18 fields; the header has 17`): its fields
cannot be trusted positionally, and keeping none of its text keeps personal data out of a row that the deletion
purge could not find. JSONL is read the same way, a line at a time, and a line that is not a JSON object is
quarantined likewise.

A row's line number is its position among the rows read (DuckDB keeps file order) plus the lines skipped
before it, found with an ASOF join on the skipped lines. Lines count records: a newline inside a quoted field
does not start a new line, and a blank CSV line is skipped by the reader without being counted.
"""

from pathlib import Path

from cdp_assets.ingest.sql_text import literal, quote_name

REJECTS, REJECT_SCANS = "_cdp_rejects", "_cdp_reject_scans"
SKIPPED = "_cdp_skipped"  # (line_number, reason): the lines that are not rows; a NULL reason is a blank line
MAX_LINE_BYTES = 2_000_000
# Read as NULL only for this text, which no export holds, so that an empty field is '' and counts as a field:
# with the default ('') DuckDB takes a line's one extra empty field for a trailing delimiter and drops it,
# reading the line shifted by one field without an error.
NO_NULL_TEXT = "\x02\x03"
NO_LINES = "SELECT CAST(NULL AS BIGINT) AS line_number, CAST(NULL AS VARCHAR) AS reason WHERE FALSE"
ENCODING_ADVICE = "re-export it as UTF-8, or set `encoding:` on its mapping in crm_mappings.yaml"


def keep_going_options(null_text: str | None = NO_NULL_TEXT) -> str:
    """read_csv options that skip each unreadable line into the rejects tables instead of failing the file."""
    nulls = f", nullstr = {literal(null_text)}" if null_text is not None else ""
    return (f"store_rejects = true, rejects_table = {literal(REJECTS)}, rejects_scan = {literal(REJECT_SCANS)}, "
            f"max_line_size = {MAX_LINE_BYTES}{nulls}")


def rejected_lines_sql(fields: int | None, encoding: str) -> str:
    """(line_number, reason) of every line the reader skipped, one row per line with all its reasons.

    `fields` is the header's number of fields; None for JSONL, which has no header and one field a line.
    """
    # DuckDB records a short line once per missing field, and a long one once per extra field.
    count = "try_cast(regexp_extract(error_message, 'Found: ([0-9]+)', 1) AS BIGINT)"
    found = f"CASE error_type WHEN 'MISSING COLUMNS' THEN min({count}) ELSE max({count}) END"
    counted = (f"'line has ' || {found} || CASE WHEN {found} = 1 THEN ' field' ELSE ' fields' END "
               f"|| '; the header has {fields}'") if fields else "'line is not a JSON object'"
    return f"""
        SELECT line_number, string_agg(DISTINCT reason, '; ' ORDER BY reason) AS reason FROM (
            SELECT CAST(line AS BIGINT) AS line_number, CASE
                WHEN error_type IN ('MISSING COLUMNS', 'TOO MANY COLUMNS') THEN {counted}
                WHEN error_type = 'UNQUOTED VALUE'
                    THEN 'line has a quote that does not close where its field ends'
                WHEN error_type = 'INVALID ENCODING' THEN {literal(f"line is not {encoding} text; {ENCODING_ADVICE}")}
                WHEN error_type = 'LINE SIZE OVER MAXIMUM' THEN 'line is longer than {MAX_LINE_BYTES} bytes'
                ELSE 'line could not be read: ' || lower(error_type)
            END AS reason
            FROM {REJECTS} GROUP BY line, error_type) AS rejected
        GROUP BY line_number"""


def _gaps_sql(skipped: str, first_line: int) -> str:
    """Per run of skipped lines: how many rows come before it, and how many lines are skipped up to its end."""
    return f"""
        SELECT before, max(skipped) AS skipped FROM (
            SELECT line_number - {first_line} - row_number() OVER w + 1 AS before, row_number() OVER w AS skipped
            FROM {skipped} WINDOW w AS (ORDER BY line_number)) AS runs
        GROUP BY before"""


def numbered_sql(table: str, first_line: int, skipped: str = SKIPPED) -> str:
    """The rows of `table` (filled in file order) with `_line_number`, given the lines `skipped` lists.

    The ASOF join carries only row ids: joining whole rows would sort every one of them.
    """
    return f"""
        SELECT t.*, n._line_number FROM {table} AS t JOIN (
            SELECT o._row, {first_line} + o._ordinal + coalesce(g.skipped, 0) AS _line_number
            FROM (SELECT rowid AS _row, rowid - (SELECT min(rowid) FROM {table}) AS _ordinal FROM {table}) AS o
            ASOF LEFT JOIN ({_gaps_sql(skipped, first_line)}) AS g ON o._ordinal >= g.before) AS n
        ON n._row = t.rowid"""


JSON_LINES, JSON_NUMBERED, JSON_SKIPPED = "_cdp_json_lines", "_cdp_json_numbered", "_cdp_json_skipped"


def json_lines_sql(path: Path, encoding: str) -> list[str]:
    """Statements reading a JSONL file a line at a time: the JSON objects, numbered, into `_cdp_json_numbered`,
    and every other line into `_cdp_json_skipped` (a blank one without a reason: it is not a row).

    The delimiter is a control character that valid JSON cannot hold unescaped, so each line is one field;
    a line holding it anyway is skipped by the reader like any other unreadable line.
    """
    read = (f"read_csv({literal(path)}, columns = {{'line': 'VARCHAR'}}, header = false, auto_detect = false, "
            f"delim = '\x01', quote = '', escape = '', encoding = {literal(encoding)}, "
            # The default NULL text keeps a blank line as a row (NULL), so the positions stay the file's lines.
            f"{keep_going_options(None)})")
    # json_type fails on text that is not JSON: it only sees what json_valid accepted.
    kind = ("CASE WHEN coalesce(regexp_full_match(line, '\\s*'), TRUE) THEN 'blank' "
            "WHEN NOT json_valid(line) THEN NULL WHEN json_type(line) = 'OBJECT' THEN 'object' END")
    return [
        f"CREATE OR REPLACE TEMP TABLE {JSON_LINES} AS SELECT line FROM {read}",
        f"CREATE OR REPLACE TEMP TABLE {JSON_SKIPPED} AS {rejected_lines_sql(None, encoding)}",
        f"CREATE OR REPLACE TEMP TABLE {JSON_NUMBERED} AS SELECT line, _line_number, {kind} AS kind "
        f"FROM ({numbered_sql(JSON_LINES, 1, JSON_SKIPPED)}) AS numbered ORDER BY _line_number",
        f"INSERT INTO {JSON_SKIPPED} SELECT _line_number, CASE WHEN kind IS NULL THEN 'line is not a JSON object' END "
        f"FROM {JSON_NUMBERED} WHERE kind IS DISTINCT FROM 'object'",
    ]


def json_keys_sql() -> str:
    """The keys of the file's JSON objects, in the order they first appear."""
    return f"""
        SELECT key FROM (
            SELECT unnest(json_keys(line)) AS key, generate_subscripts(json_keys(line), 1) AS position, _line_number
            FROM {JSON_NUMBERED} WHERE kind = 'object') AS keys
        GROUP BY key ORDER BY min(_line_number), arg_min(position, _line_number)"""


def json_rows_sql(keys: list[str]) -> str:
    """A FROM-clause item of the JSON objects with each key's value as text (nested values as JSON)."""
    pointer = {k: "/" + k.replace("~", "~0").replace("/", "~1") for k in keys}
    values = ", ".join(f"json_extract_string(line, {literal(pointer[k])}) AS {quote_name(k)}" for k in keys)
    return f"(SELECT {values} FROM {JSON_NUMBERED} WHERE kind = 'object') AS _cdp_file"
