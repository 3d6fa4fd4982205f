"""`cdp-assets`, driven the way users drive it: environment variables and the repo's dagster.yaml."""

import json
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
    assert f"{run_day_key}: every run succeeded" in capsys.readouterr().out
    instance = dg.DagsterInstance.from_config(str(project))
    runs = sorted(instance.get_runs(), key=lambda r: r.tags["cdp/stage"])
    assert [(r.job_name, r.tags["dagster/partition"], r.tags["cdp/stage"], r.tags["cdp/day"]) for r in runs] == [
        ("daily_job", run_day_key.isoformat(), stage, run_day_key.isoformat()) for stage in ("sources", "transform")]
    assert {r.tags["cdp/warehouse"] for r in runs} == {f"duckdb:{project / 'warehouse.duckdb'}"}
    assert (project / ".dagster" / "storage").is_dir()


def test_run_exits_non_zero_and_names_the_failed_gate_with_its_root_error(project, run_day_key, capsys):
    contacts = project / "landing" / "crm" / "contacts.csv"
    text = contacts.read_text(encoding="utf-8").splitlines()
    # A second file that gives a contact id already loaded a different value at the same updated_at is a
    # conflict only within one file; a row without an id slipped in by hand is what the raw gate stops.
    assert main(["run", "--date", run_day_key.isoformat()]) == 0
    from cdp_assets.resources.warehouse import WarehouseResource

    warehouse = WarehouseResource(url=f"duckdb:///{project / 'warehouse.duckdb'}")
    with warehouse.begin() as conn:
        warehouse.run(conn, "INSERT INTO raw.crm_contacts (contact_id, _source) VALUES (NULL, 'hand-edit')")
    capsys.readouterr()

    code = main(["run", "--date", run_day_key.isoformat()])

    out = capsys.readouterr().out
    assert (code, len(text) > 1) == (1, True)
    assert "failed check: raw/crm_contacts:crm_contacts_rows_are_complete" in out
    assert f"{run_day_key}: FAILED in transform {run_day_key} (raw/crm_contacts:crm_contacts_rows_are_complete)" in out


def test_live_run_without_credentials_skips_each_destination_with_a_warning(project, run_day_key, capsys,
                                                                            monkeypatch):
    monkeypatch.setenv("CDP_EGRESS_MODE", "live")

    code = main(["run", "--date", run_day_key.isoformat()])

    out = capsys.readouterr().out
    assert code == 0
    for destination in ("google_ads_conversions", "google_customer_match", "meta_capi", "meta_custom_audiences",
                        "pinterest_conversions", "tiktok_events"):
        assert f"warning: activation/{destination}:credentials_are_configured" in out


def test_replay_of_a_live_destination_without_dead_letters_says_so(project, run_day_key, capsys, monkeypatch):
    assert main(["run", "--date", run_day_key.isoformat()]) == 0
    monkeypatch.setenv("CDP_EGRESS_MODE", "live")

    code = main(["replay", "--destination", "meta_capi"])

    assert (code, capsys.readouterr().out.splitlines()[-1]) == (0, "meta_capi: no dead letters to replay")


def test_replay_in_dry_run_explains_that_planned_dead_letters_are_fixed_by_re_running(project, capsys):
    code = main(["replay", "--destination", "meta_capi"])

    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("meta_capi: CDP_EGRESS_MODE is dry_run, so nothing was ever sent")
    assert "re-run their day (`cdp-assets run --date YYYY-MM-DD`)" in out


def test_replay_of_an_unknown_destination_lists_the_enabled_ones(project, capsys):
    assert main(["replay", "--destination", "snapchat"]) == 2
    assert capsys.readouterr().err == (
        "cdp-assets: no enabled destination in destinations.yaml or sync in config/syncs/ named 'snapchat'; enabled: "
        "audience_export, braze_users, ga4_measurement_protocol, google_ads_conversions, google_customer_match, "
        "hubspot_contacts, klaviyo_profiles, meta_capi, meta_custom_audiences, pinterest_conversions, "
        "salesforce_contacts, tiktok_events\n")


