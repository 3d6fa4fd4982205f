"""Identity settings from `cdp_assets/config/identity.yaml`, validated on load.

Sources, identifier types and guards are data: a new identifier type is an entry under
`identifier_types` and a column under a source's `identifiers`, never code.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from cdp_assets.settings import ConfigError, one_of, reject_unknown

IDENTITY_YAML = Path(__file__).resolve().parent.parent / "config" / "identity.yaml"
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
TABLE = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
NORMALIZERS = ("none", "trim", "lowercase")
ENGINES = ("auto", "native", "sql")


@dataclass(frozen=True)
class IdentifierType:
    name: str
    priority: int  # 0 is the highest
    normalize: str
    max_records: int | None
    max_per_profile: int | None


@dataclass(frozen=True)
class Source:
    name: str
    table: str
    key: str
    identifiers: dict[str, str]  # identifier type -> column
    observed_at: str | None
    loaded_at: str | None
    degree_key: str | None


@dataclass(frozen=True)
class IdentityConfig:
    sources: tuple[Source, ...]
    types: tuple[IdentifierType, ...]
    blocked_exact: tuple[str, ...]
    blocked_patterns: tuple[str, ...]
    max_profile_records: int
    engine: str = "auto"
    full_run_above_changed_share: float = 0.2

    def type(self, name: str) -> IdentifierType:
        return next(t for t in self.types if t.name == name)

    @property
    def fingerprint(self) -> str:
        """Changes whenever a setting that shapes the graph changes; an incremental run then runs in full."""
        return hashlib.sha256(repr(replace(self, engine="", full_run_above_changed_share=0)).encode()).hexdigest()

    def without_guards(self) -> IdentityConfig:
        """The same sources and types with every guard off: plain connected components (the Splink oracle)."""
        types = tuple(replace(t, max_records=None, max_per_profile=None) for t in self.types)
        return replace(self, types=types, blocked_exact=(), blocked_patterns=())


def _name(where: str, value: object) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        raise ConfigError(f"{where}: {value!r} is not a lower_snake_case name")
    return value


def _limit(where: str, value: object, least: int) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ConfigError(f"{where} must be a whole number of at least {least}, or left out for no limit")
    return value


def _types(path: Path, data: object) -> tuple[IdentifierType, ...]:
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{path}: identifier_types must map each type's name to its settings, highest priority "
                          "first")
    types = []
    for priority, (name, settings) in enumerate(data.items()):
        where = f"{path}: identifier_types.{name}"
        _name(where, name)
        settings = settings or {}
        reject_unknown(where, settings, ("normalize", "max_records", "max_per_profile"))
        normalize = one_of(f"{where}.normalize", settings.get("normalize", "trim"), NORMALIZERS)
        types.append(IdentifierType(name, priority, normalize, _limit(f"{where}.max_records", settings.get(
            "max_records"), 2), _limit(f"{where}.max_per_profile", settings.get("max_per_profile"), 1)))
    return tuple(types)


def _sources(path: Path, data: object, types: tuple[IdentifierType, ...]) -> tuple[Source, ...]:
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{path}: sources must map each record source's name to its table and identifiers")
    known = {t.name for t in types}
    sources = []
    for name, settings in data.items():
        where = f"{path}: sources.{name}"
        _name(where, name)
        if not isinstance(settings, dict):
            raise ConfigError(f"{where} must be a mapping with table, key and identifiers")
        reject_unknown(where, settings, ("table", "key", "identifiers", "observed_at", "loaded_at", "degree_key"))
        table = settings.get("table")
        if not isinstance(table, str) or not TABLE.match(table):
            raise ConfigError(f"{where}.table must be written schema.table")
        identifiers = settings.get("identifiers")
        if not isinstance(identifiers, dict) or not identifiers:
            raise ConfigError(f"{where}.identifiers must map identifier types to columns")
        for id_type, column in identifiers.items():
            if id_type not in known:
                raise ConfigError(f"{where}.identifiers.{id_type} is not declared under identifier_types "
                                  f"(declared: {', '.join(sorted(known))})")
            _name(f"{where}.identifiers.{id_type}", column)
        columns = {k: settings.get(k) for k in ("key", "observed_at", "loaded_at", "degree_key")}
        for setting, column in columns.items():
            if column is not None or setting == "key":
                _name(f"{where}.{setting}", column)
        if columns["degree_key"] is not None and columns["degree_key"] not in identifiers:
            raise ConfigError(f"{where}.degree_key names an identifier type the source maps "
                              f"({', '.join(identifiers)}), not {columns['degree_key']!r}")
        sources.append(Source(name, table, columns["key"], dict(identifiers), columns["observed_at"],
                              columns["loaded_at"], columns["degree_key"]))
    return tuple(sources)


def load_identity_config(path: Path = IDENTITY_YAML) -> IdentityConfig:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    types = _types(path, data.get("identifier_types"))
    sources = _sources(path, data.get("sources"), types)
    blocked = data.get("blocked_values") or {}
    exact = tuple(str(v).strip().lower() for v in blocked.get("exact") or [])
    patterns = tuple(str(p) for p in blocked.get("patterns") or [])
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ConfigError(f"{path}: blocked_values.patterns has an invalid regex {pattern!r}: {error}") from None
    largest = _limit(f"{path}: max_profile_records", data.get("max_profile_records"), 2)
    if largest is None:
        raise ConfigError(f"{path}: max_profile_records is required (the over-merge alarm)")
    engine = one_of(f"{path}: engine", data.get("engine", "auto"), ENGINES)
    share = data.get("full_run_above_changed_share", 0.2)
    if not isinstance(share, int | float) or not 0 <= share <= 1:
        raise ConfigError(f"{path}: full_run_above_changed_share must be a number between 0 and 1")
    return IdentityConfig(sources, types, exact, patterns, largest, engine, float(share))
