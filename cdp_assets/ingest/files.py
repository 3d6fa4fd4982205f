"""CRM extracts (CSV, JSONL, Parquet) as DuckDB sources of text columns.

Everything is read as text so that validation, not the reader's type guessing, decides what a value
means, and so the original value can be kept verbatim when a row is quarantined. DuckDB's CSV reader
sniffs the delimiter and quoting, copes with a byte-order mark and quoted newlines, and keeps file order.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb

SUFFIXES = (".csv", ".jsonl", ".parquet")


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
    """DuckDB's reader error without the "Original Line" it quotes: that line is personal data."""
    message = str(getattr(error, "orig", None) or error)
    kept = []
    for line in message.splitlines():
        if not line.strip():
            break
        if not line.startswith("Original Line"):
            kept.append(line.strip())
    return FileFormatError(f"{path.name}: {' '.join(kept) or 'not a readable file'}")


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


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
            sql, first_line = f"read_csv({_literal(path)}, header = true, all_varchar = true)", 2
            names = _names(conn, sql)
        elif suffix == ".jsonl":
            # Keys first, then every key read as text, so no value is reformatted by type detection.
            names = _names(conn, f"read_json({_literal(path)}, format = 'newline_delimited')")
            columns = ", ".join(f"'{n}': 'VARCHAR'" for n in names)
            sql, first_line = f"read_json({_literal(path)}, format = 'newline_delimited', columns = {{{columns}}})", 1
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
