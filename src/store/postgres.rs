//! PostgreSQL's bulk paths for awards: COPY straight into the awards and outbox tables in
//! primary-key order (falling back to a staging table and `ON CONFLICT DO NOTHING` only when
//! another writer raced the run), and binary COPY out, instead of multi-row statements.

use super::{AwardKey, AwardKind, count_rows, is_unique_violation};
use crate::evaluate::granted_awards_frame;
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
     (badge_id TEXT NOT NULL, user_id BIGINT NOT NULL, grant_key TEXT NOT NULL, source TEXT NOT NULL, notify BOOLEAN NOT NULL) \
     ON COMMIT DELETE ROWS";

/// Awards committed per transaction through COPY: larger than the statement path's, since a
/// transaction costs a round of staging, inserting and committing, yet small enough that a
/// crash undoes little and the next run redoes it quickly.
pub const COPY_AWARDS_PER_TRANSACTION: usize = 50_000;

/// Connections writing awards at once: the server inserts into the table's indexes on as many
/// cores, which is what bounds a large backfill.
const WRITERS: usize = 2;

/// Inserts `rows` (in key order: member, then badge) in transactions of
/// [`COPY_AWARDS_PER_TRANSACTION`], the transactions shared out over [`WRITERS`] connections
/// (each session holds its staging table); new awards per badge, and whether it stopped.
pub async fn insert_awards<'a>(
    pool: &PgPool,
    rows: &[AwardKey<'a>],
    awarded_at: DateTime<Utc>,
    kind_of: impl Fn(&str) -> AwardKind + Sync,
    run_id: Option<i64>,
    stop: Option<&AtomicBool>,
) -> Result<(HashMap<&'a str, u64>, bool)> {
    let chunks: Vec<&[AwardKey]> = rows.chunks(COPY_AWARDS_PER_TRANSACTION).collect();
    let writers = (0..WRITERS.min(chunks.len()).max(1)).map(|writer| {
        let mine: Vec<&[AwardKey]> = chunks.iter().skip(writer).step_by(WRITERS).copied().collect();
        write_chunks(pool, mine, awarded_at, &kind_of, run_id, stop)
    });
    let results = futures_util::future::try_join_all(writers).await?;
    let mut per_badge: HashMap<&str, u64> = HashMap::new();
    let mut stopped = false;
    for (counts, writer_stopped) in results {
        stopped |= writer_stopped;
        for (badge, n) in counts {
            *per_badge.entry(badge).or_default() += n;
        }
    }
    Ok((per_badge, stopped))
}

/// One writer: its chunks, one transaction each; returns new awards per badge and whether it
/// stopped on request.
async fn write_chunks<'a>(
    pool: &PgPool,
    chunks: Vec<&[AwardKey<'a>]>,
    awarded_at: DateTime<Utc>,
    kind_of: &(impl Fn(&str) -> AwardKind + Sync),
    run_id: Option<i64>,
    stop: Option<&AtomicBool>,
) -> Result<(HashMap<&'a str, u64>, bool)> {
    let mut per_badge: HashMap<&str, u64> = HashMap::new();
    let mut conn = pool.acquire().await.context("connecting to insert awards")?;
    for chunk in chunks {
        if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
            return Ok((per_badge, true));
        }
        match copy_chunk(&mut conn, chunk, awarded_at, kind_of, run_id).await {
            Ok(()) => count_rows(chunk, &mut per_badge),
            // Another writer (a manual `award`, a run of another shard with overlapping ids)
            // stored one of these pairs since the run read the existing awards: the COPY rolled
            // back whole, and the conflict-skipping path stores the rest.
            Err(error) if is_unique_violation(&error) => {
                tracing::debug!("a concurrent writer stored some of these awards: skipping them");
                for (badge, n) in stage_chunk(&mut conn, chunk, awarded_at, kind_of, run_id).await? {
                    // The staging path names only badges of this chunk.
                    if let Some(badge) = chunk.iter().map(|(b, _, _)| *b).find(|b| *b == badge) {
                        *per_badge.entry(badge).or_default() += n;
                    }
                }
            }
            Err(error) => return Err(anyhow::Error::new(error).context("inserting awards")),
        }
    }
    Ok((per_badge, false))
}

