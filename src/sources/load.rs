//! Running `[sources]` queries and streaming their rows into Polars columns.
//!
//! A source that cannot be read (its query fails, a column is missing, a value is unreadable,
//! the users source repeats a member) is recorded in the snapshot as failed with the reason,
//! and the others load as usual: only the badges that need it fail.

use super::decode::{CellRow, ColumnBuilder, Unreadable};
use super::{ColumnSpec, Shard, Snapshot, SourceKind, SourceQueries, Wanted};
use crate::db::Db;
use anyhow::{Context, Result, anyhow, bail};
use chrono_tz::Tz;
use futures_util::TryStreamExt;
use polars::prelude::{ChunkUnique, DataFrame, PolarsResult};
use sqlx::{AssertSqlSafe, Column as _, Database, Executor, Pool, Row, SqlSafeStr, Statement};
use std::collections::BTreeMap;

/// How a source's values are read.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    /// Where calendar dates have their midnight: the evaluation timezone.
    pub timezone: Tz,
    /// Record every unreadable value (as NULL) instead of stopping at the first.
    pub survey: bool,
}

impl Reading {
    pub fn new(timezone: Tz) -> Self {
        Reading { timezone, survey: false }
    }
}

/// Loads every requested source concurrently into one snapshot.
pub async fn load_snapshot(db: &Db, queries: &SourceQueries, wanted: &Wanted, timezone: Tz) -> Snapshot {
    load_snapshot_shard(db, queries, wanted, None, timezone).await
}

/// Loads every requested source concurrently, only the rows of one shard's members if given
/// (the filter is pushed into each query, so other shards' rows never leave the database).
/// A source that fails is recorded in [`Snapshot::failed`]; the others still load.
pub async fn load_snapshot_shard(
    db: &Db,
    queries: &SourceQueries,
    wanted: &Wanted,
    shard: Option<Shard>,
    timezone: Tz,
) -> Snapshot {
    load_snapshot_of(db, queries, wanted, shard, None, timezone).await
}

/// Loads every requested source as [`load_snapshot_shard`] does, only the rows of `members`
/// (sorted ids) if given: the filter is pushed into each query.
pub async fn load_snapshot_of(
    db: &Db,
    queries: &SourceQueries,
    wanted: &Wanted,
    shard: Option<Shard>,
    members: Option<&[i64]>,
    timezone: Tz,
) -> Snapshot {
    let loads = wanted.kinds.iter().map(|&kind| async move {
        let loaded = async {
            let sql = source_sql(db, queries, kind, shard, members)?;
            let specs = wanted.columns(kind);
            let frame = load_source(db, kind, &specs, &sql, Reading::new(timezone)).await?.0;
            check_members(kind, &frame)?;
            Ok::<_, anyhow::Error>(frame)
        }
        .await;
        (kind, loaded)
    });
    let mut snapshot = Snapshot::default();
    for (kind, loaded) in futures_util::future::join_all(loads).await {
        match loaded {
            Ok(frame) => {
                snapshot.frames.insert(kind, frame);
            }
            Err(error) => {
                // Reported by the badges that need it: each fails with this message.
                snapshot.failed.insert(kind, crate::errors::text(&error));
            }
        }
    }
    snapshot
}

/// Source `kind`'s query, restricted to one shard's members and to `members` if given.
fn source_sql(
    db: &Db,
    queries: &SourceQueries,
    kind: SourceKind,
    shard: Option<Shard>,
    members: Option<&[i64]>,
) -> Result<String> {
    let sql =
        queries.get(&kind).ok_or_else(|| anyhow!("source '{kind}' is needed but [sources] has no '{kind}' query"))?;
    let sql = match shard {
        Some(shard) => shard.filter(sql),
        None => sql.clone(),
    };
    Ok(match members {
        Some(members) => super::changed::members_filter(db.dialect(), &sql, members),
        None => sql,
    })
}

/// Hands a source on in frames of `rows` rows as it loads, over a bounded channel (the reader
/// waits while the receiver is behind), so that a reader that keeps only what each frame sums
/// to (member digests) never holds the source whole.
pub struct Chunks {
    kind: SourceKind,
    rows: usize,
    handed: usize,
    frames: tokio::sync::mpsc::Sender<DataFrame>,
}

