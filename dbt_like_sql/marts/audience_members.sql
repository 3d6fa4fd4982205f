-- Every audience's current members, one row per audience and member, with the member's contact fields and
-- order traits; the file export of every audience writes it (cdp_assets/config/syncs/audience_export.yaml).
-- The audience_members template variable reads the table of every audience under dbt_like_sql/audiences/,
-- so a new audience is in here with no edit. Those tables hold each audience's latest snapshot, already
-- without the people who lack the audience's consent, are suppressed or await deletion.
WITH members AS (
    {{ audience_members }}
)
SELECT
    m.audience || ':' || m.profile_id AS member_key,  -- the row's key: the audience and the member's profile id
    m.audience,  -- the audience (its file name under dbt_like_sql/audiences/)
    p.profile_id,  -- the member
    p.email,  -- golden-record email, lowercased
    p.phone_e164,  -- golden-record phone in E.164
    p.first_name,  -- golden-record first name
    p.last_name,  -- golden-record last name
    p.country,  -- golden-record country, as the CRM wrote it
    p.order_count,  -- conversion orders (completed, paid, fulfilled)
    p.last_order_at,  -- the latest conversion order
    CAST(p.lifetime_value AS DECIMAL(18, 2)) AS lifetime_value,  -- conversion revenue in the latest order's currency
    p.lifetime_value_currency  -- the currency of lifetime_value (the latest order's)
FROM members AS m
JOIN core.unified_profiles AS p ON p.profile_id = m.profile_id
