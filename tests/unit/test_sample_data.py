"""The sample-data generator: deterministic, canonical columns, the mess it promises."""

import csv
import json
from datetime import date

import pytest

from cdp_assets.sample_data import (
    CONTACT_COLUMNS,
    ORDER_COLUMNS,
    ga4_traffic_rows,
    write_crm_extracts,
)


def read(path):
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_same_seed_gives_identical_files(tmp_path):
    for name in ("a", "b"):
        write_crm_extracts(tmp_path / name, 200, date(2026, 3, 31), seed=7)

    for file in ("contacts.csv", "orders.csv"):
        assert (tmp_path / "a" / "crm" / file).read_bytes() == (tmp_path / "b" / "crm" / file).read_bytes()


def test_counts_for_a_seed_are_fixed(tmp_path):
    counts = write_crm_extracts(tmp_path, 1000, date(2026, 3, 31))

    assert counts == {"people": 1000, "contacts": 1137, "orders": 950, "ga4_transactions": 718}


def test_files_have_the_canonical_columns(tmp_path):
    write_crm_extracts(tmp_path, 100, date(2026, 3, 31))

    with (tmp_path / "crm" / "contacts.csv").open() as contacts, (tmp_path / "crm" / "orders.csv").open() as orders:
        assert next(csv.reader(contacts)) == CONTACT_COLUMNS
        assert next(csv.reader(orders)) == ORDER_COLUMNS


def test_contacts_are_messy_the_way_real_exports_are(tmp_path):
    write_crm_extracts(tmp_path, 2000, date(2026, 3, 31))
    contacts = read(tmp_path / "crm" / "contacts.csv")

    assert any(c["email"] != c["email"].strip() for c in contacts)
    assert any(c["email"] and c["email"] != c["email"].lower() for c in contacts)
    assert any(c["contact_id"].endswith("D") for c in contacts)  # the same person entered twice
    assert any(c["email"] == "test@test.com" for c in contacts)
    assert {c["consent_marketing"] for c in contacts} >= {"", "yes", "no", "1", "0", "true", "false"}
    assert any(c["phone"].startswith("(") for c in contacts) and any(c["phone"].startswith("00") for c in contacts)


def test_orders_stay_inside_the_requested_days(tmp_path):
    write_crm_extracts(tmp_path, 500, date(2026, 3, 31), days=10)
    days = {o["order_ts"][:10] for o in read(tmp_path / "crm" / "orders.csv") if o["order_ts"][:4] == "2026"}

    assert min(days) == "2026-03-22" and max(days) == "2026-03-31"


def test_a_ga4_day_is_the_same_whatever_range_asks_for_it():
    alone = list(ga4_traffic_rows(date(2026, 3, 2), date(2026, 3, 2)))
    in_range = [r for r in ga4_traffic_rows(date(2026, 3, 1), date(2026, 3, 3)) if r["date"] == "20260302"]

    assert alone == in_range
    assert len(alone) == 96


def test_ga4_transactions_are_the_tracked_web_orders_by_order_id(tmp_path):
    write_crm_extracts(tmp_path, 1000, date(2026, 3, 31))
    orders = {o["order_id"]: o for o in read(tmp_path / "crm" / "orders.csv")}
    lines = (tmp_path / "ga4" / "transactions.jsonl").read_text(encoding="utf-8").splitlines()
    transactions = [json.loads(line) for line in lines]
    web = [o for o in orders.values() if o["action_source"] == "website"]

    assert all(orders[t["transactionId"]]["action_source"] == "website" for t in transactions)
    assert (len(transactions), len(web)) == (718, 830)  # GA4 misses what ad blockers hide
    iso = [t for t in transactions if orders[t["transactionId"]]["order_ts"][4] == "-"]
    assert all(t["date"] == orders[t["transactionId"]]["order_ts"][:10].replace("-", "") for t in iso)


def test_scale_outside_the_supported_range_is_refused(tmp_path):
    with pytest.raises(ValueError, match="between 1 and 10,000,000"):
        write_crm_extracts(tmp_path, 10_000_001, date(2026, 3, 31))
