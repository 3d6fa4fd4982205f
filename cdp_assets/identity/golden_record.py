"""Golden-record rules from `cdp_assets/config/golden_record.yaml`, as SQL for `core/unified_profiles.sql`.

Each field's rule renders as the template variable `{{ golden_<field> }}`: the ORDER BY terms that put
the record to take the field from first (source priority, then recency).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from cdp_assets.identity.config import load_identity_config
from cdp_assets.settings import ConfigError

GOLDEN_YAML = Path(__file__).resolve().parent.parent / "config" / "golden_record.yaml"
FIELDS = ("email", "phone_e164", "first_name", "last_name", "city", "state", "postal_code", "country")
PICKS = {"latest": "DESC", "earliest": "ASC"}


def _order_by(path: Path, where: str, rule: object, known: set[str]) -> str:
    if not isinstance(rule, dict):
        raise ConfigError(f"{path}: {where} must be a mapping with sources and pick")
    sources, pick = rule.get("sources"), rule.get("pick", "latest")
    if not isinstance(sources, list) or not sources or any(s not in known for s in sources):
        raise ConfigError(f"{path}: {where}.sources must list identity sources ({', '.join(sorted(known))})")
    if pick not in PICKS:
        raise ConfigError(f"{path}: {where}.pick must be latest or earliest")
    ranks = " ".join(f"WHEN '{source}' THEN {rank}" for rank, source in enumerate(sources))
    return f"CASE record_type {ranks} ELSE {len(sources)} END, observed_at {PICKS[pick]}"


def golden_record_variables(path: Path = GOLDEN_YAML) -> dict[str, str]:
    """`golden_<field>` -> ORDER BY terms, for every field of the golden record."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    known = {s.name for s in load_identity_config().sources}
    fields = data.get("fields") or {}
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ConfigError(f"{path}: unknown fields {', '.join(sorted(unknown))}; known: {', '.join(FIELDS)}")
    default = data.get("default", {"sources": sorted(known), "pick": "latest"})
    return {f"golden_{field}": _order_by(path, f"fields.{field}" if field in fields else "default",
                                         fields.get(field, default), known) for field in FIELDS}
