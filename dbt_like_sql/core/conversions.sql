-- Purchases that count as conversions (completed, paid or fulfilled orders), by order date, with the
-- profile they belong to and the click and browser identifiers ad platforms match on.
-- partition_column: order_ts
SELECT
    o.order_id,  -- the order: the event id destinations deduplicate on by default
    r.profile_id,  -- the person who placed it
    o.contact_id,  -- the CRM contact on the order, if any
    'Purchase' AS event_name,  -- the event, renamed per destination in destinations.yaml
    o.order_ts,  -- when it was placed (UTC): the event time
    CAST(o.order_ts AS DATE) AS order_date,  -- its UTC date (the partition)
    o.value,  -- value in the order's currency
    o.currency,  -- ISO 4217
    o.action_source,  -- website, physical_store, phone_call, app, ...
    o.email,  -- the order's email, lowercased (hashed before it leaves)
    o.phone_e164,  -- the order's phone in E.164 (hashed before it leaves)
    o.client_ip,  -- the buyer's IP address, sent in clear where a platform asks for it
    o.user_agent,  -- the buyer's browser user agent
    o.fbc,  -- Meta click id cookie
    o.fbp,  -- Meta browser id cookie
    o.gclid,  -- Google click id
    o.ttclid,  -- TikTok click id
    o.event_source_url,  -- the page the purchase happened on
    o.product_ids  -- product ids, separated by |
FROM staging.stg_crm_orders AS o
JOIN core.record_profiles AS r ON r.record_key = 'order:' || o.order_id
WHERE o.counts_as_conversion
