"""What is checked on every outbound body before anything leaves: no raw personal data, unique event ids,
hashed fields that really are SHA-256 hex; and the predicted match quality of each batch.

The check walks the JSON of each request body by its platform's PII policy (declared in the platform's
destination folder). Fields the platform hashes must hold 64 lowercase hex characters; every other string is
scanned for something shaped like an email address or a phone number, except the fields it takes in clear by
design (IP, user agent, click and browser ids) and those that hold no personal data (URLs, ids).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from cdp_assets.activation.destinations.ads import AdPlatform
from cdp_assets.activation.destinations.base import PiiPolicy

HEX64 = re.compile(r"[0-9a-f]{64}")
LOOKS_LIKE_EMAIL = re.compile(r"[^@\s\"]+@[^@\s\"]+\.[A-Za-z]{2,}")
LOOKS_LIKE_PHONE = re.compile(r"\+?[0-9][0-9 ().-]{7,}[0-9]")
PHONE_START = frozenset("+0123456789")
# Weights after Meta's Event Match Quality guidance: direct contact details count most, then click and
# browser ids, then the address fields that only help in combination. A score is out of 10.
MATCH_WEIGHTS = {"email": 3.0, "phone": 2.5, "click_id": 1.5, "browser_id": 1.0, "external_id": 1.0,
                 "ip_and_agent": 1.0, "name": 0.5, "address": 0.5}
# Where each platform's event carries the person: Meta, Pinterest and GA4 user_data, TikTok user, Google
# userIdentifiers (and gclid at the top).
USER_SECTIONS = ("user_data", "user", "userIdentifiers")
IDENTIFIER_KINDS = {
    "em": "email", "email": "email", "hashedEmail": "email", "ph": "phone", "phone": "phone",
    "hashedPhoneNumber": "phone", "fbc": "click_id", "gclid": "click_id", "ttclid": "click_id", "click_id": "click_id",
    "fbp": "browser_id", "external_id": "external_id", "fn": "name", "ln": "name", "hashedFirstName": "name",
    "zp": "address", "zip_code": "address", "ct": "address", "st": "address", "addressInfo": "address",
    "client_ip_address": "ip", "ip": "ip", "client_user_agent": "agent", "user_agent": "agent",
    "sha256_email_address": "email", "sha256_phone_number": "phone", "sha256_first_name": "name",
    "postal_code": "address",
}


def _walk(node: Any, key: str | None, pii: PiiPolicy, unscanned: frozenset[str], problems: Counter) -> None:
    # Plain dict/list/str checks: JSON bodies hold nothing else, and ABC checks cost 3x as much.
    if isinstance(node, dict):
        for k, v in node.items():
            _walk(v, k, pii, unscanned, problems)
    elif isinstance(node, list):
        for v in node:
            _walk(v, key, pii, unscanned, problems)
    elif isinstance(node, str) and node:
        if key in pii.hashed:
            if not HEX64.fullmatch(node):
                problems[f"{key} is not 64 lowercase hex"] += 1
        elif key not in unscanned:
            if "@" in node and LOOKS_LIKE_EMAIL.search(node):
                problems[f"{key} holds something shaped like an email address"] += 1
            elif node[0] in PHONE_START and LOOKS_LIKE_PHONE.fullmatch(node):
                problems[f"{key} holds something shaped like a phone number"] += 1


def _audience_rows(body: Mapping[str, Any], pii: PiiPolicy, problems: Counter) -> bool:
    payload = body.get("payload")
    if not isinstance(payload, Mapping) or "schema" not in payload:
        return False
    hashed = [n for n, column in enumerate(payload["schema"]) if column in pii.hashed]
    for row in payload.get("data") or []:
        for n in hashed:
            if row[n] and not HEX64.fullmatch(row[n]):
                problems[f"{payload['schema'][n]} is not 64 lowercase hex"] += 1
    return True


def body_problems(bodies: Iterable[Mapping[str, Any]], event_ids: Iterable[tuple[str, str]],
                  platform: AdPlatform) -> dict[str, int]:
    """Counts of each problem found in these request bodies to `platform`, judged by its PII policy;
    `event_ids` are (event_name, event_id) pairs."""
    problems: Counter = Counter()
    pii = platform.pii
    unscanned = pii.clear | pii.exempt
    for body in bodies:
        if not _audience_rows(body, pii, problems):
            _walk(body, None, pii, unscanned, problems)
    repeated = sum(n - 1 for n in Counter(event_ids).values() if n > 1)
    if repeated:
        problems["event ids repeated in one plan"] = repeated
    return dict(problems)


def _kinds(node: Any, found: set[str]) -> None:
    if isinstance(node, list):
        for value in node:
            _kinds(value, found)
    elif isinstance(node, dict):
        for key, value in node.items():
            if value and key in IDENTIFIER_KINDS:
                found.add(IDENTIFIER_KINDS[key])
            # Only Google nests identifiers (userIdentifiers[].addressInfo); lists of hashes need no visit.
            if isinstance(value, dict) or (isinstance(value, list) and value and isinstance(value[0], dict)):
                _kinds(value, found)


def match_quality(payload: Mapping[str, Any]) -> float:
    """Predicted match quality of one event, 0-10, from the identifier kinds its user section carries."""
    found: set[str] = set()
    for section in USER_SECTIONS:
        _kinds(payload.get(section), found)
    if payload.get("gclid"):
        found.add("click_id")
    if {"ip", "agent"} <= found:
        found.add("ip_and_agent")
    found -= {"ip", "agent"}
    return min(10.0, round(sum(MATCH_WEIGHTS[k] for k in found) * 10 / sum(MATCH_WEIGHTS.values()), 2))
