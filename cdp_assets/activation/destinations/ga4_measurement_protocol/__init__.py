"""GA4 Measurement Protocol: the purchases Google Analytics never saw (offline orders, web orders its tag
missed), so GA4's revenue is whole."""

from cdp_assets.activation.destinations.ads import AdPlatform
from cdp_assets.activation.destinations.base import PiiPolicy
from cdp_assets.activation.destinations.ga4_measurement_protocol.client import MeasurementProtocol
from cdp_assets.activation.destinations.ga4_measurement_protocol.source import conversions_sql
from cdp_assets.activation.destinations.google_ads.hashing import RULES

PLATFORMS = (
    AdPlatform(
        name="ga4_measurement_protocol", strategy="events", title="GA4 Measurement Protocol", kind="google",
        channel=MeasurementProtocol,
        variables=("GA4_MEASUREMENT_ID", "GA4_API_SECRET", "GA4_MP_URL", "GA4_MP_VALIDATION_SAMPLE"),
        pii=PiiPolicy(hashed=frozenset({"sha256_email_address", "sha256_phone_number", "sha256_first_name",
                                        "sha256_last_name", "sha256_street"}),
                      clear=frozenset({"city", "region", "postal_code", "country"}),
                      exempt=frozenset({"client_id", "user_id", "transaction_id", "item_id", "currency", "name",
                                        "ad_user_data", "ad_personalization"})),
        # The Measurement Protocol takes events backdated by up to 72 hours.
        hashing=RULES, event_name="purchase", max_event_age_days=3, operation="collect",
        # GA4's own transactions say which web orders it missed; while its gates fail, web orders wait.
        source=conversions_sql, upstream=("staging/stg_crm_contacts", "staging/stg_order_values"),
        optional=("raw/ga4_transactions",)),
)
