"""Real exports and awkward files: mappings, encodings, layouts, extra columns, overlapping drops."""

import csv
import gzip
import json

import dagster as dg
import pytest

from cdp_assets.definitions import build_definitions
from cdp_assets.ingest.mappings import CONTACT_COLUMNS

STAGED = [dg.AssetKey(k) for k in (["raw", "crm_contacts"], ["raw", "crm_orders"], ["staging", "stg_crm_contacts"],
                                   ["staging", "stg_crm_orders"])]
GOOD = {"contact_id": "C1", "email": "ann@example.com", "phone": "", "first_name": "Ann", "last_name": "Lee",
        "city": "Austin", "state": "TX", "postal_code": "78701", "country": "US", "ga_client_id": "",
        "consent_marketing": "yes", "updated_at": "2026-11-01T10:00:00Z"}
HEADER = ",".join(GOOD)


def stage(warehouse, landing):
    """Load the landing folder and build staging through the project's definitions (a source with no rows
    fails its gate and stops only its own staging model)."""
    defs = build_definitions(warehouse, str(landing))
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(
        asset_selection=STAGED, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


def drop(landing, name, content: bytes | str):
    path = landing / "crm" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def write_rows(landing, name, header, rows):
    path = landing / "crm" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def rows(warehouse, sql):
    with warehouse.begin() as conn:
        return [tuple(r) for r in warehouse.run(conn, sql)]


def check(result, name):
    [evaluation] = [c for c in result.get_asset_check_evaluations() if c.check_name == name]
    return evaluation


def test_a_bom_and_windows_line_endings_are_read_cleanly(warehouse, tmp_path):
    drop(tmp_path, "contacts.csv", b"\xef\xbb\xbf" + f"{HEADER}\r\n".encode() +
         b"C1,ann@example.com,,Ann,Lee,Austin,TX,78701,US,,yes,2026-11-01T10:00:00Z\r\n")

    stage(warehouse, tmp_path)

    assert rows(warehouse, "SELECT contact_id, updated_at FROM staging.stg_crm_contacts") == [
        ("C1", dg_ts("2026-11-01 10:00:00"))]


def test_tab_and_pipe_delimited_exports_load(warehouse, tmp_path):
    drop(tmp_path, "contacts_tab.csv",
         HEADER.replace(",", "\t") + "\nT1\tt@example.com\t\t\t\t\t\t\t\t\tyes\t2026-11-01\n")
    drop(tmp_path, "contacts_pipe.csv", HEADER.replace(",", "|") + "\nP1|p@example.com|||||||||no|2026-11-01\n")

    stage(warehouse, tmp_path)

    assert rows(warehouse, "SELECT contact_id, email FROM staging.stg_crm_contacts ORDER BY 1") == [
        ("P1", "p@example.com"), ("T1", "t@example.com")]


def test_gzipped_csv_and_jsonl_load(warehouse, tmp_path):
    drop(tmp_path, "contacts_a.csv.gz", gzip.compress(f"{HEADER}\nG1,g@example.com,,,,,,,,,yes,2026-11-01\n".encode()))
    drop(tmp_path, "contacts_b.jsonl.gz", gzip.compress((json.dumps({**GOOD, "contact_id": "J1"}) + "\n").encode()))

    stage(warehouse, tmp_path)

    assert rows(warehouse, "SELECT contact_id FROM staging.stg_crm_contacts ORDER BY 1") == [("G1",), ("J1",)]


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_an_export_in_another_encoding_loads_when_its_mapping_names_it(warehouse, tmp_path, monkeypatch, encoding):
    mappings = tmp_path / "mappings.yaml"
    mappings.write_text(
        f"mappings:\n  legacy:\n    entity: contacts\n    files: ['legacy-contacts*']\n    encoding: {encoding}\n"
        "    columns: {contact_id: id, email: mail, first_name: name, updated_at: changed}\n", encoding="utf-8")
    monkeypatch.setattr("cdp_assets.ingest.mappings.MAPPINGS_YAML", mappings)
    drop(tmp_path, "legacy-contacts.csv", "id,mail,name,changed\r\nL1,ren@example.com,Ren\xe9,2026-11-01\r\n"
         .encode(encoding))

    stage(warehouse, tmp_path)

    assert rows(warehouse, "SELECT contact_id, first_name FROM staging.stg_crm_contacts") == [("L1", "René")]


def test_headers_match_their_mapping_case_insensitively_and_ignoring_surrounding_spaces(warehouse, tmp_path):
    header = [f" {name.upper()} " if name in ("contact_id", "email") else name.title() for name in GOOD]
    write_rows(tmp_path, "contacts.csv", header, [list(GOOD.values())])

    stage(warehouse, tmp_path)

    assert rows(warehouse, "SELECT contact_id, email, city FROM staging.stg_crm_contacts") == [
        ("C1", "ann@example.com", "Austin")]


def test_two_headers_that_differ_only_in_case_refuse_the_file(warehouse, tmp_path):
    write_rows(tmp_path, "contacts.csv", [*GOOD, "EMAIL"], [[*GOOD.values(), "other@example.com"]])

    result = stage(warehouse, tmp_path)

    assert check(result, "crm_contacts_files_are_readable").metadata["unreadable_files"].value == [
        "contacts.csv: columns 'email' and 'EMAIL' differ only in case or surrounding spaces; rename one of them"]


def test_unexpected_columns_are_kept_as_json_and_flagged(warehouse, tmp_path):
    write_rows(tmp_path, "contacts.csv", [*GOOD, "Lead Score", "Owner"], [[*GOOD.values(), "87", "Sam"]])

    result = stage(warehouse, tmp_path)

    assert [json.loads(e) for (e,) in rows(warehouse, "SELECT extra FROM raw.crm_contacts")] == [
        {"Lead Score": "87", "Owner": "Sam"}]
    flagged = check(result, "crm_contacts_files_have_only_mapped_columns")
    assert (flagged.passed, flagged.metadata["unmapped_columns_by_file"].value) == (
        False, {"contacts.csv": ["Lead Score", "Owner"]})


def test_an_empty_file_is_refused_and_a_header_only_file_loads_nothing(warehouse, tmp_path):
    drop(tmp_path, "contacts_empty.csv", b"")
    drop(tmp_path, "contacts_header.csv", HEADER + "\n")

    result = stage(warehouse, tmp_path)

    assert check(result, "crm_contacts_files_are_readable").metadata["unreadable_files"].value == [
        "contacts_empty.csv: the file is empty; expected a header row"]
    assert rows(warehouse, "SELECT file_name, rows_read FROM raw.crm_file_ledger") == [("contacts_header.csv", 0)]


def test_a_hubspot_contacts_export_loads_by_its_own_headers(warehouse, tmp_path):
    write_rows(tmp_path, "hubspot-contacts-2026-11-01.csv",
               ["Record ID", "First Name", "Last Name", "Email", "Phone Number", "City", "State/Region",
                "Postal Code", "Country/Region", "Last Modified Date", "Lifecycle Stage"],
               [["5101", "Ann", "Lee", "Ann@Example.com", "+1 415 555 0134", "Austin", "Texas", "78701",
                 "United States", "2026-11-01 10:00", "customer"]])

    stage(warehouse, tmp_path)

    assert rows(warehouse, "SELECT contact_id, email, phone_e164, state, country, consent_marketing "
                           "FROM staging.stg_crm_contacts") == [
        ("5101", "ann@example.com", "+14155550134", "Texas", "United States", None)]


def test_a_salesforce_export_reads_email_opt_out_as_withheld_consent(warehouse, tmp_path):
    write_rows(tmp_path, "salesforce-contacts.csv",
               ["Id", "FirstName", "LastName", "Email", "Phone", "MailingCity", "MailingState", "MailingPostalCode",
                "MailingCountry", "LastModifiedDate", "HasOptedOutOfEmail", "IsDeleted"],
               [["0035e00000AbCdE", "Ann", "Lee", "ann@example.com", "", "", "", "", "US",
                 "2026-11-01T10:00:00.000Z", "true", "false"],
                ["0035e00000FgHiJ", "Bo", "Kim", "bo@example.com", "", "", "", "", "US",
                 "2026-11-01T10:00:00.000Z", "false", "false"]])

    stage(warehouse, tmp_path)

    assert rows(warehouse, "SELECT contact_id, consent_marketing FROM staging.stg_crm_contacts ORDER BY 1") == [
        ("0035e00000AbCdE", False), ("0035e00000FgHiJ", True)]


def test_a_hubspot_deals_export_becomes_orders(warehouse, tmp_path):
    write_rows(tmp_path, "hubspot-deals.csv",
               ["Record ID", "Deal Name", "Deal Stage", "Close Date", "Amount", "Currency", "Associated Contact IDs"],
               [["8801", "Renewal", "Closed Won", "2026-11-01 09:00", "1200.00", "USD", "5101;5102"],
                ["8802", "Upsell", "Closed Lost", "2026-11-02 09:00", "300.00", "EUR", ""]])

    stage(warehouse, tmp_path)

    assert rows(warehouse, "SELECT order_id, contact_id, status, value, currency, action_source "
                           "FROM staging.stg_crm_orders ORDER BY 1") == [
        ("8801", "5101", "completed", dec("1200.00"), "USD", "system_generated")]
    assert rows(warehouse, "SELECT order_id, reason FROM quarantine.crm_orders") == [
        ("8802", "order has no contact_id, email or phone")]


def test_a_file_no_mapping_matches_is_named_and_not_loaded(warehouse, tmp_path):
    write_rows(tmp_path, "leads.csv", ["x"], [["1"]])

    result = stage(warehouse, tmp_path)

    [materialization] = result.asset_materializations_for_node("raw__crm_contacts")
    assert materialization.metadata["files_without_mapping"].value == 1
    assert rows(warehouse, "SELECT count(*) FROM raw.crm_file_ledger") == [(0,)]


def test_a_file_of_a_type_no_reader_accepts_is_counted_not_ignored(warehouse, tmp_path):
    drop(tmp_path, "contacts_export.txt", f"{HEADER}\nC1,ann@example.com,,,,,,,,,yes,2026-11-01\n")
    drop(tmp_path, ".DS_Store", b"\x00")

    result = stage(warehouse, tmp_path)

    [materialization] = result.asset_materializations_for_node("raw__crm_contacts")
    assert materialization.metadata["files_unsupported_type"].value == 1


def test_overlapping_exports_never_duplicate_a_contact_or_an_order(warehouse, tmp_path):
    order_header = ["order_id", "contact_id", "email", "phone", "order_ts", "value", "currency", "status",
                    "action_source", "client_ip", "user_agent", "fbc", "fbp", "gclid", "ttclid", "event_source_url",
                    "product_ids"]
    order = ["O1", "C1", "", "", "2026-11-01T10:00:00Z", "10.00", "USD", "completed", "website", *[""] * 8]
    write_rows(tmp_path, "contacts_monday.csv", list(GOOD), [list(GOOD.values()),
                                                             [*{**GOOD, "contact_id": "C2"}.values()]])
    write_rows(tmp_path, "orders_monday.csv", order_header, [order])
    stage(warehouse, tmp_path)
    write_rows(tmp_path, "contacts_tuesday.csv", list(GOOD), [
        list(GOOD.values()), [*{**GOOD, "contact_id": "C2", "city": "Dallas", "updated_at": "2026-11-02"}.values()]])
    write_rows(tmp_path, "orders_tuesday.csv", order_header, [order, [*order[:7], "refunded", *order[8:]]][1:])

    stage(warehouse, tmp_path)
    stage(warehouse, tmp_path)

    assert rows(warehouse, "SELECT contact_id, city FROM staging.stg_crm_contacts ORDER BY 1") == [
        ("C1", "Austin"), ("C2", "Dallas")]
    assert rows(warehouse, "SELECT order_id, status FROM staging.stg_crm_orders") == [("O1", "refunded")]


def test_an_export_without_a_consent_column_leaves_consent_unchanged(warehouse, tmp_path):
    write_rows(tmp_path, "contacts.csv", list(GOOD), [list(GOOD.values())])
    stage(warehouse, tmp_path)
    write_rows(tmp_path, "hubspot-contacts.csv",
               ["Record ID", "First Name", "Last Name", "Email", "Phone Number", "City", "State/Region",
                "Postal Code", "Country/Region", "Last Modified Date"],
               [["C1", "Ann", "Lee", "ann@example.com", "", "Dallas", "TX", "75201", "US", "2026-11-05 10:00"]])

    stage(warehouse, tmp_path)

    assert rows(warehouse, "SELECT city, consent_marketing FROM staging.stg_crm_contacts") == [("Dallas", True)]


def test_the_canonical_contacts_columns_are_the_documented_ones_plus_optional_ones():
    assert list(CONTACT_COLUMNS) == [
        "contact_id", "email", "phone", "first_name", "last_name", "city", "state", "postal_code", "country",
        "ga_client_id", "consent_marketing", "consent_ads_personalization", "updated_at", "deleted"]


def dg_ts(text):
    from datetime import datetime
    return datetime.fromisoformat(text)


def dec(text):
    from decimal import Decimal
    return Decimal(text)
