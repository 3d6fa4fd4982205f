"""Audience stage: each audience lists known profiles once (blocking: the hand-off into activation)."""

from cdp_assets.checks.gates import Gate
from cdp_assets.checks.rules import NotNull, RefersTo, Unique
from cdp_assets.checks.suites.core import PROFILES


def audience_gate(table: str) -> Gate:
    """The blocking gate every audience passes before activation reads its snapshot."""
    return Gate(table, "audience_members_are_unique",
                "Each member is a known profile and appears at most once in the audience.",
                (Unique("profile_id"), NotNull("profile_id"), RefersTo("profile_id", parent=PROFILES)))
