-- People who have ordered before but placed no completed, paid or fulfilled order in the last 90 days.
SELECT
    profile_id,  -- the member
    last_order_at,  -- their latest conversion order
    days_since_last_order  -- days since it
FROM core.unified_profiles
WHERE order_count > 0 AND last_order_at < current_date - INTERVAL 90 DAY
