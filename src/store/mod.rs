//! The evaluator's own tables: badges, awards and runs, in the awards database.
//!
//! Owns every write the evaluator makes. Awards are unique per (badge, member) in the
//! database itself and are inserted with "do nothing on conflict", in bounded batches, each
//! batch in its own transaction: a crash loses at most the batch in flight, and the next run
//! inserts it. Migrations are the `.sql` files under `sql/<database>/`, applied in order.

mod incremental;
pub mod lock;
mod migrate;
mod outbox;
mod postgres;
mod recipients;

pub use recipients::{AwardRecord, CRITERIA_NO_LONGER_MET, DailyAwards, Followed, RevocationReport};

pub use postgres::COPY_AWARDS_PER_TRANSACTION;

pub use incremental::{IncrementalState, LaterRun};

pub use outbox::{LeaderboardRow, OutboxRow};

pub use lock::{RunLock, acquire as acquire_lock};
pub use migrate::{migrate, migrate_until};

use crate::config::plan::{Badge, BadgeStatus};
use crate::db::{Db, Dialect};
use crate::evaluate::granted_awards_frame;
use crate::instant::format_utc;
use crate::with_pool;
use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, Utc};
use polars::prelude::{Column, DataFrame};
use sqlx::{AssertSqlSafe, QueryBuilder, Row};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// Award rows per INSERT statement: 5 bound values each keeps a statement far below SQLite's
/// 32,766-parameter limit (and, later, MySQL's 65,535 and PostgreSQL's 65,535).
pub const INSERT_BATCH_ROWS: usize = 1_000;

/// INSERT statements per transaction: a commit every 20,000 awards bounds what a crash can
/// undo while keeping commits (fsyncs) rare.
pub const STATEMENTS_PER_TRANSACTION: usize = 20;

/// Awards committed per transaction, on every database.
pub const AWARDS_PER_TRANSACTION: usize = INSERT_BATCH_ROWS * STATEMENTS_PER_TRANSACTION;

/// What [`Store::insert_awards`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inserted {
    /// New awards per badge, in the order of the frame.
    pub counts: Vec<(String, u64)>,
    /// It stopped early, between transactions, because a stop was requested.
    pub stopped: bool,
}

/// How a badge's awards are stored: their source, and whether members are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwardKind {
    pub source: AwardSource,
    pub notify: bool,
}

/// How an award came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwardSource {
    Rule,
    Manual,
    Backfill,
}

impl AwardSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AwardSource::Rule => "rule",
            AwardSource::Manual => "manual",
            AwardSource::Backfill => "backfill",
        }
    }
}

/// A badge row as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredBadge {
    pub badge_id: String,
    pub name: String,
    pub image: Option<String>,
    pub points: i64,
    pub status: String,
    pub hidden_until_earned: bool,
    pub rule_type: String,
    pub criterion: String,
    pub first_published_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Members holding it (awards not revoked); `None` where only definitions were read.
    pub recipients: Option<i64>,
}

impl StoredBadge {
    /// Whether the config's definition differs from this row in anything stored.
    fn differs_from(&self, badge: &Badge) -> bool {
        self.name != badge.name
            || self.image != badge.image
            || self.points != badge.points
            || self.status != badge.status.as_str()
            || self.hidden_until_earned != badge.hidden_until_earned
            || self.rule_type != badge.criterion.type_name()
            || self.criterion != badge.criterion_fingerprint()
    }
}

/// An award row as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredAward {
    pub badge_id: String,
    pub user_id: i64,
    /// RFC 3339, UTC.
    pub awarded_at: String,
    pub source: String,
    /// The grant of a repeating badge (`2026-W23`, `2026-06`, `2026`, or an item); empty for a
    /// badge earned once.
    pub grant: String,
}

/// What happened to one badge in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct BadgeOutcome {
    pub badge_id: String,
    pub outcome: &'static str,
    pub awarded: u64,
    pub revoked: u64,
    pub restored: u64,
    pub message: Option<String>,
}

