//! Backfill bookkeeping, the notification outbox, and the leaderboard.
//!
//! A badge's first evaluation after it is published is its backfill, recorded per shard in
//! `accolade_backfills`. Announced awards enter `accolade_outbox` as `deferred` (see
//! [`Store::insert_awards`]); [`Store::release_notifications`] moves at most
//! `max_per_run` of them to `pending` per run, oldest first, for the host's mailer.

use super::Store;
use crate::db::Dialect;
use crate::instant::format_utc;
use crate::with_pool;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row};
use std::collections::HashSet;

/// Keys released per UPDATE statement.
/// An outbox row as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxRow {
    pub badge_id: String,
    pub user_id: i64,
    pub created_at: String,
    pub state: String,
    /// The grant announced (empty for a badge earned once).
    pub grant: String,
    /// `awarded`, or with `[notifications] on_revoke = "all"` `revoked` or `restored`.
    pub event: String,
}

/// A leaderboard line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeaderboardRow {
    pub rank: u64,
    pub user_id: i64,
    pub points: i64,
    pub badges: i64,
}

impl Store {
    /// Badges whose backfill completed for `shard` (or for an unsharded run).
    pub async fn backfilled(&self, shard: &str) -> Result<HashSet<String>> {
        if !self.is_migrated().await? {
            return Ok(HashSet::new());
        }
        let sql = self.sql("SELECT badge_id FROM accolade_backfills WHERE shard = ? OR shard = '0/1'");
        let ids: Vec<String> = with_pool!(self.db(), pool => sqlx::query_scalar(sql).bind(shard).fetch_all(pool).await)
            .context("reading accolade_backfills")?;
        Ok(ids.into_iter().collect())
    }

    /// Records that these badges' backfills completed for `shard`.
    pub async fn mark_backfilled(&self, badge_ids: &[String], shard: &str, now: DateTime<Utc>) -> Result<()> {
        let sql =
            self.insert_ignore("accolade_backfills", "(badge_id, shard, completed_at) VALUES (?, ?, ?)", "badge_id");
        for id in badge_ids {
            with_pool!(self.db(), pool => sqlx::query(crate::store::clone_sql(&sql))
                .bind(id)
                .bind(shard)
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ()))
            .with_context(|| format!("recording the backfill of badge '{id}'"))?;
        }
        Ok(())
    }

    /// Moves deferred notifications to `pending`, oldest first, at most `max` of them (all
    /// when `None`); returns how many.
    ///
    /// One statement: the oldest keys are chosen inside the database (a derived table, which
    /// MySQL needs to select from the table it updates). Sending the keys back in lists made
    /// PostgreSQL compare every deferred row with every listed key, seconds per thousand.
    pub async fn release_notifications(&self, max: Option<u64>, now: DateTime<Utc>) -> Result<u64> {
        let sql = match max {
            None => "UPDATE accolade_outbox SET state = 'pending', queued_at = ? WHERE state = 'deferred'".to_string(),
            Some(n) => format!(
                "UPDATE accolade_outbox SET state = 'pending', queued_at = ? WHERE state = 'deferred' \
                 AND (badge_id, user_id, grant_key, event) IN (SELECT badge_id, user_id, grant_key, event FROM \
                 (SELECT badge_id, user_id, grant_key, event FROM accolade_outbox WHERE state = 'deferred' \
                 ORDER BY created_at, badge_id, user_id, grant_key, event LIMIT {n}) AS oldest)"
            ),
        };
        let sql = self.sql(&sql);
        with_pool!(self.db(), pool => sqlx::query(sql).bind(now).execute(pool).await.map(|r| r.rows_affected()))
            .context("releasing notifications")
    }

    /// The outbox, oldest first.
    pub async fn outbox(&self) -> Result<Vec<OutboxRow>> {
        if !self.is_migrated().await? {
            return Ok(Vec::new());
        }
        let sql = "SELECT badge_id, user_id, created_at, state, grant_key, event FROM accolade_outbox \
             ORDER BY created_at, badge_id, user_id, grant_key, event";
        with_pool!(self.db(), pool => {
            let rows = sqlx::query(sql).fetch_all(pool).await.context("reading the outbox")?;
            rows.iter()
                .map(|r| {
                    Ok(OutboxRow {
                        badge_id: r.try_get(0)?,
                        user_id: r.try_get(1)?,
                        created_at: format_utc(r.try_get::<DateTime<Utc>, _>(2)?),
                        state: r.try_get(3)?,
                        grant: r.try_get(4)?,
                        event: r.try_get(5)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .context("reading the outbox")
        })
    }

    /// Members ranked by the points of the badges they hold (awarded at or after `since`),
    /// then by badge count, then by id; the first `top` if given.
    pub async fn leaderboard(&self, top: Option<u64>, since: Option<DateTime<Utc>>) -> Result<Vec<LeaderboardRow>> {
        if !self.is_migrated().await? {
            return Ok(Vec::new());
        }
        // A SUM of BIGINT is NUMERIC on PostgreSQL and DECIMAL on MySQL: cast it back.
        let points = match self.db().dialect() {
            Dialect::Sqlite => "COALESCE(SUM(b.points), 0)",
            Dialect::Postgres => "CAST(COALESCE(SUM(b.points), 0) AS BIGINT)",
            Dialect::MySql => "CAST(COALESCE(SUM(b.points), 0) AS SIGNED)",
        };
        let head = format!(
            "SELECT a.user_id, {points} AS points, COUNT(*) AS badges \
             FROM accolade_awards a JOIN accolade_badges b ON b.badge_id = a.badge_id"
        );
        with_pool!(self.db(), pool => {
            let mut query = QueryBuilder::new(head.as_str());
            query.push(" WHERE a.revoked_at IS NULL");
            if let Some(since) = since {
                query.push(" AND a.awarded_at >= ").push_bind(since);
            }
            query.push(" GROUP BY a.user_id ORDER BY points DESC, badges DESC, a.user_id");
            if let Some(top) = top {
                query.push(format!(" LIMIT {top}"));
            }
            let rows = query.build().fetch_all(pool).await.context("reading the leaderboard")?;
            rows.iter()
                .enumerate()
                .map(|(i, r)| {
                    Ok(LeaderboardRow {
                        rank: i as u64 + 1,
                        user_id: r.try_get(0)?,
                        points: r.try_get(1)?,
                        badges: r.try_get(2)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .context("reading the leaderboard")
        })
    }
}
