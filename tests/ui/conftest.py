"""One real `dagster dev` per test worker, on 127.0.0.1, against a temporary home, landing folder and warehouse.

The landing folder holds the GA4 traffic sample only (no transactions, no CRM file), so the CRM sensor (running,
as it ships) has nothing to launch and the runs these tests make are the only ones in the queue.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from cdp_assets import settings
from cdp_assets.activation.config import PLATFORMS
from cdp_assets.sample_data import write_ga4_sample
from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 180
GA4_DAYS = 3


@dataclass
class DagsterDev:
    url: str
    home: Path
    log: Path

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(f"{self.url}/graphql", data=json.dumps(
            {"query": query, "variables": variables or {}}).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
        assert "errors" not in answer, answer["errors"]
        return answer["data"]

    def wait_for(self, what: str, probe, timeout: float = 240.0, every: float = 2.0):
        """Poll `probe()` until it returns something truthy; fail naming `what` and the server log's tail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = probe()
            if found:
                return found
            time.sleep(every)
        tail = self.log.read_text(errors="replace")[-4000:]
        pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; dagster dev log ends:\n{tail}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_environment(home: Path, landing: Path) -> dict[str, str]:
    """The developer's environment without any cdp or destination setting, plus this server's own."""
    ours = {v for *_, variables in PLATFORMS.values() for v in variables}
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("CDP_", "DAGSTER_", "GA4_", "HUBSPOT_")) and k not in ours}
    return {**environment, "DAGSTER_HOME": str(home), "CDP_WAREHOUSE_URL": f"duckdb:///{home / 'warehouse.duckdb'}",
            "CDP_LANDING_DIR": str(landing), "CDP_EGRESS_MODE": "dry_run", "GX_ANALYTICS_ENABLED": "false",
            "CDP_ALERT_LOG": str(home / "run_failures.jsonl")}


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
            [str(dagster), "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
            cwd=home, env=server_environment(home, landing), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    server = DagsterDev(url=f"http://127.0.0.1:{port}", home=home, log=log)
    try:
        server.wait_for("the webserver and its code location", lambda: _loaded(server, process),
                        timeout=STARTUP_SECONDS)
        yield server
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)


def _loaded(server: DagsterDev, process: subprocess.Popen) -> bool:
    if process.poll() is not None:
        pytest.fail(f"dagster dev exited with {process.returncode}:\n{server.log.read_text(errors='replace')[-4000:]}")
    try:
        data = server.graphql("{ workspaceOrError { ... on Workspace { locationEntries { "
                              "locationOrLoadError { __typename } } } } }")
    except OSError:
        return False
    entries = data["workspaceOrError"]["locationEntries"]
    return bool(entries) and all(e["locationOrLoadError"] and
                                 e["locationOrLoadError"]["__typename"] == "RepositoryLocation" for e in entries)
