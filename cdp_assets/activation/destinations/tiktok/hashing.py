"""TikTok Events API's pre-image rules (destinations.md 8.4): `+E.164` phones, names without whitespace, address
fields unhashed."""

from cdp_assets.privacy.hashing import (
    FieldRule,
    HashingRules,
    alnum,
    country,
    e164,
    email,
    external_id,
    no_whitespace,
    plain_postcode,
    state,
)

RULES = HashingRules("tiktok", {
    "em": FieldRule(email), "ph": FieldRule(e164), "fn": FieldRule(no_whitespace), "ln": FieldRule(no_whitespace),
    "zp": FieldRule(plain_postcode), "ct": FieldRule(alnum, hashed=False), "st": FieldRule(state, hashed=False),
    "country": FieldRule(country, hashed=False), "external_id": FieldRule(external_id)})
