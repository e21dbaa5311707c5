-- The awards table keeps one index: its primary key, member first. The key still keeps each
-- (badge, member) once, and host platforms read a member's badges through it
-- (`WHERE user_id = …`), so the separate member index goes. Storing a 1M-member first run's
-- 3.5M awards with COPY took 11.8–13.8 s with both indexes and 7.7–8.0 s with this one key
-- (BENCHMARKS.md). Reads by badge (recipient counts, exports) scan the table; a host that
-- lists a badge's recipients often can add its own index on badge_id.
ALTER TABLE accolade_awards DROP CONSTRAINT accolade_awards_pkey;
ALTER TABLE accolade_awards ADD CONSTRAINT accolade_awards_pkey PRIMARY KEY (user_id, badge_id);
DROP INDEX IF EXISTS accolade_awards_by_user;
