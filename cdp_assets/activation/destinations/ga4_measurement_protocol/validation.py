"""Which Measurement Protocol bodies are checked by GA4's validation server before they are sent, and the check.

Production `/mp/collect` answers 2xx to anything, so every body of a shape never validated before (its set of
JSON paths: a new field, an address that was never sent) and a sample of the others (`GA4_MP_VALIDATION_SAMPLE`,
a share of each run's bodies, by a hash of the order id so a re-run picks the same ones) go to
`/debug/mp/collect` first. A body it names is dead-lettered with its messages and never sent; a body it passes
is sent and recorded `sent`; the rest are `sent_unconfirmed`. Shapes validated are kept in
`activation.mp_validated_shapes`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

from cdp_assets.activation.ledger import now
from cdp_assets.activation.sender import Item
from cdp_assets.activation.transport import OK, REJECTED, Reply, Request
from cdp_assets.resources.state import StateTable
from cdp_assets.resources.warehouse import WarehouseResource
from cdp_assets.settings import ConfigError

VALIDATED_SHAPES = StateTable(
    "activation.mp_validated_shapes",
    "CREATE TABLE activation.mp_validated_shapes (destination VARCHAR, shape VARCHAR, validated_at TIMESTAMP)",
)
DEFAULT_SAMPLE = 0.05


def sample_share(setting: str | None) -> float:
    """`GA4_MP_VALIDATION_SAMPLE` as a share between 0 and 1 (default 0.05)."""
    if setting is None:
        return DEFAULT_SAMPLE
    try:
        share = float(setting)
    except ValueError:
        share = -1.0
    if not 0.0 <= share <= 1.0:
        raise ConfigError(f"GA4_MP_VALIDATION_SAMPLE must be a share between 0 and 1, such as 0.05; got {setting!r}")
    return share


def _paths(node: Any, prefix: str) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, f"{prefix}.{key}")
    elif isinstance(node, list):
        for value in node:
            yield from _paths(value, f"{prefix}[]")
    else:
        yield prefix


def shape(body: Any) -> str:
    """The body's shape: a digest of its JSON paths, whatever their values."""
    return hashlib.sha256("\n".join(sorted(set(_paths(body, "")))).encode()).hexdigest()[:16]


def _sampled(key: str, share: float) -> bool:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) < share * 0x1_0000_0000


def _known(warehouse: WarehouseResource, destination: str) -> set[str]:
    with warehouse.begin() as conn:
        VALIDATED_SHAPES.ensure(warehouse, conn)
        return {str(s) for (s,) in warehouse.run(conn, "SELECT DISTINCT shape FROM activation.mp_validated_shapes "
                                                       "WHERE destination = :d", {"d": destination})}


def chosen(warehouse: WarehouseResource, destination: str, share: float,
           bodies: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    """(record key, shape) of the bodies a live run would validate first, if each passed: each new shape's
    first body, and the sample."""
    known, picked = _known(warehouse, destination), []
    for key, body in bodies:
        body_shape = shape(body)
        if body_shape not in known or _sampled(key, share):
            known.add(body_shape)
            picked.append((key, body_shape))
    return picked


def validate_first(warehouse: WarehouseResource, destination: str, share: float, items: list[Item],
                   build: Callable[[Item], Request], call: Callable[[Request, Item], Reply]
                   ) -> tuple[list[Item], list[tuple[Item, str]], list[tuple[Item, str]]]:
    """The items, those the validation server passed marked `validated`; those it named, with its messages;
    those it could not be asked about (left failed, to go next run). A shape stays new until one of its bodies
    passes, so after a refusal the next body of that shape is validated too."""
    known, passed = _known(warehouse, destination), set()
    checked, refused, unasked = [], [], []
    for item in items:
        body_shape = shape(json.loads(item.payload))
        if body_shape in known and not _sampled(item.key, share):
            checked.append(item)
            continue
        reply = call(build(item), item)
        if reply.kind == REJECTED and reply.http_status == 200:  # it answered, naming what GA4 would drop
            refused.append((item, reply.message))
        elif reply.kind != OK:  # no verdict (an outage, a wrong GA4_MP_URL): asked again next run
            unasked.append((item, f"the validation server did not answer: {reply.message}"))
        else:
            checked.append(Item(item.key, item.payload, item.partition_key, {**item.extra, "validated": True}))
            if body_shape not in known:
                known.add(body_shape)
                passed.add(body_shape)
    if passed:
        with warehouse.begin() as conn:
            warehouse.run(conn, "INSERT INTO activation.mp_validated_shapes SELECT :d, s, :at FROM (VALUES "
                                + ", ".join(f"('{s}')" for s in sorted(passed)) + ") AS v(s)",
                          {"d": destination, "at": now()})
    return checked, refused, unasked
