"""Local fakes of the ad platforms' APIs on 127.0.0.1, speaking their wire formats, on one port.

Routes: Meta Graph (`/{ver}/{pixel}/events`, `/{ver}/{audience}/users` POST/DELETE, `/usersreplace`),
Google OAuth (`/token`) and Google Ads (`:uploadClickConversions`, `offlineUserDataJobs:create`,
`:addOperations`, `:run`, `googleAds:search`), TikTok (`/open_api/v1.3/event/track/`) and Pinterest
(`/v5/ad_accounts/{id}/events`). Bodies are validated like the real APIs: batch limits, required fields,
event-time windows, and any identifier that is not 64 lowercase hex is refused as raw personal data.
Accepted events are counted by id; Meta, TikTok and Pinterest web events are deduplicated by id like
the platforms do, and `deliveries` counts every accepted copy so a test can prove nothing arrived twice.
Faults are queued (`fail_next`) or drawn at a seeded rate: 429 with Retry-After, 500, a platform's
transient code, a timeout, a dropped connection, an auth error; `kill` SIGKILLs a client process on a
given request, before or after the fake accepted it. A timeout holds the answer until the client gives up
and hangs up, so it lasts exactly the client's read timeout, however loaded the machine is.
"""

import json
import os
import random
import re
import signal
import sys
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

HEX64 = re.compile(r"[0-9a-f]{64}")
META_TOKEN, GOOGLE_ACCESS, GOOGLE_REFRESH, TIKTOK_TOKEN, PINTEREST_TOKEN = (
    "meta-secret-token", "google-access-token", "google-refresh-token", "tiktok-secret-token", "pinterest-token")
DEVELOPER_TOKEN = "google-dev-token"
FAULTS = ("429", "500", "transient", "timeout", "drop")
HANG_UP_WAIT_SECONDS = 300  # a client that never times out is a test bug; the fake stops waiting after this
# external_id is not among them: Meta accepts it unhashed (hashing is recommended; its SDK sends it raw).
META_HASHED = ("em", "ph", "fn", "ln", "ct", "st", "zp", "country", "ge", "db")
CA_HASHED = {"EMAIL", "PHONE", "FN", "LN", "CT", "ST", "ZIP", "COUNTRY"}


class Refused(Exception):
    def __init__(self, status: int, body: dict) -> None:
        super().__init__(str(body))
        self.status, self.body = status, body


def meta_error(code: int, message: str, subcode: int | None = None, transient: bool = False, status: int = 400):
    return Refused(status, {"error": {"message": message, "type": "OAuthException", "code": code,
                                      "error_subcode": subcode, "is_transient": transient, "fbtrace_id": "AbCtrace"}})


def google_error(status: int, state: str, message: str, code: dict | None = None):
    details = [{"@type": "type.googleapis.com/google.ads.googleads.v22.errors.GoogleAdsFailure",
                "errors": [{"errorCode": code or {}, "message": message}]}]
    return Refused(status, {"error": {"code": status, "status": state, "message": message, "details": details}})


