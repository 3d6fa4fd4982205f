"""HubSpot CRM: the unified profile written back to contacts, traits as `cdp_*` properties, audiences as lists."""

from cdp_assets.activation.destinations.base import ObjectSpec, PiiPolicy, RecordsDestination
from cdp_assets.activation.destinations.hubspot.client import HubSpotRecords

DESTINATION = RecordsDestination(
    name="hubspot",
    title="HubSpot CRM v3",
    kinds=("hubspot",),
    variables=("HUBSPOT_ACCESS_TOKEN", "HUBSPOT_API_URL", "HUBSPOT_MAX_REQUESTS_PER_10S"),
    objects={"contacts": ObjectSpec("contacts", keys=("email", "*"), modes=("upsert", "mirror"), lists=True)},
    # A CRM is the business's own system (first-party processing): contact details in clear, when mapped.
    pii=PiiPolicy(clear=frozenset({"email", "firstname", "lastname", "phone", "mobilephone", "city", "state", "zip",
                                   "country", "address"})),
    client=HubSpotRecords,
    deletes=True,
    confirms=True,
    notes="batch/upsert by email or a unique property (100 per request); 207 errors by objectWriteTraceId; "
          "GDPR delete",
)
