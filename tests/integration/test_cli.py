"""`cdp-assets`, driven the way users drive it: environment variables and the repo's dagster.yaml."""

import shutil
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from cdp_assets.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path, monkeypatch, sample_landing):
    """A project folder with the repo's dagster.yaml, a landing folder and a DuckDB warehouse URL."""
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    landing = tmp_path / "landing"
    shutil.copytree(sample_landing, landing)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CDP_WAREHOUSE_URL", f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    monkeypatch.setenv("CDP_LANDING_DIR", str(landing))
    return tmp_path


def test_run_succeeds_and_is_recorded_in_the_instance_the_ui_reads(project, run_day_key, capsys):
    code = main(["run", "--date", run_day_key.isoformat()])

    assert code == 0
    assert f"for {run_day_key}: succeeded" in capsys.readouterr().out
    instance = dg.DagsterInstance.from_config(str(project))
    runs = instance.get_runs()
    assert [(r.job_name, r.tags["dagster/partition"]) for r in runs] == [("daily_job", run_day_key.isoformat())]
    assert (project / ".dagster" / "storage").is_dir()


def test_run_exits_non_zero_and_names_the_failed_gate(project, run_day_key, capsys):
    shutil.rmtree(project / "landing" / "crm")

    code = main(["run", "--date", run_day_key.isoformat()])

    out = capsys.readouterr().out
    assert code == 1
    assert "failed check: raw/crm_contacts:crm_contacts_rows_are_complete" in out
    assert "failed check: raw/crm_orders:crm_orders_rows_are_complete" in out


def test_run_refuses_live_egress_with_a_clear_message(project, run_day_key, capsys, monkeypatch):
    monkeypatch.setenv("CDP_EGRESS_MODE", "live")

    code = main(["run", "--date", run_day_key.isoformat()])

    out = capsys.readouterr().out
    assert code == 1
    assert "failed step: activation__meta_capi" in out
    assert "failed step: activation__meta_custom_audiences" in out


def test_run_without_a_dagster_instance_explains_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    with pytest.raises(SystemExit, match=r"no dagster\.yaml here and DAGSTER_HOME is not set"):
        main(["run", "--date", "2026-01-01"])


def test_generate_writes_the_same_files_for_the_same_seed(tmp_path):
    for name in ("a", "b"):
        assert main(["generate", "--people", "50", "--end", "2026-03-31", "--landing-dir", str(tmp_path / name)]) == 0

    for relative in ("crm/contacts.csv", "crm/orders.csv", "ga4/daily_traffic.jsonl"):
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes()


def test_an_unreadable_file_is_reported_as_a_warning_not_a_pass(project, run_day_key, capsys):
    (project / "landing" / "crm" / "contacts_broken.csv").write_text("contact_id,email\nC1,a@b.com\n")

    code = main(["run", "--date", run_day_key.isoformat()])

    out = capsys.readouterr().out
    assert code == 0
    assert "checks: 26 passed, 0 failed, 1 warnings" in out
    assert "warning: raw/crm_contacts:crm_contacts_files_are_readable" in out


def test_ga4_backfill_runs_one_recorded_run_per_week(project, run_day_key, capsys):
    first = run_day_key - timedelta(days=9)

    code = main(["ga4-backfill", "--from", first.isoformat(), "--to", run_day_key.isoformat()])

    out = capsys.readouterr().out
    assert code == 0
    assert out.count(": succeeded") == 2
    assert f"for {first}..{first + timedelta(days=6)}: succeeded" in out
    runs = dg.DagsterInstance.from_config(str(project)).get_runs()
    ranges = sorted((r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
                    for r in runs)
    assert ranges == [(first.isoformat(), (first + timedelta(days=6)).isoformat()),
                      ((first + timedelta(days=7)).isoformat(), run_day_key.isoformat())]


def test_ga4_backfill_refuses_a_range_that_ends_before_it_starts(project, capsys):
    assert main(["ga4-backfill", "--from", "2026-03-10", "--to", "2026-03-01"]) == 2
    assert "--from 2026-03-10 is after --to 2026-03-01" in capsys.readouterr().err
