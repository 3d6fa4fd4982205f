"""Every destination folder and every sync YAML, checked against the project's SQL models: what definitions
build assets from and what the command line previews."""

from __future__ import annotations

from collections.abc import Iterable

from cdp_assets.activation.destinations.base import RecordsDestination
from cdp_assets.activation.destinations.registry import discover
from cdp_assets.activation.records.config import Sync, load_syncs
from cdp_assets.sql_models import SqlModel, output_columns


def load_catalog(models: Iterable[SqlModel]) -> tuple[dict[str, RecordsDestination], list[Sync]]:
    models = list(models)
    destinations = discover()
    audiences = tuple(sorted(m.key.path[-1] for m in models if m.key.path[0] == "audiences"))
    return destinations, load_syncs(destinations, {m.table: output_columns(m) for m in models}, audiences)
