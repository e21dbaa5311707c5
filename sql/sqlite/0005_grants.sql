-- Badges earned more than once (repeat), and awards that follow the criterion
-- (revoke_when_unmet). See sql/postgres/0005_grants.sql for what each change is for. SQLite
-- cannot change a table's key in place: the awards, outbox and salts tables are copied, and the
-- leaderboard view that reads the awards is made again.
DROP VIEW IF EXISTS accolade_leaderboard;

CREATE TABLE accolade_awards_granted (
    badge_id          TEXT NOT NULL,
    user_id           INTEGER NOT NULL,
    grant_key         TEXT NOT NULL DEFAULT '',
    awarded_at        TEXT NOT NULL,
    source            TEXT NOT NULL CHECK (source IN ('rule', 'manual', 'backfill')),
    run_id            INTEGER,
    notify            INTEGER NOT NULL DEFAULT 1,
    revoked_at        TEXT,
    revocation_reason TEXT,
    revoked_by        TEXT CHECK (revoked_by IN ('manual', 'rule')),
    PRIMARY KEY (user_id, badge_id, grant_key)
) WITHOUT ROWID;

INSERT INTO accolade_awards_granted
    (badge_id, user_id, grant_key, awarded_at, source, run_id, notify, revoked_at, revocation_reason, revoked_by)
SELECT badge_id, user_id, '', awarded_at, source, run_id, notify, revoked_at, revocation_reason,
       CASE WHEN revoked_at IS NOT NULL THEN 'manual' END
FROM accolade_awards
ORDER BY user_id, badge_id;

DROP TABLE accolade_awards;

ALTER TABLE accolade_awards_granted RENAME TO accolade_awards;

CREATE VIEW accolade_leaderboard AS
SELECT a.user_id, SUM(b.points) AS points, COUNT(*) AS badges, MAX(a.awarded_at) AS last_awarded_at
FROM accolade_awards a JOIN accolade_badges b ON b.badge_id = a.badge_id
WHERE a.revoked_at IS NULL
GROUP BY a.user_id;

CREATE TABLE accolade_outbox_granted (
    badge_id   TEXT NOT NULL,
    user_id    INTEGER NOT NULL,
    grant_key  TEXT NOT NULL DEFAULT '',
    event      TEXT NOT NULL DEFAULT 'awarded' CHECK (event IN ('awarded', 'revoked', 'restored')),
    created_at TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('deferred', 'pending', 'sent')),
    queued_at  TEXT,
    PRIMARY KEY (badge_id, user_id, grant_key, event)
);

INSERT INTO accolade_outbox_granted (badge_id, user_id, grant_key, event, created_at, state, queued_at)
SELECT badge_id, user_id, '', 'awarded', created_at, state, queued_at FROM accolade_outbox;

DROP TABLE accolade_outbox;

ALTER TABLE accolade_outbox_granted RENAME TO accolade_outbox;

CREATE INDEX IF NOT EXISTS accolade_outbox_by_state ON accolade_outbox (state, created_at);

CREATE TABLE accolade_award_salts_granted (
    badge_id   TEXT NOT NULL,
    user_id    INTEGER NOT NULL,
    grant_key  TEXT NOT NULL DEFAULT '',
    salt       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (badge_id, user_id, grant_key)
) WITHOUT ROWID;

INSERT INTO accolade_award_salts_granted (badge_id, user_id, grant_key, salt, created_at)
SELECT badge_id, user_id, '', salt, created_at FROM accolade_award_salts;

DROP TABLE accolade_award_salts;

ALTER TABLE accolade_award_salts_granted RENAME TO accolade_award_salts;

ALTER TABLE accolade_run_badges ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accolade_run_badges ADD COLUMN restored INTEGER NOT NULL DEFAULT 0;