def test_run_without_a_dagster_instance_explains_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    assert main(["run", "--date", "2026-01-01"]) == 2
    assert capsys.readouterr().err.startswith("cdp-assets: no dagster.yaml here and DAGSTER_HOME is not set")


def test_generate_writes_the_same_files_for_the_same_seed(tmp_path):
    for name in ("a", "b"):
        assert main(["generate", "--people", "50", "--end", "2026-03-31", "--landing-dir", str(tmp_path / name)]) == 0

    for relative in ("crm/contacts.csv", "crm/orders.csv", "ga4/daily_traffic.jsonl"):
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes()


def test_an_unreadable_file_fails_the_run_is_named_and_the_other_files_flow(project, run_day_key, capsys):
    (project / "landing" / "crm" / "contacts_broken.csv").write_text("contact_id,email\nC1,a@b.com\n")

    code = main(["run", "--date", run_day_key.isoformat()])

    out = capsys.readouterr().out
    assert code == 1
    assert "failed check: raw/crm_contacts:crm_contacts_files_are_readable" in out
    assert "  unreadable file: contacts_broken.csv: missing required columns" in out
    assert "failed step" not in out and "skipped because" not in out
    assert f"{run_day_key}: FAILED in transform {run_day_key} (raw/crm_contacts:crm_contacts_files_are_readable)" in out


