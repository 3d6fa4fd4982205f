-- GA4 traffic and CRM revenue per day and last-touch campaign (session source, medium, campaign name).
-- Sessions, users and key events come from GA4's daily traffic report (users are summed over its device
-- and country rows, so a person seen on two devices counts twice). Orders and CRM revenue are the
-- conversion orders GA4's transactions attribute to the campaign, on GA4's transaction date; orders GA4
-- never saw appear under '(unattributed)' on their order date, so the mart adds up to the CRM.
-- Revenue is never summed across currencies: ga_revenue is in the property's currency (ga_currency),
-- crm_revenue only where a row's orders share one currency (crm_currency), and the *_reporting columns
-- convert every amount before adding (CDP_REPORTING_CURRENCY; crm_orders_without_rate counts the orders
-- the exchange-rate file could not convert). conversion_rate is CRM orders per session, revenue_per_session
-- CRM revenue in the reporting currency per session.
WITH traffic AS (
    SELECT
        t.date,
        t.session_source,
        t.session_medium,
        t.session_campaign_name,
        CAST(sum(t.sessions) AS BIGINT) AS sessions,
        CAST(sum(t.total_users) AS BIGINT) AS users,
        CAST(sum(t.engaged_sessions) AS BIGINT) AS engaged_sessions,
        CAST(sum(t.key_events) AS DOUBLE) AS key_events,
        CAST(sum(t.purchase_revenue) AS DECIMAL(18, 2)) AS ga_revenue,
        min(t.currency_code) AS ga_currency
    FROM raw.ga4_daily_traffic AS t
    GROUP BY t.date, t.session_source, t.session_medium, t.session_campaign_name
),
orders AS (
    SELECT
        coalesce(a.transaction_date, a.order_date) AS date,
        a.session_source,
        a.session_medium,
        a.session_campaign_name,
        count(*) AS crm_orders,
        CASE WHEN count(DISTINCT a.currency) = 1 THEN min(a.currency) END AS crm_currency,
        CASE WHEN count(DISTINCT a.currency) = 1 THEN sum(a.value) END AS crm_revenue,
        sum(a.value_reporting) AS crm_revenue_reporting,
        count(*) - count(a.value_reporting) AS crm_orders_without_rate
    FROM marts.order_attribution AS a
    WHERE a.counts_as_conversion
    GROUP BY coalesce(a.transaction_date, a.order_date), a.session_source, a.session_medium, a.session_campaign_name
),
campaign_days AS (
    SELECT t.date, t.session_source, t.session_medium, t.session_campaign_name FROM traffic AS t
    UNION
    SELECT o.date, o.session_source, o.session_medium, o.session_campaign_name FROM orders AS o
)
SELECT
    k.date,  -- the day: GA4's date for traffic and attributed orders, the order date for unattributed ones
    k.session_source,  -- last-touch session source, or (unattributed)
    k.session_medium,  -- last-touch session medium, or (unattributed)
    k.session_campaign_name,  -- last-touch campaign, or (unattributed)
    coalesce(t.sessions, 0) AS sessions,  -- GA4 sessions
    coalesce(t.users, 0) AS users,  -- GA4 users, summed over device and country rows
    coalesce(t.engaged_sessions, 0) AS engaged_sessions,  -- GA4 engaged sessions
    coalesce(t.key_events, 0) AS key_events,  -- GA4 key events
    t.ga_revenue,  -- GA4 purchase revenue in the property's currency
    t.ga_currency,  -- the property's currency
    CAST(t.ga_revenue * g.rate_to_reporting AS DECIMAL(18, 2)) AS ga_revenue_reporting,  -- GA4 purchase revenue in the reporting currency
    CAST(coalesce(o.crm_orders, 0) AS BIGINT) AS crm_orders,  -- CRM conversion orders attributed here
    CAST(o.crm_revenue AS DECIMAL(18, 2)) AS crm_revenue,  -- their revenue, only when they share one currency
    o.crm_currency,  -- that currency
    CAST(o.crm_revenue_reporting AS DECIMAL(18, 2)) AS crm_revenue_reporting,  -- their revenue in the reporting currency
    CAST(coalesce(o.crm_orders_without_rate, 0) AS BIGINT) AS crm_orders_without_rate,  -- orders the exchange-rate file could not convert
    (SELECT max(x.reporting_currency) FROM staging.exchange_rates AS x) AS reporting_currency,  -- CDP_REPORTING_CURRENCY
    CAST(coalesce(o.crm_orders, 0) AS DOUBLE) / nullif(t.sessions, 0) AS conversion_rate,  -- CRM orders per GA4 session
    CAST(o.crm_revenue_reporting AS DOUBLE) / nullif(t.sessions, 0) AS revenue_per_session  -- CRM revenue in the reporting currency per GA4 session
FROM campaign_days AS k
LEFT JOIN traffic AS t
    ON t.date = k.date AND t.session_source = k.session_source AND t.session_medium = k.session_medium
    AND t.session_campaign_name = k.session_campaign_name
LEFT JOIN orders AS o
    ON o.date = k.date AND o.session_source = k.session_source AND o.session_medium = k.session_medium
    AND o.session_campaign_name = k.session_campaign_name
LEFT JOIN staging.exchange_rates AS g
    ON g.currency = t.ga_currency AND k.date >= g.valid_from AND k.date < g.valid_to
