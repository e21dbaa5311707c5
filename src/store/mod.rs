//! The evaluator's own tables: badges, awards and runs, in the awards database.
//!
//! Owns every write the evaluator makes. Awards are unique per (badge, member) in the
//! database itself and are inserted with "do nothing on conflict", in bounded batches, each
//! batch in its own transaction: a crash loses at most the batch in flight, and the next run
//! inserts it. Migrations are the `.sql` files under `sql/<database>/`, applied in order.

mod migrate;

pub use migrate::migrate;

use crate::config::plan::Badge;
use crate::db::Db;
use crate::evaluate::awards_frame;
use crate::instant::format_utc;
use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, Utc};
use polars::prelude::DataFrame;
use sqlx::{QueryBuilder, Row, Sqlite};

/// Award rows per INSERT statement: 5 bound values each keeps a statement far below SQLite's
/// 32,766-parameter limit (and, later, MySQL's 65,535 and PostgreSQL's 65,535).
pub const INSERT_BATCH_ROWS: usize = 1_000;

/// INSERT statements per transaction: a commit every 20,000 awards bounds what a crash can
/// undo while keeping commits (fsyncs) rare.
pub const STATEMENTS_PER_TRANSACTION: usize = 20;

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
    pub rule_type: String,
    pub status: String,
    pub criterion: String,
    pub first_published_at: Option<String>,
    pub updated_at: String,
    pub recipients: i64,
}

/// An award row as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredAward {
    pub badge_id: String,
    pub user_id: i64,
    pub awarded_at: String,
    pub source: String,
}

/// What happened to one badge in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct BadgeOutcome {
    pub badge_id: String,
    pub outcome: &'static str,
    pub awarded: u64,
    pub message: Option<String>,
}

/// Why a badge must be refused: it was published before with a different criterion.
pub fn rule_change_refusal(badge: &Badge, stored: &StoredBadge) -> Option<String> {
    let fingerprint = badge.criterion_fingerprint();
    match &stored.first_published_at {
        Some(published) if stored.criterion != fingerprint => Some(format!(
            "badge '{}' was published on {published} and its rule cannot change (stored: {}; config: {fingerprint}); \
             restore the rule, or create a new badge with a new id",
            badge.id, stored.criterion
        )),
        _ => None,
    }
}

/// The awards database.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
}

impl Store {
    pub fn new(db: Db) -> Self {
        Store { db }
    }

    fn pool(&self) -> &sqlx::SqlitePool {
        match &self.db {
            Db::Sqlite(pool) => pool,
        }
    }

    /// Whether `migrate` has created the tables (a dry run on a fresh database reads none).
    pub async fn is_migrated(&self) -> Result<bool> {
        let found: Option<(String,)> =
            sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'accolade_awards'")
                .fetch_optional(self.pool())
                .await
                .context("inspecting the awards database")?;
        Ok(found.is_some())
    }

