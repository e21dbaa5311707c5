//! `accolade gen`: write the synthetic demo community of any size into SQLite or PostgreSQL.
//!
//! The data is generated inside the database (recursive CTEs on SQLite, `generate_series` on
//! PostgreSQL), so a million members with tens of millions of activity rows take minutes, not
//! hours. The tables are the demo's (see `sql/demo/`), mapped by `config/demo.toml`.

use super::Outcome;
use crate::db::Db;
use anyhow::{Context, Result, bail};
use sqlx::AssertSqlSafe;
use std::path::{Path, PathBuf};

/// The demo config; its URL is rewritten to the database the data goes to.
const DEMO_CONFIG: &str = include_str!("../../config/demo.toml");
const SQLITE_SQL: &str = include_str!("../../sql/demo/sqlite.sql");
const POSTGRES_SQL: &str = include_str!("../../sql/demo/postgres.sql");

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// Members in the community.
    #[arg(long, default_value_t = 1000)]
    pub users: u32,
    /// The database to fill: sqlite://FILE (created, replaced if it exists) or postgres://…
    /// (the demo tables are dropped and recreated).
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// Where to write the config that maps the generated tables.
    #[arg(long, value_name = "FILE", default_value = "accolade-gen.toml")]
    pub out: PathBuf,
}

pub async fn run(opts: Opts) -> Result<Outcome> {
    let started = std::time::Instant::now();
    generate(&opts.url, opts.users).await?;
    // The config's relative SQLite path would be read beside the config: write it absolute.
    let url = crate::config::resolve_sqlite_url(&opts.url, Path::new("."));
    std::fs::write(&opts.out, demo_config(&url)).with_context(|| format!("cannot write {}", opts.out.display()))?;
    println!(
        "generated {} members in {} in {:.1}s; config: {}",
        opts.users,
        crate::db::redact(&opts.url),
        started.elapsed().as_secs_f64(),
        opts.out.display()
    );
    Ok(Outcome::Success)
}

/// The demo config reading the database at `url`.
pub fn demo_config(url: &str) -> String {
    DEMO_CONFIG.replace("sqlite://accolade-demo.db", url)
}

/// Fills the database at `url` with a community of `members` members.
pub async fn generate(url: &str, members: u32) -> Result<()> {
    // `members` is a number, not user text, so substituting it is safe.
    let members = members.max(1).to_string();
    let db = match url.split(':').next() {
        Some("sqlite") => {
            remove_sqlite_files(url)?;
            Db::connect_creating(url).await?
        }
        _ => Db::connect(url).await?,
    };
    let result = match &db {
        Db::Sqlite(pool) => {
            sqlx::raw_sql(AssertSqlSafe(SQLITE_SQL.replace(":members", &members))).execute(pool).await.map(|_| ())
        }
        Db::Postgres(pool) => {
            sqlx::raw_sql(AssertSqlSafe(POSTGRES_SQL.replace(":members", &members))).execute(pool).await.map(|_| ())
        }
        Db::MySql(_) => {
            db.close().await;
            bail!("gen writes SQLite or PostgreSQL; for MySQL, generate into PostgreSQL and copy the tables");
        }
    };
    db.close().await;
    result.context("generating the demo community")?;
    Ok(())
}

fn remove_sqlite_files(url: &str) -> Result<()> {
    let path = url.trim_start_matches("sqlite://").split('?').next().unwrap_or_default();
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{path}{suffix}"));
        if Path::new(&file).exists() {
            std::fs::remove_file(&file).with_context(|| format!("cannot remove {}", file.display()))?;
        }
    }
    Ok(())
}
