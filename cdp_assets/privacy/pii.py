"""Phone numbers read to E.164 with phonenumbers, and the SHA-256 every destination hashes with.

The normal forms built on these live in `hashing.py`; each ad platform's rules, in its destination folder.
"""

from __future__ import annotations

import hashlib

import phonenumbers


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
