-- CRM contacts, one row per contact_id: trimmed, emails lowercased, phones in E.164, consent as a boolean.
-- The latest updated_at wins (then the latest load); contacts flagged deleted are left out.
WITH typed AS (
    SELECT
        trim(c.contact_id) AS contact_id,
        lower(trim(c.email)) AS email,
        p.e164 AS phone_e164,
        nullif(trim(c.first_name), '') AS first_name,
        nullif(trim(c.last_name), '') AS last_name,
        nullif(trim(c.city), '') AS city,
        nullif(trim(c.state), '') AS state,
        nullif(trim(c.postal_code), '') AS postal_code,
        nullif(trim(c.country), '') AS country,
        nullif(trim(c.ga_client_id), '') AS ga_client_id,
        CASE
            WHEN lower(trim(c.consent_marketing)) IN ('true', 'yes', 'y', '1', 'opted_in', 'granted') THEN TRUE
            WHEN lower(trim(c.consent_marketing)) IN ('false', 'no', 'n', '0', 'opted_out', 'denied') THEN FALSE
        END AS consent_marketing,
        coalesce(lower(trim(c.deleted)) IN ('true', 'yes', '1'), FALSE) AS deleted,
        c._updated_at AS updated_at,
        c._source AS source_file,
        c._line_number AS line_number,
        c._loaded_at AS loaded_at
    FROM raw.crm_contacts AS c
    LEFT JOIN staging.phone_numbers AS p
        ON p.phone_raw = trim(c.phone) AND p.country_raw = coalesce(upper(trim(c.country)), '')
),
ranked AS (
    SELECT
        typed.*,
        row_number() OVER (
            PARTITION BY contact_id ORDER BY updated_at DESC, loaded_at DESC, source_file DESC, line_number DESC
        ) AS version_rank
    FROM typed
)
SELECT
    contact_id, email, phone_e164, first_name, last_name, city, state, postal_code, country, ga_client_id,
    consent_marketing, updated_at, source_file, line_number
FROM ranked
WHERE version_rank = 1 AND NOT deleted
