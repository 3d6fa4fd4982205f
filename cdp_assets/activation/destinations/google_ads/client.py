"""Google Ads: click conversions / enhanced conversions for leads, and Customer Match offline user data jobs.

OAuth: an access token is minted from the refresh token (`GOOGLE_OAUTH_TOKEN_URL`) and refreshed once on a
401 before the destination is stopped. Headers carry the token, `developer-token` and, through a manager
account, `login-customer-id`. Errors are read from the body: UNAVAILABLE, INTERNAL, DEADLINE_EXCEEDED,
RESOURCE_EXHAUSTED, TRANSIENT_ERROR and CONCURRENT_MODIFICATION are retried; a 200 carrying
`partialFailureError` is a partial success whose failed indexes are mapped back to their rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import requests

from cdp_assets.activation.config import Destination
from cdp_assets.activation.events import currency_problem, event_id, identifiers, time_problem
from cdp_assets.activation.transport import AUTH, OK, PARTIAL, REJECTED, TRANSIENT, Reply, Request, http_reply, scrub

API_VERSION = "v22"
CONVERSIONS_BATCH_LIMIT = 2_000
CUSTOMER_MATCH_BATCH_LIMIT = 10_000  # UserData per addOperations: Google recommends ~10,000 identifiers
TRANSIENT_STATUSES = {"UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "UNKNOWN", "ABORTED"}
TRANSIENT_CODES = {"TRANSIENT_ERROR", "CONCURRENT_MODIFICATION"}
MATCH_FIELDS = ("em", "ph", "fn", "ln", "zp", "country")
INDEX_FIELDS = ("conversions", "operations")


def _error_codes(error: Mapping[str, Any]) -> set[str]:
    codes = set()
    for detail in error.get("details") or []:
        for item in detail.get("errors") or []:
            codes.update(str(v) for v in (item.get("errorCode") or {}).values())
    return codes


def _row_failures(partial: Mapping[str, Any]) -> dict[int, str]:
    """Failed row index -> reason, from a partialFailureError's field paths (conversions[N] / operations[N])."""
    failures: dict[int, str] = {}
    for detail in partial.get("details") or []:
        for item in detail.get("errors") or []:
            for element in (item.get("location") or {}).get("fieldPathElements") or []:
                if element.get("fieldName") in INDEX_FIELDS and isinstance(element.get("index"), int):
                    codes = ",".join(str(v) for v in (item.get("errorCode") or {}).values())
                    failures.setdefault(element["index"], f"Google Ads {codes}: {item.get('message')}")
                    break
    return failures


