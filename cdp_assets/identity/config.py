"""Identity settings from `cdp_assets/config/identity.yaml`, validated on load."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from cdp_assets.settings import ConfigError

IDENTITY_YAML = Path(__file__).resolve().parent.parent / "config" / "identity.yaml"
SUPPORTED_TYPES = ("contact_id", "email", "phone", "ga_client_id")


@dataclass(frozen=True)
class IdentityConfig:
    identifier_types: tuple[str, ...]
    blocked_exact: tuple[str, ...]
    blocked_patterns: tuple[str, ...]
    max_records_per_identifier: int


def load_identity_config(path: Path = IDENTITY_YAML) -> IdentityConfig:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    types = data.get("identifier_types")
    if not isinstance(types, list) or any(t not in SUPPORTED_TYPES for t in types) or "contact_id" not in types:
        raise ConfigError(f"{path}: identifier_types must be a list drawn from {', '.join(SUPPORTED_TYPES)} "
                          "that includes contact_id (it links orders to their contact)")
    blocked = data.get("blocked_values") or {}
    exact = [str(v).lower() for v in blocked.get("exact") or []]
    patterns = [str(p) for p in blocked.get("patterns") or []]
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ConfigError(f"{path}: blocked_values.patterns has an invalid regex {pattern!r}: {error}") from None
    cap = data.get("max_records_per_identifier")
    if not isinstance(cap, int) or cap < 2:
        raise ConfigError(f"{path}: max_records_per_identifier must be a whole number of at least 2")
    return IdentityConfig(tuple(types), tuple(exact), tuple(patterns), cap)
