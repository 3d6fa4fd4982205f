"""Google Ads: click conversions (and enhanced conversions for leads), and Customer Match user lists."""

from cdp_assets.activation.destinations.ads import AdPlatform
from cdp_assets.activation.destinations.base import PiiPolicy
from cdp_assets.activation.destinations.google_ads.client import GoogleAdsConversions, GoogleCustomerMatch
from cdp_assets.activation.destinations.google_ads.hashing import RULES

CREDENTIALS = ("GOOGLE_ADS_DEVELOPER_TOKEN", "GOOGLE_ADS_CLIENT_ID", "GOOGLE_ADS_CLIENT_SECRET",
               "GOOGLE_ADS_REFRESH_TOKEN", "GOOGLE_ADS_CUSTOMER_ID", "GOOGLE_ADS_LOGIN_CUSTOMER_ID")
URLS = ("GOOGLE_ADS_API_URL", "GOOGLE_OAUTH_TOKEN_URL")
HASHED = frozenset({"hashedEmail", "hashedPhoneNumber", "hashedFirstName", "hashedLastName"})
ADDRESS = frozenset({"postalCode", "countryCode"})  # addressInfo's country and postal code travel in clear

PLATFORMS = (
    AdPlatform(
        name="google_ads_conversions", strategy="events", title="Google Ads click conversions", kind="google",
        channel=GoogleAdsConversions, variables=(*CREDENTIALS, "GOOGLE_ADS_CONVERSION_ACTION", *URLS),
        pii=PiiPolicy(hashed=HASHED, clear=frozenset({"gclid"}),
                      exempt=ADDRESS | {"orderId", "conversionAction", "conversionDateTime"}),
        hashing=RULES, event_name="Purchase", max_event_age_days=90, operation="upload_click_conversions"),
    AdPlatform(
        name="google_customer_match", strategy="audiences", title="Google Customer Match", kind="google",
        channel=GoogleCustomerMatch, variables=(*CREDENTIALS, *URLS),
        pii=PiiPolicy(hashed=HASHED, exempt=ADDRESS | {"userList", "query"}), hashing=RULES),
)