impl Chunks {
    pub fn new(kind: SourceKind, rows: usize, frames: tokio::sync::mpsc::Sender<DataFrame>) -> Self {
        Chunks { kind, rows: rows.max(1), handed: 0, frames }
    }

    /// Hands on the rows pushed since the last frame once there are `rows` of them; `read`
    /// counts every row read so far.
    pub(super) async fn offer<'b>(
        &mut self,
        read: usize,
        builders: impl IntoIterator<Item = &'b mut ColumnBuilder>,
    ) -> Result<()> {
        match read - self.handed >= self.rows {
            true => self.hand(read, builders).await,
            false => Ok(()),
        }
    }

    async fn hand<'b>(&mut self, read: usize, builders: impl IntoIterator<Item = &'b mut ColumnBuilder>) -> Result<()> {
        let kind = self.kind;
        let columns = builders
            .into_iter()
            .map(ColumnBuilder::take)
            .collect::<PolarsResult<Vec<_>>>()
            .with_context(|| format!("source '{kind}': building a frame of its rows"))?;
        let frame = DataFrame::new(read - self.handed, columns)
            .with_context(|| format!("source '{kind}': building a frame of its rows"))?;
        self.handed = read;
        self.frames.send(frame).await.map_err(|_| anyhow!("source '{kind}': digesting its rows stopped"))
    }
}

/// Reads source `kind` (one shard's rows if given) and hands its rows to `chunks` as they
/// load instead of keeping them, the last frame (possibly empty) included. Returns the rows.
pub async fn scan_source(
    db: &Db,
    queries: &SourceQueries,
    wanted: &Wanted,
    kind: SourceKind,
    shard: Option<Shard>,
    timezone: Tz,
    chunks: &mut Chunks,
) -> Result<usize> {
    let sql = source_sql(db, queries, kind, shard, None)?;
    let specs = wanted.columns(kind);
    let started = std::time::Instant::now();
    let (rows, mut builders) = read(db, kind, &specs, &sql, Reading::new(timezone), Some(&mut *chunks)).await?;
    if rows > chunks.handed || chunks.handed == 0 {
        chunks.hand(rows, builders.iter_mut()).await?;
    }
    tracing::info!(source = %kind, rows, elapsed_ms = started.elapsed().as_millis() as u64, "scanned source");
    Ok(rows)
}

/// What surveying one source found: the frame (unreadable values as NULL) and, per column,
/// the values that could not be read.
#[derive(Debug)]
pub struct Survey {
    pub frame: DataFrame,
    pub unreadable: BTreeMap<&'static str, Unreadable>,
}

/// Reads a whole source, recording every unreadable value instead of stopping at the first
/// (`check --data`). Fails on what stops reading altogether: the query, a missing column.
pub async fn survey_source(db: &Db, kind: SourceKind, sql: &str, timezone: Tz) -> Result<Survey> {
    let (frame, unreadable) = load_source(db, kind, kind.columns(), sql, Reading { timezone, survey: true }).await?;
    Ok(Survey { frame, unreadable })
}

/// The users source must return each member once: a repeated id would make the result depend
/// on row order.
pub fn check_members(kind: SourceKind, frame: &DataFrame) -> Result<()> {
    if kind != SourceKind::Users || frame.height() == 0 {
        return Ok(());
    }
    // Eager and synchronous: this runs on the async runtime, where lazy plans may not block.
    let ids =
        frame.column("user_id").and_then(|c| c.i64().cloned()).with_context(|| format!("source '{kind}': user_id"))?;
    let unique = ids.n_unique().with_context(|| format!("source '{kind}': counting members"))?;
    if unique == ids.len() {
        return Ok(());
    }
    // Only on the error path: which ids repeat, and how often the first of them does.
    let mut sorted: Vec<i64> = ids.iter().flatten().collect();
    sorted.sort_unstable();
    let mut repeated = sorted.chunk_by(|a, b| a == b).filter(|run| run.len() > 1);
    let (example, rows) = repeated.next().map(|run| (run[0], run.len())).unwrap_or_default();
    bail!(
        "source 'users' returns {rows} rows for user_id {example} ({} ids repeat): each member must be one row. \
         A join on a table with several rows per member (emails, roles, profiles) repeats members: \
         aggregate that table in the query (e.g. MIN(email) with GROUP BY), or move it to a source of its own",
        1 + repeated.count(),
    )
}

