"""A sync's whole snapshot as one file with its manifest: the eligible rows of its targets table, streamed
from the warehouse a page at a time into a CSV or Parquet writer, never held whole in memory.

Columns: the key's field, each mapped field's name and, when the sync sets `audiences.field`, one boolean
per audience. Parquet keeps types: `string`, `bool`, `date`, `datetime` (timestamp[us, UTC]; the
warehouse's naive timestamps are UTC) and `number` as the warehouse holds it (int64 for integer columns,
float64 for floating point, decimal(p, s) for decimals; decimal(38, 9) when the warehouse does not say,
such as PostgreSQL's unconstrained numeric). CSV holds each value exactly as the outbound safety check saw
it (`formatted()`): numbers never in exponent form, `true`/`false`, `YYYY-MM-DD`, ISO 8601 UTC timestamps
with milliseconds, and an empty cell for NULL. The key is written as text in both.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import IO, Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from cdp_assets.activation.destinations.base import formatted
from cdp_assets.activation.destinations.file_export import files
from cdp_assets.activation.records import sql
from cdp_assets.activation.records.config import Sync
from cdp_assets.resources.warehouse import WarehouseResource

PAGE = 5_000
INTEGERS = {"tinyint", "smallint", "integer", "bigint", "utinyint", "usmallint", "uinteger", "ubigint", "int",
            "int2", "int4", "int8"}
FLOATS = {"real", "float", "double", "double precision", "float4", "float8"}
UNSAID = pa.decimal128(38, 9)  # a number column whose warehouse type gives no precision


@dataclass(frozen=True)
class Column:
    name: str  # the output column
    source: str  # its column in the targets table
    type: str  # the field type the sync declares
    arrow: pa.DataType

    def text(self, raw: Any) -> str:
        """The CSV cell of a warehouse value: what the safety check saw."""
        return raw if self.source == "key_value" else formatted(raw, self.type)


def _converter(kind: pa.DataType) -> Callable[[Any], Any]:
    """Turns a warehouse value (never NULL) into the Parquet column's."""
    if pa.types.is_decimal(kind):
        quantum = Decimal(1).scaleb(-kind.scale)
        return lambda v: (v if isinstance(v, Decimal) else Decimal(str(v))).quantize(quantum)
    if pa.types.is_integer(kind):
        return int
    if pa.types.is_floating(kind):
        return float
    if pa.types.is_boolean(kind):
        return bool
    if pa.types.is_date(kind):
        return _date
    if pa.types.is_timestamp(kind):
        return _utc
    return lambda v: formatted(v, "string")


def _date(value: Any) -> Any:
    if isinstance(value, str):  # a text column the sync declares a date
        value = datetime.fromisoformat(value)
    return value.date() if isinstance(value, datetime) else value


def _utc(value: Any) -> Any:
    if isinstance(value, str):  # a text column the sync declares a datetime
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), UTC)
    return value


def _number_type(data_type: str, precision: int | None, scale: int | None) -> pa.DataType:
    kind = data_type.lower()
    if kind in INTEGERS:
        return pa.int64()
    if kind in FLOATS:
        return pa.float64()
    if kind in ("hugeint", "uhugeint"):
        return pa.decimal128(38, 0)
    if (kind.startswith("decimal") or kind == "numeric") and precision:
        return (pa.decimal128 if precision <= 38 else pa.decimal256)(int(precision), int(scale or 0))
    return UNSAID


def _arrow(kind: str, warehouse_type: tuple[str, int | None, int | None]) -> pa.DataType:
    return {"string": pa.string(), "bool": pa.bool_(), "date": pa.date32(),
            "datetime": pa.timestamp("us", tz="UTC")}.get(kind) or _number_type(*warehouse_type)


def columns(warehouse: WarehouseResource, conn: sa.Connection, sync: Sync) -> list[Column]:
    """The file's columns, in order, typed from the sync's fields and the targets table's columns."""
    schema, table = sql.targets_table(sync).split(".")
    types = {str(name): (str(kind), precision, scale) for name, kind, precision, scale in warehouse.run(
        conn, "SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns "
              "WHERE table_schema = :s AND table_name = :n", {"s": schema, "n": table}).fetchall()}
    fields = [Column(f.field, c, f.type, _arrow(f.type, types[c]))
              for f, c in zip(sync.all_fields, sql.sent_columns(sync), strict=True)]
    return [Column(sync.key.field, "key_value", "string", pa.string()), *fields]


