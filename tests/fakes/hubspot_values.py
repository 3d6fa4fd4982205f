"""How the HubSpot fake checks property definitions, upsert batches and property values (spec §1).

A batch is refused whole (400) past 100 inputs, for duplicate ids, an `idProperty` that is neither `email`
nor a unique-value property, or any undefined property name (`PROPERTY_DOESNT_EXIST`, HS-3).

A definition needs a name, label, group, and a `type`/`fieldType` pair from HubSpot's list; enumerations need
options. A value is checked by its property's type: `number` must read as a number, `bool` is `true`/`false`,
`date` is `YYYY-MM-DD` or epoch milliseconds at midnight UTC, `datetime` is ISO 8601 or epoch milliseconds,
an enumeration value is one of the options (`checkbox` takes several, `;`-separated), strings hold at most
65,536 characters and `email` must look like an address. `""` is always allowed: it clears the value.
Values are stored the way HubSpot answers them: dates and datetimes in ISO form, emails in lower case.
"""

import json
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta

FIELD_TYPES = {
    "bool": {"booleancheckbox", "calculation_equation"},
    "enumeration": {"booleancheckbox", "checkbox", "radio", "select", "calculation_equation"},
    "date": {"date"},
    "datetime": {"date"},
    "string": {"file", "text", "textarea", "calculation_equation", "html", "phonenumber"},
    "number": {"number", "calculation_equation"},
}
MAX_UNIQUE = 10
READ_ONLY = {"hs_object_id"}
MAX_STRING = 65_536
DAY_MS = 86_400_000
NAME = re.compile(r"[a-z][a-z0-9_]*")
NUMBER = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
EPOCH_MS = re.compile(r"-?\d{1,15}")
ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def definition_problem(body: dict, groups: dict, unique_in_use: int) -> str | None:
    """Why HubSpot would refuse to create this property, or None."""
    for field in ("name", "label", "type", "fieldType", "groupName"):
        if not isinstance(body.get(field), str) or not body[field]:
            return f"{field} is required and must be a non-empty string"
    if not NAME.fullmatch(body["name"]):
        return f"Property name {body['name']!r} must start with a lowercase letter and hold only a-z, 0-9 and _"
    if body["type"] not in FIELD_TYPES:
        return f"Invalid type {body['type']!r}; expected one of {sorted(FIELD_TYPES)}"
    if body["fieldType"] not in FIELD_TYPES[body["type"]]:
        return (f"fieldType {body['fieldType']!r} is not valid for type {body['type']!r}; "
                f"expected one of {sorted(FIELD_TYPES[body['type']])}")
    if body["groupName"] not in groups:
        return f"Property group {body['groupName']} does not exist"
    options = body.get("options")
    if body["type"] == "enumeration" and (not isinstance(options, list) or not options or not all(
            isinstance(o, dict) and isinstance(o.get("label"), str) and isinstance(o.get("value"), str)
            for o in options)):
        return "Enumeration properties need options, a list of {label, value} strings"
    if body.get("hasUniqueValue") and unique_in_use >= MAX_UNIQUE:
        return f"An object may have at most {MAX_UNIQUE} unique-value properties"
    return None


def problem(name: str, message: str, code: str) -> dict:
    return {"isValid": False, "message": message, "error": code, "name": name}


def problems_message(problems: list[dict]) -> str:
    """HubSpot's message for refused values: the list of problems as compact JSON after a fixed prefix."""
    return "Property values were not valid: " + json.dumps(problems, separators=(",", ":"))


def _iso(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def check_value(definition: dict, value: object) -> tuple[str | None, dict | None]:
    """The stored form of `value` for this property, or the problem HubSpot reports for it."""
    name, kind = definition["name"], definition["type"]
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, int | float):
        value = str(value)
    elif value is None:
        return None, problem(name, 'null is not a valid value; send "" to clear a property', "INVALID_VALUE")
    elif not isinstance(value, str):
        return None, problem(name, f"{json.dumps(value)} is not a valid property value", "INVALID_VALUE")
    if value == "":
        return "", None
    if kind == "number":
        return (value, None) if NUMBER.fullmatch(value) else (
            None, problem(name, f"{value} was not a valid number.", "INVALID_INTEGER"))
    if kind == "bool":
        return (value, None) if value in ("true", "false") else (
            None, problem(name, f"{value} was not a valid boolean; expected true or false.", "INVALID_BOOLEAN"))
    if kind == "date":
        return _date(name, value)
    if kind == "datetime":
        return _datetime(name, value)
    if kind == "enumeration":
        allowed = {o["value"] for o in definition.get("options") or []}
        chosen = [v for v in value.split(";") if v] if definition["fieldType"] == "checkbox" else [value]
        wrong = [v for v in chosen if v not in allowed]
        if wrong:
            return None, problem(name, f"{wrong[0]} was not one of the allowed options: {sorted(allowed)}",
                                 "INVALID_OPTION")
        return value, None
    if len(value) > MAX_STRING:
        return None, problem(name, f"value is {len(value)} characters; the limit is {MAX_STRING}", "INVALID_STRING")
    if name == "email":
        if not EMAIL.fullmatch(value):
            return None, problem(name, f"Email address {value} is invalid", "INVALID_EMAIL")
        return value.lower(), None
    return value, None


