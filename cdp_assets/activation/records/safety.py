"""The outbound check of records syncs, by the destination's own PII policy.

A CRM or lifecycle tool may receive personal data in clear only in the fields its policy declares personal
and the sync maps; a field the policy declares personal that the sync does not map fails, and so does any
string field, outside those, holding something shaped like an email address or a phone number. Fields the
policy hashes must hold 64 lowercase hex characters.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from cdp_assets.activation.destinations.base import PiiPolicy
from cdp_assets.activation.records.config import Sync
from cdp_assets.activation.safety import HEX64, LOOKS_LIKE_EMAIL, LOOKS_LIKE_PHONE, PHONE_START


def allowed_in_clear(sync: Sync, policy: PiiPolicy) -> frozenset[str]:
    return frozenset(f.field for f in (sync.key, *sync.fields)) & policy.clear


class RecordCheck:
    """The check of one sync's outbound records, its rules worked out once (a sync checks millions)."""

    def __init__(self, sync: Sync, policy: PiiPolicy) -> None:
        self.policy = policy
        self.allowed = allowed_in_clear(sync, policy)
        self.typed = {f.field: f.type for f in (sync.key, *sync.all_fields)}

    def __call__(self, fields: Mapping[str, object], problems: Counter) -> None:
        """Count what is wrong with one outbound record, given as destination field -> value."""
        for name, value in fields.items():
            problem = self.problem(name, value)
            if problem:
                problems[problem] += 1

    def problem(self, name: str, value: object) -> str | None:
        """What is wrong with one outbound field's value, if anything."""
        if name in self.policy.hashed:
            return f"{name} is not 64 lowercase hex" if value and not HEX64.fullmatch(str(value)) else None
        if name in self.allowed:
            return None
        if name in self.policy.clear:
            return f"{name} is personal data the sync does not map"
        if isinstance(value, str) and value and self.typed.get(name, "string") == "string":
            if "@" in value and LOOKS_LIKE_EMAIL.search(value):
                return f"{name} holds something shaped like an email address"
            if value[0] in PHONE_START and LOOKS_LIKE_PHONE.fullmatch(value):
                return f"{name} holds something shaped like a phone number"
        return None

    def reads_values(self, name: str) -> bool:
        """Whether the field's values matter (hashed, or free text that may hold personal data); the others
        pass or fail whatever they hold."""
        return name in self.policy.hashed or (name not in self.allowed and name not in self.policy.clear
                                              and self.typed.get(name, "string") == "string")

    def always_fails(self, name: str) -> bool:
        return name not in self.policy.hashed and name not in self.allowed and name in self.policy.clear


def record_problems(fields: Mapping[str, object], sync: Sync, policy: PiiPolicy, problems: Counter) -> None:
    """Count what is wrong with one outbound record, given as destination field -> value."""
    RecordCheck(sync, policy)(fields, problems)
