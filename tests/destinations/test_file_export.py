"""The file export destination on DuckDB and PostgreSQL: exactly the eligible rows, typed (Parquet) or as the
safety check saw them (CSV), renamed into place whole with a manifest, the newest `keep` kept, nothing
written in a dry run or when a record is unsafe; and the shipped export of every audience."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal

import dagster as dg
import pytest
import yaml

from cdp_assets.activation.destinations.file_export import snapshot
from cdp_assets.activation.destinations.registry import discover
from cdp_assets.activation.records.config import SYNCS_DIR, parse_sync
from cdp_assets.definitions import build_definitions
from cdp_assets.settings import ConfigError
from cdp_assets.sql_models import SQL_ROOT, audience_members, output_columns, parse_model
from tests.destinations.file_world import (
    csv_rows,
    data_files,
    exported,
    make_export,
    manifest_of,
    parquet_rows,
    sha256_of,
)
from tests.destinations.records_world import build_world, execute, materialize, metadata

ADA_ORDER = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
CY_ORDER = datetime(2026, 10, 2, 8, 30, tzinfo=UTC)
# p2 has no marketing consent and p4 no email (the key): neither is eligible.
TYPED = [
    {"email": "ada@example.com", "profile_id": "p1", "first_name": "Ada", "lifetime_value": Decimal("1234.50"),
     "orders": 7, "last_order_at": ADA_ORDER, "rfm_segment": "545", "in_vip": True},
    {"email": "cy@example.com", "profile_id": "p3", "first_name": "Cy", "lifetime_value": Decimal("80.00"),
     "orders": 1, "last_order_at": CY_ORDER, "rfm_segment": "213", "in_vip": False},
]
TEXT = [
    {"email": "ada@example.com", "profile_id": "p1", "first_name": "Ada", "lifetime_value": "1234.5", "orders": "7",
     "last_order_at": "2026-11-30T10:00:00.000Z", "rfm_segment": "545", "in_vip": "true"},
    {"email": "cy@example.com", "profile_id": "p3", "first_name": "Cy", "lifetime_value": "80", "orders": "1",
     "last_order_at": "2026-10-02T08:30:00.000Z", "rfm_segment": "213", "in_vip": "false"},
]
COLUMNS = [("email", "string"), ("profile_id", "string"), ("first_name", "string"), ("lifetime_value", "number"),
           ("orders", "number"), ("last_order_at", "datetime"), ("rfm_segment", "string"), ("in_vip", "bool")]


@pytest.fixture
def live(monkeypatch):
    monkeypatch.setenv("CDP_EGRESS_MODE", "live")


def clock(monkeypatch, *moments: datetime) -> None:
    """Each run's `now`, in order."""
    queue = list(moments)
    monkeypatch.setattr(snapshot, "now", lambda: queue.pop(0))


def test_a_parquet_file_holds_exactly_the_eligible_rows_typed_with_its_manifest(warehouse, tmp_path, live,
                                                                               monkeypatch):
    build_world(warehouse)
    clock(monkeypatch, datetime(2026, 12, 1, 6, 0, 5, tzinfo=UTC))
    sync = make_export(tmp_path)

    result = materialize(warehouse, sync)

    assert result.success
    assert exported(tmp_path / "exports") == ["crm_export-20261201T060005Z.parquet",
                                              "crm_export-20261201T060005Z.parquet.manifest.json"]
    [data] = data_files(tmp_path / "exports")
    assert parquet_rows(data) == TYPED
    manifest = manifest_of(data)
    assert manifest == {
        "sync": "crm_export", "file": data.name, "format": "parquet", "rows": 2, "sha256": sha256_of(data),
        "bytes": data.stat().st_size, "written_at": "2026-12-01T06:00:05Z", "model": "core.unified_profiles",
        "columns": [{"name": n, "type": t, "parquet_type": p} for (n, t), p in zip(COLUMNS, (
            "string", "string", "string", "decimal128(18, 2)", "int64", "timestamp[us, tz=UTC]", "string", "bool"),
            strict=True)]}
    assert {k: metadata(result)[k] for k in ("outcome", "targets", "sent")} == {"outcome": "live", "targets": 2,
                                                                               "sent": 2}


def test_a_csv_file_holds_each_value_as_the_safety_check_saw_it(warehouse, tmp_path, live):
    build_world(warehouse)
    sync = make_export(tmp_path, options={"format": "csv"})

    assert materialize(warehouse, sync).success

    [data] = data_files(tmp_path / "exports")
    assert data.suffix == ".csv"
    assert data.read_text(encoding="utf-8").splitlines()[0] == ",".join(n for n, _ in COLUMNS)
    assert csv_rows(data) == TEXT
    manifest = manifest_of(data)
    assert (manifest["format"], manifest["rows"], manifest["sha256"], manifest["columns"]) == (
        "csv", 2, sha256_of(data), [{"name": n, "type": t} for n, t in COLUMNS])


