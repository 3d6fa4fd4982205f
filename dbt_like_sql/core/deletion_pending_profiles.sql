-- Profiles named by an active deletion request that still hold the requested identifier: they are about
-- to be purged, and until then no audience or destination may include them.
-- owners: team:privacy
SELECT DISTINCT i.profile_id  -- a profile to leave out of every audience and destination until purged
FROM core.profile_identifiers AS i
JOIN core.deletion_requests AS d
    ON d.status = 'active'
    AND d.id_type = i.id_type
    AND d.id_sha256 = CASE i.id_type
        WHEN 'email' THEN sha256(lower(trim(i.id_value)))
        WHEN 'phone' THEN sha256(substr(i.id_value, 2))
        WHEN 'contact_id' THEN sha256(trim(i.id_value))
    END
