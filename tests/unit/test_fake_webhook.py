"""The fake webhook receiver checks signatures and bodies, and keeps one copy of each batch."""

import hashlib
import hmac
import json
import time
from collections import Counter

import pytest
import requests

from tests.fakes.webhook import FakeWebhook

SECRET = "whsec-test-secret"


@pytest.fixture
def fake():
    with FakeWebhook(secret=SECRET) as server:
        yield server
    assert server.crashes == []


def body(batch_id: str = "b1", operation: str = "upsert", records: list | None = None) -> dict:
    return {"sync": "s", "operation": operation, "sent_at": "2026-12-02T15:42:11.123Z", "batch_id": batch_id,
            "records": records if records is not None else [{"key": "p1", "record_id": "r1", "fields": {"n": 1}}]}


def post(fake: FakeWebhook, payload: dict, secret: str = SECRET, timestamp: int | None = None) -> requests.Response:
    raw = json.dumps(payload).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signed = hmac.new(secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    return requests.post(fake.hook_url, data=raw, timeout=10, headers={
        "Content-Type": "application/json", "X-CDP-Timestamp": stamp, "X-CDP-Signature": f"sha256={signed}"})


def test_a_signed_batch_is_applied(fake):
    answer = post(fake, body())
    assert (answer.status_code, fake.deliveries, fake.held) == (200, Counter({"r1": 1}), {"r1": {"key": "p1", "n": 1}})


@pytest.mark.parametrize(("secret", "age"), [("wrong", 0), (SECRET, 301)])
def test_a_bad_signature_or_an_old_timestamp_is_401(fake, secret, age):
    answer = post(fake, body(), secret=secret, timestamp=int(time.time()) - age)
    assert (answer.status_code, fake.deliveries) == (401, Counter())


def test_a_batch_id_seen_before_is_acknowledged_and_not_applied_again(fake):
    post(fake, body())
    answer = post(fake, body())
    assert (answer.status_code, answer.json(), fake.deliveries, fake.duplicates) == (
        200, {"duplicate": True}, Counter({"r1": 1}), 1)


def test_a_poisoned_batch_is_422(fake):
    fake.poison("1")
    assert (post(fake, body()).status_code, fake.deliveries) == (422, Counter())


@pytest.mark.parametrize("records", [[], [{"record_id": "r1"}], [{"key": "p1", "record_id": "r1", "fields": []}]])
def test_a_malformed_upsert_is_400(fake, records):
    assert post(fake, body(records=records)).status_code == 400


def test_a_clear_or_delete_carrying_a_key_is_400(fake):
    assert post(fake, body(operation="delete", records=[{"key": "ada@example.com", "record_id": "r1"}])
                ).status_code == 400
    assert post(fake, body("b2", "delete", [{"record_id": "r1"}])).status_code == 200


def test_faults_come_first_and_accept_then_drop_applies(fake):
    fake.fail_next("429", "accept_then_drop")
    answer = post(fake, body())
    assert (answer.status_code, answer.headers["Retry-After"]) == (429, "0")
    with pytest.raises(requests.ConnectionError):
        post(fake, body())
    assert fake.deliveries == Counter({"r1": 1})