class GoogleAdsClient:
    """Credentials, headers and answers shared by both Google Ads channels."""

    def __init__(self, destination: Destination) -> None:
        self.destination = destination
        self.api_url = (destination.setting("GOOGLE_ADS_API_URL") or "https://googleads.googleapis.com").rstrip("/")
        self.token_url = destination.setting("GOOGLE_OAUTH_TOKEN_URL") or "https://oauth2.googleapis.com/token"
        self.customer_id = re.sub(r"\D", "", destination.setting("GOOGLE_ADS_CUSTOMER_ID") or "") or None
        self.login_customer_id = re.sub(r"\D", "", destination.setting("GOOGLE_ADS_LOGIN_CUSTOMER_ID") or "") or None
        self.developer_token = destination.setting("GOOGLE_ADS_DEVELOPER_TOKEN")
        self.client_id = destination.setting("GOOGLE_ADS_CLIENT_ID")
        self.client_secret = destination.setting("GOOGLE_ADS_CLIENT_SECRET")
        self.refresh_token = destination.setting("GOOGLE_ADS_REFRESH_TOKEN")
        self.hashing = destination.ad_platform.hashing.name  # the rules its identifiers are prepared by
        self.access_token: str | None = None
        self.refreshed_after_401 = False

    def missing(self) -> list[str]:
        needed = {"GOOGLE_ADS_DEVELOPER_TOKEN": self.developer_token, "GOOGLE_ADS_CLIENT_ID": self.client_id,
                  "GOOGLE_ADS_CLIENT_SECRET": self.client_secret, "GOOGLE_ADS_REFRESH_TOKEN": self.refresh_token,
                  "GOOGLE_ADS_CUSTOMER_ID": self.customer_id}
        return [self.destination.variable(k) for k, v in needed.items() if not v]

    def customer(self) -> str:
        return f"{self.api_url}/{API_VERSION}/customers/{self.customer_id or '{GOOGLE_ADS_CUSTOMER_ID}'}"

    def secrets(self) -> list[str | None]:
        return [self.access_token, self.refresh_token, self.client_secret, self.developer_token]

    def _mint(self) -> None:
        response = requests.post(self.token_url, data={
            "grant_type": "refresh_token", "client_id": self.client_id, "client_secret": self.client_secret,
            "refresh_token": self.refresh_token}, timeout=(3.05, 30))
        if response.status_code != 200:
            raise PermissionError(scrub(f"Google OAuth token refresh refused: HTTP {response.status_code} "
                                        f"{response.text[:200]}", self.secrets()))
        self.access_token = response.json()["access_token"]

    def headers(self) -> dict[str, str]:
        if self.access_token is None:
            self._mint()
        headers = {"Authorization": f"Bearer {self.access_token}", "developer-token": self.developer_token or "",
                   "Content-Type": "application/json"}
        if self.login_customer_id:
            headers["login-customer-id"] = self.login_customer_id
        return headers

    def interpret(self, operation: str, status: int, text: str, headers: Mapping[str, str]) -> Reply:
        reply = http_reply(status, text, headers)
        reply.trace_id = headers.get("request-id")
        error = reply.data.get("error")
        if isinstance(error, dict):
            state = str(error.get("status") or "")
            codes = _error_codes(error)
            reply.message = f"Google Ads {state or status} {','.join(sorted(codes))}: {error.get('message')}"
            if state == "UNAUTHENTICATED" and not self.refreshed_after_401:
                # One refresh of the access token, then the request is tried again.
                self.refreshed_after_401 = True
                self.access_token = None
                reply.kind = TRANSIENT
            elif state in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
                reply.kind = AUTH
            elif state in TRANSIENT_STATUSES or codes & TRANSIENT_CODES:
                reply.kind = TRANSIENT
            elif reply.kind != TRANSIENT:
                reply.kind = REJECTED
            return reply
        partial = reply.data.get("partialFailureError")
        if reply.kind == OK and isinstance(partial, dict) and partial.get("code"):
            reply.failed_rows = _row_failures(partial)
            reply.kind = PARTIAL if reply.failed_rows else REJECTED
            reply.message = f"Google Ads partial failure: {partial.get('message')}"
        if reply.kind in (OK, PARTIAL):
            total = len(reply.data.get("results") or [])
            reply.reported = {"results": total, "partial_failures": len(reply.failed_rows)}
        return reply


def user_identifiers(hashed: Mapping[str, str]) -> list[dict[str, Any]]:
    """Each identifier in its own UserIdentifier (a proto oneof); an address only with all four parts."""
    found: list[dict[str, Any]] = []
    if "em" in hashed:
        found.append({"hashedEmail": hashed["em"]})
    if "ph" in hashed:
        found.append({"hashedPhoneNumber": hashed["ph"]})
    if all(k in hashed for k in ("fn", "ln", "country", "zp")):
        found.append({"addressInfo": {"hashedFirstName": hashed["fn"], "hashedLastName": hashed["ln"],
                                      "countryCode": hashed["country"], "postalCode": hashed["zp"]}})
    return found