def test_ga4_backfill_runs_one_recorded_run_per_week(project, run_day_key, capsys):
    first = run_day_key - timedelta(days=9)

    code = main(["ga4-backfill", "--from", first.isoformat(), "--to", run_day_key.isoformat()])

    out = capsys.readouterr().out
    assert code == 0
    assert out.count(": succeeded") == 2
    assert f"(GA4 {first}..{first + timedelta(days=6)}): succeeded" in out
    runs = dg.DagsterInstance.from_config(str(project)).get_runs()
    ranges = sorted((r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
                    for r in runs)
    assert ranges == [(first.isoformat(), (first + timedelta(days=6)).isoformat()),
                      ((first + timedelta(days=7)).isoformat(), run_day_key.isoformat())]


def test_ga4_backfill_refuses_a_range_that_ends_before_it_starts(project, capsys):
    assert main(["ga4-backfill", "--from", "2026-03-10", "--to", "2026-03-01"]) == 2
    assert "--from 2026-03-10 is after --to 2026-03-01" in capsys.readouterr().err


def nothing_written(project) -> bool:
    return not (project / "warehouse.duckdb").exists() and not list((project / ".dagster").glob("storage/*.db"))


@pytest.mark.parametrize(("arguments", "message"), [
    (["run", "--date", "2030-01-01"], "--date 2030-01-01 is in the future; the latest day that can run is {yesterday}"),
    (["run", "--date", "{today}"], "--date {today} is today in CDP_TIMEZONE (UTC) and not over yet; the latest day "
                                   "that can run is {yesterday}"),
    (["run", "--date", "2023-12-31"], "--date 2023-12-31 is before CDP_START_DATE (2024-01-01), where the daily "
                                      "partitions begin; set CDP_START_DATE to your history's first day"),
    (["run", "--date", "2026-02-30"], "argument --date: '2026-02-30' is not a date; write it as YYYY-MM-DD"),
    (["ga4-backfill", "--from", "{yesterday}", "--to", "{today}"], "--to {today} is today in CDP_TIMEZONE (UTC)"),
    (["generate", "--people", "0"], "argument --people: '0' must be a whole number of at least 1"),
    (["generate", "--days", "0"], "argument --days: '0' must be a whole number of at least 1"),
])
def test_a_mistake_is_one_line_and_nothing_is_written(project, run_day_key, capsys, arguments, message):
    values = {"today": (run_day_key + timedelta(days=1)).isoformat(), "yesterday": run_day_key.isoformat()}
    assert main([a.format(**values) for a in arguments]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert message.format(**values) in err
    assert nothing_written(project)


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("CDP_WAREHOUSE_URL", "mysql://root@127.0.0.1/cdp", "CDP_WAREHOUSE_URL uses 'mysql'; supported warehouses are "
                                                        "duckdb and postgresql"),
    ("CDP_START_DATE", "01/02/2025", "CDP_START_DATE='01/02/2025' is not a date; write it as YYYY-MM-DD"),
    ("CDP_EGRESS_MODE", "send", "CDP_EGRESS_MODE='send' is not one of dry_run, live"),
    ("CDP_LANDING_DIR", "/proc/cdp_landing", "CDP_LANDING_DIR=/proc/cdp_landing cannot be created"),
])
def test_a_wrong_setting_is_one_line_before_anything_is_written(project, run_day_key, capsys, monkeypatch,
                                                                 variable, value, message):
    monkeypatch.setenv(variable, value)

    assert main(["run", "--date", run_day_key.isoformat()]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err
    assert nothing_written(project)


def test_a_postgresql_database_that_does_not_exist_is_one_line(project, run_day_key, capsys, monkeypatch,
                                                                postgres_url):
    missing = postgres_url.rsplit("/", 1)[0] + "/cdp_no_such_database"
    monkeypatch.setenv("CDP_WAREHOUSE_URL", missing)

    assert main(["run", "--date", run_day_key.isoformat()]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert 'cannot connect to the warehouse' in err and 'database "cdp_no_such_database" does not exist' in err


def test_an_instance_that_holds_another_warehouses_runs_refuses_with_the_fix(project, run_day_key, capsys,
                                                                            monkeypatch, tmp_path):
    assert main(["run", "--date", run_day_key.isoformat()]) == 0
    monkeypatch.setenv("CDP_WAREHOUSE_URL", f"duckdb:///{tmp_path / 'other.duckdb'}")

    assert main(["run", "--date", run_day_key.isoformat()]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith(f"cdp-assets: this Dagster instance already holds runs of another warehouse "
                          f"(duckdb:{project / 'warehouse.duckdb'})")
    assert "give it a Dagster home of its own (DAGSTER_HOME=" in err
    assert not (tmp_path / "other.duckdb").exists()


def test_a_failed_cli_run_is_recorded_in_the_alert_log(project, run_day_key, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("GA4_PROPERTY_ID", "123456")
    monkeypatch.setenv("GA4_API_URL", "http://127.0.0.1:9")  # nothing listens: GA4 is down

    assert main(["run", "--date", run_day_key.isoformat()]) == 1

    lines = (tmp_path / "alerts" / "run_failures.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[0])
    assert (len(lines), record["job"], record["partition"]) == (1, "daily_job", run_day_key.isoformat())
    assert sorted(f["step"] for f in record["failed_steps"]) == ["raw__ga4_daily_traffic", "raw__ga4_transactions"]


def test_the_demo_works_in_its_own_folder_and_never_touches_the_configured_data(tmp_path, monkeypatch, capsys):
    real_landing = tmp_path / "real" / "landing"
    (real_landing / "crm").mkdir(parents=True)
    (real_landing / "crm" / "contacts.csv").write_text("contact_id,email\nREAL1,real@example.com\n")
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CDP_WAREHOUSE_URL", f"duckdb:///{tmp_path / 'real' / 'warehouse.duckdb'}")
    monkeypatch.setenv("CDP_LANDING_DIR", str(real_landing))
    monkeypatch.setenv("GA4_PROPERTY_ID", "123456")  # the demo must not call a real property either
    monkeypatch.setenv("CDP_EGRESS_MODE", "live")

    code = main(["demo", "--people", "40", "--days", "2"])

    out = capsys.readouterr().out
    assert code == 0, out
    assert (real_landing / "crm" / "contacts.csv").read_text() == "contact_id,email\nREAL1,real@example.com\n"
    assert sorted(p.name for p in (real_landing / "crm").iterdir()) == ["contacts.csv"]
    assert not (tmp_path / "real" / "warehouse.duckdb").exists()
    assert not (tmp_path / ".dagster").exists()
    demo = tmp_path / "data" / "demo"
    assert (demo / "warehouse.duckdb").is_file() and (demo / "landing" / "crm" / "contacts.csv").is_file()
    assert "CDP_EGRESS_MODE=dry_run\n" in (demo / "demo.env").read_text()
    assert "destination meta_capi:" in out and "dry run" in out
