//! What exports and reports need of the awards beyond the evaluator's own use: each award's
//! revocation and recipient salt, and how many members received each badge per day.
//!
//! Owns `accolade_award_salts` (one random salt per award, written once and never changed,
//! so that a re-export hashes a recipient the same way) and the `revoked_at` /
//! `revocation_reason` columns of `accolade_awards`.

use super::{INSERT_BATCH_ROWS, Store};
use crate::db::Dialect;
use crate::with_pool;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Row};
use std::collections::{HashMap, HashSet};

/// One award with everything an export shows of it.
#[derive(Debug, Clone, PartialEq)]
pub struct AwardRecord {
    pub badge_id: String,
    pub user_id: i64,
    pub awarded_at: DateTime<Utc>,
    pub source: String,
    /// The grant of a repeating badge; empty for a badge earned once.
    pub grant: String,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revocation_reason: Option<String>,
    /// The recipient salt, once one was assigned.
    pub salt: Option<String>,
}

/// What a revocation (or its undoing) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationReport {
    /// Members whose award changed.
    pub changed: Vec<i64>,
    /// Members whose award was already in the requested state.
    pub unchanged: Vec<i64>,
    /// Members who do not hold the badge at all.
    pub not_held: Vec<i64>,
}

/// The reason a run records when it withdraws an award whose criterion no longer holds.
pub const CRITERIA_NO_LONGER_MET: &str = "criteria no longer met";

/// What following the criteria did to one badge's awards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Followed {
    pub revoked: u64,
    pub restored: u64,
}

/// Recipients of one badge on one UTC day (revoked awards left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyAwards {
    pub badge_id: String,
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub awards: i64,
}

