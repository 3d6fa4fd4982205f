"""Normalization and SHA-256 hashing of personal data, per destination platform.

Personal data leaves the warehouse only through `prepare`. The platforms disagree on the pre-image
(`shared/specs/destinations.md` section 8): Meta hashes phones as digits, keeps Gmail dots and sends a
state outside the US and Canada as written (lower-cased letters only) rather than as a code, Google and
TikTok hash `+E.164` phones and Google drops Gmail dots, Pinterest keeps only the digits of a zip code, and
Google and TikTok send address fields unhashed. Every rule is checked against the section 9 vectors.
Unicode is normalized to NFC first; a value that already is a SHA-256 hex digest is lowercased and passed
through, never hashed twice.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from cdp_assets.privacy.geo import country_code, north_american_region, region_code
from cdp_assets.privacy.pii import PhoneError, sha256_hex, to_e164

SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
NAME_NOISE = re.compile(r"[\s!-/:-@\[-`{-~]")  # whitespace and ASCII punctuation
NOT_ALNUM = re.compile(r"[^a-z0-9]")
NOT_LETTER = re.compile(r"[^a-z]")
NOT_DIGIT = re.compile(r"\D")
WHITESPACE = re.compile(r"\s")
E164_SHAPE = re.compile(r"\+[1-9][0-9]{6,14}")
MIN_PHONE_DIGITS = 7
GMAIL_DOMAINS = ("gmail.com", "googlemail.com")
GENDERS = {"m": "m", "male": "m", "man": "m", "mr": "m", "f": "f", "female": "f", "woman": "f", "mrs": "f",
           "ms": "f", "miss": "f"}
PLATFORMS = ("meta", "google", "tiktok", "pinterest")

Rule = Callable[[str, str | None], str | None]


@dataclass(frozen=True)
class FieldRule:
    normalize: Rule
    hashed: bool = True


def _email(value: str, region: str | None) -> str | None:
    email = value.lower()
    return email if EMAIL_SHAPE.fullmatch(email) else None


def _google_email(value: str, region: str | None) -> str | None:
    email = _email(value, region)
    if email is None:
        return None
    local, domain = email.rsplit("@", 1)
    return f"{local.replace('.', '')}@{domain}" if domain in GMAIL_DOMAINS else email


def _e164(value: str, region: str | None) -> str | None:
    # Warehouse phones are E.164 already, validated with phonenumbers on the way in; parsing each
    # again would cost about 20 µs per event.
    if E164_SHAPE.fullmatch(value):
        return value
    try:
        return to_e164(value, region)
    except PhoneError:
        return None


def _digits_phone(value: str, region: str | None) -> str | None:
    e164 = _e164(value, region)
    if e164:
        return e164[1:]
    # Meta's documented fallback: digits only, no leading zeros. It matches only if the number
    # already carried its country code, which we cannot know, so keep only long enough ones.
    digits = NOT_DIGIT.sub("", value).lstrip("0")
    return digits if len(digits) >= MIN_PHONE_DIGITS else None


def _name(value: str, region: str | None) -> str | None:
    return NAME_NOISE.sub("", value.lower()) or None


def _lower(value: str, region: str | None) -> str | None:
    return value.lower() or None


def _no_whitespace(value: str, region: str | None) -> str | None:
    return WHITESPACE.sub("", value.lower()) or None


def _alnum(value: str, region: str | None) -> str | None:
    return NOT_ALNUM.sub("", value.lower()) or None


def _state(value: str, region: str | None) -> str | None:
    code = region_code(value)
    return code.lower() if code else None


def _meta_state(value: str, region: str | None) -> str | None:
    """A US state or Canadian province as its two-letter code; any other state lower-cased with every character
    but a-z removed (destinations.md 8.1: "lowercase, no punctuation, no special characters, no white space"):
    `NSW` -> `nsw`, `Île-de-France` -> `ledefrance`."""
    code = north_american_region(value)
    return code.lower() if code else NOT_LETTER.sub("", value.lower()) or None


def _zip(value: str, region: str | None) -> str | None:
    return WHITESPACE.sub("", value.lower()).split("-", 1)[0] or None


def _digits_zip(value: str, region: str | None) -> str | None:
    # Pinterest takes digits only; a UK or Canadian postcode would become a different code, so omit it.
    code = _zip(value, region)
    return code if code and code.isdigit() else None


def _plain_zip(value: str, region: str | None) -> str | None:
    # Sent as written but without spaces, and a US ZIP+4 as its five-digit ZIP.
    return WHITESPACE.sub("", value).split("-", 1)[0] or None


def _country(value: str, region: str | None) -> str | None:
    code = country_code(value)
    return code.lower() if code else None


def _upper_country(value: str, region: str | None) -> str | None:
    return country_code(value)


def _gender(value: str, region: str | None) -> str | None:
    return GENDERS.get(value.lower().rstrip("."))


def _pinterest_gender(value: str, region: str | None) -> str | None:
    return "n" if value.lower() in ("n", "non-binary", "nonbinary") else _gender(value, region)


def _date_of_birth(value: str, region: str | None) -> str | None:
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


def _external_id(value: str, region: str | None) -> str | None:
    return WHITESPACE.sub("", value).lower() or None


META = {"em": FieldRule(_email), "ph": FieldRule(_digits_phone), "fn": FieldRule(_name), "ln": FieldRule(_name),
        "ct": FieldRule(_alnum), "st": FieldRule(_meta_state), "zp": FieldRule(_zip), "country": FieldRule(_country),
        "ge": FieldRule(_gender), "db": FieldRule(_date_of_birth), "external_id": FieldRule(_external_id)}
RULES: dict[str, dict[str, FieldRule]] = {
    "meta": META,
    # Google hashes email, phone and names only; country and postal code travel in clear in addressInfo.
    "google": {"em": FieldRule(_google_email), "ph": FieldRule(_e164), "fn": FieldRule(_lower),
               "ln": FieldRule(_lower), "zp": FieldRule(_plain_zip, hashed=False),
               "country": FieldRule(_upper_country, hashed=False)},
    # TikTok Events API: +E.164 phones, names without whitespace, address fields unhashed.
    "tiktok": {"em": FieldRule(_email), "ph": FieldRule(_e164), "fn": FieldRule(_no_whitespace),
               "ln": FieldRule(_no_whitespace), "zp": FieldRule(_plain_zip), "ct": FieldRule(_alnum, hashed=False),
               "st": FieldRule(_state, hashed=False), "country": FieldRule(_country, hashed=False),
               "external_id": FieldRule(_external_id)},
    # Pinterest takes a two-letter state code only (destinations.md 8.5), not Meta's form of other states.
    "pinterest": {**META, "st": FieldRule(_state), "zp": FieldRule(_digits_zip), "ge": FieldRule(_pinterest_gender)},
}


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
    rule = RULES[platform][field]
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
    if normalized is None or not RULES[platform][field].hashed or SHA256_HEX.fullmatch(normalized):
        return normalized
    return sha256_hex(normalized)
