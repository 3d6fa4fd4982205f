-- CRM contacts, one row per contact_id: trimmed, emails lowercased, phones in E.164, consent as booleans.
-- Email, phone, consent and the deletion flag are the loader's readings of them (raw's typed columns): an
-- unusable email or phone is NULL, an unreadable consent answer is "not granted".
-- The latest updated_at wins (then the latest load); contacts whose latest version is deleted are left out.
-- Consent per purpose comes from the latest version that answered it: a blank answer is "not granted",
-- and an export without the consent column (NULL) leaves the previous answer in place.
WITH typed AS (
    SELECT
        trim(c.contact_id) AS contact_id,
        c._email AS email,
        c._phone_e164 AS phone_e164,
        nullif(trim(c.first_name), '') AS first_name,
        nullif(trim(c.last_name), '') AS last_name,
        nullif(trim(c.city), '') AS city,
        nullif(trim(c.state), '') AS state,
        nullif(trim(c.postal_code), '') AS postal_code,
        nullif(trim(c.country), '') AS country,
        nullif(trim(c.ga_client_id), '') AS ga_client_id,
        c._consent_marketing AS consent_marketing,
        c._consent_ads_personalization AS consent_ads_personalization,
        c._deleted AS deleted,
        c._updated_at AS updated_at,
        c._source AS source_file,
        c._line_number AS line_number,
        c._loaded_at AS loaded_at
    FROM raw.crm_contacts AS c
),
ranked AS (
    SELECT
        typed.*,
        row_number() OVER (
            PARTITION BY contact_id ORDER BY updated_at DESC, loaded_at DESC, source_file DESC, line_number DESC
        ) AS version_rank,
        row_number() OVER (
            PARTITION BY contact_id, consent_marketing IS NULL
            ORDER BY updated_at DESC, loaded_at DESC, source_file DESC, line_number DESC
        ) AS marketing_rank,
        row_number() OVER (
            PARTITION BY contact_id, consent_ads_personalization IS NULL
            ORDER BY updated_at DESC, loaded_at DESC, source_file DESC, line_number DESC
        ) AS ads_rank
    FROM typed
),
marketing AS (
    SELECT contact_id, consent_marketing, updated_at AS consent_marketing_at
    FROM ranked WHERE marketing_rank = 1 AND consent_marketing IS NOT NULL
),
ads AS (
    SELECT contact_id, consent_ads_personalization, updated_at AS consent_ads_personalization_at
    FROM ranked WHERE ads_rank = 1 AND consent_ads_personalization IS NOT NULL
)
SELECT
    r.contact_id,  -- the CRM's id of the contact
    r.email,  -- trimmed and lowercased
    r.phone_e164,  -- the phone in E.164, read in the contact's country
    r.first_name,  -- trimmed; empty is NULL
    r.last_name,  -- trimmed; empty is NULL
    r.city,  -- trimmed; empty is NULL
    r.state,  -- state or region, trimmed
    r.postal_code,  -- trimmed; empty is NULL
    r.country,  -- as the CRM wrote it, trimmed
    r.ga_client_id,  -- the GA4 client id the CRM recorded, if any
    m.consent_marketing,  -- the latest answer to the marketing purpose; NULL when never asked
    m.consent_marketing_at,  -- when that answer was given
    a.consent_ads_personalization,  -- the latest answer to ads personalization; NULL when never asked
    a.consent_ads_personalization_at,  -- when that answer was given
    r.updated_at,  -- the contact's last update in the CRM (UTC)
    r.source_file,  -- the file the winning version came from
    r.line_number,  -- its line in that file
    r.loaded_at  -- when that file was loaded
FROM ranked AS r
LEFT JOIN marketing AS m ON m.contact_id = r.contact_id
LEFT JOIN ads AS a ON a.contact_id = r.contact_id
WHERE r.version_rank = 1 AND NOT r.deleted
