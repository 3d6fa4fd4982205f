"""One real `dagster dev` per test worker, on 127.0.0.1, against a temporary home, landing folder and warehouse.

The landing folder holds the GA4 traffic sample only (no transactions, no CRM file), so the CRM sensor (running,
as it ships) has nothing to launch, and the daily schedule's hour is set twelve hours away, so the runs these
tests make are the only ones in the queue.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cdp_assets import settings
from cdp_assets.activation.destinations.registry import ad_platforms
from cdp_assets.sample_data import write_ga4_sample
from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts" / "ui"
GA4_DAYS = 3
# Deadlines for a loaded 2-core machine (a run takes about 20 s when idle, several times that under load):
# generous, because a deadline only ever decides how long a real failure takes to report.
STARTUP_DEADLINE = timedelta(minutes=10)
RUN_DEADLINE = timedelta(minutes=15)
SHUTDOWN_GRACE = timedelta(minutes=3)  # dagster dev gives its webserver and daemon 60 s each to stop
STRAGGLER_GRACE = timedelta(seconds=30)
POLL_SECONDS = 0.5
RUN_FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
BACKFILL_FINISHED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

RUN_QUERY = """query($id: ID!) {
    runOrError(runId: $id) { __typename ... on Run { status stepStats { stepKey status }
        assetMaterializations { assetKey { path } } } ... on PythonError { message } }
    logsForRun(runId: $id) { ... on EventConnection { events {
        ... on ExecutionStepFailureEvent { stepKey error { message causes { message } } } } } } }"""
BACKFILL_QUERY = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
    ... on PartitionBackfill { status error { message } runs { runId } } ... on PythonError { message } } }"""


@dataclass(frozen=True)
class Run:
    """What a run came to: its status, the steps that failed (with the first line of their error), what it wrote."""
    run_id: str
    status: str
    failed_steps: dict[str, str] = field(default_factory=dict)
    materialized: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        failed = "; ".join(f"{step}: {error}" for step, error in self.failed_steps.items()) or "none"
        return f"run {self.run_id} is {self.status} (failed steps: {failed})"


@dataclass(frozen=True)
class Backfill:
    backfill_id: str
    status: str
    runs: list[Run]
    error: str | None = None

    def __str__(self) -> str:
        runs = "; ".join(str(run) for run in self.runs) or "no runs yet"
        return f"backfill {self.backfill_id} is {self.status}{f' ({self.error})' if self.error else ''}: {runs}"


