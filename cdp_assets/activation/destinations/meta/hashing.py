"""Meta's pre-image rules (destinations.md 8.1): phones as digits, Gmail dots kept, every field hashed, and a
state outside the US and Canada as written (lower-cased letters only) rather than as a code."""

import re

from cdp_assets.privacy.geo import north_american_region
from cdp_assets.privacy.hashing import (
    FieldRule,
    HashingRules,
    alnum,
    country,
    date_of_birth,
    e164,
    email,
    external_id,
    gender,
    name,
    postcode,
)

NOT_LETTER = re.compile(r"[^a-z]")
NOT_DIGIT = re.compile(r"\D")
MIN_PHONE_DIGITS = 7


def digits_phone(value: str, region: str | None) -> str | None:
    """E.164 without its `+`; a number that cannot be read as E.164 as its digits, without leading zeros."""
    international = e164(value, region)
    if international:
        return international[1:]
    # Meta's documented fallback: digits only, no leading zeros. It matches only if the number
    # already carried its country code, which we cannot know, so keep only long enough ones.
    digits = NOT_DIGIT.sub("", value).lstrip("0")
    return digits if len(digits) >= MIN_PHONE_DIGITS else None


def meta_state(value: str, region: str | None) -> str | None:
    """A US state or Canadian province as its two-letter code; any other state lower-cased with every character
    but a-z removed (destinations.md 8.1: "lowercase, no punctuation, no special characters, no white space"):
    `NSW` -> `nsw`, `Île-de-France` -> `ledefrance`."""
    code = north_american_region(value)
    return code.lower() if code else NOT_LETTER.sub("", value.lower()) or None


RULES = HashingRules("meta", {
    "em": FieldRule(email), "ph": FieldRule(digits_phone), "fn": FieldRule(name), "ln": FieldRule(name),
    "ct": FieldRule(alnum), "st": FieldRule(meta_state), "zp": FieldRule(postcode), "country": FieldRule(country),
    "ge": FieldRule(gender), "db": FieldRule(date_of_birth), "external_id": FieldRule(external_id)})
