-- The SQL-per-badge baseline: the natural query for each badge of config/demo.toml, run inside
-- PostgreSQL as `INSERT ... SELECT ... ON CONFLICT DO NOTHING`, one statement per badge, each
-- rescanning the activity tables it needs. Same semantics as accolade (see the README):
-- members created after :'as_of' are ignored, rows after it do not count, weeks and months
-- and day arithmetic are in the evaluation timezone (the session time zone below).
-- psql variables: as_of (timestamptz text), tz (IANA name).

SET TIME ZONE :'tz';
DROP TABLE IF EXISTS bench_awards;
CREATE TABLE bench_awards (badge_id TEXT NOT NULL, user_id BIGINT NOT NULL, PRIMARY KEY (badge_id, user_id));
CREATE TEMP VIEW bench_members AS SELECT * FROM members WHERE joined_at <= :'as_of'::timestamptz;

-- social-butterfly: at least 5 connections in one ISO week (local).
INSERT INTO bench_awards
SELECT DISTINCT 'social-butterfly', f.member_id
FROM friendships f JOIN bench_members m ON m.id = f.member_id
WHERE f.accepted_at <= extract(epoch FROM :'as_of'::timestamptz)
GROUP BY f.member_id, date_trunc('week', to_timestamp(f.accepted_at))
HAVING count(*) >= 5
ON CONFLICT DO NOTHING;

-- networker: at least 10 connections in one calendar month (local).
INSERT INTO bench_awards
SELECT DISTINCT 'networker', f.member_id
FROM friendships f JOIN bench_members m ON m.id = f.member_id
WHERE f.accepted_at <= extract(epoch FROM :'as_of'::timestamptz)
GROUP BY f.member_id, date_trunc('month', to_timestamp(f.accepted_at))
HAVING count(*) >= 10
ON CONFLICT DO NOTHING;

-- first-month / veteran: account age, never for blocked members (day arithmetic is local).
INSERT INTO bench_awards
SELECT 'first-month', id FROM bench_members
WHERE NOT is_blocked AND joined_at + interval '30 days' <= :'as_of'::timestamptz
ON CONFLICT DO NOTHING;

INSERT INTO bench_awards
SELECT 'veteran', id FROM bench_members
WHERE NOT is_blocked AND joined_at + interval '2 years' <= :'as_of'::timestamptz
ON CONFLICT DO NOTHING;

-- conversationalist: at least 10 posts and comments (posted_at is UTC without a zone).
INSERT INTO bench_awards
SELECT 'conversationalist', p.author_id
FROM forum_posts p JOIN bench_members m ON m.id = p.author_id
WHERE p.posted_at <= (:'as_of'::timestamptz AT TIME ZONE 'UTC')
GROUP BY p.author_id HAVING count(*) >= 10
ON CONFLICT DO NOTHING;

-- Trainings: completed (progress 100), passed, enrolled; enrolled_on is a calendar date,
-- counted from its midnight in the evaluation timezone.
INSERT INTO bench_awards
SELECT DISTINCT 'onboarded', e.member_id
FROM enrollments e JOIN bench_members m ON m.id = e.member_id
WHERE e.course_code = 'onboarding' AND e.progress_pct >= 100
  AND (e.enrolled_on::timestamp AT TIME ZONE :'tz') <= :'as_of'::timestamptz
ON CONFLICT DO NOTHING;

INSERT INTO bench_awards
SELECT DISTINCT 'pythonista', e.member_id
FROM enrollments e JOIN bench_members m ON m.id = e.member_id
WHERE e.course_code = 'python-101' AND e.passed
  AND (e.enrolled_on::timestamp AT TIME ZONE :'tz') <= :'as_of'::timestamptz
ON CONFLICT DO NOTHING;

INSERT INTO bench_awards
SELECT DISTINCT 'safety-first', e.member_id
FROM enrollments e JOIN bench_members m ON m.id = e.member_id
WHERE e.course_code = 'safety'
  AND (e.enrolled_on::timestamp AT TIME ZONE :'tz') <= :'as_of'::timestamptz
ON CONFLICT DO NOTHING;

-- vip-contributor: metric.posts >= 5 AND net_kudos_weight_received >= 20 AND net_accepted_solutions >= 3.
INSERT INTO bench_awards
SELECT 'vip-contributor', m.id
FROM bench_members m
JOIN (SELECT author_id, count(*) AS n FROM forum_posts
      WHERE posted_at <= (:'as_of'::timestamptz AT TIME ZONE 'UTC') GROUP BY author_id) p ON p.author_id = m.id
LEFT JOIN (SELECT member_id,
                  sum(amount) FILTER (WHERE counter = 'net_kudos_weight_received') AS kudos,
                  sum(amount) FILTER (WHERE counter = 'net_accepted_solutions') AS solutions
           FROM member_counters GROUP BY member_id) c ON c.member_id = m.id
WHERE p.n >= 5 AND COALESCE(c.kudos, 0) >= 20 AND COALESCE(c.solutions, 0) >= 3
ON CONFLICT DO NOTHING;

-- helping-hand: replies in at least 5 distinct threads, or a Moderator/Expert role.
INSERT INTO bench_awards
SELECT 'helping-hand', p.author_id
FROM forum_posts p JOIN bench_members m ON m.id = p.author_id
WHERE p.post_type = 'reply' AND p.posted_at <= (:'as_of'::timestamptz AT TIME ZONE 'UTC')
GROUP BY p.author_id HAVING count(DISTINCT p.thread_id) >= 5
UNION
SELECT 'helping-hand', r.member_id
FROM member_roles r JOIN bench_members m ON m.id = r.member_id
WHERE r.role_name IN ('Moderator', 'Expert')
ON CONFLICT DO NOTHING;

-- globetrotter: a location other than empty/default, and an avatar.
INSERT INTO bench_awards
SELECT DISTINCT 'globetrotter', s.member_id
FROM profile_settings s JOIN bench_members m ON m.id = s.member_id
WHERE s.setting_key = 'profile.location' AND s.setting_value NOT IN ('', 'default') AND m.avatar_set
ON CONFLICT DO NOTHING;

-- regular: 14 consecutive local days with a sign-in, and registered at least 3 months ago.
INSERT INTO bench_awards
WITH days AS (
    SELECT DISTINCT s.member_id, s.signed_in_at::date AS day
    FROM sign_ins s JOIN bench_members m ON m.id = s.member_id
    WHERE s.signed_in_at <= :'as_of'::timestamptz
), islands AS (
    SELECT member_id, day - (row_number() OVER (PARTITION BY member_id ORDER BY day))::int AS island FROM days
), runs AS (
    SELECT member_id, count(*) AS length FROM islands GROUP BY member_id, island
)
SELECT 'regular', r.member_id
FROM runs r JOIN bench_members m ON m.id = r.member_id
WHERE m.joined_at + interval '3 months' <= :'as_of'::timestamptz
GROUP BY r.member_id HAVING max(r.length) >= 14
ON CONFLICT DO NOTHING;

-- fresh-voices: a question asked since 2026-01-01 (local), by a member registered since 2025.
INSERT INTO bench_awards
SELECT DISTINCT 'fresh-voices', p.author_id
FROM forum_posts p JOIN bench_members m ON m.id = p.author_id
WHERE p.post_type = 'question'
  AND p.posted_at >= ('2026-01-01'::timestamptz AT TIME ZONE 'UTC')
  AND p.posted_at <= (:'as_of'::timestamptz AT TIME ZONE 'UTC')
  AND m.joined_at >= '2025-01-01'::timestamptz
ON CONFLICT DO NOTHING;
