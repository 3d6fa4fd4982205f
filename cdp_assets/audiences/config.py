"""Audience settings: `<name>.yaml` beside each `dbt_like_sql/audiences/<name>.sql`, validated on load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from cdp_assets.settings import PURPOSES, ConfigError, one_of, reject_unknown

SYNC_MODES = ("add_remove", "replace")


@dataclass(frozen=True)
class AudienceSettings:
    name: str
    purpose: str  # the consent purpose a member must have granted
    sync_mode: str  # add_remove: send the changes; replace: the destination's replace session
    destinations: dict[str, str | None]  # destination -> the platform's audience id (None: a placeholder)


def load_audience_settings(sql_path: Path) -> AudienceSettings:
    """The settings of the audience defined by `sql_path`; its YAML must exist beside it."""
    path = sql_path.with_suffix(".yaml")
    if not path.exists():
        raise ConfigError(f"{sql_path}: an audience needs {path.name} beside it naming its destinations, "
                          "sync_mode and consent purpose")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    reject_unknown(str(path), data, ("purpose", "sync_mode", "destinations"))
    purpose = one_of(f"{path}: purpose", data.get("purpose", "marketing"), PURPOSES)
    mode = one_of(f"{path}: sync_mode", data.get("sync_mode", "add_remove"), SYNC_MODES)
    targets = data.get("destinations") or {}
    if not isinstance(targets, dict):
        raise ConfigError(f"{path}: destinations must map destination names to their options")
    destinations = {}
    for destination, options in targets.items():
        audience_id = (options or {}).get("audience_id")
        destinations[str(destination)] = str(audience_id) if audience_id else None
    return AudienceSettings(sql_path.stem, purpose, mode, destinations)
