"""Column mappings from `cdp_assets/config/crm_mappings.yaml`: real CRM exports onto the canonical columns.

A mapping names the entity its files hold, the file-name patterns it applies to, and for each canonical
column the export's header (with an optional value map or separator). It is validated on load, with
errors that name the file and the field, so a typo never reaches a run.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cdp_assets.settings import ConfigError, one_of, reject_unknown

MAPPINGS_YAML = Path(__file__).resolve().parent.parent / "config" / "crm_mappings.yaml"
CONTACT_COLUMNS = (
    "contact_id", "email", "phone", "first_name", "last_name", "city", "state", "postal_code", "country",
    "ga_client_id", "consent_marketing", "consent_ads_personalization", "updated_at", "deleted",
)
ORDER_COLUMNS = (
    "order_id", "contact_id", "email", "phone", "order_ts", "value", "currency", "status", "action_source",
    "client_ip", "user_agent", "fbc", "fbp", "gclid", "ttclid", "event_source_url", "product_ids",
)
CANONICAL = {"contacts": CONTACT_COLUMNS, "orders": ORDER_COLUMNS}
# Without these a row cannot be keyed, ordered or valued, so every mapping of the entity must provide them.
KEY_COLUMNS = {"contacts": ("contact_id", "updated_at"), "orders": ("order_id", "order_ts", "value", "currency")}
# Consent columns keep a blank as '' (not granted) and an absent column as NULL (consent unchanged).
CONSENT_COLUMNS = ("consent_marketing", "consent_ads_personalization")
ENCODINGS = ("utf-8", "latin-1", "utf-16")
DATA_SUFFIXES = (".csv", ".jsonl", ".parquet", ".csv.gz", ".jsonl.gz")


@dataclass(frozen=True)
class SourceColumn:
    column: str  # the header in the export
    values: dict[str, str] = field(default_factory=dict)  # lower-cased whole value -> replacement
    first_of: str | None = None


@dataclass(frozen=True)
class Mapping:
    name: str
    entity: str
    files: tuple[str, ...]
    columns: dict[str, SourceColumn]
    optional: frozenset[str]
    constants: dict[str, str]
    encoding: str = "utf-8"

    def matches(self, file_name: str) -> bool:
        stem = data_stem(file_name)
        return stem is not None and any(fnmatch.fnmatch(stem.lower(), p.lower()) for p in self.files)


def data_stem(file_name: str) -> str | None:
    """The name without its data suffix (`contacts_1` of `contacts_1.csv.gz`), or None for other files."""
    lower = file_name.lower()
    for suffix in sorted(DATA_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return file_name[: -len(suffix)]
    return None


def _source_column(where: str, spec: object) -> SourceColumn:
    if isinstance(spec, str) and spec.strip():
        return SourceColumn(spec)
    if not isinstance(spec, dict) or not isinstance(spec.get("column"), str) or not spec["column"].strip():
        raise ConfigError(f"{where} must be a header name or a mapping with a `column` header name")
    unknown = set(spec) - {"column", "values", "first_of"}
    if unknown:
        raise ConfigError(f"{where} has unknown settings {', '.join(sorted(unknown))}; "
                          "use column, values, first_of")
    values = spec.get("values") or {}
    if not isinstance(values, dict) or not all(isinstance(v, str | int | bool) for v in values.values()):
        raise ConfigError(f"{where}.values must map export values to replacement text")
    first_of = spec.get("first_of")
    if first_of is not None and (not isinstance(first_of, str) or not first_of):
        raise ConfigError(f"{where}.first_of must be a separator such as \";\"")
    return SourceColumn(spec["column"], {_yaml_text(k).lower(): _yaml_text(v) for k, v in values.items()}, first_of)


def _yaml_text(value: object) -> str:
    # YAML reads true/false/1 as booleans and numbers; exports hold them as text.
    return str(value).lower() if isinstance(value, bool) else str(value)


def _mapping(path: Path, name: str, data: object) -> Mapping:
    where = f"{path}: mappings.{name}"
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping with entity, files and columns")
    reject_unknown(where, data, ("entity", "files", "columns", "optional", "constants", "encoding"))
    entity = one_of(f"{where}.entity", data.get("entity"), list(CANONICAL))
    files = data.get("files")
    if not isinstance(files, list) or not files or not all(isinstance(f, str) and f for f in files):
        raise ConfigError(f"{where}.files must be a list of file-name patterns such as \"contacts*\"")
    columns = data.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise ConfigError(f"{where}.columns must map canonical columns to the export's headers")
    constants = {str(k): _yaml_text(v) for k, v in (data.get("constants") or {}).items()}
    for canonical in [*columns, *constants]:
        if canonical not in CANONICAL[entity]:
            raise ConfigError(f"{where}: {canonical!r} is not a canonical {entity} column; "
                              f"use one of {', '.join(CANONICAL[entity])}")
    both = set(columns) & set(constants)
    if both:
        raise ConfigError(f"{where}: {', '.join(sorted(both))} is both a column and a constant")
    missing = [c for c in KEY_COLUMNS[entity] if c not in columns and c not in constants]
    if missing:
        raise ConfigError(f"{where}.columns must map {', '.join(missing)}: every {entity} row needs it")
    optional = data.get("optional") or []
    if not isinstance(optional, list) or any(o not in columns for o in optional):
        raise ConfigError(f"{where}.optional must list columns mapped in {where}.columns")
    if any(o in KEY_COLUMNS[entity] for o in optional):
        raise ConfigError(f"{where}.optional cannot include {', '.join(KEY_COLUMNS[entity])}")
    encoding = one_of(f"{where}.encoding", data.get("encoding", "utf-8"), ENCODINGS)
    return Mapping(
        name=name, entity=entity, files=tuple(files),
        columns={c: _source_column(f"{where}.columns.{c}", spec) for c, spec in columns.items()},
        optional=frozenset(optional), constants=constants, encoding=encoding,
    )


def load_mappings(path: Path | None = None) -> list[Mapping]:
    path = path or MAPPINGS_YAML
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    mappings = data.get("mappings") if isinstance(data, dict) else None
    if not isinstance(mappings, dict) or not mappings:
        raise ConfigError(f"{path}: expected a top-level `mappings:` with at least one mapping")
    return [_mapping(path, name, spec) for name, spec in mappings.items()]


def mapping_for(mappings: list[Mapping], file_name: str) -> Mapping | None:
    """The first mapping whose patterns match the file, in the order the YAML lists them."""
    return next((m for m in mappings if m.matches(file_name)), None)
