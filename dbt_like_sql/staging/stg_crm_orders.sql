-- CRM orders, one row per order_id: typed value, upper-case ISO currency, lower-case status, phones in E.164.
-- Email, phone, value and currency are the loader's readings of them (raw's typed columns): an unusable email
-- or phone is NULL.
-- When an order appears in several loads the latest load wins. counts_as_conversion marks the purchases
-- conversions and revenue reporting count: completed, paid or fulfilled (never cancelled or refunded).
WITH typed AS (
    SELECT
        trim(o.order_id) AS order_id,
        nullif(trim(o.contact_id), '') AS contact_id,
        o._email AS email,
        o._phone_e164 AS phone_e164,
        o._order_ts AS order_ts,
        o._value AS value,
        o._currency AS currency,
        lower(trim(o.status)) AS status,
        coalesce(lower(trim(o.action_source)), 'website') AS action_source,
        nullif(trim(o.client_ip), '') AS client_ip,
        nullif(trim(o.user_agent), '') AS user_agent,
        nullif(trim(o.fbc), '') AS fbc,
        nullif(trim(o.fbp), '') AS fbp,
        nullif(trim(o.gclid), '') AS gclid,
        nullif(trim(o.ttclid), '') AS ttclid,
        nullif(trim(o.event_source_url), '') AS event_source_url,
        nullif(trim(o.product_ids), '') AS product_ids,
        o._source AS source_file,
        o._line_number AS line_number,
        o._loaded_at AS loaded_at
    FROM raw.crm_orders AS o
),
ranked AS (
    SELECT
        typed.*,
        row_number() OVER (
            PARTITION BY order_id ORDER BY loaded_at DESC, source_file DESC, line_number DESC
        ) AS version_rank
    FROM typed
)
SELECT
    order_id,  -- the CRM's id of the order
    contact_id,  -- the CRM contact on the order, if any
    email,  -- the order's email, trimmed and lowercased
    phone_e164,  -- the order's phone in E.164
    order_ts,  -- when it was placed (UTC)
    value,  -- value in the order's currency
    currency,  -- ISO 4217, upper case
    status,  -- the CRM status, lowercased
    coalesce(status IN ({{ conversion_statuses }}), FALSE) AS counts_as_conversion,  -- a status destinations.yaml counts as a conversion
    action_source,  -- where it happened: website (the default), physical_store, phone_call, ...
    client_ip,  -- the buyer's IP address
    user_agent,  -- the buyer's browser user agent
    fbc,  -- Meta click id cookie
    fbp,  -- Meta browser id cookie
    gclid,  -- Google click id
    ttclid,  -- TikTok click id
    event_source_url,  -- the page the purchase happened on
    product_ids,  -- product ids, separated by |
    source_file,  -- the file the latest version came from
    line_number,  -- its line in that file
    loaded_at  -- when that file was loaded
FROM ranked
WHERE version_rank = 1
