"""The quality suites, one module per stage; `STAGE_GATES` lists them in pipeline order."""

from cdp_assets.checks.suites import core, marts, raw, staging

STAGE_GATES = [*raw.GATES, *staging.GATES, *core.GATES, *marts.GATES]
