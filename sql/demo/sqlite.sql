-- A synthetic host platform for `accolade demo`: its own schema (not accolade's), mapped onto
-- accolade's sources by config/demo.toml. `:members` is replaced by the member count.
-- Values come from multiplicative hashes of ids, so the same count gives the same community
-- (relative to today), with skew: a few very active members and many quiet ones.

CREATE TABLE members (
    id          INTEGER PRIMARY KEY,
    handle      TEXT NOT NULL,
    joined_at   TEXT NOT NULL,      -- ISO-8601 text, UTC
    is_blocked  INTEGER NOT NULL,   -- 0/1
    avatar_set  INTEGER NOT NULL
);
CREATE TABLE forum_posts (
    id          INTEGER PRIMARY KEY,
    author_id   INTEGER NOT NULL,
    thread_id   INTEGER NOT NULL,
    post_type   TEXT NOT NULL,      -- post, reply, question
    posted_at   TEXT NOT NULL
);
CREATE TABLE friendships (
    member_id   INTEGER NOT NULL,
    friend_id   INTEGER NOT NULL,
    accepted_at INTEGER NOT NULL    -- epoch seconds
);
CREATE TABLE sign_ins (
    member_id    INTEGER NOT NULL,
    signed_in_at TEXT NOT NULL
);
CREATE TABLE enrollments (
    member_id    INTEGER NOT NULL,
    course_code  TEXT NOT NULL,
    enrolled_on  TEXT NOT NULL,
    progress_pct INTEGER NOT NULL,
    passed       INTEGER NOT NULL
);
CREATE TABLE member_roles (member_id INTEGER NOT NULL, role_name TEXT NOT NULL);
CREATE TABLE profile_settings (member_id INTEGER NOT NULL, setting_key TEXT NOT NULL, setting_value TEXT);
CREATE TABLE member_counters (member_id INTEGER NOT NULL, counter TEXT NOT NULL, amount REAL NOT NULL);

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :members)
INSERT INTO members (id, handle, joined_at, is_blocked, avatar_set)
SELECT i,
       'member' || i,
       datetime('now', '-' || ((i * 7919) % 900) || ' days', '-' || ((i * 31337) % 86400) || ' seconds'),
       CASE WHEN i % 23 = 0 THEN 1 ELSE 0 END,
       CASE WHEN i % 3 = 0 THEN 1 ELSE 0 END
FROM n;

-- Activity per member: h is a hash in 0..999, h^3 skews counts towards zero.
CREATE TEMP TABLE activity AS
SELECT id,
       joined_at,
       ((id * 2654435761) % 1000) AS h,
       CAST(julianday('now') - julianday(joined_at) AS INTEGER) + 1 AS age_days
FROM members;

WITH RECURSIVE k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 60)
INSERT INTO forum_posts (author_id, thread_id, post_type, posted_at)
SELECT a.id,
       ((a.id * 31 + k.j * 17) % 200) + 1,
       CASE (a.id + k.j) % 4 WHEN 0 THEN 'question' WHEN 1 THEN 'post' ELSE 'reply' END,
       datetime(a.joined_at, '+' || ((a.id * 13 + k.j * 37) % a.age_days) || ' days')
FROM activity a JOIN k ON k.j < (a.h * a.h * a.h) / 16000000;

-- Connections: every fifth member makes them in a burst of a few days.
WITH RECURSIVE k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 40)
INSERT INTO friendships (member_id, friend_id, accepted_at)
SELECT a.id,
       ((a.id + k.j * 7919) % :members) + 1,
       CAST(strftime('%s', a.joined_at) AS INTEGER)
           + (CASE WHEN a.id % 5 = 0 THEN (k.j % 5) ELSE (a.id * 3 + k.j * 11) % a.age_days END) * 86400
           + (k.j * 3607) % 86400
FROM activity a JOIN k ON k.j < (a.h * a.h) / 40000;

-- Sign-ins on consecutive days from a member-specific start, some twice a day.
WITH RECURSIVE k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j < 30)
INSERT INTO sign_ins (member_id, signed_in_at)
SELECT a.id, datetime(a.joined_at, '+' || ((a.id % 20) + k.j) || ' days', '+' || (k.j % 3) || ' hours')
FROM activity a JOIN k ON k.j < (a.h % 31);

INSERT INTO sign_ins (member_id, signed_in_at)
SELECT member_id, datetime(signed_in_at, '+4 hours') FROM sign_ins WHERE member_id % 7 = 0;

WITH courses(c, code) AS (VALUES (0, 'onboarding'), (1, 'python-101'), (2, 'safety'))
INSERT INTO enrollments (member_id, course_code, enrolled_on, progress_pct, passed)
SELECT a.id,
       courses.code,
       date(a.joined_at, '+' || (courses.c * 10) || ' days'),
       CASE WHEN (a.id + courses.c) % 4 = 0 THEN 100 ELSE (a.id * 37 + courses.c * 11) % 100 END,
       CASE WHEN (a.id + courses.c) % 4 = 0 AND a.id % 3 <> 0 THEN 1 ELSE 0 END
FROM activity a JOIN courses ON (a.id + courses.c) % 3 <> 0;

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