def test_a_rerun_writes_a_new_complete_file_and_removes_those_past_keep(warehouse, tmp_path, live, monkeypatch):
    build_world(warehouse)
    first, second = datetime(2026, 12, 1, 6, 0, tzinfo=UTC), datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    clock(monkeypatch, first, second, second)  # the last two runs fall in the same second
    sync = make_export(tmp_path, options={"keep": 2})
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / ".crm_export-20261130T060000Z.parquet.0123456789ab.tmp").write_bytes(b"PAR1 half a file")

    for _ in range(2):
        assert materialize(warehouse, sync).success
    execute(warehouse, "UPDATE core.unified_profiles SET first_name = 'Ada Augusta' WHERE profile_id = 'p1'")
    assert materialize(warehouse, sync).success

    assert exported(folder) == ["crm_export-20261202T060000Z-2.parquet",
                                "crm_export-20261202T060000Z-2.parquet.manifest.json",
                                "crm_export-20261202T060000Z.parquet",
                                "crm_export-20261202T060000Z.parquet.manifest.json"]
    older, newest = folder / "crm_export-20261202T060000Z.parquet", folder / "crm_export-20261202T060000Z-2.parquet"
    assert [r["first_name"] for r in parquet_rows(older)] == ["Ada", "Cy"]
    assert [r["first_name"] for r in parquet_rows(newest)] == ["Ada Augusta", "Cy"]
    assert [manifest_of(f)["sha256"] for f in (older, newest)] == [sha256_of(older), sha256_of(newest)]


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_failure_mid_write_leaves_no_partial_file_only_the_older_complete_ones(warehouse, tmp_path, live,
                                                                                monkeypatch, fmt):
    build_world(warehouse)
    sync = make_export(tmp_path, options={"format": fmt})
    assert materialize(warehouse, sync).success
    before = exported(tmp_path / "exports")
    real_pages = snapshot.pages

    partial = []

    def connection_lost(*args):
        pages = real_pages(*args)
        yield next(pages)  # one row is written, then the warehouse goes away
        partial.extend(p.name for p in (tmp_path / "exports").glob(".*.tmp"))
        raise OSError("connection to the warehouse lost")

    monkeypatch.setattr(snapshot, "PAGE", 1)
    monkeypatch.setattr(snapshot, "pages", connection_lost)

    result = materialize(warehouse, sync)

    assert not result.success
    assert len(partial) == 1  # the half-written file existed, under its temporary name
    assert exported(tmp_path / "exports") == before
    [data] = data_files(tmp_path / "exports")
    assert manifest_of(data)["sha256"] == sha256_of(data)


def test_a_field_not_in_clear_holding_an_email_fails_the_safety_check_and_writes_nothing(warehouse, tmp_path,
                                                                                       live):
    build_world(warehouse)
    execute(warehouse, "UPDATE core.unified_profiles SET rfm_segment = 'ada@example.com' WHERE profile_id = 'p1'")
    sync = make_export(tmp_path)

    result = materialize(warehouse, sync)

    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert (metadata(result)["outcome"], checks["outbound_payloads_are_safe"]) == ("unsafe", False)
    assert exported(tmp_path / "exports") == []


def test_the_key_is_checked_too_so_an_email_key_must_be_declared_clear(warehouse, tmp_path, live):
    build_world(warehouse)
    sync = make_export(tmp_path, options={"clear": ["first_name"]})

    assert metadata(materialize(warehouse, sync))["outcome"] == "unsafe"
    assert exported(tmp_path / "exports") == []


def test_a_dry_run_writes_nothing_and_counts_the_rows_it_would_write(warehouse, tmp_path):
    build_world(warehouse)
    sync = make_export(tmp_path)

    result = materialize(warehouse, sync)

    assert {k: metadata(result)[k] for k in ("outcome", "targets", "sent")} == {"outcome": "dry_run", "targets": 2,
                                                                               "sent": 0}
    assert not (tmp_path / "exports").exists()


def test_sync_and_date_in_the_path_give_a_folder_per_day_and_keep_counts_across_them(warehouse, tmp_path, live,
                                                                                    monkeypatch):
    build_world(warehouse)
    clock(monkeypatch, datetime(2026, 12, 1, 23, 59, 59, tzinfo=UTC), datetime(2026, 12, 2, 0, 0, 1, tzinfo=UTC))
    sync = make_export(tmp_path, options={"path": str(tmp_path / "exports" / "{sync}" / "{date}"), "keep": 1})

    for _ in range(2):
        assert materialize(warehouse, sync).success

    base = tmp_path / "exports" / "crm_export"
    assert (exported(base / "2026-12-01"), exported(base / "2026-12-02")) == (
        [], ["crm_export-20261202T000001Z.parquet", "crm_export-20261202T000001Z.parquet.manifest.json"])


