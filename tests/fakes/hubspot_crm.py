"""A local fake of HubSpot's CRM v3 write APIs on 127.0.0.1, speaking the wire shapes of spec §1 and §9.1.

Routes (contacts only): the Properties API (list, read, create, create and read groups), contacts
`batch/upsert` and `batch/read`, `gdpr-delete`, and Lists v3 (create, look up by name, membership add, remove,
add-and-remove, paged read). Batches follow HubSpot's rules: at most 100 inputs, unique ids, an `idProperty`
that is `email` or a unique-value property, every property defined (else the whole request is a 400
`PROPERTY_DOESNT_EXIST`), and values checked by type (`tests/fakes/hubspot_values.py`); bad inputs come back
in a 207 carrying their `objectWriteTraceId` (or `id`), as does an input that would give a second contact an
email or unique value another contact holds (`CONFLICT`, "Contact already exists. Existing ID: …").
A body without `inputs` is answered 200 with no results, the quirk of HS-9. Membership answers keep the
`recordsIdsAdded` typo. A sliding window of `burst` requests per `window_seconds` (and an optional daily limit)
answers HS-5's 429s; every answer past the auth check carries the X-HubSpot-RateLimit-* headers.
Faults are queued with `fail_next` for the next record-carrying requests (upsert, membership edits,
gdpr-delete); `poison` makes every upsert input holding a value fail in the 207; `kill` SIGKILLs a client
process on a given record-carrying request, before or after the fake applied it. `writes` counts every
applied upsert input per contact id and `membership_ops` every applied membership change, so a test can
prove a record was written exactly once.
"""

import json
import re
import sys
import time
import uuid
from collections import Counter, deque
from datetime import UTC, datetime
from urllib.parse import unquote

from tests.fakes import hubspot_values as hv
from tests.fakes._faulty_http import TRANSPORT_FAULTS, FaultyServer

BUILT_IN = ("email", "firstname", "lastname", "phone", "city", "state", "zip", "country", "hs_object_id")
MAX_INPUTS = 100
MAX_MEMBERSHIP_IDS = 100  # HubSpot's limit is unverified (spec §1 "Lists v3"); the object batch size is used
MAX_PAGE = 250
EDITABLE_LISTS = ("MANUAL", "SNAPSHOT")
FAULTS = ("429_secondly", "429_daily", "423", "477", "500", "502", "503", "401", "drop", "accept_then_drop",
          "timeout")
REASONS = {477: "Migration in Progress"}
AUTH_MESSAGE = ("Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
                "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")
BAD_GATEWAY = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


def _now() -> str:
    moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Refused(Exception):
    def __init__(self, status: int, body: dict | str | None, headers: dict | None = None) -> None:
        super().__init__(str(body))
        self.status, self.body, self.headers = status, body, headers or {}


class Unparsed(str):
    """A request body that is not JSON, kept (and logged) as its text."""


def error(status: int, message: str, category: str = "VALIDATION_ERROR", headers: dict | None = None) -> Refused:
    return Refused(status, {"status": "error", "message": message, "correlationId": str(uuid.uuid4()),
                            "category": category}, headers)


