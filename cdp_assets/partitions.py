"""The one daily partitioning every date-partitioned asset shares (days in `CDP_TIMEZONE`)."""

import warnings

import dagster as dg

from cdp_assets import settings

# Partitioned assets use BackfillPolicy.single_run(), the documented way to backfill a range in one
# step, which Dagster 1.13 still flags as beta on every use.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)
# The daily job mixes GA4 reports (week-long chunks) with SQL models (one run per range); Dagster warns on
# every load that it uses the smaller policy for the job, which is the intended one.
warnings.filterwarnings("ignore", message="Asset job daily_job materializes assets with varying BackfillPolicies")


def daily_partitions() -> dg.DailyPartitionsDefinition:
    """Days in CDP_TIMEZONE from CDP_START_DATE on."""
    return dg.DailyPartitionsDefinition(start_date=settings.start_date().isoformat(), timezone=settings.timezone().key)
