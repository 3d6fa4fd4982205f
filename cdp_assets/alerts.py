"""Run-failure alerts: every failed run is recorded and, when `CDP_ALERT_WEBHOOK_URL` is set, posted there.

Runs launched from `cdp-assets` are alerted by the command when they end, so they alert whether or not a
daemon runs the sensor; the sensor leaves them alone, so nothing is posted twice.
The record is one JSON line in `CDP_ALERT_LOG` (default `data/alerts/run_failures.jsonl`), written by the
sensor from the file system: the sensor never opens the warehouse (ARCHITECTURE principle 10). The post is
Slack-compatible JSON (`text`, plus the same fields as the record), retried on 429 and 5xx with urllib3's
backoff. Messages are scrubbed of every secret in the environment and of email addresses; the webhook URL
itself (which carries its own token) is never logged.
"""

import json
import os
import re
from datetime import UTC, datetime
from typing import Any, Protocol

import dagster as dg
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from cdp_assets import settings
from cdp_assets.activation.transport import scrub

# A webhook sync's URL (CDP_WEBHOOK_<NAME>_URL) is its credential, as the alert webhook's is.
SECRET_NAMES = re.compile(r"(TOKEN|SECRET|PASSWORD|_KEY|WEBHOOK_URL)$|^CDP_WEBHOOK_\w+_URL$")
EMAIL = re.compile(r"[^\s@'\"<>(),;:]+@[^\s@'\"<>(),;:]+\.[A-Za-z]{2,}")
PASSWORD_IN_URL = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
MESSAGE_LIMIT = 2_000
# Runs started by `cdp-assets` carry this tag and are alerted by the command itself, daemon or not.
LAUNCHED_BY_TAG = "cdp/launched_by"


class ErrorInfo(Protocol):
    """What Dagster records of an error: its message and the error that caused it."""

    message: str
    cause: "ErrorInfo | None"


def secret_values() -> list[str]:
    """Every value of an environment variable named like a secret (…_TOKEN, …_SECRET, …_PASSWORD, …)."""
    return [value for name, value in os.environ.items() if SECRET_NAMES.search(name) and len(value) >= 4]


def clean(text: str) -> str:
    """A message fit for a log or a chat: no secret, no password in a URL, no email address."""
    text = PASSWORD_IN_URL.sub(r"\1[redacted]@", scrub(text, secret_values()))
    return EMAIL.sub("[email]", text)[:MESSAGE_LIMIT]


def failure_record(run: dg.DagsterRun, message: str, steps: list[tuple[str, str]], when: datetime) -> dict[str, Any]:
    """What is recorded and posted about one failed run."""
    partition = run.tags.get("dagster/partition") or (
        f"{run.tags['dagster/asset_partition_range_start']}..{run.tags['dagster/asset_partition_range_end']}"
        if "dagster/asset_partition_range_start" in run.tags else None)
    failed = [{"step": step, "error": clean(error)} for step, error in steps]
    text = (f"cdp_assets: run {run.run_id[:8]} of {run.job_name}"
            f"{f' for {partition}' if partition else ''} failed: {clean(message)}")
    if failed:
        text += "\n" + "\n".join(f"- {f['step']}: {f['error'].splitlines()[0] if f['error'] else ''}" for f in failed)
    return {"text": text, "run_id": run.run_id, "job": run.job_name, "partition": partition,
            "failed_steps": failed, "failed_at": when.isoformat()}


def root_cause(error: ErrorInfo) -> str:
    """The innermost error's message: Dagster wraps what the asset raised in its own step error."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def record(entry: dict[str, Any]) -> None:
    path = settings.alert_log()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


def post(url: str, entry: dict[str, Any], timeout: float = 10.0) -> int:
    """POST the entry as JSON; the final HTTP status after urllib3's retries."""
    session = requests.Session()
    retry = Retry(total=3, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504),
                  allowed_methods=frozenset({"POST"}), raise_on_status=False, respect_retry_after_header=True)
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    with session:
        return session.post(url, json=entry, timeout=timeout).status_code


def alert(entry: dict[str, Any], log: Any = None) -> None:
    """Record a failure in CDP_ALERT_LOG and post it to CDP_ALERT_WEBHOOK_URL when that is set."""
    record(entry)
    url = settings.alert_webhook_url()
    say = log.info if log else (lambda _: None)
    warn = log.warning if log else (lambda _: None)
    if url is None:
        say(f"run {entry['run_id']} failure recorded in {settings.alert_log()}; CDP_ALERT_WEBHOOK_URL is not set, "
            "so nothing was posted")
        return
    try:
        status = post(url, entry)
    except requests.RequestException as error:
        warn(f"could not post the failure of run {entry['run_id']} to CDP_ALERT_WEBHOOK_URL: "
             f"{clean(type(error).__name__ + ': ' + str(error))}")
        return
    if status >= 300:
        warn(f"CDP_ALERT_WEBHOOK_URL answered HTTP {status} for run {entry['run_id']}")


@dg.run_failure_sensor(
    name="run_failure_alerts",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Records every failed run in CDP_ALERT_LOG and posts it to CDP_ALERT_WEBHOOK_URL when set; "
                "messages carry no secret and no email address. Runs launched by `cdp-assets` are alerted by "
                "the command itself.",
)
def run_failure_alerts(context: dg.RunFailureSensorContext) -> None:
    if context.dagster_run.tags.get(LAUNCHED_BY_TAG) == "cli":
        return
    steps = [(event.step_key or "", root_cause(event.event_specific_data.error)
              if event.event_specific_data and event.event_specific_data.error else "")
             for event in context.get_step_failure_events()]
    alert(failure_record(context.dagster_run, context.failure_event.message or "", steps, datetime.now(UTC)),
          context.log)