class FakeHubSpotCrm(FaultyServer):
    answer_faults = tuple(f for f in FAULTS if f not in TRANSPORT_FAULTS)
    methods = ("GET", "POST", "PUT")
    reasons = REASONS

    def __init__(self, token: str = "pat-test-token", burst: int = 100, window_seconds: float = 10.0,
                 daily_limit: int | None = None, keep_requests: bool = True) -> None:
        super().__init__()
        self.token, self.burst, self.window_seconds, self.daily_limit = token, burst, window_seconds, daily_limit
        self.keep_requests = keep_requests
        self.groups: dict[str, dict] = {"contactinformation": {"name": "contactinformation", "displayOrder": 0,
                                                               "label": "Contact information", "archived": False}}
        self.properties: dict[str, dict] = {name: hv.definition(
            {"name": name, "label": name, "type": "string", "fieldType": "text", "groupName": "contactinformation",
             "hasUniqueValue": False}) for name in BUILT_IN}
        self.contacts: dict[str, dict] = {}
        self.lists: dict[str, dict] = {}
        self.writes: Counter = Counter()
        self.updates: Counter = Counter()  # batch/update inputs applied, per contact id
        self.membership_ops: Counter = Counter()
        self.gdpr_deleted: list[str] = []
        self.poisoned: list[object] = []
        self._index: dict[tuple[str, str], str] = {}  # (unique property, value) → contact id
        self._next_contact, self._next_list, self._daily_used = 101, 1001, 0
        self._window: deque[float] = deque()

    def env(self) -> dict[str, str]:
        return {"HUBSPOT_API_URL": self.url, "HUBSPOT_ACCESS_TOKEN": self.token}

    # ---- test controls and accounting ---------------------------------------------------------------
    def poison(self, value: object) -> None:
        """Every upsert input holding `value` (as its id or any property value) fails in the 207."""
        with self._lock:
            self.poisoned.append(value)

    def contact_by_email(self, email: str) -> dict | None:
        with self._lock:
            found = self._index.get(("email", email.lower()))
            return self.contacts.get(found) if found else None

    def list_members(self, name: str) -> set[str]:
        """The emails of the members of the list called `name`."""
        with self._lock:
            members = next(lst["members"] for lst in self.lists.values() if lst["name"] == name)
            return {self.contacts[m]["properties"].get("email", "") for m in members}

    def property(self, name: str) -> dict | None:
        return self.properties.get(name)

    # ---- properties ---------------------------------------------------------------------------------
    def _create_property(self, body: object) -> tuple[int, dict]:
        if not isinstance(body, dict):
            raise error(400, "The body must be a JSON object")
        in_use = sum(1 for p in self.properties.values() if p["hasUniqueValue"])
        wrong = hv.definition_problem(body, self.groups, in_use)
        if wrong:
            raise error(400, wrong)
        if body["name"] in self.properties:
            raise error(409, f"Property named '{body['name']}' already exists.", "OBJECT_ALREADY_EXISTS")
        self.properties[body["name"]] = created = hv.definition(body)
        return 201, created

    def _create_group(self, body: object) -> tuple[int, dict]:
        if not isinstance(body, dict) or not all(isinstance(body.get(k), str) and body[k] for k in ("name", "label")):
            raise error(400, "A property group needs a name and a label")
        if body["name"] in self.groups:
            raise error(409, f"Property group '{body['name']}' already exists.", "OBJECT_ALREADY_EXISTS")
        group = {"name": body["name"], "label": body["label"], "displayOrder": body.get("displayOrder", -1),
                 "archived": False}
        self.groups[body["name"]] = group
        return 201, group

    # ---- contacts -----------------------------------------------------------------------------------
    def _unique(self, name: str) -> bool:
        return hv.unique(self.properties, name)

    def _lookup(self, id_property: str, key: str) -> str | None:
        if id_property == "hs_object_id":
            return key if key in self.contacts else None
        return self._index.get((id_property, key.lower() if id_property == "email" else key))

    def _set(self, contact: dict, name: str, stored: str) -> None:
        old = contact["properties"].get(name)
        if self._unique(name) and old:
            self._index.pop((name, old), None)
        if stored == "":
            contact["properties"].pop(name, None)  # "" clears the value
            return
        contact["properties"][name] = stored
        if self._unique(name):
            self._index[(name, stored)] = contact["id"]

    def _upsert(self, body: object) -> tuple[int, dict]:
        started = _now()
        if isinstance(body, dict) and "inputs" not in body:  # HS-9: HubSpot accepts it and writes nothing
            return 200, {"status": "COMPLETE", "results": [], "startedAt": started, "completedAt": _now()}
        inputs = body.get("inputs") if isinstance(body, dict) else None
        wrong = hv.batch_problem(inputs, self.properties, MAX_INPUTS)
        if wrong:
            raise error(400, wrong)
        results, errors = [], []
        for item in inputs:
            ok, outcome = self._upsert_one(item)
            (results if ok else errors).append(outcome)
        answer: dict = {"status": "COMPLETE", "results": results}
        if errors:
            answer.update(numErrors=len(errors), errors=errors)
        return (207 if errors else 200), {**answer, "startedAt": started, "completedAt": _now()}

    def _upsert_one(self, item: dict) -> tuple[bool, dict]:
        id_property, key, trace = item["idProperty"], item["id"], item.get("objectWriteTraceId")
        context = {"objectWriteTraceId": [trace]} if trace is not None else {"id": [key]}
        values, problems = hv.check_input(self.properties, item, self.poisoned)
        if problems:
            return False, {"status": "error", "category": "VALIDATION_ERROR", "message": hv.problems_message(problems),
                           "context": context}
        found = self._lookup(id_property, key)
        for name, stored in values.items():
            other = self._index.get((name, stored)) if stored and self._unique(name) else None
            if other is not None and other != found:
                return False, {"status": "error", "category": "CONFLICT", "context": context,
                               "message": f"Contact already exists. Existing ID: {other}"}
        now, new = _now(), found is None
        if new:
            found, self._next_contact = str(self._next_contact), self._next_contact + 1
            self.contacts[found] = {"id": found, "properties": {"hs_object_id": found}, "createdAt": now,
                                    "archived": False}
        contact = self.contacts[found]
        contact["updatedAt"] = now
        for name, stored in values.items():
            if stored.startswith(";") and self.properties[name]["fieldType"] == "checkbox":  # ";x" appends
                parts = contact["properties"].get(name, "").split(";") + stored.split(";")
                stored = values[name] = ";".join(dict.fromkeys(p for p in parts if p))
            self._set(contact, name, stored)
        self.writes[found] += 1
        result = {"id": found, "new": new, "archived": False, "createdAt": contact["createdAt"], "updatedAt": now,
                  "properties": {**values, "hs_object_id": found}}
        return True, {**result, **({"objectWriteTraceId": trace} if trace is not None else {})}

    def _update(self, body: object) -> tuple[int, dict]:
        """batch/update by HubSpot id: unknown ids fail in a 207, like merged or deleted contacts do."""
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or len(inputs) > MAX_INPUTS:
            raise error(400, "Invalid input JSON: inputs must be a list of at most 100 objects")
        results, errors = [], []
        for item in inputs:
            trace, found = item.get("objectWriteTraceId"), self.contacts.get(str(item.get("id")))
            context = {"objectWriteTraceId": [trace]} if trace is not None else {"id": [item.get("id")]}
            values, problems = {}, []
            for name, value in (item.get("properties") or {}).items():
                if name not in self.properties:
                    raise error(400, hv.problems_message([hv.problem(name, f'Property "{name}" does not exist',
                                                                     "PROPERTY_DOESNT_EXIST")]))
                values[name], wrong = hv.check_value(self.properties[name], value)
                problems += [wrong] if wrong else []
            if found is None or found["archived"] or problems:
                errors.append({"status": "error", "category": "OBJECT_NOT_FOUND" if not problems else
                               "VALIDATION_ERROR", "context": context, "message": hv.problems_message(problems)
                               if problems else f"Object {item.get('id')} does not exist"})
                continue
            for name, stored in values.items():
                self._set(found, name, stored)
            self.updates[found["id"]] += 1
            results.append({"id": found["id"], "properties": {**values, "hs_object_id": found["id"]},
                            **({"objectWriteTraceId": trace} if trace is not None else {})})
        answer: dict = {"status": "COMPLETE", "results": results}
        if errors:
            answer.update(numErrors=len(errors), errors=errors)
        return (207 if errors else 200), answer

    def _archive(self, body: object) -> tuple[int, None]:
        """batch/archive: contacts go to the recycle bin (and out of every list); 204, known or not."""
        for item in (body.get("inputs") if isinstance(body, dict) else None) or []:
            contact = self.contacts.get(str(item.get("id")))
            if contact is not None:
                contact["archived"] = True
                for lst in self.lists.values():
                    lst["members"].discard(contact["id"])
        return 204, None

    def _read(self, body: object) -> tuple[int, dict]:
        started = _now()
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
            raise error(400, "Invalid input JSON: inputs must be a list of objects")
        id_property, wanted = body.get("idProperty") or "hs_object_id", body.get("properties")
        if id_property not in self.properties:
            raise error(400, hv.problems_message([hv.problem(id_property, f'Property "{id_property}" does not exist',
                                                       "PROPERTY_DOESNT_EXIST")]))
        if id_property != "hs_object_id" and not self._unique(id_property):
            raise error(400, f"Unable to read by non-unique 0-1 property {id_property}")
        results, missing = [], []
        for item in body["inputs"]:
            found = self._lookup(id_property, str(item.get("id", "")))
            if found is None:
                missing.append(str(item.get("id", "")))
                continue
            contact = self.contacts[found]
            properties = contact["properties"] if not wanted else {
                k: v for k, v in contact["properties"].items() if k in wanted or k == "hs_object_id"}
            results.append({**contact, "properties": dict(properties)})
        answer: dict = {"status": "COMPLETE", "results": results}
        if missing:
            answer.update(numErrors=1, errors=[{
                "status": "error", "category": "OBJECT_NOT_FOUND", "context": {"ids": missing},
                "message": "Could not get some CONTACT objects, they may be deleted or not exist."}])
        return (207 if missing else 200), {**answer, "startedAt": started, "completedAt": _now()}

    def _gdpr_delete(self, body: object) -> tuple[int, None]:
        if not isinstance(body, dict) or not isinstance(body.get("objectId"), str) or not body["objectId"]:
            raise error(400, "objectId is required")
        id_property = body.get("idProperty") or "hs_object_id"
        found = self._lookup(id_property, body["objectId"]) if id_property in self.properties else None
        if found is None:
            raise error(404, "Object not found. objectId are usually numeric.", "OBJECT_NOT_FOUND")
        contact = self.contacts.pop(found)
        for name, value in contact["properties"].items():
            if self._unique(name):
                self._index.pop((name, value), None)
        for lst in self.lists.values():
            lst["members"].discard(found)
            lst["joined"].pop(found, None)
        self.gdpr_deleted.append(body["objectId"])
        return 204, None

    # ---- lists --------------------------------------------------------------------------------------
    @staticmethod
    def _view(lst: dict) -> dict:
        return {**{k: v for k, v in lst.items() if k not in ("members", "joined")}, "size": len(lst["members"])}

    def _list(self, list_id: str) -> dict:
        if list_id not in self.lists:
            raise error(404, f"List does not exist with id {list_id}.", "OBJECT_NOT_FOUND")
        return self.lists[list_id]

    def _create_list(self, body: object) -> tuple[int, dict]:
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
            raise error(400, "name is required")
        if body.get("objectTypeId") != "0-1":
            raise error(400, f"objectTypeId {body.get('objectTypeId')!r} is not served by this fake; use 0-1")
        if body.get("processingType") not in ("MANUAL", "DYNAMIC", "SNAPSHOT"):
            raise error(400, "processingType must be one of MANUAL, DYNAMIC, SNAPSHOT")
        if any(lst["name"] == body["name"] for lst in self.lists.values()):
            raise error(409, f"A list named {body['name']} already exists.", "OBJECT_ALREADY_EXISTS")
        list_id, self._next_list, now = str(self._next_list), self._next_list + 1, _now()
        self.lists[list_id] = {"listId": list_id, "name": body["name"], "objectTypeId": "0-1",
                               "processingType": body["processingType"], "processingStatus": "COMPLETE",
                               "listVersion": 1, "createdAt": now, "updatedAt": now, "members": set(), "joined": {}}
        return 200, {"list": self._view(self.lists[list_id])}

    def _find_list(self, object_type: str, name: str) -> tuple[int, dict]:
        for lst in self.lists.values():
            if lst["name"] == name and lst["objectTypeId"] == object_type:
                return 200, {"list": self._view(lst)}
        raise Refused(404, {"status": "error", "message": f"List does not exist with name {name}.",
                            "correlationId": str(uuid.uuid4()), "category": "OBJECT_NOT_FOUND"})

    def _edit_members(self, list_id: str, op: str, body: object) -> tuple[int, dict]:
        lst = self._list(list_id)
        if lst["processingType"] not in EDITABLE_LISTS:
            raise error(400, f"List {list_id} is {lst['processingType']}; only MANUAL and SNAPSHOT lists can be "
                             "edited")
        if op == "add-and-remove":
            body = body if isinstance(body, dict) else {}
            to_add, to_remove = body.get("recordIdsToAdd", []), body.get("recordIdsToRemove", [])
        else:
            to_add, to_remove = (body, []) if op == "add" else ([], body)
        if not all(isinstance(ids, list) and all(isinstance(i, str | int) for i in ids) for ids in (to_add, to_remove)):
            raise error(400, "Record ids must be a JSON array of strings")
        if len(to_add) + len(to_remove) > MAX_MEMBERSHIP_IDS:
            raise error(400, f"At most {MAX_MEMBERSHIP_IDS} record ids per membership request")
        added, removed, missing, now = [], [], [], _now()
        for verb, ids in (("add", to_add), ("remove", to_remove)):
            for record in dict.fromkeys(str(i) for i in ids):
                if record not in self.contacts:
                    missing += [] if record in missing else [record]
                    continue
                self.membership_ops[(list_id, verb, record)] += 1
                if verb == "add" and record not in lst["members"]:
                    lst["members"].add(record)
                    lst["joined"][record] = now
                    added.append(record)
                elif verb == "remove" and record in lst["members"]:
                    lst["members"].discard(record)
                    lst["joined"].pop(record, None)
                    removed.append(record)
        if added or removed:
            lst["listVersion"] += 1
            lst["updatedAt"] = now
        return 200, {"recordsIdsAdded": added, "recordIdsRemoved": removed, "recordIdsMissing": missing}

    def _members_page(self, list_id: str, query: dict) -> tuple[int, dict]:
        lst = self._list(list_id)
        try:
            limit, offset = int(query.get("limit", "100")), int(query.get("after") or 0)
        except ValueError:
            raise error(400, "limit and after must be integers") from None
        if not 1 <= limit <= MAX_PAGE:
            raise error(400, f"limit must be between 1 and {MAX_PAGE}")
        members = sorted(lst["members"], key=int)
        page = [{"recordId": r, "membershipTimestamp": lst["joined"][r]} for r in members[offset:offset + limit]]
        answer: dict = {"results": page, "total": len(members)}
        if offset + limit < len(members):
            answer["paging"] = {"next": {"after": str(offset + limit)}}
        return 200, answer

    # ---- dispatch -----------------------------------------------------------------------------------
    def _found(self, table: dict, key: str, what: str) -> tuple[int, dict]:
        if key not in table:
            raise error(404, f"{what} {key} does not exist", "OBJECT_NOT_FOUND")
        return 200, table[key]

    def _route(self, method: str, path: str, query: dict, body: object) -> tuple[int, dict | None]:
        routes = (
            ("GET", r"/crm/v3/properties/contacts", lambda: (200, {"results": list(self.properties.values())})),
            ("POST", r"/crm/v3/properties/contacts", lambda: self._create_property(body)),
            ("POST", r"/crm/v3/properties/contacts/groups", lambda: self._create_group(body)),
            ("GET", r"/crm/v3/properties/contacts/groups/([^/]+)", lambda g: self._found(self.groups, g, "Group")),
            ("GET", r"/crm/v3/properties/contacts/([^/]+)", lambda n: self._found(self.properties, n, "Property")),
            ("POST", r"/crm/v3/objects/contacts/batch/upsert", lambda: self._upsert(body)),
            ("POST", r"/crm/v3/objects/contacts/batch/read", lambda: self._read(body)),
            ("POST", r"/crm/v3/objects/contacts/batch/update", lambda: self._update(body)),
            ("POST", r"/crm/v3/objects/contacts/batch/archive", lambda: self._archive(body)),
            ("POST", r"/crm/v3/objects/contacts/gdpr-delete", lambda: self._gdpr_delete(body)),
            ("POST", r"/crm/v3/lists", lambda: self._create_list(body)),
            ("GET", r"/crm/v3/lists/object-type-id/([^/]+)/name/([^/]+)", self._find_list),
            ("GET", r"/crm/v3/lists/([^/]+)/memberships", lambda i: self._members_page(i, query)),
            ("PUT", r"/crm/v3/lists/([^/]+)/memberships/(add|remove|add-and-remove)",
             lambda i, op: self._edit_members(i, op, body)),
        )
        for verb, pattern, serve in routes:
            match = re.fullmatch(pattern, path.rstrip("/"))
            if match and verb == method:
                return serve(*(unquote(g) for g in match.groups()))
        raise error(404, f"No route {method} {path}", "NOT_FOUND")

    @staticmethod
    def _carries_records(method: str, path: str) -> bool:
        return (method == "PUT" and "/memberships/" in path) or (
            method == "POST" and path.endswith(("/contacts/batch/upsert", "/contacts/batch/update",
                                                "/contacts/batch/archive", "/contacts/gdpr-delete")))

    def _rate_headers(self, remaining: int) -> dict[str, str]:
        headers = {"X-HubSpot-RateLimit-Max": str(self.burst), "X-HubSpot-RateLimit-Remaining": str(remaining),
                   "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(self.window_seconds * 1000))}
        if self.daily_limit is not None:
            headers["X-HubSpot-RateLimit-Daily"] = str(self.daily_limit)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(max(0, self.daily_limit - self._daily_used))
        return headers

    def _limited(self, policy: str) -> Refused:
        message = "You have reached your daily limit." if policy == "DAILY" else \
            "You have reached your ten_secondly_rolling limit."
        return Refused(429, {"status": "error", "message": message, "errorType": "RATE_LIMIT",
                             "correlationId": str(uuid.uuid4()), "policyName": policy,
                             "requestId": str(uuid.uuid4())}, self._rate_headers(0))

    def _take(self) -> dict[str, str]:
        """Count the request against the rolling window and the day, or refuse it like HubSpot (HS-5)."""
        now = time.monotonic()
        while self._window and self._window[0] <= now - self.window_seconds:
            self._window.popleft()
        if self.daily_limit is not None and self._daily_used >= self.daily_limit:
            raise self._limited("DAILY")
        if len(self._window) >= self.burst:
            raise self._limited("TEN_SECONDLY_ROLLING")
        self._window.append(now)
        self._daily_used += 1
        return self._rate_headers(self.burst - len(self._window))

    def _fault_answer(self, fault: str) -> tuple[int, object, dict[str, str]]:
        refused = self._fault(fault)
        return refused.status, refused.body, refused.headers

    def _fault(self, fault: str) -> Refused:
        if fault in ("429_secondly", "429_daily"):
            return self._limited("DAILY" if fault == "429_daily" else "TEN_SECONDLY_ROLLING")
        if fault == "401":
            return error(401, AUTH_MESSAGE, "INVALID_AUTHENTICATION")
        if fault == "502":
            return Refused(502, BAD_GATEWAY)
        return {"423": error(423, "Record is locked; wait at least 2 seconds", "LOCKED"),
                "477": error(477, "Migration in progress", "MIGRATION_IN_PROGRESS", {"Retry-After": "1"}),
                "500": error(500, "internal error", "INTERNAL_ERROR"),
                "503": error(503, "Service Unavailable", "SERVICE_UNAVAILABLE")}[fault]

    # ---- the wire ----------------------------------------------------------------------------------
    def _parse_body(self, path: str, headers, raw: bytes) -> object:
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return Unparsed(raw.decode("utf-8", "replace"))

    @staticmethod
    def _stats_route(method: str, path: str) -> bool:
        return method == "GET" and path == "/_stats"

    def _log_entry(self, method: str, path: str, query: str, headers, body: object) -> dict | None:
        if not self.keep_requests or self._stats_route(method, path):
            return None
        return {**super()._log_entry(method, path, query, headers, body), "at": time.monotonic()}

    def _direct(self, method: str, path: str, headers, raw: bytes,
                body: object) -> tuple[int, object, dict[str, str]] | None:
        if not self._stats_route(method, path):
            return None
        with self._lock:  # for benchmarks: the fake's own counts, neither logged nor rate-limited
            return 200, {"contacts": len(self.contacts), "writes": sum(self.writes.values()),
                         "requests": len(self.requests)}, {}

    def _encode(self, answer: object) -> tuple[bytes, str | None]:
        if answer is None:
            return b"", None
        if isinstance(answer, str):
            return answer.encode(), "text/html"
        return json.dumps(answer).encode(), "application/json"

    def _handle(self, method: str, path: str, query: dict, headers, raw: bytes,
                body: object) -> tuple[int, object, dict[str, str]]:
        rate: dict[str, str] = {}
        try:
            if headers.get("Authorization") != f"Bearer {self.token}":
                raise error(401, AUTH_MESSAGE, "INVALID_AUTHENTICATION")
            rate = self._take()
            if raw and not headers.get("Content-Type", "").startswith("application/json"):
                raise error(415, f"Content type '{headers.get('Content-Type')}' not supported")
            if isinstance(body, Unparsed):
                raise error(400, "Invalid input JSON on line 1: the body could not be parsed")
            status, answer = self._route(method, path, {k: v[0] for k, v in query.items()}, body)
        except Refused as refused:
            return refused.status, refused.body, {**rate, **refused.headers}
        return status, answer, rate


if __name__ == "__main__":
    # A standalone fake for benchmarks: its work runs in its own process, not the measured one's.
    with FakeHubSpotCrm(keep_requests=False, burst=10**9) as server:
        print(server.url, flush=True)
        sys.stdin.read()  # serve until the parent closes our stdin
