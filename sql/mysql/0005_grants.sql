-- Badges earned more than once (repeat), and awards that follow the criterion
-- (revoke_when_unmet). See sql/postgres/0005_grants.sql for what each change is for. Grant keys
-- compare byte for byte (utf8mb4_bin), as on PostgreSQL and SQLite: items 'ABC' and 'abc', or
-- 'x' and 'x ', are different grants.
ALTER TABLE accolade_awards
    ADD COLUMN grant_key VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
    ADD COLUMN revoked_by VARCHAR(16) CHECK (revoked_by IN ('manual', 'rule')),
    DROP PRIMARY KEY,
    ADD PRIMARY KEY (user_id, badge_id, grant_key);
UPDATE accolade_awards SET revoked_by = 'manual' WHERE revoked_at IS NOT NULL;

ALTER TABLE accolade_outbox
    ADD COLUMN grant_key VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
    ADD COLUMN event VARCHAR(16) NOT NULL DEFAULT 'awarded' CHECK (event IN ('awarded', 'revoked', 'restored')),
    DROP PRIMARY KEY,
    ADD PRIMARY KEY (badge_id, user_id, grant_key, event);

ALTER TABLE accolade_award_salts
    ADD COLUMN grant_key VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
    DROP PRIMARY KEY,
    ADD PRIMARY KEY (badge_id, user_id, grant_key);

ALTER TABLE accolade_run_badges
    ADD COLUMN revoked BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN restored BIGINT NOT NULL DEFAULT 0;
