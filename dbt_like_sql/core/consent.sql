-- Consent per contact and purpose as the CRM last recorded it; a blank answer is not granted.
-- consent_marketing is the advertising/marketing purpose that ad-platform destinations map to;
-- ads_personalization is recorded where the CRM exports it. A contact never asked has no row (not granted).
SELECT
    r.profile_id,
    c.contact_id,
    'marketing' AS purpose,
    c.consent_marketing AS granted,
    'crm:' || c.source_file AS source,
    c.consent_marketing_at AS ts
FROM staging.stg_crm_contacts AS c
JOIN core.record_profiles AS r ON r.record_key = 'contact:' || c.contact_id
WHERE c.consent_marketing IS NOT NULL
UNION ALL
SELECT
    r.profile_id,
    c.contact_id,
    'ads_personalization' AS purpose,
    c.consent_ads_personalization AS granted,
    'crm:' || c.source_file AS source,
    c.consent_ads_personalization_at AS ts
FROM staging.stg_crm_contacts AS c
JOIN core.record_profiles AS r ON r.record_key = 'contact:' || c.contact_id
WHERE c.consent_ads_personalization IS NOT NULL
