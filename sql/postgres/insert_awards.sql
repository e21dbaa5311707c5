-- Moves one transaction's staged awards (COPY-ed into accolade_staging) into accolade_awards,
-- skipping keys that exist, queues the announced new ones in the outbox, and counts the new
-- awards per badge. $1 = awarded_at, $2 = run_id.
WITH inserted AS (
    INSERT INTO accolade_awards (badge_id, user_id, grant_key, awarded_at, source, run_id, notify)
    SELECT badge_id, user_id, grant_key, $1, source, $2, notify FROM accolade_staging
    ON CONFLICT (user_id, badge_id, grant_key) DO NOTHING
    RETURNING badge_id, user_id, grant_key, notify
), queued AS (
    INSERT INTO accolade_outbox (badge_id, user_id, grant_key, created_at, state)
    SELECT badge_id, user_id, grant_key, $1, 'deferred' FROM inserted WHERE notify
    ON CONFLICT DO NOTHING
)
SELECT badge_id, count(*) FROM inserted GROUP BY badge_id
