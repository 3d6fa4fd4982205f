"""A local fake of the GA4 Data API (v1beta) on 127.0.0.1, speaking its REST wire format.

`POST /v1beta/properties/{id}:runReport` takes the camelCase JSON body the real client sends (limit and
offset as strings, offset 0 omitted), answers rows for the requested dimensions and metrics within the
date range, applies the dimension filter (string, in-list, not, and, or), sorts by `orderBys`, caps a
page at `max_page_rows` like the API's 250,000, and returns `rowCount`, `metadata` and, when asked,
`propertyQuota`. Each request costs tokens from a per-day budget; at zero, requests get the API's 429
RESOURCE_EXHAUSTED answer. Faults (429, 503) can be queued or drawn at a seeded rate, every request refused
(403 PERMISSION_DENIED, as when the service account lost access to the property), and metadata
flags (data loss, thresholding, sampling) set per day. Every request body is recorded.
"""

import json
import random
import re
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = re.compile(r"^/v1beta/properties/(\d+):runReport$")
FAULT_MESSAGES = {
    403: ("PERMISSION_DENIED", "User does not have sufficient permissions for this property. To learn more about "
                               "Property ID, see https://developers.google.com/analytics/devguides/reporting/data/v1/property-id."),
    429: ("RESOURCE_EXHAUSTED", "Too many concurrent requests for this property. Please retry."),
    503: ("UNAVAILABLE", "The service is currently unavailable."),
}


# The client asks for `enum-encoding=int`, so enums arrive as numbers; names are accepted too.
MATCH_TYPES = {1: "EXACT", 2: "BEGINS_WITH", 3: "ENDS_WITH", 4: "CONTAINS", 5: "FULL_REGEXP", 6: "PARTIAL_REGEXP"}


def _string_match(value: str, spec: dict) -> bool:
    target = spec.get("value", "")
    case = spec.get("caseSensitive", False)
    left, right = (value, target) if case else (value.lower(), target.lower())
    kind = spec.get("matchType", "EXACT")
    kind = MATCH_TYPES.get(kind, kind)
    return {
        "EXACT": lambda: left == right, "BEGINS_WITH": lambda: left.startswith(right),
        "ENDS_WITH": lambda: left.endswith(right), "CONTAINS": lambda: right in left,
        "FULL_REGEXP": lambda: re.fullmatch(target, value) is not None,
        "PARTIAL_REGEXP": lambda: re.search(target, value) is not None,
    }[kind]()


def _matches(row: dict, expression: dict | None) -> bool:
    if not expression:
        return True
    if "andGroup" in expression:
        return all(_matches(row, e) for e in expression["andGroup"]["expressions"])
    if "orGroup" in expression:
        return any(_matches(row, e) for e in expression["orGroup"]["expressions"])
    if "notExpression" in expression:
        return not _matches(row, expression["notExpression"])
    condition = expression["filter"]
    value = row[condition["fieldName"]]
    if "stringFilter" in condition:
        return _string_match(value, condition["stringFilter"])
    if "inListFilter" in condition:
        return value in condition["inListFilter"]["values"]
    raise ValueError(f"the fake does not implement {condition}")


