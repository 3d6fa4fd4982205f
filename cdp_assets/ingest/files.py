"""CRM extracts (CSV, JSONL, Parquet) as DuckDB sources of text columns.

Everything is read as text so that validation, not the reader's type guessing, decides what a value
means, and so the original value can be kept verbatim when a row is quarantined. A CSV's layout is taken
from its header line (the delimiter among `, ; TAB |` that it uses most, RFC 4180 quoting), not guessed
from its rows: a ragged row then fails the file with its line number instead of fooling a sniffer into
reading the file another way. DuckDB reads in parallel, keeps file order and copes with quoted newlines.
"""

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb

SUFFIXES = (".csv", ".jsonl", ".parquet")
DELIMITERS = (",", ";", "\t", "|")


class FileFormatError(ValueError):
    """A file that cannot be loaded as a whole (wrong columns, unreadable format); names the file."""


@dataclass(frozen=True)
class FileSource:
    sql: str  # a FROM-clause item whose columns are the file's, all text
    columns: list[str]  # the canonical columns, as select expressions (NULL for absent optional ones)
    first_line: int  # the line number of the first data row


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
    return FileFormatError(f"{path.name}: {' '.join(kept) or 'not a readable file'}")


def _literal(text: object) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _varchar_columns(names: list[str]) -> str:
    return "{" + ", ".join(f"{_literal(n)}: 'VARCHAR'" for n in names) + "}"


def _csv_source(path: Path) -> tuple[str, list[str]]:
    with path.open("rb") as handle:
        first = handle.readline()
    try:
        header_line = first.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise FileFormatError(f"{path.name}: header is not UTF-8 text (byte {error.start}); "
                              "re-export the file as UTF-8") from None
    delimiter = max(DELIMITERS, key=header_line.count)
    names = next(csv.reader([header_line], delimiter=delimiter))
    sql = (f"read_csv({_literal(path)}, auto_detect = false, header = true, delim = {_literal(delimiter)}, "
           f"quote = '\"', escape = '\"', columns = {_varchar_columns(names)})")
    return sql, names


def _names(conn: duckdb.DuckDBPyConnection, source: str) -> list[str]:
    return [row[0] for row in conn.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]


def open_source(
    conn: duckdb.DuckDBPyConnection, path: Path, required: list[str], optional: tuple[str, ...] = ()
) -> FileSource:
    """Describe a landed file as a source of the canonical columns, or raise FileFormatError naming it."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise FileFormatError(f"{path.name}: unsupported file type; use one of {', '.join(SUFFIXES)}")
    if path.stat().st_size == 0:
        raise FileFormatError(f"{path.name}: the file is empty; expected a header row")
    try:
        if suffix == ".csv":
            (sql, names), first_line = _csv_source(path), 2
        elif suffix == ".jsonl":
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
    missing = [name for name in required if name not in names]
    if missing:
        raise FileFormatError(f"{path.name}: missing required columns {', '.join(missing)}")
    columns = [f"CAST({name} AS VARCHAR) AS {name}" for name in required]
    columns += [f"CAST({name} AS VARCHAR) AS {name}" if name in names else f"CAST(NULL AS VARCHAR) AS {name}"
                for name in optional]
    return FileSource(sql, columns, first_line)
