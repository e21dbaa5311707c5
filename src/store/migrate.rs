//! Applying the evaluator's schema migrations (`sql/<database>/NNNN_*.sql`) in order, once.

use super::Store;
use anyhow::{Context, Result};
use chrono::Utc;
use sqlx::{AssertSqlSafe, Row};

/// The SQLite migrations, in order: (version, name, SQL).
const SQLITE: &[(i64, &str, &str)] = &[(1, "awards", include_str!("../../sql/sqlite/0001_awards.sql"))];

/// Applies pending migrations; returns the versions applied now.
pub async fn migrate(store: &Store) -> Result<Vec<i64>> {
    let pool = store.pool();
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS accolade_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )
    .execute(pool)
    .await
    .context("creating accolade_migrations")?;
    let mut applied = Vec::new();
    for (version, name, sql) in SQLITE {
        let mut tx = pool.begin().await.context("starting a migration")?;
        let done = sqlx::query("SELECT version FROM accolade_migrations WHERE version = ?")
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.try_get::<i64, _>(0))
            .transpose()?;
        if done.is_some() {
            continue;
        }
        sqlx::raw_sql(AssertSqlSafe(*sql))
            .execute(&mut *tx)
            .await
            .with_context(|| format!("applying migration {version} ({name})"))?;
        sqlx::query("INSERT INTO accolade_migrations (version, name, applied_at) VALUES (?, ?, ?)")
            .bind(version)
            .bind(name)
            .bind(crate::instant::format_utc(Utc::now()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await.with_context(|| format!("committing migration {version} ({name})"))?;
        applied.push(*version);
    }
    Ok(applied)
}
