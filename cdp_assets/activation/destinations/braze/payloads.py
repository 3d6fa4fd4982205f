"""Braze's wire shapes: user attributes as typed JSON, and Braze's answers read back.

Braze stores what it is given with the JSON type it arrives in (a number sent as "12" is a string attribute
there, and segments comparing it as a number never match), so every value is built in its sync field's type:
numbers as JSON numbers, booleans as JSON booleans, times as ISO 8601 strings; `null` removes the attribute.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from cdp_assets.activation.destinations.base import formatted

TRUE, FALSE = frozenset({"true", "t", "yes", "y", "1"}), frozenset({"false", "f", "no", "n", "0"})


class NotOfType(ValueError):
    """A warehouse value that cannot be sent as the type its sync field declares (the value is never named:
    it may be personal data)."""


def attribute_value(value: Any, kind: str) -> Any:
    """A warehouse value as Braze takes it for a field of type `kind`; None (clear the attribute) stays None."""
    if value is None:
        return None
    if kind == "bool":
        return _boolean(value)
    if kind == "number":
        return _number(value)
    if kind == "datetime":
        return formatted(_moment(value), "datetime")
    if kind == "date":
        return _day(value).isoformat()
    return str(value)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        return value != 0
    text = str(value).strip().lower()
    if text in TRUE or text in FALSE:
        return text in TRUE
    raise NotOfType("a value of a bool field is neither true nor false")


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return int(value)
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise NotOfType("a value of a number field is not a number") from None
    if not number.is_finite():
        return None  # NaN and infinities are not JSON; the attribute is cleared rather than sent broken
    if number == number.to_integral_value():
        return int(number)
    result = float(number)
    return result if math.isfinite(result) else None


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    try:
        return datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise NotOfType("a value of a datetime field is not an ISO 8601 time") from None


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return _moment(value).date()
    except NotOfType:
        raise NotOfType("a value of a date field is not an ISO 8601 date") from None


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name in any case (Braze sends them lower-case over HTTP/2)."""
    wanted = name.lower()
    return next((str(v) for k, v in headers.items() if k.lower() == wanted), None)


def reset_wait(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds until `X-RateLimit-Reset` (UNIX epoch seconds), never negative; None when absent or unreadable."""
    value = header(headers, "X-RateLimit-Reset")
    try:
        reset = float(value) if value is not None else None
    except ValueError:
        return None
    if reset is None or not math.isfinite(reset):
        return None
    return max(0.0, reset - (time.time() if now is None else now))


def object_errors(data: Mapping[str, Any], size: int, array: str = "attributes") -> tuple[dict[int, str], list[str]]:
    """The non-fatal `errors` of a 2xx answer: index in the request's `array` -> Braze's message, and the
    messages of errors that name no object of that array (no index, another array, an index out of range)."""
    placed: dict[int, str] = {}
    unplaced: list[str] = []
    errors = data.get("errors")
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, Mapping):
            unplaced.append(str(error)[:300])
            continue
        message = f"Braze: {str(error.get('type') or error.get('message') or 'error')[:300]}"
        index = error.get("index")
        if (error.get("input_array", array) == array and isinstance(index, int) and not isinstance(index, bool)
                and 0 <= index < size):
            placed[index] = message if index not in placed else f"{placed[index]}; {message[len('Braze: '):]}"
        else:
            unplaced.append(message)
    return placed, unplaced
