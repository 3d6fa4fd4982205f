"""A local fake of Braze's REST API on 127.0.0.1, speaking its wire shapes (spec §4, vectors §9.4).

Every request needs `Authorization: Bearer <key>` (401 `{"message": "Invalid API key: …"}`) and a JSON
body sent as `application/json` (400). Routes:
- `POST /users/track` with any of `attributes`, `events`, `purchases` (lists of objects). More than
  `max_per_array` (75) objects in one array, or more than `max_combined` in all (off by default; 50 on the
  newer contracts), is fatal: 400 `{"message": "Max Input Length Exceeded", "errors": []}`. Otherwise the
  answer is 201 `{"message": "success", "<array>_processed": n, …}` for the arrays sent, with
  `"errors": [{"type", "input_array", "index"}]` for the objects refused: no identifier (`external_id`,
  `user_alias {alias_name, alias_label}`, `braze_id`, `email`, `phone`), a blocklisted or poisoned
  external_id, a poisoned value, an event without `name`/ISO `time`, a purchase without `product_id`,
  3-letter `currency`, numeric `price` or ISO `time`. Arrays are processed attributes → events → purchases.
  Attribute values merge into `.users`; `null` removes the attribute, `{"add": […], "remove": […]}` edits an
  array, `{"inc": n}` increments; `_update_existing_only` (default true for alias-only objects) skips
  unknown users. Events and purchases are stored, never deduplicated (like Braze).
- `POST /users/delete` with exactly one of `external_ids`, `user_aliases`, `braze_ids`, `email_addresses`,
  `phone_numbers` (1 to 50 items) → 201 `{"deleted": n, "message": "success"}` (n = identifiers queued).
Every answer carries `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (UNIX seconds) for a
sliding window (`/users/track` 3,000 per 3 s, `/users/delete` 20,000 per minute; over it → 429).
Faults (`fail_next`, record-carrying requests only): "429" (`{"message": "Rate limit exceeded"}`, remaining
0, reset at most a second ahead), "500", "503", "401", "queued" (applied, answered 202
`{"message": "queued"}` as during a Braze incident), "timeout", "drop", "accept_then_drop"; `kill` as in
ads.py.

Choices where the spec is unverified: success is 201 (the third-party fixture's status; clients should
accept any 2xx); error items use `type`/`input_array`/`index`; no `Retry-After` is sent (Braze documents
none: sleep until `X-RateLimit-Reset`); a request whose every object is refused still answers 201 with
`errors`; `add` never duplicates an array element; the blocklist is a small sample of dummy ids; error
texts other than the spec's verbatim ones are illustrative.
"""

import sys
import time
from collections import Counter, deque
from datetime import datetime

from tests.fakes._faulty_http import FaultyServer

ARRAYS = ("attributes", "events", "purchases")
IDENTIFIER_KEYS = ("external_id", "user_alias", "braze_id", "_update_existing_only")
DELETE_KEYS = {"external_ids": "external_id", "user_aliases": "user_alias", "braze_ids": "braze_id",
               "email_addresses": "email", "phone_numbers": "phone"}
MAX_PER_ARRAY, MAX_DELETE = 75, 50
MISSING_ID = "'external_id' or 'braze_id' or 'user_alias' is required"  # verbatim, per the spec's fixture
BLOCKED_ID = "provided external_id is blacklisted and disallowed"  # verbatim [BZ-ERR]
BLOCKLIST = {"", "0", "-1", "n/a", "na", "nil", "none", "null", "undefined", "unknown"}
LIMITS = {"/users/track": (3000, 3.0), "/users/delete": (20_000, 60.0)}  # requests per sliding window


def _iso(value: object) -> bool:
    try:
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return False
    return isinstance(value, str)


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.body = status, {"message": message, "errors": []}


