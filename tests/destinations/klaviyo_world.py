"""The Klaviyo sync the tests run on the records world, and a way to run it with a retry policy of the test's."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import yaml

from cdp_assets.activation.destinations.registry import discover
from cdp_assets.activation.records.asset import records_sync_asset
from cdp_assets.activation.records.config import Sync, parse_sync
from cdp_assets.activation.transport import RetryPolicy
from cdp_assets.resources.warehouse import WarehouseResource
from tests.destinations.records_world import COLUMNS, FAST

KLAVIYO_SYNC = {
    "destination": "klaviyo", "object": "profiles", "model": "core.unified_profiles",
    "key": {"column": "email", "field": "email"}, "mode": "upsert", "on_leave": "nothing",
    "consent_purpose": "marketing", "suppressed": "exclude",
    "fields": {"phone_e164": {"field": "phone_number"}, "first_name": {"field": "first_name"},
               "last_name": {"field": "last_name"},
               "lifetime_value": {"field": "cdp_lifetime_value", "type": "number"},
               "order_count": {"field": "cdp_order_count", "type": "number"},
               "last_order_at": {"field": "cdp_last_order_at", "type": "datetime"},
               "rfm_segment": {"field": "cdp_rfm_segment"}},
    "audiences": {"field": "cdp_audience_{audience}", "list": "cdp: {audience}"},
}


def klaviyo_sync(tmp_path: Path, name: str = "lifecycle_profiles", **changes: object) -> Sync:
    settings = {**KLAVIYO_SYNC, **changes}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return parse_sync(path, settings, discover(), {"core.unified_profiles": COLUMNS}, ("vip",))


def materialize(warehouse: WarehouseResource, sync: Sync, policy: RetryPolicy = FAST) -> dg.ExecuteInJobResult:
    asset = records_sync_asset(sync, discover()[sync.destination], lambda keys: [], policy, warehouse.dialect)
    return dg.materialize([asset], resources={"warehouse": warehouse}, raise_on_error=False,
                          run_config={"ops": {f"activation__{sync.name}": {"config": {"full_resync": False}}}})
