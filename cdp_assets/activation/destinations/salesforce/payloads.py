"""Salesforce request bodies: one record as an sObject Collections item (JSON, `null` clears a field) or as a row
of a Bulk API 2.0 CSV (`#N/A` clears a field; an empty cell would leave it unchanged), and the Bulk job itself."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cdp_assets.activation.destinations.base import formatted
from cdp_assets.activation.records.config import Sync

SOBJECTS = {"contacts": "Contact", "leads": "Lead"}
NULL_IN_CSV = "#N/A"


@dataclass(frozen=True)
class Row:
    """One record bound for Salesforce: its ledger key and its values as the warehouse holds them, by field."""

    trace: str
    values: Mapping[str, Any]  # the external id field first, then every mapped field


def row(sync: Sync, key_value: str, fields: Mapping[str, Any], trace: str) -> Row:
    return Row(trace, {sync.key.field: key_value, **{f.field: fields[f.field] for f in sync.all_fields}})


def _types(sync: Sync) -> dict[str, str]:
    return {f.field: f.type for f in (sync.key, *sync.all_fields)}


def json_value(value: Any, kind: str) -> Any:
    """A value as a Collections item carries it: numbers and booleans as JSON's own, None as null (clears)."""
    if value is None:
        return None
    if kind == "bool":
        return bool(value)
    if kind == "number":
        text = formatted(value, kind)
        return int(text) if text.lstrip("-").isdigit() else float(text)
    return formatted(value, kind)


def csv_value(value: Any, kind: str) -> str:
    return NULL_IN_CSV if value is None else formatted(value, kind)


def collection_body(sync: Sync, rows: list[Row]) -> dict[str, Any]:
    """The body of `PATCH …/composite/sobjects/{SObject}/{ExternalIdField}`: partial success allowed, so one bad
    record never holds back the other 199."""
    types, sobject = _types(sync), SOBJECTS[sync.object]
    return {"allOrNone": False, "records": [
        {"attributes": {"type": sobject}, **{k: json_value(v, types[k]) for k, v in r.values.items()}} for r in rows]}


def bulk_csv(sync: Sync, rows: list[Row]) -> str:
    """The CSV of one Bulk API 2.0 upsert job: a header of field names, LF line endings, comma-separated."""
    types = _types(sync)
    names = list(types)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    writer.writerows([csv_value(r.values[n], types[n]) for n in names] for r in rows)
    return out.getvalue()


def job_body(sync: Sync) -> dict[str, str]:
    """The body of `POST …/jobs/ingest` for an upsert by the sync's external id field."""
    return {"object": SOBJECTS[sync.object], "externalIdFieldName": sync.key.field, "contentType": "CSV",
            "operation": "upsert", "lineEnding": "LF", "columnDelimiter": "COMMA"}
