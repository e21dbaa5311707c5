-- The awards table keeps one index: its primary key, member first (InnoDB clusters the rows
-- by it). The key still keeps each (badge, member) once, and host platforms read a member's
-- badges through it (`WHERE user_id = …`), so the separate member index goes. See
-- sql/postgres/0004_awards_key.sql for the measurement.
ALTER TABLE accolade_awards DROP PRIMARY KEY, ADD PRIMARY KEY (user_id, badge_id), DROP KEY accolade_awards_by_user;
