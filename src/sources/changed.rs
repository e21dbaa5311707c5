//! Reading only part of a source: the rows of some members, or the members with rows whose
//! `created_at` falls in a range — what incremental runs read instead of whole histories.
//!
//! Both filters are pushed into the query (wrapped as a subquery), so the host uses its
//! indexes and other rows never leave the database. A `created_at` bound is written for the
//! column's type as the database reports it (a timestamp, epoch seconds, or ISO text), always
//! looser than the bound itself, and the rows read are then filtered exactly as accolade reads
//! them: a pushed bound can only read more rows than needed, never miss one.

use super::load::{Reading, load_source};
use super::{ColumnSpec, Shard, SourceKind, SourceQueries};
use crate::db::{Db, Dialect};
use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use polars::prelude::*;
use sqlx::{AssertSqlSafe, Column as _, Database, Executor, Pool, SqlSafeStr, Statement, TypeInfo};

/// `sql` restricted to the rows of `members` (sorted ids).
pub fn members_filter(dialect: Dialect, sql: &str, members: &[i64]) -> String {
    format!("SELECT * FROM ({sql}) AS accolade_members WHERE {}", members_condition(dialect, members))
}

/// The condition that `user_id` is one of `members`; ids are numbers, written inline.
pub fn members_condition(dialect: Dialect, members: &[i64]) -> String {
    let ids = members.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    match dialect {
        // One array literal: the planner treats it as one value, however long.
        Dialect::Postgres => format!("user_id = ANY('{{{ids}}}'::int8[])"),
        Dialect::Sqlite | Dialect::MySql if members.is_empty() => "1 = 0".to_string(),
        Dialect::Sqlite | Dialect::MySql => format!("user_id IN ({ids})"),
    }
}

/// Instants (µs, both included) that a row's `created_at` is looked for between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Between {
    pub from: i64,
    pub to: Option<i64>,
}

/// How far a bound on text or calendar-date columns is loosened: ISO text sorts by its date
/// prefix, and a reading without an offset is local time in a zone at most 14 hours away.
const TEXT_MARGIN_DAYS: i64 = 2;

/// The members of `kind` (restricted to `shard`) with a row whose `created_at`, read as
/// accolade reads it, is within `between`.
pub async fn members_with_rows(
    db: &Db,
    queries: &SourceQueries,
    kind: SourceKind,
    shard: Option<Shard>,
    timezone: Tz,
    between: Between,
) -> Result<Vec<i64>> {
    let sql = queries.get(&kind).ok_or_else(|| anyhow!("[sources] has no '{kind}' query"))?;
    let sql = match shard {
        Some(shard) => shard.filter(sql),
        None => sql.clone(),
    };
    let stored = crate::with_pool!(db, pool => created_at_type(pool, kind, &sql).await)?;
    let condition = condition(db.dialect(), stored.as_deref(), between);
    let filtered = format!("SELECT * FROM ({sql}) AS accolade_changed WHERE {condition}");
    let specs: Vec<ColumnSpec> =
        kind.columns().iter().filter(|s| matches!(s.name, "user_id" | "created_at")).copied().collect();
    let (frame, _) = load_source(db, kind, &specs, &filtered, Reading::new(timezone))
        .await
        .with_context(|| format!("source '{kind}': reading the rows created since the last run"))?;
    let at = col("created_at").dt().timestamp(TimeUnit::Microseconds);
    let mut keep = at.clone().gt_eq(lit(between.from));
    if let Some(to) = between.to {
        keep = keep.and(at.lt_eq(lit(to)));
    }
    let found = frame
        .lazy()
        .filter(keep)
        .select([col("user_id")])
        .unique(None, UniqueKeepStrategy::Any)
        .collect()
        .map_err(|e| anyhow!("source '{kind}': finding the members with new rows: {e}"))?;
    crate::sources::ids_of(&found)
}

