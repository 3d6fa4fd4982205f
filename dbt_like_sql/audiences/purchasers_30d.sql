-- People with at least one completed, paid or fulfilled order in the last 30 days.
SELECT
    r.profile_id,  -- the member
    count(*) AS orders_30d,  -- their conversion orders in the last 30 days
    max(o.order_ts) AS last_order_at  -- the latest of them
FROM staging.stg_crm_orders AS o
JOIN core.record_profiles AS r ON r.record_key = 'order:' || o.order_id
WHERE o.counts_as_conversion
  AND o.order_ts >= current_date - INTERVAL 30 DAY
GROUP BY r.profile_id
