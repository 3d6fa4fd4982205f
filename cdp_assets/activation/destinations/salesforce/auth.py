"""Salesforce OAuth: an access token minted from the refresh token (refresh-token flow), asked for again once when
Salesforce answers `INVALID_SESSION_ID`. A token that cannot be minted stops the destination with a one-line
reason that holds no secret."""

from __future__ import annotations

import os

import requests

from cdp_assets.activation.transport import parse_json, scrub

DEFAULT_TOKEN_URL = "https://login.salesforce.com/services/oauth2/token"
VARIABLES = ("SALESFORCE_INSTANCE_URL", "SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET", "SALESFORCE_REFRESH_TOKEN")


class SalesforceToken:
    """The connected app's credentials, from the environment, and the access token they last minted."""

    def __init__(self) -> None:
        self.token_url = os.environ.get("SALESFORCE_TOKEN_URL") or DEFAULT_TOKEN_URL
        self.client_id = os.environ.get("SALESFORCE_CLIENT_ID") or None
        self.client_secret = os.environ.get("SALESFORCE_CLIENT_SECRET") or None
        self.refresh_token = os.environ.get("SALESFORCE_REFRESH_TOKEN") or None
        self.access_token: str | None = None

    def secrets(self) -> list[str | None]:
        return [self.access_token, self.refresh_token, self.client_secret]

    def bearer(self) -> str:
        """The access token, minted when there is none (first call, or after `forget`)."""
        if self.access_token is None:
            self._mint()
        return str(self.access_token)

    def forget(self) -> None:
        """Salesforce refused the token (expired or revoked session): the next request mints another."""
        self.access_token = None

    def _mint(self) -> None:
        try:
            response = requests.post(self.token_url, data={
                "grant_type": "refresh_token", "client_id": self.client_id, "client_secret": self.client_secret,
                "refresh_token": self.refresh_token}, timeout=(3.05, 30))
        except requests.RequestException as error:
            raise PermissionError(f"Salesforce OAuth token endpoint unreachable ({type(error).__name__})") from None
        answer = parse_json(response.text)
        if response.status_code != 200 or not answer.get("access_token"):
            # Salesforce names the problem in `error` (invalid_grant, invalid_client_id); the description can
            # echo what was sent, so only the code is kept.
            raise PermissionError(scrub(f"Salesforce OAuth token refresh refused: HTTP {response.status_code} "
                                        f"{answer.get('error') or 'no access_token'}; check SALESFORCE_CLIENT_ID, "
                                        "SALESFORCE_CLIENT_SECRET and SALESFORCE_REFRESH_TOKEN", self.secrets()))
        self.access_token = str(answer["access_token"])
