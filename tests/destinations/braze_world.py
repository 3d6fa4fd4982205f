"""The records world with what the shipped Braze sync reads (a `country` column), the shipped sync itself,
and FakeBraze handed to the sync through its environment variables."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import yaml

from cdp_assets.activation.destinations.registry import discover
from cdp_assets.activation.records.config import SYNCS_DIR, Sync, parse_sync
from cdp_assets.resources.warehouse import WarehouseResource
from tests.destinations.records_world import COLUMNS, build_world, execute, query
from tests.fakes.braze import FakeBraze

SHIPPED = SYNCS_DIR / "braze_users.yaml"
COUNTRIES = {"p1": "GB", "p2": "US", "p3": "US", "p4": None}


def build_braze_world(warehouse: WarehouseResource, vip: tuple[str, ...] = ("p1",)) -> None:
    build_world(warehouse, vip)
    execute(warehouse, "ALTER TABLE core.unified_profiles ADD COLUMN country VARCHAR")
    for profile, country in COUNTRIES.items():
        execute(warehouse, "UPDATE core.unified_profiles SET country = :c WHERE profile_id = :p",
                {"c": country, "p": profile})


def braze_sync(tmp_path: Path, name: str = "braze_users", **changes: object) -> Sync:
    """The shipped `braze_users.yaml`, with `changes` on top, checked against the world's model."""
    settings = {**yaml.safe_load(SHIPPED.read_text(encoding="utf-8")), **changes}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return parse_sync(path, settings, discover(), {"core.unified_profiles": (*COLUMNS, "country")}, ("vip",))


def record_key(external_id: str) -> str:
    """The ledger key of a record: the SHA-256 of its sync key."""
    return hashlib.sha256(external_id.encode()).hexdigest()


def track_bodies(fake: FakeBraze) -> list[list[dict]]:
    """The `attributes` array of every /users/track request the fake received, in order."""
    return [r["body"]["attributes"] for r in fake.requests if r["path"] == "/users/track"]


def sent_ids(fake: FakeBraze) -> list[str]:
    return [a["external_id"] for body in track_bodies(fake) for a in body]


def request_deletion(warehouse: WarehouseResource, profile_id: str, email: str) -> None:
    """An active deletion request by email, and its profile awaiting deletion, as the privacy assets leave them."""
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    execute(warehouse, "INSERT INTO core.deletion_requests VALUES ('r1', 'email', :h, 'active')", {"h": digest})
    execute(warehouse, "INSERT INTO core.deletion_pending_profiles VALUES (:p)", {"p": profile_id})


def ledger(warehouse: WarehouseResource, sync: Sync) -> dict[str, tuple[str, str | None]]:
    """record key -> (status, last error) in activation.sync_ledger."""
    return {k: (s, e) for k, s, e in query(warehouse, "SELECT record_key, status, last_error FROM "
                                                      "activation.sync_ledger WHERE destination = :d",
                                           {"d": sync.name})}


def record_state(warehouse: WarehouseResource, sync: Sync) -> dict[str, tuple[str | None, str]]:
    """record key -> (destination id, status) in activation.record_state."""
    return {k: (d, s) for k, d, s in query(warehouse, "SELECT record_key, destination_id, status FROM "
                                                      "activation.record_state WHERE sync = :s", {"s": sync.name})}


class SlowResetBraze(FakeBraze):
    """A Braze whose injected 429 names a reset two seconds ahead, so a client that waits for it is seen to."""

    def _fault_answer(self, fault: str) -> tuple[int, dict, dict[str, str]]:
        status, body, headers = super()._fault_answer(fault)
        if fault == "429":
            headers = {**headers, "X-RateLimit-Reset": str(int(time.time()) + 2)}
        return status, body, headers


def egress_rows(warehouse: WarehouseResource, sync: Sync) -> list[tuple]:
    """(operation, url, status, http_status, attempt, request body) logged for the sync, in order."""
    rows = query(warehouse, "SELECT operation, url, status, http_status, attempt, request_body, batch_no "
                            "FROM activation.egress_requests WHERE destination = :d ORDER BY created_at, batch_no, "
                            "attempt", {"d": sync.name})
    return [(o, u, s, h, a, json.loads(b) if b else None) for o, u, s, h, a, b, _ in rows]
