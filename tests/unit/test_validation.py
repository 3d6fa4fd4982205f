"""Row validation on the way into raw: exact reasons, typed timestamps, nothing lost."""

from datetime import UTC, datetime

import pyarrow as pa

from cdp_assets.ingest.crm_files import CONTACTS, ORDERS
from cdp_assets.ingest.validation import parse_timestamps, validate_contacts, validate_orders

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def batch(columns: list[str], rows: list[dict]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(
        [{c: r.get(c) for c in columns} | {"_line_number": i + 2} for i, r in enumerate(rows)],
        schema=pa.schema([*[(c, pa.string()) for c in columns], ("_line_number", pa.int64())]),
    )


def contact(**values) -> dict:
    return {"contact_id": "C1", "email": "a@b.com", "updated_at": "2026-11-01T10:00:00Z", **values}


def order(**values) -> dict:
    return {"order_id": "O1", "contact_id": "C1", "order_ts": "2026-11-01 10:00:00", "value": "12.50",
            "currency": "usd", **values}


def test_every_crm_timestamp_form_parses_to_utc():
    parsed = parse_timestamps(pa.array([
        "2026-11-01T10:00:00Z", "2026-11-01T12:00:00+02:00", "2026-11-01 10:00:00", "11/01/2026 10:00",
        "2026-11-01", " 2026-11-01T10:00:00 ", "last tuesday", None,
    ]))

    assert parsed.to_pylist() == [
        datetime(2026, 11, 1, 10), datetime(2026, 11, 1, 10), datetime(2026, 11, 1, 10), datetime(2026, 11, 1, 10),
        datetime(2026, 11, 1), datetime(2026, 11, 1, 10), None, None,
    ]


def test_valid_contact_is_accepted_with_its_parsed_timestamp():
    result = validate_contacts(batch(CONTACTS.columns, [contact()]), NOW)

    assert result.rejected.num_rows == 0
    assert result.accepted.column("_updated_at").to_pylist() == [datetime(2026, 11, 1, 10)]


def test_contact_rejections_carry_every_reason():
    rows = [contact(contact_id=" "), contact(email="john.smith@"), contact(updated_at="last tuesday"),
            contact(contact_id=None, updated_at=None), contact(updated_at="2026-12-25T00:00:00Z")]

    result = validate_contacts(batch(CONTACTS.columns, rows), NOW)

    assert result.accepted.num_rows == 0
    assert result.rejected.column("reason").to_pylist() == [
        "contact_id is missing",
        "email is not a valid address",
        "updated_at is not a recognised timestamp",
        "contact_id is missing; updated_at is missing",
        "updated_at is in the future",
    ]
    assert result.rejected.column("_line_number").to_pylist() == [2, 3, 4, 5, 6]


def test_order_rejections_carry_every_reason():
    rows = [order(value="-5.00"), order(value="twelve dollars"), order(currency="XYZ"),
            order(contact_id=None), order(order_id=None, value=None)]

    result = validate_orders(batch(ORDERS.columns, rows), NOW)

    assert result.rejected.column("reason").to_pylist() == [
        "value is negative",
        "value is not a number",
        "currency is not an ISO 4217 code",
        "order has no contact_id, email or phone",
        "order_id is missing; value is not a number",
    ]


def test_lowercase_currency_and_guest_with_email_are_accepted():
    rows = [order(currency=" eur "), order(contact_id=None, email="guest@example.com")]

    result = validate_orders(batch(ORDERS.columns, rows), NOW)

    assert (result.accepted.num_rows, result.rejected.num_rows) == (2, 0)


def test_accepted_plus_rejected_is_every_row_read():
    rows = [contact(), contact(contact_id=None), contact(email="bad"), contact()]

    result = validate_contacts(batch(CONTACTS.columns, rows), NOW)

    assert (result.accepted.num_rows, result.rejected.num_rows) == (2, 2)
