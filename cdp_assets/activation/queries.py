"""The warehouse reads egress starts from: a day's conversions and an audience's latest snapshot.

Consent is judged here, at send time: across a profile's contacts the latest record per purpose wins and
no record is no consent. Suppressed profiles and profiles awaiting deletion are flagged so they are
counted and never sent.
"""

# One row per profile: its latest answer for the purpose.
LATEST_CONSENT = """
consent AS (
    SELECT profile_id, purpose, granted,
           row_number() OVER (PARTITION BY profile_id, purpose ORDER BY ts DESC, contact_id DESC) AS recency
    FROM core.consent WHERE purpose IN (:purpose, 'ads_personalization')
)"""
EXCLUSIONS = """
       coalesce(k.granted, FALSE) AS consented, coalesce(a.granted, FALSE) AS ads_personalization,
       {alias}.profile_id IN (SELECT profile_id FROM core.suppressed_profiles) AS suppressed,
       {alias}.profile_id IN (SELECT profile_id FROM core.deletion_pending_profiles) AS deletion_pending"""
CONSENT_JOINS = """
LEFT JOIN consent AS k ON k.profile_id = {alias}.profile_id AND k.purpose = :purpose AND k.recency = 1
LEFT JOIN consent AS a ON a.profile_id = {alias}.profile_id AND a.purpose = 'ads_personalization' AND a.recency = 1"""

CONVERSIONS_SQL = f"""
WITH {LATEST_CONSENT}
SELECT c.order_id, c.contact_id, c.order_ts, c.value, c.currency, c.action_source, c.client_ip, c.user_agent,
       c.fbc, c.fbp, c.gclid, c.ttclid, c.event_source_url, c.product_ids,
       coalesce(c.email, p.email) AS email, coalesce(c.phone_e164, p.phone_e164) AS phone_e164,
       p.first_name, p.last_name, p.city, p.state, p.postal_code, p.country, {EXCLUSIONS.format(alias="c")}
FROM core.conversions AS c
JOIN core.unified_profiles AS p ON p.profile_id = c.profile_id {CONSENT_JOINS.format(alias="c")}
WHERE c.order_ts >= :start AND c.order_ts < :end
ORDER BY c.order_id
"""
MEMBERS_SQL = f"""
WITH {LATEST_CONSENT},
latest AS (SELECT max(snapshot_ts) AS snapshot_ts FROM audiences.snapshots WHERE audience = :audience)
SELECT m.profile_id, p.email, p.phone_e164, p.first_name, p.last_name, p.city, p.state, p.postal_code, p.country,
       {EXCLUSIONS.format(alias="m")}
FROM audiences.memberships AS m
JOIN latest AS l ON l.snapshot_ts = m.snapshot_ts
JOIN core.unified_profiles AS p ON p.profile_id = m.profile_id {CONSENT_JOINS.format(alias="m")}
WHERE m.audience = :audience
ORDER BY m.profile_id
"""
