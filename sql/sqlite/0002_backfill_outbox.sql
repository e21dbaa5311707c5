-- Backfills, the notification outbox and the leaderboard view.

-- Whether an award should be announced to the member (false for a backfill whose
-- notifications are off).
ALTER TABLE accolade_awards ADD COLUMN notify INTEGER NOT NULL DEFAULT 1;

-- Which shard ('I/N', '0/1' when unsharded) a run evaluated: a run that finds a run of its
-- own shard still 'running' knows that process died (it holds that shard's lock).
ALTER TABLE accolade_runs ADD COLUMN shard TEXT NOT NULL DEFAULT '0/1';

-- A badge's first evaluation after it is published is its backfill; this records, per shard
-- ('0/1' when unsharded), that the backfill has completed.
CREATE TABLE IF NOT EXISTS accolade_backfills (
    badge_id     TEXT NOT NULL,
    shard        TEXT NOT NULL,
    completed_at TEXT NOT NULL,
    PRIMARY KEY (badge_id, shard)
);

-- The notification outbox the host's mailer reads: it sends rows in state 'pending' and sets
-- them to 'sent'. Rows wait in 'deferred' while [notifications] max_per_run throttles them.
-- One row per award at most, ever.
CREATE TABLE IF NOT EXISTS accolade_outbox (
    badge_id   TEXT NOT NULL,
    user_id    INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('deferred', 'pending', 'sent')),
    queued_at  TEXT,
    PRIMARY KEY (badge_id, user_id)
);

CREATE INDEX IF NOT EXISTS accolade_outbox_by_state ON accolade_outbox (state, created_at);

-- Members ranked by the points of the badges they hold (always consistent with the awards).
CREATE VIEW IF NOT EXISTS accolade_leaderboard AS
SELECT a.user_id, SUM(b.points) AS points, COUNT(*) AS badges, MAX(a.awarded_at) AS last_awarded_at
FROM accolade_awards a JOIN accolade_badges b ON b.badge_id = a.badge_id
GROUP BY a.user_id;
