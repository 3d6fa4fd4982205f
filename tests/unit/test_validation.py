"""Row validation on the way into raw: exact reasons, typed columns from trimmed text, nothing lost."""

from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa

from cdp_assets.ingest.crm_entities import CONTACTS, ORDERS
from cdp_assets.ingest.validation import check_table

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def check(entity, rows: list[dict]) -> pa.Table:
    data = pa.table({c: pa.array([r.get(c) for r in rows], pa.string()) for c in entity.text_columns})
    return check_table(data, entity.checks, NOW)


def contact(**values) -> dict:
    return {"contact_id": "C1", "email": "a@b.com", "updated_at": "2026-11-01T10:00:00Z", **values}


def order(**values) -> dict:
    return {"order_id": "O1", "contact_id": "C1", "order_ts": "2026-11-01 10:00:00", "value": "12.50",
            "currency": "usd", **values}


def test_every_crm_timestamp_form_parses_to_utc():
    forms = ["2026-11-01T10:00:00Z", "2026-11-01T12:00:00+02:00", "2026-11-01 10:00:00", "11/01/2026 10:00",
             "2026-11-01", " 2026-11-01T10:00:00 ", "11/01/2026"]

    checked = check(CONTACTS, [contact(updated_at=f) for f in forms])

    assert checked.column("_updated_at").to_pylist() == [
        datetime(2026, 11, 1, 10), datetime(2026, 11, 1, 10), datetime(2026, 11, 1, 10), datetime(2026, 11, 1, 10),
        datetime(2026, 11, 1), datetime(2026, 11, 1, 10), datetime(2026, 11, 1),
    ]
    assert checked.column("reason").to_pylist() == [None] * 7


def test_rows_keep_their_line_numbers_after_the_header():
    checked = check(CONTACTS, [contact(), contact(), contact()])

    assert checked.column("_line_number").to_pylist() == [2, 3, 4]


def test_contact_rejections_carry_every_reason():
    rows = [contact(contact_id=" "), contact(contact_id="\u200b", email="john.smith@"),
            contact(updated_at="last tuesday"), contact(contact_id=None, updated_at=None),
            contact(updated_at="2026-12-25T00:00:00Z")]

    assert check(CONTACTS, rows).column("_row_reason").to_pylist() == [
        "contact_id is missing",
        "contact_id is missing",
        "updated_at is not a recognised timestamp",
        "contact_id is missing; updated_at is missing",
        "updated_at is in the future",
    ]


def test_a_quarantined_row_is_told_every_fault_its_fields_included():
    checked = check(CONTACTS, [contact(contact_id=None, email="john.smith@", consent_marketing="maybe")])

    assert checked.column("reason").to_pylist() == [
        "contact_id is missing; email is not a valid address; consent_marketing is not one of true, false, yes, "
        "no, y, n, 1, 0, opted_in, opted_out, granted, denied or blank"]


def test_an_unusable_email_or_consent_answer_drops_only_that_field():
    checked = check(CONTACTS, [contact(email="john.smith@", consent_marketing="maybe")])

    assert (checked.column("_row_reason").to_pylist(), checked.column("_email").to_pylist(),
            checked.column("_why_email").to_pylist(), checked.column("_consent_marketing").to_pylist()) == (
        [None], [None], ["email is not a valid address"], [False])


def test_values_are_trimmed_of_unicode_whitespace_and_invisible_characters_before_they_are_read():
    checked = check(CONTACTS, [contact(email="\tAna@Example.org\u00a0", consent_marketing="\u200byes\u3000",
                                       updated_at="\ufeff2026-11-01T10:00:00Z\n", deleted=" \u2060TRUE")])

    assert [checked.column(c).to_pylist() for c in ("_email", "_consent_marketing", "_updated_at", "_deleted",
                                                     "reason")] == [
        ["ana@example.org"], [True], [datetime(2026, 11, 1, 10)], [True], [None]]


def test_an_invisible_character_inside_an_email_makes_it_unusable():
    checked = check(CONTACTS, [contact(email="ana\u200b@example.org"), contact(email="ana\u00a0lee@example.org")])

    assert checked.column("_why_email").to_pylist() == ["email is not a valid address"] * 2


def test_order_rejections_carry_every_reason():
    rows = [order(value="-5.00"), order(value="twelve dollars"), order(currency="XYZ"),
            order(order_id=None, value=None)]

    assert check(ORDERS, rows).column("_row_reason").to_pylist() == [
        "value is negative",
        "value is not a number",
        "currency is not an ISO 4217 code",
        "order_id is missing; value is not a number",
    ]


def test_an_order_value_and_currency_are_read_from_their_trimmed_text():
    checked = check(ORDERS, [order(value="\u00a012.50\t", currency=" usd\u200b")])

    assert (checked.column("_value").to_pylist(), checked.column("_currency").to_pylist(),
            checked.column("reason").to_pylist()) == ([Decimal("12.50")], ["USD"], [None])


def test_lowercase_currency_and_guest_with_email_are_accepted():
    rows = [order(currency=" eur "), order(contact_id=None, email="guest@example.com")]

    assert check(ORDERS, rows).column("reason").to_pylist() == [None, None]


def test_rejected_rows_keep_their_values_as_landed():
    checked = check(CONTACTS, [contact(email="  Bad@ ")])

    assert checked.column("email").to_pylist() == ["  Bad@ "]


def test_a_value_too_large_for_the_warehouse_is_rejected():
    rows = [order(value="12345678901234567.00"), order(value="1234567890123456.99")]

    assert check(ORDERS, rows).column("reason").to_pylist() == ["value is too large", None]
