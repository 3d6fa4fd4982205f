-- The top decile of purchasers by lifetime value in the reporting currency (ties at the cut are all in).
WITH ranked AS (
    SELECT profile_id, lifetime_value_reporting,
           percent_rank() OVER (ORDER BY lifetime_value_reporting DESC) AS value_rank
    FROM core.unified_profiles
    WHERE order_count > 0 AND lifetime_value_reporting IS NOT NULL
)
SELECT
    profile_id,  -- the member
    lifetime_value_reporting  -- their lifetime value in the reporting currency
FROM ranked
WHERE value_rank < 0.1
