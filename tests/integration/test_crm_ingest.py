"""CRM file drops into raw and quarantine: loaded once, nothing lost, problems named."""

import csv
import json
from decimal import Decimal

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from cdp_assets.ingest.crm_entities import CONTACTS, ORDERS
from cdp_assets.ingest.crm_files import crm_file_asset
from cdp_assets.ingest.crm_load import LEDGER
from cdp_assets.ingest.landing import LandingZone
from cdp_assets.ingest.mappings import CONTACT_COLUMNS as ALL_CONTACT_COLUMNS
from cdp_assets.ingest.mappings import ORDER_COLUMNS, load_mappings
from cdp_assets.ingest.phones import PHONE_NUMBERS
from cdp_assets.sample_data import CONTACT_COLUMNS

GOOD = {"contact_id": "C1", "email": "Ann@Example.com", "phone": "(415) 555-0134", "first_name": "Ann",
        "last_name": "Lee", "city": "Austin", "state": "TX", "postal_code": "78701", "country": "US",
        "ga_client_id": "", "consent_marketing": "yes", "updated_at": "2026-11-01T10:00:00Z", "deleted": ""}


def write_csv(path, rows, columns=CONTACT_COLUMNS):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def load(warehouse, landing):
    asset = crm_file_asset(CONTACTS, warehouse.dialect, load_mappings())
    return dg.materialize([asset], resources={"warehouse": warehouse, "landing": LandingZone(path=str(landing))})


def readable_check(result):
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "crm_contacts_files_are_readable"]
    return check


def rows(warehouse, sql):
    with warehouse.begin() as conn:
        return [tuple(r) for r in warehouse.run(conn, sql)]


def test_loading_the_same_file_twice_adds_nothing(warehouse, tmp_path):
    write_csv(tmp_path / "crm" / "contacts.csv", [GOOD, {**GOOD, "contact_id": "C2"}])

    load(warehouse, tmp_path)
    second = load(warehouse, tmp_path)

    assert rows(warehouse, "SELECT count(*) FROM raw.crm_contacts") == [(2,)]
    metadata = second.asset_materializations_for_node("raw__crm_contacts")[0].metadata
    assert (metadata["rows_loaded"].value, metadata["files_skipped_already_loaded"].value) == (0, 1)


def test_quarantined_row_keeps_its_original_values_file_line_and_reason(warehouse, tmp_path):
    write_csv(tmp_path / "crm" / "contacts_2026.csv", [GOOD, {**GOOD, "contact_id": "", "email": " Bad@ "}])

    result = load(warehouse, tmp_path)

    assert rows(warehouse, "SELECT contact_id, email, source_file, line_number, reason FROM quarantine.crm_contacts") \
        == [(None, " Bad@ ", "contacts_2026.csv", 3, "contact_id is missing; email is not a valid address")]
    metadata = result.asset_materializations_for_node("raw__crm_contacts")[0].metadata
    assert (metadata["rows_read"].value, metadata["rows_loaded"].value, metadata["rows_quarantined"].value) \
        == (2, 1, 1)


def test_an_unusable_phone_is_dropped_from_its_contact_which_keeps_everything_else(warehouse, tmp_path):
    write_csv(tmp_path / "crm" / "contacts.csv", [GOOD, {**GOOD, "contact_id": "C2", "email": "\tbo@example.org ",
                                                         "phone": "n/a"}])

    result = load(warehouse, tmp_path)

    assert rows(warehouse, "SELECT contact_id, phone, _phone_e164, _email, first_name FROM raw.crm_contacts "
                           "ORDER BY 1") == [("C1", "(415) 555-0134", "+14155550134", "ann@example.com", "Ann"),
                                             ("C2", "n/a", None, "bo@example.org", "Ann")]
    assert rows(warehouse, "SELECT contact_id, column_name, value, reason, source_file, line_number "
                           "FROM quarantine.crm_contact_fields") == [
        ("C2", "phone", "n/a", "phone is not a phone number", "contacts.csv", 3)]
    metadata = result.asset_materializations_for_node("raw__crm_contacts")[0].metadata
    assert (metadata["rows_read"].value, metadata["rows_loaded"].value, metadata["rows_quarantined"].value,
            metadata["fields_quarantined"].value) == (2, 2, 0, 1)
    assert rows(warehouse, "SELECT rows_read, rows_loaded, rows_quarantined, fields_quarantined "
                           "FROM raw.crm_file_ledger") == [(2, 2, 0, 1)]


