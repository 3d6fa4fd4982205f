"""Sync YAML files (`cdp_assets/config/syncs/*.yaml`, or `CDP_SYNCS_DIR`): each binds a model to a destination
object, validated when definitions load, with errors naming the file and the field."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from cdp_assets.activation.destinations.base import FIELD_TYPES, RecordsDestination
from cdp_assets.settings import PURPOSES, ConfigError, one_of, reject_unknown

SYNCS_DIR = Path(__file__).resolve().parent.parent.parent / "config" / "syncs"
KEYS = ("destination", "object", "model", "key", "fields", "mode", "on_leave", "consent_purpose", "suppressed",
        "new_rows_only", "full_resync", "schedule", "audiences", "enabled", "description", "options")
SYNC_NAME = re.compile(r"[a-z][a-z0-9_]*")
FIRST_PARTY = "none"  # consent_purpose for first-party processing: the CRM is the business's own system


@dataclass(frozen=True)
class FieldMap:
    column: str
    field: str
    type: str


@dataclass(frozen=True)
class Sync:
    """One sync: which rows of which model go to which destination object, and how."""

    name: str
    path: Path
    destination: str
    object: str
    model: str  # schema.table
    key: FieldMap
    fields: tuple[FieldMap, ...]
    mode: str
    on_leave: str
    consent_purpose: str | None  # None: undeclared, so nothing is sent; "none": first-party processing
    include_suppressed: bool
    new_rows_only: bool
    full_resync: bool
    schedule: str | None
    audience_field: str | None  # "cdp_audience_{audience}": one boolean field per audience
    audience_list: str | None  # "cdp: {audience}": one destination list per audience
    audiences: tuple[str, ...]
    columns: tuple[str, ...]  # the model's columns
    description: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)  # the destination's own settings, checked by it

    @property
    def audience_fields(self) -> tuple[FieldMap, ...]:
        if not self.audience_field:
            return ()
        return tuple(FieldMap(f"audience_{a}", self.audience_field.format(audience=a), "bool")
                     for a in self.audiences)

    @property
    def all_fields(self) -> tuple[FieldMap, ...]:
        """Every field a record carries besides its key: the mapped columns, then the audience booleans."""
        return (*self.fields, *self.audience_fields)

    @property
    def lists(self) -> dict[str, str]:
        """audience -> the name of its list at the destination."""
        return {a: self.audience_list.format(audience=a) for a in self.audiences} if self.audience_list else {}

    def sends_consent_checked(self) -> bool:
        return self.consent_purpose not in (None, FIRST_PARTY)


def _field(where: str, column: object, spec: object, columns: tuple[str, ...]) -> FieldMap:
    if column not in columns:
        raise ConfigError(f"{where}: column {column!r} is not a column of the model ({', '.join(columns)})")
    if isinstance(spec, str):
        spec = {"field": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("field"), str) or not spec["field"]:
        raise ConfigError(f"{where}.{column} must be {{field: <destination field>, type: <type>}}")
    reject_unknown(f"{where}.{column}", spec, ("field", "type"))
    kind = one_of(f"{where}.{column}.type", spec.get("type", "string"), FIELD_TYPES)
    return FieldMap(str(column), spec["field"], kind)


def _audience_templates(where: str, value: object) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: audiences must be {{field: 'cdp_audience_{{audience}}', list: "
                          "'cdp: {audience}'}}")
    reject_unknown(f"{where}: audiences", value, ("field", "list"))
    templates = []
    for name in ("field", "list"):
        template = value.get(name)
        if template is not None and (not isinstance(template, str) or "{audience}" not in template):
            raise ConfigError(f"{where}: audiences.{name} must be a template holding {{audience}}")
        templates.append(template)
    return templates[0], templates[1]


def _schedule(where: str, cron: object) -> str | None:
    if cron is None:
        return None
    try:
        dg.ScheduleDefinition(name="cron_check", cron_schedule=str(cron), job_name="cron_check")
    except dg.DagsterInvalidDefinitionError:
        raise ConfigError(f"{where}: schedule {cron!r} is not a cron expression such as '0 * * * *'") from None
    return str(cron)


def parse_sync(path: Path, data: Mapping, destinations: Mapping[str, RecordsDestination],
               models: Mapping[str, tuple[str, ...]], audiences: tuple[str, ...]) -> Sync:
    """One sync file, checked against the destinations, models and audiences this project has."""
    where = str(path)
    if not SYNC_NAME.fullmatch(path.stem):
        raise ConfigError(f"{where}: a sync file's name is its asset's name: lowercase letters, digits and _")
    reject_unknown(where, data, KEYS)
    destination = destinations.get(data.get("destination"))  # type: ignore[arg-type]
    if destination is None:
        raise ConfigError(f"{where}: destination must be one of {', '.join(sorted(destinations))}")
    spec = destination.objects.get(data.get("object"))  # type: ignore[arg-type]
    if spec is None:
        raise ConfigError(f"{where}: object must be one of {', '.join(destination.objects)} for "
                          f"{destination.name}")
    model = data.get("model")
    if model not in models:
        raise ConfigError(f"{where}: model {model!r} is not a SQL model; use schema.table, such as "
                          "core.unified_profiles")
    columns = models[model]
    key = data.get("key")
    if not isinstance(key, dict) or "column" not in key or "field" not in key:
        raise ConfigError(f"{where}: key must name the model's column and the destination's field, such as "
                          "{column: email, field: email}")
    key_map = _field(f"{where}: key", key["column"], {"field": key["field"], "type": key.get("type", "string")},
                     columns)
    if "*" not in spec.keys and key_map.field not in spec.keys:
        raise ConfigError(f"{where}: key.field must be one of {', '.join(spec.keys)} for {spec.name}")
    fields = data.get("fields") or {}
    if not isinstance(fields, dict):
        raise ConfigError(f"{where}: fields must map model columns to destination fields")
    mapped = tuple(_field(f"{where}: fields", c, s, columns) for c, s in fields.items())
    names = [m.field for m in mapped] + [key_map.field]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"{where}: fields map more than one column to {', '.join(repeated)}")
    mode = one_of(f"{where}: mode", data.get("mode", "upsert"), spec.modes)
    on_leave = one_of(f"{where}: on_leave", data.get("on_leave", "delete" if mode == "mirror" else "nothing"),
                      spec.on_leave)
    if mode == "mirror" and on_leave != "delete":
        raise ConfigError(f"{where}: a mirror sync deletes the records that leave the model (on_leave: delete)")
    purpose = data.get("consent_purpose")
    if purpose is not None:
        one_of(f"{where}: consent_purpose", purpose, (*PURPOSES, FIRST_PARTY))
    if "profile_id" not in columns and purpose not in (None, FIRST_PARTY):
        raise ConfigError(f"{where}: consent is judged per profile, so the model needs a profile_id column")
    field_template, list_template = _audience_templates(where, data.get("audiences"))
    if (field_template or list_template) and "profile_id" not in columns:
        raise ConfigError(f"{where}: audiences are matched by profile, so the model needs a profile_id column")
    if list_template and not spec.lists:
        raise ConfigError(f"{where}: {destination.name} {spec.name} has no lists; remove audiences.list")
    suppressed = one_of(f"{where}: suppressed", data.get("suppressed", "exclude"), ("exclude", "include"))
    for flag in ("new_rows_only", "full_resync", "enabled"):
        if not isinstance(data.get(flag, False), bool):
            raise ConfigError(f"{where}: {flag} must be true or false")
    options = data.get("options") or {}
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: options must be a mapping of {destination.name}'s settings")
    if destination.options is not None:
        options = dict(destination.options(f"{where}: options", options))
    elif options:
        raise ConfigError(f"{where}: {destination.name} takes no options (found {', '.join(sorted(options))})")
    return Sync(
        name=path.stem, path=path, destination=destination.name, object=spec.name, model=model, key=key_map,
        fields=mapped, mode=mode, on_leave=on_leave, consent_purpose=purpose,
        include_suppressed=suppressed == "include", new_rows_only=bool(data.get("new_rows_only", False)),
        full_resync=bool(data.get("full_resync", False)), schedule=_schedule(where, data.get("schedule")),
        audience_field=field_template, audience_list=list_template,
        audiences=audiences if (field_template or list_template) else (), columns=columns,
        description=str(data.get("description") or ""), options=options,
    )


def syncs_dir() -> Path:
    return Path(os.environ.get("CDP_SYNCS_DIR") or SYNCS_DIR)


def load_syncs(destinations: Mapping[str, RecordsDestination], models: Mapping[str, tuple[str, ...]],
               audiences: tuple[str, ...], folder: Path | None = None) -> list[Sync]:
    """Every enabled sync in the folder, validated."""
    folder = folder or syncs_dir()
    if not folder.is_dir():
        raise ConfigError(f"{folder}: CDP_SYNCS_DIR must be a folder of sync YAML files")
    syncs = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}: is not valid YAML{where}: {getattr(error, 'problem', None) or error}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        if data.get("enabled", True) is not False:
            syncs.append(parse_sync(path, data, destinations, models, audiences))
    return syncs
