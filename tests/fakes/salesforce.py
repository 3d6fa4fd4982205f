"""A local fake of Salesforce on 127.0.0.1: OAuth, sObject Collections upsert and Bulk API 2.0 ingest.

Wire shapes follow /work/shared/specs/crm_destinations.md §2 and vectors SF-1..SF-8 (§9.2):
- `POST /services/oauth2/token` (form; `refresh_token` or `client_credentials` grant) mints bearer tokens;
  `expire_tokens()` makes every later API call answer 401 `INVALID_SESSION_ID` until the client refreshes.
- `PATCH /services/data/{v}/composite/sobjects/{SObject}/{ExternalIdField}` upserts at most 200 records and
  answers 200 with one item per record in request order (`{"id","success","errors","created"}`, a failure is
  `{"success":false,"errors":[{"statusCode","message","fields"}]}`); 400 only for a malformed request.
- Bulk API 2.0 ingest jobs live in tests/fakes/salesforce_bulk.py; `GET /services/data/{v}/limits` reports usage;
  `GET /services/data/{v}/sobjects/{SObject}/describe` lists the object's fields (name, type, externalId, nillable).
Every /services/data answer carries `Sforce-Limit-Info: api-usage=used/limit`; past `api_limit` calls it is 403
`REQUEST_LIMIT_EXCEEDED`. Contact and Lead know Email, FirstName, LastName, Phone (Lead also Company) and the
external id `CDP_Profile_Id__c`; `define_field` adds custom `__c` fields. Values are checked by type (email
format, text length, numbers, booleans, dates); field names match exactly (Salesforce itself ignores case:
exact matching is the safe side). `poison(value)` makes every record holding that value fail its validation
rule (`FIELD_CUSTOM_VALIDATION_EXCEPTION`), every time. Faults are queued with `fail_next` and served in order:
request faults (`500`, `503`, `REQUEST_LIMIT_EXCEEDED` as SF-8's 403, `INVALID_SESSION_ID`, `drop`,
`accept_then_drop`, `timeout` held until the client hangs up) by the next /services/data call; record faults by
the next record that would be written: `UNABLE_TO_LOCK_ROW` fails it (a collections item or a failedResults row),
`UNPROCESSED` stops a bulk job there. `records`, `ids`, `writes`, `requests` and `jobs` let a test count.

Choices where the spec is silent or says "unverified" (the strict side, so a client that passes here is safe):
- A duplicate external id within one collections request fails the later copies with `DUPLICATE_VALUE`, the
  first is written (vector SF-7); within one bulk job every copy fails (§9.2 fake-server rules).
- An unknown field is a per-item `INVALID_FIELD` in collections and fails the whole bulk job; a missing external
  id value is a per-item `MISSING_ARGUMENT`; a record without `attributes.type` (or of another type) is a 400.
- A required field (LastName; Lead's Company) is required when the upsert creates the record, and may never be
  set to null; an update may leave it out.
- The `INVALID_SESSION_ID` fault expires every token, so a retry with the old token fails again. A token request
  must carry the client id and secret (the secret is optional for some real apps).
- Faults apply to /services/data calls only, never to the token endpoint; `kill` counts the record-carrying
  calls (collections upserts and bulk uploads).
"""

import contextlib
import json
import re
import sys
import threading
import time
from collections import Counter
from datetime import date, datetime
from urllib.parse import parse_qs

from tests.fakes._faulty_http import FaultyServer
from tests.fakes.salesforce_bulk import BulkIngest, Refused, sf_error

API_VERSION = "v62.0"
TOKEN_PATH = "/services/oauth2/token"
ORG_ID, USER_ID = "00DXX0000000001", "005XX000001"
FAULTS = ("UNABLE_TO_LOCK_ROW", "UNPROCESSED", "REQUEST_LIMIT_EXCEEDED", "500", "503", "INVALID_SESSION_ID",
          "drop", "accept_then_drop", "timeout")