def test_an_unusable_email_is_dropped_from_its_order_into_the_order_field_quarantine(warehouse, tmp_path):
    order = {"order_id": "O1", "contact_id": "C1", "email": "ann@", "order_ts": "2026-11-01T10:00:00Z",
             "value": "10.00", "currency": "USD", "status": "completed"}
    write_csv(tmp_path / "crm" / "orders.csv", [order], columns=ORDER_COLUMNS)

    asset = crm_file_asset(ORDERS, warehouse.dialect, load_mappings())
    dg.materialize([asset], resources={"warehouse": warehouse, "landing": LandingZone(path=str(tmp_path))})

    assert rows(warehouse, "SELECT order_id, email, _email FROM raw.crm_orders") == [("O1", "ann@", None)]
    assert rows(warehouse, "SELECT order_id, column_name, value, reason, line_number FROM "
                           "quarantine.crm_order_fields") == [
        ("O1", "email", "ann@", "email is not a valid address", 2)]


def test_raw_keeps_values_as_landed_with_their_source(warehouse, tmp_path):
    write_csv(tmp_path / "crm" / "contacts.csv", [GOOD])

    load(warehouse, tmp_path)

    assert rows(warehouse, "SELECT email, phone, _source, _line_number FROM raw.crm_contacts") \
        == [("Ann@Example.com", "(415) 555-0134", "contacts.csv", 2)]


def test_a_changed_file_with_the_same_name_is_loaded_as_a_new_version(warehouse, tmp_path):
    path = tmp_path / "crm" / "contacts.csv"
    write_csv(path, [GOOD])
    load(warehouse, tmp_path)
    write_csv(path, [{**GOOD, "city": "Dallas", "updated_at": "2026-11-02T10:00:00Z"}])

    load(warehouse, tmp_path)

    assert rows(warehouse, "SELECT city FROM raw.crm_contacts ORDER BY _updated_at") == [("Austin",), ("Dallas",)]
    assert rows(warehouse, "SELECT count(*) FROM raw.crm_file_ledger") == [(2,)]


def test_a_file_missing_columns_is_named_and_the_others_still_load(warehouse, tmp_path):
    write_csv(tmp_path / "crm" / "contacts_a.csv", [GOOD])
    write_csv(tmp_path / "crm" / "contacts_b.csv", [GOOD], columns=["contact_id", "email"])

    result = load(warehouse, tmp_path)

    check = readable_check(result)
    assert (check.passed, check.severity) == (False, dg.AssetCheckSeverity.ERROR)
    assert check.metadata["unreadable_files"].value == [
        "contacts_b.csv: missing required columns phone, first_name, last_name, city, state, "
        "postal_code, country, ga_client_id, consent_marketing, updated_at"]
    assert rows(warehouse, "SELECT _source FROM raw.crm_contacts") == [("contacts_a.csv",)]


def test_jsonl_and_parquet_drops_load_like_csv(warehouse, tmp_path):
    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "contacts_1.jsonl").write_text(json.dumps({**GOOD, "contact_id": "J1"}) + "\n")
    pq.write_table(pa.table({k: [v] for k, v in {**GOOD, "contact_id": "P1"}.items()}),
                   tmp_path / "crm" / "contacts_2.parquet")

    load(warehouse, tmp_path)

    assert rows(warehouse, "SELECT contact_id, _line_number FROM raw.crm_contacts ORDER BY contact_id") \
        == [("J1", 1), ("P1", 1)]


def test_a_file_whose_header_line_is_not_utf8_is_refused_without_quoting_its_content(warehouse, tmp_path):
    path = tmp_path / "crm" / "contacts.csv"
    path.parent.mkdir()
    path.write_bytes(",".join(CONTACT_COLUMNS).replace("email", "e\xe9mail").encode("latin-1") +
                     b"\nC1,ren\xe9@example.com,,,,,,,,,yes,2026-11-01,\n")

    result = load(warehouse, tmp_path)

    check = readable_check(result)
    assert check.metadata["unreadable_files"].value == [
        "contacts.csv: the header line is not utf-8 text; re-export it as UTF-8, or set `encoding:` on its "
        "mapping in crm_mappings.yaml"]
    assert rows(warehouse, "SELECT count(*) FROM raw.crm_contacts") == [(0,)]


def test_a_semicolon_delimited_export_loads(warehouse, tmp_path):
    path = tmp_path / "crm" / "contacts.csv"
    path.parent.mkdir()
    path.write_text(";".join(CONTACT_COLUMNS) + "\nC1;a@b.com;;;;;;;;;yes;2026-11-01;\n")

    load(warehouse, tmp_path)

    assert rows(warehouse, "SELECT contact_id, email FROM raw.crm_contacts") == [("C1", "a@b.com")]


def test_a_jsonl_key_with_a_quote_is_read_safely(warehouse, tmp_path):
    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "contacts.jsonl").write_text(json.dumps({**GOOD, "owner's note": "vip"}) + "\n")

    load(warehouse, tmp_path)

    assert rows(warehouse, "SELECT contact_id FROM raw.crm_contacts") == [("C1",)]


