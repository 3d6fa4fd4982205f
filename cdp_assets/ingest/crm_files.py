"""CRM file drops (`CDP_LANDING_DIR/crm/`) loaded into `raw`, with rejected rows in `quarantine`.

Each file is loaded once: a ledger keyed on the file's SHA-256 skips files already loaded, and a file
whose content changed is loaded again as a new version (staging keeps the latest row per key). A file
loads in one transaction, so a crash never leaves half a file behind.
"""


from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pyarrow as pa

from cdp_assets.ingest.files import SUFFIXES, FileFormatError, file_sha256, read_batches
from cdp_assets.ingest.validation import Validated, validate_contacts, validate_orders
from cdp_assets.resources.state import StateTable
from cdp_assets.resources.warehouse import WarehouseResource
from cdp_assets.sample_data import CONTACT_COLUMNS, ORDER_COLUMNS

LEDGER = StateTable(
    "raw.crm_file_ledger",
    "CREATE TABLE raw.crm_file_ledger (entity VARCHAR, file_name VARCHAR, file_sha256 VARCHAR, "
    "rows_read BIGINT, rows_loaded BIGINT, rows_quarantined BIGINT, loaded_at TIMESTAMP, "
    "PRIMARY KEY (entity, file_sha256))",
)


class LandingZone(dg.ConfigurableResource):
    """Where CRM and analytics files land (`CDP_LANDING_DIR`); CRM extracts sit in `crm/` below it."""

    path: str

    def crm_files(self, prefix: str) -> list[Path]:
        folder = Path(self.path) / "crm"
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir()
                      if p.is_file() and p.name.startswith(prefix) and p.suffix.lower() in SUFFIXES)


@dataclass(frozen=True)
class CrmEntity:
    name: str
    columns: list[str]
    optional: tuple[str, ...]
    typed: dict[str, str]  # columns validation adds, with their SQL type
    validate: Callable[[pa.RecordBatch, datetime], Validated]
    description: str

    @property
    def raw_table(self) -> StateTable:
        cols = ", ".join(f"{c} VARCHAR" for c in [*self.columns, *self.optional])
        typed = ", ".join(f"{c} {t}" for c, t in self.typed.items())
        return StateTable(
            f"raw.crm_{self.name}",
            f"CREATE TABLE raw.crm_{self.name} ({cols}, {typed}, _line_number BIGINT, _source VARCHAR, "
            "_file_sha256 VARCHAR, _loaded_at TIMESTAMP)",
        )

    @property
    def quarantine_table(self) -> StateTable:
        cols = ", ".join(f"{c} VARCHAR" for c in [*self.columns, *self.optional])
        return StateTable(
            f"quarantine.crm_{self.name}",
            f"CREATE TABLE quarantine.crm_{self.name} ({cols}, source_file VARCHAR, line_number BIGINT, "
            "reason VARCHAR, file_sha256 VARCHAR, quarantined_at TIMESTAMP)",
        )


CONTACTS = CrmEntity(
    name="contacts",
    columns=[c for c in CONTACT_COLUMNS if c != "deleted"],
    optional=("deleted",),
    typed={"_updated_at": "TIMESTAMP"},
    validate=validate_contacts,
    description="CRM contacts as landed from contacts*.csv|jsonl|parquet drops, one row per file line "
                "that passed validation.",
)
ORDERS = CrmEntity(
    name="orders",
    columns=ORDER_COLUMNS,
    optional=(),
    typed={"_order_ts": "TIMESTAMP"},
    validate=validate_orders,
    description="CRM orders as landed from orders*.csv|jsonl|parquet drops, one row per file line "
                "that passed validation.",
)


def _with_constants(table: pa.Table, **values: object) -> pa.Table:
    for name, value in values.items():
        kind = pa.timestamp("s") if isinstance(value, datetime) else pa.string()
        table = table.append_column(name, pa.array([value] * table.num_rows, kind))
    return table


