"""HubSpot contacts kept in step with the unified profile, on DuckDB and PostgreSQL, against the local fake."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cdp_assets.activation.destinations.hubspot.client import HubSpotRecords
from tests.destinations.records_world import build_world, execute, go_live, make_sync, materialize, metadata, query
from tests.fakes.hubspot_crm import FakeHubSpotCrm


@pytest.fixture
def hubspot(monkeypatch):
    with FakeHubSpotCrm() as fake:
        go_live(monkeypatch, fake)
        yield fake


@pytest.fixture
def world(warehouse, tmp_path):
    build_world(warehouse)
    return warehouse, make_sync(tmp_path)


def upserted(fake: FakeHubSpotCrm) -> list[str]:
    """The email of every input of every upsert the fake received, in order."""
    return [i["id"] for r in fake.requests if r["path"].endswith("/batch/upsert") for i in r["body"]["inputs"]]


def test_a_first_sync_writes_every_profile_with_an_email_once_with_exact_values(world, hubspot):
    warehouse, sync = world
    assert materialize(warehouse, sync).success
    assert sorted(upserted(hubspot)) == ["ada@example.com", "bob@example.com", "cy@example.com"]
    assert set(hubspot.writes.values()) == {1}
    ada = hubspot.contact_by_email("ada@example.com")["properties"]
    assert {k: v for k, v in ada.items() if k.startswith("cdp_") or k == "firstname"} == {
        "cdp_profile_id": "p1", "firstname": "Ada", "cdp_lifetime_value": "1234.5", "cdp_order_count": "7",
        "cdp_last_order_at": "2026-11-30T10:00:00.000Z", "cdp_rfm_segment": "545", "cdp_audience_vip": "true"}


def test_records_are_built_in_the_warehouse_and_only_a_value_it_cannot_format_exactly_in_python(world, hubspot,
                                                                                              monkeypatch):
    warehouse, sync = world
    execute(warehouse, "ALTER TABLE core.unified_profiles ALTER COLUMN lifetime_value TYPE DOUBLE")
    execute(warehouse, "UPDATE core.unified_profiles SET lifetime_value = 1e16 WHERE profile_id = 'p1'")
    built, record = [], HubSpotRecords.record
    monkeypatch.setattr(HubSpotRecords, "record",
                        lambda client, key, fields, trace: (built.append(key), record(client, key, fields, trace))[1])

    assert materialize(warehouse, sync).success

    # The warehouse writes 1e16 with an exponent, which HubSpot would not read as a number.
    assert built == ["ada@example.com"]
    assert {e: hubspot.contact_by_email(e)["properties"]["cdp_lifetime_value"] for e in (
        "ada@example.com", "bob@example.com", "cy@example.com")} == {
        "ada@example.com": "10000000000000000", "bob@example.com": "0", "cy@example.com": "80"}


def test_traits_become_properties_of_the_cdp_group_with_their_types(world, hubspot):
    warehouse, sync = world
    materialize(warehouse, sync)
    assert {n: (hubspot.property(n)["type"], hubspot.property(n)["fieldType"], hubspot.property(n)["groupName"])
            for n in ("cdp_lifetime_value", "cdp_last_order_at", "cdp_audience_vip", "cdp_rfm_segment")} == {
        "cdp_lifetime_value": ("number", "number", "cdp"), "cdp_last_order_at": ("datetime", "date", "cdp"),
        "cdp_audience_vip": ("bool", "booleancheckbox", "cdp"), "cdp_rfm_segment": ("string", "text", "cdp")}


def test_properties_are_created_once_not_per_run(world, hubspot):
    warehouse, sync = world
    materialize(warehouse, sync)
    materialize(warehouse, sync)
    creates = [r for r in hubspot.requests if r["method"] == "POST" and r["path"] == "/crm/v3/properties/contacts"]
    assert len(creates) == 6


def test_a_rerun_sends_nothing(world, hubspot):
    warehouse, sync = world
    materialize(warehouse, sync)
    before = len(upserted(hubspot))
    result = materialize(warehouse, sync)
    assert len(upserted(hubspot)) == before
    assert (metadata(result)["added"], metadata(result)["changed"], metadata(result)["records_sent"]) == (0, 0, 0)


def test_changing_one_trait_of_one_person_sends_exactly_that_record(world, hubspot):
    warehouse, sync = world
    materialize(warehouse, sync)
    execute(warehouse, "UPDATE core.unified_profiles SET lifetime_value = 99.5 WHERE profile_id = 'p3'")
    before = len(upserted(hubspot))
    result = materialize(warehouse, sync)
    assert upserted(hubspot)[before:] == ["cy@example.com"]
    assert hubspot.contact_by_email("cy@example.com")["properties"]["cdp_lifetime_value"] == "99.5"
    assert metadata(result)["changed"] == 1


def test_a_person_joining_an_audience_joins_its_list(world, hubspot):
    warehouse, sync = world
    materialize(warehouse, sync)
    assert hubspot.list_members("cdp: vip") == {"ada@example.com"}


def test_a_person_leaving_an_audience_flips_the_property_and_leaves_the_list(world, hubspot):
    warehouse, sync = world
    materialize(warehouse, sync)
    execute(warehouse, "DELETE FROM audiences.memberships WHERE profile_id = 'p1'")
    result = materialize(warehouse, sync)
    assert hubspot.contact_by_email("ada@example.com")["properties"]["cdp_audience_vip"] == "false"
    assert hubspot.list_members("cdp: vip") == set()
    assert metadata(result)["list_removed"] == 1


def test_a_207_dead_letters_only_the_failed_record_with_hubspots_message(world, hubspot):
    warehouse, sync = world
    hubspot.poison("213")  # Cy's RFM segment
    result = materialize(warehouse, sync)
    assert metadata(result)["dead_letters"] == 1
    assert hubspot.contact_by_email("cy@example.com") is None
    assert hubspot.contact_by_email("ada@example.com") is not None
    [(reason,)] = query(warehouse, "SELECT reason FROM activation.dead_letters WHERE destination = 'crm_contacts'")
    assert reason.startswith("HubSpot VALIDATION_ERROR: ")
    assert query(warehouse, "SELECT status FROM activation.sync_ledger WHERE destination = 'crm_contacts' "
                            "AND last_error IS NOT NULL") == [("dead_letter",)]


def test_a_dead_lettered_record_waits_until_its_values_change(world, hubspot):
    warehouse, sync = world
    hubspot.poison("213")
    materialize(warehouse, sync)
    before = len(upserted(hubspot))
    materialize(warehouse, sync)
    assert upserted(hubspot)[before:] == []
    execute(warehouse, "UPDATE core.unified_profiles SET rfm_segment = '214' WHERE profile_id = 'p3'")
    materialize(warehouse, sync)
    assert upserted(hubspot)[before:] == ["cy@example.com"]


def test_a_transient_failure_is_retried_and_each_record_written_once(world, hubspot):
    warehouse, sync = world
    hubspot.fail_next("503", "429_secondly")
    assert materialize(warehouse, sync).success
    assert sorted(hubspot.writes.values()) == [1, 1, 1]


def test_the_daily_limit_parks_the_sync_until_the_accounts_midnight(world, hubspot):
    warehouse, sync = world
    hubspot.fail_next("429_daily")
    result = materialize(warehouse, sync)
    assert metadata(result)["outcome"] == "parked"
    assert hubspot.contacts == {}
    [(parked,)] = query(warehouse, "SELECT count(*) FROM activation.sync_runs WHERE parked_until IS NOT NULL")
    assert parked == 1
    again = materialize(warehouse, sync)
    assert metadata(again)["outcome"] == "parked"
    assert hubspot.contacts == {}


def test_a_refused_token_fails_the_sync_in_one_line(world, hubspot, monkeypatch):
    warehouse, sync = world
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-wrong")
    result = materialize(warehouse, sync)
    assert not result.success
    message = result.failure_data_for_node("activation__crm_contacts").error.message
    assert "crm_contacts: " in message and "\n" not in message.strip() and "pat-wrong" not in message
    assert hubspot.contacts == {}


def test_a_deletion_request_reaches_hubspot_and_leaves_nothing_behind(world, hubspot):
    warehouse, sync = world
    materialize(warehouse, sync)
    ada = hubspot.contact_by_email("ada@example.com")["id"]
    execute(warehouse, "INSERT INTO core.deletion_requests VALUES ('r1', 'email', "
                       "sha256('ada@example.com'), 'active')")
    execute(warehouse, "INSERT INTO core.deletion_pending_profiles VALUES ('p1')")
    result = materialize(warehouse, sync)
    assert metadata(result)["deleted"] == 1
    assert ada in hubspot.gdpr_deleted or "ada@example.com" in hubspot.gdpr_deleted
    assert hubspot.contact_by_email("ada@example.com") is None
    assert query(warehouse, "SELECT count(*) FROM activation.record_state WHERE profile_id = 'p1'") == [(0,)]


def test_a_full_resync_sends_every_record_again(world, hubspot):
    warehouse, sync = world
    materialize(warehouse, sync)
    result = materialize(warehouse, sync, full_resync=True)
    assert metadata(result)["records_sent"] >= 3
    assert sorted(hubspot.writes.values()) == [2, 2, 2]


def test_a_dry_run_sends_nothing_and_records_every_request(world, monkeypatch, hubspot):
    warehouse, sync = world
    monkeypatch.setenv("CDP_EGRESS_MODE", "dry_run")
    result = materialize(warehouse, sync)
    assert hubspot.requests == []
    operations = [op for (op,) in query(warehouse, "SELECT operation FROM activation.egress_requests "
                                                   "WHERE destination = 'crm_contacts' ORDER BY batch_no")]
    assert operations == ["create_property_group", *["create_property"] * 6, "create_list", "upsert",
                          "list_add:{LIST_ID:cdp: vip}"]
    assert metadata(result)["sample_record"]["email"] == "[redacted]"


def test_a_sync_without_a_consent_declaration_sends_nothing(warehouse, tmp_path, hubspot):
    build_world(warehouse)
    settings = {k: v for k, v in make_sync(tmp_path).__dict__.items()}
    del settings
    sync = make_sync(tmp_path, consent_purpose=None)
    result = materialize(warehouse, sync)
    assert metadata(result)["outcome"] == "no_consent_declared"
    assert hubspot.requests == []


def test_a_marketing_sync_sends_only_consented_people(warehouse, tmp_path, hubspot):
    build_world(warehouse)
    materialize(warehouse, make_sync(tmp_path, consent_purpose="marketing"))
    assert sorted(upserted(hubspot)) == ["ada@example.com", "cy@example.com"]


def test_on_leave_clear_empties_the_fields_of_a_person_who_left(world, hubspot):
    warehouse, sync = world
    materialize(warehouse, sync)
    execute(warehouse, "DELETE FROM core.unified_profiles WHERE profile_id = 'p3'")
    result = materialize(warehouse, sync)
    assert metadata(result)["removed"] == 1
    properties = hubspot.contact_by_email("cy@example.com")["properties"]
    assert "cdp_lifetime_value" not in properties and properties["email"] == "cy@example.com"


def test_mirror_archives_a_person_who_left(warehouse, tmp_path, hubspot):
    build_world(warehouse)
    sync = make_sync(tmp_path, mode="mirror", on_leave="delete")
    materialize(warehouse, sync)
    execute(warehouse, "DELETE FROM core.unified_profiles WHERE profile_id = 'p3'")
    materialize(warehouse, sync)
    assert [r["body"] for r in hubspot.requests if r["path"].endswith("/batch/archive")] == [
        {"inputs": [{"id": hubspot.contact_by_email("cy@example.com")["id"]}]}] or \
        hubspot.contact_by_email("cy@example.com")["archived"]


KILLED_SYNC = textwrap.dedent("""
    import sys
    from pathlib import Path
    from cdp_assets.resources.warehouse import WarehouseResource
    from tests.destinations.records_world import make_sync, materialize
    materialize(WarehouseResource(url=sys.argv[1]), make_sync(Path(sys.argv[2])))
