"""Egress honours the environment's proxy settings, reading them once per host rather than on every request."""

import requests

from cdp_assets.activation.transport import EgressSession


def test_a_proxy_in_the_environment_is_used(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    settings = EgressSession().merge_environment_settings("https://api.hubapi.com/crm/v3", {}, None, None, None)
    assert settings["proxies"]["https"] == "http://proxy.internal:3128"


def test_the_environment_is_read_once_per_host(monkeypatch):
    reads = []
    original = requests.sessions.get_environ_proxies
    monkeypatch.setattr(requests.sessions, "get_environ_proxies",
                        lambda url, no_proxy=None: reads.append(url) or original(url, no_proxy))
    session = EgressSession()
    for path in ("batch/upsert", "batch/read", "batch/upsert"):
        session.merge_environment_settings(f"https://api.hubapi.com/crm/v3/objects/contacts/{path}", {}, None, None,
                                           None)
    session.merge_environment_settings("https://a.klaviyo.com/api/profile-bulk-import-jobs", {}, None, None, None)
    assert reads == ["https://api.hubapi.com/crm/v3/objects/contacts/batch/upsert",
                     "https://a.klaviyo.com/api/profile-bulk-import-jobs"]
