"""Pinterest's pre-image rules: Meta's, except a two-letter state code only (destinations.md 8.5, not Meta's
form of other states), the digits of a zip code only, and `n` for a non-binary gender."""

from cdp_assets.activation.destinations.meta.hashing import RULES as META
from cdp_assets.privacy.hashing import FieldRule, HashingRules, gender, postcode, state


def digits_zip(value: str, region: str | None) -> str | None:
    # Pinterest takes digits only; a UK or Canadian postcode would become a different code, so omit it.
    code = postcode(value, region)
    return code if code and code.isdigit() else None


def pinterest_gender(value: str, region: str | None) -> str | None:
    return "n" if value.lower() in ("n", "non-binary", "nonbinary") else gender(value, region)


RULES = HashingRules("pinterest", {**META.fields, "st": FieldRule(state), "zp": FieldRule(digits_zip),
                                   "ge": FieldRule(pinterest_gender)})
