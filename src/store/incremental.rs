//! The state incremental runs keep per shard (`accolade_incremental` and its digests; see
//! `sql/*/0006_incremental.sql`).

use super::Store;
use super::placeholders;
use crate::with_pool;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Row};

/// What the last run that kept state for a shard left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncrementalState {
    pub run_id: i64,
    /// The instant it evaluated: the watermark.
    pub as_of: DateTime<Utc>,
    /// What it evaluated (JSON, see `incremental::Fingerprint`).
    pub fingerprint: String,
    pub members: i64,
}

/// A run of the shard after the one that kept state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaterRun {
    pub run_id: i64,
    pub outcome: String,
}

impl Store {
    /// The shard's incremental state, if a run kept one.
    pub async fn incremental_state(&self, shard: &str) -> Result<Option<IncrementalState>> {
        if !self.is_migrated().await? {
            return Ok(None);
        }
        let sql = self.sql("SELECT run_id, as_of, fingerprint, members FROM accolade_incremental WHERE shard = ?");
        let row = with_pool!(self.db(), pool => {
            match sqlx::query(sql).bind(shard).fetch_optional(pool).await.context("reading the incremental state")? {
                Some(row) => Some(IncrementalState {
                    run_id: row.try_get(0)?,
                    as_of: row.try_get(1)?,
                    fingerprint: row.try_get(2)?,
                    members: row.try_get(3)?,
                }),
                None => None,
            }
        });
        Ok(row)
    }

    /// The first run of the shard recorded after `run_id` (dry runs are not recorded).
    pub async fn run_after(&self, shard: &str, run_id: i64) -> Result<Option<LaterRun>> {
        let sql = self
            .sql("SELECT run_id, outcome FROM accolade_runs WHERE shard = ? AND run_id > ? ORDER BY run_id LIMIT 1");
        let row = with_pool!(self.db(), pool => {
            match sqlx::query(sql).bind(shard).bind(run_id).fetch_optional(pool).await.context("reading the runs")? {
                Some(row) => Some(LaterRun { run_id: row.try_get(0)?, outcome: row.try_get(1)? }),
                None => None,
            }
        });
        Ok(row)
    }

    /// The shard's stored member digest chunks, in order.
    pub async fn member_digest_chunks(&self, shard: &str) -> Result<Vec<Vec<u8>>> {
        let sql = self.sql("SELECT data FROM accolade_incremental_digests WHERE shard = ? ORDER BY chunk");
        let chunks = with_pool!(self.db(), pool => {
            let rows = sqlx::query(sql).bind(shard).fetch_all(pool).await.context("reading the member digests")?;
            rows.iter().map(|row| row.try_get::<Vec<u8>, _>(0)).collect::<Result<Vec<_>, _>>()?
        });
        Ok(chunks)
    }

    /// Replaces the shard's state and digests (`None`: the stored digests stay, unchanged) in
    /// one transaction: a run killed before it commits leaves the previous state whole.
    pub async fn keep_incremental_state(
        &self,
        shard: &str,
        state: &IncrementalState,
        chunks: Option<&[Vec<u8>]>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let delete_digests = self.sql("DELETE FROM accolade_incremental_digests WHERE shard = ?");
        let insert_digest = placeholders(
            self.db().dialect(),
            "INSERT INTO accolade_incremental_digests (shard, chunk, data) VALUES (?, ?, ?)",
        );
        let delete_state = self.sql("DELETE FROM accolade_incremental WHERE shard = ?");
        let insert_state = self.sql(
            "INSERT INTO accolade_incremental (shard, run_id, as_of, fingerprint, members, written_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        );
        with_pool!(self.db(), pool => {
            let mut tx = pool.begin().await.context("starting to keep the incremental state")?;
            if chunks.is_some() {
                sqlx::query(delete_digests).bind(shard).execute(&mut *tx).await.context("replacing member digests")?;
            }
            for (index, chunk) in chunks.unwrap_or_default().iter().enumerate() {
                sqlx::query(AssertSqlSafe(insert_digest.clone()))
                    .bind(shard)
                    .bind(index as i32)
                    .bind(chunk.as_slice())
                    .execute(&mut *tx)
                    .await
                    .context("storing member digests")?;
            }
            sqlx::query(delete_state).bind(shard).execute(&mut *tx).await.context("replacing the incremental state")?;
            sqlx::query(insert_state)
                .bind(shard)
                .bind(state.run_id)
                .bind(state.as_of)
                .bind(state.fingerprint.as_str())
                .bind(state.members)
                .bind(now)
                .execute(&mut *tx)
                .await
                .context("storing the incremental state")?;
            tx.commit().await.context("committing the incremental state")?;
        });
        Ok(())
    }
}
