"""Destinations are folders: each package under `cdp_assets/activation/destinations/` (and under every folder
named in `CDP_DESTINATION_DIRS`, separated like PATH) whose `__init__.py` declares `DESTINATION` (a records
destination) or `PLATFORMS` (ad platforms). Every table of them the rest of the code reads is derived here."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from cdp_assets.activation.destinations.ads import STRATEGIES, AdPlatform
from cdp_assets.activation.destinations.base import RecordsDestination
from cdp_assets.settings import ConfigError

if TYPE_CHECKING:
    from cdp_assets.privacy.hashing import HashingRules

BUILT_IN = Path(__file__).resolve().parent


def _module(folder: Path, module_name: str) -> ModuleType | None:
    if module_name in sys.modules:
        return sys.modules[module_name]
    if folder.parent == BUILT_IN:
        return importlib.import_module(module_name)
    spec = importlib.util.spec_from_file_location(module_name, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def destination_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("CDP_DESTINATION_DIRS", "").split(os.pathsep) if p]
    return [BUILT_IN, *extra]


def _folders(folders: Iterable[Path] | None) -> Iterator[tuple[Path, ModuleType]]:
    for root in folders or destination_dirs():
        if not root.is_dir():
            raise ConfigError(f"{root}: CDP_DESTINATION_DIRS names a folder that does not exist")
        for folder in sorted(p for p in root.iterdir() if (p / "__init__.py").is_file()):
            prefix = "cdp_assets.activation.destinations" if root == BUILT_IN else f"cdp_destinations_{abs(hash(root))}"
            module = _module(folder, f"{prefix}.{folder.name}")
            if module is not None:
                yield folder, module


def _add(found: dict[str, Any], declared: Any, what: str) -> None:
    if declared.name in found:
        raise ConfigError(f"{declared.folder}: {what} named {declared.name!r} is already defined in "
                          f"{found[declared.name].folder}")
    found[declared.name] = declared


def _records(folder: Path, module: ModuleType) -> RecordsDestination | None:
    declared = getattr(module, "DESTINATION", None)
    if declared is None:
        return None
    if not isinstance(declared, RecordsDestination):
        raise ConfigError(f"{folder}/__init__.py: DESTINATION must be a RecordsDestination")
    if declared.name != folder.name:
        raise ConfigError(f"{folder}/__init__.py: DESTINATION.name is {declared.name!r}; it must be the "
                          f"folder's name, {folder.name!r}")
    return replace(declared, folder=str(folder))


def _platforms(folder: Path, module: ModuleType) -> list[AdPlatform]:
    declared = getattr(module, "PLATFORMS", ())
    if not isinstance(declared, tuple) or not all(isinstance(p, AdPlatform) for p in declared):
        raise ConfigError(f"{folder}/__init__.py: PLATFORMS must be a tuple of AdPlatform")
    for platform in declared:
        if platform.strategy not in STRATEGIES:
            raise ConfigError(f"{folder}/__init__.py: {platform.name}.strategy must be one of {', '.join(STRATEGIES)}")
        if platform.strategy == "events" and not (platform.event_name and platform.max_event_age_days):
            raise ConfigError(f"{folder}/__init__.py: {platform.name} takes events, so it needs a default "
                              "event_name and max_event_age_days")
    return [replace(p, folder=str(folder)) for p in declared]


def discover(folders: Iterable[Path] | None = None) -> dict[str, RecordsDestination]:
    """Every records destination folder's declaration, by name."""
    found: dict[str, RecordsDestination] = {}
    for folder, module in _folders(folders):
        declared = _records(folder, module)
        if declared is not None:
            _add(found, declared, "a destination")
    return found


def ad_platforms(folders: Iterable[Path] | None = None) -> dict[str, AdPlatform]:
    """Every ad platform the destination folders declare, by the name destinations.yaml gives as `platform:`."""
    found: dict[str, AdPlatform] = {}
    for folder, module in _folders(folders):
        for platform in _platforms(folder, module):
            _add(found, platform, "an ad platform")
    return found


def hashing_rules() -> dict[str, HashingRules]:
    """Every ad platform's hashing rules, by the name `prepare` is called with; one name, one set of rules."""
    found: dict[str, HashingRules] = {}
    for platform in ad_platforms().values():
        if found.setdefault(platform.hashing.name, platform.hashing) != platform.hashing:
            raise ConfigError(f"{platform.folder}: hashing rules named {platform.hashing.name!r} are already "
                              "declared, differently, by another ad platform")
    return found
