-- Consent per contact and purpose as the CRM last recorded it; a blank answer is not granted.
-- consent_marketing is the advertising/marketing purpose that ad-platform destinations map to;
-- ads_personalization is recorded where the CRM exports it. A contact never asked has no row (not granted).
WITH answers AS (
    SELECT
        c.contact_id,
        c.source_file,
        p.purpose,
        CASE p.purpose WHEN 'marketing' THEN c.consent_marketing ELSE c.consent_ads_personalization END AS granted,
        CASE p.purpose WHEN 'marketing' THEN c.consent_marketing_at ELSE c.consent_ads_personalization_at END AS ts
    FROM staging.stg_crm_contacts AS c
    CROSS JOIN (VALUES ('marketing'), ('ads_personalization')) AS p (purpose)
)
SELECT
    r.profile_id,  -- the person the contact belongs to
    a.contact_id,  -- the CRM contact that answered
    a.purpose,  -- marketing (what ad platforms map to) or ads_personalization
    a.granted,  -- the answer; a blank answer is FALSE, no answer is no row
    'crm:' || a.source_file AS source,  -- the CRM file the answer came from
    a.ts  -- when the answer was given (the contact's updated_at)
FROM answers AS a
JOIN core.record_profiles AS r ON r.record_key = 'contact:' || a.contact_id
WHERE a.granted IS NOT NULL
