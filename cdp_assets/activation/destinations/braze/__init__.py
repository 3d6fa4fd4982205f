"""Braze: profiles written to Braze users by `external_id` (the profile id), with contact details, traits as
typed custom attributes and audiences as boolean custom attributes; deletions through `/users/delete`.

Environment: `BRAZE_API_KEY` (a REST API key with the `users.track` and `users.delete` permissions) and
`BRAZE_REST_ENDPOINT`, the REST endpoint of your workspace's instance (such as `https://rest.iad-01.braze.com`;
required: there is no default, since a guessed instance would send your users to the wrong one).
"""

from collections.abc import Mapping
from typing import Any

from cdp_assets.activation.destinations.base import ObjectSpec, PiiPolicy, RecordsDestination
from cdp_assets.activation.destinations.braze.client import TRACK_LIMIT, BrazeRecords
from cdp_assets.settings import ConfigError, reject_unknown


def options(where: str, given: Mapping[str, Any]) -> Mapping[str, Any]:
    """`batch_size`: attribute objects per /users/track request, 1 to 75 (default 75; 50 on the MAU-based
    contracts whose limit counts every object of a request)."""
    reject_unknown(where, given, ("batch_size",))
    size = given.get("batch_size", TRACK_LIMIT)
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= TRACK_LIMIT:
        raise ConfigError(f"{where}.batch_size must be a whole number from 1 to {TRACK_LIMIT}")
    return {"batch_size": size}


DESTINATION = RecordsDestination(
    name="braze",
    title="Braze",
    kinds=("braze",),
    variables=("BRAZE_API_KEY", "BRAZE_REST_ENDPOINT"),
    # Braze makes a user on the first write by external_id; audiences are attributes, there are no lists here.
    objects={"users": ObjectSpec("users", keys=("external_id",), modes=("upsert", "mirror"), lists=False)},
    # A lifecycle tool messages the person, so it holds their contact details in clear (when the sync maps them).
    pii=PiiPolicy(clear=frozenset({"email", "phone", "first_name", "last_name", "country", "home_city"})),
    client=BrazeRecords,
    deletes=True,
    notes="/users/track attributes by external_id (75 per request), typed values; per-object errors by index; "
          "audiences as boolean attributes; /users/delete (50 per request)",
    options=options,
)
