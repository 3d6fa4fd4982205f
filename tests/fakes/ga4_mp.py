"""A local GA4 Measurement Protocol on 127.0.0.1 that behaves as Google documents it (crm_destinations.md §5, §9.5).

`POST /mp/collect?measurement_id=&api_secret=` answers 204 No Content to everything it receives, valid or not,
with the right secret or not: production gives no delivery receipt. What it received is kept: every body in
`.collected`, and the events of bodies sent with the expected measurement id and secret (and that the
validation server would accept) counted in `.purchases` and `.refunds` by `transaction_id`; the rest in
`.ignored` (Google drops them without a word).

`POST /debug/mp/collect` stores nothing, never checks the secret or the measurement id, and answers 200
`{"validationMessages": [...]}` with `fieldPath`, `description` and `validationCode` for what GA4 would drop:
more than 25 events or 25 params (`EXCEEDED_MAX_ENTITIES`), a missing `client_id` (`VALUE_REQUIRED`), a bad or
reserved event or param name (`NAME_INVALID`, `NAME_RESERVED`), a param value over 100 characters
(`VALUE_OUT_OF_BOUNDS`), a `timestamp_micros` that is not 16 digits or more than 72 hours old
(`VALUE_OUT_OF_BOUNDS`), hashed user data that is not SHA-256 hex (`VALUE_INVALID`), and, under
`validation_behavior: ENFORCE_RECOMMENDATIONS`, a currency that is not three capital letters (`VALUE_INVALID`)
or a purchase or refund without `transaction_id` (`VALUE_REQUIRED`). `refuse(transaction_id, code)` makes the
validation server name that transaction as well, the way a real payload problem would be named.

Faults (`fail_next`, on either path): "500", "429", and the transport faults of `_faulty_http.py`.
"""

import re
import sys
import time
from collections import Counter

from tests.fakes._faulty_http import FaultyServer

MEASUREMENT_ID, API_SECRET = "G-TEST123", "mp-secret-123"
MAX_EVENTS = MAX_PARAMS = 25
MAX_VALUE = 100
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
RESERVED_EVENTS = {"ad_activeview", "ad_click", "ad_exposure", "ad_impression", "ad_query", "ad_reward",
                   "adunit_exposure", "app_clear_data", "app_exception", "app_install", "app_remove",
                   "app_store_refund", "app_update", "app_upgrade", "dynamic_link_app_open", "error", "first_open",
                   "first_visit", "in_app_purchase", "notification_dismiss", "notification_foreground",
                   "notification_open", "notification_receive", "os_update", "session_start", "screen_view",
                   "user_engagement"}
RESERVED_PREFIXES = ("_", "firebase_", "ga_", "google_", "gtag.")
HEX64 = re.compile(r"[0-9a-f]{64}")
WINDOW_SECONDS = 72 * 3600


def _message(path: str, description: str, code: str) -> dict:
    return {"fieldPath": path, "description": description, "validationCode": code}


