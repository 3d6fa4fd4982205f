"""TikTok Events API 2.0: conversion events, one request per event source (web or offline)."""

from cdp_assets.activation.destinations.ads import AdPlatform
from cdp_assets.activation.destinations.base import PiiPolicy
from cdp_assets.activation.destinations.tiktok.client import TikTokEvents
from cdp_assets.activation.destinations.tiktok.hashing import RULES

PLATFORMS = (
    AdPlatform(
        name="tiktok_events", strategy="events", title="TikTok Events API", kind="tiktok", channel=TikTokEvents,
        variables=("TIKTOK_ACCESS_TOKEN", "TIKTOK_PIXEL_CODE", "TIKTOK_ADVERTISER_ID", "TIKTOK_API_URL"),
        pii=PiiPolicy(hashed=frozenset({"email", "phone", "external_id", "zip_code"}),
                      clear=frozenset({"ip", "user_agent", "ttclid"}),
                      exempt=frozenset({"url", "event_id", "order_id", "content_id", "event_source_id"})),
        # The operation is each event's source (`TikTokEvents.source`).
        hashing=RULES, event_name="CompletePayment", max_event_age_days=7),
)