RECORD_FAULTS = ("UNABLE_TO_LOCK_ROW", "UNPROCESSED")  # taken by the next record written, not the next request
REQUEST_FAULTS = tuple(f for f in FAULTS if f not in RECORD_FAULTS)
FIELD_TYPES = ("string", "email", "phone", "double", "int", "boolean", "date", "datetime")
PREFIXES = {"Contact": "003", "Lead": "00Q"}
REQUIRED = {"Contact": ("LastName",), "Lead": ("LastName", "Company")}
MAX_COLLECTION = 200
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
PARSERS = {"double": float, "int": int, "date": date.fromisoformat,
           "datetime": lambda v: datetime.fromisoformat(v.replace("Z", "+00:00"))}
FAULT_ANSWERS = {
    "500": (500, [{"message": "An unexpected error occurred. Please include this ErrorId if you contact support: "
                              "1234567890-1 (-1)", "errorCode": "UNKNOWN_EXCEPTION"}]),
    "503": (503, [{"message": "Server is unavailable", "errorCode": "SERVER_UNAVAILABLE"}]),
    "REQUEST_LIMIT_EXCEEDED": (403, [{"message": "TotalRequests Limit exceeded.",
                                      "errorCode": "REQUEST_LIMIT_EXCEEDED"}]),
    "INVALID_SESSION_ID": (401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])}
LOCK_MESSAGE = "unable to obtain exclusive access to this record or 1 records: 001XX0000000001AAA"


def item_error(code: str, message: str, fields: list[str] | None = None) -> dict:
    return {"statusCode": code, "message": message, "fields": fields or []}


def _coerce(ftype: str, length: int, name: str, value: object, from_csv: bool) -> object:
    """The stored value of `value` for a field of `ftype`; a bad value raises ValueError with the item error."""
    bad = ValueError(item_error("INVALID_TYPE_ON_FIELD_IN_RECORD", f"{name}: value not of required type: {value}",
                                [name]))
    if value is None:
        return None
    if ftype == "boolean":
        if isinstance(value, bool):
            return value
        if from_csv and str(value).lower() in ("true", "false", "1", "0"):
            return str(value).lower() in ("true", "1")
        raise bad
    numeric = ftype in ("double", "int")
    if isinstance(value, bool) or not isinstance(value, (str, int, float) if numeric else str):
        raise bad
    try:
        parsed = PARSERS.get(ftype, str)(value)
    except ValueError:
        raise bad from None
    if ftype == "email" and not EMAIL.fullmatch(value):
        raise ValueError(item_error("INVALID_EMAIL_ADDRESS", f"{name}: invalid email address: {value}", [name]))
    if not numeric and len(value) > length:
        raise ValueError(item_error("STRING_TOO_LONG", f"{name}: data value too large: {value} "
                                    f"(max length={length})", [name]))
    return parsed if numeric else value