class FakeMeasurementProtocol(FaultyServer):
    answer_faults = ("500", "429")

    def __init__(self) -> None:
        super().__init__()
        self.collected: list[dict] = []
        self.purchases: Counter = Counter()
        self.refunds: Counter = Counter()
        self.ignored: list[dict] = []
        self.validated: list[dict] = []
        self.refused: dict[str, str] = {}

    def refuse(self, transaction_id: str, code: str = "VALUE_INVALID") -> None:
        with self._lock:
            self.refused[transaction_id] = code

    def env(self) -> dict[str, str]:
        return {"GA4_MEASUREMENT_ID": MEASUREMENT_ID, "GA4_API_SECRET": API_SECRET, "GA4_MP_URL": self.url}

    # ---- what GA4 would drop ---------------------------------------------------------------------------
    def messages(self, body: object) -> list[dict]:
        if not isinstance(body, dict):
            return [_message("", "The body is not a JSON object.", "VALUE_INVALID")]
        found = []
        if not body.get("client_id") and not body.get("app_instance_id"):
            found.append(_message("client_id", "Measurement requires a client_id.", "VALUE_REQUIRED"))
        enforce = body.get("validation_behavior") == "ENFORCE_RECOMMENDATIONS"
        found += self._timestamp(body.get("timestamp_micros"))
        found += self._user_data(body.get("user_data"))
        events = body.get("events")
        if not isinstance(events, list) or not events:
            return [*found, _message("events", "Measurement requires at least one event.", "VALUE_REQUIRED")]
        if len(events) > MAX_EVENTS:
            found.append(_message("events", f"{len(events)} events; at most {MAX_EVENTS}.", "EXCEEDED_MAX_ENTITIES"))
        for n, event in enumerate(events):
            found += self._event(n, event, enforce)
        return found

    @staticmethod
    def _timestamp(value: object) -> list[dict]:
        if value is None:
            return []
        if not isinstance(value, int) or len(str(value)) != 16:
            return [_message("timestamp_micros", f"timestamp_micros {value!r} is not microseconds since the epoch.",
                             "VALUE_OUT_OF_BOUNDS")]
        age = time.time() - value / 1e6
        if age > WINDOW_SECONDS or age < -60:
            return [_message("timestamp_micros", "timestamp_micros is more than 72 hours in the past or in the "
                                                 "future.", "VALUE_OUT_OF_BOUNDS")]
        return []

    @staticmethod
    def _user_data(user_data: object) -> list[dict]:
        if user_data is None:
            return []
        if not isinstance(user_data, dict):
            return [_message("user_data", "user_data must be an object.", "VALUE_INVALID")]
        found = []
        for key in ("sha256_email_address", "sha256_phone_number"):
            values = user_data.get(key, [])
            if not isinstance(values, list) or not all(isinstance(v, str) and HEX64.fullmatch(v) for v in values):
                found.append(_message(f"user_data.{key}", f"{key} must hold SHA-256 hex digests.", "VALUE_INVALID"))
        for address in user_data.get("address", []):
            for key in ("sha256_first_name", "sha256_last_name", "sha256_street"):
                if key in address and not HEX64.fullmatch(str(address[key])):
                    found.append(_message(f"user_data.address.{key}", f"{key} must be a SHA-256 hex digest.",
                                          "VALUE_INVALID"))
        return found

    def _event(self, n: int, event: object, enforce: bool) -> list[dict]:
        where = f"events[{n}]"
        if not isinstance(event, dict) or not isinstance(event.get("name"), str):
            return [_message(where, "An event needs a name.", "VALUE_REQUIRED")]
        name, params = event["name"], event.get("params") or {}
        found = []
        if name in RESERVED_EVENTS or name.startswith(RESERVED_PREFIXES):
            found.append(_message(where, f"Event at index: [{n}] has reserved name [{name}].", "NAME_RESERVED"))
        elif not NAME.fullmatch(name):
            found.append(_message(where, f"Event at index: [{n}] has invalid name [{name}]. Names must start with "
                                         "an alphabetic character.", "NAME_INVALID"))
        if len(params) > MAX_PARAMS:
            found.append(_message(f"{where}.params", f"{len(params)} params; at most {MAX_PARAMS}.",
                                  "EXCEEDED_MAX_ENTITIES"))
        for key, value in params.items():
            if not NAME.fullmatch(key) or key.startswith(RESERVED_PREFIXES):
                found.append(_message(f"{where}.params.{key}", f"Param name [{key}] is invalid.", "NAME_INVALID"))
            if isinstance(value, str) and len(value) > MAX_VALUE:
                found.append(_message(f"{where}.params.{key}", f"Param [{key}] has a value longer than {MAX_VALUE} "
                                                               "characters.", "VALUE_OUT_OF_BOUNDS"))
        transaction = params.get("transaction_id")
        if enforce and name in ("purchase", "refund"):
            if not transaction:
                found.append(_message(f"{where}.params.transaction_id", f"{name} requires transaction_id.",
                                      "VALUE_REQUIRED"))
            currency = params.get("currency")
            if "value" in params and not (isinstance(currency, str) and re.fullmatch(r"[A-Z]{3}", currency)):
                found.append(_message(f"{where}.params.currency", f"currency [{currency}] is not an ISO 4217 code.",
                                      "VALUE_INVALID"))
        if transaction in self.refused:
            found.append(_message(f"{where}.params", f"The event for transaction [{transaction}] is invalid.",
                                  self.refused[transaction]))
        return found

    # ---- dispatch -------------------------------------------------------------------------------------
    def _carries_records(self, method: str, path: str) -> bool:
        return method == "POST"

    def _fault_answer(self, fault: str) -> tuple[int, dict, dict[str, str]]:
        return (429, {}, {}) if fault == "429" else (500, {}, {})

    def _handle(self, method: str, path: str, query: dict, headers, raw: bytes,
                body: object) -> tuple[int, dict, dict[str, str]]:
        if method != "POST" or path not in ("/mp/collect", "/debug/mp/collect"):
            return 404, {}, {}
        if path == "/debug/mp/collect":
            self.validated.append(body if isinstance(body, dict) else {})
            return 200, {"validationMessages": self.messages(body)}, {}
        self.collected.append(body if isinstance(body, dict) else {})
        credentials = query.get("measurement_id") == [MEASUREMENT_ID] and query.get("api_secret") == [API_SECRET]
        if not credentials or self.messages(body):
            self.ignored.append(body if isinstance(body, dict) else {})
        else:
            for event in body["events"]:
                counts = {"purchase": self.purchases, "refund": self.refunds}.get(event["name"])
                if counts is not None:
                    counts[event.get("params", {}).get("transaction_id")] += 1
        return 204, {}, {}


if __name__ == "__main__":
    with FakeMeasurementProtocol() as server:
        print(server.url, flush=True)
        sys.stdin.read()  # serve until the parent closes our stdin
