"""CRM extracts (CSV, JSONL, Parquet; CSV and JSONL also gzipped) as DuckDB sources of the canonical columns.

Everything is read as text so that validation, not the reader's type guessing, decides what a value
means, and so the original value can be kept verbatim when a row is quarantined. The file's mapping
(`crm_mappings.yaml`) turns its headers into canonical columns (matched case-insensitively and ignoring
surrounding spaces), and columns it does not use are kept as a JSON `extra`. A CSV's layout is taken from its
header line (the delimiter among `, ; TAB |` that it uses most, RFC 4180 quoting), not guessed from its rows:
a line with more or fewer fields than the header is then skipped and quarantined with its line number
(`lines.py`) instead of fooling a sniffer into reading the file another way. The header line must be in the
mapping's encoding (UTF-8 unless it says latin-1 or utf-16), or the file is refused rather than guessed; a
later line that is not is quarantined alone. DuckDB reads in parallel, keeps file order and copes with quoted
newlines.
"""

import codecs
import csv
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb

from cdp_assets.ingest import lines
from cdp_assets.ingest.mappings import CANONICAL, CONSENT_COLUMNS, DATA_SUFFIXES, Mapping, SourceColumn, data_stem
from cdp_assets.ingest.sql_text import literal, quote_name

DELIMITERS = (",", ";", "\t", "|")


class FileFormatError(ValueError):
    """A file that cannot be loaded as a whole (wrong columns, unreadable format); names the file."""


@dataclass(frozen=True)
class FileSource:
    sql: str  # a FROM-clause item whose columns are the file's, all text
    columns: list[str]  # the canonical columns, as select expressions (NULL for absent optional ones)
    first_line: int  # the line number of the first data row
    extras: list[str]  # the file's columns that no mapping uses, kept as JSON in `extra`
    skipped: str  # SQL of (line_number, reason) of the lines that are not rows, once `sql` has been read
    temporary: tuple[str, ...]  # the temporary tables reading the file creates, to drop once it is loaded


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def scrub_error(path: Path, error: Exception) -> FileFormatError:
    """DuckDB's reader error without the "Original Line" it quotes (that line is personal data) and
    without its advice on reader settings, which is not for our users."""
    message = str(getattr(error, "orig", None) or error)
    kept = []
    for line in message.splitlines():
        if not line.strip() or line.startswith("Possible"):
            break
        if not line.startswith("Original Line"):
            kept.append(line.strip())
    text = " ".join(kept) or "not a readable file"
    if "unicode" in text.lower() or "encod" in text.lower():
        text = f"{text} Nothing was loaded from it: {lines.ENCODING_ADVICE}."
    return FileFormatError(f"{path.name}: {text}")


def _varchar_columns(names: list[str]) -> str:
    return "{" + ", ".join(f"{literal(n)}: 'VARCHAR'" for n in names) + "}"


def _header_line(path: Path, encoding: str) -> str:
    """The first line, decoded a byte at a time so that only the header is judged (a UTF-16 newline is two
    bytes, and a later line's encoding problem belongs to DuckDB's reader, which names the line)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    decoder = codecs.getincrementaldecoder("utf-8-sig" if encoding == "utf-8" else encoding)()
    text = ""
    with opener(path, "rb") as handle:
        while not text.endswith("\n") and (block := handle.read(1)):
            try:
                text += decoder.decode(block)
            except UnicodeDecodeError:
                raise FileFormatError(f"{path.name}: the header line is not {encoding} text; "
                                      f"{lines.ENCODING_ADVICE}") from None
    return text.rstrip("\r\n")


def csv_source(path: Path, encoding: str, keep_going: bool = False) -> tuple[str, list[str]]:
    """A FROM-clause item reading the CSV by its header line, and the header's names.

    A line with the wrong number of fields fails the read, or with `keep_going` is skipped into the rejects
    tables (`lines.py`). Either way an empty field is read as '' (so that one extra empty field is noticed) and
    turned back into NULL here.
    """
    header_line = _header_line(path, encoding)
    delimiter = max(DELIMITERS, key=header_line.count)
    names = next(csv.reader([header_line.rstrip("\r\n")], delimiter=delimiter))
    options = lines.keep_going_options() if keep_going else f"nullstr = {literal(lines.NO_NULL_TEXT)}"
    read = (f"read_csv({literal(path)}, auto_detect = false, header = true, delim = {literal(delimiter)}, "
            f"quote = '\"', escape = '\"', encoding = {literal(encoding)}, columns = {_varchar_columns(names)}, "
            f"{options})")
    nulls = ", ".join(f"nullif({quote_name(n)}, '') AS {quote_name(n)}" for n in names)
    return f"(SELECT {nulls} FROM {read}) AS _cdp_file", names


def _names(conn: duckdb.DuckDBPyConnection, source: str) -> list[str]:
    return [row[0] for row in conn.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]


def _headers(path: Path, names: list[str]) -> dict[str, str]:
    """The file's columns by their header as a mapping may name it: lower-cased, without surrounding spaces."""
    headers: dict[str, str] = {}
    for name in names:
        key = name.strip().lower()
        if key in headers:
            raise FileFormatError(f"{path.name}: columns {headers[key]!r} and {name!r} differ only in case or "
                                  "surrounding spaces; rename one of them")
        headers[key] = name
    return headers


