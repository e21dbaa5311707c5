//! The command line: one subcommand per file, each with its options and `run`.
//!
//! Exit codes (documented in the README): 0 success; 1 the command ran but something in it
//! failed (a badge refused or failed, `check` found problems, unknown members in `award`);
//! 2 it could not start (config, database).

pub mod award;
pub mod awards;
pub mod badges;
pub mod check;
pub mod demo;
pub mod explain;
pub mod generate;
pub mod leaderboard;
pub mod migrate;
pub mod outbox;
pub mod progress;
pub mod report;
pub mod revoke;
pub mod run;
pub mod schedule;

use crate::config::{self, plan};
use crate::db::Db;
use crate::store::Store;
use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Awards badges to the members of a community or learning platform, in bulk.
#[derive(Debug, Parser)]
#[command(name = "accolade", version, about)]
pub struct Cli {
    /// The config file (default: $ACCOLADE_CONFIG, else ./accolade.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format on standard error: text, or json for log collectors.
    #[arg(long, global = true, env = "ACCOLADE_LOG_FORMAT", default_value = "text")]
    pub log_format: crate::telemetry::LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate every badge for every member and insert the new awards.
    Run(run::Opts),
    /// Run evaluation passes in-process on [evaluation] schedule until SIGTERM/SIGINT.
    Schedule(schedule::Opts),
    /// Validate the config, every rule and every source query; print every problem.
    Check(check::Opts),
    /// Show the badge dashboard: id, name, rule type, status, last update, recipients.
    Badges(badges::Opts),
    /// Work with awards (export).
    Awards(awards::Opts),
    /// Award a badge by hand to listed members.
    Award(award::Opts),
    /// Revoke a badge from listed members, with a reason (or restore it with --undo).
    Revoke(revoke::Opts),
    /// Write a self-contained HTML report: recipients over time, rules, leaderboard.
    Report(report::Opts),
    /// Explain, clause by clause, why a member has or hasn't each badge.
    Explain(explain::Opts),
    /// Members ranked by the points of the badges they hold.
    Leaderboard(leaderboard::Opts),
    /// How far a member is from each badge and its next level, or who is closest to one.
    Progress(progress::Opts),
    /// List the notification outbox the host's mailer reads.
    Outbox(outbox::Opts),
    /// Create the evaluator's tables in the awards database.
    Migrate(migrate::Opts),
    /// Build a demo community in SQLite, write its config, and run one pass.
    Demo(demo::Opts),
    /// Generate the demo community of any size into SQLite or PostgreSQL (for benchmarks).
    #[command(name = "gen")]
    Gen(generate::Opts),
}

/// Runs the parsed command line and maps the outcome to an exit code.
pub async fn main(cli: Cli) -> ExitCode {
    let config = cli.config.as_deref();
    let outcome = match cli.command {
        Command::Run(opts) => run::run(config, opts).await,
        Command::Schedule(opts) => schedule::run(config, opts).await,
        Command::Check(opts) => check::run(config, opts).await,
        Command::Badges(opts) => badges::run(config, opts).await,
        Command::Awards(opts) => awards::run(config, opts).await,
        Command::Award(opts) => award::run(config, opts).await,
        Command::Revoke(opts) => revoke::run(config, opts).await,
        Command::Report(opts) => report::run(config, opts).await,
        Command::Explain(opts) => explain::run(config, opts).await,
        Command::Leaderboard(opts) => leaderboard::run(config, opts).await,
        Command::Progress(opts) => progress::run(config, opts).await,
        Command::Outbox(opts) => outbox::run(config, opts).await,
        Command::Migrate(opts) => migrate::run(config, opts).await,
        Command::Demo(opts) => demo::run(opts).await,
        Command::Gen(opts) => generate::run(opts).await,
    };
    match outcome {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {}", crate::errors::text(&error));
            ExitCode::from(2)
        }
    }
}

/// How a command that ran ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// It ran, but something in it failed and was reported.
    Failed,
}

/// Loads and compiles the config, failing with every problem in it.
pub fn load_plan(config: Option<&Path>) -> Result<plan::Plan> {
    let path = config::locate(config);
    let raw = config::load(&path)?;
    plan::compile(raw).map_err(|errors| anyhow::anyhow!("{}: {errors}", path.display()))
}

/// Connects to the plan's host database and its awards store (the same database unless
/// `awards_url` is set).
pub async fn connect(plan: &plan::Plan) -> Result<(Db, Store)> {
    let db = Db::connect(&plan.database_url).await?;
    let store = match &plan.awards_url {
        Some(url) => match Db::connect(url).await {
            Ok(awards) => Store::new(awards),
            Err(error) => {
                db.close().await;
                return Err(error.context("[database] awards_url"));
            }
        },
        None => Store::new(db.clone()),
    };
    Ok((db, store))
}

/// Prints rows as an aligned table with a header.
pub fn print_table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut table = comfy_table::Table::new();
    table.set_header(headers.to_vec());
    for row in rows {
        table.add_row(row);
    }
    println!("{table}");
}

/// Closes the host and awards connections (the same pool closes once).
pub async fn disconnect(db: &Db, store: &Store) {
    db.close().await;
    store.db().close().await;
}

/// Writes a CSV document (header, then rows) to standard output. A closed pipe (`| head`) is
/// the reader's choice, not a failure.
pub fn write_csv(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> Result<()> {
    let result = (|| -> Result<()> {
        let mut writer = csv::Writer::from_writer(std::io::stdout().lock());
        writer.write_record(header)?;
        for row in rows {
            writer.write_record(row)?;
        }
        writer.flush()?;
        Ok(())
    })();
    match result {
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

/// Whether an error is a write to a closed pipe.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == BrokenPipe)
            || cause
                .downcast_ref::<csv::Error>()
                .is_some_and(|c| matches!(c.kind(), csv::ErrorKind::Io(io) if io.kind() == BrokenPipe))
            || cause.downcast_ref::<serde_json::Error>().and_then(serde_json::Error::io_error_kind) == Some(BrokenPipe)
    })
}
