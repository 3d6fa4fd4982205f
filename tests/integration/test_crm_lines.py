"""Lines whose fields cannot be trusted positionally are quarantined one by one; the file's other rows load."""

import dagster as dg

from cdp_assets.ingest.crm_entities import CONTACTS, ORDERS
from cdp_assets.ingest.crm_files import crm_file_asset
from cdp_assets.ingest.landing import LandingZone
from cdp_assets.ingest.mappings import CONTACT_COLUMNS, ORDER_COLUMNS, load_mappings

ORDER_HEADER = ",".join(ORDER_COLUMNS)
# An unquoted comma in the user agent, on a line that ends in an empty field: one field too many.
SHIFTED = ("O2,C1,,,2026-11-01T10:00:00Z,10.00,USD,completed,website,203.0.113.9,"
           "Mozilla/5.0 (Windows NT 10.0, Win64),fb.1.1730000000000.AbCdEf,,,,https://shop.example.com/checkout,")
GOOD_ORDER = "O1,C1,,,2026-11-01T10:00:00Z,10.00,USD,completed,website,,,,,,,,"
CONTACT_HEADER = ",".join(CONTACT_COLUMNS)


def good_contact(n: int) -> str:
    values = {"contact_id": f"C{n}", "email": f"c{n}@example.com", "consent_marketing": "yes",
              "updated_at": "2026-11-01T10:00:00Z"}
    return ",".join(values.get(c, "") for c in CONTACT_COLUMNS)


def drop(landing, name, text):
    path = landing / "crm" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def load(warehouse, landing, entity):
    asset = crm_file_asset(entity, warehouse.dialect, load_mappings())
    result = dg.materialize([asset], resources={"warehouse": warehouse, "landing": LandingZone(path=str(landing))})
    return result.asset_materializations_for_node(f"raw__crm_{entity.name}")[0].metadata


def rows(warehouse, sql):
    with warehouse.begin() as conn:
        return [tuple(r) for r in warehouse.run(conn, sql)]


def test_an_unquoted_comma_is_quarantined_not_loaded_shifted(warehouse, tmp_path):
    drop(tmp_path, "orders.csv", f"{ORDER_HEADER}\n{GOOD_ORDER}\n{SHIFTED}\n")

    metadata = load(warehouse, tmp_path, ORDERS)

    assert rows(warehouse, "SELECT order_id, _line_number FROM raw.crm_orders") == [("O1", 2)]
    assert rows(warehouse, "SELECT order_id, user_agent, gclid, source_file, line_number, reason "
                           "FROM quarantine.crm_orders") == [
        (None, None, None, "orders.csv", 3, "line has 18 fields; the header has 17")]
    assert (metadata["rows_read"].value, metadata["rows_loaded"].value, metadata["rows_quarantined"].value,
            metadata["rows_malformed"].value) == (2, 1, 1, 1)


def test_bad_lines_at_the_start_middle_and_end_are_all_reported_in_one_pass(warehouse, tmp_path):
    lines = [CONTACT_HEADER, "C1,too,few", good_contact(2), f'{good_contact(3)},"extra"', good_contact(4),
             good_contact(5).replace("c5@example.com", '"c5"@example.com'), good_contact(6),
             f"{good_contact(7)},x,y"]
    drop(tmp_path, "contacts.csv", "\n".join(lines) + "\n")

    metadata = load(warehouse, tmp_path, CONTACTS)

    assert rows(warehouse, "SELECT contact_id, _line_number FROM raw.crm_contacts ORDER BY 2") == [
        ("C2", 3), ("C4", 5), ("C6", 7)]
    assert rows(warehouse, "SELECT contact_id, email, line_number, reason FROM quarantine.crm_contacts "
                           "ORDER BY line_number") == [
        (None, None, 2, "line has 3 fields; the header has 14"),
        (None, None, 4, "line has 15 fields; the header has 14"),
        (None, None, 6, "line has a quote that does not close where its field ends"),
        (None, None, 8, "line has 16 fields; the header has 14")]
    assert (metadata["rows_read"].value, metadata["rows_loaded"].value, metadata["rows_quarantined"].value,
            metadata["rows_malformed"].value) == (7, 3, 4, 4)


