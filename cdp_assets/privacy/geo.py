"""Country and region codes from the names CRMs store ("United States", "usa", "UK", "California")."""

from __future__ import annotations

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