class FakeBraze(FaultyServer):
    answer_faults = ("429", "500", "503", "401")
    accept_faults = ("queued",)

    def __init__(self, api_key: str = "braze-test-key", max_per_array: int = MAX_PER_ARRAY,
                 max_combined: int | None = None, track_limit: int = LIMITS["/users/track"][0]) -> None:
        super().__init__()
        self.api_key, self.max_per_array, self.max_combined = api_key, max_per_array, max_combined
        self.limits = {**LIMITS, "/users/track": (track_limit, LIMITS["/users/track"][1])}
        self.users: dict[str, dict] = {}  # external_id (else "alias:<label>:<name>", "braze_id:…") → attributes
        self.writes: Counter = Counter()  # same keys → attribute objects applied
        self.events: list[dict] = []  # applied event objects, each with "user": its key
        self.purchases: list[dict] = []
        self.deleted: list[str] = []  # user keys deleted, in order
        self.poisoned: set[str] = set()
        self._calls: dict[str, deque] = {path: deque() for path in LIMITS}

    def env(self) -> dict[str, str]:
        return {"BRAZE_REST_ENDPOINT": self.url, "BRAZE_API_KEY": self.api_key}

    def poison(self, value: str) -> None:
        """Objects whose external_id or any attribute value equals `value` are refused in `errors[]`."""
        self.poisoned.add(value)

    # ---- users ----------------------------------------------------------------------------------------
    def _key(self, obj: dict) -> str | None:
        if obj.get("external_id") is not None:
            return str(obj["external_id"])
        alias = obj.get("user_alias")
        if isinstance(alias, dict) and alias.get("alias_name") and alias.get("alias_label"):
            return f"alias:{alias['alias_label']}:{alias['alias_name']}"
        if obj.get("braze_id"):
            return f"braze_id:{obj['braze_id']}"
        for field in ("email", "phone"):  # an existing user with that email/phone, else an identifier-only one
            if obj.get(field):
                found = next((k for k, u in self.users.items() if u.get(field) == obj[field]), None)
                return found or f"{field}:{obj[field]}"
        return None

    def _problem(self, array: str, obj: object) -> str | None:
        if not isinstance(obj, dict) or self._key(obj) is None:
            return MISSING_ID
        external_id = obj.get("external_id")
        if external_id is not None and (str(external_id).strip().lower() in BLOCKLIST
                                        or str(external_id) in self.poisoned):
            return BLOCKED_ID
        bad = next((k for k, v in obj.items() if isinstance(v, str | int | float) and str(v) in self.poisoned), None)
        if bad:
            return f"'{bad}' has an invalid value"
        if array == "events":
            if not isinstance(obj.get("name"), str) or not obj["name"]:
                return "'name' is required"
            if not _iso(obj.get("time")):
                return "'time' must be an ISO 8601 string"
        if array == "purchases":
            if not isinstance(obj.get("product_id"), str) or not obj["product_id"]:
                return "'product_id' is required"
            if not isinstance(obj.get("currency"), str) or len(obj["currency"]) != 3:
                return "'currency' must be a 3-letter ISO 4217 code"
            if not isinstance(obj.get("price"), int | float) or isinstance(obj.get("price"), bool):
                return "'price' must be a number"
            if not _iso(obj.get("time")):
                return "'time' must be an ISO 8601 string"
        return None

    def _apply_attributes(self, obj: dict) -> None:
        key = self._key(obj)
        only_existing = obj.get("_update_existing_only", "user_alias" in obj and "external_id" not in obj)
        if only_existing and key not in self.users:
            return
        user = self.users.setdefault(key, {})
        for name, value in obj.items():
            if name in IDENTIFIER_KEYS:
                continue
            if value is None:
                user.pop(name, None)
            elif isinstance(value, dict) and value and set(value) <= {"add", "remove"}:
                current = [v for v in user.get(name) or [] if v not in (value.get("remove") or [])]
                user[name] = current + [v for v in value.get("add") or [] if v not in current]
            elif isinstance(value, dict) and set(value) == {"inc"}:
                user[name] = (user.get(name) or 0) + value["inc"]
            else:
                user[name] = value
        self.writes[key] += 1

    def _track(self, body: dict) -> tuple[int, dict]:
        arrays = {name: body[name] for name in ARRAYS if name in body}
        if any(not isinstance(v, list) for v in arrays.values()):
            raise Refused(400, "'attributes', 'events' and 'purchases' must be arrays")
        if not any(arrays.values()):
            raise Refused(400, "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields.")
        sizes = [len(v) for v in arrays.values()]
        if max(sizes) > self.max_per_array or (self.max_combined is not None and sum(sizes) > self.max_combined):
            raise Refused(400, "Max Input Length Exceeded")
        processed: Counter = Counter()
        errors = []
        for array, objects in arrays.items():  # ARRAYS order: attributes → events → purchases
            for index, obj in enumerate(objects):
                problem = self._problem(array, obj)
                if problem:
                    errors.append({"type": problem, "input_array": array, "index": index})
                    continue
                processed[array] += 1
                if array == "attributes":
                    self._apply_attributes(obj)
                else:
                    (self.events if array == "events" else self.purchases).append({"user": self._key(obj), **obj})
        answer: dict = {"message": "success", **{f"{array}_processed": processed[array] for array in arrays}}
        if errors:
            answer["errors"] = errors
        return 201, answer

    def _delete(self, body: dict) -> tuple[int, dict]:
        given = [name for name in DELETE_KEYS if name in body]
        if len(given) != 1:
            raise Refused(400, f"Exactly one of {', '.join(DELETE_KEYS)} is required")
        items = body[given[0]]
        if not isinstance(items, list) or not items:
            raise Refused(400, f"'{given[0]}' must be a non-empty array")
        if len(items) > MAX_DELETE:
            raise Refused(400, "Max Input Length Exceeded")
        keys = [self._key({DELETE_KEYS[given[0]]: item}) for item in items]
        if None in keys:
            raise Refused(400, f"Invalid '{given[0]}'")
        for key in keys:
            self.users.pop(key, None)
            self.deleted.append(key)
        return 201, {"deleted": len(items), "message": "success"}

    # ---- dispatch -------------------------------------------------------------------------------------
    def _carries_records(self, method: str, path: str) -> bool:
        return method == "POST" and path in LIMITS

    def _rate(self, path: str, now: float, soon: bool = False) -> dict[str, str]:
        """The rate-limit headers; `soon` (an injected 429) puts the reset at most a second ahead."""
        limit, window = self.limits.get(path, self.limits["/users/track"])
        calls = self._calls.get(path) or deque()
        reset = int(now) + 1 if soon else int((calls[0] if calls else now) + window) + 1
        remaining = 0 if soon else max(0, limit - len(calls))
        return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": str(reset)}

    def _fault_answer(self, fault: str) -> tuple[int, dict, dict[str, str]]:
        headers = self._rate("/users/track", time.time(), soon=fault == "429")
        answer = {"429": (429, {"message": "Rate limit exceeded"}), "500": (500, {"message": "Internal Server Error"}),
                  "503": (503, {"message": "Service Unavailable"}), "401": (401, {"message": "Invalid API key"}),
                  "queued": (202, {"message": "queued"})}[fault]
        return *answer, headers

    def _handle(self, method: str, path: str, query: dict, headers, raw: bytes,
                body: object) -> tuple[int, dict, dict[str, str]]:
        now = time.time()
        calls = self._calls.get(path)
        limit, window = self.limits.get(path, (0, 0.0))
        while calls and calls[0] <= now - window:
            calls.popleft()
        try:
            token = (headers.get("Authorization") or "").removeprefix("Bearer ")
            if headers.get("Authorization") != f"Bearer {self.api_key}":
                raise Refused(401, f"Invalid API key: {token}")
            if method != "POST" or path not in LIMITS:
                raise Refused(404, f"No route {method} {path}")
            if len(calls) >= limit:
                return 429, {"message": "Rate limit exceeded"}, self._rate(path, now)
            calls.append(now)
            if headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
                raise Refused(400, "Content-Type must be application/json")
            if not isinstance(body, dict):
                raise Refused(400, "The body must be a JSON object")
            status, answer = self._track(body) if path == "/users/track" else self._delete(body)
        except Refused as refused:
            status, answer = refused.status, refused.body
        return status, answer, self._rate(path, now)


if __name__ == "__main__":
    with FakeBraze() as server:
        print(server.url, flush=True)
        sys.stdin.read()  # serve until the parent closes our stdin