class GoogleAdsConversions(GoogleAdsClient):
    batch_limit = CONVERSIONS_BATCH_LIMIT

    def __init__(self, destination: Destination) -> None:
        super().__init__(destination)
        self.conversion_action = destination.setting("GOOGLE_ADS_CONVERSION_ACTION")

    def missing(self) -> list[str]:
        return super().missing() + ([] if self.conversion_action else
                                    [self.destination.variable("GOOGLE_ADS_CONVERSION_ACTION")])

    def _action(self) -> str:
        action = self.conversion_action or "{GOOGLE_ADS_CONVERSION_ACTION}"
        if action.isdigit() or action.startswith("{"):
            return f"customers/{self.customer_id or '{GOOGLE_ADS_CUSTOMER_ID}'}/conversionActions/{action}"
        return action

    def request(self, operation: str, payloads: list[Any], last_batch: bool) -> Request:
        return Request(operation, "POST", f"{self.customer()}:uploadClickConversions",
                       {"conversions": payloads, "partialFailure": True}, len(payloads))

    def event(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """An uploaded click conversion (with gclid when the order has one) or enhanced conversion for leads."""
        moment = row["order_ts"] if row["order_ts"].tzinfo else row["order_ts"].replace(tzinfo=UTC)
        conversion: dict[str, Any] = {
            "conversionAction": self._action(),
            "conversionDateTime": moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S+00:00"),
            "orderId": event_id(self.destination, row),
            "conversionValue": float(row["value"]), "currencyCode": (row["currency"] or "").upper(),
            "userIdentifiers": user_identifiers(identifiers(self.hashing, row, MATCH_FIELDS)),
            "consent": {"adUserData": "GRANTED",
                        "adPersonalization": "GRANTED" if row.get("ads_personalization") else "DENIED"},
        }
        if row.get("gclid"):
            conversion["gclid"] = row["gclid"]
        return conversion

    def problem(self, event: Mapping[str, Any], now: datetime) -> str | None:
        if not event.get("gclid") and not event["userIdentifiers"]:
            return "no gclid and no email or phone to match on"
        moment = datetime.strptime(event["conversionDateTime"], "%Y-%m-%d %H:%M:%S%z")
        return time_problem(int(moment.timestamp()), now, self.destination.max_event_age_days or 90, "Google Ads") \
            or currency_problem(event["currencyCode"])


class GoogleCustomerMatch(GoogleAdsClient):
    """Operations of one offline user data job: `create` / `remove` UserData (and `removeAll` to replace)."""

    batch_limit = CUSTOMER_MATCH_BATCH_LIMIT
    fields = MATCH_FIELDS

    def __init__(self, destination: Destination, user_list: str | None) -> None:
        super().__init__(destination)
        self.user_list = user_list
        self.job: str | None = None

    def user_list_resource(self) -> str:
        user_list = self.user_list or "{USER_LIST_ID}"
        if user_list.isdigit() or user_list.startswith("{"):
            return f"customers/{self.customer_id or '{GOOGLE_ADS_CUSTOMER_ID}'}/userLists/{user_list}"
        return user_list

    def row(self, profile_id: str, hashed: Mapping[str, str]) -> dict[str, Any]:
        return {"userIdentifiers": user_identifiers(hashed)}

    def create_job(self) -> Request:
        return Request("create_job", "POST", f"{self.customer()}/offlineUserDataJobs:create", {"job": {
            "type": "CUSTOMER_MATCH_USER_LIST",
            "customerMatchUserListMetadata": {"userList": self.user_list_resource(),
                                              "consent": {"adUserData": "GRANTED", "adPersonalization": "GRANTED"}}}},
            0)

    def request(self, operation: str, payloads: list[Any], last_batch: bool) -> Request:
        verb = {"add": "create", "remove": "remove", "replace": "create"}[operation]
        operations = [{verb: payload} for payload in payloads]
        return Request(operation, "POST", f"{self.api_url}/{API_VERSION}/{self.job or '{JOB}'}:addOperations",
                       {"enablePartialFailure": True, "operations": operations}, len(payloads))

    def remove_all(self) -> Request:
        return Request("remove_all", "POST", f"{self.api_url}/{API_VERSION}/{self.job or '{JOB}'}:addOperations",
                       {"enablePartialFailure": True, "operations": [{"removeAll": True}]}, 0)

    def run_job(self) -> Request:
        return Request("run_job", "POST", f"{self.api_url}/{API_VERSION}/{self.job or '{JOB}'}:run", {}, 0)

    def job_status(self, job: str) -> Request:
        query = ("SELECT offline_user_data_job.status, offline_user_data_job.failure_reason "
                 f"FROM offline_user_data_job WHERE offline_user_data_job.resource_name = '{job}'")
        return Request("job_status", "POST", f"{self.customer()}/googleAds:search", {"query": query}, 0)
