"""What a webhook body carries: JSON values, a batch id that names the batch's content, and no credential in a
logged URL."""

from datetime import date, datetime
from decimal import Decimal

import pytest

from cdp_assets.activation.destinations.webhook.client import (
    WebhookRecords,
    batch_id,
    json_value,
    private_part,
    variables,
)
from cdp_assets.activation.transport import AUTH, OK, REJECTED, TRANSIENT
from tests.destinations.webhook_world import webhook_sync


def test_the_variables_are_named_after_the_sync():
    assert variables("zapier_leads") == ("CDP_WEBHOOK_ZAPIER_LEADS_URL", "CDP_WEBHOOK_ZAPIER_LEADS_SECRET")


@pytest.mark.parametrize(("value", "kind", "expected"), [
    (Decimal("1234.50"), "number", 1234.5), (Decimal("7.00"), "number", 7), (7, "number", 7),
    (float("nan"), "number", None), (None, "number", None), (True, "bool", True), (0, "bool", False),
    (datetime(2026, 11, 30, 10, 0), "datetime", "2026-11-30T10:00:00.000Z"), (date(2026, 11, 30), "date", "2026-11-30"),
    (545, "string", "545"), ("ada@example.com", "string", "ada@example.com"),
])
def test_values_are_sent_as_json(value, kind, expected):
    assert json_value(value, kind) == expected and type(json_value(value, kind)) is type(expected)


def test_the_batch_id_names_what_the_batch_holds_not_when_it_was_sent(tmp_path):
    records = [{"key": "p1", "record_id": "r1", "fields": {"rfm_segment": "545"}}]
    changed = [{"key": "p1", "record_id": "r1", "fields": {"rfm_segment": "555"}}]
    assert batch_id("s", "upsert", records) == batch_id("s", "upsert", [dict(r) for r in records])
    assert len({batch_id("s", "upsert", records), batch_id("s", "upsert", changed),
                batch_id("t", "upsert", records), batch_id("s", "clear", [{"record_id": "r1"}])}) == 4

    client = WebhookRecords(webhook_sync(tmp_path))
    first, again = (client.request("upsert", records, True) for _ in range(2))
    assert first.body["batch_id"] == again.body["batch_id"] == batch_id("leads_hook", "upsert", records)


@pytest.mark.parametrize(("url", "secret"), [
    ("https://hooks.zapier.com/hooks/catch/123/abc/", "/hooks/catch/123/abc/"),
    ("https://example.com/in?token=s3cr3t", "/in?token=s3cr3t"),
    ("https://example.com/", None), ("https://example.com", None),
    ("https://user:pass@example.com/in", "https://user:pass@example.com/in"),
    ("example.com/in", "example.com/in"),
])
def test_what_follows_the_host_of_a_webhook_url_is_a_secret(url, secret):
    assert private_part(url) == secret


def test_deletes_and_clears_carry_the_record_id_only(tmp_path):
    client = WebhookRecords(webhook_sync(tmp_path))
    assert client.request("delete", ["r1"], True).body["records"] == [{"record_id": "r1"}]
    assert client.request("clear", [client.left("r2", {}, "r2")], True).body["records"] == [{"record_id": "r2"}]


@pytest.mark.parametrize(("status", "kind"), [(200, OK), (202, OK), (204, OK), (408, TRANSIENT), (429, TRANSIENT),
                                              (500, TRANSIENT), (503, TRANSIENT), (401, AUTH), (403, AUTH),
                                              (400, REJECTED), (404, REJECTED), (422, REJECTED)])
def test_answers_are_read_by_status(tmp_path, status, kind):
    client = WebhookRecords(webhook_sync(tmp_path))
    client.request("upsert", [{"key": "p1", "record_id": "r1", "fields": {}}], True)
    reply = client.interpret("upsert", status, '{"error": "no"}', {"Retry-After": "3"})
    assert reply.kind == kind
    assert reply.ids == ({"r1": "r1"} if kind == OK else {})
    if kind == TRANSIENT:
        assert reply.retry_after == 3.0