class FakeAds:
    def __init__(self, fault_rate: float = 0.0, seed: int = 11, job_polls_until_done: int = 1,
                 keep_requests: bool = True) -> None:
        self.keep_requests = keep_requests
        self.fault_rate = fault_rate
        self.faults: list[str] = []
        self.faults_served: Counter = Counter()
        self.busy_seconds = 0.0  # time spent reading, checking and answering requests
        self.poison: set[str] = set()  # event ids (or member hashes) the platform refuses
        self.accepted: dict[str, set] = defaultdict(set)
        self.deliveries: Counter = Counter()
        self.requests: list[dict] = []
        self.audiences: dict[str, set[str]] = defaultdict(set)
        self.audience_ops: Counter = Counter()
        self.replace_sessions: dict[tuple[str, int], set[str]] = {}
        self.sessions: dict[tuple[str, int], list[int]] = defaultdict(list)
        self.jobs: dict[str, dict] = {}
        self.job_polls_until_done = job_polls_until_done
        self.kill_plan: tuple[int, int, bool] | None = None
        self.now = time.time
        self._requests_seen = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def env(self) -> dict[str, str]:
        """The variables that point every destination at this fake, with valid credentials."""
        return self.env_for(self.url)

    @staticmethod
    def env_for(url: str) -> dict[str, str]:
        return {
            "META_GRAPH_URL": url, "META_ACCESS_TOKEN": META_TOKEN, "META_PIXEL_ID": "1234567890",
            "META_AD_ACCOUNT_ID": "act_42", "GOOGLE_ADS_API_URL": url,
            "GOOGLE_OAUTH_TOKEN_URL": f"{url}/token",
            "GOOGLE_ADS_DEVELOPER_TOKEN": DEVELOPER_TOKEN, "GOOGLE_ADS_CLIENT_ID": "client-id",
            "GOOGLE_ADS_CLIENT_SECRET": "client-secret", "GOOGLE_ADS_REFRESH_TOKEN": GOOGLE_REFRESH,
            "GOOGLE_ADS_CUSTOMER_ID": "123-456-7890", "GOOGLE_ADS_CONVERSION_ACTION": "777",
            "TIKTOK_API_URL": url, "TIKTOK_ACCESS_TOKEN": TIKTOK_TOKEN, "TIKTOK_PIXEL_CODE": "CPIXEL",
            "TIKTOK_ADVERTISER_ID": "adv-1", "PINTEREST_API_URL": url, "PINTEREST_ACCESS_TOKEN": PINTEREST_TOKEN,
            "PINTEREST_AD_ACCOUNT_ID": "549755885175",
        }

    def __enter__(self) -> "FakeAds":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, *faults: str) -> None:
        self.faults.extend(faults)

    def kill(self, pid: int, on_request: int, after_accepting: bool) -> None:
        """SIGKILL `pid` when the `on_request`-th record-carrying request arrives, before or after accepting it."""
        self.kill_plan = (pid, on_request, after_accepting)

    def duplicates(self, platform: str) -> int:
        return sum(n - 1 for (p, _), n in self.deliveries.items() if p == platform and n > 1)

    # ---- faults ---------------------------------------------------------------------------------------
    def _fault(self) -> str | None:
        with self._lock:
            if self.faults:
                return self.faults.pop(0)
            if self.fault_rate and self._random.random() < self.fault_rate:
                return self._random.choice(FAULTS)
        return None

    # ---- Meta -----------------------------------------------------------------------------------------
    def _meta_auth(self, headers) -> None:
        if headers.get("Authorization") != f"Bearer {META_TOKEN}":
            raise meta_error(190, "Invalid OAuth 2.0 Access Token", 463)

    def _meta_events(self, body: dict, accept: bool) -> dict:
        data = body.get("data")
        if not isinstance(data, list) or not data:
            raise meta_error(100, "The parameter data is required")
        if len(data) > 1000:
            raise meta_error(100, "Too many events in one request: at most 1000", 2804019)
        now = self.now()
        for event in data:
            for field in ("event_name", "event_time", "action_source", "user_data", "event_id"):
                if field not in event:
                    raise meta_error(100, f"Missing {field}", 2804001)
            if not isinstance(event["event_time"], int):
                raise meta_error(100, "event_time must be an integer of seconds", 2804007)
            limit = 62 if event["action_source"] == "physical_store" else 7
            if event["event_time"] < now - limit * 86400:
                raise meta_error(100, "Event Timestamp Too Old", 2804003)
            if event["event_time"] > now + 60:
                raise meta_error(100, "Event Timestamp In The Future", 2804004)
            user = event["user_data"]
            for field in META_HASHED:
                for value in user.get(field) or []:
                    if not HEX64.fullmatch(value):
                        raise meta_error(100, f"user_data.{field} must be hashed with SHA-256", 2804016)
            if event["action_source"] == "website" and not (user.get("client_user_agent")
                                                            and event.get("event_source_url")):
                raise meta_error(100, "website events need client_user_agent and event_source_url", 2804017)
            if event["event_name"] == "Purchase" and not (event.get("custom_data") or {}).get("currency"):
                raise meta_error(100, "Missing Value for Purchase Event", 2804009)
            if event["event_id"] in self.poison:
                raise meta_error(100, "Invalid parameter", 2804048)
        if accept:
            with self._lock:
                for event in data:
                    key = (event["event_name"], event["event_id"])
                    self.deliveries[("meta", key)] += 1
                    self.accepted["meta"].add(key)  # Meta keeps the first of (event_name, event_id)
        return {"events_received": len(data), "messages": [], "fbtrace_id": "AbCtrace"}

    def _meta_audience(self, method: str, audience: str, replace: bool, body: dict, accept: bool) -> dict:
        payload, session = body.get("payload") or {}, body.get("session") or {}
        schema, data = payload.get("schema") or [], payload.get("data") or []
        if len(data) > 10_000:
            raise meta_error(105, "The number of parameters exceeded the maximum for this operation")
        if not session.get("session_id") or not session.get("batch_seq"):
            raise meta_error(100, "session with session_id and batch_seq is required")
        for row in data:
            if len(row) != len(schema):
                raise meta_error(100, "each row must follow the schema")
            for column, value in zip(schema, row, strict=True):
                if column in CA_HASHED and value and not HEX64.fullmatch(value):
                    raise meta_error(100, f"{column} must be hashed with SHA-256")
        keys = [row[schema.index("EMAIL")] or row[schema.index("PHONE")] for row in data]
        if set(keys) & self.poison:
            raise meta_error(100, "Invalid parameter: a row could not be read")
        if not accept:
            return {}
        with self._lock:
            self.sessions[(audience, session["session_id"])].append(session["batch_seq"])
            op = "replace" if replace else ("remove" if method == "DELETE" else "add")
            for key in keys:
                self.audience_ops[(audience, op, key)] += 1
            if replace:
                members = self.replace_sessions.setdefault((audience, session["session_id"]), set())
                members.update(keys)
                if session.get("last_batch_flag"):
                    self.audiences[audience] = set(members)
            elif method == "DELETE":
                self.audiences[audience].difference_update(keys)
            else:
                self.audiences[audience].update(keys)
        return {"audience_id": audience, "session_id": str(session["session_id"]), "num_received": len(data),
                "num_invalid_entries": 0, "invalid_entry_samples": {}}

    # ---- Google ---------------------------------------------------------------------------------------
    def _google_auth(self, headers) -> None:
        if headers.get("Authorization") != f"Bearer {GOOGLE_ACCESS}":
            raise google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if headers.get("developer-token") != DEVELOPER_TOKEN:
            raise google_error(403, "PERMISSION_DENIED", "The developer token is not valid.")

    def _user_identifiers(self, identifiers: list[dict]) -> str | None:
        first = None
        for identifier in identifiers:
            for key in ("hashedEmail", "hashedPhoneNumber"):
                if key in identifier:
                    if not HEX64.fullmatch(identifier[key]):
                        raise google_error(400, "INVALID_ARGUMENT", f"{key} must be SHA-256 hex",
                                           {"offlineUserDataJobError": "INVALID_SHA256_FORMAT"})
                    first = first or identifier[key]
        return first

    def _google_conversions(self, body: dict, accept: bool) -> dict:
        conversions = body.get("conversions") or []
        if len(conversions) > 2000:
            raise google_error(400, "INVALID_ARGUMENT", "Too many conversions in one request",
                               {"requestError": "TOO_MANY_OPERATIONS"})
        errors, results = [], []
        for index, conversion in enumerate(conversions):
            self._user_identifiers(conversion.get("userIdentifiers") or [])
            if not re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d", conversion["conversionDateTime"]):
                raise google_error(400, "INVALID_ARGUMENT", "conversionDateTime has the wrong format",
                                   {"dateError": "INVALID_FIELD_VALUES_IN_DATE_TIME"})
            if conversion["orderId"] in self.poison:
                errors.append({"errorCode": {"conversionUploadError": "UNPARSEABLE_GCLID"},
                               "message": "The click identifier could not be decoded.",
                               "location": {"fieldPathElements": [{"fieldName": "conversions", "index": index},
                                                                  {"fieldName": "gclid"}]}})
                results.append({})
                continue
            results.append({"orderId": conversion["orderId"]})
            if accept:
                with self._lock:
                    key = conversion["orderId"]
                    self.deliveries[("google", key)] += 1
                    self.accepted["google"].add(key)
        answer: dict = {"results": results}
        if errors:
            answer["partialFailureError"] = {"code": 3, "message": "Some conversions failed", "details": [
                {"@type": "type.googleapis.com/google.ads.googleads.v22.errors.GoogleAdsFailure", "errors": errors}]}
        return answer

    def _google_job(self, path: str, body: dict, accept: bool) -> dict:
        if path.endswith("offlineUserDataJobs:create"):
            customer = path.split("/")[3]
            name = f"customers/{customer}/offlineUserDataJobs/{len(self.jobs) + 1}"
            self.jobs[name] = {"status": "PENDING", "operations": [], "polls": 0,
                               "userList": body["job"]["customerMatchUserListMetadata"]["userList"]}
            return {"resourceName": name}
        if path.endswith(":addOperations"):
            job = self.jobs[path.split("/", 2)[2].rsplit(":", 1)[0]]
            operations = body.get("operations") or []
            identifiers = sum(len(v.get("userIdentifiers", [])) for op in operations for v in op.values()
                              if isinstance(v, dict))
            if identifiers > 100_000:
                raise google_error(400, "INVALID_ARGUMENT", "Too many identifiers", {"requestError": "TOO_MANY"})
            for op in operations:
                if "create" in op or "remove" in op:
                    key = self._user_identifiers((op.get("create") or op.get("remove"))["userIdentifiers"])
                    if accept:
                        verb = "add" if "create" in op else "remove"
                        self.audience_ops[(job["userList"], verb, key)] += 1
                        job["operations"].append((verb, key))
                elif accept:
                    job["operations"].append(("remove_all", None))
            return {}
        if path.endswith(":run"):
            job = self.jobs[path.split("/", 2)[2].rsplit(":", 1)[0]]
            job["status"] = "RUNNING"
            members = self.audiences[job["userList"]]
            for verb, key in job["operations"]:
                if verb == "remove_all":
                    members.clear()
                elif verb == "add":
                    members.add(key)
                else:
                    members.discard(key)
            return {"name": f"operations/{path}"}
        if path.endswith("googleAds:search"):
            name = re.search(r"resource_name = '([^']+)'", body["query"]).group(1)
            job = self.jobs[name]
            if job["status"] == "RUNNING":
                job["polls"] += 1
                if job["polls"] >= self.job_polls_until_done:
                    job["status"] = "SUCCESS"
            return {"results": [{"offlineUserDataJob": {"resourceName": name, "status": job["status"]}}]}
        raise google_error(404, "NOT_FOUND", f"no route {path}")

    # ---- TikTok ---------------------------------------------------------------------------------------
    def _tiktok(self, headers, body: dict, accept: bool) -> dict:
        if headers.get("Access-Token") != TIKTOK_TOKEN:
            return {"code": 40001, "message": "Access token is invalid", "request_id": "tt-req"}
        data = body.get("data") or []
        if len(data) > 1000 or body.get("event_source") not in ("web", "app", "offline", "crm"):
            return {"code": 40002, "message": "Batch: too many events or bad event_source", "request_id": "tt-req"}
        for n, event in enumerate(data):
            for field in ("email", "phone", "external_id"):
                for value in (event.get("user") or {}).get(field) or []:
                    if not HEX64.fullmatch(value):
                        return {"code": 40002, "message": f"Batch.{n}.user.{field}: must be SHA-256",
                                "request_id": "tt-req"}
            if event.get("event_id") in self.poison:
                return {"code": 40002, "message": f"Batch.{n}.properties.contents.0.content_id: Not a valid string",
                        "request_id": "tt-req"}
        if accept:
            with self._lock:
                for event in data:
                    key = (event["event"], event["event_id"])
                    self.deliveries[("tiktok", key)] += 1
                    self.accepted["tiktok"].add(key)
        return {"code": 0, "message": "OK", "request_id": "tt-req", "data": {}}

    # ---- Pinterest ------------------------------------------------------------------------------------
    def _pinterest(self, headers, body: dict, accept: bool) -> dict:
        if headers.get("Authorization") != f"Bearer {PINTEREST_TOKEN}":
            raise Refused(401, {"code": 2, "message": "Authentication failed."})
        data = body.get("data") or []
        if len(data) > 1000:
            raise Refused(400, {"code": 1, "message": "Too many events"})
        events = []
        for event in data:
            user = event.get("user_data") or {}
            bad = [f for f in ("em", "ph", "external_id") for v in user.get(f) or [] if not HEX64.fullmatch(v)]
            if bad or event.get("event_id") in self.poison:
                events.append({"status": "failed", "error_message": f"invalid {bad or 'event'}"})
                continue
            if not isinstance(event["custom_data"]["value"], str):
                events.append({"status": "failed", "error_message": "custom_data.value must be a string"})
                continue
            events.append({"status": "processed", "error_message": "", "warning_message": ""})
            if accept:
                with self._lock:
                    key = (event["event_name"], event["event_id"])
                    self.deliveries[("pinterest", key)] += 1
                    self.accepted["pinterest"].add(key)
        processed = sum(1 for e in events if e["status"] == "processed")
        return {"num_events_received": len(data), "num_events_processed": processed, "events": events}

    # ---- dispatch -------------------------------------------------------------------------------------
    def _route(self, method: str, path: str, headers, body: dict, accept: bool) -> tuple[int, dict]:
        if path == "/token":
            return 200, {"access_token": GOOGLE_ACCESS, "expires_in": 3599, "token_type": "Bearer"}
        if path.startswith("/open_api/"):
            return 200, self._tiktok(headers, body, accept)
        if path.startswith("/v5/ad_accounts/"):
            return 200, self._pinterest(headers, body, accept)
        if "/customers/" in path or path.startswith("/v22/customers"):
            self._google_auth(headers)
            if path.endswith(":uploadClickConversions"):
                return 200, self._google_conversions(body, accept)
            return 200, self._google_job(path, body, accept)
        self._meta_auth(headers)
        parts = path.strip("/").split("/")
        if parts[-1] == "events":
            return 200, self._meta_events(body, accept)
        if parts[-1] in ("users", "usersreplace"):
            return 200, self._meta_audience(method, parts[-2], parts[-1] == "usersreplace", body, accept)
        raise meta_error(100, f"Unknown path {path}", status=404)

    def _carries_records(self, path: str) -> bool:
        return path.endswith(("/events", "/users", "/usersreplace", ":uploadClickConversions", "/track/",
                              ":addOperations"))

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, answer: dict, extra: dict | None = None) -> None:
                data = json.dumps(answer).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (extra or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _drop(self) -> None:
                self.close_connection = True
                self.connection.shutdown(2)

            def _wait_for_hang_up(self) -> None:
                # Never answered: the client's read timeout ends the wait when it closes the connection.
                self.close_connection = True
                self.connection.settimeout(HANG_UP_WAIT_SECONDS)
                try:
                    while self.connection.recv(65536):
                        pass
                except OSError:
                    pass

            def _serve(self, method: str) -> None:
                started = time.perf_counter()
                try:
                    self._serve_timed(method)
                finally:
                    with fake._lock:
                        fake.busy_seconds += time.perf_counter() - started

            def _serve_timed(self, method: str) -> None:
                path = self.path.split("?", 1)[0]
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                form = self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
                if path == "/token":
                    body = {}
                elif form:
                    # Meta's SDK posts a form: `data` is a JSON list of JSON-encoded events, the token a field.
                    fields = {k: v[0] for k, v in parse_qs(raw.decode("utf-8")).items()}
                    body = {**fields, "data": [json.loads(e) if isinstance(e, str) else e
                                               for e in json.loads(fields.get("data", "[]"))]}
                    query = {k: v[0] for k, v in parse_qs(self.path.partition("?")[2]).items()}
                    if META_TOKEN in (fields.get("access_token"), query.get("access_token")):
                        self.headers["Authorization"] = f"Bearer {META_TOKEN}"
                else:
                    body = json.loads(raw or b"{}")
                records = fake._carries_records(path)
                with fake._lock:
                    fake.requests.append({"method": method, "path": path, "headers": dict(self.headers),
                                          "body": body if fake.keep_requests else None})
                    if records:
                        fake._requests_seen += 1
                    seen = fake._requests_seen
                kill = fake.kill_plan if records and fake.kill_plan and fake.kill_plan[1] == seen else None
                if kill and not kill[2]:
                    os.kill(kill[0], signal.SIGKILL)
                    self._drop()
                    return
                fault = fake._fault() if records else None
                fake.faults_served[fault] += 1
                if fault == "429":
                    self._answer(429, {"error": {"code": 429, "message": "Too many requests"}}, {"Retry-After": "0"})
                    return
                if fault == "500":
                    self._answer(500, {"error": {"code": 500, "message": "Internal error"}})
                    return
                if fault == "timeout":
                    self._wait_for_hang_up()
                    return
                if fault == "drop":
                    self._drop()
                    return
                if fault == "transient":
                    status, answer = fake._transient(path)
                    self._answer(status, answer)
                    return
                if fault == "auth":
                    status, answer = fake._auth_failure(path)
                    self._answer(status, answer)
                    return
                try:
                    status, answer = fake._route(method, path, self.headers, body, accept=True)
                except Refused as refused:
                    status, answer = refused.status, refused.body
                if fault == "accept_then_drop" or kill:
                    if kill:
                        os.kill(kill[0], signal.SIGKILL)
                    self._drop()
                    return
                self._answer(status, answer)

            def do_POST(self) -> None:
                self._serve("POST")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

            def do_GET(self) -> None:
                if self.path == "/_stats":
                    with fake._lock:
                        self._answer(200, {"accepted": {p: len(k) for p, k in fake.accepted.items()},
                                           "duplicates": {p: fake.duplicates(p) for p in fake.accepted},
                                           "requests": len(fake.requests),
                                           "busy_seconds": round(fake.busy_seconds, 2)})
                else:
                    self._answer(404, {"error": "no such route"})

        return Handler

    def _transient(self, path: str) -> tuple[int, dict]:
        if path.startswith("/open_api/"):
            return 200, {"code": 40100, "message": "Too many requests. Please retry in some time.", "request_id": "t"}
        if "/customers/" in path:
            return 503, google_error(503, "UNAVAILABLE", "The service is currently unavailable.").body
        if path.startswith("/v5/"):
            return 503, {"code": 503, "message": "The endpoint has been ramped down"}
        return 500, meta_error(2, "Service temporarily unavailable", transient=True, status=500).body

    def _auth_failure(self, path: str) -> tuple[int, dict]:
        if path.startswith("/open_api/"):
            return 200, {"code": 40001, "message": "Access token is invalid", "request_id": "t"}
        if "/customers/" in path:
            return 403, google_error(403, "PERMISSION_DENIED", "The caller does not have permission").body
        if path.startswith("/v5/"):
            return 401, {"code": 2, "message": "Authentication failed."}
        return 400, meta_error(190, "Error validating access token: Session has expired", 463).body


if __name__ == "__main__":
    # A standalone fake for benchmarks: its work runs in its own process, not the measured one's.
    with FakeAds(keep_requests=False) as server:
        print(server.url, flush=True)
        sys.stdin.read()  # serve until the parent closes our stdin
