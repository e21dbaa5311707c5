-- Backfills, the notification outbox and the leaderboard view.

-- Whether an award should be announced to the member (false for a backfill whose
-- notifications are off).
ALTER TABLE accolade_awards ADD COLUMN notify BOOLEAN NOT NULL DEFAULT TRUE;

-- Which shard ('I/N', '0/1' when unsharded) a run evaluated: a run that finds a run of its
-- own shard still 'running' knows that process died (it holds that shard's lock).
ALTER TABLE accolade_runs ADD COLUMN shard VARCHAR(32) NOT NULL DEFAULT '0/1';

-- A badge's first evaluation after it is published is its backfill; this records, per shard
-- ('0/1' when unsharded), that the backfill has completed.
CREATE TABLE IF NOT EXISTS accolade_backfills (
    badge_id     VARCHAR(191) NOT NULL,
    shard        VARCHAR(32) NOT NULL,
    completed_at DATETIME(6) NOT NULL,
    PRIMARY KEY (badge_id, shard)
) ENGINE = InnoDB;

-- The notification outbox the host's mailer reads: it sends rows in state 'pending' and sets
-- them to 'sent'. Rows wait in 'deferred' while [notifications] max_per_run throttles them.
-- One row per award at most, ever.
CREATE TABLE IF NOT EXISTS accolade_outbox (
    badge_id   VARCHAR(191) NOT NULL,
    user_id    BIGINT NOT NULL,
    created_at DATETIME(6) NOT NULL,
    state      VARCHAR(16) NOT NULL CHECK (state IN ('deferred', 'pending', 'sent')),
    queued_at  DATETIME(6),
    PRIMARY KEY (badge_id, user_id),
    KEY accolade_outbox_by_state (state, created_at)
) ENGINE = InnoDB;

-- Members ranked by the points of the badges they hold (always consistent with the awards).
CREATE OR REPLACE VIEW accolade_leaderboard AS
SELECT a.user_id, CAST(SUM(b.points) AS SIGNED) AS points, COUNT(*) AS badges, MAX(a.awarded_at) AS last_awarded_at
FROM accolade_awards a JOIN accolade_badges b ON b.badge_id = a.badge_id
GROUP BY a.user_id;
