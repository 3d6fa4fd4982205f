-- Profiles never to be sent anywhere: they hold an email or phone on a suppression list.
-- Audiences and every destination leave them out. Suppressions are stored as SHA-256 hashes.
-- owners: team:privacy
SELECT DISTINCT i.profile_id  -- a profile never to be sent anywhere
FROM core.profile_identifiers AS i
JOIN core.suppressions AS s
    ON s.status = 'active'
    AND s.id_type = i.id_type
    AND s.id_sha256 = CASE i.id_type WHEN 'email' THEN sha256(i.id_value) WHEN 'phone' THEN sha256(substr(i.id_value, 2)) END
