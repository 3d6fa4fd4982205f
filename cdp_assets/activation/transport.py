"""One HTTP request to an ad platform, retried on transient failures only, with every attempt reported.

A platform's answer is classified into a `Reply` by the platform's own `interpret` (TikTok and Google put
errors in 200 bodies, Meta in Graph error codes). Only `transient` replies are retried: exponential backoff
with jitter (tenacity), never shorter than the `Retry-After` the platform asked for. Secrets travel in
headers (or, where a platform insists, the query string) and are scrubbed from every message that could reach a
log, the warehouse or an exception, urllib3's own request log included.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import requests
import tenacity

OK, PARTIAL, REJECTED, TRANSIENT, AUTH = "ok", "partial", "rejected", "transient", "auth"
SECRET_QUERY = re.compile(r"((?:api_secret|access_token|api_key|key|token|secret)=)[^&\s\"]+", re.IGNORECASE)


class _QueryRedacted(logging.Filter):
    """urllib3 logs every request's path with its query string at DEBUG; a secret in it (GA4's `api_secret`)
    is redacted before any handler sees the line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "=" in message:
            record.msg, record.args = SECRET_QUERY.sub(r"\1[redacted]", message), None
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_QueryRedacted())


@dataclass(frozen=True)
class Request:
    """A request exactly as it is sent (and logged); headers with secrets are added at send time."""

    operation: str
    method: str
    url: str
    body: dict[str, Any] | None
    record_count: int
    encoded: str | None = None  # the body already encoded, when it was assembled from encoded records

    @cached_property
    def text(self) -> str:
        """The body as sent and as logged: encoded once."""
        return self.encoded if self.encoded is not None else encode_body(self.body)

    @cached_property
    def data(self) -> bytes | None:
        """The exact bytes sent on every attempt (what a channel that signs requests signs)."""
        return self.text.encode("utf-8") if self.text else None


class Encoded(str):
    """A record already encoded as JSON (read back from the outbox), spliced into a request as it is."""


PLACEHOLDER = "\x00records\x00"


def assemble(build: Callable[[list[Any]], Request], records: list[Any]) -> Request:
    """`build(records)`, or, for records already encoded, the request built around a placeholder with the
    encoded records put in its place: no decoding and re-encoding of a thousand events per request."""
    if not records or not isinstance(records[0], Encoded):
        return build(records)
    shell = build([PLACEHOLDER])
    text = shell.text.replace(encode_body(PLACEHOLDER), ",".join(records), 1)
    return Request(shell.operation, shell.method, shell.url, None, len(records), text)


@dataclass
class Reply:
    """How a platform answered one attempt, in the sender's terms."""

    kind: str  # ok | partial | rejected | transient | auth
    http_status: int | None
    body_text: str = ""
    message: str = ""
    trace_id: str | None = None
    failed_rows: dict[int, str] = field(default_factory=dict)  # index in the batch -> reason (partial)
    retry_after: float | None = None
    reported: dict[str, int] = field(default_factory=dict)  # the platform's own counts
    data: dict[str, Any] = field(default_factory=dict)  # parsed body, for callers that need a value from it
    ids: dict[str, str] = field(default_factory=dict)  # record trace id -> the destination's id for the record
    # Indexes of `failed_rows` that failed for a passing reason (a locked row): left failed, so they go again.
    retry_rows: set[int] = field(default_factory=set)
    # A 2xx that is no receipt (GA4's Measurement Protocol answers 2xx to anything): the records are left
    # `sent_unconfirmed`, unless the platform's validation checked them first (`Item.extra["validated"]`).
    unconfirmed: bool = False


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_seconds: float = 0.5
    max_seconds: float = 30.0
    # A platform asking to wait longer than this is parked until the next run rather than waited for.
    max_retry_after: float = 120.0
    timeout: tuple[float, float] = (3.05, 30.0)
    sleep: Callable[[float], None] = time.sleep


def encode_body(body: Any) -> str:
    """The one JSON encoding used both to send a body and to log it, so the log shows what was sent."""
    return "" if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The Retry-After header as seconds, from either of its two forms (seconds or an HTTP date)."""
    value = headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def parse_json(text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text) if text else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def http_reply(status: int, text: str, headers: Mapping[str, str], message: str = "") -> Reply:
    """The generic reading of an HTTP status, for platforms to refine: 2xx ok, 401/403 auth,
    408/429/5xx transient, any other 4xx rejected."""
    if 200 <= status < 300:
        kind = OK
    elif status in (401, 403):
        kind = AUTH
    elif status in (408, 429) or status >= 500:
        kind = TRANSIENT
    else:
        kind = REJECTED
    return Reply(kind, status, text, message or f"HTTP {status}", retry_after=retry_after_seconds(headers),
                 data=parse_json(text))


Interpret = Callable[[int, str, Mapping[str, str]], Reply]


class EgressSession(requests.Session):
    """A session that works out the environment's proxy and CA settings once per host: requests reads them from
    the environment on every request, which cost more than building the request's JSON."""

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple, dict[str, Any]] = {}

    def merge_environment_settings(self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> dict[str, Any]:
        parts = urlsplit(url.decode() if isinstance(url, bytes) else url or "")
        key = (parts.scheme, parts.netloc, repr(proxies), stream, verify, cert)
        if key not in self._environment:
            self._environment[key] = super().merge_environment_settings(url, proxies, stream, verify, cert)
        return self._environment[key]


def send_with_retry(
    session: requests.Session, request: Request, headers: Callable[[], dict[str, str]], interpret: Interpret,
    policy: RetryPolicy, on_attempt: Callable[[Reply, int], None], secrets: Iterable[str | None],
) -> Reply:
    """Send `request` until it is answered with anything but a transient failure or the retry budget
    is spent; `on_attempt(reply, attempt_no)` sees every attempt, retried or not. `headers` is asked on
    every attempt, so a client that refreshed its token on a 401 sends the new one."""
    secrets = list(secrets)
    data = request.data
    counter = {"n": 0}

    def attempt() -> Reply:
        counter["n"] += 1
        try:
            # Never followed: requests turns a redirected POST into a GET without its body, and a 2xx at the end
            # would acknowledge records nobody received. A 3xx is refused, with its Location in the log.
            response = session.request(request.method, request.url, data=data, headers=headers(),
                                       timeout=policy.timeout, allow_redirects=False)
        except requests.RequestException as error:
            reply = Reply(TRANSIENT, None, message=scrub(f"{type(error).__name__}: {error}", secrets))
        else:
            reply = interpret(response.status_code, response.text, response.headers)
            reply.message = scrub(reply.message, secrets)
            reply.body_text = scrub(reply.body_text, secrets)
        if reply.kind == TRANSIENT and (reply.retry_after or 0) > policy.max_retry_after:
            reply.message += f" (asked to wait {reply.retry_after:.0f} s: parked until the next run)"
            reply.retry_after = None
            on_attempt(reply, counter["n"])
            raise _Parked(reply)
        on_attempt(reply, counter["n"])
        return reply

    backoff = tenacity.wait_exponential_jitter(multiplier=policy.base_seconds, max=policy.max_seconds,
                                               jitter=policy.base_seconds)

    def wait(state: tenacity.RetryCallState) -> float:
        return max(backoff(state), state.outcome.result().retry_after or 0.0)

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.attempts), wait=wait, sleep=policy.sleep,
        retry=tenacity.retry_if_result(lambda reply: reply.kind == TRANSIENT),
        retry_error_callback=lambda state: state.outcome.result(),
    )
    try:
        return retrying(attempt)
    except _Parked as parked:
        return parked.reply


class _Parked(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.message)
        self.reply = reply