    /// All stored badges with their recipient counts, by id.
    pub async fn badges(&self) -> Result<Vec<StoredBadge>> {
        if !self.is_migrated().await? {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT b.badge_id, b.name, b.rule_type, b.status, b.criterion, b.first_published_at, b.updated_at, \
             (SELECT COUNT(*) FROM accolade_awards a WHERE a.badge_id = b.badge_id) AS recipients \
             FROM accolade_badges b ORDER BY b.badge_id",
        )
        .fetch_all(self.pool())
        .await
        .context("reading accolade_badges")?;
        rows.iter()
            .map(|r| {
                Ok(StoredBadge {
                    badge_id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    rule_type: r.try_get(2)?,
                    status: r.try_get(3)?,
                    criterion: r.try_get(4)?,
                    first_published_at: r.try_get(5)?,
                    updated_at: r.try_get(6)?,
                    recipients: r.try_get(7)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .context("reading accolade_badges")
    }

    /// Records a badge definition (the caller has checked [`rule_change_refusal`]).
    pub async fn record_badge(&self, badge: &Badge, now: DateTime<Utc>) -> Result<()> {
        let now = format_utc(now);
        let fingerprint = badge.criterion_fingerprint();
        let published_now = (badge.status == crate::config::plan::BadgeStatus::Published).then(|| now.clone());
        sqlx::query(include_str!("../../sql/sqlite/record_badge.sql"))
            .bind(&badge.id)
            .bind(&badge.name)
            .bind(&badge.image)
            .bind(badge.points)
            .bind(badge.status.as_str())
            .bind(badge.hidden_until_earned)
            .bind(badge.criterion.type_name())
            .bind(&fingerprint)
            .bind(published_now)
            .bind(&now)
            .execute(self.pool())
            .await
            .with_context(|| format!("recording badge '{}'", badge.id))?;
        Ok(())
    }

    /// The existing awards of these badges as a `(badge_id, user_id)` frame.
    pub async fn existing_awards(&self, badge_ids: &[String]) -> Result<DataFrame> {
        let mut badges = Vec::new();
        let mut users = Vec::new();
        if self.is_migrated().await? {
            for chunk in badge_ids.chunks(INSERT_BATCH_ROWS) {
                let mut query =
                    QueryBuilder::<Sqlite>::new("SELECT badge_id, user_id FROM accolade_awards WHERE badge_id IN (");
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(id);
                }
                query.push(")");
                let rows = query.build().fetch_all(self.pool()).await.context("reading existing awards")?;
                for row in rows {
                    badges.push(row.try_get::<String, _>(0)?);
                    users.push(row.try_get::<i64, _>(1)?);
                }
            }
        }
        awards_frame(badges, users)
    }

    /// Inserts awards `(badge_id, user_id)` that do not exist yet; returns how many were new
    /// per badge id, in the order of the frame.
    pub async fn insert_awards(
        &self,
        awards: &DataFrame,
        awarded_at: DateTime<Utc>,
        source: AwardSource,
        run_id: Option<i64>,
    ) -> Result<Vec<(String, u64)>> {
        let badge_ids = awards.column("badge_id").and_then(|c| c.str().cloned())?;
        let user_ids = awards.column("user_id").and_then(|c| c.i64().cloned())?;
        let rows: Vec<(&str, i64)> = badge_ids
            .iter()
            .zip(user_ids.iter())
            .map(|(b, u)| b.zip(u).ok_or_else(|| anyhow!("an award without badge or member")))
            .collect::<Result<_>>()?;
        let awarded_at = format_utc(awarded_at);
        let mut counts: Vec<(String, u64)> = Vec::new();
        for transaction_rows in rows.chunks(INSERT_BATCH_ROWS * STATEMENTS_PER_TRANSACTION) {
            let mut tx = self.pool().begin().await.context("starting an awards transaction")?;
            for batch in transaction_rows.chunks(INSERT_BATCH_ROWS) {
                // One statement per badge in the batch, so rows_affected counts per badge.
                for group in batch.chunk_by(|a, b| a.0 == b.0) {
                    let mut query = QueryBuilder::<Sqlite>::new(
                        "INSERT INTO accolade_awards (badge_id, user_id, awarded_at, source, run_id) ",
                    );
                    query.push_values(group, |mut row, (badge, user)| {
                        row.push_bind(*badge)
                            .push_bind(*user)
                            .push_bind(&awarded_at)
                            .push_bind(source.as_str())
                            .push_bind(run_id);
                    });
                    query.push(" ON CONFLICT (badge_id, user_id) DO NOTHING");
                    let inserted = query.build().execute(&mut *tx).await.context("inserting awards")?.rows_affected();
                    match counts.last_mut() {
                        Some((badge, n)) if badge == group[0].0 => *n += inserted,
                        _ => counts.push((group[0].0.to_string(), inserted)),
                    }
                }
            }
            tx.commit().await.context("committing awards")?;
        }
        Ok(counts)
    }

    /// Starts a run record and returns its id.
    pub async fn begin_run(&self, started_at: DateTime<Utc>, as_of: DateTime<Utc>) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO accolade_runs (started_at, as_of, outcome) VALUES (?, ?, 'running') RETURNING run_id",
        )
        .bind(format_utc(started_at))
        .bind(format_utc(as_of))
        .fetch_one(self.pool())
        .await
        .context("recording the run start")?;
        Ok(row.try_get(0)?)
    }

    /// Completes a run record with its outcome and per-badge results.
    pub async fn finish_run(
        &self,
        run_id: i64,
        outcome: &str,
        badges: &[BadgeOutcome],
        message: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        let total: u64 = badges.iter().map(|b| b.awarded).sum();
        sqlx::query(
            "UPDATE accolade_runs SET finished_at = ?, outcome = ?, awards_total = ?, message = ? WHERE run_id = ?",
        )
        .bind(format_utc(Utc::now()))
        .bind(outcome)
        .bind(total as i64)
        .bind(message)
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
        for badge in badges {
            sqlx::query(
                "INSERT INTO accolade_run_badges (run_id, badge_id, outcome, awarded, message) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(run_id)
            .bind(&badge.badge_id)
            .bind(badge.outcome)
            .bind(badge.awarded as i64)
            .bind(&badge.message)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await.context("recording the run result")
    }

    /// Awards sorted by badge, then member; of some badges only if `badge_ids` is not empty.
    pub async fn awards(&self, badge_ids: &[String]) -> Result<Vec<StoredAward>> {
        if !self.is_migrated().await? {
            return Ok(Vec::new());
        }
        let mut query =
            QueryBuilder::<Sqlite>::new("SELECT badge_id, user_id, awarded_at, source FROM accolade_awards");
        if !badge_ids.is_empty() {
            query.push(" WHERE badge_id IN (");
            let mut list = query.separated(", ");
            for id in badge_ids {
                list.push_bind(id);
            }
            query.push(")");
        }
        query.push(" ORDER BY badge_id, user_id");
        let rows = query.build().fetch_all(self.pool()).await.context("reading awards")?;
        rows.iter()
            .map(|r| {
                Ok(StoredAward {
                    badge_id: r.try_get(0)?,
                    user_id: r.try_get(1)?,
                    awarded_at: r.try_get(2)?,
                    source: r.try_get(3)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .context("reading awards")
    }

    /// One member's awards with the run that made each (none for manual awards).
    pub async fn awards_of_member(&self, user_id: i64) -> Result<Vec<(StoredAward, Option<i64>)>> {
        if !self.is_migrated().await? {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT badge_id, user_id, awarded_at, source, run_id FROM accolade_awards WHERE user_id = ? ORDER BY badge_id",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await
        .with_context(|| format!("reading the awards of member {user_id}"))?;
        rows.iter()
            .map(|r| {
                let award = StoredAward {
                    badge_id: r.try_get(0)?,
                    user_id: r.try_get(1)?,
                    awarded_at: r.try_get(2)?,
                    source: r.try_get(3)?,
                };
                Ok((award, r.try_get(4)?))
            })
            .collect::<Result<_, sqlx::Error>>()
            .with_context(|| format!("reading the awards of member {user_id}"))
    }
}
