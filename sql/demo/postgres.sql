-- The demo community (see sqlite.sql) generated inside PostgreSQL, fast at any size:
-- `:members` is replaced by the member count. Same tables and columns as the SQLite demo,
-- with PostgreSQL's own types (TIMESTAMPTZ, TIMESTAMP, BIGINT epochs, BOOLEAN), so
-- config/demo.toml reads either. Skew: activity per member grows with u^6 for a member hash u
-- in [0, 1), so most members do little and a few do a lot.

DROP TABLE IF EXISTS members, forum_posts, friendships, sign_ins, enrollments, member_roles,
    profile_settings, member_counters;

CREATE TABLE members (
    id          BIGINT PRIMARY KEY,
    handle      TEXT NOT NULL,
    joined_at   TIMESTAMPTZ NOT NULL,
    is_blocked  BOOLEAN NOT NULL,
    avatar_set  BOOLEAN NOT NULL
);
CREATE TABLE forum_posts (author_id BIGINT NOT NULL, thread_id INTEGER NOT NULL, post_type TEXT NOT NULL, posted_at TIMESTAMP NOT NULL);
CREATE TABLE friendships (member_id BIGINT NOT NULL, friend_id BIGINT NOT NULL, accepted_at BIGINT NOT NULL);
CREATE TABLE sign_ins (member_id BIGINT NOT NULL, signed_in_at TIMESTAMPTZ NOT NULL);
CREATE TABLE enrollments (member_id BIGINT NOT NULL, course_code TEXT NOT NULL, enrolled_on DATE NOT NULL, progress_pct SMALLINT NOT NULL, passed BOOLEAN NOT NULL);
CREATE TABLE member_roles (member_id BIGINT NOT NULL, role_name TEXT NOT NULL);
CREATE TABLE profile_settings (member_id BIGINT NOT NULL, setting_key TEXT NOT NULL, setting_value TEXT);
CREATE TABLE member_counters (member_id BIGINT NOT NULL, counter TEXT NOT NULL, amount NUMERIC(12, 2) NOT NULL);

INSERT INTO members (id, handle, joined_at, is_blocked, avatar_set)
SELECT i, 'member' || i,
       date_trunc('day', now()) - ((i * 7919) % 900) * interval '1 day' - ((i * 31337) % 86400) * interval '1 second',
       i % 23 = 0, i % 3 = 0
FROM generate_series(1::bigint, :members) AS i;

CREATE TEMP TABLE activity AS
SELECT id, joined_at,
       ((id * 2654435761) % 1000003)::float8 / 1000003 AS u,
       ((id * 40503) % 1000033)::float8 / 1000033 AS v,
       ((id * 69069) % 999983)::float8 / 999983 AS w,
       GREATEST(1, floor(extract(epoch FROM date_trunc('day', now()) - joined_at) / 86400))::int AS age_days
FROM members;

INSERT INTO forum_posts (author_id, thread_id, post_type, posted_at)
SELECT a.id, ((a.id * 31 + g * 17) % 200000) + 1,
       CASE (a.id + g) % 4 WHEN 0 THEN 'question' WHEN 1 THEN 'post' ELSE 'reply' END,
       (a.joined_at + ((a.id * 13 + g * 37) % a.age_days) * interval '1 day') AT TIME ZONE 'UTC'
FROM activity a CROSS JOIN LATERAL generate_series(1, floor(56 * a.u ^ 6)::int) AS g;

-- Every fifth member makes connections in a burst of a few days.
INSERT INTO friendships (member_id, friend_id, accepted_at)
SELECT a.id, ((a.id + g * 7919) % :members) + 1,
       extract(epoch FROM a.joined_at)::bigint
         + (CASE WHEN a.id % 5 = 0 THEN g % 5 ELSE (a.id * 3 + g * 11) % a.age_days END) * 86400
         + (g * 3607) % 86400
FROM activity a CROSS JOIN LATERAL generate_series(1, floor(56 * a.v ^ 6)::int) AS g;

-- Sign-ins on consecutive days from a member-specific start; some members twice a day.
INSERT INTO sign_ins (member_id, signed_in_at)
SELECT a.id, a.joined_at + ((a.id % 20) + g) * interval '1 day' + (g % 3) * interval '1 hour'
FROM activity a CROSS JOIN LATERAL generate_series(0, floor(40 * a.w ^ 4)::int - 1) AS g;

INSERT INTO sign_ins (member_id, signed_in_at)
SELECT member_id, signed_in_at + interval '4 hours' FROM sign_ins WHERE member_id % 7 = 0;

INSERT INTO enrollments (member_id, course_code, enrolled_on, progress_pct, passed)
SELECT a.id, c.code, (a.joined_at + c.n * 10 * interval '1 day')::date,
       CASE WHEN (a.id + c.n) % 4 = 0 THEN 100 ELSE (a.id * 37 + c.n * 11) % 100 END,
       (a.id + c.n) % 4 = 0 AND a.id % 3 <> 0
FROM activity a
JOIN (VALUES (0, 'onboarding'), (1, 'python-101'), (2, 'safety')) AS c (n, code) ON (a.id + c.n) % 3 <> 0;

INSERT INTO member_roles (member_id, role_name)
SELECT id, 'Moderator' FROM members WHERE id % 50 = 0
UNION ALL SELECT id, 'Expert' FROM members WHERE id % 97 = 0
UNION ALL SELECT 1, 'Admin';

INSERT INTO profile_settings (member_id, setting_key, setting_value)
SELECT id, 'profile.location',
       CASE id % 4 WHEN 0 THEN 'Argentina' WHEN 1 THEN 'default' WHEN 2 THEN 'France' ELSE '' END
FROM members;

INSERT INTO member_counters (member_id, counter, amount)
SELECT id, 'net_accepted_solutions', id % 7 FROM members
UNION ALL SELECT id, 'net_kudos_weight_received', (id * 13) % 60 FROM members;

DROP TABLE activity;

-- The indexes a platform keeps on its member foreign keys.
CREATE INDEX ON forum_posts (author_id);
CREATE INDEX ON friendships (member_id);
CREATE INDEX ON sign_ins (member_id);
CREATE INDEX ON enrollments (member_id);
CREATE INDEX ON member_roles (member_id);
CREATE INDEX ON profile_settings (member_id);
CREATE INDEX ON member_counters (member_id);
ANALYZE;