class FakeSalesforce(BulkIngest, FaultyServer):
    answer_faults = tuple(FAULT_ANSWERS)
    other_faults = RECORD_FAULTS
    methods = ("GET", "POST", "PUT", "PATCH", "DELETE")
    tcp_nodelay = True

    def __init__(self, client_id: str = "sf-client", client_secret: str = "sf-secret",
                 refresh_token: str = "sf-refresh", api_version: str = API_VERSION, job_polls_until_done: int = 1,
                 api_limit: int = 100_000, max_upload_bytes: int = 150_000_000, keep_requests: bool = True) -> None:
        super().__init__()
        self._lock = threading.RLock()  # `_api` runs under it and takes record faults under it again
        self.client_id, self.client_secret, self.refresh_token = client_id, client_secret, refresh_token
        self.api_version = api_version
        self.job_polls_until_done = job_polls_until_done
        self.api_limit, self.api_usage = api_limit, 0
        self.max_upload_bytes = max_upload_bytes  # base64 size of one job's CSV [SF-UPLOAD]
        self.keep_requests = keep_requests
        self.tokens: set[str] = set()
        self.tokens_minted = 0
        # sobject -> field -> (type, max length, is external id)
        self.fields: dict[str, dict[str, tuple[str, int, bool]]] = {
            sobject: {"Email": ("email", 80, False), "FirstName": ("string", 40, False),
                      "LastName": ("string", 80, False), "Phone": ("phone", 40, False),
                      "CDP_Profile_Id__c": ("string", 255, True)} for sobject in PREFIXES}
        self.fields["Lead"]["Company"] = ("string", 255, False)
        self.records: dict[str, dict[str, dict]] = {sobject: {} for sobject in PREFIXES}
        self.ids: dict[tuple[str, str], str] = {}  # (sobject, external id) -> record Id
        self.writes: Counter = Counter()  # (sobject, external id) -> applied writes
        self.jobs: dict[str, dict] = {}
        self.poisoned: set[str] = set()
        self._serial = 0  # record and job ids

    def env(self) -> dict[str, str]:
        return {"SALESFORCE_INSTANCE_URL": self.url, "SALESFORCE_TOKEN_URL": self.url + TOKEN_PATH,
                "SALESFORCE_CLIENT_ID": self.client_id, "SALESFORCE_CLIENT_SECRET": self.client_secret,
                "SALESFORCE_REFRESH_TOKEN": self.refresh_token}

    # ---- test controls ------------------------------------------------------------------------------
    def define_field(self, sobject: str, name: str, type: str, length: int = 255, external_id: bool = False) -> None:
        """Register a custom field (API name ending `__c`) of one of FIELD_TYPES on Contact or Lead."""
        if sobject not in self.fields or not name.endswith("__c") or type not in FIELD_TYPES:
            raise ValueError(f"cannot define {sobject}.{name} of type {type}")
        self.fields[sobject][name] = (type, length, external_id)

    def add(self, sobject: str, external_id: str, **fields: object) -> str:
        """Seed an existing record (not counted in `writes`); its Id, as later upserts will answer it."""
        with self._lock:
            self.ids[(sobject, external_id)] = record_id = self._new_id(PREFIXES[sobject])
            self.records[sobject][external_id] = dict(fields)
        return record_id

    def fail_next(self, *faults: str) -> None:
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {FAULTS}")
        super().fail_next(*faults)

    def poison(self, value: str) -> None:
        self.poisoned.add(value)

    def expire_tokens(self) -> None:
        with self._lock:
            self.tokens.clear()

    # ---- faults -------------------------------------------------------------------------------------
    def _record_fault(self, kinds: tuple[str, ...]) -> str | None:
        """The queued fault if it is one of `kinds`: faults are served strictly in the order they were queued."""
        with self._lock:
            if self.faults and self.faults[0] in kinds:
                self.faults_served[self.faults[0]] += 1
                return self.faults.pop(0)
        return None

    # ---- OAuth ----------------------------------------------------------------------------------------
    def _token(self, form: dict[str, str]) -> tuple[int, dict]:
        grant = form.get("grant_type")
        if grant not in ("refresh_token", "client_credentials"):
            return 400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
        if form.get("client_id") != self.client_id:
            return 400, {"error": "invalid_client_id", "error_description": "client identifier invalid"}
        if form.get("client_secret") != self.client_secret:
            return 400, {"error": "invalid_client", "error_description": "invalid client credentials"}
        if grant == "refresh_token" and form.get("refresh_token") != self.refresh_token:
            return 400, {"error": "invalid_grant", "error_description": "expired access/refresh token"}
        self.tokens_minted += 1
        token = f"{ORG_ID}!AQ0AQ.fake-access-{self.tokens_minted}"
        self.tokens.add(token)
        return 200, {"access_token": token, "signature": "ZmFrZS1zaWduYXR1cmU=", "instance_url": self.url,
                     "id": f"{self.url}/id/{ORG_ID}/{USER_ID}", "token_type": "Bearer",
                     "issued_at": str(int(time.time() * 1000)), "token_format": "opaque"}

    # ---- records --------------------------------------------------------------------------------------
    def _new_id(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}XX{self._serial:010d}AAA"

    def _check(self, sobject: str, ext_field: str, values: dict, from_csv: bool) -> tuple[dict | None, dict | None]:
        """(the typed fields to write, None) or (None, the item error) for one record, faults included."""
        ext = values.get(ext_field)
        if ext in (None, ""):
            return None, item_error("MISSING_ARGUMENT", f"{ext_field} not specified")
        known = self.fields[sobject]
        typed = {}
        for name, value in values.items():
            if name not in known:
                return None, item_error("INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}")
            try:
                typed[name] = _coerce(*known[name][:2], name, value, from_csv)
            except ValueError as refused:
                return None, refused.args[0]
        merged = {**self.records[sobject].get(str(ext), {}), **typed}
        missing = [f for f in REQUIRED[sobject] if merged.get(f) in (None, "")]
        if missing:
            return None, item_error("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                                    missing)
        if self.poisoned & {str(v) for v in values.values() if v is not None}:
            return None, item_error("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Rejected by validation rule CDP_Test_Rule")
        if self._record_fault(("UNABLE_TO_LOCK_ROW",)):
            return None, item_error("UNABLE_TO_LOCK_ROW", LOCK_MESSAGE)
        return typed, None

    def _write(self, sobject: str, ext_field: str, typed: dict) -> tuple[str, bool]:
        ext = str(typed[ext_field])
        created = (sobject, ext) not in self.ids
        if created:
            self.ids[(sobject, ext)] = self._new_id(PREFIXES[sobject])
        self.records[sobject][ext] = {**self.records[sobject].get(ext, {}), **typed}
        self.writes[(sobject, ext)] += 1
        return self.ids[(sobject, ext)], created

    def _known(self, sobject: str, ext_field: str) -> None:
        if sobject not in self.fields:
            raise sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        if not self.fields[sobject].get(ext_field, ("", 0, False))[2]:
            raise sf_error(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: "
                                             f"{ext_field}")

    def _collections(self, sobject: str, ext_field: str, body: object) -> list[dict]:
        self._known(sobject, ext_field)
        records = body.get("records") if isinstance(body, dict) else None
        all_or_none = body.get("allOrNone", False) if isinstance(body, dict) else False
        if not isinstance(records, list) or not isinstance(all_or_none, bool):
            raise sf_error(400, "JSON_PARSER_ERROR", "the body needs a records array and a boolean allOrNone")
        if len(records) > MAX_COLLECTION:
            raise sf_error(400, "EXCEEDED_ID_LIMIT",
                           "record limit reached. cannot submit more than 200 records into this call")
        for index, record in enumerate(records):
            if not isinstance(record, dict) or (record.get("attributes") or {}).get("type") != sobject:
                raise sf_error(400, "INVALID_TYPE", f"records[{index}] needs attributes.type {sobject}")
        checked, seen = [], set()
        for record in records:
            values = {k: v for k, v in record.items() if k != "attributes"}
            ext = values.get(ext_field)
            ext = None if ext in (None, "") else str(ext)
            if ext in seen:
                checked.append((None, item_error("DUPLICATE_VALUE", f"Duplicate external id specified: {ext}")))
                continue
            typed, error = self._check(sobject, ext_field, values, from_csv=False)
            if typed is not None:
                seen.add(ext)
            checked.append((typed, error))
        if all_or_none and any(error for _, error in checked):
            rolled_back = item_error("ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back because not all "
                                     "records were valid and the request was using AllOrNone header")
            return [{"success": False, "errors": [error or rolled_back]} for _, error in checked]
        answer = []
        for typed, error in checked:
            if error:
                answer.append({"success": False, "errors": [error]})
            else:
                record_id, created = self._write(sobject, ext_field, typed)
                answer.append({"id": record_id, "success": True, "errors": [], "created": created})
        return answer

    # ---- dispatch -------------------------------------------------------------------------------------
    def _api(self, method: str, path: str, headers, raw: bytes) -> tuple[int, object]:
        """One /services/data call: (status, JSON-able answer, or str for CSV, or None for no body)."""
        self.api_usage += 1
        if self.api_usage > self.api_limit:
            raise sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            raise sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        match = re.fullmatch(r"/services/data/v(\d+)\.0/(.+?)/?", path)
        if not match:
            raise sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        version, parts = int(match.group(1)), match.group(2).split("/")
        if parts == ["limits"] and method == "GET":
            return 200, {"DailyApiRequests": {"Max": self.api_limit, "Remaining": self.api_limit - self.api_usage}}
        if len(parts) == 3 and parts[0] == "sobjects" and parts[2] == "describe" and method == "GET":
            return 200, self._describe(parts[1])
        if parts[:2] == ["composite", "sobjects"] and len(parts) == 4 and method == "PATCH" and version >= 46:
            return 200, self._collections(parts[2], parts[3], self._json(raw))
        if parts[:2] == ["jobs", "ingest"] and version >= 41:
            return self._bulk(method, parts[2:], headers, raw)
        raise sf_error(404, "NOT_FOUND", "The requested resource does not exist")

    def _describe(self, sobject: str) -> dict:
        """`GET …/sobjects/{SObject}/describe`, reduced to the field properties a sync reads."""
        if sobject not in self.fields:
            raise sf_error(404, "NOT_FOUND", "The requested resource does not exist")
        fields = [{"name": "Id", "type": "id", "length": 18, "externalId": False, "idLookup": True,
                   "nillable": False, "custom": False}]
        fields += [{"name": name, "type": ftype, "length": length, "externalId": external, "idLookup": external,
                    "nillable": name not in REQUIRED[sobject], "custom": name.endswith("__c")}
                   for name, (ftype, length, external) in self.fields[sobject].items()]
        return {"name": sobject, "custom": False, "fields": fields}

    @staticmethod
    def _json(raw: bytes) -> object:
        try:
            return json.loads(raw or b"null")
        except ValueError:
            raise sf_error(400, "JSON_PARSER_ERROR", "Unexpected character: the body is not JSON") from None

    @staticmethod
    def _carries_records(method: str, path: str) -> bool:
        return (method == "PATCH" and "/composite/sobjects/" in path) or (method == "PUT" and "/batches" in path)

    # ---- the wire -------------------------------------------------------------------------------------
    def _parse_body(self, path: str, headers, raw: bytes) -> object:
        """What `requests` logs: the token form, parsed JSON, else the text."""
        logged: object = _form(raw) if path == TOKEN_PATH else raw.decode("utf-8", "replace")
        if "json" in headers.get("Content-Type", ""):
            with contextlib.suppress(ValueError):
                logged = json.loads(raw)
        return logged

    def _log_entry(self, method: str, path: str, query: str, headers, body: object) -> dict | None:
        return {"method": method, "path": path, "headers": dict(headers), "body": body if self.keep_requests else None}

    def _take_fault(self, path: str, records: bool, killing: bool) -> str | None:
        """Request faults hit /services/data calls, in queue order; record faults wait for `_check` and `_bulk`."""
        return None if killing or not path.startswith("/services/data/") else self._record_fault(REQUEST_FAULTS)

    def _direct(self, method: str, path: str, headers, raw: bytes,
                body: object) -> tuple[int, object, dict[str, str]] | None:
        if path == TOKEN_PATH and method == "POST":
            with self._lock:
                return *self._token(_form(raw)), {}
        if not path.startswith("/services/data/"):
            return 404, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}], {}
        return None

    def _limit_info(self) -> dict[str, str]:
        with self._lock:
            return {"Sforce-Limit-Info": f"api-usage={self.api_usage}/{self.api_limit}"}

    def _encode(self, answer: object) -> tuple[bytes, str | None]:
        if answer is None:
            return b"", None
        if isinstance(answer, str):
            return answer.encode("utf-8"), "text/csv"
        return json.dumps(answer).encode("utf-8"), "application/json;charset=UTF-8"

    def _fault_answer(self, fault: str) -> tuple[int, object, dict[str, str]]:
        if fault == "INVALID_SESSION_ID":
            self.expire_tokens()
        return *FAULT_ANSWERS[fault], self._limit_info()

    def _handle(self, method: str, path: str, query: dict, headers, raw: bytes,
                body: object) -> tuple[int, object, dict[str, str]]:
        try:
            status, answer = self._api(method, path, headers, raw)
        except Refused as refused:
            status, answer = refused.status, refused.body
        return status, answer, self._limit_info()


def _form(raw: bytes) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}


if __name__ == "__main__":
    # A standalone fake for benchmarks: its work runs in its own process, not the measured one's.
    with FakeSalesforce(keep_requests=False) as server:
        print(server.url, flush=True)
        sys.stdin.read()  # serve until the parent closes our stdin