/// Prepares a source query without running it and returns its column names.
pub async fn prepare_columns(db: &Db, kind: SourceKind, sql: &str) -> Result<Vec<String>> {
    crate::with_pool!(db, pool => prepared_names(pool, kind, sql).await)
}

/// The members' email addresses, from the `users` query's `email` column: only Open Badges
/// exports read them (a run never loads them, however the users query is written).
pub async fn load_member_emails(db: &Db, queries: &SourceQueries) -> Result<DataFrame> {
    let sql = queries.get(&SourceKind::Users).ok_or_else(|| anyhow!("[sources] has no 'users' query"))?;
    load_source(db, SourceKind::Users, super::USER_EMAILS, sql, Reading::new(Tz::UTC))
        .await
        .map(|(frame, _)| frame)
        .context("Open Badges exports identify recipients by the `email` column of the users source")
}

/// Loads one source; with `reading.survey`, also returns each column's unreadable values.
pub(super) async fn load_source(
    db: &Db,
    kind: SourceKind,
    specs: &[ColumnSpec],
    sql: &str,
    reading: Reading,
) -> Result<(DataFrame, BTreeMap<&'static str, Unreadable>)> {
    let started = std::time::Instant::now();
    let (height, builders) = read(db, kind, specs, sql, reading, None).await?;
    let unreadable = builders.iter().filter_map(|b| b.unreadable().map(|u| (b.spec.name, u.clone()))).collect();
    let frame = finish(kind, height, builders)?;
    tracing::info!(source = %kind, rows = frame.height(), elapsed_ms = started.elapsed().as_millis() as u64, "loaded source");
    Ok((frame, unreadable))
}

/// Reads a source query's rows into its column builders (handing them to `chunks` as they
/// fill, if given): binary COPY on PostgreSQL, rows elsewhere.
async fn read(
    db: &Db,
    kind: SourceKind,
    specs: &[ColumnSpec],
    sql: &str,
    reading: Reading,
    chunks: Option<&mut Chunks>,
) -> Result<(usize, Vec<ColumnBuilder>)> {
    match db {
        Db::Postgres(pool) => super::copy::load(pool, kind, specs, sql, reading, chunks).await,
        Db::Sqlite(pool) => load_with(pool, kind, specs, sql, reading, chunks).await,
        Db::MySql(pool) => load_with(pool, kind, specs, sql, reading, chunks).await,
    }
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
    reading: Reading,
) -> Result<Vec<(usize, ColumnBuilder)>> {
    let mut mapped = Vec::new();
    for spec in specs {
        match names.iter().position(|n| spec.matches(n)) {
            Some(index) => {
                let builder = ColumnBuilder::new(*spec, 0).in_timezone(reading.timezone);
                mapped.push((index, if reading.survey { builder.surveying() } else { builder }));
            }
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
    reading: Reading,
    mut chunks: Option<&mut Chunks>,
) -> Result<(usize, Vec<ColumnBuilder>)>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Row: CellRow,
{
    let names = prepared_names(pool, kind, sql).await?;
    let mut columns = map_columns(kind, specs, &names, reading)?;
    let mut rows = sqlx::raw_sql(AssertSqlSafe(sql.to_string())).fetch(pool);
    let mut height = 0usize;
    while let Some(row) = rows.try_next().await.with_context(|| format!("source '{kind}': the query failed"))? {
        height += 1;
        for (index, builder) in columns.iter_mut() {
            let pushed = row.cell(*index).and_then(|cell| builder.push(cell));
            if let Err(problem) = pushed {
                bail!("source '{kind}', column '{}', row {height}: {problem}", builder.spec.shown_name());
            }
        }
        debug_assert!(row.len() >= columns.len());
        if let Some(chunks) = chunks.as_deref_mut() {
            chunks.offer(height, columns.iter_mut().map(|(_, b)| b)).await?;
        }
    }
    Ok((height, columns.into_iter().map(|(_, b)| b).collect()))
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
