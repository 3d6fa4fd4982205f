"""Webhook: a model's records POSTed as signed JSON batches to any URL, for the tools no destination here speaks.

Deletion requests are not propagated to webhooks (no `gdpr_delete`): a receiver has no id of its own we hold
(a record's destination id is our record id), and the key that names the person there, often an email, is
kept here only as a SHA-256, as it must be. A receiver sees a `delete` only when the sync says `on_leave:
delete` and the record leaves the model (a deleted person does). README.md beside this file has the body,
the headers, how to verify the signature, and the options.
"""

from cdp_assets.activation.destinations.base import MODES, ObjectSpec, PiiPolicy, RecordsDestination
from cdp_assets.activation.destinations.webhook.client import WebhookRecords, check_options

DESTINATION = RecordsDestination(
    name="webhook",
    title="Webhook",
    kinds=("webhook",),
    variables=("CDP_WEBHOOK_<NAME>_URL", "CDP_WEBHOOK_<NAME>_SECRET"),  # NAME: the sync's name, upper-cased
    objects={"records": ObjectSpec("records", keys=("*",), modes=MODES)},
    # A receiver is arbitrary: each sync names the fields it may send in clear (`options.clear`).
    pii=PiiPolicy(),
    pii_from_options=True,
    client=WebhookRecords,
    deletes=False,
    options=check_options,
    notes="JSON batches POSTed to CDP_WEBHOOK_<NAME>_URL (options.batch_size, default 100, at most 1,000), "
          "HMAC-SHA256 signed; retried on 429/5xx; batch_id for deduplication; no deletion requests",
)
