"""Pinterest Conversions API: conversion events, hashed by Pinterest's rules."""

from cdp_assets.activation.destinations.ads import AdPlatform
from cdp_assets.activation.destinations.base import PiiPolicy
from cdp_assets.activation.destinations.pinterest.client import PinterestConversions
from cdp_assets.activation.destinations.pinterest.hashing import RULES

PLATFORMS = (
    AdPlatform(
        name="pinterest_conversions", strategy="events", title="Pinterest Conversions API", kind="pinterest",
        channel=PinterestConversions,
        variables=("PINTEREST_ACCESS_TOKEN", "PINTEREST_AD_ACCOUNT_ID", "PINTEREST_API_URL"),
        pii=PiiPolicy(hashed=frozenset({"em", "ph", "fn", "ln", "ge", "db", "external_id"}),
                      clear=frozenset({"client_ip_address", "client_user_agent", "click_id"}),
                      exempt=frozenset({"event_source_url", "event_id", "order_id", "content_ids"})),
        hashing=RULES, event_name="checkout", max_event_age_days=7, operation="send_events"),
)
