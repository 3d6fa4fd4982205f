"""Core stage: one profile per record, unique profile ids, conversions and identifiers that refer to real
profiles and staged orders, clean privacy lists (blocking: the hand-offs into audiences and activation).
The identity step's working tables warn."""

from cdp_assets.checks.gates import Gate
from cdp_assets.checks.rules import Between, InSet, Matches, NotNull, RefersTo, Unique
from cdp_assets.checks.suites.staging import STAGED_ORDERS
from cdp_assets.settings import PURPOSES

PROFILE_ID_PATTERN = r"^p_[0-9a-f]{20}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
IDENTIFIER_TYPES = ("email", "phone", "contact_id")
PROFILES = "core.unified_profiles.profile_id"
# Tables built before unified_profiles refer to the identity step's profile ids: a check may only wait on
# assets upstream of what its blocking result holds back.
RECORD_PROFILES = "core.record_profiles.profile_id"


def _privacy_list(table: str, name: str, what: str) -> Gate:
    # A request names a person by several identifiers, one row each: (request_id, id_type) is the key.
    # A rejected row may name no usable identifier at all: it has no type, and is kept with its reason.
    return Gate(table, name, f"Each {what} lists an identifier once, of a known type, with a known status and a "
                             "SHA-256.",
                (Unique("request_key"), NotNull("request_id"), InSet("id_type", values=IDENTIFIER_TYPES),
                 InSet("status", values=("active", "rejected")), Matches("id_sha256", regex=SHA256_PATTERN)),
                relation=f"(SELECT request_id || ':' || id_type AS request_key, request_id, id_type, status, id_sha256 "
                         f"FROM {table})")


def _profile_list(table: str, name: str, what: str) -> Gate:
    return Gate(table, name, f"Each {what} profile is listed once.", (Unique("profile_id"), NotNull("profile_id")))


GATES = [
    Gate("core.record_profiles", "every_record_has_one_profile",
         "Each CRM record belongs to exactly one well-formed profile id.",
         (Unique("record_key"), NotNull("record_key"), NotNull("profile_id"),
          Matches("profile_id", regex=PROFILE_ID_PATTERN))),
    Gate("core.unified_profiles", "profile_ids_are_unique", "One row per profile id.",
         (Unique("profile_id"), NotNull("profile_id"), Matches("profile_id", regex=PROFILE_ID_PATTERN))),
    Gate("core.conversions", "conversions_are_attributable",
         "Each conversion appears once, is a staged order, belongs to a known profile and has a non-negative value.",
         (Unique("order_id"), NotNull("profile_id"), Between("value", low=0),
          RefersTo("profile_id", parent=RECORD_PROFILES), RefersTo("order_id", parent=STAGED_ORDERS)),
         relation="(SELECT order_id, profile_id, CAST(value AS DOUBLE) AS value FROM core.conversions)"),
    Gate("core.profile_identifiers", "identifiers_belong_to_profiles",
         "Every identifier is typed, has a value and belongs to a known profile.",
         (NotNull("id_type"), NotNull("id_value"), RefersTo("profile_id", parent=RECORD_PROFILES))),
    Gate("core.consent", "consent_records_are_complete",
         "Every consent record names a known purpose, a decision and the profile it belongs to.",
         (NotNull("purpose"), NotNull("granted"), InSet("purpose", values=PURPOSES),
          RefersTo("profile_id", parent=RECORD_PROFILES))),
    _profile_list("core.suppressed_profiles", "suppressed_profiles_are_listed_once", "suppressed"),
    _profile_list("core.deletion_pending_profiles", "deletion_pending_profiles_are_listed_once", "deletion-pending"),
    _privacy_list("core.deletion_requests", "deletion_requests_are_well_formed", "deletion request"),
    _privacy_list("core.suppressions", "suppressions_are_well_formed", "suppression"),
    Gate("core.channel_traits", "channel_traits_are_one_row_per_profile",
         "Each person with attributed orders appears once, with a channel, and belongs to a known profile.",
         (Unique("profile_id"), NotNull("preferred_channel"), Between("attributed_orders", low=1),
          RefersTo("profile_id", parent=RECORD_PROFILES)), blocking=False),
    Gate("core.identity_edges", "identity_edges_are_complete",
         "Every edge joins a record to a typed identifier.",
         (NotNull("record_key"), NotNull("id_type"), NotNull("id_value")), blocking=False),
    Gate("core.identity_audit", "identity_audit_rows_give_a_reason",
         "Every identifier the identity step set aside says why.", (NotNull("record_key"), NotNull("reason")),
         blocking=False),
    Gate("core.profile_merges", "profile_merges_are_complete",
         "Every merge or split names its event and the profile it produced.",
         (InSet("event", values=("merge", "split")), NotNull("event"), NotNull("to_profile_id")), blocking=False),
]
