-- Records one badge definition from the config. Presentation fields apply to earlier
-- recipients too; `first_published_at` is set the first time the badge is published and never
-- cleared; `updated_at` moves only when something actually changed.
INSERT INTO accolade_badges
    (badge_id, name, image, points, status, hidden_until_earned, rule_type, criterion,
     first_published_at, created_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
ON CONFLICT (badge_id) DO UPDATE SET
    name = excluded.name,
    image = excluded.image,
    points = excluded.points,
    status = excluded.status,
    hidden_until_earned = excluded.hidden_until_earned,
    rule_type = excluded.rule_type,
    criterion = excluded.criterion,
    first_published_at = COALESCE(accolade_badges.first_published_at, excluded.first_published_at),
    updated_at = CASE
        WHEN accolade_badges.name IS NOT excluded.name
          OR accolade_badges.image IS NOT excluded.image
          OR accolade_badges.points IS NOT excluded.points
          OR accolade_badges.status IS NOT excluded.status
          OR accolade_badges.hidden_until_earned IS NOT excluded.hidden_until_earned
          OR accolade_badges.criterion IS NOT excluded.criterion
        THEN excluded.updated_at
        ELSE accolade_badges.updated_at
    END
