"""`cdp-assets preview NAME` and `cdp-assets sync NAME [--full-resync]`: look before a sync sends, and run one
sync now (a full resync sends every eligible record again, whatever the destination acknowledged)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import dagster as dg

from cdp_assets import settings
from cdp_assets.runs import execute, report

DAILY_JOB = "daily_job"


def _catalog(defs: dg.Definitions) -> tuple:
    from cdp_assets.activation.config import load_audience_syncs, load_destinations
    from cdp_assets.activation.records.catalog import load_catalog
    from cdp_assets.audiences.config import load_audience_settings
    from cdp_assets.sql_models import SQL_ROOT, load_models

    models = load_models(SQL_ROOT, external=defs.resolve_all_asset_keys())
    audiences = {m.key.path[-1]: load_audience_settings(m.path) for m in models if m.key.path[0] == "audiences"}
    destinations = {n: d for n, d in load_destinations().items() if d.enabled}
    record_destinations, syncs = load_catalog(models)
    return audiences, destinations, load_audience_syncs(destinations, audiences), record_destinations, syncs


def preview(args: argparse.Namespace) -> int:
    from cdp_assets.definitions import build_definitions
    from cdp_assets.preview import preview_audience, preview_sync

    args.prepare(settings.warehouse_url())
    defs = build_definitions()
    audiences, destinations, audience_syncs, record_destinations, syncs = _catalog(defs)
    by_name = {s.name: s for s in syncs}
    with dg.build_resources({"warehouse": defs.resources["warehouse"]}) as resources:
        if args.name in by_name:
            sync = by_name[args.name]
            found = preview_sync(resources.warehouse, sync, record_destinations[sync.destination])
        elif args.name in audiences:
            found = preview_audience(resources.warehouse, args.name, destinations, audience_syncs, syncs)
        else:
            raise settings.ConfigError(f"no sync or audience named {args.name!r}; syncs: "
                                       f"{', '.join(sorted(by_name)) or 'none'}; audiences: "
                                       f"{', '.join(sorted(audiences))}")
    print(json.dumps(found, indent=2, default=str))
    return 0


def sync_now(args: argparse.Namespace) -> int:
    from cdp_assets.definitions import build_definitions

    instance = args.prepare(settings.warehouse_url())
    defs = build_definitions()
    key = dg.AssetKey(["activation", args.name])
    _, _, _, _, syncs = _catalog(defs)
    if args.name not in {s.name for s in syncs}:
        raise settings.ConfigError(f"no sync named {args.name!r}; syncs: {', '.join(sorted(s.name for s in syncs))}")
    own_job = f"{args.name}_job"
    job = own_job if any(j.name == own_job for j in defs.resolve_all_job_defs()) else DAILY_JOB
    outcome = execute(defs, job, f"sync {args.name}", instance, asset_selection=[key], run_config={
        "ops": {f"activation__{args.name}": {"config": {"full_resync": args.full_resync}}}})
    report(outcome)
    return 0 if outcome.ok else 1


def add_commands(commands: argparse._SubParsersAction, prepare: Callable[[str], dg.DagsterInstance]) -> None:
    """The sync commands; `prepare` checks the settings and opens the Dagster instance, as every command does."""
    look = commands.add_parser("preview", help="what a sync or an audience would change at each destination; "
                                                "nothing is sent or written")
    look.add_argument("name", help="a sync (its YAML's file name) or an audience")
    look.set_defaults(handler=preview, prepare=prepare)
    sync = commands.add_parser("sync", help="run one sync now, through Dagster")
    sync.add_argument("name", help="a sync (its YAML's file name)")
    sync.add_argument("--full-resync", action="store_true",
                      help="send every eligible record again, whatever the destination acknowledged")
    sync.set_defaults(handler=sync_now, prepare=prepare)
