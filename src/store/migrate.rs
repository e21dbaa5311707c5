//! Applying the evaluator's schema migrations (`sql/<database>/NNNN_*.sql`) in order, once.

use super::Store;
use crate::db::Dialect;
use crate::with_pool;
use anyhow::{Context, Result};
use chrono::Utc;
use sqlx::AssertSqlSafe;

/// A migration: version, name, and the SQL for each database.
struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
    mysql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "awards",
        sqlite: include_str!("../../sql/sqlite/0001_awards.sql"),
        postgres: include_str!("../../sql/postgres/0001_awards.sql"),
        mysql: include_str!("../../sql/mysql/0001_awards.sql"),
    },
    Migration {
        version: 2,
        name: "backfill_outbox",
        sqlite: include_str!("../../sql/sqlite/0002_backfill_outbox.sql"),
        postgres: include_str!("../../sql/postgres/0002_backfill_outbox.sql"),
        mysql: include_str!("../../sql/mysql/0002_backfill_outbox.sql"),
    },
    Migration {
        version: 3,
        name: "open_badges",
        sqlite: include_str!("../../sql/sqlite/0003_open_badges.sql"),
        postgres: include_str!("../../sql/postgres/0003_open_badges.sql"),
        mysql: include_str!("../../sql/mysql/0003_open_badges.sql"),
    },
    Migration {
        version: 4,
        name: "awards_key",
        sqlite: include_str!("../../sql/sqlite/0004_awards_key.sql"),
        postgres: include_str!("../../sql/postgres/0004_awards_key.sql"),
        mysql: include_str!("../../sql/mysql/0004_awards_key.sql"),
    },
    Migration {
        version: 5,
        name: "grants",
        sqlite: include_str!("../../sql/sqlite/0005_grants.sql"),
        postgres: include_str!("../../sql/postgres/0005_grants.sql"),
        mysql: include_str!("../../sql/mysql/0005_grants.sql"),
    },
    Migration {
        version: 6,
        name: "incremental",
        sqlite: include_str!("../../sql/sqlite/0006_incremental.sql"),
        postgres: include_str!("../../sql/postgres/0006_incremental.sql"),
        mysql: include_str!("../../sql/mysql/0006_incremental.sql"),
    },
];

impl Migration {
    fn sql(&self, dialect: Dialect) -> &'static str {
        match dialect {
            Dialect::Sqlite => self.sqlite,
            Dialect::Postgres => self.postgres,
            Dialect::MySql => self.mysql,
        }
    }
}

/// The statements of a migration file: split at semicolons that end a line (the files
/// hold no procedures or string literals with such semicolons), comments dropped.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || trimmed.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            out.push(current.trim().trim_end_matches(';').to_string());
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// Applies pending migrations; returns the versions applied now.
pub async fn migrate(store: &Store) -> Result<Vec<i64>> {
    migrate_until(store, i64::MAX).await
}

/// Applies pending migrations up to version `last` (an awards database as an older version
/// of accolade left it, for upgrade tests); returns the versions applied now.
pub async fn migrate_until(store: &Store, last: i64) -> Result<Vec<i64>> {
    let dialect = store.db().dialect();
    let stamp = match dialect {
        Dialect::Sqlite => "TEXT",
        Dialect::Postgres => "TIMESTAMPTZ",
        Dialect::MySql => "DATETIME(6)",
    };
    let create = format!(
        "CREATE TABLE IF NOT EXISTS accolade_migrations \
         (version BIGINT PRIMARY KEY, name VARCHAR(200) NOT NULL, applied_at {stamp} NOT NULL)"
    );
    let select = store.sql("SELECT COUNT(*) FROM accolade_migrations WHERE version = ?");
    let insert = store.sql("INSERT INTO accolade_migrations (version, name, applied_at) VALUES (?, ?, ?)");
    let mut applied = Vec::new();
    with_pool!(store.db(), pool => {
        sqlx::raw_sql(AssertSqlSafe(create)).execute(pool).await.context("creating accolade_migrations")?;
        for migration in MIGRATIONS.iter().filter(|m| m.version <= last) {
            let done: i64 = sqlx::query_scalar(AssertSqlSafe(select.0.clone()))
                .bind(migration.version)
                .fetch_one(pool)
                .await
                .context("reading accolade_migrations")?;
            if done > 0 {
                continue;
            }
            let mut tx = pool.begin().await.context("starting a migration")?;
            for statement in statements(migration.sql(dialect)) {
                sqlx::raw_sql(AssertSqlSafe(statement))
                    .execute(&mut *tx)
                    .await
                    .with_context(|| format!("applying migration {} ({})", migration.version, migration.name))?;
            }
            sqlx::query(AssertSqlSafe(insert.0.clone()))
                .bind(migration.version)
                .bind(migration.name)
                .bind(Utc::now())
                .execute(&mut *tx)
                .await
                .context("recording a migration")?;
            tx.commit().await.with_context(|| format!("committing migration {}", migration.version))?;
            applied.push(migration.version);
        }
    });
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_files_split_into_whole_statements() {
        for migration in MIGRATIONS {
            for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::MySql] {
                let statements = statements(migration.sql(dialect));
                assert!(
                    statements.iter().all(|s| [
                        "CREATE",
                        "ALTER",
                        "DROP VIEW",
                        "DROP INDEX",
                        "DROP TABLE accolade_",
                        "INSERT INTO accolade_",
                        "UPDATE accolade_"
                    ]
                    .iter()
                    .any(|k| s.starts_with(k))),
                    "{dialect:?}: {statements:?}"
                );
                assert!(!statements.is_empty());
            }
        }
    }
}