""")


def add_people(warehouse, count: int) -> None:
    with warehouse.begin() as conn:
        for n in range(count):
            warehouse.run(conn, "INSERT INTO core.unified_profiles (profile_id, email, first_name, lifetime_value, "
                                "order_count) VALUES (:p, :e, 'Many', 10, 1)",
                          {"p": f"m{n:03d}", "e": f"m{n}@example.com"})


@pytest.mark.parametrize("after_accepting", [False, True], ids=["killed-before-hubspot-wrote",
                                                                 "killed-after-hubspot-wrote-before-the-commit"])
def test_a_kill_mid_sync_followed_by_a_rerun_writes_each_record_once(world, hubspot, tmp_path, after_accepting):
    warehouse, sync = world
    add_people(warehouse, 250)
    process = subprocess.Popen([sys.executable, "-c", KILLED_SYNC, warehouse.url, str(tmp_path)],
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hubspot.kill(process.pid, 2, after_accepting)
    assert process.wait(timeout=120) == -9
    assert materialize(warehouse, sync).success
    assert len(hubspot.contacts) == 253
    assert set(hubspot.writes.values()) == {1}


def test_new_rows_only_records_todays_rows_as_there_and_sends_only_later_ones(warehouse, tmp_path, hubspot):
    build_world(warehouse)
    sync = make_sync(tmp_path, new_rows_only=True)
    first = materialize(warehouse, sync)
    assert (metadata(first)["outcome"], upserted(hubspot)) == ("baseline", [])
    execute(warehouse, "INSERT INTO core.unified_profiles (profile_id, email, first_name, lifetime_value, "
                       "order_count) VALUES ('p9', 'new@example.com', 'Nia', 5, 1)")
    materialize(warehouse, sync)
    assert upserted(hubspot) == ["new@example.com"]


def test_free_text_the_check_refuses_counts_once_for_every_record_holding_it_and_nothing_is_sent(
        world, hubspot, tmp_path):
    warehouse, _ = world
    execute(warehouse, "UPDATE core.unified_profiles SET rfm_segment = '+1 415 555 0101' "
                       "WHERE profile_id IN ('p1', 'p2')")
    execute(warehouse, "UPDATE core.unified_profiles SET rfm_segment = 'write to ada@example.com' "
                       "WHERE profile_id = 'p3'")
    sync = make_sync(tmp_path, fields={"rfm_segment": {"field": "cdp_notes"}})
    result = materialize(warehouse, sync)

    [safety] = [e for e in result.get_asset_check_evaluations() if e.check_name == "outbound_payloads_are_safe"]
    assert safety.metadata["problems"].value == {"cdp_notes holds something shaped like a phone number": 2,
                                                 "cdp_notes holds something shaped like an email address": 1}
    assert (metadata(result)["outcome"], upserted(hubspot)) == ("unsafe", [])
