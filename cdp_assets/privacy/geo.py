"""Country and region codes from the names CRMs store ("United States", "usa", "UK", "California")."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import pycountry

# Common names that are not ISO 3166 names or codes.
COUNTRY_ALIASES = {"uk": "GB", "england": "GB", "scotland": "GB", "wales": "GB", "great britain": "GB",
                   "america": "US", "united states of america": "US"}


@lru_cache(maxsize=4096)
def country_code(text: str | None) -> str | None:
    """ISO 3166-1 alpha-2 code (upper case) for a country name or code, or None if unknown."""
    if not text or not text.strip():
        return None
    cleaned = " ".join(text.split()).lower()
    if cleaned in COUNTRY_ALIASES:
        return COUNTRY_ALIASES[cleaned]
    try:
        return pycountry.countries.lookup(cleaned).alpha_2
    except LookupError:
        return None


@lru_cache(maxsize=4096)
def region_code(text: str | None) -> str | None:
    """The subdivision part of ISO 3166-2 ("CA" for "California" or "ca", "ON" for "Ontario"), or None."""
    if not text or not text.strip():
        return None
    cleaned = " ".join(text.split())
    if len(cleaned) == 2 and cleaned.isalpha():
        return cleaned.upper()
    try:
        return pycountry.subdivisions.lookup(cleaned).code.split("-", 1)[1]
    except LookupError:
        return None


def _region_key(text: str) -> str:
    """A region name or code as looked up: lower-case ASCII letters only ("Québec" and "quebec" alike)."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", plain.lower())


@lru_cache(maxsize=1)
def _north_american_regions() -> dict[str, str]:
    regions = {}
    for country in ("US", "CA"):
        for subdivision in pycountry.subdivisions.get(country_code=country):
            code = subdivision.code.split("-", 1)[1]
            regions[_region_key(code)] = regions[_region_key(subdivision.name)] = code
    return regions


@lru_cache(maxsize=4096)
def north_american_region(text: str | None) -> str | None:
    """The two-letter code ("CA", "ON") of a US state or territory or a Canadian province or territory, named
    by its code or its name (matched ignoring case, accents, spaces and punctuation), or None."""
    return _north_american_regions().get(_region_key(text)) if text else None
