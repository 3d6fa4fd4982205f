"""Salesforce: the unified profile written back to Contacts (or Leads) by an external id field, traits as the
admin's `CDP_*__c` custom fields; Collections for small runs, Bulk API 2.0 jobs for large ones."""

from collections.abc import Mapping
from typing import Any

from cdp_assets.activation.destinations.base import ObjectSpec, PiiPolicy, RecordsDestination
from cdp_assets.activation.destinations.salesforce.client import DEFAULT_BULK_THRESHOLD, SalesforceRecords
from cdp_assets.settings import ConfigError, reject_unknown


def options(where: str, given: Mapping[str, Any]) -> Mapping[str, Any]:
    """`bulk_threshold`: from how many changed records in a run a Bulk API job is used (default 2,000)."""
    reject_unknown(where, given, ("bulk_threshold",))
    threshold = given.get("bulk_threshold", DEFAULT_BULK_THRESHOLD)
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
        raise ConfigError(f"{where}.bulk_threshold must be a whole number of records, 0 or more (0: always Bulk)")
    return {"bulk_threshold": threshold}


# Records that leave the model stay in Salesforce as they are (on_leave: nothing): clearing them needs the
# record's external id value, which the warehouse keeps only as a hash, or an update by Salesforce Id, which is a
# separate route (composite sobjects by Id) not built yet. Deletion requests are not propagated (deletes=False):
# Salesforce has no GDPR delete API here, and deleting a Contact the business owns is its CRM team's decision.
_OBJECT = {"keys": ("*",), "modes": ("upsert",), "on_leave": ("nothing",)}

DESTINATION = RecordsDestination(
    name="salesforce",
    title="Salesforce",
    kinds=("salesforce",),
    variables=("SALESFORCE_INSTANCE_URL", "SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET",
               "SALESFORCE_REFRESH_TOKEN", "SALESFORCE_TOKEN_URL"),
    objects={"contacts": ObjectSpec("contacts", **_OBJECT), "leads": ObjectSpec("leads", **_OBJECT)},
    # A CRM is the business's own system (first-party processing): contact details in clear, when mapped.
    pii=PiiPolicy(clear=frozenset({"Email", "FirstName", "LastName", "Phone", "MailingCity", "MailingState",
                                   "MailingPostalCode", "MailingCountry"})),
    client=SalesforceRecords,
    jobs=True,
    options=options,
    notes="upsert by an external id field: sObject Collections (200, allOrNone false) below bulk_threshold, Bulk "
          "API 2.0 jobs from it; deletion requests are not propagated",
)
