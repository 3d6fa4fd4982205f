"""Meta: Conversions API events and Custom Audience members, hashed by Meta's rules."""

from cdp_assets.activation.destinations.ads import AdPlatform
from cdp_assets.activation.destinations.base import PiiPolicy
from cdp_assets.activation.destinations.meta.client import MetaAudience, MetaCapi
from cdp_assets.activation.destinations.meta.hashing import RULES

PLATFORMS = (
    AdPlatform(
        name="meta_capi", strategy="events", title="Meta Conversions API", kind="meta", channel=MetaCapi,
        variables=("META_ACCESS_TOKEN", "META_PIXEL_ID", "META_GRAPH_URL", "META_API_VERSION", "META_TEST_EVENT_CODE"),
        pii=PiiPolicy(hashed=frozenset({"em", "ph", "fn", "ln", "ge", "db", "external_id"}),
                      clear=frozenset({"client_ip_address", "client_user_agent", "fbc", "fbp"}),
                      exempt=frozenset({"event_source_url", "event_id", "order_id", "id"})),
        hashing=RULES, event_name="Purchase", max_event_age_days=7, operation="track_events"),
    AdPlatform(
        name="meta_custom_audiences", strategy="audiences", title="Meta Custom Audiences", kind="meta",
        channel=MetaAudience,
        variables=("META_ACCESS_TOKEN", "META_AD_ACCOUNT_ID", "META_GRAPH_URL", "META_API_VERSION"),
        # The multi-key schema's columns; EXTERN_ID (the profile id) is sent unhashed, as Custom Audiences expect.
        pii=PiiPolicy(hashed=frozenset({"EMAIL", "PHONE", "FN", "LN", "CT", "ST", "ZIP", "COUNTRY"})),
        hashing=RULES),
)
