"""Normalization and SHA-256 hashing of personal data, per destination platform.

Personal data leaves the warehouse only through `prepare`. The platforms disagree on the pre-image
(`shared/specs/destinations.md` section 8), so each ad destination folder declares its own rules
(`destinations/<folder>/hashing.py`) from the forms shared here: Meta hashes phones as digits, keeps Gmail dots
and sends a state outside the US and Canada as written (lower-cased letters only) rather than as a code, Google
and TikTok hash `+E.164` phones and Google drops Gmail dots, Pinterest keeps only the digits of a zip code, and
Google and TikTok send address fields unhashed. Every rule is checked against the section 9 vectors.
Unicode is normalized to NFC first; a value that already is a SHA-256 hex digest is lowercased and passed
through, never hashed twice.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from cdp_assets.privacy.geo import country_code, region_code
from cdp_assets.privacy.pii import PhoneError, sha256_hex, to_e164

SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
NAME_NOISE = re.compile(r"[\s!-/:-@\[-`{-~]")  # whitespace and ASCII punctuation
NOT_ALNUM = re.compile(r"[^a-z0-9]")
WHITESPACE = re.compile(r"\s")
E164_SHAPE = re.compile(r"\+[1-9][0-9]{6,14}")
GENDERS = {"m": "m", "male": "m", "man": "m", "mr": "m", "f": "f", "female": "f", "woman": "f", "mrs": "f",
           "ms": "f", "miss": "f"}

Rule = Callable[[str, str | None], str | None]


@dataclass(frozen=True)
class FieldRule:
    """How one field is prepared: its normal form, and whether that form is sent hashed or as it is."""

    normalize: Rule
    hashed: bool = True


@dataclass(frozen=True)
class HashingRules:
    """One platform's pre-image rules by field (em, ph, fn, ...); `name` is what `prepare` is called with, and
    the platforms of one vendor share it."""

    name: str
    fields: Mapping[str, FieldRule]


# Rules by name, filled from the destination folders on first use.
_RULES: dict[str, Mapping[str, FieldRule]] = {}


def rules(platform: str) -> Mapping[str, FieldRule]:
    """The field rules of `platform` (a KeyError names one no destination folder declares)."""
    found = _RULES.get(platform)
    if found is None:
        # Imported here, not at the top: the folders import the event builders, which import this module.
        from cdp_assets.activation.destinations.registry import hashing_rules

        # Read again on a miss, so a folder added through CDP_DESTINATION_DIRS since is found.
        _RULES.update({name: declared.fields for name, declared in hashing_rules().items()})
        found = _RULES[platform]
    return found


def email(value: str, region: str | None) -> str | None:
    lowered = value.lower()
    return lowered if EMAIL_SHAPE.fullmatch(lowered) else None



def e164(value: str, region: str | None) -> str | None:
    # Warehouse phones are E.164 already, validated with phonenumbers on the way in; parsing each
    # again would cost about 20 µs per event.
    if E164_SHAPE.fullmatch(value):
        return value
    try:
        return to_e164(value, region)
    except PhoneError:
        return None



def name(value: str, region: str | None) -> str | None:
    return NAME_NOISE.sub("", value.lower()) or None


def lower(value: str, region: str | None) -> str | None:
    return value.lower() or None


def no_whitespace(value: str, region: str | None) -> str | None:
    return WHITESPACE.sub("", value.lower()) or None


def alnum(value: str, region: str | None) -> str | None:
    return NOT_ALNUM.sub("", value.lower()) or None


def state(value: str, region: str | None) -> str | None:
    code = region_code(value)
    return code.lower() if code else None



def postcode(value: str, region: str | None) -> str | None:
    return WHITESPACE.sub("", value.lower()).split("-", 1)[0] or None



def plain_postcode(value: str, region: str | None) -> str | None:
    # Sent as written but without spaces, and a US ZIP+4 as its five-digit ZIP.
    return WHITESPACE.sub("", value).split("-", 1)[0] or None


def country(value: str, region: str | None) -> str | None:
    code = country_code(value)
    return code.lower() if code else None


def upper_country(value: str, region: str | None) -> str | None:
    return country_code(value)


def gender(value: str, region: str | None) -> str | None:
    return GENDERS.get(value.lower().rstrip("."))



def date_of_birth(value: str, region: str | None) -> str | None:
    """YYYYMMDD from ISO (1997-02-16), US (02/16/1997, month first unless the first number is over 12)
    or European (16.02.1997) writing."""
    parts = re.split(r"[-/.]", value)
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    a, b, c = (int(p) for p in parts)
    if len(parts[0]) == 4:
        year, month, day = a, b, c
    elif "." in value or a > 12:
        day, month, year = a, b, c
    else:
        month, day, year = a, b, c
    if not (1 <= month <= 12 and 1 <= day <= 31 and 1800 <= year <= 2100):
        return None
    return f"{year:04d}{month:02d}{day:02d}"


def external_id(value: str, region: str | None) -> str | None:
    return WHITESPACE.sub("", value).lower() or None



def normalize(platform: str, field: str, value: object, region: str | None = None) -> str | None:
    """The platform's pre-hash form of `value` for `field` (em, ph, fn, ...), or None if unusable.

    `region` is the ISO country in which national phone numbers are read.
    """
    if value is None:
        return None
    text = str(value)
    if not text.isascii():  # ASCII text is already NFC
        text = unicodedata.normalize("NFC", text)
    text = text.strip()
    if not text:
        return None
    rule = rules(platform)[field]
    if rule.hashed and SHA256_HEX.fullmatch(text):
        return text.lower()
    return rule.normalize(text, region)


def prepare(platform: str, field: str, value: object, region: str | None = None) -> str | None:
    """What `field` carries to `platform`: the SHA-256 hex of the normalized value for hashed fields
    (a digest passes through), the normalized value itself for fields the platform takes in clear."""
    if value is None:
        return None
    return _prepare(platform, field, str(value), region)


# Names, cities, states, postcodes and countries repeat across a day's events; each is normalized and
# hashed once. The cache lives only in this process and is bounded.
@lru_cache(maxsize=1 << 16)
def _prepare(platform: str, field: str, value: str, region: str | None) -> str | None:
    normalized = normalize(platform, field, value, region)
    if normalized is None or not rules(platform)[field].hashed or SHA256_HEX.fullmatch(normalized):
        return normalized
    return sha256_hex(normalized)
