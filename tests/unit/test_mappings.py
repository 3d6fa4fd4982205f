"""crm_mappings.yaml: the shipped mappings load, and mistakes are named with the file and field."""

import pytest

from cdp_assets.ingest.mappings import data_stem, load_mappings, mapping_for
from cdp_assets.settings import ConfigError


def write(tmp_path, text):
    path = tmp_path / "crm_mappings.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_mappings_load():
    assert [m.name for m in load_mappings()] == [
        "canonical_contacts", "canonical_orders", "hubspot_contacts", "hubspot_deals", "hubspot_api_contacts",
        "hubspot_api_deals", "salesforce_contacts"]


@pytest.mark.parametrize("name, expected", [
    ("contacts.csv", "canonical_contacts"), ("contacts_2026-11-01.csv.gz", "canonical_contacts"),
    ("orders.jsonl", "canonical_orders"), ("HubSpot-Contacts-export.csv", "hubspot_contacts"),
    ("hubspot-api-deals-20261101T000000-20261102T000000.jsonl.gz", "hubspot_api_deals"),
    ("salesforce_contacts.parquet", "salesforce_contacts"), ("leads.csv", None), ("contacts.xlsx", None),
])
def test_a_file_takes_the_first_mapping_its_name_matches(name, expected):
    found = mapping_for(load_mappings(), name)
    assert (found.name if found else None) == expected


def test_the_data_stem_drops_compound_suffixes():
    assert (data_stem("orders_1.csv.gz"), data_stem("orders_1.jsonl"), data_stem("notes.txt")) == (
        "orders_1", "orders_1", None)


def test_an_unknown_canonical_column_is_named_with_the_file(tmp_path):
    path = write(tmp_path, "mappings:\n  x:\n    entity: contacts\n    files: [x*]\n"
                           "    columns: {contact_id: Id, updated_at: Changed, mail: Email}\n")
    with pytest.raises(ConfigError) as raised:
        load_mappings(path)
    assert str(raised.value).startswith(f"{path}: mappings.x: 'mail' is not a canonical contacts column")


def test_a_mapping_without_its_key_columns_is_refused(tmp_path):
    path = write(tmp_path, "mappings:\n  x:\n    entity: orders\n    files: [x*]\n    columns: {order_id: Id}\n")
    with pytest.raises(ConfigError) as raised:
        load_mappings(path)
    assert str(raised.value) == (f"{path}: mappings.x.columns must map order_ts, value, currency: "
                                 "every orders row needs it")


def test_an_unsupported_encoding_is_refused(tmp_path):
    path = write(tmp_path, "mappings:\n  x:\n    entity: contacts\n    files: [x*]\n    encoding: cp1252\n"
                           "    columns: {contact_id: Id, updated_at: Changed}\n")
    with pytest.raises(ConfigError, match=r"mappings.x.encoding must be one of utf-8, latin-1, utf-16"):
        load_mappings(path)


def test_value_maps_are_read_as_text_whatever_yaml_makes_of_them(tmp_path):
    path = write(tmp_path, "mappings:\n  x:\n    entity: contacts\n    files: [x*]\n"
                           "    columns:\n      contact_id: Id\n      updated_at: Changed\n"
                           "      consent_marketing: {column: OptOut, values: {true: 'false', 0: 'true'}}\n")
    [mapping] = load_mappings(path)
    assert mapping.columns["consent_marketing"].values == {"true": "false", "0": "true"}
