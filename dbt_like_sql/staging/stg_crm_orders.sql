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
    order_id, contact_id, email, phone_e164, order_ts, value, currency, status,
    coalesce(status IN ({{ conversion_statuses }}), FALSE) AS counts_as_conversion, action_source,
    client_ip, user_agent, fbc, fbp, gclid, ttclid, event_source_url, product_ids, source_file, line_number,
    loaded_at
FROM ranked
WHERE version_rank = 1
