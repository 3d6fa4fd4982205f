"""A local fake of Klaviyo's JSON:API on 127.0.0.1, speaking its wire shapes (spec §3, vectors §9.3).

Every request needs `Authorization: Klaviyo-API-Key <key>` (401 otherwise) and a `revision: YYYY-MM-DD`
header naming a real date no later than the fake's own revision (400 otherwise); a body must be
`application/vnd.api+json` or `application/json` (415), at most 5 MB (400).
Routes: `POST /api/profile-bulk-import-jobs` (≤10,000 profiles, ≤100 KB each, optional
`relationships.lists`) → 202 queued job; `GET …/{id}` (queued → processing → complete: the
`import_polls_until_done`-th poll completes it, 0 completes it at once); `GET …/{id}/import-errors`
(invalid email / phone, no identifier, poisoned profile, each with `source.pointer` and
`original_payload`), `…/{id}/profiles` and `…/{id}/relationships/profiles`; `POST /api/profile-import`
(201 new / 200 update, null clears); `GET /api/profiles?filter=equals(email,"…")`; `POST /api/lists`,
`GET /api/lists[?filter=equals(name,"…")]`, `GET /api/lists/{id}`; `POST`/`DELETE
/api/lists/{id}/relationships/profiles` (≤1,000 ids) → 204; `POST /api/profile-subscription-bulk-create-jobs`
/ `…-delete-jobs` (≤1,000) → 202; `POST /api/data-privacy-deletion-jobs` (exactly one of email,
phone_number, id) → 202. `.writes` counts applied import rows (bulk or single) by email, else external_id,
else phone number.
Faults are queued with `fail_next` and hit record-carrying requests only (the writes above, not polls or
reads): "429" (Retry-After: 1, no RateLimit-* headers), "500", "503", "401", "timeout", "drop",
"accept_then_drop"; `kill` SIGKILLs a client on its n-th record-carrying request, before or after accepting.

Choices where the spec is silent or unverified (the stricter behaviour, so a client that passes here holds
up against Klaviyo): an import job's rows are applied when the job is accepted (Klaviyo runs it whether or
not anyone polls), but its counts, import errors and profiles show only once it is complete; listings are
paged (`page[size]` ≤ 100, default 20) and must be followed through `links.next`; bulk import ignores null
(it cannot clear fields); a profile over 100 KB, an unknown list or an unknown profile id in a list call
refuses the whole request (400 / 404); list names need not be unique; `.pre` beta revisions are refused;
error texts are illustrative.
"""

import json
import re
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime

from tests.fakes._faulty_http import FaultyServer

MAX_PAYLOAD_BYTES = 5 * 1024 * 1024
MAX_IMPORT_PROFILES, MAX_PROFILE_BYTES, MAX_LIST_IDS, MAX_SUBSCRIPTIONS = 10_000, 100 * 1024, 1_000, 1_000
PAGE_SIZE, MAX_PAGE_SIZE = 20, 100
IDENTIFIERS = ("email", "external_id", "phone_number")
EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
E164 = re.compile(r"\+[1-9]\d{1,14}")
REVISION = re.compile(r"\d{4}-\d{2}-\d{2}")
FILTER = re.compile(r'equals\((\w+),"([^"]*)"\)')
JSONAPI = "application/vnd.api+json"
IMPORTS = "/data/attributes/profiles/data"


def error(status: int, code: str, title: str, detail: str, pointer: str | None = None,
          parameter: str | None = None) -> dict:
    source = {"pointer": pointer} if pointer else {"parameter": parameter} if parameter else {}
    return {"id": str(uuid.uuid4()), "status": status, "code": code, "title": title, "detail": detail,
            "source": source, "meta": {}}