def test_a_line_not_in_the_files_encoding_is_quarantined_alone(warehouse, tmp_path):
    path = tmp_path / "crm" / "contacts.csv"
    path.parent.mkdir()
    latin = good_contact(2).replace("c2@", "ren\xe9@").encode("latin-1")
    path.write_bytes(f"{CONTACT_HEADER}\n{good_contact(1)}\n".encode() + latin + f"\n{good_contact(3)}\n".encode())

    load(warehouse, tmp_path, CONTACTS)

    assert rows(warehouse, "SELECT contact_id, _line_number FROM raw.crm_contacts ORDER BY 2") == [("C1", 2), ("C3", 4)]
    assert rows(warehouse, "SELECT email, line_number, reason FROM quarantine.crm_contacts") == [
        (None, 3, "line is not utf-8 text; re-export it as UTF-8, or set `encoding:` on its mapping in "
                  "crm_mappings.yaml")]


def test_a_jsonl_line_that_is_not_an_object_is_quarantined_and_a_blank_line_skipped(warehouse, tmp_path):
    good = '{"contact_id": "J%d", "email": "j%d@example.com", "updated_at": "2026-11-01T10:00:00Z"}'
    drop(tmp_path, "contacts.jsonl", "\n".join([good % (1, 1), '{"contact_id": "J2", broken', "", '["J3"]',
                                                 good % (4, 4), "J6\x01x", good % (5, 5)]) + "\n")
    mappings = tmp_path / "mappings.yaml"
    mappings.write_text("mappings:\n  json:\n    entity: contacts\n    files: ['contacts*']\n"
                        "    columns: {contact_id: contact_id, email: email, updated_at: updated_at}\n")

    asset = crm_file_asset(CONTACTS, warehouse.dialect, load_mappings(mappings))
    dg.materialize([asset], resources={"warehouse": warehouse, "landing": LandingZone(path=str(tmp_path))})

    assert rows(warehouse, "SELECT contact_id, _line_number FROM raw.crm_contacts ORDER BY 2") == [
        ("J1", 1), ("J4", 5), ("J5", 7)]
    assert rows(warehouse, "SELECT contact_id, line_number, reason FROM quarantine.crm_contacts "
                           "ORDER BY line_number") == [
        (None, 2, "line is not a JSON object"), (None, 4, "line is not a JSON object"),
        (None, 6, "line is not a JSON object")]


def test_a_line_over_the_size_limit_is_quarantined_alone(warehouse, tmp_path):
    long = good_contact(2).replace("c2@example.com", "x" * 2_100_000)
    drop(tmp_path, "contacts.csv", "\n".join([CONTACT_HEADER, good_contact(1), long, good_contact(3)]) + "\n")

    load(warehouse, tmp_path, CONTACTS)

    assert rows(warehouse, "SELECT contact_id, _line_number FROM raw.crm_contacts ORDER BY 2") == [("C1", 2), ("C3", 4)]
    assert rows(warehouse, "SELECT line_number, reason FROM quarantine.crm_contacts") == [
        (3, "line is longer than 2000000 bytes")]


def test_a_jsonl_file_without_any_json_object_is_refused_whole(warehouse, tmp_path):
    drop(tmp_path, "contacts.jsonl", "not json\n[1, 2]\n")

    asset = crm_file_asset(CONTACTS, warehouse.dialect, load_mappings())
    result = dg.materialize([asset], resources={"warehouse": warehouse, "landing": LandingZone(path=str(tmp_path))})

    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "crm_contacts_files_are_readable"]
    assert check.metadata["unreadable_files"].value == ["contacts.jsonl: no line is a JSON object"]
