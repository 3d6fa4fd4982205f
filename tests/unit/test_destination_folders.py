"""A destination is one folder: a throwaway one defined in a temporary folder becomes an asset with its checks."""

import textwrap

import dagster as dg

from cdp_assets.activation.destinations.registry import discover
from cdp_assets.definitions import build_definitions
from cdp_assets.resources.warehouse import WarehouseResource

THROWAWAY = '''
"""A destination that exists only in this test."""
from cdp_assets.activation.destinations.base import ObjectSpec, PiiPolicy, RecordsDestination
from cdp_assets.activation.destinations.hubspot.client import HubSpotRecords

DESTINATION = RecordsDestination(
    name="acme_crm", title="Acme CRM", kinds=("acme",), variables=("HUBSPOT_ACCESS_TOKEN",),
    objects={"people": ObjectSpec("people", keys=("email",))}, pii=PiiPolicy(clear=frozenset({"email"})),
    client=HubSpotRecords)
'''
SYNC = """
destination: acme_crm
object: people
model: core.unified_profiles
key: {column: email, field: email}
consent_purpose: none
fields:
  lifetime_value: {field: ltv, type: number}
"""


def test_a_destination_folder_outside_the_package_becomes_an_asset_with_its_checks(tmp_path, monkeypatch):
    (tmp_path / "destinations" / "acme_crm").mkdir(parents=True)
    (tmp_path / "destinations" / "acme_crm" / "__init__.py").write_text(textwrap.dedent(THROWAWAY))
    (tmp_path / "syncs").mkdir()
    (tmp_path / "syncs" / "acme_people.yaml").write_text(SYNC)
    monkeypatch.setenv("CDP_DESTINATION_DIRS", str(tmp_path / "destinations"))
    monkeypatch.setenv("CDP_SYNCS_DIR", str(tmp_path / "syncs"))
    defs = build_definitions(WarehouseResource(url=f"duckdb:///{tmp_path / 'w.duckdb'}"))
    key = dg.AssetKey(["activation", "acme_people"])
    asset = defs.resolve_assets_def(key)
    assert {spec.name for spec in asset.check_specs} == {"outbound_payloads_are_safe", "credentials_are_configured"}
    assert "acme" in asset.specs_by_key[key].kinds
    assert dg.AssetKey(["core", "unified_profiles"]) in asset.asset_deps[key]


def test_the_built_in_destinations_are_found_by_their_folders():
    assert "hubspot" in discover()


def test_a_sync_with_a_schedule_runs_on_its_own_job_and_not_with_the_day(tmp_path, monkeypatch):
    (tmp_path / "syncs").mkdir()
    (tmp_path / "syncs" / "hourly_people.yaml").write_text(SYNC.replace("acme_crm", "hubspot").replace(
        "object: people", "object: contacts") + 'schedule: "0 * * * *"\n')
    monkeypatch.setenv("CDP_SYNCS_DIR", str(tmp_path / "syncs"))
    defs = build_definitions(WarehouseResource(url=f"duckdb:///{tmp_path / 'w.duckdb'}"))
    key = dg.AssetKey(["activation", "hourly_people"])
    schedule = defs.resolve_schedule_def("hourly_people_job_schedule")
    assert (schedule.cron_schedule, schedule.job_name) == ("0 * * * *", "hourly_people_job")
    assert defs.resolve_job_def("hourly_people_job").asset_layer.executable_asset_keys == {key}
    assert key not in defs.resolve_job_def("daily_job").asset_layer.executable_asset_keys
