"""Run-failure alerts: every failed run is recorded, posted when a webhook is set, and carries no secret."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from cdp_assets.alerts import clean, run_failure_alerts


@dg.asset
def breaks() -> None:
    raise RuntimeError("warehouse at postgresql://cdp:hunter22@db/cdp refused jane.doe@example.com with tok_abcdef")


@pytest.fixture
def failed_run_context():
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([breaks], instance=instance, raise_on_error=False)
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    return dg.build_run_status_sensor_context(
        sensor_name="run_failure_alerts", dagster_event=failure, dagster_instance=instance,
        dagster_run=result.dagster_run).for_run_failure()


@pytest.fixture
def webhook():
    """A local webhook that answers 503 once, then 200, and keeps what it received."""
    received, answers = [], [503, 200]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(answers.pop(0) if answers else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/T000/secret-path", received
    server.shutdown()


def test_clean_removes_secrets_passwords_and_emails(monkeypatch):
    monkeypatch.setenv("META_ACCESS_TOKEN", "tok_abcdef")
    assert clean("postgresql://cdp:hunter22@db/cdp refused Jane.Doe@Example.com with tok_abcdef") == \
        "postgresql://cdp:[redacted]@db/cdp refused [email] with [redacted]"


def test_a_failed_run_is_recorded_without_a_webhook(failed_run_context, tmp_path, monkeypatch):
    monkeypatch.setenv("CDP_ALERT_LOG", str(tmp_path / "failures.jsonl"))
    run_failure_alerts(failed_run_context)
    entries = [json.loads(line) for line in (tmp_path / "failures.jsonl").read_text().splitlines()]
    assert len(entries) == 1
    assert entries[0]["run_id"] == failed_run_context.dagster_run.run_id
    assert [s["step"] for s in entries[0]["failed_steps"]] == ["breaks"]


def test_a_failed_run_is_posted_to_the_webhook_after_a_retry(failed_run_context, webhook, tmp_path, monkeypatch):
    url, received = webhook
    monkeypatch.setenv("CDP_ALERT_LOG", str(tmp_path / "failures.jsonl"))
    monkeypatch.setenv("CDP_ALERT_WEBHOOK_URL", url)
    monkeypatch.setenv("META_ACCESS_TOKEN", "tok_abcdef")
    run_failure_alerts(failed_run_context)
    assert len(received) == 2  # the 503 was retried
    assert received[1]["text"].startswith(f"cdp_assets: run {failed_run_context.dagster_run.run_id[:8]} of "
                                          "__ephemeral_asset_job__ failed")
    posted = json.dumps(received[1])
    assert "breaks: RuntimeError" in received[1]["text"]
    assert "hunter22" not in posted and "jane.doe" not in posted and "tok_abcdef" not in posted


def test_a_run_launched_by_the_command_line_is_left_to_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("CDP_ALERT_LOG", str(tmp_path / "failures.jsonl"))
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([breaks], instance=instance, raise_on_error=False, tags={"cdp/launched_by": "cli"})
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alerts", dagster_event=failure, dagster_instance=instance,
        dagster_run=result.dagster_run).for_run_failure()

    run_failure_alerts(context)

    assert not (tmp_path / "failures.jsonl").exists()


def test_clean_removes_a_webhook_syncs_url(monkeypatch):
    monkeypatch.setenv("CDP_WEBHOOK_ZAPIER_LEADS_URL", "https://hooks.zapier.com/hooks/catch/123/abcdef/")
    assert clean("POST https://hooks.zapier.com/hooks/catch/123/abcdef/ failed") == "POST [redacted] failed"