/// The database type of the query's `created_at` column, where the database reports one
/// (SQLite types values, not columns: `None`).
async fn created_at_type<DB: Database>(pool: &Pool<DB>, kind: SourceKind, sql: &str) -> Result<Option<String>>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    if DB::NAME == "SQLite" {
        return Ok(None);
    }
    let statement = pool
        .prepare(AssertSqlSafe(sql.to_string()).into_sql_str())
        .await
        .with_context(|| format!("source '{kind}': the query failed to prepare"))?;
    let column = statement
        .columns()
        .iter()
        .find(|c| c.name().eq_ignore_ascii_case("created_at"))
        .ok_or_else(|| anyhow!("source '{kind}' has no column 'created_at'"))?;
    Ok(Some(column.type_info().name().to_ascii_uppercase()))
}

/// A SQL condition on `created_at` that every row within `between` meets.
fn condition(dialect: Dialect, stored: Option<&str>, between: Between) -> String {
    let seconds = |micros: i64, up: bool| {
        let s = micros.div_euclid(1_000_000);
        if up { s + 1 } else { s }
    };
    let day = |micros: i64, days: i64| {
        let instant = DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MIN_UTC);
        let shifted = instant.checked_add_signed(chrono::Duration::days(days)).unwrap_or(instant);
        shifted.format("%Y-%m-%d").to_string()
    };
    let exact = |micros: i64| {
        DateTime::<Utc>::from_timestamp_micros(micros)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
            .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
            .to_string()
    };
    let numeric = |from: i64, to: Option<i64>| {
        let mut c = format!("created_at >= {}", seconds(from, false));
        if let Some(to) = to {
            c.push_str(&format!(" AND created_at <= {}", seconds(to, true)));
        }
        c
    };
    let text = |from: i64, to: Option<i64>| {
        let mut c = format!("created_at >= '{}'", day(from, -TEXT_MARGIN_DAYS));
        if let Some(to) = to {
            c.push_str(&format!(" AND created_at < '{}'", day(to, TEXT_MARGIN_DAYS)));
        }
        c
    };
    let (from, to) = (between.from, between.to);
    match (dialect, stored) {
        // A SQLite value is a number (epoch seconds) or text, whatever the column declares;
        // every number sorts before every text.
        (Dialect::Sqlite, _) => format!(
            "((typeof(created_at) IN ('integer', 'real') AND {}) OR (typeof(created_at) = 'text' AND {}))",
            numeric(from, to),
            text(from, to)
        ),
        (Dialect::Postgres, Some("TIMESTAMPTZ" | "TIMESTAMP")) => {
            let mut c = format!("created_at >= '{}'", exact(from));
            if let Some(to) = to {
                c.push_str(&format!(" AND created_at <= '{}'", exact(to)));
            }
            c
        }
        (_, Some(name)) if is_numeric(name) => numeric(from, to),
        _ => text(from, to),
    }
}

fn is_numeric(name: &str) -> bool {
    name.contains("INT")
        || ["NUMERIC", "DECIMAL", "FLOAT", "DOUBLE", "REAL", "FLOAT4", "FLOAT8"].iter().any(|t| name.starts_with(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_timestamp_bound_is_exact_and_text_bounds_are_loosened_by_two_days() {
        let between = Between { from: 1_764_583_200_000_000, to: None }; // 2025-12-01T10:00:00Z
        assert_eq!(
            condition(Dialect::Postgres, Some("TIMESTAMPTZ"), between),
            "created_at >= '2025-12-01T10:00:00.000000+00:00'"
        );
        assert_eq!(condition(Dialect::MySql, Some("DATETIME"), between), "created_at >= '2025-11-29'");
        assert_eq!(condition(Dialect::MySql, Some("BIGINT"), between), "created_at >= 1764583200");
        let sqlite = condition(Dialect::Sqlite, None, Between { to: Some(1_764_583_200_000_001), ..between });
        assert!(
            sqlite.contains("created_at <= 1764583201") && sqlite.contains("created_at < '2025-12-03'"),
            "{sqlite}"
        );
    }

    #[test]
    fn a_member_filter_lists_the_ids_for_each_database() {
        assert!(members_filter(Dialect::Postgres, "SELECT 1", &[3, 5]).ends_with("user_id = ANY('{3,5}'::int8[])"));
        assert!(members_filter(Dialect::MySql, "SELECT 1", &[3, 5]).ends_with("user_id IN (3,5)"));
        assert!(members_filter(Dialect::Sqlite, "SELECT 1", &[]).ends_with("WHERE 1 = 0"));
    }
}
