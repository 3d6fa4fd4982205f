"""Klaviyo: the unified profile written to profiles by bulk import jobs, traits as custom properties, audiences
as lists, email marketing consent sent once per consented person, deletions as data privacy deletion jobs."""

from cdp_assets.activation.destinations.base import ObjectSpec, PiiPolicy, RecordsDestination
from cdp_assets.activation.destinations.klaviyo.client import KlaviyoRecords
from cdp_assets.activation.destinations.klaviyo.payloads import LOCATION

DESTINATION = RecordsDestination(
    name="klaviyo",
    title="Klaviyo",
    kinds=("klaviyo",),
    variables=("KLAVIYO_API_KEY", "KLAVIYO_API_URL"),
    objects={"profiles": ObjectSpec("profiles", keys=("email", "external_id"), modes=("upsert",),
                                    on_leave=("nothing",), lists=True)},
    # A lifecycle tool the business runs its own email from: contact details in clear, when mapped.
    pii=PiiPolicy(clear=frozenset({"email", "phone_number", "first_name", "last_name", *LOCATION})),
    client=KlaviyoRecords,
    deletes=True,
    jobs=True,
    notes="bulk import jobs by email or external_id (10,000 profiles / 5 MB a job), errors by the echoed key; "
          "lists by relationship; marketing subscription once per consented person; privacy deletion",
)