def pages(warehouse: WarehouseResource, conn: sa.Connection, sync: Sync,
          wanted: Sequence[Column]) -> Iterator[Sequence[Sequence[Any]]]:
    """The eligible rows (valid keys only), ordered by key, a page at a time from one streamed query."""
    query = (f"SELECT {', '.join(c.source for c in wanted)} FROM {sql.targets_table(sync)} "
             "WHERE key_rows = 1 ORDER BY key_value")
    result = conn.execute(sa.text(warehouse.sql(query)),
                          execution_options={"stream_results": True, "max_row_buffer": PAGE})
    yield from result.partitions(PAGE)


def write_parquet(out: IO[bytes], wanted: Sequence[Column], rows: Iterator[Sequence[Sequence[Any]]]) -> int:
    schema = pa.schema([pa.field(c.name, c.arrow) for c in wanted])
    converters = [_converter(c.arrow) for c in wanted]
    written = 0
    with pq.ParquetWriter(out, schema) as writer:
        for page in rows:
            arrays = [pa.array([None if r[n] is None else convert(r[n]) for r in page], type=c.arrow)
                      for n, (c, convert) in enumerate(zip(wanted, converters, strict=True))]
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
            written += len(page)
    return written


def write_csv(out: IO[bytes], wanted: Sequence[Column], rows: Iterator[Sequence[Sequence[Any]]]) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    try:
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow([c.name for c in wanted])
        written = 0
        for page in rows:
            writer.writerows([c.text(r[n]) for n, c in enumerate(wanted)] for r in page)
            written += len(page)
    finally:
        text.detach()  # flushed; the caller closes the file itself
    return written


WRITERS = {"parquet": write_parquet, "csv": write_csv}


def manifest(sync: Sync, name: str, rows: int, digest: str, size: int, wanted: Sequence[Column],
             moment: datetime) -> bytes:
    fmt = sync.options["format"]
    described = [{"name": c.name, "type": c.type, **({"parquet_type": str(c.arrow)} if fmt == "parquet" else {})}
                 for c in wanted]
    return (json.dumps({"sync": sync.name, "file": name, "format": fmt, "rows": rows, "sha256": digest,
                        "bytes": size, "columns": described, "written_at": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "model": sync.model}, indent=2) + "\n").encode("utf-8")


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def write_snapshot(warehouse: WarehouseResource, sync: Sync, mode: str) -> dict[str, int]:
    """Write the sync's snapshot (live) or count what would be written (dry run: nothing is written)."""
    log = dg.get_dagster_logger()
    options, moment = sync.options, now()
    template = options["path"]
    if mode != "live":
        with warehouse.begin() as conn:
            rows = int(warehouse.scalar(conn, f"SELECT count(*) FROM {sql.targets_table(sync)} WHERE key_rows = 1"))
        log.info(f"{sync.name}: dry run, nothing written; {rows} rows would go to "
                 f"{files.shown(files.render(template, sync.name, moment))} as {options['format']}")
        return {"rows": rows}
    fs, where = files.folder(template, sync.name, moment)
    fs.makedirs(where, exist_ok=True)
    name = files.file_name(fs, where, sync.name, moment, options["format"])
    with warehouse.begin() as conn:
        wanted = columns(warehouse, conn, sync)
        with files.atomic(fs, where, name) as temporary:
            with fs.open(temporary, "wb") as out:
                rows = WRITERS[options["format"]](out, wanted, pages(warehouse, conn, sync, wanted))
            digest, size = files.sha256(fs, temporary)
    files.write_bytes(fs, where, name + files.MANIFEST, manifest(sync, name, rows, digest, size, wanted, moment))
    pruned = files.prune(template, sync.name, options["keep"])
    log.info(f"{sync.name}: wrote {rows} rows to {files.shown(where)}/{name} (sha256 {digest}); "
             f"{len(pruned)} past files removed, keeping {options['keep']}")
    return {"rows": rows, "sent": rows, "pruned": len(pruned)}
