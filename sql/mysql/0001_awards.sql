-- The evaluator's own tables, created in the awards database by `accolade migrate`.
-- Instants are DATETIME(6) in UTC (the driver sets the session time zone to UTC).

-- One row per badge of the config, refreshed on every run. `criterion` is the canonical
-- rule (with activity_since); once `first_published_at` is set it may no longer change.
CREATE TABLE IF NOT EXISTS accolade_badges (
    badge_id            VARCHAR(191) PRIMARY KEY,
    name                TEXT NOT NULL,
    image               TEXT,
    points              BIGINT NOT NULL DEFAULT 0,
    status              VARCHAR(16) NOT NULL CHECK (status IN ('published', 'disabled')),
    hidden_until_earned BOOLEAN NOT NULL DEFAULT FALSE,
    rule_type           TEXT NOT NULL,
    criterion           LONGTEXT NOT NULL,
    first_published_at  DATETIME(6),
    created_at          DATETIME(6) NOT NULL,
    updated_at          DATETIME(6) NOT NULL
) ENGINE = InnoDB;

-- One row per evaluation pass (dry runs are not recorded).
CREATE TABLE IF NOT EXISTS accolade_runs (
    run_id       BIGINT AUTO_INCREMENT PRIMARY KEY,
    started_at   DATETIME(6) NOT NULL,
    finished_at  DATETIME(6),
    as_of        DATETIME(6) NOT NULL,
    outcome      VARCHAR(16) NOT NULL CHECK (outcome IN ('running', 'success', 'partial', 'failed')),
    awards_total BIGINT NOT NULL DEFAULT 0,
    message      LONGTEXT
) ENGINE = InnoDB;

-- What each run did for each badge.
CREATE TABLE IF NOT EXISTS accolade_run_badges (
    run_id   BIGINT NOT NULL REFERENCES accolade_runs (run_id),
    badge_id VARCHAR(191) NOT NULL,
    outcome  VARCHAR(16) NOT NULL CHECK (outcome IN ('evaluated', 'skipped', 'manual', 'disabled', 'refused', 'failed')),
    awarded  BIGINT NOT NULL DEFAULT 0,
    message  LONGTEXT,
    PRIMARY KEY (run_id, badge_id)
) ENGINE = InnoDB;

-- Awards: at most one per (badge, member), ever; the primary key enforces it.
CREATE TABLE IF NOT EXISTS accolade_awards (
    badge_id   VARCHAR(191) NOT NULL,
    user_id    BIGINT NOT NULL,
    awarded_at DATETIME(6) NOT NULL,
    source     VARCHAR(16) NOT NULL CHECK (source IN ('rule', 'manual', 'backfill')),
    run_id     BIGINT,
    PRIMARY KEY (badge_id, user_id),
    KEY accolade_awards_by_user (user_id)
) ENGINE = InnoDB;