/// Why a badge must be refused: it was published before with a different criterion.
pub fn rule_change_refusal(badge: &Badge, stored: &StoredBadge) -> Option<String> {
    let fingerprint = badge.criterion_fingerprint();
    match &stored.first_published_at {
        Some(published) if stored.criterion != fingerprint => Some(format!(
            "badge '{}' was published on {} and its rule cannot change (stored: {}; config: {fingerprint}); \
             restore the rule, or create a new badge with a new id",
            badge.id,
            format_utc(*published),
            stored.criterion
        )),
        _ => None,
    }
}

/// The awards database.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

/// Every stored badge's definition, by id.
const BADGES: &str = "SELECT b.badge_id, b.name, b.image, b.points, b.status, b.hidden_until_earned, b.rule_type, \
     b.criterion, b.first_published_at, b.updated_at FROM accolade_badges b ORDER BY b.badge_id";

impl Store {
    pub fn new(db: Db) -> Self {
        Store { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// `sql` written with `?` placeholders, in this database's placeholder style.
    pub(crate) fn sql(&self, sql: &str) -> AssertSqlSafe<String> {
        AssertSqlSafe(placeholders(self.db.dialect(), sql))
    }

    /// Whether `migrate` has created the tables (a dry run on a fresh database reads none).
    pub async fn is_migrated(&self) -> Result<bool> {
        let sql = match self.db.dialect() {
            Dialect::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'accolade_awards'",
            Dialect::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_name = 'accolade_awards' AND table_schema = current_schema()"
            }
            Dialect::MySql => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_name = 'accolade_awards' AND table_schema = DATABASE()"
            }
        };
        let found: i64 = with_pool!(&self.db, pool => sqlx::query_scalar(sql).fetch_one(pool).await)
            .context("inspecting the awards database")?;
        Ok(found > 0)
    }

    /// All stored badges with their recipient counts, by id.
    pub async fn badges(&self) -> Result<Vec<StoredBadge>> {
        self.stored_badges(true).await
    }

    /// All stored badges' definitions, by id, without counting their recipients (a pass over
    /// every award that a run, which only compares definitions, need not pay for).
    pub async fn badge_definitions(&self) -> Result<Vec<StoredBadge>> {
        self.stored_badges(false).await
    }

