-- Badges earned more than once (repeat), and awards that follow the criterion
-- (revoke_when_unmet).

-- Each grant of a badge is an award row: a repeating badge's grant key names its period
-- ('2026-W23', '2026-06', '2026') or item; a badge earned once has the empty key. The key keeps
-- each (member, badge, grant) once; existing awards keep their row with the empty key.
ALTER TABLE accolade_awards ADD COLUMN grant_key TEXT NOT NULL DEFAULT '';
ALTER TABLE accolade_awards DROP CONSTRAINT accolade_awards_pkey;
ALTER TABLE accolade_awards ADD CONSTRAINT accolade_awards_pkey PRIMARY KEY (user_id, badge_id, grant_key);

-- Who revoked an award: 'manual' (`accolade revoke`) or 'rule' (revoke_when_unmet, which also
-- restores it). Earlier revocations were all manual.
ALTER TABLE accolade_awards ADD COLUMN revoked_by TEXT CHECK (revoked_by IN ('manual', 'rule'));
UPDATE accolade_awards SET revoked_by = 'manual' WHERE revoked_at IS NOT NULL;

-- One notification per grant and event: 'awarded', and with [notifications] on_revoke = "all"
-- 'revoked' and 'restored' (a later revocation of the same grant queues its row again).
ALTER TABLE accolade_outbox ADD COLUMN grant_key TEXT NOT NULL DEFAULT '';
ALTER TABLE accolade_outbox ADD COLUMN event TEXT NOT NULL DEFAULT 'awarded'
    CHECK (event IN ('awarded', 'revoked', 'restored'));
ALTER TABLE accolade_outbox DROP CONSTRAINT accolade_outbox_pkey;
ALTER TABLE accolade_outbox ADD CONSTRAINT accolade_outbox_pkey PRIMARY KEY (badge_id, user_id, grant_key, event);

-- One recipient salt per grant.
ALTER TABLE accolade_award_salts ADD COLUMN grant_key TEXT NOT NULL DEFAULT '';
ALTER TABLE accolade_award_salts DROP CONSTRAINT accolade_award_salts_pkey;
ALTER TABLE accolade_award_salts ADD CONSTRAINT accolade_award_salts_pkey PRIMARY KEY (badge_id, user_id, grant_key);

-- What each run revoked and restored per badge (revoke_when_unmet).
ALTER TABLE accolade_run_badges ADD COLUMN revoked BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accolade_run_badges ADD COLUMN restored BIGINT NOT NULL DEFAULT 0;
