"""What every conversion event is built from, whatever the platform: ids, times, products, consent flags.

A conversion row is one `core.conversions` order joined to its profile's golden record and consent. Local
validation here runs before a record enters a batch, so one bad record never sinks a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from cdp_assets.activation.config import Destination
from cdp_assets.ingest.validation import ISO_4217
from cdp_assets.privacy.geo import country_code, region_code
from cdp_assets.privacy.hashing import prepare

PHYSICAL_STORE_MAX_AGE_DAYS = 62
MAX_FUTURE_SKEW = timedelta(minutes=1)
# US states whose privacy laws Meta's Limited Data Use covers, with Meta's state codes (destinations.md §2).
LDU_STATES = {"CA": 1000, "CO": 1001, "CT": 1002, "FL": 1003, "OR": 1004, "TX": 1005, "MT": 1006, "DE": 1007,
              "NE": 1008, "NH": 1009, "NJ": 1010}
PROFILE_FIELDS = (("em", "email"), ("ph", "phone_e164"), ("fn", "first_name"), ("ln", "last_name"),
                  ("ct", "city"), ("st", "state"), ("zp", "postal_code"), ("country", "country"))


def event_id(destination: Destination, row: Mapping[str, Any]) -> str:
    """The event id the site's pixel sends for the same order (destinations.yaml `event_id`)."""
    return destination.event_id.format(order_id=row["order_id"], contact_id=row.get("contact_id") or "")


def epoch(moment: datetime) -> int:
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def products(row: Mapping[str, Any]) -> list[str]:
    return [p for p in (row.get("product_ids") or "").split("|") if p]


def identifiers(platform: str, row: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, str]:
    """The row's identifiers as `platform` takes them (hashed or not, per its rules), usable ones only."""
    region = country_code(row.get("country"))
    columns = dict(PROFILE_FIELDS, external_id="contact_id")
    values = {f: prepare(platform, f, row.get(columns[f]), region) for f in fields}
    return {f: v for f, v in values.items() if v}


def limited_data_use(row: Mapping[str, Any]) -> int | None:
    """Meta's state code when the person lives where LDU applies and has not granted ads personalization."""
    if row.get("ads_personalization") or country_code(row.get("country")) != "US":
        return None
    return LDU_STATES.get(region_code(row.get("state")) or "")


def time_problem(event_time: int, now: datetime, max_age_days: int, platform: str) -> str | None:
    age = now - datetime.fromtimestamp(event_time, UTC)
    if age > timedelta(days=max_age_days):
        return f"event_time is {age.days} days old; {platform} accepts at most {max_age_days}"
    if age < -MAX_FUTURE_SKEW:
        return "event_time is in the future"
    return None


def currency_problem(currency: str | None) -> str | None:
    if not currency or currency.upper() not in ISO_4217:
        return f"currency {currency!r} is not an ISO 4217 code"
    return None
