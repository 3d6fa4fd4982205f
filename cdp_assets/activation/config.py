"""Destination and audience settings from YAML files users edit, validated on load."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cdp_assets.activation.destinations.ads import AdPlatform
from cdp_assets.activation.destinations.registry import ad_platforms
from cdp_assets.audiences.config import AudienceSettings
from cdp_assets.settings import PURPOSES, ConfigError, one_of, reject_unknown
from cdp_assets.sql_models import SQL_ROOT

DESTINATIONS_YAML = Path(__file__).resolve().parent.parent / "config" / "destinations.yaml"
DEFAULT_STATUSES = ("completed", "paid", "fulfilled")
NEVER_CONVERSIONS = ("cancelled", "canceled", "refunded")
STATUS_SHAPE = re.compile(r"[a-z0-9_ -]+")
KEYS = ("platform", "enabled", "consent_purpose", "max_event_age_days", "event_name", "event_id", "env")


@dataclass(frozen=True)
class Destination:
    name: str
    platform: str
    enabled: bool
    consent_purpose: str | None
    max_event_age_days: int | None
    event_name: str | None = None
    event_id: str = "{order_id}"  # the template the site's pixel uses for its eventID
    env: dict[str, str] = field(default_factory=dict)  # variable -> the variable this account reads instead

    @property
    def ad_platform(self) -> AdPlatform:
        """What `platform:` names, as its destination folder declares it."""
        return ad_platforms()[self.platform]

    def setting(self, variable: str) -> str | None:
        """The value of a documented variable for this account (`env:` in the YAML renames it)."""
        return os.environ.get(self.env.get(variable, variable)) or None

    def variable(self, name: str) -> str:
        return self.env.get(name, name)


@dataclass(frozen=True)
class AudienceSync:
    audience: str
    destination: str
    audience_id: str | None
    sync_mode: str = "add_remove"


def _mapping(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def _event_id_template(where: str, template: object) -> str:
    if not isinstance(template, str):
        raise ConfigError(f"{where}.event_id must be a template such as '{{order_id}}'")
    try:
        template.format(order_id="o", contact_id="c")
    except (KeyError, IndexError, ValueError):
        raise ConfigError(f"{where}.event_id may use only {{order_id}} and {{contact_id}}") from None
    return template


def _destination(path: Path, name: str, settings: object) -> Destination:
    where = f"{path}: destinations.{name}"
    if not isinstance(settings, dict):
        raise ConfigError(f"{where} must be a mapping")
    reject_unknown(where, settings, KEYS)
    platforms = ad_platforms()
    platform = one_of(f"{where}.platform", settings.get("platform"), tuple(platforms))
    declared = platforms[platform]
    events = declared.strategy == "events"
    purpose = settings.get("consent_purpose")
    if purpose is not None:
        one_of(f"{where}.consent_purpose", purpose, PURPOSES)
    age = settings.get("max_event_age_days", declared.max_event_age_days)
    if events and (not isinstance(age, int) or age < 1):
        raise ConfigError(f"{where}.max_event_age_days must be a whole number of days")
    env = settings.get("env") or {}
    if not isinstance(env, dict) or any(k not in declared.variables for k in env):
        raise ConfigError(f"{where}.env may rename only this platform's variables: {', '.join(declared.variables)}")
    return Destination(name, platform, bool(settings.get("enabled", False)), purpose, age if events else None,
                       str(settings.get("event_name") or declared.event_name) if events else None,
                       _event_id_template(where, settings.get("event_id", "{order_id}")),
                       {str(k): str(v) for k, v in env.items()})


def load_destinations(path: Path = DESTINATIONS_YAML) -> dict[str, Destination]:
    entries = _mapping(path).get("destinations")
    if not isinstance(entries, dict):
        raise ConfigError(f"{path}: 'destinations' must map destination names to their settings")
    return {name: _destination(path, name, settings) for name, settings in entries.items()}


def conversion_statuses(path: Path = DESTINATIONS_YAML) -> tuple[str, ...]:
    """Order statuses that count as a conversion (`conversions.statuses`); cancelled or refunded never do."""
    section = _mapping(path).get("conversions") or {}
    statuses = section.get("statuses", list(DEFAULT_STATUSES)) if isinstance(section, dict) else None
    if not isinstance(statuses, list) or not statuses or not all(isinstance(s, str) for s in statuses):
        raise ConfigError(f"{path}: conversions.statuses must list order statuses, such as {list(DEFAULT_STATUSES)}")
    if not all(STATUS_SHAPE.fullmatch(s.strip().lower()) for s in statuses):
        raise ConfigError(f"{path}: conversions.statuses may hold letters, digits, spaces, '-' and '_' only")
    refused = [s for s in statuses if s.strip().lower() in NEVER_CONVERSIONS]
    if refused:
        raise ConfigError(f"{path}: conversions.statuses lists {', '.join(refused)}; a cancelled or refunded "
                          "order is never a conversion")
    return tuple(s.strip().lower() for s in statuses)


def load_audience_syncs(
    destinations: dict[str, Destination], audiences: dict[str, AudienceSettings]
) -> list[AudienceSync]:
    """Audience -> destination pairs from each audience's YAML; every destination named must be an audience one."""
    syncs = []
    for name, audience in sorted(audiences.items()):
        for destination, audience_id in audience.destinations.items():
            where = SQL_ROOT / "audiences" / (name + ".yaml")
            if destination not in destinations:
                raise ConfigError(f"{where}: destinations.{destination} is not in {DESTINATIONS_YAML.name}")
            if destinations[destination].ad_platform.strategy != "audiences":
                raise ConfigError(f"{where}: destinations.{destination} takes conversion events, not audiences")
            syncs.append(AudienceSync(name, destination, audience_id, audience.sync_mode))
    return syncs
