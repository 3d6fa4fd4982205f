"""The corpus of tricky and malformed CRM rows (tests/corpus/crm_rows.yaml): each case's exact outcome.

All cases of an entity are written into one file and loaded once through the real loader and staging
models; each case is then found by a marker column (contacts: ga_client_id, orders: product_ids), and the
fields dropped from it by its line.
"""

import csv
from pathlib import Path

import dagster as dg
import pytest
import yaml

from cdp_assets.definitions import build_definitions
from cdp_assets.ingest.mappings import CONTACT_COLUMNS, ORDER_COLUMNS
from cdp_assets.resources.warehouse import WarehouseResource

CORPUS = yaml.safe_load((Path(__file__).parent.parent / "corpus" / "crm_rows.yaml").read_text(encoding="utf-8"))
MARKER = {"contacts": "ga_client_id", "orders": "product_ids"}
COLUMNS = {"contacts": CONTACT_COLUMNS, "orders": ORDER_COLUMNS}


def base_row(entity: str, n: int) -> dict[str, str]:
    if entity == "contacts":
        return {"contact_id": f"K{n:02d}", "email": f"case{n}@example.com", "phone": "", "first_name": "Ann",
                "last_name": "Lee", "city": "Austin", "state": "TX", "postal_code": "78701", "country": "US",
                "consent_marketing": "yes", "consent_ads_personalization": "", "updated_at": "2026-11-01T10:00:00Z",
                "deleted": ""}
    return {"order_id": f"R{n:02d}", "contact_id": "K01", "email": "", "phone": "", "order_ts": "2026-11-01T10:00:00Z",
            "value": "10.00", "currency": "USD", "status": "completed", "action_source": "website"}


def cases(entity: str) -> list[tuple[int, dict]]:
    return list(enumerate(CORPUS[entity]))


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """A DuckDB warehouse with both corpus files loaded and staged."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "landing" / "crm").mkdir(parents=True)
    for entity in ("contacts", "orders"):
        with (root / "landing" / "crm" / f"{entity}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS[entity], restval="")
            writer.writeheader()
            for n, case in cases(entity):
                for override in case.get("rows") or [case["row"]]:
                    writer.writerow({**base_row(entity, n), **override, MARKER[entity]: f"case-{n}"})
    warehouse = WarehouseResource(url=f"duckdb:///{root}/warehouse.duckdb")
    defs = build_definitions(warehouse, str(root / "landing"))
    keys = [dg.AssetKey(k) for k in (["raw", "crm_contacts"], ["raw", "crm_orders"],
                                      ["staging", "stg_crm_contacts"], ["staging", "stg_crm_orders"])]
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        asset_selection=keys, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    return warehouse


def fetch(warehouse, sql, marker):
    with warehouse.begin() as conn:
        return [r._asdict() for r in warehouse.run(conn, sql, {"m": marker})]


def text(value) -> str:
    return "None" if value is None else str(value)


@pytest.mark.parametrize("entity, n, case", [(e, n, c) for e in ("contacts", "orders") for n, c in cases(e)],
                         ids=lambda v: v["case"] if isinstance(v, dict) else str(v))
def test_corpus_case(loaded, entity, n, case):
    marker, column = f"case-{n}", MARKER[entity]
    quarantined = fetch(loaded, f"SELECT reason FROM quarantine.crm_{entity} WHERE {column} = :m", marker)
    staged = fetch(loaded, f"SELECT * FROM staging.stg_crm_{entity} WHERE {column} = :m", marker)
    raw = fetch(loaded, f"SELECT count(*) AS n FROM raw.crm_{entity} WHERE {column} = :m", marker)[0]["n"]
    dropped = fetch(loaded, f"SELECT f.column_name, f.reason FROM quarantine.crm_{entity[:-1]}_fields AS f "
                            f"JOIN raw.crm_{entity} AS r ON r._line_number = f.line_number "
                            f"WHERE r.{column} = :m ORDER BY f.line_number, f.column_name", marker)
    expected_rows = len(case.get("rows") or [case["row"]])
    if "quarantined" in case:
        assert [q["reason"] for q in quarantined] == [case["quarantined"]] * expected_rows
        assert (raw, staged) == (0, [])
    elif case.get("not_in_staging"):
        assert (quarantined, raw, staged) == ([], expected_rows, [])
    else:
        assert (quarantined, raw) == ([], expected_rows)
        [row] = staged
        assert {k: text(row[k]) for k in case["accepted"]} == {k: text(v) for k, v in case["accepted"].items()}
    assert [(d["column_name"], d["reason"]) for d in dropped] == [
        (d["column"], d["reason"]) for d in case.get("dropped", [])]