    async fn stored_badges(&self, with_recipients: bool) -> Result<Vec<StoredBadge>> {
        if !self.is_migrated().await? {
            return Ok(Vec::new());
        }
        let sql = match with_recipients {
            true => include_str!("../../sql/common/badges_with_recipients.sql"),
            false => BADGES,
        };
        with_pool!(&self.db, pool => {
            let rows = sqlx::query(sql).fetch_all(pool).await.context("reading accolade_badges")?;
            rows.iter()
                .map(|r| {
                    Ok(StoredBadge {
                        badge_id: r.try_get(0)?,
                        name: r.try_get(1)?,
                        image: r.try_get(2)?,
                        points: r.try_get(3)?,
                        status: r.try_get(4)?,
                        hidden_until_earned: r.try_get(5)?,
                        rule_type: r.try_get(6)?,
                        criterion: r.try_get(7)?,
                        first_published_at: r.try_get(8)?,
                        updated_at: r.try_get(9)?,
                        recipients: if with_recipients { Some(r.try_get(10)?) } else { None },
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .context("reading accolade_badges")
        })
    }

    /// Records a badge definition (the caller has checked [`rule_change_refusal`] against
    /// `stored`). Presentation fields apply to earlier recipients too; `first_published_at`
    /// is set the first time the badge is published; `updated_at` moves only on a change.
    pub async fn record_badge(&self, badge: &Badge, stored: Option<&StoredBadge>, now: DateTime<Utc>) -> Result<()> {
        let published = (badge.status == BadgeStatus::Published).then_some(now);
        let fingerprint = badge.criterion_fingerprint();
        let sql = match stored {
            None => self.insert_ignore(
                "accolade_badges",
                "(name, image, points, status, hidden_until_earned, rule_type, criterion, first_published_at, \
                 updated_at, badge_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                "badge_id",
            ),
            Some(s) if s.differs_from(badge) => self.sql(
                "UPDATE accolade_badges SET name = ?, image = ?, points = ?, status = ?, hidden_until_earned = ?, \
                 rule_type = ?, criterion = ?, first_published_at = COALESCE(first_published_at, ?), updated_at = ? \
                 WHERE badge_id = ?",
            ),
            Some(_) => return Ok(()),
        };
        with_pool!(&self.db, pool => {
            let query = sqlx::query(sql)
                .bind(&badge.name)
                .bind(&badge.image)
                .bind(badge.points)
                .bind(badge.status.as_str())
                .bind(badge.hidden_until_earned)
                .bind(badge.criterion.type_name())
                .bind(&fingerprint)
                .bind(published)
                .bind(now)
                .bind(&badge.id);
            // The INSERT also sets created_at.
            let query = if stored.is_none() { query.bind(now) } else { query };
            query.execute(pool).await.map(|_| ())
        })
        .with_context(|| format!("recording badge '{}'", badge.id))
    }

    /// `INSERT ... VALUES ...` that skips rows whose key exists, in this database's words.
    /// On MySQL this is `ON DUPLICATE KEY UPDATE key = key`, not `INSERT IGNORE`, which would
    /// also turn a too-long value into a silent truncation.
    pub(crate) fn insert_ignore(&self, table: &str, rest: &str, key: &str) -> AssertSqlSafe<String> {
        match self.db.dialect() {
            Dialect::MySql => self.sql(&format!("INSERT INTO {table} {rest} ON DUPLICATE KEY UPDATE {key} = {key}")),
            Dialect::Sqlite | Dialect::Postgres => {
                self.sql(&format!("{}{rest}{}", self.insert_head(table), self.conflict_suffix()))
            }
        }
    }

    /// The existing awards of these badges as a `(badge_id, user_id, grant)` frame.
    pub async fn existing_awards(&self, badge_ids: &[String]) -> Result<DataFrame> {
        self.existing_awards_of(badge_ids, None).await
    }

    /// The existing awards of these badges, of `members` only if given (sorted ids; the
    /// filter is pushed into the query).
    pub async fn existing_awards_of(&self, badge_ids: &[String], members: Option<&[i64]>) -> Result<DataFrame> {
        let of_members = members
            .map(|m| format!(" AND {}", crate::sources::members_condition(self.db.dialect(), m)))
            .unwrap_or_default();
        if let Db::Postgres(pool) = &self.db {
            return match self.is_migrated().await? {
                true => postgres::existing_awards(pool, badge_ids, &of_members).await,
                false => granted_awards_frame(Vec::new(), Vec::new(), Vec::new()),
            };
        }
        let mut badges = Vec::new();
        let mut users = Vec::new();
        let mut grants = Vec::new();
        if self.is_migrated().await? {
            for chunk in badge_ids.chunks(INSERT_BATCH_ROWS) {
                with_pool!(&self.db, pool => {
                    let mut query = QueryBuilder::new("SELECT badge_id, user_id, grant_key FROM accolade_awards WHERE badge_id IN (");
                    let mut list = query.separated(", ");
                    for id in chunk {
                        list.push_bind(id);
                    }
                    query.push(")");
                    query.push(of_members.as_str());
                    let rows = query.build().fetch_all(pool).await.context("reading existing awards")?;
                    for row in rows {
                        badges.push(row.try_get::<String, _>(0)?);
                        users.push(row.try_get::<i64, _>(1)?);
                        grants.push(row.try_get::<String, _>(2)?);
                    }
                })
            }
        }
        granted_awards_frame(badges, users, grants)
    }

    /// Inserts awards `(badge_id, user_id)` that do not exist yet, and queues the announced
    /// ones in the outbox in the same transaction. `kinds` gives each badge's source and
    /// whether its awards are announced (badges not in it: `default`). With `stop` set it
    /// stops between transactions, so everything committed stays whole.
    ///
    /// Rows are written in the table's key order (member, then badge) with plain inserts (on
    /// PostgreSQL, COPY) and no conflict check: a run holds the run lock and removed existing
    /// awards with an anti-join, so they are all new unless another writer raced it. Then the
    /// key refuses that transaction, which is rolled back whole and written again skipping the
    /// pairs that exist.
    pub async fn insert_awards(
        &self,
        awards: &DataFrame,
        awarded_at: DateTime<Utc>,
        kinds: &HashMap<String, AwardKind>,
        default: AwardKind,
        run_id: Option<i64>,
        stop: Option<&AtomicBool>,
    ) -> Result<Inserted> {
        let badge_ids = awards.column("badge_id").and_then(|c| c.str().cloned())?;
        let user_ids = awards.column("user_id").and_then(|c| c.i64().cloned())?;
        // A frame without grants (badges earned once) has the empty grant throughout.
        let grants = match awards.column("grant") {
            Ok(column) => column.str()?.clone(),
            Err(_) => Column::new("grant".into(), vec![""; awards.height()]).str()?.clone(),
        };
        let mut rows: Vec<AwardKey> = badge_ids
            .iter()
            .zip(user_ids.iter())
            .zip(grants.iter())
            .map(|((b, u), g)| match (b, u) {
                (Some(b), Some(u)) => Ok((b, u, g.unwrap_or(""))),
                _ => Err(anyhow!("an award without badge or member")),
            })
            .collect::<Result<_>>()?;
        let badges = badge_order(&rows);
        rows.sort_unstable_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(b.0)).then_with(|| a.2.cmp(b.2)));
        let kind_of = |badge: &str| kinds.get(badge).copied().unwrap_or(default);
        let (per_badge, stopped) = match &self.db {
            Db::Postgres(pool) => postgres::insert_awards(pool, &rows, awarded_at, kind_of, run_id, stop).await?,
            _ => self.insert_in_statements(&rows, awarded_at, kind_of, run_id, stop).await?,
        };
        let counts = badges.into_iter().map(|b| (b.to_string(), per_badge.get(b).copied().unwrap_or(0))).collect();
        Ok(Inserted { counts, stopped })
    }

    /// SQLite and MySQL: `rows` (in key order) in multi-row inserts of [`INSERT_BATCH_ROWS`],
    /// [`AWARDS_PER_TRANSACTION`] per transaction; new awards per badge, and whether it stopped.
    async fn insert_in_statements<'a>(
        &self,
        rows: &[AwardKey<'a>],
        awarded_at: DateTime<Utc>,
        kind_of: impl Fn(&str) -> AwardKind,
        run_id: Option<i64>,
        stop: Option<&AtomicBool>,
    ) -> Result<(HashMap<&'a str, u64>, bool)> {
        let mut per_badge: HashMap<&str, u64> = HashMap::new();
        for chunk in rows.chunks(AWARDS_PER_TRANSACTION) {
            if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
                return Ok((per_badge, true));
            }
            match self.append_chunk(chunk, awarded_at, &kind_of, run_id).await {
                Ok(()) => count_rows(chunk, &mut per_badge),
                Err(error) if is_unique_violation(&error) => {
                    tracing::debug!("a concurrent writer stored some of these awards: skipping them");
                    for (badge, n) in self.insert_skipping_existing(chunk, awarded_at, &kind_of, run_id).await? {
                        *per_badge.entry(badge).or_default() += n;
                    }
                }
                Err(error) => return Err(anyhow::Error::new(error).context("inserting awards")),
            }
        }
        Ok((per_badge, false))
    }

    /// The fast path: one transaction of plain multi-row inserts of the chunk's awards, and of
    /// the announced ones into the outbox, with no conflict check (a pair that exists fails the
    /// transaction, and nothing of it is kept).
    async fn append_chunk(
        &self,
        chunk: &[AwardKey<'_>],
        awarded_at: DateTime<Utc>,
        kind_of: &impl Fn(&str) -> AwardKind,
        run_id: Option<i64>,
    ) -> Result<(), sqlx::Error> {
        let announced: Vec<AwardKey> = chunk.iter().filter(|(badge, _, _)| kind_of(badge).notify).copied().collect();
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            for batch in chunk.chunks(INSERT_BATCH_ROWS) {
                let mut query = QueryBuilder::new(format!("INSERT INTO {AWARD_COLUMNS} "));
                award_values!(query, batch, awarded_at, run_id, kind_of);
                query.build().execute(&mut *tx).await?;
            }
            for batch in announced.chunks(INSERT_BATCH_ROWS) {
                let mut query = QueryBuilder::new(format!("INSERT INTO {OUTBOX_COLUMNS} "));
                query.push_values(batch, |mut row, (badge, user, grant)| {
                    row.push_bind(*badge).push_bind(*user).push_bind(*grant).push_bind(awarded_at).push_bind("deferred");
                });
                query.build().execute(&mut *tx).await?;
            }
            tx.commit().await
        })
    }

