"""Deletion requests and suppression lists, end to end through the daily graph."""

import csv
import hashlib
from datetime import UTC, datetime, timedelta

import dagster as dg

from cdp_assets.definitions import build_definitions
from cdp_assets.ingest.mappings import CONTACT_COLUMNS, ORDER_COLUMNS
from cdp_assets.runs import run_day

DAY = (datetime.now(UTC) - timedelta(days=1)).date()
NOON = f"{DAY.isoformat()}T12:00:00Z"
CONTACTS = [
    {"contact_id": "C1", "email": "ann@example.com", "phone": "+1 415 555 0134", "country": "US",
     "consent_marketing": "yes", "updated_at": "2026-01-01T00:00:00Z"},
    # Ann again under a work email: linked to C1 only through the phone.
    {"contact_id": "C2", "email": "ann.work@example.com", "phone": "(415) 555-0134", "country": "US",
     "consent_marketing": "yes", "updated_at": "2026-01-02T00:00:00Z"},
    {"contact_id": "C3", "email": "bo@example.com", "phone": "", "country": "US", "consent_marketing": "yes",
     "updated_at": "2026-01-01T00:00:00Z"},
]
ORDERS = [
    {"order_id": "O1", "contact_id": "C1", "order_ts": NOON, "value": "10.00", "currency": "USD",
     "status": "completed", "action_source": "physical_store"},
    {"order_id": "O2", "contact_id": "C3", "order_ts": NOON, "value": "20.00", "currency": "USD",
     "status": "completed", "action_source": "physical_store"},
    {"order_id": "O3", "email": "ANN@example.com", "order_ts": NOON, "value": "30.00", "currency": "USD",
     "status": "completed", "action_source": "physical_store"},
]


def write(landing, name, columns, rows):
    path = landing / "crm" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def run(warehouse, landing, instance=None):
    (landing / "ga4").mkdir(exist_ok=True)
    for report in ("daily_traffic", "transactions"):  # the GA4 sample of a property that saw nothing
        (landing / "ga4" / f"{report}.jsonl").touch()
    instance = instance or dg.DagsterInstance.ephemeral()
    outcome = run_day(build_definitions(warehouse, str(landing)), DAY, instance, "ERROR")
    assert outcome.ok, (outcome.failed_steps, outcome.failed_checks)


def values(warehouse, sql):
    with warehouse.begin() as conn:
        return [tuple(r) for r in warehouse.run(conn, sql)]


def landed(tmp_path):
    write(tmp_path, "contacts.csv", CONTACT_COLUMNS, CONTACTS)
    write(tmp_path, "orders.csv", ORDER_COLUMNS, ORDERS)
    return tmp_path


def test_a_deletion_request_purges_the_whole_person_from_every_warehouse_stage(warehouse, tmp_path):
    run(warehouse, landed(tmp_path))
    write(tmp_path, "deletions.csv", ["email"], [{"email": " Ann@Example.com"}])

    run(warehouse, tmp_path)

    assert values(warehouse, "SELECT contact_id FROM raw.crm_contacts") == [("C3",)]
    assert values(warehouse, "SELECT order_id FROM raw.crm_orders") == [("O2",)]
    assert values(warehouse, "SELECT contact_id FROM staging.stg_crm_contacts") == [("C3",)]
    assert values(warehouse, "SELECT id_value FROM core.profile_identifiers WHERE id_type = 'email'") == [
        ("bo@example.com",)]
    assert values(warehouse, "SELECT phone_raw FROM staging.phone_numbers") == []
    assert values(warehouse, "SELECT stage, rows_remaining, status FROM core.deletion_status ORDER BY stage") == [
        ("core", 0, "purged"), ("destination:braze_users", 0, "deleted"),
        ("destination:google_customer_match", 0, "removed"), ("destination:hubspot_contacts", 0, "deleted"),
        ("destination:klaviyo_profiles", 0, "deleted"), ("destination:meta_custom_audiences", 0, "removed"),
        ("destination:salesforce_contacts", 0, "not_held"), ("quarantine", 0, "purged"), ("raw", 0, "purged"),
        ("staging", 0, "purged")]


def test_a_deletion_request_keeps_only_the_hash_destinations_match_on(warehouse, tmp_path):
    write(tmp_path, "deletions.csv", ["email"], [{"email": " Ann@Example.com"}])

    run(warehouse, landed(tmp_path))

    assert values(warehouse, "SELECT id_type, id_sha256, status FROM core.deletion_requests") == [
        ("email", hashlib.sha256(b"ann@example.com").hexdigest(), "active")]


