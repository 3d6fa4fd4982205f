-- The channel traits of every person GA4 attributed a conversion order to: preferred_channel is the GA4
-- session source / medium most of their attributed orders came through (ties to the most recent, then the
-- name), with how many orders that is and how many were attributed in all. It reads
-- marts.order_attribution, so it follows GA4: while GA4 is late or failing it keeps the last GA4 data loaded,
-- and its materialization says up to which day (ga4_data_through). Join it to core.unified_profiles on
-- profile_id; a person with no attributed order has no row.
WITH channels AS (
    SELECT
        r.profile_id,
        a.session_source || ' / ' || a.session_medium AS channel,
        count(*) AS orders,
        max(a.order_ts) AS last_order_at
    FROM core.record_profiles AS r
    JOIN marts.order_attribution AS a ON r.record_key = 'order:' || a.order_id
    WHERE a.counts_as_conversion AND a.attributed
    GROUP BY r.profile_id, a.session_source || ' / ' || a.session_medium
),
ranked AS (
    SELECT
        profile_id,
        channel,
        orders,
        sum(orders) OVER (PARTITION BY profile_id) AS attributed_orders,
        row_number() OVER (PARTITION BY profile_id ORDER BY orders DESC, last_order_at DESC, channel) AS channel_rank
    FROM channels
)
SELECT
    profile_id,  -- the person (core.unified_profiles.profile_id)
    channel AS preferred_channel,  -- GA4 session source / medium most of their attributed orders came through
    CAST(orders AS BIGINT) AS preferred_channel_orders,  -- their attributed conversion orders through that channel
    CAST(attributed_orders AS BIGINT) AS attributed_orders  -- their conversion orders GA4 attributed, all channels
FROM ranked
WHERE channel_rank = 1
