"""A file export sync over `records_world`'s small warehouse, and readers for what it wrote."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from cdp_assets.activation.destinations.registry import discover
from cdp_assets.activation.records.config import Sync, parse_sync
from tests.destinations.records_world import COLUMNS

EXPORT_SYNC = {
    "destination": "file_export", "object": "file", "model": "core.unified_profiles",
    "key": {"column": "email", "field": "email"}, "consent_purpose": "marketing",
    "fields": {"profile_id": {"field": "profile_id"}, "first_name": {"field": "first_name"},
               "lifetime_value": {"field": "lifetime_value", "type": "number"},
               "order_count": {"field": "orders", "type": "number"},
               "last_order_at": {"field": "last_order_at", "type": "datetime"},
               "rfm_segment": {"field": "rfm_segment"}},
    "audiences": {"field": "in_{audience}"},
}


def make_export(tmp_path: Path, name: str = "crm_export", options: dict | None = None, **changes: object) -> Sync:
    """A file export of core.unified_profiles into `tmp_path/exports` (email in clear), as its YAML file."""
    settings = {**EXPORT_SYNC, **changes,
                "options": {"path": str(tmp_path / "exports"), "clear": ["email", "first_name"], **(options or {})}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return parse_sync(path, settings, discover(), {"core.unified_profiles": COLUMNS}, ("vip",))


def exported(folder: Path) -> list[str]:
    """The names in an export folder, hidden temporary files included."""
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in (".csv", ".parquet") and not p.name.startswith("."))


def manifest_of(data: Path) -> dict:
    return json.loads(data.with_name(data.name + ".manifest.json").read_text(encoding="utf-8"))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def parquet_rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def csv_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))