def test_a_deleted_person_in_a_later_export_is_purged_on_arrival(warehouse, tmp_path):
    write(tmp_path, "deletions.csv", ["contact_id"], [{"contact_id": "C3"}])
    run(warehouse, landed(tmp_path))
    write(tmp_path, "contacts_later.csv", CONTACT_COLUMNS, [{**CONTACTS[2], "updated_at": "2026-02-01T00:00:00Z"}])

    run(warehouse, tmp_path)

    assert values(warehouse, "SELECT contact_id FROM raw.crm_contacts ORDER BY 1") == [("C1",), ("C2",)]


def test_a_deletion_row_that_names_nobody_usable_is_kept_as_rejected_with_its_reason(warehouse, tmp_path):
    write(tmp_path, "deletions.csv", ["email", "phone"], [{"email": "not-an-email"}, {"phone": ""},
                                                          {"phone": "12"}])

    run(warehouse, landed(tmp_path))

    assert values(warehouse, "SELECT line_number, id_type, status, reason FROM core.deletion_requests "
                             "ORDER BY line_number") == [
        (2, "email", "rejected", "email is not a valid address"),
        (3, None, "rejected", "names no email or phone or contact_id"),
        (4, "phone", "rejected", "phone has no country code, and no country to read a national number in")]


def test_a_suppressed_email_keeps_its_profile_out_of_audiences_and_conversions(warehouse, tmp_path):
    write(tmp_path, "suppressions.csv", ["email"], [{"email": "BO@example.com "}])

    instance = dg.DagsterInstance.ephemeral()
    run(warehouse, landed(tmp_path), instance)

    [(suppressed,)] = values(warehouse, "SELECT profile_id FROM core.suppressed_profiles")
    assert values(warehouse, "SELECT profile_id FROM core.record_profiles WHERE record_key = 'contact:C3'") == [
        (suppressed,)]
    assert (suppressed,) not in values(warehouse, "SELECT profile_id FROM audiences.purchasers_30d")
    capi = instance.get_latest_materialization_event(
        dg.AssetKey(["activation", "meta_capi"])).asset_materialization.metadata
    assert (capi["conversions"].value, capi["filtered_by_suppression"].value) == (3, 1)
    bodies = " ".join(b for (b,) in values(warehouse, "SELECT request_body FROM activation.egress_requests"))
    assert '"O2"' not in bodies


def test_a_deletion_by_phone_also_purges_quarantined_rows_that_hold_the_number(warehouse, tmp_path):
    quarantined = {"contact_id": "C4", "email": "dee@example.com", "phone": "\t(415) 555-0199", "country": "US",
                   "consent_marketing": "yes", "updated_at": "soon"}
    write(tmp_path, "contacts.csv", CONTACT_COLUMNS, [*CONTACTS, quarantined])
    write(tmp_path, "orders.csv", ORDER_COLUMNS, ORDERS)
    write(tmp_path, "deletions.csv", ["phone"], [{"phone": "+1 415-555-0199"}])

    run(warehouse, tmp_path)

    assert values(warehouse, "SELECT contact_id FROM quarantine.crm_contacts") == []
    assert values(warehouse, "SELECT count(*) FROM staging.phone_numbers WHERE e164 = '+14155550199'") == [(0,)]
    assert values(warehouse, "SELECT stage, status FROM core.deletion_status WHERE stage = 'quarantine'") == [
        ("quarantine", "purged")]


def test_a_deletion_request_purges_the_fields_dropped_from_the_persons_records(warehouse, tmp_path):
    dropped_phones = [{"contact_id": "C5", "email": "ann@example.com", "phone": "n/a", "country": "US",
                       "consent_marketing": "yes", "updated_at": "2026-01-03T00:00:00Z"},
                      {"contact_id": "C6", "email": "cy@example.com", "phone": "123", "country": "US",
                       "consent_marketing": "yes", "updated_at": "2026-01-03T00:00:00Z"}]
    write(tmp_path, "contacts.csv", CONTACT_COLUMNS, [*CONTACTS, *dropped_phones])
    write(tmp_path, "orders.csv", ORDER_COLUMNS, [*ORDERS, {**ORDERS[2], "order_id": "O4", "phone": "12"}])
    write(tmp_path, "deletions.csv", ["email"], [{"email": "ann@example.com"}])

    run(warehouse, tmp_path)

    assert values(warehouse, "SELECT contact_id, column_name FROM quarantine.crm_contact_fields") == [("C6", "phone")]
    assert values(warehouse, "SELECT order_id FROM quarantine.crm_order_fields") == []
    assert values(warehouse, "SELECT stage, status FROM core.deletion_status WHERE stage = 'quarantine'") == [
        ("quarantine", "purged")]
