-- Every staged order's value in the reporting currency (CDP_REPORTING_CURRENCY), converted with
-- staging.exchange_rates at the order's date in CDP_TIMEZONE. value_reporting is empty when the rate file
-- has no rate for that currency and day. Profiles and marts both read it, so they always agree.
WITH orders AS (
    SELECT
        o.order_id,
        o.value,
        o.currency,
        CAST((o.order_ts AT TIME ZONE 'UTC') AT TIME ZONE '{{ timezone }}' AS DATE) AS order_date
    FROM staging.stg_crm_orders AS o
)
SELECT
    o.order_id,  -- the staged order
    o.order_date,  -- the order's date in CDP_TIMEZONE
    CAST(o.value * r.rate_to_reporting AS DECIMAL(18, 2)) AS value_reporting,  -- its value in the reporting currency; empty without a rate
    (SELECT max(x.reporting_currency) FROM staging.exchange_rates AS x) AS reporting_currency  -- CDP_REPORTING_CURRENCY
FROM orders AS o
LEFT JOIN staging.exchange_rates AS r
    ON r.currency = o.currency AND o.order_date >= r.valid_from AND o.order_date < r.valid_to
