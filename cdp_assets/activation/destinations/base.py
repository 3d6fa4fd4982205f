"""What a destination folder declares: the objects it writes, the sync modes it supports, the personal data it
may receive, and the client that speaks its API. Everything else (registration, asset, pool, kinds, checks,
deletion propagation, the README table) is derived from this declaration.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from cdp_assets.activation.transport import Reply, Request

if TYPE_CHECKING:
    from cdp_assets.activation.records.config import Sync
    from cdp_assets.activation.records.jobs import JobOutcome

FIELD_TYPES = ("string", "number", "bool", "date", "datetime")
MODES = ("insert", "update", "upsert", "mirror")
ON_LEAVE = ("nothing", "clear", "delete")

Call = Callable[[Request], Reply]


class SetupFailed(RuntimeError):
    """The destination cannot take this sync as configured (a property of another type, a list of the wrong
    kind); nothing is sent until the sync or the destination is fixed."""


@dataclass(frozen=True)
class PiiPolicy:
    """The personal data a destination may receive.

    `clear` names the destination fields that may carry personal data in clear (for a records destination, only
    when a sync maps them); `hashed` names fields that must be SHA-256 hex; `exempt` names fields of ad
    platform bodies that hold no personal data but may look like it (ids, URLs, times), which are not scanned.
    Any other field that holds something shaped like an email address or a phone number fails the outbound
    safety check.
    """

    clear: frozenset[str] = frozenset()
    hashed: frozenset[str] = frozenset()
    exempt: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ObjectSpec:
    """One kind of object a destination stores (HubSpot contacts, Braze users)."""

    name: str
    keys: tuple[str, ...]  # the fields a sync may key on; "*" allows any field the destination makes unique
    modes: tuple[str, ...] = ("upsert", "mirror")
    on_leave: tuple[str, ...] = ON_LEAVE
    lists: bool = False  # audiences can also be written as the destination's own lists


class RecordsClient(Protocol):
    """What the records strategy needs from a destination's client, beyond the sender's `Channel`.

    A client may also define `expect(records: int)`: it is told, before anything is built, how many added and
    changed records the run will write (Salesforce picks sObject Collections or a Bulk API job by it). And
    `shape` (a `Shape`): its upsert record as a fixed JSON object, which the warehouse then builds and encodes;
    `request` gets those records as `EncodedRecord`s, and `record` builds the same one in Python.
    """

    batch_limit: int
    parked: str | None  # why the destination asked us to stop for the rest of the run (a daily limit)
    parked_until: datetime | None  # until when (naive UTC)

    def request(self, operation: str, payloads: list[Any], last_batch: bool) -> Request: ...

    def headers(self) -> dict[str, str]: ...

    def interpret(self, operation: str, status: int, text: str, headers: Mapping[str, str]) -> Reply: ...

    def secrets(self) -> list[str | None]: ...

    def missing(self) -> list[str]: ...

    def limit(self, operation: str) -> int: ...

    def record(self, key_value: str, fields: Mapping[str, Any], trace: str) -> Any: ...

    def left(self, destination_id: str, fields: Mapping[str, Any], trace: str) -> Any: ...

    def prepare(self, call: Call | None) -> list[Request]: ...

    def list_ids(self, names: list[str], call: Call | None) -> tuple[dict[str, str], list[Request]]: ...


class JobsClient(RecordsClient, Protocol):
    """A client whose upserts become the destination's jobs (`records/jobs.py`)."""

    def job_of(self, reply: Reply) -> str | None: ...

    def job_outcome(self, job_id: str, call: Call) -> JobOutcome | None: ...


@runtime_checkable
class FollowUpClient(RecordsClient, Protocol):
    """A client that sends something once for every record it holds, after writing it (Klaviyo's email
    subscription); the records strategy asks `follow_ups()` when a client has it."""

    def follow_ups(self) -> tuple[str, ...]: ...

    def follow_up(self, operation: str, key_value: str, fields: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True)
