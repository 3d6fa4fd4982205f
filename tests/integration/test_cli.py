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


def test_live_run_without_credentials_skips_each_destination_with_a_warning(project, run_day_key, capsys,
                                                                            monkeypatch):
    monkeypatch.setenv("CDP_EGRESS_MODE", "live")

    code = main(["run", "--date", run_day_key.isoformat()])

    out = capsys.readouterr().out
    assert code == 0
    for destination in ("google_ads_conversions", "google_customer_match", "meta_capi", "meta_custom_audiences",
                        "pinterest_conversions", "tiktok_events"):
        assert f"warning: activation/{destination}:credentials_are_configured" in out


def test_replay_of_a_destination_without_dead_letters_says_so(project, run_day_key, capsys):
    assert main(["run", "--date", run_day_key.isoformat()]) == 0

    code = main(["replay", "--destination", "meta_capi"])

    assert (code, capsys.readouterr().out.splitlines()[-1]) == (0, "meta_capi: no dead letters to replay")


def test_replay_of_an_unknown_destination_is_refused(project, capsys):
    assert main(["replay", "--destination", "snapchat"]) == 2
    assert "no enabled destination named 'snapchat'" in capsys.readouterr().err


def test_run_without_a_dagster_instance_explains_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    with pytest.raises(SystemExit, match=r"no dagster\.yaml here and DAGSTER_HOME is not set"):
        main(["run", "--date", "2026-01-01"])


def test_generate_writes_the_same_files_for_the_same_seed(tmp_path):
    for name in ("a", "b"):
        assert main(["generate", "--people", "50", "--end", "2026-03-31", "--landing-dir", str(tmp_path / name)]) == 0

    for relative in ("crm/contacts.csv", "crm/orders.csv", "ga4/daily_traffic.jsonl"):
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes()


def test_an_unreadable_file_fails_the_run_while_the_other_files_flow(project, run_day_key, capsys):
    (project / "landing" / "crm" / "contacts_broken.csv").write_text("contact_id,email\nC1,a@b.com\n")

    code = main(["run", "--date", run_day_key.isoformat()])

    out = capsys.readouterr().out
    assert code == 1
    assert "checks: 52 passed, 1 failed, 6 warnings" in out
    assert "failed check: raw/crm_contacts:crm_contacts_files_are_readable" in out
    assert "failed step" not in out and "skipped because" not in out


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
