-- One row per person: the golden record and computed traits of everything identity stitched together.
-- Each contact field comes from the most recently updated contact that has it (orders fill in email and
-- phone for guests); ties go to the lowest record key, so every run and warehouse picks the same value.
-- Order traits count conversions only (completed, paid, fulfilled).
WITH observations AS (
    SELECT r.profile_id, r.record_key, 1 AS source_rank, c.updated_at AS observed_at, c.email, c.phone_e164, c.first_name,
           c.last_name, c.city, c.state, c.postal_code, c.country
    FROM core.record_profiles AS r
    JOIN staging.stg_crm_contacts AS c ON r.record_key = 'contact:' || c.contact_id
    UNION ALL
    SELECT r.profile_id, r.record_key, 2 AS source_rank, o.order_ts AS observed_at, o.email, o.phone_e164, NULL, NULL, NULL,
           NULL, NULL, NULL
    FROM core.record_profiles AS r
    JOIN staging.stg_crm_orders AS o ON r.record_key = 'order:' || o.order_id
),
golden AS (
    SELECT
        profile_id,
        first_value(email) OVER (PARTITION BY profile_id ORDER BY email IS NULL, source_rank, observed_at DESC, record_key) AS email,
        first_value(phone_e164) OVER (PARTITION BY profile_id ORDER BY phone_e164 IS NULL, source_rank, observed_at DESC, record_key) AS phone_e164,
        first_value(first_name) OVER (PARTITION BY profile_id ORDER BY first_name IS NULL, observed_at DESC, record_key) AS first_name,
        first_value(last_name) OVER (PARTITION BY profile_id ORDER BY last_name IS NULL, observed_at DESC, record_key) AS last_name,
        first_value(city) OVER (PARTITION BY profile_id ORDER BY city IS NULL, observed_at DESC, record_key) AS city,
        first_value(state) OVER (PARTITION BY profile_id ORDER BY state IS NULL, observed_at DESC, record_key) AS state,
        first_value(postal_code) OVER (PARTITION BY profile_id ORDER BY postal_code IS NULL, observed_at DESC, record_key) AS postal_code,
        first_value(country) OVER (PARTITION BY profile_id ORDER BY country IS NULL, observed_at DESC, record_key) AS country,
        observed_at
    FROM observations
),
fields AS (
    SELECT profile_id, max(email) AS email, max(phone_e164) AS phone_e164, max(first_name) AS first_name,
           max(last_name) AS last_name, max(city) AS city, max(state) AS state, max(postal_code) AS postal_code,
           max(country) AS country, min(observed_at) AS first_seen_at, max(observed_at) AS last_seen_at
    FROM golden
    GROUP BY profile_id
),
records AS (
    SELECT profile_id,
           count(*) FILTER (WHERE record_type = 'contact') AS contact_records,
           count(*) FILTER (WHERE record_type = 'order') AS order_records
    FROM core.record_profiles
    GROUP BY profile_id
),
purchases AS (
    SELECT r.profile_id, o.order_ts, o.value, o.currency,
           first_value(o.currency) OVER (PARTITION BY r.profile_id ORDER BY o.order_ts DESC, o.order_id) AS latest_currency
    FROM core.record_profiles AS r
    JOIN staging.stg_crm_orders AS o ON r.record_key = 'order:' || o.order_id
    WHERE o.status IN ('completed', 'paid', 'fulfilled')
),
traits AS (
    -- Revenue is never summed across currencies: lifetime value is in the currency of the latest order.
    SELECT profile_id, count(*) AS order_count, min(order_ts) AS first_order_at, max(order_ts) AS last_order_at,
           sum(value) FILTER (WHERE currency = latest_currency) AS lifetime_value,
           max(latest_currency) AS lifetime_value_currency
    FROM purchases
    GROUP BY profile_id
)
SELECT
    f.profile_id, f.email, f.phone_e164, f.first_name, f.last_name, f.city, f.state, f.postal_code, f.country,
    r.contact_records, r.order_records, f.first_seen_at, f.last_seen_at,
    coalesce(t.order_count, 0) AS order_count, t.first_order_at, t.last_order_at,
    coalesce(t.lifetime_value, 0) AS lifetime_value, t.lifetime_value_currency
FROM fields AS f
JOIN records AS r ON r.profile_id = f.profile_id
LEFT JOIN traits AS t ON t.profile_id = f.profile_id
