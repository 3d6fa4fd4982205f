"""CRM file drops (`CDP_LANDING_DIR/crm/`) loaded into `raw`, with rejected rows and dropped fields in `quarantine`.

Each file is read with the first mapping of `crm_mappings.yaml` that matches its name, and loaded once:
a ledger keyed on the file's SHA-256 skips files already loaded, and a file whose content changed is
loaded again as a new version (staging keeps the latest row per key). A file loads in one transaction,
so a crash never leaves half a file behind. After loading, the people of every deletion request are
purged from raw and quarantine, so nothing of theirs reaches staging.
"""

from datetime import UTC, datetime

import dagster as dg

from cdp_assets.ingest.crm_entities import CrmEntity
from cdp_assets.ingest.crm_load import LEDGER, FileLoad, load_file
from cdp_assets.ingest.crm_sensor import SEEN_KEY
from cdp_assets.ingest.files import FileFormatError, file_sha256
from cdp_assets.ingest.landing import LandingZone
from cdp_assets.ingest.mappings import DATA_SUFFIXES, Mapping, mapping_for
from cdp_assets.ingest.phones import PHONE_NUMBERS
from cdp_assets.privacy.deletions import purge_deleted_people
from cdp_assets.privacy.requests import is_privacy_file
from cdp_assets.resources.warehouse import WarehouseResource
from cdp_assets.sources import not_configured


def _ensure_tables(warehouse: WarehouseResource, entity: CrmEntity) -> set[str]:
    """Create or migrate the entity's tables; returns the hashes of the files already loaded."""
    with warehouse.begin() as conn:
        # The phone cache first: migrating raw and quarantine reads it.
        for table in (LEDGER, PHONE_NUMBERS, entity.raw_table, entity.quarantine_table, entity.fields_table):
            table.ensure(warehouse, conn)
        return {r[0] for r in warehouse.run(
            conn, "SELECT file_sha256 FROM raw.crm_file_ledger WHERE entity = :e", {"e": entity.name})}


def crm_file_asset(entity: CrmEntity, dialect: str, mappings: list[Mapping],
                   deps: tuple[dg.AssetKey, ...] = ()) -> dg.AssetsDefinition:
    asset_key = ["raw", f"crm_{entity.name}"]
    readable = dg.AssetCheckSpec(
        f"crm_{entity.name}_files_are_readable", asset=asset_key,
        description="Every landed file could be read and has the columns its mapping requires. A failure does not "
                    "hold back the other files, but fails the run so the file is fixed.")
    known_columns = dg.AssetCheckSpec(
        f"crm_{entity.name}_files_have_only_mapped_columns", asset=asset_key,
        description="No landed file carries columns its mapping does not use (they are kept in `extra`).")

    @dg.asset(
        key=asset_key,
        group_name="raw",
        kinds={"python", dialect},
        owners=["team:data-eng"],
        description=entity.description,
        check_specs=[readable, known_columns],
        deps=list(deps),
        pool="warehouse",
    )
    def _asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
               landing: LandingZone) -> dg.MaterializeResult:
        now = datetime.now(UTC)
        done = _ensure_tables(warehouse, entity)
        totals, skipped, unreadable, extras = FileLoad(), [], [], {}
        # What the folder held when this load began: the sensor does not relaunch for files loaded here.
        seen = landing.crm_file_states()
        files = landing.crm_files()
        unmapped = [p.name for p in files if mapping_for(mappings, p.name) is None and not is_privacy_file(p.name)]
        for name in unmapped:
            context.log.warning(f"{name}: no mapping in crm_mappings.yaml matches this file name; not loaded")
        unsupported = [p.name for p in landing.unsupported_files()]
        for name in unsupported:
            context.log.warning(f"{name}: not a file type the loader reads; not loaded. Export it as one of "
                                f"{', '.join(DATA_SUFFIXES)}")
        mine = [(p, m) for p in files if (m := mapping_for(mappings, p.name)) and m.entity == entity.name]
        if not mine:
            context.log.warning(f"no {entity.name} files in {landing.crm_dir}")
        for path, mapping in mine:
            sha = file_sha256(path)
            if sha in done:
                skipped.append(path.name)
                continue
            try:
                counts = load_file(warehouse, entity, mapping, path, sha, now)
            except FileFormatError as error:
                context.log.error(f"not loaded: {error}")
                unreadable.append(str(error))
                continue
            context.log.info(f"{path.name} (mapping {mapping.name}): {counts.loaded} rows loaded, "
                             f"{counts.quarantined} quarantined ({counts.malformed} of them malformed lines), "
                             f"{counts.fields_quarantined} fields dropped, {counts.exact_duplicates} exact duplicates")
            if counts.extra_columns:
                extras[path.name] = counts.extra_columns
            done.add(sha)
            totals.add(counts)
        purged = purge_deleted_people(warehouse, entity.name)
        with warehouse.begin() as conn:
            warehouse.analyze(conn, entity.raw_table.name)
            rows = warehouse.row_count(conn, entity.raw_table.name)
            schema = warehouse.column_schema(conn, entity.raw_table.name)
        # Nothing ever loaded and nothing landed: CRM files are simply not set up yet, which is not a failure.
        source = "files" if done or mine else not_configured(f"drop {entity.name} extracts in {landing.crm_dir}")
        return dg.MaterializeResult(
            metadata={
                "source": source,
                "dagster/row_count": rows,
                "dagster/table_name": entity.raw_table.name,
                "dagster/column_schema": schema,
                "rows_read": totals.read,
                "rows_loaded": totals.loaded,
                "rows_quarantined": totals.quarantined,
                "rows_malformed": totals.malformed,
                "fields_quarantined": totals.fields_quarantined,
                "rows_exact_duplicates": totals.exact_duplicates,
                "phones_parsed": totals.phones_parsed,
                "rows_purged_for_deletion_requests": purged,
                "files_loaded": len(mine) - len(skipped) - len(unreadable),
                "files_skipped_already_loaded": len(skipped),
                "files_unreadable": len(unreadable),
                "files_without_mapping": len(unmapped),
                "files_unsupported_type": len(unsupported),
                SEEN_KEY: dg.MetadataValue.json(seen),
            },
            check_results=[
                dg.AssetCheckResult(check_name=readable.name, passed=not unreadable,
                                    severity=dg.AssetCheckSeverity.ERROR,
                                    metadata={"unreadable_files": dg.MetadataValue.json(unreadable)}),
                dg.AssetCheckResult(check_name=known_columns.name, passed=not extras,
                                    severity=dg.AssetCheckSeverity.WARN,
                                    metadata={"unmapped_columns_by_file": dg.MetadataValue.json(extras)}),
            ],
        )

    return _asset
