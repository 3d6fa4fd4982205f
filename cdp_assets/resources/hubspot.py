"""HubSpot CRM v3 client (`HUBSPOT_ACCESS_TOKEN`, `HUBSPOT_API_URL`): incremental search, archived lists, associations.

Records modified in a window are read through the search endpoint, sorted by modification time and
paged with `paging.next.after`. Search returns at most 10,000 results per query, so a window holding
more is split in halves until each part fits. Requests are paced (about 5 per second by default);
429 responses are retried after their `Retry-After`, 5xx responses with exponential backoff, both by
urllib3's Retry. The token travels only in the Authorization header.
"""

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
import requests
from pydantic import PrivateAttr
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

DEFAULT_API_URL = "https://api.hubapi.com"
SEARCH_RESULT_CAP = 10_000
MODIFIED_PROPERTY = {"contacts": "lastmodifieddate", "deals": "hs_lastmodifieddate"}


class HubSpotError(RuntimeError):
    """HubSpot answered with an error after retries; the message holds the status and path, never the token."""


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class HubSpotResource(dg.ConfigurableResource):
    """HubSpot's CRM API, read with a private app access token."""

    access_token: str | None = None
    api_url: str = DEFAULT_API_URL
    requests_per_second: float = 5.0
    page_size: int = 100
    result_cap: int = SEARCH_RESULT_CAP
    max_retries: int = 6
    backoff_factor: float = 1.0

    _session: requests.Session | None = PrivateAttr(default=None)
    _last_request: float = PrivateAttr(default=0.0)
    _requests: int = PrivateAttr(default=0)
    _splits: int = PrivateAttr(default=0)

    @property
    def configured(self) -> bool:
        return bool(self.access_token)

    @property
    def stats(self) -> dict[str, int]:
        return {"requests": self._requests, "windows_split": self._splits}

    def _http(self) -> requests.Session:
        if self._session is None:
            retry = Retry(total=self.max_retries, backoff_factor=self.backoff_factor,
                          status_forcelist=(429, 500, 502, 503, 504), allowed_methods=frozenset({"GET", "POST"}),
                          respect_retry_after_header=True, raise_on_status=False)
            session = requests.Session()
            session.mount("http://", HTTPAdapter(max_retries=retry))
            session.mount("https://", HTTPAdapter(max_retries=retry))
            session.headers.update({"Authorization": f"Bearer {self.access_token}",
                                    "Content-Type": "application/json"})
            self._session = session
        return self._session

    def _call(self, method: str, path: str, **kwargs: object) -> dict:
        wait = self._last_request + 1 / self.requests_per_second - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last_request = time.monotonic()
        self._requests += 1
        try:
            response = self._http().request(method, f"{self.api_url.rstrip('/')}{path}", timeout=60, **kwargs)
        except requests.RequestException as error:
            raise HubSpotError(f"HubSpot {method} {path} failed: {type(error).__name__}") from None
        if response.status_code >= 400:
            message = response.text[:300].replace(self.access_token or "\0", "***")
            raise HubSpotError(f"HubSpot {method} {path} answered {response.status_code} after retries: {message}")
        return response.json()

    def _search_page(self, object_type: str, properties: list[str], start: int, end: int,
                     after: str | None) -> dict:
        modified = MODIFIED_PROPERTY[object_type]
        body = {
            "filterGroups": [{"filters": [
                {"propertyName": modified, "operator": "GTE", "value": str(start)},
                {"propertyName": modified, "operator": "LT", "value": str(end)},
            ]}],
            "sorts": [{"propertyName": modified, "direction": "ASCENDING"}],
            "properties": properties,
            "limit": self.page_size,
        }
        if after is not None:
            body["after"] = after
        return self._call("POST", f"/crm/v3/objects/{object_type}/search", json=body)

    def search_modified(self, object_type: str, properties: list[str], start: datetime,
                        end: datetime) -> Iterator[dict]:
        """Every record of `object_type` modified in [start, end), each once, windows split to fit the cap."""
        windows = [(to_ms(start), to_ms(end))]
        while windows:
            low, high = windows.pop(0)
            page = self._search_page(object_type, properties, low, high, None)
            if page.get("total", 0) > self.result_cap and high - low > 1:
                middle = (low + high) // 2
                self._splits += 1
                windows[:0] = [(low, middle), (middle, high)]
                continue
            while True:
                yield from page.get("results", [])
                after = ((page.get("paging") or {}).get("next") or {}).get("after")
                if after is None:
                    break
                page = self._search_page(object_type, properties, low, high, after)

    def archived(self, object_type: str, properties: list[str]) -> Iterator[dict]:
        """Every archived (deleted) record of `object_type`, with its `archivedAt`."""
        params: dict[str, object] = {"archived": "true", "limit": self.page_size, "properties": ",".join(properties)}
        while True:
            page = self._call("GET", f"/crm/v3/objects/{object_type}", params=params)
            yield from page.get("results", [])
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if after is None:
                return
            params = {**params, "after": after}

    def company_currency(self) -> str | None:
        """The account's company currency: what a deal without `deal_currency_code` is priced in."""
        return self._call("GET", "/account-info/v3/details").get("companyCurrency")

    def deal_contacts(self, deal_ids: list[str]) -> dict[str, str]:
        """The first associated contact (lowest id) of each deal: one v4 batch read of at most 100 deals."""
        if not deal_ids:
            return {}
        page = self._call("POST", "/crm/v4/associations/deals/contacts/batch/read",
                          json={"inputs": [{"id": d} for d in deal_ids]})
        found: dict[str, str] = {}
        for result in page.get("results", []):
            targets = sorted((t["toObjectId"] for t in result.get("to", [])), key=int)
            if targets:
                found[str(result["from"]["id"])] = str(targets[0])
        return found
