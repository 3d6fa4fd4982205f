"""`cdp-assets preview`: a sync's figures before it runs, computed in the warehouse, with nothing written."""

import pytest

from cdp_assets.activation.destinations.registry import discover
from cdp_assets.cli import main
from cdp_assets.preview import preview_sync
from tests.destinations.records_world import build_world, execute, go_live, make_sync, materialize, query
from tests.fakes.hubspot_crm import FakeHubSpotCrm

HUBSPOT = discover()["hubspot"]


@pytest.fixture
def world(warehouse, tmp_path):
    build_world(warehouse)
    return warehouse, make_sync(tmp_path)


def test_a_preview_before_the_first_sync_counts_every_record_as_added_and_writes_nothing(world):
    warehouse, sync = world
    found = preview_sync(warehouse, sync, HUBSPOT)
    assert {k: v for k, v in found.items() if k != "samples"} == {
        "sync": "crm_contacts", "destination": "HubSpot CRM v3", "object": "contacts", "mode": "upsert", "size": 3,
        "invalid_keys": 0, "added": 3, "changed": 0, "removed": 0, "list 'cdp: vip': added": 1,
        "list 'cdp: vip': removed": 0}
    assert query(warehouse, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'activation'") \
        == [(0,)]


def test_a_preview_redacts_the_personal_fields_of_its_samples(world):
    warehouse, sync = world
    ada = next(s for s in preview_sync(warehouse, sync, HUBSPOT)["samples"] if s["cdp_profile_id"] == "p1")
    assert ada == {"email": "[redacted]", "cdp_profile_id": "p1", "firstname": "[redacted]",
                   "cdp_lifetime_value": "1234.5", "cdp_order_count": "7",
                   "cdp_last_order_at": "2026-11-30T10:00:00.000Z", "cdp_rfm_segment": "545",
                   "cdp_audience_vip": "true"}


def test_a_preview_after_a_sync_shows_only_what_changed(world, monkeypatch):
    warehouse, sync = world
    with FakeHubSpotCrm() as fake:
        go_live(monkeypatch, fake)
        materialize(warehouse, sync)
    execute(warehouse, "UPDATE core.unified_profiles SET order_count = 8 WHERE profile_id = 'p1'")
    execute(warehouse, "DELETE FROM core.unified_profiles WHERE profile_id = 'p3'")
    execute(warehouse, "DELETE FROM audiences.memberships WHERE profile_id = 'p1'")
    found = preview_sync(warehouse, sync, HUBSPOT)
    assert (found["size"], found["added"], found["changed"], found["removed"], found["list 'cdp: vip': removed"]) \
        == (2, 0, 1, 1, 1)


def test_previewing_an_unknown_name_is_one_line_naming_the_known_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CDP_WAREHOUSE_URL", f"duckdb:///{tmp_path / 'w.duckdb'}")
    (tmp_path / "dagster").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    assert main(["preview", "nope"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("cdp-assets: no sync or audience named 'nope'; syncs: ") and error.count("\n") == 1


def test_a_dagster_home_that_is_not_a_folder_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CDP_WAREHOUSE_URL", f"duckdb:///{tmp_path / 'w.duckdb'}")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "missing"))
    assert main(["preview", "hubspot_contacts"]) == 2
    assert capsys.readouterr().err == (f"cdp-assets: DAGSTER_HOME={tmp_path / 'missing'} is not a folder; create it "
                                       "(mkdir -p) or unset DAGSTER_HOME to use this project's dagster.yaml\n")