def _date(name: str, value: str) -> tuple[str | None, dict | None]:
    if ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value).isoformat(), None
        except ValueError:
            pass
    elif EPOCH_MS.fullmatch(value):
        if int(value) % DAY_MS == 0:
            return (date(1970, 1, 1) + timedelta(days=int(value) // DAY_MS)).isoformat(), None
        return None, problem(name, f"{value} is not at midnight UTC; a date in epoch milliseconds must be.",
                             "INVALID_DATE")
    return None, problem(name, f"{value} was not a valid date; use YYYY-MM-DD or epoch milliseconds.",
                         "INVALID_DATE")


def _datetime(name: str, value: str) -> tuple[str | None, dict | None]:
    try:
        if EPOCH_MS.fullmatch(value):
            return _iso(datetime.fromtimestamp(int(value) / 1000, UTC)), None
        moment = datetime.fromisoformat(value)
        return _iso(moment if moment.tzinfo else moment.replace(tzinfo=UTC)), None
    except (ValueError, OverflowError, OSError):
        return None, problem(name, f"{value} was not a valid datetime; use ISO 8601 or epoch milliseconds.",
                             "INVALID_DATETIME")


def definition(body: dict) -> dict:
    """The stored (and answered, HS-7) form of a property definition."""
    now = _iso(datetime.now(UTC))
    keep = ("name", "label", "type", "fieldType", "groupName", "description", "options", "displayOrder")
    return {**{k: body[k] for k in keep if k in body}, "hasUniqueValue": bool(body.get("hasUniqueValue")),
            "createdAt": now, "updatedAt": now, "archived": False}


def unique(definitions: dict, name: str) -> bool:
    """Whether a property can key an upsert: `email`, or a property with `hasUniqueValue`."""
    return name == "email" or definitions[name]["hasUniqueValue"]


def batch_problem(inputs: object, definitions: dict, limit: int) -> str | None:
    """Why HubSpot refuses a whole upsert batch with a 400 VALIDATION_ERROR (HS-3, HS-4), or None."""
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        return "Invalid input JSON: inputs must be a list of objects"
    if len(inputs) > limit:
        return f"Batch input size of {len(inputs)} exceeds the limit of {limit} inputs"
    keys, traces, unknown = Counter(), Counter(), []
    for item in inputs:
        id_property, key, properties = item.get("idProperty"), item.get("id"), item.get("properties", {})
        if not (isinstance(key, str) and key and isinstance(id_property, str) and isinstance(properties, dict)):
            return "Each input needs an id and an idProperty (strings) and a properties object"
        if id_property in definitions and not unique(definitions, id_property):
            return f"Unable to perform update/upsert by non-unique 0-1 property {id_property}"
        unknown += [n for n in (id_property, *properties) if n not in definitions and n not in unknown]
        keys[key.lower() if id_property == "email" else key] += 1
        traces[item.get("objectWriteTraceId")] += item.get("objectWriteTraceId") is not None
    if unknown:
        return problems_message([problem(n, f'Property "{n}" does not exist', "PROPERTY_DOESNT_EXIST")
                                 for n in unknown])
    duplicates = [k for k, n in keys.items() if n > 1]
    if duplicates:
        return f"Duplicate IDs found in batch input: [{', '.join(duplicates)}]. IDs must be unique"
    if any(n > 1 for n in traces.values()):
        return "objectWriteTraceId must be unique per input"
    return None


def check_input(definitions: dict, item: dict, poisoned: list) -> tuple[dict, list[dict]]:
    """The stored values of one upsert input (its id set on its idProperty), and the problems of the rest."""
    values, problems = {}, []
    for name, value in {**item.get("properties", {}), item["idProperty"]: item["id"]}.items():
        if value in poisoned:
            problems.append(problem(name, f"{value} was not a valid value.", "INVALID_VALUE"))
        elif name in READ_ONLY:
            problems.append(problem(name, f"{name} is a read-only property; its value cannot be set.",
                                    "READ_ONLY_VALUE"))
        else:
            stored, wrong = check_value(definitions[name], value)
            if wrong:
                problems.append(wrong)
            else:
                values[name] = stored
    return values, problems