def test_a_model_with_no_eligible_row_is_written_as_an_empty_file(warehouse, tmp_path, live):
    build_world(warehouse)
    execute(warehouse, "DELETE FROM core.consent")
    sync = make_export(tmp_path, options={"format": "csv"})
    parquet = make_export(tmp_path, name="crm_parquet")

    assert materialize(warehouse, sync).success and materialize(warehouse, parquet).success

    csv_file, parquet_file = sorted(data_files(tmp_path / "exports"), key=lambda p: p.suffix)
    assert csv_file.read_text(encoding="utf-8") == ",".join(n for n, _ in COLUMNS) + "\n"
    assert (parquet_rows(parquet_file), manifest_of(parquet_file)["rows"]) == ([], 0)


def test_an_fsspec_url_takes_the_files_as_a_folder_does(warehouse, tmp_path, live):
    import fsspec

    build_world(warehouse)
    root = f"memory://exports-{tmp_path.name}"
    sync = make_export(tmp_path, options={"path": root + "/{sync}", "keep": 1})

    for _ in range(2):
        assert materialize(warehouse, sync).success

    fs = fsspec.filesystem("memory")
    names = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"/exports-{tmp_path.name}/crm_export", detail=False))
    assert len(names) == 2 and names[1] == names[0] + ".manifest.json"
    data = fs.cat(f"/exports-{tmp_path.name}/crm_export/{names[0]}")
    manifest = json.loads(fs.cat(f"/exports-{tmp_path.name}/crm_export/{names[1]}"))
    assert (manifest["rows"], manifest["sha256"]) == (2, hashlib.sha256(data).hexdigest())
    fs.rm(f"/exports-{tmp_path.name}", recursive=True)


@pytest.mark.parametrize(("options", "message"), [
    ({"format": "xlsx"}, "options.format must be one of csv, parquet"),
    ({"keep": 0}, "options.keep must be a whole number of past files to keep, at least 1"),
    ({"path": "data/{audience}"}, "options.path may hold {sync} and {date} only (found audience)"),
    ({"path": "data/{sync"}, "options.path 'data/{sync' has an unmatched brace"),
    ({"path": "nowhere://bucket/x"}, "options.path: fsspec knows no nowhere:// filesystem"),
    ({"clear": "email"}, "options.clear must list the output fields"),
    ({"compression": "zstd"}, "options has unknown settings compression"),
])
def test_a_wrong_option_is_a_config_error_naming_the_file_and_the_option(tmp_path, options, message):
    with pytest.raises(ConfigError) as error:
        make_export(tmp_path, options=options)

    assert str(error.value).startswith(f"{tmp_path / 'crm_export.yaml'}: {message}")


def test_options_default_to_parquet_in_data_exports_keeping_30(tmp_path):
    settings = {"destination": "file_export", "object": "file", "model": "core.unified_profiles",
                "key": {"column": "profile_id", "field": "profile_id"}, "consent_purpose": "marketing"}
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")

    sync = parse_sync(path, settings, discover(), {"core.unified_profiles": ("profile_id",)}, ())

    assert sync.options == {"path": "data/exports", "format": "parquet", "clear": [], "keep": 30}


@pytest.mark.parametrize(("column", "parquet_type"), [
    (("INTEGER", 32, 0), "int64"), (("bigint", 64, 0), "int64"), (("HUGEINT", 128, 0), "decimal128(38, 0)"),
    (("DOUBLE", 53, 0), "double"), (("double precision", 53, None), "double"),
    (("DECIMAL(18,2)", 18, 2), "decimal128(18, 2)"), (("numeric", 18, 2), "decimal128(18, 2)"),
    (("numeric", None, None), "decimal128(38, 9)"), (("numeric", 50, 4), "decimal256(50, 4)"),
    (("VARCHAR", None, None), "decimal128(38, 9)"),
])
def test_a_number_column_keeps_the_type_the_warehouse_gives_it(column, parquet_type):
    assert str(snapshot._arrow("number", column)) == parquet_type


def test_the_audience_members_variable_reads_every_audience_so_a_new_one_needs_no_edit(tmp_path):
    (tmp_path / "audiences").mkdir()
    for name in ("lapsed", "vip"):
        (tmp_path / "audiences" / f"{name}.sql").write_text("SELECT profile_id FROM core.unified_profiles")

    assert audience_members(tmp_path).splitlines() == [
        "SELECT DISTINCT 'lapsed' AS audience, profile_id FROM audiences.lapsed",
        "    UNION ALL",
        "    SELECT DISTINCT 'vip' AS audience, profile_id FROM audiences.vip",
    ]


