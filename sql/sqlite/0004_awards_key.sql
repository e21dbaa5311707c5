-- The awards table keeps one index: its primary key, member first, as a WITHOUT ROWID table
-- (one B-tree holds the rows in key order, instead of a rowid table, its key index and a
-- member index). The key still keeps each (badge, member) once, and host platforms read a
-- member's badges through it (`WHERE user_id = …`). See sql/postgres/0004_awards_key.sql for
-- the measurement. SQLite cannot change a table's key in place: the table is copied, every
-- award with it, and the leaderboard view that reads it is made again.
DROP VIEW IF EXISTS accolade_leaderboard;

CREATE TABLE accolade_awards_keyed (
    badge_id          TEXT NOT NULL,
    user_id           INTEGER NOT NULL,
    awarded_at        TEXT NOT NULL,
    source            TEXT NOT NULL CHECK (source IN ('rule', 'manual', 'backfill')),
    run_id            INTEGER,
    notify            INTEGER NOT NULL DEFAULT 1,
    revoked_at        TEXT,
    revocation_reason TEXT,
    PRIMARY KEY (user_id, badge_id)
) WITHOUT ROWID;

INSERT INTO accolade_awards_keyed
    (badge_id, user_id, awarded_at, source, run_id, notify, revoked_at, revocation_reason)
SELECT badge_id, user_id, awarded_at, source, run_id, notify, revoked_at, revocation_reason
FROM accolade_awards
ORDER BY user_id, badge_id;

DROP TABLE accolade_awards;

ALTER TABLE accolade_awards_keyed RENAME TO accolade_awards;

CREATE VIEW accolade_leaderboard AS
SELECT a.user_id, SUM(b.points) AS points, COUNT(*) AS badges, MAX(a.awarded_at) AS last_awarded_at
FROM accolade_awards a JOIN accolade_badges b ON b.badge_id = a.badge_id
WHERE a.revoked_at IS NULL
GROUP BY a.user_id;
