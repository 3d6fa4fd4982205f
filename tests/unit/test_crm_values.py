"""Warehouse values as the strings CRM and lifecycle APIs take (`formatted`)."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from cdp_assets.activation.destinations.base import formatted


def test_numbers_leave_in_plain_digits_without_trailing_zeros_whatever_their_warehouse_type():
    values = [7, Decimal("1234.50"), Decimal("100"), Decimal("-0.00"), Decimal("1E+2"), Decimal("1E-7"), 0.1, 1e-07,
              1e22, -0.0, 3.0, Decimal("-12.3400")]
    assert [formatted(v, "number") for v in values] == [
        "7", "1234.5", "100", "0", "100", "0.0000001", "0.1", "0.0000001", "10000000000000000000000", "0", "3",
        "-12.34"]


def test_timestamps_leave_in_utc_with_milliseconds():
    assert [formatted(v, "datetime") for v in (datetime(2025, 1, 8, 12, 9, 4), datetime(
        2025, 1, 8, 12, 9, 4, 123999), datetime(2025, 1, 8, 12, 9, 4, tzinfo=timezone(timedelta(hours=2))))] == [
        "2025-01-08T12:09:04.000Z", "2025-01-08T12:09:04.123Z", "2025-01-08T10:09:04.000Z"]
