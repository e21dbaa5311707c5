-- The evaluator's own tables, created in the awards database by `accolade migrate`.
-- Instants are TIMESTAMPTZ.

-- One row per badge of the config, refreshed on every run. `criterion` is the canonical
-- rule (with activity_since); once `first_published_at` is set it may no longer change.
CREATE TABLE IF NOT EXISTS accolade_badges (
    badge_id            TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    image               TEXT,
    points              BIGINT NOT NULL DEFAULT 0,
    status              TEXT NOT NULL CHECK (status IN ('published', 'disabled')),
    hidden_until_earned BOOLEAN NOT NULL DEFAULT FALSE,
    rule_type           TEXT NOT NULL,
    criterion           TEXT NOT NULL,
    first_published_at  TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);

-- One row per evaluation pass (dry runs are not recorded).
CREATE TABLE IF NOT EXISTS accolade_runs (
    run_id       BIGSERIAL PRIMARY KEY,
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ,
    as_of        TIMESTAMPTZ NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('running', 'success', 'partial', 'failed')),
    awards_total BIGINT NOT NULL DEFAULT 0,
    message      TEXT
);

-- What each run did for each badge.
CREATE TABLE IF NOT EXISTS accolade_run_badges (
    run_id   BIGINT NOT NULL REFERENCES accolade_runs (run_id),
    badge_id TEXT NOT NULL,
    outcome  TEXT NOT NULL CHECK (outcome IN ('evaluated', 'skipped', 'manual', 'disabled', 'refused', 'failed')),
    awarded  BIGINT NOT NULL DEFAULT 0,
    message  TEXT,
    PRIMARY KEY (run_id, badge_id)
);

-- Awards: at most one per (badge, member), ever; the primary key enforces it.
CREATE TABLE IF NOT EXISTS accolade_awards (
    badge_id   TEXT NOT NULL,
    user_id    BIGINT NOT NULL,
    awarded_at TIMESTAMPTZ NOT NULL,
    source     TEXT NOT NULL CHECK (source IN ('rule', 'manual', 'backfill')),
    run_id     BIGINT,
    PRIMARY KEY (badge_id, user_id)
);

CREATE INDEX IF NOT EXISTS accolade_awards_by_user ON accolade_awards (user_id);
