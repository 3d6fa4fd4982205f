-- Every CRM order with its last touch: the GA4 transaction whose transactionId is the order id, and that
-- session's source, medium and campaign. Orders GA4 never saw are kept, attributed to '(unattributed)';
-- so is every order while GA4 is not configured, and the orders of days GA4 has not been loaded for yet
-- (the materialization's ga4_data_through says up to which day GA4 is in).
-- value stays in the order's currency; value_reporting is staging.stg_order_values' conversion.
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
        v.order_date,
        o.status,
        o.counts_as_conversion,
        o.value,
        o.currency,
        v.value_reporting,
        v.reporting_currency
    FROM staging.stg_crm_orders AS o
    JOIN staging.stg_order_values AS v ON v.order_id = o.order_id
)
SELECT
    o.order_id,  -- the staged CRM order
    o.contact_id,  -- the CRM contact on it, if any
    o.order_ts,  -- when it was placed (UTC)
    o.order_date,  -- its date in CDP_TIMEZONE
    o.status,  -- the CRM status, lowercased
    o.counts_as_conversion,  -- completed, paid or fulfilled
    o.value,  -- value in the order's currency
    o.currency,  -- ISO 4217
    o.value_reporting,  -- value in the reporting currency; empty without a rate
    o.reporting_currency,  -- CDP_REPORTING_CURRENCY
    g.transaction_id IS NOT NULL AS attributed,  -- GA4 has a transaction with this order id
    g.transaction_date,  -- GA4's date of that transaction
    coalesce(g.session_source, '(unattributed)') AS session_source,  -- last-touch session source, or (unattributed)
    coalesce(g.session_medium, '(unattributed)') AS session_medium,  -- last-touch session medium, or (unattributed)
    coalesce(g.session_campaign_name, '(unattributed)') AS session_campaign_name,  -- last-touch campaign, or (unattributed)
    g.purchase_revenue AS ga_purchase_revenue,  -- the revenue GA4 recorded for the transaction
    g.currency_code AS ga_currency  -- the property's currency
FROM orders AS o
LEFT JOIN ga4 AS g ON g.transaction_id = o.order_id AND g.touch_rank = 1
