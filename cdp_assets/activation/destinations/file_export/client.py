"""What the records strategy asks of a destination's client, for a destination that calls no API: a file
export needs no credentials, and each record it checks is the row it writes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cdp_assets.activation.records.config import Sync
from cdp_assets.activation.transport import Reply, Request

NO_REQUESTS = "a file export writes whole snapshots to files; it sends no requests"


class FileClient:
    batch_limit = 5_000
    parked: str | None = None

    def __init__(self, sync: Sync) -> None:
        self.sync = sync

    def missing(self) -> list[str]:
        return []

    def secrets(self) -> list[str | None]:
        return []

    def headers(self) -> dict[str, str]:
        return {}

    def limit(self, operation: str) -> int:
        return self.batch_limit

    def record(self, key_value: str, fields: Mapping[str, Any], trace: str) -> dict[str, Any]:
        return {self.sync.key.field: key_value, **fields}

    def prepare(self, call: Any) -> list[Request]:
        return []

    def list_ids(self, names: list[str], call: Any) -> tuple[dict[str, str], list[Request]]:
        return {}, []

    def request(self, operation: str, payloads: list[Any], last_batch: bool) -> Request:
        raise NotImplementedError(NO_REQUESTS)

    def interpret(self, operation: str, status: int, text: str, headers: Mapping[str, str]) -> Reply:
        raise NotImplementedError(NO_REQUESTS)

    def left(self, destination_id: str, fields: Mapping[str, Any], trace: str) -> Any:
        raise NotImplementedError(NO_REQUESTS)
