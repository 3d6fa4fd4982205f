-- Purchases that count as conversions (completed, paid or fulfilled orders), by order date, with the
-- profile they belong to and the click and browser identifiers ad platforms match on.
-- partition_column: order_ts
SELECT
    o.order_id,
    r.profile_id,
    o.contact_id,
    'Purchase' AS event_name,
    o.order_ts,
    CAST(o.order_ts AS DATE) AS order_date,
    o.value,
    o.currency,
    o.action_source,
    o.email,
    o.phone_e164,
    o.client_ip,
    o.user_agent,
    o.fbc,
    o.fbp,
    o.gclid,
    o.ttclid,
    o.event_source_url,
    o.product_ids
FROM staging.stg_crm_orders AS o
JOIN core.record_profiles AS r ON r.record_key = 'order:' || o.order_id
WHERE o.counts_as_conversion
