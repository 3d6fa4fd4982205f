"""Pieces every egress asset shares: its declaration, its checks, the dry-run plan and the metadata it emits."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import dagster as dg

from cdp_assets.activation.config import Destination
from cdp_assets.activation.sender import Tally
from cdp_assets.resources.warehouse import pool_for

SAFE_CHECK = "outbound_payloads_are_safe"
CREDENTIALS_CHECK = "credentials_are_configured"


GatesFor = Callable[[Iterable[dg.AssetKey]], list[dg.AssetCheckKey]]


def upstream_keys(upstream: Iterable[str]) -> list[dg.AssetKey]:
    return [dg.AssetKey(k.split("/")) for k in upstream]


def asset_args(destination: Destination, upstream: Iterable[str], dialect: str) -> dict[str, Any]:
    """What every egress asset declares: key, group, owners, icons (the platform's and the warehouse's),
    lineage, its checks and its pool."""
    key = dg.AssetKey(["activation", destination.name])
    return {
        "key": key, "group_name": "activation", "owners": ["team:data-eng"],
        "kinds": {"python", destination.ad_platform.kind, dialect},
        "deps": upstream_keys(upstream),
        "pool": pool_for(dialect, destination.name),
        "check_specs": [
            dg.AssetCheckSpec(SAFE_CHECK, asset=key, blocking=True,
                              description="Every outbound body is free of raw emails and phones, its hashed fields "
                                          "are 64 lowercase hex and its event ids are unique; checked before "
                                          "anything is sent or logged."),
            dg.AssetCheckSpec(CREDENTIALS_CHECK, asset=key,
                              description="The account's ids and token are set; without them a dry run uses "
                                          "placeholders and a live run skips this destination."),
        ],
    }


def safety_result(problems: Mapping[str, int], records_checked: int) -> dg.AssetCheckResult:
    """The `outbound_payloads_are_safe` result from the problems the outbound bodies were found with."""
    return dg.AssetCheckResult(check_name=SAFE_CHECK, passed=not problems, metadata={
        "records_checked": records_checked, "problems": dg.MetadataValue.json(dict(problems))})


def credentials_result(missing: list[str], mode: str) -> dg.AssetCheckResult:
    if not missing:
        return dg.AssetCheckResult(check_name=CREDENTIALS_CHECK, passed=True)
    effect = "skipped: nothing sent" if mode == "live" else "dry-run plan built with placeholder ids"
    return dg.AssetCheckResult(check_name=CREDENTIALS_CHECK, passed=False, severity=dg.AssetCheckSeverity.WARN,
                               metadata={"missing": ", ".join(missing), "effect": effect})


def redacted(payload: Any, clear: Collection[str]) -> Any:
    """A payload fit for metadata: hashed values stay, the personal data the platform takes in clear is masked."""
    if isinstance(payload, Mapping):
        return {k: "[redacted]" if k in clear else redacted(v, clear) for k, v in payload.items()}
    if isinstance(payload, list):
        return [redacted(v, clear) for v in payload]
    return payload


def sample(destination: Destination, payloads: list[Any]) -> dict[str, Any]:
    """The first payload as metadata, redacted by the destination's platform's PII policy."""
    if not payloads:
        return {}
    return {"sample_payload": dg.MetadataValue.json(redacted(payloads[0], destination.ad_platform.pii.clear))}


def tally_metadata(tally: Tally) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "records_sent": tally.sent, "records_dead_lettered_by_platform": tally.dead_letters,
        "records_failed": tally.failed, "requests_sent": tally.requests, "http_attempts": tally.attempts,
        "retries": tally.retries, "bisections": tally.bisections,
        **{f"platform_{k}": int(v) for k, v in sorted(tally.reported.items())},
    }
    if tally.reasons:
        metadata["platform_rejections"] = dg.MetadataValue.json(dict(tally.reasons.most_common(10)))
    if tally.trace_ids:
        metadata["last_trace_id"] = tally.trace_ids[-1]
    return metadata