class FakeGA4:
    def __init__(self, property_id: str = "123456", max_page_rows: int = 250_000, tokens_per_day: int = 200_000,
                 time_zone: str = "UTC", currency: str = "USD", fault_rate: float = 0.0, seed: int = 7) -> None:
        self.property_id = property_id
        self.max_page_rows = max_page_rows
        self.tokens_left = tokens_per_day
        self.tokens_per_day = tokens_per_day
        self.time_zone = time_zone
        self.currency = currency
        self.fault_rate = fault_rate
        self.types: dict[str, str] = {}
        self.rows: list[dict[str, str]] = []
        self.faults: list[int] = []
        self.refuse: int | None = None  # answer every request with this fault (403: access revoked)
        self.flags: dict[str, set[str]] = {"data_loss": set(), "thresholded": set(), "sampled": set()}
        self.requests: list[dict] = []
        self.answered: list[int] = []
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "FakeGA4":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_rows(self, rows: Iterable[dict[str, str]], metric_types: dict[str, str]) -> None:
        """Rows hold every dimension and metric the reports ask for, values as strings, `date` as YYYYMMDD."""
        self.rows.extend(rows)
        self.types.update(metric_types)

    def fail_next(self, *statuses: int) -> None:
        self.faults.extend(statuses)

    def expected(self, dimensions: list[str], metrics: list[str], start: str, end: str,
                 dimension_filter: dict | None = None) -> list[tuple]:
        """The rows a report over [start, end] (YYYYMMDD) must end up with, as (dims..., metrics...)."""
        fields = (*dimensions, *metrics)
        return sorted(tuple(r[f] for f in fields) for r in self._rows_for(fields)
                      if start <= r["date"] <= end and _matches(r, dimension_filter))

    def _rows_for(self, fields: tuple[str, ...]) -> list[dict[str, str]]:
        # One row list serves several reports: a report sees the rows that hold every field it asks for.
        return [r for r in self.rows if all(f in r for f in fields)]

    def _fault(self) -> int | None:
        with self._lock:
            if self.refuse is not None:
                return self.refuse
            if self.faults:
                return self.faults.pop(0)
            if self.fault_rate and self._random.random() < self.fault_rate:
                return self._random.choice([429, 503])
        return None

    def _report(self, body: dict) -> tuple[int, dict]:
        dimensions = [d["name"] for d in body.get("dimensions", [])]
        metrics = [m["name"] for m in body.get("metrics", [])]
        (date_range,) = body["dateRanges"]
        start, end = date_range["startDate"].replace("-", ""), date_range["endDate"].replace("-", "")
        selected = [r for r in self._rows_for((*dimensions, *metrics))
                    if start <= r["date"] <= end and _matches(r, body.get("dimensionFilter"))]
        for order in reversed(body.get("orderBys", [])):
            name = order["dimension"]["dimensionName"]
            selected.sort(key=lambda r, n=name: r[n], reverse=bool(order.get("desc")))
        offset = int(body.get("offset", "0"))
        limit = min(int(body.get("limit", "10000")), self.max_page_rows)
        page = selected[offset:offset + limit]
        days = {r["date"] for r in selected}
        cost = 10 + len(page) // 100
        with self._lock:
            if self.tokens_left <= 0:
                return 429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": (
                    "Exhausted property tokens per day quota. Consider waiting until tomorrow for more quota.")}}
            self.tokens_left = max(0, self.tokens_left - cost)
            left = self.tokens_left
        metadata = {"currencyCode": self.currency, "timeZone": self.time_zone}
        if days & self.flags["data_loss"]:
            metadata["dataLossFromOtherRow"] = True
        if days & self.flags["thresholded"]:
            metadata["subjectToThresholding"] = True
        if days & self.flags["sampled"]:
            metadata["samplingMetadatas"] = [{"samplesReadCount": "5000", "samplingSpaceSize": "20000"}]
        answer = {
            "dimensionHeaders": [{"name": d} for d in dimensions],
            "metricHeaders": [{"name": m, "type": self.types.get(m, "TYPE_FLOAT")} for m in metrics],
            "rows": [{"dimensionValues": [{"value": r[d]} for d in dimensions],
                      "metricValues": [{"value": r[m]} for m in metrics]} for r in page],
            "rowCount": len(selected),
            "metadata": metadata,
            "kind": "analyticsData#runReport",
        }
        if not page:
            del answer["rows"]
        if body.get("returnPropertyQuota"):
            answer["propertyQuota"] = {
                "tokensPerDay": {"consumed": cost, "remaining": left},
                "tokensPerHour": {"consumed": cost, "remaining": max(0, min(left, 40_000))},
                "concurrentRequests": {"consumed": 0, "remaining": 10},
                "serverErrorsPerProjectPerHour": {"consumed": 0, "remaining": 10},
                "potentiallyThresholdedRequestsPerHour": {"consumed": 0, "remaining": 120},
                "tokensPerProjectPerHour": {"consumed": cost, "remaining": max(0, min(left, 14_000))},
            }
        return 200, answer

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                path = self.path.split("?", 1)[0]
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                match = PATH.match(path)
                fake.requests.append({"path": path, "body": body,
                                      "authorization": self.headers.get("Authorization")})
                if not match or match.group(1) != fake.property_id:
                    status, answer = 404, {"error": {"code": 404, "status": "NOT_FOUND",
                                                     "message": f"No property for {path}"}}
                elif (fault := fake._fault()) is not None:
                    code, message = FAULT_MESSAGES[fault]
                    status, answer = fault, {"error": {"code": fault, "status": code, "message": message}}
                else:
                    try:
                        status, answer = fake._report(body)
                    except Exception as error:  # a fake bug must show up as an answer, not a dropped socket
                        status, answer = 500, {"error": {"code": 500, "status": "INTERNAL",
                                                         "message": f"fake GA4 failed: {error!r}"}}
                fake.answered.append(status)
                data = json.dumps(answer).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
