"""Destinations are folders: each package under `cdp_assets/activation/destinations/` (and under every folder
named in `CDP_DESTINATION_DIRS`, separated like PATH) that declares `DESTINATION` in its `__init__.py`."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from cdp_assets.activation.destinations.base import RecordsDestination
from cdp_assets.settings import ConfigError

BUILT_IN = Path(__file__).resolve().parent


def _load(folder: Path, module_name: str) -> RecordsDestination | None:
    if module_name in sys.modules:
        module = sys.modules[module_name]
    elif folder.parent == BUILT_IN:
        module = importlib.import_module(module_name)
    else:
        spec = importlib.util.spec_from_file_location(module_name, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])
        if spec is None or spec.loader is None:
            return None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    declared = getattr(module, "DESTINATION", None)
    if declared is None:
        return None
    if not isinstance(declared, RecordsDestination):
        raise ConfigError(f"{folder}/__init__.py: DESTINATION must be a RecordsDestination")
    if declared.name != folder.name:
        raise ConfigError(f"{folder}/__init__.py: DESTINATION.name is {declared.name!r}; it must be the "
                          f"folder's name, {folder.name!r}")
    return replace(declared, folder=str(folder))


def destination_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("CDP_DESTINATION_DIRS", "").split(os.pathsep) if p]
    return [BUILT_IN, *extra]


def discover(folders: Iterable[Path] | None = None) -> dict[str, RecordsDestination]:
    """Every destination folder's declaration, by name."""
    found: dict[str, RecordsDestination] = {}
    for root in folders or destination_dirs():
        if not root.is_dir():
            raise ConfigError(f"{root}: CDP_DESTINATION_DIRS names a folder that does not exist")
        for folder in sorted(p for p in root.iterdir() if (p / "__init__.py").is_file()):
            prefix = "cdp_assets.activation.destinations" if root == BUILT_IN else f"cdp_destinations_{abs(hash(root))}"
            declared = _load(folder, f"{prefix}.{folder.name}")
            if declared is None:
                continue
            if declared.name in found:
                raise ConfigError(f"{folder}: a destination named {declared.name!r} is already defined in "
                                  f"{found[declared.name].folder}")
            found[declared.name] = declared
    return found
