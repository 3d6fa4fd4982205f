"""Destination and audience settings from YAML files users edit, validated on load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from cdp_assets.audiences.config import AudienceSettings
from cdp_assets.settings import PURPOSES, ConfigError
from cdp_assets.sql_models import SQL_ROOT

DESTINATIONS_YAML = Path(__file__).resolve().parent.parent / "config" / "destinations.yaml"
PLATFORMS = ("meta_capi", "meta_custom_audiences")


@dataclass(frozen=True)
class Destination:
    name: str
    platform: str
    enabled: bool
    consent_purpose: str | None
    max_event_age_days: int | None


@dataclass(frozen=True)
class AudienceSync:
    audience: str
    destination: str
    audience_id: str | None


def _mapping(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def load_destinations(path: Path = DESTINATIONS_YAML) -> dict[str, Destination]:
    entries = _mapping(path).get("destinations")
    if not isinstance(entries, dict):
        raise ConfigError(f"{path}: 'destinations' must map destination names to their settings")
    result = {}
    for name, settings in entries.items():
        where = f"{path}: destinations.{name}"
        if not isinstance(settings, dict):
            raise ConfigError(f"{where} must be a mapping")
        platform = settings.get("platform")
        if platform not in PLATFORMS:
            raise ConfigError(f"{where}.platform must be one of {', '.join(PLATFORMS)}, not {platform!r}")
        purpose = settings.get("consent_purpose")
        if purpose is not None and purpose not in PURPOSES:
            raise ConfigError(f"{where}.consent_purpose must be one of {', '.join(PURPOSES)}")
        age = settings.get("max_event_age_days")
        if age is not None and (not isinstance(age, int) or age < 1):
            raise ConfigError(f"{where}.max_event_age_days must be a whole number of days")
        result[name] = Destination(name, platform, bool(settings.get("enabled", False)), purpose, age)
    return result


def load_audience_syncs(
    destinations: dict[str, Destination], audiences: dict[str, AudienceSettings]
) -> list[AudienceSync]:
    """Audience -> destination pairs from each audience's YAML; every destination named must exist."""
    syncs = []
    for name, audience in sorted(audiences.items()):
        for destination, audience_id in audience.destinations.items():
            if destination not in destinations:
                raise ConfigError(f"{SQL_ROOT / 'audiences' / (name + '.yaml')}: destinations.{destination} is not "
                                  f"in {DESTINATIONS_YAML.name}")
            syncs.append(AudienceSync(name, destination, audience_id))
    return syncs
