"""Every source is optional: an unconfigured one says so, in its materialization's `source` metadata.

CRM extracts alone are a complete deployment; GA4 and HubSpot are optional (ARCHITECTURE principle 13).
A source asset that is not configured succeeds, lands nothing, and records `source: not configured: <what
to set>`. Its gates read that and pass, saying why, and the command line lists the sources not configured
once per run instead of reporting them as failures.
"""

import dagster as dg

NOT_CONFIGURED = "not configured"
SOURCE_KEY = "source"


def not_configured(what_to_set: str) -> str:
    """The `source` metadata of a source asset that is not configured, naming what to set."""
    return f"{NOT_CONFIGURED}: {what_to_set}"


def not_configured_reason(metadata: dict) -> str | None:
    """What to set, when this materialization metadata says its source is not configured."""
    value = metadata.get(SOURCE_KEY)
    text = value.value if isinstance(value, dg.TextMetadataValue) else value
    if isinstance(text, str) and text.startswith(NOT_CONFIGURED):
        return text.removeprefix(NOT_CONFIGURED).lstrip(": ")
    return None


def latest_not_configured(instance: dg.DagsterInstance, key: dg.AssetKey) -> str | None:
    """What to set, when the latest materialization of `key` found its source not configured."""
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return None
    return not_configured_reason(dict(event.asset_materialization.metadata))
