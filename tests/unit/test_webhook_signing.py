"""The webhook signature: HMAC-SHA256 of `<timestamp>.<raw body>`, made per attempt over the bytes sent."""

from types import SimpleNamespace

import pytest

from cdp_assets.activation.destinations.webhook import signing
from cdp_assets.activation.destinations.webhook.client import WebhookRecords
from cdp_assets.activation.sender import Item, Sender
from cdp_assets.activation.transport import RetryPolicy
from cdp_assets.resources.warehouse import WarehouseResource
from tests.destinations.webhook_world import webhook_sync

SECRET = "whsec-test-secret"
BODY = b'{"sync":"zapier_leads","records":[]}'
# printf '%s' '1764690131.{"sync":"zapier_leads","records":[]}' | openssl dgst -sha256 -hmac 'whsec-test-secret'
VECTOR = "sha256=efd1ef3e612cc71b100094401a1b4c5293b5a36a497d448ddd25210fd994732c"
NOW = 1764690131


def test_the_signature_matches_an_independent_hmac_sha256():
    assert signing.signature(SECRET, str(NOW), BODY) == VECTOR


def test_the_headers_carry_the_timestamp_that_was_signed():
    assert signing.signed_headers(SECRET, BODY, now=NOW + 0.9) == {"X-CDP-Timestamp": str(NOW),
                                                                   "X-CDP-Signature": VECTOR}


def test_a_fresh_signature_verifies():
    assert signing.verify(SECRET, BODY, str(NOW), VECTOR, now=NOW + 299)


@pytest.mark.parametrize(("secret", "body", "timestamp", "signed", "now"), [
    ("another-secret", BODY, str(NOW), VECTOR, NOW),  # another key
    (SECRET, BODY.replace(b"[]", b"[{}]"), str(NOW), VECTOR, NOW),  # a body changed on the way
    (SECRET, BODY, str(NOW + 1), VECTOR, NOW),  # a timestamp changed on the way
    (SECRET, BODY, str(NOW), VECTOR, NOW + 301),  # replayed more than five minutes later
    (SECRET, BODY, str(NOW), VECTOR, NOW - 301),  # from a clock far ahead
    (SECRET, BODY, None, VECTOR, NOW),
    (SECRET, BODY, str(NOW), None, NOW),
    (SECRET, BODY, "1764690131.0", VECTOR, NOW),
    (SECRET, BODY, "١٧٦٤٦٩٠١٣١", VECTOR, NOW),  # digits, but not ASCII ones
    (SECRET, BODY, str(NOW), VECTOR.upper(), NOW),
])
def test_anything_else_is_refused(secret, body, timestamp, signed, now):
    assert not signing.verify(secret, body, timestamp, signed, now=now)


def test_the_client_signs_the_bytes_the_request_sends(tmp_path, monkeypatch):
    monkeypatch.setenv("CDP_WEBHOOK_LEADS_HOOK_SECRET", SECRET)
    client = WebhookRecords(webhook_sync(tmp_path))
    request = client.request("upsert", [client.record("ada@example.com", {
        "email": "ada@example.com", "first_name": "Adá", "lifetime_value": None, "order_count": 7,
        "last_order_at": None, "rfm_segment": "545", "audience_vip": True}, "trace-1")], True)

    headers = client.sign(request)

    assert request.data == request.text.encode("utf-8") and "Adá".encode() in request.data
    assert signing.verify(SECRET, request.data, headers["X-CDP-Timestamp"], headers["X-CDP-Signature"])


class Answers:
    """A requests session answering 503, then 200, and keeping what each attempt sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, dict]] = []

    def request(self, method, url, data=None, headers=None, timeout=None, allow_redirects=True):
        self.sent.append((data, dict(headers)))
        status = 503 if len(self.sent) == 1 else 200
        return SimpleNamespace(status_code=status, text="", headers={})


def test_a_retried_attempt_is_signed_again_when_it_is_sent(tmp_path, monkeypatch):
    clock = iter([NOW, NOW + 5])
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: next(clock)))
    monkeypatch.setenv("CDP_WEBHOOK_LEADS_HOOK_URL", "https://hooks.example.com/catch/1")
    monkeypatch.setenv("CDP_WEBHOOK_LEADS_HOOK_SECRET", SECRET)
    client = WebhookRecords(webhook_sync(tmp_path))
    session = Answers()
    sender = Sender(WarehouseResource(url=f"duckdb:///{tmp_path / 'w.duckdb'}"), "leads_hook", client, "run-1",
                    RetryPolicy(attempts=3, base_seconds=0.001, max_seconds=0.01, sleep=lambda s: None), session)

    sender.deliver("upsert", [Item("trace-1", client.record("p1", {f.field: None for f in client.sync.all_fields},
                                                               "trace-1"), "2026-12-01")], 100, {})

    [(first, first_headers), (second, second_headers)] = session.sent
    assert first == second  # the same bytes, twice
    assert (first_headers["X-CDP-Timestamp"], second_headers["X-CDP-Timestamp"]) == (str(NOW), str(NOW + 5))
    for headers in (first_headers, second_headers):
        assert headers["Content-Type"] == "application/json"
        assert headers["X-CDP-Signature"] == signing.signature(SECRET, headers["X-CDP-Timestamp"], first)
    assert sender.tally.sent == 1