class RecordsDestination:
    """A destination folder's declaration (`DESTINATION` in its `__init__.py`)."""

    name: str
    title: str
    kinds: tuple[str, ...]  # the icons the asset shows
    variables: tuple[str, ...]  # every environment variable the client reads
    objects: Mapping[str, ObjectSpec]
    pii: PiiPolicy
    client: Callable[[Sync], RecordsClient]
    deletes: bool = False  # a deletion request is carried out at the destination (`gdpr_delete` operation)
    jobs: bool = False  # upserts are accepted as asynchronous jobs, read back later (its client is a JobsClient)
    # Records can be read back (`confirm(payloads, call)` -> trace id -> destination id of those held with exactly
    # these values), so a record a killed run left in flight is never written twice.
    confirms: bool = False
    notes: str = ""  # one line for the README's destinations table
    # The sync YAML's `options:` checked and completed for this destination (default: none allowed); it raises
    # ConfigError naming `where` and the option.
    options: Callable[[str, Mapping[str, Any]], Mapping[str, Any]] | None = None
    # True: the sync's `options.clear` lists the fields it may write in clear (a file export declares its own)
    pii_from_options: bool = False
    # A destination that receives a whole snapshot rather than changes (files): writes it, returns counts.
    snapshot: Callable[[Any, Sync, str], Mapping[str, int]] | None = None
    folder: str = field(default="", compare=False)

    def policy(self, sync: Sync) -> PiiPolicy:
        """What this sync may send in clear: the destination's policy, or the one the sync declares."""
        if self.pii_from_options:
            return PiiPolicy(clear=frozenset(sync.options.get("clear") or ()), hashed=self.pii.hashed)
        return self.pii


def formatted(value: Any, kind: str) -> str:
    """A warehouse value as the string a CRM API takes: "" clears the field, numbers never in exponent form,
    booleans `true`/`false`, dates `YYYY-MM-DD`, timestamps ISO 8601 UTC with milliseconds."""
    return "" if value is None else FORMATS.get(kind, str)(value)


def formatter(kind: str) -> Callable[[Any], str]:
    """`formatted` for one field type, chosen once per field rather than once per value."""
    format_value = FORMATS.get(kind, str)
    return lambda value: "" if value is None else format_value(value)


def _bool(value: Any) -> str:
    return "true" if value else "false"


def _datetime(value: Any) -> str:
    if not isinstance(value, datetime):
        return str(value)
    moment = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return moment.isoformat(timespec="milliseconds") + "Z"


def _date(value: Any) -> str:
    if not isinstance(value, date | datetime):
        return str(value)
    return (value.date() if isinstance(value, datetime) else value).isoformat()


def _number(value: Any) -> str:
    """Plain decimal digits, no trailing zeros; the common forms (integers, decimals the warehouse prints
    without an exponent) are read off their text, a million times a sync."""
    if type(value) is int:
        return str(value)
    text = str(value)
    if "E" not in text and "e" not in text and text[-1].isdigit() and isinstance(value, Decimal | float):
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    number = value if isinstance(value, Decimal) else Decimal(text)
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "") else text


FORMATS: dict[str, Callable[[Any], str]] = {"bool": _bool, "number": _number, "datetime": _datetime, "date": _date}


class Part(Enum):
    """What a record shape takes from the record: its sync key's value, its record key, its formatted fields."""

    KEY = "key"
    TRACE = "trace"
    FIELDS = "fields"


KEY, TRACE, FIELDS = Part.KEY, Part.TRACE, Part.FIELDS
# A records client's record as a fixed JSON object (`shape` on the client): names to constants or parts. A client
# that declares one has its records built and encoded in the warehouse (`records/encoded.py`), `render` being the
# same record built in Python.
Shape = Mapping[str, str | Part]


def render(shape: Shape, key_value: str, trace: str, fields: Mapping[str, str]) -> dict[str, Any]:
    """The shape filled in with one record's values (its fields already formatted)."""
    parts: dict[str | Part, Any] = {KEY: key_value, TRACE: trace, FIELDS: dict(fields)}
    return {name: parts.get(part, part) for name, part in shape.items()}


class EncodedRecord(NamedTuple):
    """A record the warehouse built and encoded as JSON (`text`), with the values a client reads off it."""

    text: str
    key_value: str
    trace: str

    def decoded(self) -> dict[str, Any]:
        return json.loads(self.text)
