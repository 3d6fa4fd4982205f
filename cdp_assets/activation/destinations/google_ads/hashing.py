"""Google's pre-image rules (destinations.md 8.3): Gmail dots dropped, `+E.164` phones, names lower-cased;
email, phone and names are hashed, while country and postal code travel in clear in `addressInfo`."""

from cdp_assets.privacy.hashing import FieldRule, HashingRules, e164, email, lower, plain_postcode, upper_country

GMAIL_DOMAINS = ("gmail.com", "googlemail.com")


def google_email(value: str, region: str | None) -> str | None:
    """The address lower-cased, and for Gmail without the dots of its local part (Gmail ignores them)."""
    address = email(value, region)
    if address is None:
        return None
    local, domain = address.rsplit("@", 1)
    return f"{local.replace('.', '')}@{domain}" if domain in GMAIL_DOMAINS else address


RULES = HashingRules("google", {
    "em": FieldRule(google_email), "ph": FieldRule(e164), "fn": FieldRule(lower), "ln": FieldRule(lower),
    "zp": FieldRule(plain_postcode, hashed=False), "country": FieldRule(upper_country, hashed=False)})
