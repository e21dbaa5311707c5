-- Every stored badge with its recipient count (awards not revoked), by id: one grouped pass
-- over the awards. (A correlated count per badge would scan the member-keyed awards table once
-- per badge.) Portable to SQLite, PostgreSQL and MySQL.
SELECT b.badge_id, b.name, b.image, b.points, b.status, b.hidden_until_earned, b.rule_type,
       b.criterion, b.first_published_at, b.updated_at, COALESCE(r.recipients, 0) AS recipients
FROM accolade_badges b
LEFT JOIN (
    SELECT badge_id, COUNT(*) AS recipients
    FROM accolade_awards
    WHERE revoked_at IS NULL
    GROUP BY badge_id
) r ON r.badge_id = b.badge_id
ORDER BY b.badge_id