def _load_file(
    warehouse: WarehouseResource, entity: CrmEntity, path: Path, sha: str, now: datetime
) -> dict[str, int]:
    loaded_at = now.astimezone(UTC).replace(tzinfo=None)
    counts = {"read": 0, "loaded": 0, "quarantined": 0}
    with warehouse.begin() as conn:
        for batch in read_batches(path, entity.columns, entity.optional):
            result = entity.validate(batch, now)
            counts["read"] += batch.num_rows
            if result.accepted.num_rows:
                accepted = _with_constants(result.accepted, _source=path.name, _file_sha256=sha, _loaded_at=loaded_at)
                warehouse.append_arrow(conn, entity.raw_table.name, accepted)
                counts["loaded"] += result.accepted.num_rows
            if result.rejected.num_rows:
                rejected = result.rejected.rename_columns(
                    [("line_number" if n == "_line_number" else n) for n in result.rejected.column_names])
                rejected = _with_constants(rejected, source_file=path.name, file_sha256=sha, quarantined_at=loaded_at)
                warehouse.append_arrow(conn, entity.quarantine_table.name, rejected)
                counts["quarantined"] += result.rejected.num_rows
        warehouse.run(
            conn,
            "INSERT INTO raw.crm_file_ledger VALUES (:entity, :name, :sha, :read, :loaded, :quarantined, :at)",
            {"entity": entity.name, "name": path.name, "sha": sha, "read": counts["read"],
             "loaded": counts["loaded"], "quarantined": counts["quarantined"], "at": loaded_at},
        )
    return counts


def _describe(error: Exception) -> str:
    """The error without the row text Arrow quotes after its first colon: that text is personal data."""
    if isinstance(error, FileFormatError):
        return str(error)
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text (byte {error.start}); re-export the file as UTF-8"
    return str(error).split(":", 1)[0]


def crm_file_asset(entity: CrmEntity, dialect: str) -> dg.AssetsDefinition:
    readable = dg.AssetCheckSpec(f"crm_{entity.name}_files_are_readable", asset=["raw", f"crm_{entity.name}"],
                                 description="Every landed file could be read with the canonical columns.")

    @dg.asset(
        key=["raw", f"crm_{entity.name}"],
        group_name="raw",
        kinds={"python", dialect},
        owners=["team:data-eng"],
        description=entity.description,
        check_specs=[readable],
        pool="warehouse",
    )
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
               landing: LandingZone) -> dg.MaterializeResult:
        now = datetime.now(UTC)
        with warehouse.begin() as conn:
            for table in (LEDGER, entity.raw_table, entity.quarantine_table):
                table.ensure(warehouse, conn)
            done = {r[0] for r in warehouse.run(
                conn, "SELECT file_sha256 FROM raw.crm_file_ledger WHERE entity = :e", {"e": entity.name})}
        totals = {"read": 0, "loaded": 0, "quarantined": 0}
        skipped, unreadable = [], []
        for path in landing.crm_files(entity.name):
            sha = file_sha256(path)
            if sha in done:
                skipped.append(path.name)
                continue
            try:
                counts = _load_file(warehouse, entity, path, sha, now)
            except (FileFormatError, pa.ArrowInvalid, UnicodeDecodeError) as error:
                problem = _describe(error)
                context.log.error(f"{path.name} was not loaded: {problem}")
                unreadable.append(f"{path.name}: {problem}")
                continue
            context.log.info(f"{path.name}: {counts['loaded']} rows loaded, {counts['quarantined']} quarantined")
            done.add(sha)
            for k in totals:
                totals[k] += counts[k]
        with warehouse.begin() as conn:
            rows = warehouse.row_count(conn, entity.raw_table.name)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "dagster/table_name": entity.raw_table.name,
                "rows_read": totals["read"],
                "rows_loaded": totals["loaded"],
                "rows_quarantined": totals["quarantined"],
                "files_skipped_already_loaded": len(skipped),
                "files_unreadable": len(unreadable),
            },
            check_results=[dg.AssetCheckResult(
                check_name=readable.name,
                passed=not unreadable,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"unreadable_files": dg.MetadataValue.json(unreadable)},
            )],
        )

    return _asset
