"""The landing folder (`CDP_LANDING_DIR`) where CRM extracts and analytics files are dropped."""

from pathlib import Path

import dagster as dg

from cdp_assets.ingest.mappings import data_stem


class LandingZone(dg.ConfigurableResource):
    """Where CRM and analytics files land (`CDP_LANDING_DIR`); CRM extracts sit in `crm/` below it."""

    path: str

    @property
    def ga4_dir(self) -> Path:
        """The GA4 sample `cdp-assets generate` writes, read when GA4_PROPERTY_ID is not set."""
        return Path(self.path) / "ga4"

    @property
    def crm_dir(self) -> Path:
        return Path(self.path) / "crm"

    def crm_files(self) -> list[Path]:
        """Every data file in `crm/` (CSV, JSONL, Parquet, gzipped CSV or JSONL), in name order."""
        return [p for p in self._crm_entries() if data_stem(p.name) is not None]

    def unsupported_files(self) -> list[Path]:
        """Files in `crm/` that no reader accepts (`contacts_export.txt`), in name order; hidden files
        (`.DS_Store`, an editor's swap file) are not drops and are left out."""
        return [p for p in self._crm_entries() if data_stem(p.name) is None and not p.name.startswith(".")]

    def _crm_entries(self) -> list[Path]:
        if not self.crm_dir.is_dir():
            return []
        return sorted(p for p in self.crm_dir.iterdir() if p.is_file())

    def crm_file_states(self) -> dict[str, list[int]]:
        """Each CRM data file's [size, modification time in ns]: what the sensor and the loaders compare."""
        return {path.name: [path.stat().st_size, path.stat().st_mtime_ns] for path in self.crm_files()}
