"""A webhook sync over `records_world`'s warehouse, run with a retry policy of the test's choosing.

`python -m tests.destinations.webhook_world <warehouse url> <sync yaml>` runs one sync in a process of its
own, for the tests that SIGKILL a sender mid-batch.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import dagster as dg
import yaml

from cdp_assets.activation.destinations.registry import discover
from cdp_assets.activation.records.asset import records_sync_asset
from cdp_assets.activation.records.config import Sync, parse_sync
from cdp_assets.activation.transport import RetryPolicy
from cdp_assets.resources.warehouse import WarehouseResource
from tests.destinations.records_world import COLUMNS, FAST, make_sync

SECRET = "whsec-test-secret"
WEBHOOK_SYNC = {
    "destination": "webhook", "object": "records", "model": "core.unified_profiles",
    "key": {"column": "profile_id", "field": "profile_id"}, "mode": "upsert", "on_leave": "nothing",
    "consent_purpose": "marketing",
    "fields": {"email": {"field": "email"}, "first_name": {"field": "first_name"},
               "lifetime_value": {"field": "lifetime_value", "type": "number"},
               "order_count": {"field": "order_count", "type": "number"},
               "last_order_at": {"field": "last_order_at", "type": "datetime"},
               "rfm_segment": {"field": "rfm_segment"}},
    "audiences": {"field": "audience_{audience}"},
    "options": {"batch_size": 2, "clear": ["email", "first_name"]},
}
# Consented to marketing in records_world: p1, p3 and p4 (p2 is not).
ELIGIBLE = ("p1", "p3", "p4")


def webhook_sync(tmp_path: Path, name: str = "leads_hook", **changes: object) -> Sync:
    return make_sync(tmp_path, name, **{**WEBHOOK_SYNC, **changes})


def record_id(key: str) -> str:
    """The record id a receiver gets: the SHA-256 of the sync key."""
    return hashlib.sha256(key.encode()).hexdigest()


def run_sync(warehouse: WarehouseResource, sync: Sync, policy: RetryPolicy = FAST) -> dg.ExecuteInProcessResult:
    asset = records_sync_asset(sync, discover()["webhook"], lambda keys: [], policy, warehouse.dialect)
    return dg.materialize([asset], resources={"warehouse": warehouse}, raise_on_error=False,
                          run_config={"ops": {f"activation__{sync.name}": {"config": {"full_resync": False}}}})


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


if __name__ == "__main__":
    url, path = sys.argv[1], Path(sys.argv[2])
    loaded = parse_sync(path, yaml.safe_load(path.read_text(encoding="utf-8")), discover(),
                        {"core.unified_profiles": COLUMNS}, ("vip",))
    run_sync(WarehouseResource(url=url), loaded)
