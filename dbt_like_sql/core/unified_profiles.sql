-- One row per person: the golden record and computed traits of everything identity stitched together.
-- Each contact field follows its rule in cdp_assets/config/golden_record.yaml (source priority, then
-- recency; ties to the lowest record key), so every run and warehouse picks the same value.
-- Order traits count conversions only (completed, paid, fulfilled). Lifetime value is in the currency of
-- the latest order (never summed across currencies); lifetime_value_reporting converts every order with
-- staging.stg_order_values. RFM scores are quintiles among purchasers (5 = most recent, frequent, valuable).
-- Consent per purpose is the latest answer across the person's contacts; no answer is not granted.
-- Everything here comes from the CRM alone, so a late or failing GA4 never holds profiles back: the traits
-- that need GA4 (the preferred channel) are core.channel_traits.
WITH observations AS (
    SELECT r.profile_id, r.record_key, r.record_type, c.updated_at AS observed_at, c.email, c.phone_e164, c.first_name,
           c.last_name, c.city, c.state, c.postal_code, c.country
    FROM core.record_profiles AS r
    JOIN staging.stg_crm_contacts AS c ON r.record_key = 'contact:' || c.contact_id
    UNION ALL
    SELECT r.profile_id, r.record_key, r.record_type, o.order_ts AS observed_at, o.email, o.phone_e164, NULL, NULL,
           NULL, NULL, NULL, NULL
    FROM core.record_profiles AS r
    JOIN staging.stg_crm_orders AS o ON r.record_key = 'order:' || o.order_id
),
golden AS (
    SELECT
        profile_id,
        first_value(email) OVER (PARTITION BY profile_id ORDER BY email IS NULL, {{ golden_email }}, record_key) AS email,
        first_value(phone_e164) OVER (PARTITION BY profile_id ORDER BY phone_e164 IS NULL, {{ golden_phone_e164 }}, record_key) AS phone_e164,
        first_value(first_name) OVER (PARTITION BY profile_id ORDER BY first_name IS NULL, {{ golden_first_name }}, record_key) AS first_name,
        first_value(last_name) OVER (PARTITION BY profile_id ORDER BY last_name IS NULL, {{ golden_last_name }}, record_key) AS last_name,
        first_value(city) OVER (PARTITION BY profile_id ORDER BY city IS NULL, {{ golden_city }}, record_key) AS city,
        first_value(state) OVER (PARTITION BY profile_id ORDER BY state IS NULL, {{ golden_state }}, record_key) AS state,
        first_value(postal_code) OVER (PARTITION BY profile_id ORDER BY postal_code IS NULL, {{ golden_postal_code }}, record_key) AS postal_code,
        first_value(country) OVER (PARTITION BY profile_id ORDER BY country IS NULL, {{ golden_country }}, record_key) AS country,
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
    SELECT r.profile_id, o.order_ts, o.value, o.currency, v.value_reporting,
           first_value(o.currency) OVER (PARTITION BY r.profile_id ORDER BY o.order_ts DESC, o.order_id) AS latest_currency
    FROM core.record_profiles AS r
    JOIN staging.stg_crm_orders AS o ON r.record_key = 'order:' || o.order_id
    JOIN staging.stg_order_values AS v ON v.order_id = o.order_id
    WHERE o.counts_as_conversion
),
traits AS (
    SELECT profile_id, count(*) AS order_count, min(order_ts) AS first_order_at, max(order_ts) AS last_order_at,
           sum(value) FILTER (WHERE currency = latest_currency) AS lifetime_value,
           count(*) FILTER (WHERE currency = latest_currency) AS orders_in_lifetime_currency,
           max(latest_currency) AS lifetime_value_currency,
           sum(value_reporting) AS lifetime_value_reporting
    FROM purchases
    GROUP BY profile_id
),
rfm AS (
    SELECT profile_id,
           ntile(5) OVER (ORDER BY last_order_at, profile_id) AS recency_score,
           ntile(5) OVER (ORDER BY order_count, profile_id) AS frequency_score,
           ntile(5) OVER (ORDER BY coalesce(lifetime_value_reporting, 0), profile_id) AS monetary_score
    FROM traits
),
consent AS (
    SELECT profile_id, purpose, granted,
           row_number() OVER (PARTITION BY profile_id, purpose ORDER BY ts DESC, contact_id DESC) AS recency
    FROM core.consent
)
SELECT
    f.profile_id,  -- the person: stable across runs unless two people merge or one splits (core.profile_merges)
    f.email,  -- golden-record email, lowercased
    f.phone_e164,  -- golden-record phone in E.164
    f.first_name,  -- golden-record first name
    f.last_name,  -- golden-record last name
    f.city,  -- golden-record city
    f.state,  -- golden-record state or region
    f.postal_code,  -- golden-record postal code
    f.country,  -- golden-record country, as the CRM wrote it
    r.contact_records,  -- CRM contacts stitched into the person
    r.order_records,  -- CRM orders stitched into the person
    f.first_seen_at,  -- the earliest contact update or order of the person
    f.last_seen_at,  -- the latest contact update or order of the person
    coalesce(t.order_count, 0) AS order_count,  -- conversion orders (completed, paid, fulfilled)
    t.first_order_at,  -- the first conversion order
    t.last_order_at,  -- the latest conversion order
    CAST(current_date - CAST(t.last_order_at AS DATE) AS INTEGER) AS days_since_last_order,  -- days since the latest conversion order
    coalesce(t.lifetime_value, 0) AS lifetime_value,  -- conversion revenue in the latest order's currency
    t.lifetime_value_currency,  -- the currency of lifetime_value (the latest order's)
    CAST(floor(t.lifetime_value * 100 / t.orders_in_lifetime_currency + 0.5) / 100 AS DECIMAL(18, 2)) AS average_order_value,  -- lifetime_value per order in that currency, to the cent, halves up (floor, not a cast, so every warehouse rounds alike)
    t.lifetime_value_reporting,  -- all conversion revenue in the reporting currency (CDP_REPORTING_CURRENCY)
    m.recency_score,  -- 1-5 among purchasers, 5 = most recent
    m.frequency_score,  -- 1-5 among purchasers, 5 = most orders
    m.monetary_score,  -- 1-5 among purchasers, 5 = most revenue in the reporting currency
    CAST(m.recency_score AS VARCHAR) || CAST(m.frequency_score AS VARCHAR) || CAST(m.monetary_score AS VARCHAR) AS rfm_segment,  -- the three scores, such as 545
    coalesce(cm.granted, FALSE) AS consent_marketing,  -- latest marketing answer across the person's contacts; none is FALSE
    coalesce(ca.granted, FALSE) AS consent_ads_personalization  -- latest ads-personalization answer; none is FALSE
FROM fields AS f
JOIN records AS r ON r.profile_id = f.profile_id
LEFT JOIN traits AS t ON t.profile_id = f.profile_id
LEFT JOIN rfm AS m ON m.profile_id = f.profile_id
LEFT JOIN consent AS cm ON cm.profile_id = f.profile_id AND cm.purpose = 'marketing' AND cm.recency = 1
LEFT JOIN consent AS ca ON ca.profile_id = f.profile_id AND ca.purpose = 'ads_personalization' AND ca.recency = 1
