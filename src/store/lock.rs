//! One run at a time per awards database.
//!
//! PostgreSQL: a session advisory lock; MySQL/MariaDB: `GET_LOCK`; SQLite: an OS file lock
//! on `<database file>.accolade-lock`. All three are released by the server or the OS when
//! the holder dies, so a killed run never leaves a stale lock behind.

use super::Store;
use crate::db::Db;
use crate::sources::Shard;
use anyhow::{Context, Result, bail};
use sqlx::pool::PoolConnection;
use sqlx::{MySql, Postgres};
use std::fs::File;
use std::time::Duration;

/// The advisory lock key: "accolade" in ASCII, so a DBA can recognise it in `pg_locks`.
pub const ADVISORY_KEY: i64 = 0x6163_636f_6c61_6465;

/// The MySQL lock name, before it is qualified by database.
pub const MYSQL_LOCK_NAME: &str = "accolade_run";

/// How often a waiting run retries the lock.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// A held run lock; released when dropped (or when the process dies).
pub struct RunLock {
    _held: Held,
}

enum Held {
    Postgres(PoolConnection<Postgres>),
    MySql(PoolConnection<MySql>),
    /// Held open for its OS lock.
    File {
        _file: File,
    },
}

impl Drop for Held {
    fn drop(&mut self) {
        // Server-side locks belong to the session: closing the connection releases them,
        // without an await in a destructor.
        match self {
            Held::Postgres(conn) => conn.close_on_drop(),
            Held::MySql(conn) => conn.close_on_drop(),
            Held::File { .. } => {}
        }
    }
}

/// Takes the run lock of `store`'s database, waiting for it if `wait`, else failing with a
/// message that another run holds it.
/// Shards of one evaluation lock separately, so the pods of an Indexed Job run side by side.
pub async fn acquire(store: &Store, shard: Option<Shard>, wait: bool) -> Result<RunLock> {
    loop {
        if let Some(held) = try_acquire(store.db(), shard).await? {
            return Ok(RunLock { _held: held });
        }
        if !wait {
            bail!(
                "another accolade run holds the lock on the awards database; exiting \
                 (set [evaluation] when_locked = \"wait\" to wait for it instead)"
            );
        }
        tracing::info!("another run holds the lock; waiting");
        tokio::time::sleep(RETRY_EVERY).await;
    }
}

async fn try_acquire(db: &Db, shard: Option<Shard>) -> Result<Option<Held>> {
    // Shard I of N gets its own key and name; the unsharded run keeps the base ones.
    let (key, name, suffix) = match shard {
        None => (ADVISORY_KEY, MYSQL_LOCK_NAME.to_string(), String::new()),
        Some(s) => (
            ADVISORY_KEY ^ ((i64::from(s.count) << 32) | i64::from(s.index + 1)),
            format!("{MYSQL_LOCK_NAME}_{}_of_{}", s.index, s.count),
            format!("-{}-of-{}", s.index, s.count),
        ),
    };
    match db {
        Db::Postgres(pool) => {
            let mut conn = pool.acquire().await.context("connecting for the run lock")?;
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(key)
                .fetch_one(&mut *conn)
                .await
                .context("taking the run lock")?;
            Ok(got.then_some(Held::Postgres(conn)))
        }
        Db::MySql(pool) => {
            let mut conn = pool.acquire().await.context("connecting for the run lock")?;
            // GET_LOCK names are server-wide: qualify the name by database (hashed to stay
            // within the 64-character limit) so two awards databases never block each other.
            let got: Option<i64> =
                sqlx::query_scalar("SELECT GET_LOCK(CONCAT('accolade_', LEFT(SHA1(CONCAT(DATABASE(), ?)), 40)), 0)")
                    .bind(&name)
                    .fetch_one(&mut *conn)
                    .await
                    .context("taking the run lock")?;
            Ok((got == Some(1)).then_some(Held::MySql(conn)))
        }
        Db::Sqlite(pool) => {
            let path = format!("{}.accolade-lock{suffix}", pool.connect_options().get_filename().display());
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .with_context(|| format!("opening the lock file {path}"))?;
            match file.try_lock() {
                Ok(()) => Ok(Some(Held::File { _file: file })),
                Err(std::fs::TryLockError::WouldBlock) => Ok(None),
                Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {path}")),
            }
        }
    }
}
