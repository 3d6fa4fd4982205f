"""A local fake of HubSpot's CRM API on 127.0.0.1, speaking its real JSON shapes.

Serves the account details (company currency), the v3 search endpoint (filterGroups on the
modification property, ascending sort, `after` paging, `total`, and an error past the result cap like
HubSpot's 10,000), the v3 archived list, and the v4 batch association read. Faults (429 with Retry-After,
500) can be queued for the next requests; every request is recorded with its time and Authorization
header.
"""

import json
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

MODIFIED = {"contacts": "lastmodifieddate", "deals": "hs_lastmodifieddate"}


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


class FakeHubSpot:
    def __init__(self, token: str = "pat-test-token", result_cap: int = 10_000) -> None:
        self.token = token
        self.result_cap = result_cap
        self.objects: dict[str, dict[str, dict]] = {"contacts": {}, "deals": {}}
        self.associations: dict[str, list[str]] = {}
        self.faults: list[tuple[int, dict[str, str]]] = []
        self.requests: list[dict] = []
        self.company_currency = "USD"
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "FakeHubSpot":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, object_type: str, record_id: str, modified: str, archived_at: str | None = None,
            **properties: str) -> None:
        props = {**properties, MODIFIED[object_type]: modified, "hs_object_id": record_id}
        self.objects[object_type][record_id] = {
            "id": record_id, "properties": props, "createdAt": modified, "updatedAt": modified,
            "archived": archived_at is not None, **({"archivedAt": archived_at} if archived_at else {}),
        }

    def fail_next(self, status: int, retry_after: str | None = None) -> None:
        self.faults.append((status, {"Retry-After": retry_after} if retry_after else {}))

    def _search(self, object_type: str, body: dict) -> tuple[int, dict]:
        modified = MODIFIED[object_type]
        matching = [r for r in self.objects[object_type].values() if not r["archived"]]
        for group in body.get("filterGroups", []):
            for f in group["filters"]:
                assert f["propertyName"] == modified, f
                bound = int(f["value"])
                test = {"GTE": lambda v, b=bound: v >= b, "LT": lambda v, b=bound: v < b}[f["operator"]]
                matching = [r for r in matching if test(_ms(r["properties"][modified]))]
        matching.sort(key=lambda r: (_ms(r["properties"][modified]), int(r["id"])))
        offset, limit = int(body.get("after", 0)), int(body.get("limit", 10))
        if offset >= self.result_cap:
            return 400, {"status": "error", "category": "VALIDATION_ERROR",
                         "message": f"Search results are limited to {self.result_cap} records"}
        wanted = set(body.get("properties", []))
        page = [{**r, "properties": {k: v for k, v in r["properties"].items() if k in wanted or k == modified}}
                for r in matching[offset:offset + limit]]
        answer = {"total": len(matching), "results": page}
        if offset + limit < len(matching):
            answer["paging"] = {"next": {"after": str(offset + limit)}}
        return 200, answer

    def _archived(self, object_type: str, query: dict) -> tuple[int, dict]:
        gone = sorted((r for r in self.objects[object_type].values() if r["archived"]), key=lambda r: int(r["id"]))
        offset, limit = int(query.get("after", ["0"])[0]), int(query.get("limit", ["10"])[0])
        answer = {"results": gone[offset:offset + limit]}
        if offset + limit < len(gone):
            answer["paging"] = {"next": {"after": str(offset + limit), "link": "?after=" + str(offset + limit)}}
        return 200, answer

    def _associations(self, body: dict) -> tuple[int, dict]:
        results = [{"from": {"id": i["id"]},
                    "to": [{"toObjectId": int(c), "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None}]}
                           for c in self.associations.get(i["id"], [])]}
                   for i in body["inputs"] if self.associations.get(i["id"])]
        return 200, {"status": "COMPLETE", "results": results}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else {}
                fake.requests.append({"method": method, "path": url.path, "body": body, "at": time.monotonic(),
                                      "authorization": self.headers.get("Authorization")})
                if fake.faults:
                    status, headers = fake.faults.pop(0)
                    self._answer(status, {"status": "error", "message": "injected fault"}, headers)
                    return
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    self._answer(401, {"status": "error", "category": "INVALID_AUTHENTICATION"})
                    return
                parts = url.path.strip("/").split("/")
                if method == "POST" and parts[:3] == ["crm", "v3", "objects"] and parts[-1] == "search":
                    self._answer(*fake._search(parts[3], body))
                elif method == "GET" and parts[:3] == ["crm", "v3", "objects"] and len(parts) == 4:
                    self._answer(*fake._archived(parts[3], parse_qs(url.query)))
                elif method == "GET" and url.path == "/account-info/v3/details":
                    self._answer(200, {"portalId": 62515, "timeZone": "US/Eastern", "utcOffset": "-05:00",
                                       "companyCurrency": fake.company_currency, "additionalCurrencies": [],
                                       "dataHostingLocation": "na1", "uiDomain": "app.hubspot.com"})
                elif method == "POST" and url.path == "/crm/v4/associations/deals/contacts/batch/read":
                    self._answer(*fake._associations(body))
                else:
                    self._answer(404, {"status": "error", "message": f"no route {method} {url.path}"})

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

        return Handler
