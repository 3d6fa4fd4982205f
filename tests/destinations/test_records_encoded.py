"""Records built and encoded in the warehouse format every field as `base.formatted` does in Python, on DuckDB
and on PostgreSQL; what the warehouse cannot format exactly is left to Python."""

import pytest

from cdp_assets.activation.destinations.base import FIELDS, KEY, formatted
from cdp_assets.activation.records import encoded
from tests.destinations.records_world import make_sync


def in_warehouse(warehouse, kind: str, column_type: str, literal: str) -> tuple[str | None, str]:
    """The SQL formatting of one value (NULL: left to Python) and Python's formatting of the value as read."""
    column_type = {"DOUBLE": "DOUBLE PRECISION"}.get(column_type, column_type) if warehouse.dialect == "postgres" \
        else column_type
    with warehouse.begin() as conn:
        warehouse.run(conn, f"CREATE TABLE core.formats AS SELECT CAST({literal} AS {column_type}) AS x")
        family = encoded._family(dict(warehouse.columns(conn, "core.formats"))["x"])
        sql, value = warehouse.run(conn, f"SELECT {encoded._formatted('x', kind, family)}, x FROM core.formats").one()
    return sql, formatted(value, kind)


@pytest.fixture
def core(warehouse):
    with warehouse.begin() as conn:
        warehouse.ensure_schemas(conn)
    return warehouse


@pytest.mark.parametrize(("kind", "column_type", "literal", "expected"), [
    ("number", "DECIMAL(18, 2)", "1234.50", "1234.5"),
    ("number", "DECIMAL(18, 2)", "100.00", "100"),
    ("number", "DECIMAL(18, 2)", "-0.00", "0"),
    ("number", "DECIMAL(18, 2)", "-12.30", "-12.3"),
    ("number", "DOUBLE", "7.0", "7"),
    ("number", "DOUBLE", "0.30000000000000004", "0.30000000000000004"),
    ("number", "DOUBLE", "-0.0", "0"),
    ("number", "BIGINT", "9007199254740993", "9007199254740993"),
    ("number", "BIGINT", "NULL", ""),
    ("bool", "BOOLEAN", "TRUE", "true"),
    ("bool", "BOOLEAN", "FALSE", "false"),
    ("datetime", "TIMESTAMP", "TIMESTAMP '2026-01-02 03:04:05.678999'", "2026-01-02T03:04:05.678Z"),
    ("datetime", "TIMESTAMP", "TIMESTAMP '2026-01-02 03:04:05'", "2026-01-02T03:04:05.000Z"),
    ("datetime", "TIMESTAMPTZ", "TIMESTAMPTZ '2026-01-02 03:04:05.5+02:00'", "2026-01-02T01:04:05.500Z"),
    ("datetime", "DATE", "DATE '2026-01-02'", "2026-01-02"),
    ("date", "DATE", "DATE '2026-01-02'", "2026-01-02"),
    ("date", "TIMESTAMP", "TIMESTAMP '2026-01-02 23:59:59'", "2026-01-02"),
    ("string", "VARCHAR", "'Zoë \"quoted\"'", 'Zoë "quoted"'),
    ("string", "INTEGER", "42", "42"),
    ("string", "VARCHAR", "NULL", ""),
])
def test_each_field_type_is_formatted_in_the_warehouse_exactly_as_in_python(core, kind, column_type, literal,
                                                                            expected):
    assert in_warehouse(core, kind, column_type, literal) == (expected, expected)


@pytest.mark.parametrize(("literal", "in_python"), [("1e16", "10000000000000000"), ("1.5e-5", "0.000015"),
                                                    ("'NaN'", "NaN")])
def test_a_double_the_warehouse_writes_with_an_exponent_or_as_nan_is_left_to_python(core, literal, in_python):
    assert in_warehouse(core, "number", "DOUBLE", literal) == (None, in_python)


@pytest.mark.parametrize(("field", "column_type"), [
    ({"type": "number"}, "REAL"), ({"type": "string"}, "BOOLEAN"), ({"type": "date"}, "TIMESTAMPTZ"),
    ({"type": "string"}, "DECIMAL(18, 2)"),
])
def test_a_sync_with_a_column_type_the_warehouse_cannot_format_exactly_is_built_in_python(tmp_path, field,
                                                                                         column_type):
    sync = make_sync(tmp_path, fields={"lifetime_value": {"field": "cdp_lifetime_value", **field}})
    shape = {"id": KEY, "properties": FIELDS}
    types = {"f_0": column_type, "a_0": "BOOLEAN"}  # the field, and the sync's audience (a boolean it can format)

    assert encoded.page_sql(sync, shape, types, "activation.sync_changes_crm_contacts") is None
