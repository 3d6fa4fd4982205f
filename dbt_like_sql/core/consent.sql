-- Consent per contact and purpose as the CRM last recorded it; a blank or missing answer is not granted.
-- consent_marketing is the advertising/marketing purpose that ad-platform destinations map to.
SELECT
    r.profile_id,
    c.contact_id,
    'marketing' AS purpose,
    coalesce(c.consent_marketing, FALSE) AS granted,
    'crm:' || c.source_file AS source,
    c.updated_at AS ts
FROM staging.stg_crm_contacts AS c
JOIN core.record_profiles AS r ON r.record_key = 'contact:' || c.contact_id