impl Store {
    /// Awards sorted by badge, then member, with revocation and salt; of some badges only if
    /// `badge_ids` is not empty.
    pub async fn award_records(&self, badge_ids: &[String]) -> Result<Vec<AwardRecord>> {
        if !self.is_migrated().await? {
            return Ok(Vec::new());
        }
        let head = "SELECT a.badge_id, a.user_id, a.awarded_at, a.source, a.revoked_at, a.revocation_reason, s.salt, \
                    a.grant_key FROM accolade_awards a LEFT JOIN accolade_award_salts s \
                    ON s.badge_id = a.badge_id AND s.user_id = a.user_id AND s.grant_key = a.grant_key WHERE 1 = 1";
        with_pool!(self.db(), pool => {
            let mut query = QueryBuilder::new(head);
            if !badge_ids.is_empty() {
                query.push(" AND a.badge_id IN (");
                let mut list = query.separated(", ");
                for id in badge_ids {
                    list.push_bind(id);
                }
                query.push(")");
            }
            query.push(" ORDER BY a.badge_id, a.user_id, a.grant_key");
            let rows = query.build().fetch_all(pool).await.context("reading awards")?;
            rows.iter()
                .map(|r| {
                    Ok(AwardRecord {
                        badge_id: r.try_get(0)?,
                        user_id: r.try_get(1)?,
                        awarded_at: r.try_get(2)?,
                        source: r.try_get(3)?,
                        revoked_at: r.try_get(4)?,
                        revocation_reason: r.try_get(5)?,
                        salt: r.try_get(6)?,
                        grant: r.try_get(7)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .context("reading awards")
        })
    }

    /// Gives each listed award a fresh random salt unless it has one (a concurrent export may
    /// have assigned it first: its salt is kept, so read the salts back after this).
    pub async fn assign_salts(&self, awards: &[super::AwardKey<'_>], now: DateTime<Utc>) -> Result<()> {
        // The same conflict-skipping insert as awards use (salts are 32 hex digits: no value
        // can be too long, so MySQL's INSERT IGNORE hides nothing).
        let head = self.insert_head("accolade_award_salts (badge_id, user_id, grant_key, salt, created_at)");
        let suffix = self.conflict_suffix();
        for transaction_rows in awards.chunks(super::AWARDS_PER_TRANSACTION) {
            with_pool!(self.db(), pool => {
                let mut tx = pool.begin().await.context("starting a salts transaction")?;
                for batch in transaction_rows.chunks(INSERT_BATCH_ROWS) {
                    let mut query = QueryBuilder::new(head.as_str());
                    query.push_values(batch, |mut row, (badge, user, grant)| {
                        row.push_bind(*badge).push_bind(*user).push_bind(*grant).push_bind(new_salt()).push_bind(now);
                    });
                    query.push(suffix);
                    query.build().execute(&mut *tx).await.context("storing recipient salts")?;
                }
                tx.commit().await.context("committing recipient salts")?;
            });
        }
        Ok(())
    }

    /// Makes the rule awards of `badge_ids` (badges earned once, with `revoke_when_unmet`)
    /// follow their criteria for the members a run evaluated (`shard`'s, or all, or `members`
    /// of an incremental pass): revokes those
    /// held by members not in `qualifying` (`badge_id`, `user_id`) with the reason
    /// [`CRITERIA_NO_LONGER_MET`], and restores those it revoked before whose members qualify
    /// again (the same row: its award time and source stay). Manual awards, and awards revoked
    /// by hand, are left alone. With `announce`, each change queues a `revoked` or `restored`
    /// notification in the outbox (in the same transaction).
    pub async fn follow_criteria(
        &self,
        badge_ids: &[String],
        qualifying: &polars::prelude::DataFrame,
        shard: Option<crate::sources::Shard>,
        members: Option<&[i64]>,
        announce: bool,
        now: DateTime<Utc>,
    ) -> Result<HashMap<String, Followed>> {
        use polars::prelude::*;
        let mut result: HashMap<String, Followed> = HashMap::new();
        if badge_ids.is_empty() {
            return Ok(result);
        }
        let (mut badges, mut users, mut active) = (Vec::new(), Vec::new(), Vec::new());
        with_pool!(self.db(), pool => {
            let mut query = QueryBuilder::new(
                "SELECT badge_id, user_id, revoked_at IS NULL FROM accolade_awards WHERE grant_key = '' \
                 AND source <> 'manual' AND (revoked_at IS NULL OR revoked_by = 'rule') AND badge_id IN (",
            );
            let mut list = query.separated(", ");
            for id in badge_ids {
                list.push_bind(id);
            }
            query.push(")");
            if let Some(members) = members {
                query.push(" AND ").push(crate::sources::members_condition(self.db().dialect(), members));
            }
            let rows = query.build().fetch_all(pool).await.context("reading the awards that follow their criteria")?;
            for row in rows {
                badges.push(row.try_get::<String, _>(0)?);
                users.push(row.try_get::<i64, _>(1)?);
                active.push(row.try_get::<bool, _>(2)?);
            }
        });
        let failed = |e: PolarsError| anyhow::anyhow!("comparing awards with their criteria: {e}");
        let held = DataFrame::new(
            users.len(),
            vec![
                Column::new("badge_id".into(), badges),
                Column::new("user_id".into(), users),
                Column::new("active".into(), active),
            ],
        )
        .map_err(failed)?;
        let mut held = held.lazy();
        if let Some(shard) = shard {
            held = held.filter((col("user_id") % lit(i64::from(shard.count))).eq(lit(i64::from(shard.index))));
        }
        let keys = [col("badge_id"), col("user_id")];
        let wanted = qualifying.clone().lazy().select(keys.clone());
        let to_revoke = held
            .clone()
            .filter(col("active"))
            .join(wanted.clone(), keys.clone(), keys.clone(), JoinArgs::new(JoinType::Anti))
            .select(keys.clone())
            .collect()
            .map_err(failed)?;
        let to_restore = held
            .filter(col("active").not())
            .join(wanted, keys.clone(), keys.clone(), JoinArgs::new(JoinType::Semi))
            .select(keys)
            .collect()
            .map_err(failed)?;
        for (frame, revoke) in [(to_revoke, true), (to_restore, false)] {
            let badges = frame.column("badge_id").and_then(|c| c.str().cloned()).map_err(failed)?;
            let users = frame.column("user_id").and_then(|c| c.i64().cloned()).map_err(failed)?;
            let mut by_badge: std::collections::BTreeMap<&str, Vec<i64>> = Default::default();
            for (badge, user) in badges.iter().zip(users.iter()) {
                if let (Some(badge), Some(user)) = (badge, user) {
                    by_badge.entry(badge).or_default().push(user);
                }
            }
            for (badge, users) in by_badge {
                let changed = self.follow_one(badge, &users, revoke, announce, now).await?;
                let entry = result.entry(badge.to_string()).or_default();
                if revoke { entry.revoked += changed } else { entry.restored += changed }
            }
        }
        Ok(result)
    }

    /// Revokes (or restores) by rule one badge's awards of `users`, queueing the notifications
    /// if `announce`; how many changed.
    async fn follow_one(
        &self,
        badge: &str,
        users: &[i64],
        revoke: bool,
        announce: bool,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let upsert = match self.db().dialect() {
            Dialect::MySql => {
                " ON DUPLICATE KEY UPDATE state = 'deferred', created_at = VALUES(created_at), queued_at = NULL"
            }
            Dialect::Sqlite | Dialect::Postgres => {
                " ON CONFLICT (badge_id, user_id, grant_key, event) DO UPDATE SET state = 'deferred', \
                 created_at = excluded.created_at, queued_at = NULL"
            }
        };
        let event = if revoke { "revoked" } else { "restored" };
        let mut changed = 0;
        for chunk in users.chunks(INSERT_BATCH_ROWS) {
            with_pool!(self.db(), pool => {
                let mut tx = pool.begin().await.context("starting a revocation")?;
                // The rows that change (the caller holds the run lock): only those are announced.
                // With on_revoke = "all" that includes awards of a quiet backfill: "all" is all.
                let state = if revoke { "revoked_at IS NULL" } else { "revoked_by = 'rule'" };
                let mut select = QueryBuilder::new(format!(
                    "SELECT user_id FROM accolade_awards WHERE {state} AND source <> 'manual' AND grant_key = '' \
                     AND badge_id = "
                ));
                select.push_bind(badge).push(" AND user_id IN (");
                let mut list = select.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                select.push(")");
                let rows = select.build().fetch_all(&mut *tx).await.context("reading the awards to change")?;
                let users = rows.iter().map(|row| row.try_get::<i64, _>(0)).collect::<Result<Vec<i64>, _>>()?;
                if users.is_empty() {
                    continue;
                }
                let mut update = QueryBuilder::new("UPDATE accolade_awards SET ");
                if revoke {
                    update.push("revoked_at = ").push_bind(now).push(", revocation_reason = ").push_bind(CRITERIA_NO_LONGER_MET);
                    update.push(", revoked_by = 'rule'");
                } else {
                    update.push("revoked_at = NULL, revocation_reason = NULL, revoked_by = NULL");
                }
                update.push(format!(" WHERE {state} AND grant_key = '' AND badge_id = ")).push_bind(badge).push(" AND user_id IN (");
                let mut list = update.separated(", ");
                for id in &users {
                    list.push_bind(*id);
                }
                update.push(")");
                changed += update.build().execute(&mut *tx).await.context("updating the awards")?.rows_affected();
                if announce {
                    let mut queue = QueryBuilder::new("INSERT INTO accolade_outbox (badge_id, user_id, grant_key, event, created_at, state) ");
                    queue.push_values(&users, |mut row, user| {
                        row.push_bind(badge).push_bind(*user).push_bind("").push_bind(event).push_bind(now).push_bind("deferred");
                    });
                    queue.push(upsert);
                    queue.build().execute(&mut *tx).await.context("queueing notifications")?;
                }
                tx.commit().await.context("committing the revocation")?;
            });
        }
        Ok(changed)
    }

    /// Revokes (or, with `reason` None, restores) `badge_id`'s `grant` (empty for a badge
    /// earned once) for the members among `user_ids` who hold it. A revoked award keeps its
    /// row, so no rule awards it again.
    pub async fn set_revoked(
        &self,
        badge_id: &str,
        grant: &str,
        user_ids: &[i64],
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<RevocationReport> {
        let mut report = RevocationReport::default();
        with_pool!(self.db(), pool => {
            let mut tx = pool.begin().await.context("starting a revocation")?;
            for chunk in user_ids.chunks(INSERT_BATCH_ROWS) {
                let mut select = QueryBuilder::new(
                    "SELECT user_id, revoked_at IS NOT NULL, revoked_by = 'rule' FROM accolade_awards WHERE badge_id = ",
                );
                select.push_bind(badge_id).push(" AND grant_key = ").push_bind(grant).push(" AND user_id IN (");
                let mut list = select.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                select.push(")");
                let rows = select.build().fetch_all(&mut *tx).await.context("reading the awards to revoke")?;
                let mut held = HashSet::new();
                let mut to_change = Vec::new();
                for row in &rows {
                    let user: i64 = row.try_get(0)?;
                    let revoked: bool = row.try_get(1)?;
                    // Revoked by its rule (revoke_when_unmet): revoking it by hand makes it the
                    // admin's decision, which no run undoes.
                    let by_rule: bool = row.try_get::<Option<bool>, _>(2)?.unwrap_or(false);
                    held.insert(user);
                    if revoked == reason.is_some() && !(revoked && by_rule) {
                        report.unchanged.push(user);
                    } else {
                        to_change.push(user);
                    }
                }
                report.not_held.extend(chunk.iter().filter(|id| !held.contains(id)));
                if to_change.is_empty() {
                    continue;
                }
                let mut update = QueryBuilder::new("UPDATE accolade_awards SET revoked_at = ");
                update.push_bind(reason.map(|_| now)).push(", revocation_reason = ").push_bind(reason);
                update.push(", revoked_by = ").push_bind(reason.map(|_| "manual"));
                update.push(" WHERE badge_id = ").push_bind(badge_id).push(" AND grant_key = ").push_bind(grant);
                update.push(" AND user_id IN (");
                let mut list = update.separated(", ");
                for id in &to_change {
                    list.push_bind(*id);
                }
                update.push(")");
                update.build().execute(&mut *tx).await.context("updating the awards")?;
                report.changed.extend(to_change);
            }
            tx.commit().await.context("committing the revocation")?;
        });
        for list in [&mut report.changed, &mut report.unchanged, &mut report.not_held] {
            list.sort_unstable();
            list.dedup();
        }
        Ok(report)
    }

    /// Recipients per badge and UTC day, oldest first (revoked awards left out).
    pub async fn daily_awards(&self) -> Result<Vec<DailyAwards>> {
        if !self.is_migrated().await? {
            return Ok(Vec::new());
        }
        let day = match self.db().dialect() {
            Dialect::Sqlite => "substr(awarded_at, 1, 10)",
            Dialect::Postgres => "to_char(awarded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
            Dialect::MySql => "DATE_FORMAT(awarded_at, '%Y-%m-%d')",
        };
        let sql = format!(
            "SELECT badge_id, {day} AS day, COUNT(*) FROM accolade_awards WHERE revoked_at IS NULL \
             GROUP BY badge_id, {day} ORDER BY badge_id, day"
        );
        with_pool!(self.db(), pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).fetch_all(pool).await.context("reading awards per day")?;
            rows.iter()
                .map(|r| Ok(DailyAwards { badge_id: r.try_get(0)?, day: r.try_get(1)?, awards: r.try_get(2)? }))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .context("reading awards per day")
        })
    }
}

/// 16 bytes from a cryptographically secure generator (seeded by the operating system), as
/// 32 hex digits.
fn new_salt() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}
