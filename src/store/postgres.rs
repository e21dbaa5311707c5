//! PostgreSQL's bulk paths for awards: COPY in (through a session staging table) and binary
//! COPY out, instead of multi-row statements.

use super::{AwardKind, Inserted};
use crate::evaluate::awards_frame;
use crate::sources::copy::{Wire, copy_out};
use crate::sources::decode::ColumnBuilder;
use crate::sources::{ColumnSpec, ColumnType};
use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, Utc};
use polars::prelude::DataFrame;
use sqlx::postgres::PgPool;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

const STAGING: &str = "CREATE TEMP TABLE IF NOT EXISTS accolade_staging \
     (badge_id TEXT NOT NULL, user_id BIGINT NOT NULL, source TEXT NOT NULL, notify BOOLEAN NOT NULL) \
     ON COMMIT DELETE ROWS";

/// Awards committed per transaction through COPY: larger than the statement path's, since a
/// transaction costs a round of staging, inserting and committing, yet small enough that a
/// crash undoes little and the next run redoes it quickly.
pub const COPY_AWARDS_PER_TRANSACTION: usize = 50_000;

/// Connections writing awards at once: the server inserts into the table's indexes on as many
/// cores, which is what bounds a large backfill.
const WRITERS: usize = 2;

/// Inserts `rows` (sorted by badge) in transactions of [`COPY_AWARDS_PER_TRANSACTION`], the
/// transactions shared out over [`WRITERS`] connections (each session holds its staging table).
pub async fn insert_awards(
    pool: &PgPool,
    rows: &[(&str, i64)],
    awarded_at: DateTime<Utc>,
    kind_of: impl Fn(&str) -> AwardKind + Sync,
    run_id: Option<i64>,
    stop: Option<&AtomicBool>,
) -> Result<Inserted> {
    let chunks: Vec<&[(&str, i64)]> = rows.chunks(COPY_AWARDS_PER_TRANSACTION).collect();
    let writers = (0..WRITERS.min(chunks.len()).max(1)).map(|writer| {
        let mine: Vec<&[(&str, i64)]> = chunks.iter().skip(writer).step_by(WRITERS).copied().collect();
        write_chunks(pool, mine, awarded_at, &kind_of, run_id, stop)
    });
    let results = futures_util::future::try_join_all(writers).await?;
    let mut per_badge: HashMap<String, u64> = HashMap::new();
    let mut stopped = false;
    for (counts, writer_stopped) in results {
        stopped |= writer_stopped;
        for (badge, n) in counts {
            *per_badge.entry(badge).or_default() += n;
        }
    }
    Ok(Inserted { counts: ordered(rows, &per_badge), stopped })
}

/// One writer: its chunks, one transaction each; returns new awards per badge and whether it
/// stopped on request.
async fn write_chunks(
    pool: &PgPool,
    chunks: Vec<&[(&str, i64)]>,
    awarded_at: DateTime<Utc>,
    kind_of: &(impl Fn(&str) -> AwardKind + Sync),
    run_id: Option<i64>,
    stop: Option<&AtomicBool>,
) -> Result<(HashMap<String, u64>, bool)> {
    let mut per_badge: HashMap<String, u64> = HashMap::new();
    let mut conn = pool.acquire().await.context("connecting to insert awards")?;
    sqlx::query(STAGING).execute(&mut *conn).await.context("creating the staging table")?;
    for chunk in chunks {
        if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
            return Ok((per_badge, true));
        }
        // Badge ids are letters, digits, '-', '_' and '.', so COPY's text format needs no escaping.
        let mut text = String::with_capacity(chunk.len() * 32);
        for (badge, user) in chunk {
            let kind = kind_of(badge);
            let _ =
                writeln!(text, "{badge}\t{user}\t{}\t{}", kind.source.as_str(), if kind.notify { 't' } else { 'f' });
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await.context("starting an awards transaction")?;
        let mut copy = tx.copy_in_raw("COPY accolade_staging FROM STDIN").await.context("staging awards")?;
        copy.send(text.as_bytes()).await.context("staging awards")?;
        copy.finish().await.context("staging awards")?;
        let inserted: Vec<(String, i64)> = sqlx::query_as(include_str!("../../sql/postgres/insert_awards.sql"))
            .bind(awarded_at)
            .bind(run_id)
            .fetch_all(&mut *tx)
            .await
            .context("inserting awards")?;
        tx.commit().await.context("committing awards")?;
        for (badge, n) in inserted {
            *per_badge.entry(badge).or_default() += n as u64;
        }
    }
    Ok((per_badge, false))
}

/// Counts in the order badges appear in `rows` (zero for badges with none new).
fn ordered(rows: &[(&str, i64)], per_badge: &HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    for (badge, _) in rows {
        if out.last().is_none_or(|(b, _)| b != badge) {
            out.push((badge.to_string(), per_badge.get(*badge).copied().unwrap_or(0)));
        }
    }
    out
}

/// The existing awards of these badges as a `(badge_id, user_id)` frame, read with binary COPY.
pub async fn existing_awards(pool: &PgPool, badge_ids: &[String]) -> Result<DataFrame> {
    if badge_ids.is_empty() {
        return awards_frame(Vec::new(), Vec::new());
    }
    // Badge ids are validated (letters, digits, '-', '_', '.'), so quoting them inline is safe;
    // COPY takes no parameters.
    let list: Vec<String> = badge_ids.iter().map(|id| format!("'{id}'")).collect();
    let copy = format!(
        "COPY (SELECT badge_id, user_id FROM accolade_awards WHERE badge_id IN ({})) TO STDOUT (FORMAT binary)",
        list.join(", ")
    );
    let specs = [
        ColumnSpec { name: "badge_id", ty: ColumnType::Text, required: true, nullable: false, alias: None },
        ColumnSpec { name: "user_id", ty: ColumnType::Id, required: true, nullable: false, alias: None },
    ];
    let builders = specs.iter().map(|spec| ColumnBuilder::new(*spec, 0)).collect();
    let (height, builders) = copy_out(pool, "existing awards", &copy, &[Wire::Text, Wire::Int8], builders).await?;
    let columns = builders
        .into_iter()
        .map(ColumnBuilder::finish)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("existing awards: {e}"))?;
    DataFrame::new(height, columns).map_err(|e| anyhow!("existing awards: {e}"))
}
