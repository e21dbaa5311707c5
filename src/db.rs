//! Connections to the databases the evaluator talks to.
//!
//! Owns URL parsing and pool set-up. The host database (read by `[sources]`) and the awards
//! database (the evaluator's own tables) are the same connection unless configured apart.

use anyhow::{Context, Result, bail};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// How long a SQLite connection waits for another writer before failing: long enough for a
/// concurrent run's batch to commit, short enough that a stuck job reports itself.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections per pool: sources are read concurrently, one connection each.
const MAX_CONNECTIONS: u32 = 8;

/// A connection pool to one database.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    MySql(MySqlPool),
}

/// Which database a [`Db`] talks to, where SQL differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
    MySql,
}

/// Runs `$body` with `$pool` bound to the pool of whichever database `$db` is; the body is
/// written once and type-checked for each driver.
#[macro_export]
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
            $crate::db::Db::MySql($pool) => $body,
        }
    };
}

impl Db {
    /// Connects to `url`, which must name an existing database.
    pub async fn connect(url: &str) -> Result<Db> {
        Self::open(url, false).await
    }

    /// Connects to a SQLite `url`, creating the file if it does not exist (for `demo`).
    pub async fn connect_creating(url: &str) -> Result<Db> {
        Self::open(url, true).await
    }

    async fn open(url: &str, create: bool) -> Result<Db> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => {
                let options = SqliteConnectOptions::from_str(url)
                    .with_context(|| format!("invalid SQLite URL '{}'", redact(url)))?
                    .create_if_missing(create)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT);
                let pool = SqlitePoolOptions::new()
                    .max_connections(MAX_CONNECTIONS)
                    .connect_with(options)
                    .await
                    .with_context(|| match sqlite_file(url) {
                        Some(file) => {
                            format!("cannot open SQLite database file {} ('{}')", file.display(), redact(url))
                        }
                        None => format!("cannot open SQLite database '{}'", redact(url)),
                    })?;
                Ok(Db::Sqlite(pool))
            }
            "postgres" | "postgresql" => {
                let options = PgConnectOptions::from_str(url)
                    .with_context(|| format!("invalid PostgreSQL URL '{}'", redact(url)))?
                    .application_name("accolade");
                let pool = PgPoolOptions::new()
                    .max_connections(MAX_CONNECTIONS)
                    .connect_with(options)
                    .await
                    .with_context(|| format!("cannot connect to PostgreSQL at '{}'", redact(url)))?;
                Ok(Db::Postgres(pool))
            }
            "mysql" | "mariadb" => {
                let url = url.replacen("mariadb://", "mysql://", 1);
                let options = MySqlConnectOptions::from_str(&url)
                    .with_context(|| format!("invalid MySQL URL '{}'", redact(&url)))?;
                let pool = MySqlPoolOptions::new()
                    .max_connections(MAX_CONNECTIONS)
                    .connect_with(options)
                    .await
                    .with_context(|| format!("cannot connect to MySQL at '{}'", redact(&url)))?;
                Ok(Db::MySql(pool))
            }
            _ => bail!(
                "database URL '{}' must start with sqlite://, postgres://, postgresql:// or mysql://",
                redact(url)
            ),
        }
    }

    pub async fn close(&self) {
        crate::with_pool!(self, pool => pool.close().await)
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
            Db::MySql(_) => Dialect::MySql,
        }
    }
}

/// The absolute path of the file a `sqlite:` URL names (none for in-memory databases).
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let file = rest.split('?').next().unwrap_or_default();
    if file.is_empty() || file.starts_with(':') {
        return None;
    }
    std::path::absolute(file).ok()
}

/// The URL with any password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_appear_in_redacted_urls() {
        assert_eq!(redact("postgres://app:s3cret@db:5432/x"), "postgres://app:***@db:5432/x");
        assert_eq!(redact("sqlite://demo.db"), "sqlite://demo.db");
    }
}
