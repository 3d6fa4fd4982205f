"""CRM extracts (CSV, JSONL, Parquet; CSV and JSONL also gzipped) as DuckDB sources of the canonical columns.

Everything is read as text so that validation, not the reader's type guessing, decides what a value
means, and so the original value can be kept verbatim when a row is quarantined. The file's mapping
(`crm_mappings.yaml`) turns its headers into canonical columns, and columns it does not use are kept as a
JSON `extra`. A CSV's layout is taken from its header line (the delimiter among `, ; TAB |` that it uses
most, RFC 4180 quoting), not guessed from its rows: a ragged row then fails the file with its line number
instead of fooling a sniffer into reading the file another way. Text must be in the mapping's encoding
(UTF-8 unless it says latin-1 or utf-16); anything else fails the file rather than being guessed. DuckDB
reads in parallel, keeps file order and copes with quoted newlines.
"""

import codecs
import csv
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb

from cdp_assets.ingest.mappings import CANONICAL, CONSENT_COLUMNS, DATA_SUFFIXES, Mapping, SourceColumn, data_stem

DELIMITERS = (",", ";", "\t", "|")
ENCODING_ADVICE = "re-export it as UTF-8, or set `encoding:` on its mapping in crm_mappings.yaml"


class FileFormatError(ValueError):
    """A file that cannot be loaded as a whole (wrong columns, unreadable format); names the file."""


@dataclass(frozen=True)
class FileSource:
    sql: str  # a FROM-clause item whose columns are the file's, all text
    columns: list[str]  # the canonical columns, as select expressions (NULL for absent optional ones)
    first_line: int  # the line number of the first data row
    extras: list[str]  # the file's columns that no mapping uses, kept as JSON in `extra`


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
        text = f"{text} Nothing was loaded from it: {ENCODING_ADVICE}."
    return FileFormatError(f"{path.name}: {text}")


def _literal(text: object) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _varchar_columns(names: list[str]) -> str:
    return "{" + ", ".join(f"{_literal(n)}: 'VARCHAR'" for n in names) + "}"


def quote_name(name: str) -> str:
    """A column name as a SQL identifier: export headers hold spaces, slashes and quotes."""
    return '"' + name.replace('"', '""') + '"'


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
                                      f"{ENCODING_ADVICE}") from None
    return text.rstrip("\r\n")


def csv_source(path: Path, encoding: str) -> tuple[str, list[str]]:
    header_line = _header_line(path, encoding)
    delimiter = max(DELIMITERS, key=header_line.count)
    names = next(csv.reader([header_line.rstrip("\r\n")], delimiter=delimiter))
    sql = (f"read_csv({_literal(path)}, auto_detect = false, header = true, delim = {_literal(delimiter)}, "
           f"quote = '\"', escape = '\"', encoding = {_literal(encoding)}, columns = {_varchar_columns(names)})")
    return sql, names


def _names(conn: duckdb.DuckDBPyConnection, source: str) -> list[str]:
    return [row[0] for row in conn.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]


def _expression(spec: SourceColumn) -> str:
    value = f"CAST({quote_name(spec.column)} AS VARCHAR)"
    if spec.first_of:
        value = f"nullif(trim(split_part({value}, {_literal(spec.first_of)}, 1)), '')"
    if spec.values:
        cases = " ".join(f"WHEN {_literal(k)} THEN {_literal(v)}" for k, v in spec.values.items())
        value = f"CASE lower(trim({value})) {cases} ELSE {value} END"
    return value


def _select_list(path: Path, mapping: Mapping, names: list[str]) -> tuple[list[str], list[str]]:
    """The canonical columns as select expressions, and the file's columns no mapping uses."""
    missing = [(c, s.column) for c, s in mapping.columns.items()
               if s.column not in names and c not in mapping.optional]
    if missing:
        labels = [c if c == s else f"{s} ({c})" for c, s in missing]
        raise FileFormatError(f"{path.name}: missing required columns {', '.join(labels)}")
    columns = []
    for canonical in CANONICAL[mapping.entity]:
        spec = mapping.columns.get(canonical)
        if spec is not None and spec.column in names:
            value = _expression(spec)
            if canonical in CONSENT_COLUMNS:
                value = f"coalesce({value}, '')"
        elif canonical in mapping.constants:
            value = _literal(mapping.constants[canonical])
        else:
            value = "CAST(NULL AS VARCHAR)"
        columns.append(f"{value} AS {canonical}")
    used = {s.column for s in mapping.columns.values()}
    return columns, [n for n in names if n not in used]


def _extra_sql(extras: list[str]) -> str:
    if not extras:
        return "CAST(NULL AS VARCHAR) AS extra"
    pairs = ", ".join(f"{_literal(n)}, CAST({quote_name(n)} AS VARCHAR)" for n in extras)
    return f"CAST(json_object({pairs}) AS VARCHAR) AS extra"


def open_source(conn: duckdb.DuckDBPyConnection, path: Path, mapping: Mapping) -> FileSource:
    """Describe a landed file as a source of the canonical columns, or raise FileFormatError naming it."""
    stem = data_stem(path.name)
    if stem is None:
        raise FileFormatError(f"{path.name}: unsupported file type; use one of {', '.join(DATA_SUFFIXES)}")
    if path.stat().st_size == 0:
        raise FileFormatError(f"{path.name}: the file is empty; expected a header row")
    kind = path.name[len(stem):].lower().removesuffix(".gz")
    try:
        if kind == ".csv":
            (sql, names), first_line = csv_source(path, mapping.encoding), 2
        elif kind == ".jsonl":
            # Keys first, then every key read as text, so no value is reformatted by type detection.
            names = _names(conn, f"read_json({_literal(path)}, format = 'newline_delimited')")
            sql = (f"read_json({_literal(path)}, format = 'newline_delimited', "
                   f"columns = {_varchar_columns(names)})")
            first_line = 1
        else:
            sql, first_line = f"read_parquet({_literal(path)})", 1
            names = _names(conn, sql)
    except duckdb.Error as error:
        raise scrub_error(path, error) from None
    columns, extras = _select_list(path, mapping, names)
    return FileSource(sql, [*columns, _extra_sql(extras)], first_line, extras)