    /// The fallback after a race: the chunk again in one transaction of conflict-ignoring
    /// inserts, one statement per badge so that each counts its own new awards.
    async fn insert_skipping_existing<'a>(
        &self,
        chunk: &[AwardKey<'a>],
        awarded_at: DateTime<Utc>,
        kind_of: &impl Fn(&str) -> AwardKind,
        run_id: Option<i64>,
    ) -> Result<Vec<(&'a str, u64)>> {
        let mut by_badge = chunk.to_vec();
        by_badge.sort_unstable();
        let head = self.insert_head(AWARD_COLUMNS);
        let suffix = self.conflict_suffix();
        let queue_head = self.insert_head(OUTBOX_COLUMNS);
        let mut counts = Vec::new();
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await.context("starting an awards transaction")?;
            for batch in by_badge.chunks(INSERT_BATCH_ROWS) {
                for group in batch.chunk_by(|a, b| a.0 == b.0) {
                    let badge = group[0].0;
                    let kind = kind_of(badge);
                    let mut query = QueryBuilder::new(head.as_str());
                    award_values!(query, group, awarded_at, run_id, kind_of);
                    query.push(suffix);
                    let inserted = query.build().execute(&mut *tx).await.context("inserting awards")?.rows_affected();
                    // Queue what the stored awards say to announce: a pair that already
                    // existed keeps its own flag, and the outbox key stops a second queueing.
                    // Awards not to announce (a quiet backfill) queue nothing new: a pair
                    // another writer stored was queued by that writer.
                    if kind.notify {
                        let mut queue = QueryBuilder::new(queue_head.as_str());
                        queue.push("SELECT badge_id, user_id, grant_key, ").push_bind(awarded_at);
                        queue.push(", 'deferred' FROM accolade_awards WHERE notify = ").push_bind(true);
                        // A row-value list, not a chain of ORs: SQLite refuses expressions
                        // deeper than 1,000, and a group holds up to INSERT_BATCH_ROWS pairs.
                        queue.push(" AND badge_id = ").push_bind(badge).push(" AND (user_id, grant_key) IN (");
                        queue.push(self.row_list_head());
                        for (i, (_, user, grant)) in group.iter().enumerate() {
                            if i > 0 {
                                queue.push(", ");
                            }
                            queue.push("(").push_bind(*user).push(", ").push_bind(*grant).push(")");
                        }
                        queue.push(")").push(suffix);
                        queue.build().execute(&mut *tx).await.context("queueing notifications")?;
                    }
                    counts.push((badge, inserted));
                }
            }
            tx.commit().await.context("committing awards")?;
        });
        Ok(counts)
    }

    /// What opens a list of row values on the right of `(a, b) IN (…)`: SQLite takes only a
    /// subquery there (`VALUES (…), (…)`), MariaDB only the bare list.
    fn row_list_head(&self) -> &'static str {
        match self.db.dialect() {
            Dialect::MySql => "",
            Dialect::Sqlite | Dialect::Postgres => "VALUES ",
        }
    }

    /// `INSERT [IGNORE] INTO table (columns) ` for a conflict-ignoring insert.
    fn insert_head(&self, table_and_columns: &str) -> String {
        match self.db.dialect() {
            Dialect::MySql => format!("INSERT IGNORE INTO {table_and_columns} "),
            Dialect::Sqlite | Dialect::Postgres => format!("INSERT INTO {table_and_columns} "),
        }
    }

    /// The ` ON CONFLICT (key) DO NOTHING` that ends a conflict-ignoring insert (nothing on
    /// MySQL, where the head says IGNORE).
    fn conflict_suffix(&self) -> &'static str {
        match self.db.dialect() {
            Dialect::MySql => "",
            Dialect::Sqlite | Dialect::Postgres => " ON CONFLICT DO NOTHING",
        }
    }

    /// Starts a run record and returns its id.
    pub async fn begin_run(&self, started_at: DateTime<Utc>, as_of: DateTime<Utc>, shard: &str) -> Result<i64> {
        let insert = "INSERT INTO accolade_runs (started_at, as_of, outcome, shard) VALUES (?, ?, 'running', ?)";
        let id = match &self.db {
            Db::MySql(pool) => sqlx::query(insert)
                .bind(started_at)
                .bind(as_of)
                .bind(shard)
                .execute(pool)
                .await
                .map(|r| r.last_insert_id() as i64),
            db => {
                let sql = self.sql(&format!("{insert} RETURNING run_id"));
                match db {
                    Db::Postgres(pool) => {
                        sqlx::query_scalar(sql).bind(started_at).bind(as_of).bind(shard).fetch_one(pool).await
                    }
                    Db::Sqlite(pool) => {
                        sqlx::query_scalar(sql).bind(started_at).bind(as_of).bind(shard).fetch_one(pool).await
                    }
                    Db::MySql(_) => unreachable!("handled above"),
                }
            }
        };
        id.context("recording the run start")
    }

    /// The latest instant a finished run of `shard` evaluated (`None` before the first).
    pub async fn latest_as_of(&self, shard: &str) -> Result<Option<DateTime<Utc>>> {
        let sql =
            self.sql("SELECT MAX(as_of) FROM accolade_runs WHERE outcome IN ('success', 'partial') AND shard = ?");
        with_pool!(&self.db, pool => sqlx::query_scalar::<_, Option<DateTime<Utc>>>(sql).bind(shard).fetch_one(pool).await)
            .context("reading the last run")
    }

    /// Marks this shard's runs still recorded as `running` as failed: the caller holds the
    /// shard's lock, so their processes died (killed, out of memory) before finishing.
    pub async fn fail_abandoned_runs(&self, shard: &str, now: DateTime<Utc>) -> Result<u64> {
        let sql = self.sql(
            "UPDATE accolade_runs SET outcome = 'failed', finished_at = ?, \
             message = 'the process stopped before the run finished; a later run completed the work' \
             WHERE outcome = 'running' AND shard = ?",
        );
        with_pool!(&self.db, pool => sqlx::query(sql).bind(now).bind(shard).execute(pool).await.map(|r| r.rows_affected()))
            .context("closing abandoned runs")
    }

    /// Completes a run record with its outcome and per-badge results.
    pub async fn finish_run(
        &self,
        run_id: i64,
        outcome: &str,
        badges: &[BadgeOutcome],
        message: Option<&str>,
    ) -> Result<()> {
        let total: u64 = badges.iter().map(|b| b.awarded).sum();
        let update = self.sql(
            "UPDATE accolade_runs SET finished_at = ?, outcome = ?, awards_total = ?, message = ? WHERE run_id = ?",
        );
        let insert = self.sql(
            "INSERT INTO accolade_run_badges (run_id, badge_id, outcome, awarded, message, revoked, restored) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        );
        with_pool!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(update)
                .bind(Utc::now())
                .bind(outcome)
                .bind(total as i64)
                .bind(message)
                .bind(run_id)
                .execute(&mut *tx)
                .await?;
            for badge in badges {
                sqlx::query(AssertSqlSafe(insert.0.clone()))
                    .bind(run_id)
                    .bind(&badge.badge_id)
                    .bind(badge.outcome)
                    .bind(badge.awarded as i64)
                    .bind(&badge.message)
                    .bind(badge.revoked as i64)
                    .bind(badge.restored as i64)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        })
        .context("recording the run result")
    }

    /// Awards sorted by badge, then member; of some badges only if `badge_ids` is not empty.
    pub async fn awards(&self, badge_ids: &[String]) -> Result<Vec<StoredAward>> {
        Ok(self.award_rows(badge_ids, None).await?.into_iter().map(|(award, _)| award).collect())
    }

    /// One member's awards with the run that made each (none for manual awards).
    pub async fn awards_of_member(&self, user_id: i64) -> Result<Vec<(StoredAward, Option<i64>)>> {
        self.award_rows(&[], Some(user_id)).await
    }

    async fn award_rows(&self, badge_ids: &[String], user_id: Option<i64>) -> Result<Vec<(StoredAward, Option<i64>)>> {
        if !self.is_migrated().await? {
            return Ok(Vec::new());
        }
        with_pool!(&self.db, pool => {
            let mut query = QueryBuilder::new("SELECT badge_id, user_id, awarded_at, source, run_id, grant_key FROM accolade_awards WHERE 1 = 1");
            if !badge_ids.is_empty() {
                query.push(" AND badge_id IN (");
                let mut list = query.separated(", ");
                for id in badge_ids {
                    list.push_bind(id);
                }
                query.push(")");
            }
            if let Some(user_id) = user_id {
                query.push(" AND user_id = ").push_bind(user_id);
            }
            query.push(" ORDER BY badge_id, user_id, grant_key");
            let rows = query.build().fetch_all(pool).await.context("reading awards")?;
            rows.iter()
                .map(|r| {
                    let award = StoredAward {
                        badge_id: r.try_get(0)?,
                        user_id: r.try_get(1)?,
                        awarded_at: format_utc(r.try_get::<DateTime<Utc>, _>(2)?),
                        source: r.try_get(3)?,
                        grant: r.try_get(5)?,
                    };
                    Ok((award, r.try_get(4)?))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .context("reading awards")
        })
    }
}

/// An award's key: badge, member and grant (empty for a badge earned once).
pub type AwardKey<'a> = (&'a str, i64, &'a str);

/// The table and columns award rows are inserted into.
const AWARD_COLUMNS: &str = "accolade_awards (badge_id, user_id, grant_key, awarded_at, source, run_id, notify)";

/// The table and columns announced awards are queued into.
const OUTBOX_COLUMNS: &str = "accolade_outbox (badge_id, user_id, grant_key, created_at, state)";

/// Pushes `VALUES` of award rows `(badge, member)` onto an insert of [`AWARD_COLUMNS`], each
/// with its badge's source and notify flag (a macro: each database's query builder is its own
/// type).
macro_rules! award_values {
    ($query:expr, $rows:expr, $awarded_at:expr, $run_id:expr, $kind_of:expr) => {
        $query.push_values($rows, |mut row, (badge, user, grant)| {
            let kind = $kind_of(badge);
            row.push_bind(*badge)
                .push_bind(*user)
                .push_bind(*grant)
                .push_bind($awarded_at)
                .push_bind(kind.source.as_str())
                .push_bind($run_id)
                .push_bind(kind.notify);
        })
    };
}
use award_values;

/// The badges of `rows` in the order they first appear.
fn badge_order<'a>(rows: &[AwardKey<'a>]) -> Vec<&'a str> {
    let mut seen = std::collections::HashSet::new();
    rows.iter().map(|(badge, _, _)| *badge).filter(|badge| seen.insert(*badge)).collect()
}

/// Adds each badge's rows in `rows` to `per_badge`.
fn count_rows<'a>(rows: &[AwardKey<'a>], per_badge: &mut HashMap<&'a str, u64>) {
    for (badge, _, _) in rows {
        *per_badge.entry(badge).or_default() += 1;
    }
}

/// Whether a write failed on a unique key (another writer stored one of the pairs).
fn is_unique_violation(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|e| e.is_unique_violation())
}

/// A second copy of a prepared SQL string (each query takes its own).
pub(crate) fn clone_sql(sql: &AssertSqlSafe<String>) -> AssertSqlSafe<String> {
    AssertSqlSafe(sql.0.clone())
}

/// Rewrites `?` placeholders as `$1, $2, ...` for PostgreSQL (no `?` appears in our SQL
/// otherwise).
pub fn placeholders(dialect: Dialect, sql: &str) -> String {
    if dialect != Dialect::Postgres {
        return sql.to_string();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for ch in sql.chars() {
        if ch == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(ch);
        }
    }
    out
}
