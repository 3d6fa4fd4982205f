"""Marts stage: attribution keyed on staged orders (blocking: channel traits read it), audience members
once per audience and known (blocking: the file export of every audience reads them) and campaign figures
in range (a warning: nothing downstream reads them)."""

from cdp_assets.checks.gates import Gate
from cdp_assets.checks.rules import Between, NotNull, RefersTo, Unique
from cdp_assets.checks.suites.core import PROFILES
from cdp_assets.checks.suites.staging import STAGED_ORDERS

GATES = [
    Gate("marts.order_attribution", "attribution_is_one_row_per_staged_order",
         "Each staged order appears once, with its date.",
         (Unique("order_id"), NotNull("order_date"), RefersTo("order_id", parent=STAGED_ORDERS))),
    Gate("marts.audience_members", "audience_members_are_one_row_per_member",
         "Each member appears once per audience, and is a known profile.",
         (Unique("member_key"), NotNull("audience"), NotNull("profile_id"), RefersTo("profile_id", parent=PROFILES))),
    Gate("marts.campaign_performance", "campaign_figures_are_in_range",
         "Every row has a date; sessions, users and orders are never negative.",
         (NotNull("date"), Between("sessions", low=0), Between("users", low=0), Between("crm_orders", low=0)),
         blocking=False),
]
