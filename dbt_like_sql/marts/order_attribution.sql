-- Every CRM order with its last touch: the GA4 transaction whose transactionId is the order id, and that
-- session's source, medium and campaign. Orders GA4 never saw are kept, attributed to '(unattributed)'.
-- value stays in the order's currency; value_reporting converts it with staging.exchange_rates at the
-- order date (CDP_TIMEZONE), and is empty when the file has no rate for that currency and day.
WITH ga4 AS (
    SELECT
        t.transaction_id,
        t.date AS transaction_date,
        t.session_source,
        t.session_medium,
        t.session_campaign_name,
        t.purchase_revenue,
        t.currency_code,
        row_number() OVER (
            PARTITION BY t.transaction_id
            ORDER BY t.date, t.purchase_revenue DESC, t.session_source, t.session_medium, t.session_campaign_name
        ) AS touch_rank
    FROM raw.ga4_transactions AS t
),
orders AS (
    SELECT
        o.order_id,
        o.contact_id,
        o.order_ts,
        CAST((o.order_ts AT TIME ZONE 'UTC') AT TIME ZONE '{{ timezone }}' AS DATE) AS order_date,
        o.status,
        o.counts_as_conversion,
        o.value,
        o.currency
    FROM staging.stg_crm_orders AS o
)
SELECT
    o.order_id,
    o.contact_id,
    o.order_ts,
    o.order_date,
    o.status,
    o.counts_as_conversion,
    o.value,
    o.currency,
    CAST(o.value * r.rate_to_reporting AS DECIMAL(18, 2)) AS value_reporting,
    (SELECT max(x.reporting_currency) FROM staging.exchange_rates AS x) AS reporting_currency,
    g.transaction_id IS NOT NULL AS attributed,
    g.transaction_date,
    coalesce(g.session_source, '(unattributed)') AS session_source,
    coalesce(g.session_medium, '(unattributed)') AS session_medium,
    coalesce(g.session_campaign_name, '(unattributed)') AS session_campaign_name,
    g.purchase_revenue AS ga_purchase_revenue,
    g.currency_code AS ga_currency
FROM orders AS o
LEFT JOIN ga4 AS g ON g.transaction_id = o.order_id AND g.touch_rank = 1
LEFT JOIN staging.exchange_rates AS r
    ON r.currency = o.currency AND o.order_date >= r.valid_from AND o.order_date < r.valid_to