@dataclass
class DagsterDev:
    url: str
    home: Path
    log: Path

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(f"{self.url}/graphql", data=json.dumps(
            {"query": query, "variables": variables or {}}).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.load(response)
        assert "errors" not in answer, answer["errors"]
        return answer["data"]

    def wait_for(self, what: str, probe: Callable, state: Callable[[], str], deadline: timedelta):
        """Poll `probe()` until it returns something truthy; past the deadline fail with `state()`, the thing
        waited for as it stands, and the end of the server's log."""
        end = time.monotonic() + deadline.total_seconds()
        while time.monotonic() < end:
            found = probe()
            if found:
                return found
            time.sleep(POLL_SECONDS)
        pytest.fail(f"timed out after {deadline.total_seconds() / 60:g} min waiting for {what}: {state()}\n"
                    f"dagster dev log ends:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def run(self, run_id: str) -> Run:
        data = self.graphql(RUN_QUERY, {"id": run_id})
        run = data["runOrError"]
        if run["__typename"] != "Run":
            return Run(run_id, run["__typename"], {"(run)": run.get("message", "")})
        errors = {e["stepKey"]: root_cause(e["error"])
                  for e in data["logsForRun"].get("events", []) if e.get("stepKey") and e.get("error")}
        failed = {s["stepKey"]: errors.get(s["stepKey"], "no error recorded")
                  for s in run["stepStats"] if s["status"] == "FAILURE"}
        materialized = ["/".join(m["assetKey"]["path"]) for m in run["assetMaterializations"]]
        return Run(run_id, run["status"], failed, materialized)

    def finished_run(self, run_id: str, what: str) -> Run:
        """The run once it has finished (whatever its outcome)."""
        def finished() -> bool:
            found = self.graphql("query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }",
                                 {"id": run_id})["runOrError"]
            return found.get("status") in RUN_FINISHED
        self.wait_for(f"{what} to finish", finished, lambda: str(self.run(run_id)), RUN_DEADLINE)
        return self.run(run_id)

    def backfill(self, backfill_id: str) -> Backfill:
        found = self.graphql(BACKFILL_QUERY, {"id": backfill_id})["partitionBackfillOrError"]
        if found["__typename"] != "PartitionBackfill":
            return Backfill(backfill_id, found["__typename"], [], found.get("message"))
        error = (found["error"] or {}).get("message")
        return Backfill(backfill_id, found["status"], [self.run(r["runId"]) for r in found["runs"]],
                        error.strip().splitlines()[0] if error else None)

    def finished_backfill(self, backfill_id: str, what: str) -> Backfill:
        """The backfill once it and its runs have finished (whatever their outcome)."""
        def finished() -> bool:
            found = self.graphql(BACKFILL_QUERY, {"id": backfill_id})["partitionBackfillOrError"]
            return found.get("status") in BACKFILL_FINISHED
        self.wait_for(f"{what} to finish", finished, lambda: str(self.backfill(backfill_id)), RUN_DEADLINE)
        return self.backfill(backfill_id)


def root_cause(error: dict) -> str:
    """The first line of the innermost error: the outer one only says which step raised it."""
    messages = [error["message"], *(cause["message"] for cause in error["causes"])]
    return messages[-1].strip().splitlines()[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_environment(home: Path, landing: Path) -> dict[str, str]:
    """The developer's environment without any cdp or destination setting, plus this server's own."""
    ours = {v for platform in ad_platforms().values() for v in platform.variables}
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("CDP_", "DAGSTER_", "GA4_", "HUBSPOT_")) and k not in ours}
    # A daily tick during the session would queue the whole graph ahead of the tests' own runs.
    far_hour = (datetime.now(settings.timezone()).hour + 12) % 24
    return {**environment, "DAGSTER_HOME": str(home), "CDP_WAREHOUSE_URL": f"duckdb:///{home / 'warehouse.duckdb'}",
            "CDP_LANDING_DIR": str(landing), "CDP_EGRESS_MODE": "dry_run", "GX_ANALYTICS_ENABLED": "false",
            "CDP_ALERT_LOG": str(home / "run_failures.jsonl"), "CDP_SCHEDULE_HOUR": str(far_hour)}


# Starts dagster dev so that SIGTERM always stops it. dagster dev handles SIGTERM as it handles SIGINT, and a
# process started with SIGINT ignored (a background job of a script, nohup) ignores both, as do all its children.
# On Linux it is also sent SIGTERM if this test process dies before its teardown (a CI timeout's SIGKILL).
LAUNCHER = """import ctypes, os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
if sys.platform == "linux":
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != int(sys.argv[1]):
        sys.exit("the test process is gone")
os.execv(sys.argv[2], sys.argv[2:])
"""


def stoppable(command: list[str]) -> list[str]:
    return [sys.executable, "-c", LAUNCHER, str(os.getpid()), *command]


def live_members(group: int) -> list[int]:
    """The processes of a process group that are still running (zombies waiting to be reaped are not)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it ended meanwhile
            continue
        state, _parent, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == group and state != "Z":
            members.append(int(entry.name))
    return members


def stop(process: subprocess.Popen) -> list[int]:
    """Stop dagster dev and everything it started (webserver, daemon, code servers, run workers), and wait until
    none of its process group runs. SIGTERM goes to dagster dev first, which shuts the others down in order
    (signalled all at once, they relaunch a code server that outlives them); then to whatever of the group is
    left; SIGKILL after the grace period. Returns the processes that survived even SIGKILL (none, unless one is
    stuck in the kernel)."""
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=SHUTDOWN_GRACE.total_seconds())
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return []
        end = time.monotonic() + STRAGGLER_GRACE.total_seconds()
        while time.monotonic() < end:
            process.poll()  # reaps dagster dev itself; init reaps its children
            if not live_members(process.pid):
                return []
            time.sleep(POLL_SECONDS)
    return live_members(process.pid)


@pytest.fixture(scope="session")
def dagster_dev(tmp_path_factory) -> Iterator[DagsterDev]:
    dagster = Path(sys.executable).with_name("dagster")
    require(dagster.exists(), f"{dagster} is not installed (dagster-webserver comes with `make .venv/.installed`)")
    home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    landing = home / "landing"
    end = settings.yesterday()
    write_ga4_sample(landing, end - timedelta(days=GA4_DAYS - 1), end)
    (landing / "ga4" / "transactions.jsonl").touch()  # the sample's transactions come with CRM orders
    (landing / "crm").mkdir()
    port = free_port()
    log = home / "dagster_dev.log"
    with log.open("w") as out:
        # In its own process group, so the webserver, the daemon and their code servers all stop together.
        process = subprocess.Popen(
            stoppable(
                [str(dagster), "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)]),
            cwd=home, env=server_environment(home, landing), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    server = DagsterDev(url=f"http://127.0.0.1:{port}", home=home, log=log)
    try:
        server.wait_for("the webserver and its code location to load", lambda: _loaded(server, process),
                        lambda: "the workspace is not loaded yet", STARTUP_DEADLINE)
        yield server
    finally:
        survivors = stop(process)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, ARTIFACTS / "dagster_dev.log")  # the home goes; its log stays for whoever reads a failure
        shutil.rmtree(home)
        assert survivors == [], f"dagster dev's processes {survivors} survived SIGKILL"


def _loaded(server: DagsterDev, process: subprocess.Popen) -> bool:
    """Whether every code location has loaded; a location that failed to load fails the tests at once."""
    if process.poll() is not None:
        pytest.fail(f"dagster dev exited with {process.returncode}:\n{server.log_tail()}")
    try:
        data = server.graphql("{ workspaceOrError { ... on Workspace { locationEntries { name "
                              "locationOrLoadError { __typename ... on PythonError { message } } } } } }")
    except OSError:
        return False
    entries = data["workspaceOrError"]["locationEntries"]
    for entry in entries:
        if (entry["locationOrLoadError"] or {}).get("__typename") == "PythonError":
            pytest.fail(f"code location {entry['name']} failed to load: {entry['locationOrLoadError']['message']}")
    return bool(entries) and all(e["locationOrLoadError"] for e in entries)
