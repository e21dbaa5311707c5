-- Open Badges exports and revocation.

-- A revoked award keeps its row, so that no rule awards it again; revoked_at says when and
-- revocation_reason why (both shown in Open Badges exports).
ALTER TABLE accolade_awards ADD COLUMN revoked_at DATETIME(6) NULL;
ALTER TABLE accolade_awards ADD COLUMN revocation_reason TEXT NULL;

-- The random salt an award's recipient email is hashed with in Open Badges exports: one per
-- award (so recipients are not linkable across awards), kept so that re-exports are stable.
CREATE TABLE IF NOT EXISTS accolade_award_salts (
    badge_id   VARCHAR(191) NOT NULL,
    user_id    BIGINT NOT NULL,
    salt       VARCHAR(64) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (badge_id, user_id)
) ENGINE = InnoDB;

-- Revoked awards no longer count.
CREATE OR REPLACE VIEW accolade_leaderboard AS
SELECT a.user_id, CAST(SUM(b.points) AS SIGNED) AS points, COUNT(*) AS badges, MAX(a.awarded_at) AS last_awarded_at
FROM accolade_awards a JOIN accolade_badges b ON b.badge_id = a.badge_id
WHERE a.revoked_at IS NULL
GROUP BY a.user_id;