class Refused(Exception):
    def __init__(self, status: int, code: str, title: str, detail: str, pointer: str | None = None,
                 parameter: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.body = status, {"errors": [error(status, code, title, detail, pointer, parameter)]}


def invalid(detail: str, pointer: str | None = None, parameter: str | None = None) -> Refused:
    return Refused(400, "invalid", "Invalid input.", detail, pointer, parameter)


def not_found(detail: str) -> Refused:
    return Refused(404, "not_found", "Not found.", detail)


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


class FakeKlaviyo(FaultyServer):
    answer_faults = ("429", "500", "503", "401")
    content_type = JSONAPI

    def __init__(self, api_key: str = "pk_test_key", revision: str = "2025-10-15",
                 import_polls_until_done: int = 1) -> None:
        super().__init__()
        self.api_key, self.revision = api_key, revision
        self.import_polls_until_done = import_polls_until_done
        self.profiles: dict[str, dict] = {}  # Klaviyo profile id → {"id", "email", …, "properties"}
        self.writes: Counter = Counter()  # email (else external_id, else phone) → applied import rows
        self.lists: dict[str, dict] = {}  # list id → {"name", "members": set of profile ids}
        self.subscribed: set[str] = set()  # emails subscribed to email marketing
        self.deleted: list[str] = []  # identifier values of privacy deletions, in order
        self.jobs: dict[str, dict] = {}
        self.poisoned: set[str] = set()
        self.revisions: Counter = Counter()  # revision header → requests
        self._ids = 0
        self._index: dict[tuple[str, object], str] = {}  # (identifier, value) → profile id
        self._window: tuple[int, int] = (0, 0)

    def env(self) -> dict[str, str]:
        return {"KLAVIYO_API_URL": self.url, "KLAVIYO_API_KEY": self.api_key}

    def poison(self, value: str) -> None:
        """Import rows carrying this email (or external_id / phone) fail in the job's import errors."""
        self.poisoned.add(value)

    def add_list(self, name: str) -> str:
        with self._lock:
            return self._create_list(name)

    def add_profile(self, **attributes: object) -> str:
        with self._lock:
            return self._upsert(attributes, clear=False, count=False)

    def id_of(self, email: str) -> str | None:
        return next((p["id"] for p in self.profiles.values() if p.get("email") == email), None)

    def by_email(self, email: str) -> dict | None:
        return next((p for p in self.profiles.values() if p.get("email") == email), None)

    def list_members(self, list_id: str) -> set[str]:
        return set(self.lists[list_id]["members"]) if list_id in self.lists else set()

    def list_emails(self, list_id: str) -> set[str]:
        return {self.profiles[p].get("email") for p in self.list_members(list_id) if p in self.profiles}

    # ---- state ----------------------------------------------------------------------------------------
    def _new_id(self, prefix: str, width: int) -> str:
        self._ids += 1
        return prefix + str(self._ids).zfill(width - len(prefix))

    def _create_list(self, name: str) -> str:
        list_id = self._new_id("L", 6)
        self.lists[list_id] = {"name": name, "members": set(), "created": iso(time.time())}
        return list_id

    def _find(self, attributes: dict) -> str | None:
        for key in IDENTIFIERS:  # the index may be stale (a changed or deleted identifier): check the profile
            pid = self._index.get((key, attributes.get(key)))
            if attributes.get(key) is not None and self.profiles.get(pid, {}).get(key) == attributes[key]:
                return pid
        return None

    def _upsert(self, attributes: dict, clear: bool, count: bool = True, meta: dict | None = None) -> str:
        pid = self._find(attributes) or self._new_id("01K", 26)
        profile = self.profiles.setdefault(pid, {"id": pid, "properties": {}})
        for key, value in attributes.items():
            if key == "properties":
                for name, prop in (value or {}).items():
                    if prop is not None:
                        profile["properties"][name] = prop
                    elif clear:
                        profile["properties"].pop(name, None)
            elif value is not None:
                profile[key] = value
            elif clear:
                profile.pop(key, None)
        patch = (meta or {}).get("patch_properties") or {}
        unset = patch.get("unset") or []
        for name in [unset] if isinstance(unset, str) else unset:
            profile["properties"].pop(name, None)
        for name, values in (patch.get("append") or {}).items():
            current = profile["properties"].setdefault(name, [])
            current.extend(values if isinstance(values, list) else [values])
        for name, values in (patch.get("unappend") or {}).items():
            gone = values if isinstance(values, list) else [values]
            profile["properties"][name] = [v for v in profile["properties"].get(name, []) if v not in gone]
        self._index.update({(k, profile[k]): pid for k in IDENTIFIERS if profile.get(k) is not None})
        if count:
            self.writes[next(attributes[k] for k in IDENTIFIERS if attributes.get(k) is not None)] += 1
        return pid

    def _resource(self, pid: str) -> dict:
        profile = self.profiles[pid]
        return {"type": "profile", "id": pid, "attributes": {k: v for k, v in profile.items() if k != "id"},
                "links": {"self": f"{self.url}/api/profiles/{pid}/"}}

    def _list_resource(self, list_id: str) -> dict:
        entry = self.lists[list_id]
        return {"type": "list", "id": list_id, "attributes": {
            "name": entry["name"], "created": entry["created"], "updated": entry["created"],
            "opt_in_process": "single_opt_in"}, "links": {"self": f"{self.url}/api/lists/{list_id}/"}}

    def _page(self, items: list, path: str, query: dict) -> dict:
        try:
            size = int(query.get("page[size]", [PAGE_SIZE])[0])
            start = int(query.get("page[cursor]", ["0"])[0])
        except ValueError:
            raise invalid("page[size] and page[cursor] must be integers", parameter="page") from None
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise invalid(f"page[size] must be between 1 and {MAX_PAGE_SIZE}", parameter="page[size]")
        link = f"{self.url}{path}?page[size]={size}&page[cursor]="
        return {"data": items[start:start + size], "links": {
            "self": link + str(start), "next": link + str(start + size) if start + size < len(items) else None,
            "prev": link + str(max(0, start - size)) if start else None}}

    # ---- profile imports ------------------------------------------------------------------------------
    @staticmethod
    def _check_type(body: dict, kind: str) -> dict:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or data.get("type") != kind:
            raise invalid(f"data.type must be '{kind}'", "/data/type")
        return data

    def _row_error(self, attributes: dict, pointer: str) -> dict | None:
        if not any(attributes.get(k) for k in IDENTIFIERS):
            return error(400, "invalid", "Invalid input.", "A profile requires an email, phone_number or "
                         "external_id", pointer)
        email, phone = attributes.get("email"), attributes.get("phone_number")
        if email is not None and (not isinstance(email, str) or not EMAIL.fullmatch(email)):
            return error(400, "invalid", "Invalid input.", "Invalid email address", pointer + "/email")
        if phone is not None and (not isinstance(phone, str) or not E164.fullmatch(phone)):
            return error(400, "invalid", "Invalid input.", "Invalid phone number: must be E.164",
                         pointer + "/phone_number")
        if self.poisoned & {str(attributes.get(k)) for k in IDENTIFIERS}:
            return error(400, "invalid", "Invalid input.", "The profile was rejected", pointer)
        return None

    def _import_job(self, method: str, path: str, query: dict, body: dict) -> tuple[int, dict]:
        data = self._check_type(body, "profile-bulk-import-job")
        rows = ((data.get("attributes") or {}).get("profiles") or {}).get("data")
        if not isinstance(rows, list) or not rows:
            raise invalid("profiles.data must be a non-empty list", IMPORTS)
        if len(rows) > MAX_IMPORT_PROFILES:
            raise invalid(f"A job imports at most {MAX_IMPORT_PROFILES} profiles, got {len(rows)}", IMPORTS)
        for n, row in enumerate(rows):
            if not isinstance(row, dict) or row.get("type") != "profile" or not isinstance(row.get("attributes"), dict):
                raise invalid("Each item must be {type: 'profile', attributes: {...}}", f"{IMPORTS}/{n}")
            if len(json.dumps(row).encode()) > MAX_PROFILE_BYTES:
                raise invalid(f"A profile is at most {MAX_PROFILE_BYTES} bytes", f"{IMPORTS}/{n}")
        lists = [item.get("id") for item in ((data.get("relationships") or {}).get("lists") or {}).get("data") or []]
        for n, list_id in enumerate(lists):
            if list_id not in self.lists:
                raise invalid(f"List {list_id!r} does not exist", f"/data/relationships/lists/data/{n}/id")
        job = {"id": self._new_id("KJ", 20), "status": "queued", "polls": 0, "total": len(rows), "errors": [],
               "profile_ids": [], "created_at": time.time(), "started_at": None, "completed_at": None}
        for n, row in enumerate(rows):
            attributes = row["attributes"]
            problem = self._row_error(attributes, f"{IMPORTS}/{n}/attributes")
            if problem:
                job["errors"].append({"type": "import-error", "id": f"{job['id']}-e{len(job['errors']) + 1}",
                                      "attributes": {**{k: problem[k] for k in ("code", "title", "detail")},
                                                     "source": problem["source"], "original_payload": attributes}})
                continue
            pid = self._upsert(attributes, clear=False, meta=row.get("meta"))
            job["profile_ids"].append(pid)
            for list_id in lists:
                self.lists[list_id]["members"].add(pid)
        self.jobs[job["id"]] = job
        if self.import_polls_until_done <= 0:
            self._advance(job, complete=True)
        return 202, {"data": self._job_resource(job)}

    def _advance(self, job: dict, complete: bool) -> None:
        job["started_at"] = job["started_at"] or time.time()
        job["status"] = "complete" if complete else "processing"
        job["completed_at"] = time.time() if complete else None

    def _job_resource(self, job: dict) -> dict:
        done = job["status"] == "complete"
        return {"type": "profile-bulk-import-job", "id": job["id"], "attributes": {
            "status": job["status"], "created_at": iso(job["created_at"]), "total_count": job["total"],
            "completed_count": len(job["profile_ids"]) if done else 0,
            "failed_count": len(job["errors"]) if done else 0,
            "completed_at": iso(job["completed_at"]), "expires_at": iso(job["created_at"] + 7 * 86400),
            "started_at": iso(job["started_at"])},
            "links": {"self": f"{self.url}/api/profile-bulk-import-jobs/{job['id']}/"}}

    def _job_read(self, method: str, path: str, query: dict, body: dict, job_id: str,
                  tail: str | None) -> tuple[int, dict]:
        job = self.jobs.get(job_id)
        if job is None:
            raise not_found(f"No profile-bulk-import-job with id {job_id!r}")
        if tail is None:
            if job["status"] != "complete":
                job["polls"] += 1
                self._advance(job, complete=job["polls"] >= self.import_polls_until_done)
            return 200, {"data": self._job_resource(job)}
        done = job["status"] == "complete"
        if tail == "import-errors":
            return 200, self._page(job["errors"] if done else [], path, query)
        ids = [pid for pid in job["profile_ids"] if pid in self.profiles] if done else []
        items = [self._resource(p) if tail == "profiles" else {"type": "profile", "id": p} for p in ids]
        return 200, self._page(items, path, query)

    def _profile_import(self, method: str, path: str, query: dict, body: dict) -> tuple[int, dict]:
        attributes = self._check_type(body, "profile").get("attributes")
        if not isinstance(attributes, dict):
            raise invalid("data.attributes is required", "/data/attributes")
        problem = self._row_error(attributes, "/data/attributes")
        if problem:
            raise invalid(problem["detail"], problem["source"]["pointer"])
        existed = self._find(attributes) is not None
        pid = self._upsert(attributes, clear=True, meta=body["data"].get("meta"))
        return (200 if existed else 201), {"data": self._resource(pid)}

    # ---- lists, consent, deletion ---------------------------------------------------------------------
    def _filtered(self, query: dict, allowed: tuple[str, ...]) -> tuple[str, str] | None:
        raw = query.get("filter", [None])[0]
        if raw is None:
            return None
        match = FILTER.fullmatch(raw)
        if not match or match.group(1) not in allowed:
            raise invalid(f"Unsupported filter {raw!r}", parameter="filter")
        return match.group(1), match.group(2)

    def _members(self, method: str, path: str, query: dict, body: dict, list_id: str) -> tuple[int, dict]:
        if list_id not in self.lists:
            raise not_found(f"No list with id {list_id!r}")
        items = body.get("data") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise invalid("data must be a non-empty list of profiles", "/data")
        if len(items) > MAX_LIST_IDS:
            raise invalid(f"At most {MAX_LIST_IDS} profiles per request, got {len(items)}", "/data")
        for n, item in enumerate(items):
            if not isinstance(item, dict) or item.get("type") != "profile" or item.get("id") not in self.profiles:
                raise invalid(f"Item {n} is not an existing profile {{type: 'profile', id}}", f"/data/{n}/id")
        members = self.lists[list_id]["members"]
        for item in items:
            (members.add if method == "POST" else members.discard)(item["id"])
        return 204, {}

    def _subscriptions(self, method: str, path: str, query: dict, body: dict, verb: str) -> tuple[int, dict]:
        subscribe = verb == "create"
        data = self._check_type(body, f"profile-subscription-bulk-{verb}-job")
        attributes = data.get("attributes") or {}
        rows = (attributes.get("profiles") or {}).get("data")
        if not isinstance(rows, list) or not rows or len(rows) > MAX_SUBSCRIPTIONS:
            raise invalid(f"profiles.data must hold 1 to {MAX_SUBSCRIPTIONS} profiles", IMPORTS)
        list_id = (((data.get("relationships") or {}).get("list") or {}).get("data") or {}).get("id")
        if list_id is not None and list_id not in self.lists:
            raise not_found(f"No list with id {list_id!r}")
        for n, row in enumerate(rows):
            person = row.get("attributes") if isinstance(row, dict) else None
            if not isinstance(person, dict):
                raise invalid("Each item must be {type: 'profile', attributes: {...}}", f"{IMPORTS}/{n}")
            email, phone = person.get("email"), person.get("phone_number")
            if not (email or phone) or (email and not EMAIL.fullmatch(str(email))) or (
                    phone and not E164.fullmatch(str(phone))):
                raise invalid("Each profile needs a valid email or E.164 phone_number", f"{IMPORTS}/{n}/attributes")
            marketing = ((person.get("subscriptions") or {}).get("email") or {}).get("marketing") or {}
            if subscribe and attributes.get("historical_import") and marketing and not marketing.get("consented_at"):
                raise invalid("historical_import requires consented_at",
                              f"{IMPORTS}/{n}/attributes/subscriptions/email/marketing/consented_at")
        for row in rows:
            person = row["attributes"]
            marketing = ((person.get("subscriptions") or {}).get("email") or {}).get("marketing") or {}
            email = person.get("email")
            if subscribe:
                pid = self._upsert({k: person[k] for k in ("email", "phone_number") if person.get(k)}, False, False)
                if email and marketing.get("consent") == "SUBSCRIBED":
                    self.subscribed.add(email)
                if list_id:
                    self.lists[list_id]["members"].add(pid)
            elif email:
                self.subscribed.discard(email)
        return 202, {}

    def _deletion(self, method: str, path: str, query: dict, body: dict) -> tuple[int, dict]:
        attributes = self._check_type(body, "data-privacy-deletion-job").get("attributes") or {}
        person = (attributes.get("profile") or {}).get("data") or {}
        given = {"id": person.get("id") or attributes.get("profile_id"),
                 **{k: (person.get("attributes") or {}).get(k) or attributes.get(k) for k in ("email", "phone_number")}}
        given = {k: v for k, v in given.items() if v}
        if len(given) != 1:
            raise invalid("Provide exactly one of email, phone_number or id", "/data/attributes/profile")
        (key, value), = given.items()
        for pid in [p["id"] for p in self.profiles.values() if p.get(key) == value]:
            email = self.profiles.pop(pid).get("email")
            self.subscribed.discard(email)
            for entry in self.lists.values():
                entry["members"].discard(pid)
        self.deleted.append(value)
        return 202, {}

    def _profiles(self, method: str, path: str, query: dict, body: dict) -> tuple[int, dict]:
        wanted = self._filtered(query, ("email", "external_id", "phone_number", "id"))
        ids = [p for p, v in self.profiles.items() if not wanted or v.get(wanted[0]) == wanted[1]]
        return 200, self._page([self._resource(p) for p in ids], path, query)

    def _lists(self, method: str, path: str, query: dict, body: dict, list_id: str | None = None) -> tuple[int, dict]:
        if list_id is not None:
            if list_id not in self.lists:
                raise not_found(f"No list with id {list_id!r}")
            return 200, {"data": self._list_resource(list_id)}
        if method == "GET":
            wanted = self._filtered(query, ("name",))
            ids = [i for i, v in self.lists.items() if not wanted or v["name"] == wanted[1]]
            return 200, self._page([self._list_resource(i) for i in ids], path, query)
        name = (self._check_type(body, "list").get("attributes") or {}).get("name")
        if not isinstance(name, str) or not name.strip():
            raise invalid("A list needs a name", "/data/attributes/name")
        return 201, {"data": self._list_resource(self._create_list(name))}

    # ---- dispatch -------------------------------------------------------------------------------------
    ROUTES = (
        ("POST", r"/api/profile-bulk-import-jobs", "_import_job"),
        ("GET", r"/api/profile-bulk-import-jobs/([^/]+)(?:/(import-errors|profiles|relationships/profiles))?",
         "_job_read"),
        ("POST", r"/api/profile-import", "_profile_import"),
        ("GET", r"/api/profiles", "_profiles"),
        ("GET POST", r"/api/lists", "_lists"),
        ("GET", r"/api/lists/([^/]+)", "_lists"),
        ("POST DELETE", r"/api/lists/([^/]+)/relationships/profiles", "_members"),
        ("POST", r"/api/profile-subscription-bulk-(create|delete)-jobs", "_subscriptions"),
        ("POST", r"/api/data-privacy-deletion-jobs", "_deletion"),
    )

    def _route(self, method: str, path: str, query: dict, body: dict) -> tuple[int, dict]:
        for methods, pattern, name in self.ROUTES:
            match = re.fullmatch(pattern, path.rstrip("/"))
            if match and method in methods.split():
                return getattr(self, name)(method, path, query, body, *match.groups())
        raise not_found(f"No route {method} {path}")

    def _carries_records(self, method: str, path: str) -> bool:
        return method in ("POST", "DELETE") and (path.rstrip("/").endswith((
            "/profile-bulk-import-jobs", "/profile-import", "/relationships/profiles", "/data-privacy-deletion-jobs",
            "/profile-subscription-bulk-create-jobs", "/profile-subscription-bulk-delete-jobs")))

    def _check_headers(self, headers, raw: bytes) -> None:
        authorization = headers.get("Authorization")
        if not authorization:
            raise Refused(401, "not_authenticated", "Authentication credentials were not provided.",
                          "Missing Authorization header")
        if authorization != f"Klaviyo-API-Key {self.api_key}":
            raise Refused(401, "authentication_failed", "Incorrect authentication credentials.",
                          "Expected 'Authorization: Klaviyo-API-Key <private key>'")
        revision = headers.get("revision")
        if not revision:
            raise invalid("Missing required header 'revision' (YYYY-MM-DD)", parameter="revision")
        if not REVISION.fullmatch(revision) or not _date(revision) or _date(revision) > _date(self.revision):
            raise invalid(f"Invalid revision {revision!r}: a published YYYY-MM-DD revision is required",
                          parameter="revision")
        self.revisions[revision] += 1
        if raw:
            kind = headers.get("Content-Type", "").split(";")[0].strip()
            encoding = headers.get("Content-Encoding", "identity")
            if kind not in (JSONAPI, "application/json") or encoding != "identity":
                raise Refused(415, "unsupported_media_type", "Unsupported media type.",
                              f"Content-Type must be {JSONAPI}, uncompressed")
            if len(raw) > MAX_PAYLOAD_BYTES:
                raise invalid(f"The payload exceeds {MAX_PAYLOAD_BYTES} bytes", "/data")

    def _rate_headers(self) -> dict[str, str]:
        """The steady (per-minute) window's headers, as on every non-429 Klaviyo answer."""
        minute, count = self._window
        self._window = (int(time.time() // 60), count + 1 if minute == int(time.time() // 60) else 1)
        return {"RateLimit-Limit": "150", "RateLimit-Remaining": str(max(0, 150 - self._window[1])),
                "RateLimit-Reset": str(60 - int(time.time() % 60))}

    def _fault_answer(self, fault: str) -> tuple[int, dict, dict[str, str]]:
        if fault == "429":  # like Klaviyo: Retry-After in whole seconds, and no RateLimit-* headers
            return 429, {"errors": [error(429, "throttled", "Request was throttled.",
                                          "Request was throttled. Expected available in 1 second.", "/data/")]}, {
                "Retry-After": "1"}
        code, title = {"500": ("error", "A server error occurred."),
                       "503": ("service_unavailable", "Service unavailable."),
                       "401": ("authentication_failed", "Incorrect authentication credentials.")}[fault]
        return int(fault), {"errors": [error(int(fault), code, title, "injected fault")]}, {}

    def _handle(self, method: str, path: str, query: dict, headers, raw: bytes,
                body: object) -> tuple[int, dict, dict[str, str]]:
        try:
            self._check_headers(headers, raw)
            if not isinstance(body, dict):
                raise invalid("The body must be a JSON object", "/")
            status, answer = self._route(method, path, query, body)
        except Refused as refused:
            status, answer = refused.status, refused.body
        return status, answer, self._rate_headers()


if __name__ == "__main__":
    with FakeKlaviyo() as server:
        print(server.url, flush=True)
        sys.stdin.read()  # serve until the parent closes our stdin