/// The fast path: one transaction that COPYs the chunk's awards straight into
/// `accolade_awards` (already in primary-key order: member, then badge), and the announced
/// ones into `accolade_outbox`, with no conflict check. A run holds the run lock and removed
/// the existing awards with an anti-join, so every row is new unless another writer raced it;
/// then the database's unique key refuses the transaction and nothing of it is kept.
async fn copy_chunk(
    conn: &mut sqlx::postgres::PgConnection,
    chunk: &[AwardKey<'_>],
    awarded_at: DateTime<Utc>,
    kind_of: &(impl Fn(&str) -> AwardKind + Sync),
    run_id: Option<i64>,
) -> Result<(), sqlx::Error> {
    let at = awarded_at.to_rfc3339();
    let run = run_id.map_or_else(|| "\\N".to_string(), |id| id.to_string());
    let mut awards = String::with_capacity(chunk.len() * 64);
    let mut outbox = String::new();
    for (badge, user, grant) in chunk {
        let kind = kind_of(badge);
        // Badge ids are letters, digits, '-', '_' and '.', so COPY's text format needs no
        // escaping; a grant may be an item's text, which is escaped.
        let notify = if kind.notify { 't' } else { 'f' };
        let grant = copy_text(grant);
        let _ = writeln!(awards, "{badge}\t{user}\t{grant}\t{at}\t{}\t{run}\t{notify}", kind.source.as_str());
        if kind.notify {
            let _ = writeln!(outbox, "{badge}\t{user}\t{grant}\t{at}\tdeferred");
        }
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let mut copy = tx
        .copy_in_raw(
            "COPY accolade_awards (badge_id, user_id, grant_key, awarded_at, source, run_id, notify) FROM STDIN",
        )
        .await?;
    copy.send(awards.as_bytes()).await?;
    copy.finish().await?;
    if !outbox.is_empty() {
        let mut copy =
            tx.copy_in_raw("COPY accolade_outbox (badge_id, user_id, grant_key, created_at, state) FROM STDIN").await?;
        copy.send(outbox.as_bytes()).await?;
        copy.finish().await?;
    }
    tx.commit().await
}

/// The fallback: the chunk staged in the session's temporary table, then moved with
/// `ON CONFLICT DO NOTHING` (pairs another writer stored are skipped); new awards per badge.
async fn stage_chunk(
    conn: &mut sqlx::postgres::PgConnection,
    chunk: &[AwardKey<'_>],
    awarded_at: DateTime<Utc>,
    kind_of: &(impl Fn(&str) -> AwardKind + Sync),
    run_id: Option<i64>,
) -> Result<Vec<(String, u64)>> {
    sqlx::query(STAGING).execute(&mut *conn).await.context("creating the staging table")?;
    let mut text = String::with_capacity(chunk.len() * 32);
    for (badge, user, grant) in chunk {
        let kind = kind_of(badge);
        let notify = if kind.notify { 't' } else { 'f' };
        let _ = writeln!(text, "{badge}\t{user}\t{}\t{}\t{notify}", copy_text(grant), kind.source.as_str());
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
    Ok(inserted.into_iter().map(|(badge, n)| (badge, n.max(0) as u64)).collect())
}

/// `text` as a value of COPY's text format: backslash, tab, newline and carriage return escaped.
fn copy_text(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['\\', '\t', '\n', '\r']) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The existing awards of these badges as a `(badge_id, user_id, grant)` frame, read with
/// binary COPY.
pub async fn existing_awards(pool: &PgPool, badge_ids: &[String], of_members: &str) -> Result<DataFrame> {
    if badge_ids.is_empty() {
        return granted_awards_frame(Vec::new(), Vec::new(), Vec::new());
    }
    // Badge ids are validated (letters, digits, '-', '_', '.'), so quoting them inline is safe;
    // COPY takes no parameters.
    let list: Vec<String> = badge_ids.iter().map(|id| format!("'{id}'")).collect();
    let copy = format!(
        "COPY (SELECT badge_id, user_id, grant_key FROM accolade_awards WHERE badge_id IN ({}){of_members}) \
         TO STDOUT (FORMAT binary)",
        list.join(", ")
    );
    let specs = [
        ColumnSpec { name: "badge_id", ty: ColumnType::Text, required: true, nullable: false, alias: None },
        ColumnSpec { name: "user_id", ty: ColumnType::Id, required: true, nullable: false, alias: None },
        ColumnSpec { name: "grant", ty: ColumnType::Text, required: true, nullable: false, alias: None },
    ];
    let builders = specs.iter().map(|spec| ColumnBuilder::new(*spec, 0)).collect();
    let (height, builders) =
        copy_out(pool, "existing awards", &copy, &[Wire::Text, Wire::Int8, Wire::Text], builders, None).await?;
    let columns = builders
        .into_iter()
        .map(ColumnBuilder::finish)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("existing awards: {e}"))?;
    DataFrame::new(height, columns).map_err(|e| anyhow!("existing awards: {e}"))
}
