"""Normalization and SHA-256 hashing of personal data, per destination rules.

Personal data leaves the warehouse only through these functions. Rules follow
`shared/specs/destinations.md` section 8.1 (Meta), checked against its section 9 vectors in the tests.
Values that already look like a SHA-256 hex digest are passed through lowercased, never hashed twice.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable

import phonenumbers

from cdp_assets.privacy.geo import country_code, region_code

SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
NAME_NOISE = re.compile(r"[\s!-/:-@\[-`{-~]")  # whitespace and ASCII punctuation
NOT_ALNUM = re.compile(r"[^a-z0-9]")
NOT_DIGIT = re.compile(r"\D")
MIN_PHONE_DIGITS = 7


class PhoneError(ValueError):
    """A value that is not a usable phone number; the message says why (no personal data in it)."""


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def to_e164(value: str, region: str | None = None) -> str:
    """E.164 form (+CC...) of a phone number written in any common national or international style.

    `region` (ISO alpha-2) is how a number without a country code is read. A leading 00 is the
    international prefix used across Europe. Raises PhoneError with the reason when it cannot be read.
    """
    text = value.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+") and region is None:
        raise PhoneError("no country code, and no country to read a national number in")
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException:
        raise PhoneError("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        where = region or phonenumbers.region_code_for_number(number) or "its country code"
        raise PhoneError(f"not a valid number for {where}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _meta_phone(value: str, region: str | None) -> str | None:
    try:
        return to_e164(value, region)[1:]
    except PhoneError:
        # Meta's documented fallback: digits only, no leading zeros. It matches only if the
        # number already carried its country code, which we cannot know, so keep long enough ones.
        digits = NOT_DIGIT.sub("", value).lstrip("0")
        return digits if len(digits) >= MIN_PHONE_DIGITS else None


def _meta_email(value: str, region: str | None) -> str | None:
    email = value.strip().lower()
    return email if EMAIL_SHAPE.fullmatch(email) else None


def _meta_name(value: str, region: str | None) -> str | None:
    return NAME_NOISE.sub("", value.lower()) or None


def _meta_city(value: str, region: str | None) -> str | None:
    return NOT_ALNUM.sub("", value.lower()) or None


def _meta_state(value: str, region: str | None) -> str | None:
    code = region_code(value)
    return code.lower() if code else None


def _meta_zip(value: str, region: str | None) -> str | None:
    return re.sub(r"\s", "", value.lower()).split("-", 1)[0] or None


def _meta_country(value: str, region: str | None) -> str | None:
    code = country_code(value)
    return code.lower() if code else None


def _meta_external_id(value: str, region: str | None) -> str | None:
    return re.sub(r"\s", "", value).lower() or None


META_RULES: dict[str, Callable[[str, str | None], str | None]] = {
    "em": _meta_email,
    "ph": _meta_phone,
    "fn": _meta_name,
    "ln": _meta_name,
    "ct": _meta_city,
    "st": _meta_state,
    "zp": _meta_zip,
    "country": _meta_country,
    "external_id": _meta_external_id,
}


def meta_normalize(field: str, value: str | None, region: str | None = None) -> str | None:
    """Meta's pre-hash form of `value` for a user_data field (em, ph, fn, ...), or None if unusable.

    `region` is the ISO country used to read national phone numbers.
    """
    if value is None:
        return None
    text = unicodedata.normalize("NFC", str(value)).strip()
    if not text:
        return None
    if SHA256_HEX.fullmatch(text):
        return text.lower()
    return META_RULES[field](text, region)


def meta_hash(field: str, value: str | None, region: str | None = None) -> str | None:
    """SHA-256 hex of Meta's normalized form; a value that is already a digest passes through."""
    normalized = meta_normalize(field, value, region)
    if normalized is None:
        return None
    return normalized if SHA256_HEX.fullmatch(normalized) else sha256_hex(normalized)