MEMBERS_WORLD = [
    "CREATE TABLE core.unified_profiles AS SELECT * FROM (VALUES "
    "('p1', 'ada@example.com', '+14155550101', 'Ada', 'Lovelace', 'GB', 7, "
    " CAST('2026-11-30 10:00:00' AS TIMESTAMP), CAST(1234.50 AS DECIMAL(18, 2)), 'GBP'), "
    "('p3', 'cy@example.com', NULL, 'Cy', 'Cache', 'US', 1, CAST('2026-10-02 08:30:00' AS TIMESTAMP), "
    " CAST(80.00 AS DECIMAL(18, 2)), 'USD'), "
    "('p4', 'di@example.com', NULL, 'Di', 'Disk', 'US', 1, NULL, CAST(15.00 AS DECIMAL(18, 2)), 'USD'), "
    "('p5', 'ed@example.com', NULL, 'Ed', 'Edge', 'US', 2, NULL, CAST(20.00 AS DECIMAL(18, 2)), 'USD')"
    ") AS t(profile_id, email, phone_e164, first_name, last_name, country, order_count, last_order_at, "
    "lifetime_value, lifetime_value_currency)",
    "CREATE TABLE core.consent AS SELECT * FROM (VALUES ('c1', 'p1', 'marketing', TRUE, CAST('2026-12-01' AS "
    "TIMESTAMP)), ('c3', 'p3', 'marketing', TRUE, CAST('2026-12-01' AS TIMESTAMP)), ('c4', 'p4', 'marketing', "
    "FALSE, CAST('2026-12-01' AS TIMESTAMP)), ('c5', 'p5', 'marketing', TRUE, CAST('2026-12-01' AS TIMESTAMP))"
    ") AS t(contact_id, profile_id, purpose, granted, ts)",
    "CREATE TABLE core.suppressed_profiles AS SELECT 'p5' AS profile_id",
    "CREATE TABLE core.deletion_pending_profiles (profile_id VARCHAR)",
    "CREATE TABLE core.deletion_requests (request_id VARCHAR, id_type VARCHAR, id_sha256 VARCHAR, status VARCHAR)",
]
# Who each shipped audience holds; p4 has no marketing consent and p5 is suppressed.
AUDIENCES = {"high_value_customers": ("p1", "p3"), "lapsed_customers": ("p3", "p4"), "purchasers_30d": ("p1", "p5")}


def test_the_shipped_export_writes_every_audiences_eligible_members(warehouse, tmp_path, live, monkeypatch):
    assert sorted(p.stem for p in (SQL_ROOT / "audiences").glob("*.sql")) == sorted(AUDIENCES)
    monkeypatch.chdir(tmp_path)  # the shipped path is data/exports/{sync}, below the working folder
    with warehouse.begin() as conn:
        warehouse.ensure_schemas(conn)
        for statement in MEMBERS_WORLD:
            warehouse.run(conn, statement)
        for audience, members in AUDIENCES.items():
            warehouse.run(conn, f"CREATE TABLE audiences.{audience} (profile_id VARCHAR)")
            for profile in members:
                warehouse.run(conn, f"INSERT INTO audiences.{audience} VALUES (:p)", {"p": profile})
    mart = build_definitions(warehouse).resolve_assets_def(dg.AssetKey(["marts", "audience_members"]))
    assert dg.materialize([mart]).success
    path = SYNCS_DIR / "audience_export.yaml"
    model = parse_model(SQL_ROOT, SQL_ROOT / "marts" / "audience_members.sql")
    sync = parse_sync(path, yaml.safe_load(path.read_text(encoding="utf-8")), discover(),
                      {"marts.audience_members": output_columns(model)}, tuple(sorted(AUDIENCES)))

    assert materialize(warehouse, sync).success

    [data] = data_files(tmp_path / "data" / "exports" / "audience_export")
    rows = csv_rows(data)
    assert [(r["member_key"], r["audience"], r["email"]) for r in rows] == [
        ("high_value_customers:p1", "high_value_customers", "ada@example.com"),
        ("high_value_customers:p3", "high_value_customers", "cy@example.com"),
        ("lapsed_customers:p3", "lapsed_customers", "cy@example.com"),
        ("purchasers_30d:p1", "purchasers_30d", "ada@example.com"),
    ]
    assert rows[0] == {"member_key": "high_value_customers:p1", "audience": "high_value_customers",
                       "profile_id": "p1", "email": "ada@example.com", "phone": "+14155550101",
                       "first_name": "Ada", "last_name": "Lovelace", "country": "GB", "order_count": "7",
                       "last_order_at": "2026-11-30T10:00:00.000Z", "lifetime_value": "1234.5",
                       "lifetime_value_currency": "GBP"}
    assert manifest_of(data)["sha256"] == sha256_of(data)
