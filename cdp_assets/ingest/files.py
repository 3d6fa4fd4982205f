"""Read CRM extracts (CSV, JSONL, Parquet) as streams of all-string Arrow batches with line numbers.

Everything is read as text so that validation, not the reader's type guessing, decides what a value
means, and so the original value can be kept verbatim when a row is quarantined.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

SUFFIXES = (".csv", ".jsonl", ".parquet")
BATCH_ROWS = 100_000


class FileFormatError(ValueError):
    """A file that cannot be loaded as a whole (wrong columns, unreadable format)."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _with_line_numbers(batches: Iterator[pa.RecordBatch], first_line: int) -> Iterator[pa.RecordBatch]:
    line = first_line
    for batch in batches:
        numbers = pa.array(range(line, line + batch.num_rows), pa.int64())
        line += batch.num_rows
        yield pa.RecordBatch.from_arrays([*batch.columns, numbers], [*batch.schema.names, "_line_number"])


def _csv_batches(path: Path) -> tuple[list[str], Iterator[pa.RecordBatch]]:
    with path.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise FileFormatError(f"{path.name}: the file is empty; expected a header row")
    reader = pa_csv.open_csv(
        path,
        read_options=pa_csv.ReadOptions(block_size=8 << 20),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            null_values=[""],
            strings_can_be_null=True,
        ),
    )
    return header, iter(reader)


def _jsonl_batches(path: Path, columns: list[str]) -> tuple[list[str], Iterator[pa.RecordBatch]]:
    def rows() -> Iterator[pa.RecordBatch]:
        chunk: list[dict] = []
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise FileFormatError(f"{path.name} line {number}: not valid JSON ({error.msg})") from None
                chunk.append({k: None if v in (None, "") else str(v) for k, v in record.items()})
                if len(chunk) == BATCH_ROWS:
                    yield pa.RecordBatch.from_pylist(chunk, schema=schema)
                    chunk = []
        if chunk:
            yield pa.RecordBatch.from_pylist(chunk, schema=schema)

    schema = pa.schema([(name, pa.string()) for name in columns])
    return columns, rows()


def _parquet_batches(path: Path) -> tuple[list[str], Iterator[pa.RecordBatch]]:
    source = pq.ParquetFile(path)
    names = source.schema_arrow.names
    target = pa.schema([(name, pa.string()) for name in names])

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in source.iter_batches(batch_size=BATCH_ROWS):
            yield batch.cast(target)

    return names, batches()


def read_batches(path: Path, required: list[str], optional: tuple[str, ...] = ()) -> Iterator[pa.RecordBatch]:
    """Batches holding the `required` then `optional` columns as strings, plus `_line_number`.

    Raises FileFormatError naming the file and the missing columns when a required column is absent;
    an absent optional column is all nulls. Columns beyond the canonical ones are not carried into raw.
    """
    suffix = path.suffix.lower()
    if suffix == ".csv":
        header, batches = _csv_batches(path)
        first_line = 2
    elif suffix == ".jsonl":
        header, batches = _jsonl_batches(path, [*required, *optional])
        first_line = 1
    elif suffix == ".parquet":
        header, batches = _parquet_batches(path)
        first_line = 1
    else:
        raise FileFormatError(f"{path.name}: unsupported file type; use one of {', '.join(SUFFIXES)}")
    missing = [name for name in required if name not in header]
    if missing:
        raise FileFormatError(f"{path.name}: missing required columns {', '.join(missing)}")
    columns = [*required, *optional]

    def selected() -> Iterator[pa.RecordBatch]:
        for batch in batches:
            arrays = [batch.column(name) if name in header else pa.nulls(batch.num_rows, pa.string())
                      for name in columns]
            yield pa.RecordBatch.from_arrays(arrays, columns)

    return _with_line_numbers(selected(), first_line)
