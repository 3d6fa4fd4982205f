"""What an ad destination folder declares: its platforms (`PLATFORMS` in its `__init__.py`), each one value of
`platform:` in destinations.yaml. Registration, the asset, its icons, pool and checks, the hashing and the
outbound safety check are derived from this declaration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cdp_assets.activation.destinations.base import PiiPolicy

if TYPE_CHECKING:
    from cdp_assets.privacy.hashing import HashingRules

STRATEGIES = ("events", "audiences")


@dataclass(frozen=True)
class AdPlatform:
    """One ad platform API a destinations.yaml entry can name (`platform: meta_capi`).

    `pii.hashed` names the JSON keys (and audience schema columns) that must hold SHA-256 hex; `pii.clear` the
    keys that carry personal data in clear by design (IP, user agent, click and browser ids), masked in
    metadata samples; `pii.exempt` the keys that hold no personal data but may look like it (ids, URLs, times).
    Every other string in a body is scanned for something shaped like an email address or a phone number.
    """

    name: str
    strategy: str  # events (conversions_asset) | audiences (audience_sync_asset)
    title: str
    kind: str  # the icon its assets show
    # events: channel(destination); audiences: channel(destination, audience_id)
    channel: Callable[..., Any]
    variables: tuple[str, ...]  # every environment variable its channel reads (`env:` may rename them)
    pii: PiiPolicy
    hashing: HashingRules
    event_name: str | None = None  # events: the default `event_name`
    max_event_age_days: int | None = None  # events: the default `max_event_age_days`
    # events: the outbox operation of every event; None when the channel names it per event (`source(row)`)
    operation: str | None = None
    # events: the platform's own day of rows, `source(warehouse, closed) -> (DuckDB SQL, extra params)`, taking
    # :start, :end and :purpose like `queries.CONVERSIONS_SQL` (the default) and giving at least its exclusion
    # columns; `closed` names the failing gates of its `optional` assets, whose rows it holds (column `held`)
    source: Callable[[Any, list[str]], tuple[str, dict[str, Any]]] | None = None
    upstream: tuple[str, ...] = ()  # events: assets its `source` reads beyond the conversions' own, gated as they are
    # events: assets its `source` reads for some rows only: their failing gates hold those rows, not the others
    optional: tuple[str, ...] = ()
    folder: str = field(default="", compare=False)