def test_raw_contacts_from_the_previous_release_are_migrated_in_place(warehouse):
    v1_columns = ", ".join(f"{c} VARCHAR" for c in CONTACT_COLUMNS)
    with warehouse.begin() as conn:
        warehouse.ensure_schemas(conn)
        PHONE_NUMBERS.ensure(warehouse, conn)
        warehouse.run(conn, f"CREATE TABLE raw.crm_contacts ({v1_columns}, _updated_at TIMESTAMP, "
                            "_line_number BIGINT, _source VARCHAR, _file_sha256 VARCHAR, _loaded_at TIMESTAMP)")
        warehouse.run(conn, "INSERT INTO cdp_meta.state_tables VALUES ('raw.crm_contacts', 1, current_timestamp)")
        warehouse.run(conn, "INSERT INTO raw.crm_contacts (contact_id, email, phone, country, consent_marketing, "
                            "deleted) VALUES ('C1', ' Ann@Example.com', ' (415) 555-0134', 'us', NULL, 'Yes')")
        warehouse.run(conn, "INSERT INTO staging.phone_numbers VALUES ('(415) 555-0134', 'US', 'US', '+14155550134', "
                            "NULL, current_timestamp)")

        CONTACTS.raw_table.ensure(warehouse, conn)

        assert [tuple(r) for r in warehouse.run(
            conn, "SELECT contact_id, _phone_e164, consent_marketing, extra, _email, _consent_marketing, "
                  "_consent_ads_personalization, _deleted FROM raw.crm_contacts")] == [
            ("C1", "+14155550134", "", None, "ann@example.com", False, None, True)]
        assert warehouse.scalar(conn, "SELECT version FROM cdp_meta.state_tables "
                                      "WHERE table_name = 'raw.crm_contacts'") == 3


def test_raw_orders_quarantine_and_the_ledger_of_the_previous_release_are_migrated_in_place(warehouse):
    text = ", ".join(f"{c} VARCHAR" for c in ORDER_COLUMNS)
    contact_text = ", ".join(f"{c} VARCHAR" for c in ALL_CONTACT_COLUMNS)
    with warehouse.begin() as conn:
        warehouse.ensure_schemas(conn)
        PHONE_NUMBERS.ensure(warehouse, conn)
        previous_release(warehouse, conn, "raw.crm_orders", 2, f"{text}, extra VARCHAR, _order_ts TIMESTAMP, "
                         "_phone_e164 VARCHAR, _line_number BIGINT, _source VARCHAR, _file_sha256 VARCHAR, "
                         "_loaded_at TIMESTAMP")
        previous_release(warehouse, conn, "quarantine.crm_contacts", 2, f"{contact_text}, extra VARCHAR, "
                         "source_file VARCHAR, line_number BIGINT, reason VARCHAR, file_sha256 VARCHAR, "
                         "quarantined_at TIMESTAMP")
        previous_release(warehouse, conn, "raw.crm_file_ledger", 1, "entity VARCHAR, file_name VARCHAR, "
                         "file_sha256 VARCHAR, rows_read BIGINT, rows_loaded BIGINT, rows_quarantined BIGINT, "
                         "loaded_at TIMESTAMP")
        warehouse.run(conn, "INSERT INTO raw.crm_orders (order_id, email, value, currency) "
                            "VALUES ('O1', 'Bo@Example.com ', ' 12.50', 'usd ')")
        warehouse.run(conn, "INSERT INTO quarantine.crm_contacts (contact_id, email, phone, country) "
                            "VALUES (NULL, ' Ann@Example.com', '(415) 555-0134', 'US')")
        warehouse.run(conn, "INSERT INTO staging.phone_numbers VALUES ('(415) 555-0134', 'US', 'US', '+14155550134', "
                            "NULL, current_timestamp)")
        warehouse.run(conn, "INSERT INTO raw.crm_file_ledger (entity, file_name, rows_read) VALUES ('orders', 'o', 1)")

        for table in (ORDERS.raw_table, CONTACTS.quarantine_table, LEDGER):
            table.ensure(warehouse, conn)

        assert [tuple(r) for r in warehouse.run(conn, "SELECT _email, _value, _currency FROM raw.crm_orders")] == [
            ("bo@example.com", Decimal("12.50"), "USD")]
        assert [tuple(r) for r in warehouse.run(conn, "SELECT _email, _phone_e164 FROM quarantine.crm_contacts")] == [
            ("ann@example.com", "+14155550134")]
        assert warehouse.scalar(conn, "SELECT fields_quarantined FROM raw.crm_file_ledger") == 0


def previous_release(warehouse, conn, table: str, version: int, columns: str) -> None:
    """`table` as the previous release left it: its columns then, at its version then."""
    warehouse.run(conn, f"CREATE TABLE {table} ({columns})")
    warehouse.run(conn, "INSERT INTO cdp_meta.state_tables VALUES (:t, :v, current_timestamp)",
                  {"t": table, "v": version})
