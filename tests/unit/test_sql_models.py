"""dbt_like_sql loader: path -> key and group, SQL -> dependencies, clear load-time errors."""

from pathlib import Path

import dagster as dg
import pytest
import sqlglot

from cdp_assets.sql_models import SqlModelError, column_descriptions, column_lineage, load_models, parse_model

RAW = {dg.AssetKey(["raw", "orders"]), dg.AssetKey(["raw", "contacts"])}


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_folder_and_file_stem_make_the_key(tmp_path):
    write(tmp_path, "staging/stg_orders.sql", "SELECT order_id FROM raw.orders")

    [model] = load_models(tmp_path, RAW)

    assert model.key == dg.AssetKey(["staging", "stg_orders"])
    assert model.table == "staging.stg_orders"


def test_dependencies_come_from_the_sql_without_cte_names(tmp_path):
    write(tmp_path, "core/people.sql", """
        WITH recent AS (SELECT contact_id FROM raw.contacts), paid AS (SELECT contact_id FROM raw.orders)
        SELECT r.contact_id FROM recent AS r JOIN paid AS p ON p.contact_id = r.contact_id""")

    [model] = load_models(tmp_path, RAW)

    assert model.deps == (dg.AssetKey(["raw", "contacts"]), dg.AssetKey(["raw", "orders"]))


def test_header_comments_become_the_description_and_settings(tmp_path):
    write(tmp_path, "core/conversions.sql",
          "-- Orders that count as conversions.\n-- One row per order.\n-- partition_column: order_ts\n"
          "SELECT order_id, order_ts FROM raw.orders")

    [model] = load_models(tmp_path, RAW)

    assert model.description == "Orders that count as conversions. One row per order."
    assert model.partition_column == "order_ts"


def test_code_version_changes_when_the_file_changes(tmp_path):
    path = write(tmp_path, "staging/a.sql", "SELECT order_id FROM raw.orders")
    before = parse_model(tmp_path, path).code_version
    path.write_text("SELECT order_id, 1 AS one FROM raw.orders")

    assert parse_model(tmp_path, path).code_version != before


def test_unknown_table_is_an_error_naming_the_file(tmp_path):
    path = write(tmp_path, "staging/a.sql", "SELECT x FROM raw.nowhere")

    with pytest.raises(SqlModelError, match=f"{path}: reads raw/nowhere, which no asset produces"):
        load_models(tmp_path, RAW)


def test_cycle_is_an_error_naming_the_files(tmp_path):
    write(tmp_path, "core/a.sql", "SELECT x FROM core.b")
    write(tmp_path, "core/b.sql", "SELECT x FROM core.a")

    with pytest.raises(SqlModelError, match=r"dependency cycle a\.sql -> b\.sql -> a\.sql"):
        load_models(tmp_path, RAW)


def test_reading_its_own_table_is_an_error(tmp_path):
    write(tmp_path, "core/a.sql", "SELECT x FROM core.a")

    with pytest.raises(SqlModelError, match="reads its own table core/a"):
        load_models(tmp_path, RAW)


def test_table_without_schema_is_an_error(tmp_path):
    write(tmp_path, "core/a.sql", "SELECT x FROM orders")

    with pytest.raises(SqlModelError, match=r"table 'orders' has no schema; write it as schema\.orders"):
        load_models(tmp_path, RAW)


def test_unknown_setting_is_an_error(tmp_path):
    write(tmp_path, "core/a.sql", "-- materialise: view\nSELECT x FROM raw.orders")

    with pytest.raises(SqlModelError, match="unknown setting 'materialise'"):
        load_models(tmp_path, RAW)


def test_more_than_one_statement_is_an_error(tmp_path):
    write(tmp_path, "core/a.sql", "SELECT 1 FROM raw.orders; SELECT 2 FROM raw.orders")

    with pytest.raises(SqlModelError, match="exactly one SELECT"):
        load_models(tmp_path, RAW)


def test_column_lineage_follows_columns_through_ctes_and_joins(tmp_path):
    path = write(tmp_path, "core/a.sql", """
        WITH c AS (SELECT contact_id, lower(email) AS email FROM raw.contacts)
        SELECT o.order_id, c.email FROM raw.orders AS o JOIN c ON c.contact_id = o.contact_id""")

    lineage = column_lineage(parse_model(tmp_path, path))

    assert lineage.deps_by_column == {
        "order_id": [dg.TableColumnDep(asset_key=dg.AssetKey(["raw", "orders"]), column_name="order_id")],
        "email": [dg.TableColumnDep(asset_key=dg.AssetKey(["raw", "contacts"]), column_name="email")],
    }


def test_the_shipped_models_load_with_their_python_sources():
    from cdp_assets.definitions import build_definitions

    keys = {key.to_user_string() for key in build_definitions().resolve_asset_graph().get_all_asset_keys()}

    assert {"staging/stg_crm_contacts", "staging/stg_crm_orders", "core/unified_profiles", "core/consent",
            "core/conversions", "audiences/purchasers_30d"} <= keys


def test_a_columns_description_is_the_comment_ending_its_line_in_the_final_select(tmp_path):
    path = tmp_path / "marts" / "described.sql"
    path.parent.mkdir()
    path.write_text("-- Described.\nWITH x AS (SELECT a FROM staging.s)  -- not a column of the model\n"
                    "SELECT\n    a,  -- the first\n    count(*) AS n,  -- how many\n    max(b) AS top\nFROM x\n")

    assert column_descriptions(parse_model(tmp_path, path)) == {"a": "the first", "n": "how many"}


def test_every_shipped_model_describes_every_column():
    from cdp_assets.sql_models import SQL_ROOT

    models = load_models(SQL_ROOT, external=[dg.AssetKey(["raw", t]) for t in (
        "crm_contacts", "crm_orders", "ga4_daily_traffic", "ga4_transactions")] + [
        dg.AssetKey(["core", t]) for t in ("record_profiles", "profile_identifiers", "deletion_requests",
                                           "suppressions")] + [dg.AssetKey(["staging", "exchange_rates"])])
    undescribed = {m.key.to_user_string(): sorted(set(sqlglot.parse_one(m.sql, read="duckdb").named_selects)
                                                  - set(column_descriptions(m)))
                   for m in models}
    assert {k: v for k, v in undescribed.items() if v} == {}
