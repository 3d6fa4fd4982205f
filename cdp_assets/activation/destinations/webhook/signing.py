"""The webhook signature: HMAC-SHA256, keyed with the sync's secret, of `<timestamp>.<raw body>`.

Sent as `X-CDP-Timestamp: <unix seconds>` and `X-CDP-Signature: sha256=<hex>`. The timestamp is signed with
the body, so a receiver that also refuses old timestamps cannot be fed a captured request again later.
`verify` is the reference check for receivers written in Python (see README.md beside this file).
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-CDP-Signature"
TIMESTAMP_HEADER = "X-CDP-Timestamp"
TOLERANCE_SECONDS = 300  # how old (or how far ahead) a timestamp a receiver should accept


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-CDP-Signature` value of `body` sent at `timestamp` (unix seconds, as sent)."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The two headers of one attempt, signed at send time."""
    timestamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(secret: str, body: bytes, timestamp: str | None, signed: str | None, now: float | None = None,
           tolerance: float = TOLERANCE_SECONDS) -> bool:
    """Whether a received request is ours: the signature matches the raw body and the timestamp is recent."""
    if not timestamp or not signed or not (timestamp.isascii() and timestamp.isdigit()):
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), signed)
