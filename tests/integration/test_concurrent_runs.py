"""A `cdp-assets run` started while the daemon's sensor run writes the same DuckDB file waits its turn.

A real `dagster-daemon` runs the CRM sensor, which launches `crm_ingest_job` through the run queue; the
command-line run starts while that run is in progress. Both must finish, with no lock error and every row
loaded once.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from cdp_assets.cli import main
from cdp_assets.resources.warehouse import WarehouseResource

REPO = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 600


def wait_for(condition, what: str, deadline: float):
    while time.monotonic() < deadline:
        if (found := condition()) is not None:
            return found
        time.sleep(0.2)
    pytest.fail(f"gave up after {DEADLINE_SECONDS} s waiting for {what}")


@pytest.fixture
def daemon_project(tmp_path, monkeypatch, sample_landing):
    """A project whose instance a real dagster-daemon serves, with the sample CRM files landed."""
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    (tmp_path / "workspace.yaml").write_text("load_from:\n  - python_module:\n      module_name: "
                                             "cdp_assets.definitions\n", encoding="utf-8")
    shutil.copytree(sample_landing / "crm", tmp_path / "landing" / "crm")
    environment = {"DAGSTER_HOME": str(tmp_path), "CDP_WAREHOUSE_URL": f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
                   "CDP_LANDING_DIR": str(tmp_path / "landing")}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    log = (tmp_path / "daemon.log").open("w")
    daemon = subprocess.Popen([str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
                              cwd=tmp_path, env={**os.environ, **environment}, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        yield tmp_path
    finally:
        os.killpg(daemon.pid, 15)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, 9)
        log.close()


def test_a_cli_run_waits_for_the_sensors_run_and_both_load_everything_once(daemon_project, run_day_key, capsys):
    deadline = time.monotonic() + DEADLINE_SECONDS
    instance = dg.DagsterInstance.get()

    def sensor_run_in_progress():
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="crm_ingest_job"))
        started = [r for r in runs if r.status in (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED)]
        return started[0] if started else None

    sensor_run = wait_for(sensor_run_in_progress, "the CRM sensor's run to start", deadline)

    code = main(["run", "--date", run_day_key.isoformat()])

    out = capsys.readouterr().out
    assert code == 0, out
    assert f"waiting for run {sensor_run.run_id[:8]} (crm_ingest_job" in out
    finished = wait_for(lambda: r if (r := instance.get_run_by_id(sensor_run.run_id)).is_finished else None,
                        "the sensor's run to finish", deadline)
    assert finished.status == dg.DagsterRunStatus.SUCCESS
    logs = " ".join(str(e.message) for run in instance.get_runs() for e in instance.all_logs(run.run_id))
    assert "Could not set lock" not in logs
    warehouse = WarehouseResource(url=os.environ["CDP_WAREHOUSE_URL"])
    with warehouse.begin() as conn:
        assert warehouse.scalar(conn, "SELECT count(*) FROM raw.crm_file_ledger") == 4
        assert warehouse.row_count(conn, "raw.crm_contacts") == 335
        assert warehouse.scalar(conn, "SELECT count(DISTINCT _source || ':' || _line_number) "
                                      "FROM raw.crm_contacts") == 335
        assert warehouse.row_count(conn, "core.unified_profiles") == 301