def _expression(column: str, spec: SourceColumn) -> str:
    value = f"CAST({quote_name(column)} AS VARCHAR)"
    if spec.first_of:
        value = f"nullif(trim(split_part({value}, {literal(spec.first_of)}, 1)), '')"
    if spec.values:
        cases = " ".join(f"WHEN {literal(k)} THEN {literal(v)}" for k, v in spec.values.items())
        value = f"CASE lower(trim({value})) {cases} ELSE {value} END"
    return value


def _select_list(path: Path, mapping: Mapping, names: list[str]) -> tuple[list[str], list[str]]:
    """The canonical columns as select expressions, and the file's columns no mapping uses."""
    headers = _headers(path, names)
    found = {c: headers[s.column.strip().lower()] for c, s in mapping.columns.items()
             if s.column.strip().lower() in headers}
    missing = [(c, s.column) for c, s in mapping.columns.items() if c not in found and c not in mapping.optional]
    if missing:
        labels = [c if c == s else f"{s} ({c})" for c, s in missing]
        raise FileFormatError(f"{path.name}: missing required columns {', '.join(labels)}")
    columns = []
    for canonical in CANONICAL[mapping.entity]:
        if canonical in found:
            value = _expression(found[canonical], mapping.columns[canonical])
            if canonical in CONSENT_COLUMNS:
                value = f"coalesce({value}, '')"
        elif canonical in mapping.constants:
            value = literal(mapping.constants[canonical])
        else:
            value = "CAST(NULL AS VARCHAR)"
        columns.append(f"{value} AS {canonical}")
    used = set(found.values())
    return columns, [n for n in names if n not in used]


def _extra_sql(extras: list[str]) -> str:
    if not extras:
        return "CAST(NULL AS VARCHAR) AS extra"
    pairs = ", ".join(f"{literal(n)}, CAST({quote_name(n)} AS VARCHAR)" for n in extras)
    return f"CAST(json_object({pairs}) AS VARCHAR) AS extra"


def _json_source(conn: duckdb.DuckDBPyConnection, path: Path, encoding: str) -> tuple[str, list[str]]:
    """Read a JSONL file's lines (`lines.py`) and return its objects as a FROM-clause item, and their keys."""
    for statement in lines.json_lines_sql(path, encoding):
        conn.execute(statement).fetchall()
    names = [key for (key,) in conn.execute(lines.json_keys_sql()).fetchall()]
    if not names:
        raise FileFormatError(f"{path.name}: no line is a JSON object")
    return lines.json_rows_sql(names), names


def open_source(conn: duckdb.DuckDBPyConnection, path: Path, mapping: Mapping) -> FileSource:
    """Describe a landed file as a source of the canonical columns, or raise FileFormatError naming it."""
    stem = data_stem(path.name)
    if stem is None:
        raise FileFormatError(f"{path.name}: unsupported file type; use one of {', '.join(DATA_SUFFIXES)}")
    if path.stat().st_size == 0:
        raise FileFormatError(f"{path.name}: the file is empty; expected a header row")
    kind = path.name[len(stem):].lower().removesuffix(".gz")
    rejects = (lines.REJECTS, lines.REJECT_SCANS)
    for table in rejects:
        conn.execute(f"DROP TABLE IF EXISTS {table}").fetchall()
    try:
        if kind == ".csv":
            sql, names = csv_source(path, mapping.encoding, keep_going=True)
            first_line, skipped, temporary = 2, lines.rejected_lines_sql(len(names), mapping.encoding), rejects
        elif kind == ".jsonl":
            sql, names = _json_source(conn, path, mapping.encoding)
            first_line, skipped = 1, f"SELECT * FROM {lines.JSON_SKIPPED}"
            temporary = (*rejects, lines.JSON_LINES, lines.JSON_NUMBERED, lines.JSON_SKIPPED)
        else:
            sql, first_line, skipped, temporary = f"read_parquet({literal(path)})", 1, lines.NO_LINES, ()
            names = _names(conn, sql)
    except duckdb.Error as error:
        raise scrub_error(path, error) from None
    columns, extras = _select_list(path, mapping, names)
    return FileSource(sql, [*columns, _extra_sql(extras)], first_line, extras, skipped, temporary)
