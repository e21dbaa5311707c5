//! Running `[sources]` queries and streaming their rows into Polars columns.

use super::decode::{CellRow, ColumnBuilder};
use super::{ColumnSpec, Shard, Snapshot, SourceKind, SourceQueries};
use crate::db::Db;
use anyhow::{Context, Result, anyhow, bail};
use futures_util::TryStreamExt;
use polars::prelude::{DataFrame, PolarsResult};
use sqlx::{AssertSqlSafe, Column as _, Database, Executor, Pool, Row, SqlSafeStr, Statement};
use std::collections::BTreeSet;

/// Loads every requested source concurrently into one snapshot.
pub async fn load_snapshot(db: &Db, queries: &SourceQueries, wanted: &BTreeSet<SourceKind>) -> Result<Snapshot> {
    load_snapshot_shard(db, queries, wanted, None).await
}

/// Loads every requested source concurrently, only the rows of one shard's members if given
/// (the filter is pushed into each query, so other shards' rows never leave the database).
pub async fn load_snapshot_shard(
    db: &Db,
    queries: &SourceQueries,
    wanted: &BTreeSet<SourceKind>,
    shard: Option<Shard>,
) -> Result<Snapshot> {
    let loads = wanted.iter().map(|&kind| async move {
        let sql = queries
            .get(&kind)
            .ok_or_else(|| anyhow!("source '{kind}' is needed but [sources] has no '{kind}' query"))?;
        let sql = match shard {
            Some(shard) => shard.filter(sql),
            None => sql.clone(),
        };
        let frame = load_source(db, kind, kind.columns(), &sql).await?;
        Ok::<_, anyhow::Error>((kind, frame))
    });
    let frames = futures_util::future::try_join_all(loads).await?;
    Ok(Snapshot { frames: frames.into_iter().collect() })
}

/// Prepares a source query without running it and returns its column names.
pub async fn prepare_columns(db: &Db, kind: SourceKind, sql: &str) -> Result<Vec<String>> {
    crate::with_pool!(db, pool => prepared_names(pool, kind, sql).await)
}

/// The members' email addresses, from the `users` query's `email` column: only Open Badges
/// exports read them (a run never loads them, however the users query is written).
pub async fn load_member_emails(db: &Db, queries: &SourceQueries) -> Result<DataFrame> {
    let sql = queries.get(&SourceKind::Users).ok_or_else(|| anyhow!("[sources] has no 'users' query"))?;
    load_source(db, SourceKind::Users, super::USER_EMAILS, sql)
        .await
        .context("Open Badges exports identify recipients by the `email` column of the users source")
}

async fn load_source(db: &Db, kind: SourceKind, specs: &[ColumnSpec], sql: &str) -> Result<DataFrame> {
    let started = std::time::Instant::now();
    let frame = match db {
        Db::Postgres(pool) => {
            let (height, builders) = super::copy::load(pool, kind, specs, sql).await?;
            finish(kind, height, builders)?
        }
        Db::Sqlite(pool) => load_with(pool, kind, specs, sql).await?,
        Db::MySql(pool) => load_with(pool, kind, specs, sql).await?,
    };
    tracing::info!(source = %kind, rows = frame.height(), elapsed_ms = started.elapsed().as_millis() as u64, "loaded source");
    Ok(frame)
}

async fn prepared_names<DB: Database>(pool: &Pool<DB>, kind: SourceKind, sql: &str) -> Result<Vec<String>>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let statement = pool
        .prepare(AssertSqlSafe(sql.to_string()).into_sql_str())
        .await
        .with_context(|| format!("source '{kind}': the query failed to prepare"))?;
    Ok(statement.columns().iter().map(|c| c.name().to_string()).collect())
}

/// Maps each spec'd column to its index in the result, failing on a missing required column.
pub(super) fn map_columns(
    kind: SourceKind,
    specs: &[ColumnSpec],
    names: &[String],
) -> Result<Vec<(usize, ColumnBuilder)>> {
    let mut mapped = Vec::new();
    for spec in specs {
        match names.iter().position(|n| spec.matches(n)) {
            Some(index) => mapped.push((index, ColumnBuilder::new(*spec, 0))),
            None if spec.required => bail!(
                "source '{kind}' has no column '{}' (the query returns: {}); alias it with AS {}",
                spec.name,
                if names.is_empty() { "nothing".to_string() } else { names.join(", ") },
                spec.name
            ),
            None => {}
        }
    }
    Ok(mapped)
}

async fn load_with<DB: Database>(
    pool: &Pool<DB>,
    kind: SourceKind,
    specs: &[ColumnSpec],
    sql: &str,
) -> Result<DataFrame>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Row: CellRow,
{
    let names = prepared_names(pool, kind, sql).await?;
    let mut columns = map_columns(kind, specs, &names)?;
    let mut rows = sqlx::raw_sql(AssertSqlSafe(sql.to_string())).fetch(pool);
    let mut height = 0usize;
    while let Some(row) = rows.try_next().await.with_context(|| format!("source '{kind}': the query failed"))? {
        height += 1;
        for (index, builder) in columns.iter_mut() {
            let pushed = row.cell(*index).and_then(|cell| builder.push(cell));
            if let Err(problem) = pushed {
                bail!("source '{kind}', column '{}', row {height}: {problem}", builder.spec.name);
            }
        }
        debug_assert!(row.len() >= columns.len());
    }
    finish(kind, height, columns.into_iter().map(|(_, b)| b).collect())
}

/// The frame of a source from its finished column builders.
fn finish(kind: SourceKind, height: usize, builders: Vec<ColumnBuilder>) -> Result<DataFrame> {
    let columns = builders
        .into_iter()
        .map(ColumnBuilder::finish)
        .collect::<PolarsResult<Vec<_>>>()
        .with_context(|| format!("source '{kind}': building its frame"))?;
    DataFrame::new(height, columns).with_context(|| format!("source '{kind}': building its frame"))
}
