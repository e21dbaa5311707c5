//! `accolade run`: one evaluation pass ([`crate::pipeline`]); this parses the options,
//! publishes the run's metrics and prints the summary.

use super::{Outcome, connect, load_plan, print_table};
use crate::instant;
pub use crate::pipeline::{
    BadgeReport, CLOCK_SKEW, NotStarted, PassReport, RunOptions, RunReport, execute, execute_with, refuse_future,
};
use crate::sources::Shard;
use anyhow::{Result, anyhow};
use std::path::Path;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct Opts {
    /// Evaluate as of this instant (RFC 3339, epoch seconds, or a date in the evaluation
    /// timezone); default now. Only a dry run may be later than now.
    #[arg(long, value_name = "INSTANT")]
    pub as_of: Option<String>,
    /// Compute and report, but write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Evaluate only these badges (repeatable).
    #[arg(long = "badge", value_name = "ID")]
    pub badges: Vec<String>,
    /// Evaluate only members with user_id mod N = I (default: $JOB_COMPLETION_INDEX with
    /// [evaluation] shards, when both are set).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Write Prometheus metrics of the run to this file (node-exporter textfile collector).
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<std::path::PathBuf>,
    /// Push Prometheus metrics of the run to this Pushgateway URL.
    #[arg(long, value_name = "URL")]
    pub pushgateway: Option<String>,
    /// Evaluate only the members whose awards can have changed since the last run of this
    /// shard (a full pass when the stored state cannot be trusted, saying why).
    #[arg(long, conflicts_with = "full")]
    pub incremental: bool,
    /// A full pass, whatever the stored state (it keeps the state for incremental runs).
    #[arg(long)]
    pub full: bool,
}

pub async fn run(config: Option<&Path>, opts: Opts) -> Result<Outcome> {
    let plan = load_plan(config)?;
    let as_of = match &opts.as_of {
        Some(text) => Some(instant::parse_as_of(text, &plan.timezone).map_err(|e| anyhow!("--as-of: {e}"))?),
        None => None,
    };
    let shard = match &opts.shard {
        Some(text) => Some(Shard::parse(text).map_err(|e| anyhow!("--shard: {e}"))?),
        None => Shard::from_environment(plan.shards)?,
    };
    let options = RunOptions {
        as_of,
        dry_run: opts.dry_run,
        only: opts.badges,
        shard,
        stop: None,
        incremental: opts.incremental || opts.full,
        full: opts.full,
        scan_rows: None,
    };
    let started = std::time::Instant::now();
    let (db, store) = connect(&plan).await?;
    let report = execute_with(&plan, &db, &store, &options).await;
    super::disconnect(&db, &store).await;
    publish_metrics(report.as_ref().ok(), started.elapsed(), opts.metrics_file.as_deref(), opts.pushgateway.as_deref());
    match report {
        Ok(report) => {
            print_report(&report);
            Ok(if report.refused() { Outcome::Failed } else { Outcome::Success })
        }
        // Started (config, database and lock were fine) but could not finish: the run is
        // recorded as failed; nothing committed is lost, and the next run completes the work.
        Err(error) if error.downcast_ref::<NotStarted>().is_none() => {
            eprintln!("error: {}", crate::errors::text(&error));
            Ok(Outcome::Failed)
        }
        Err(error) => Err(error),
    }
}

/// Writes and pushes the run's metrics where asked; a failure to publish is logged, not fatal
/// (the awards are in already).
pub fn publish_metrics(
    report: Option<&RunReport>,
    elapsed: std::time::Duration,
    file: Option<&Path>,
    gateway: Option<&str>,
) {
    if file.is_none() && gateway.is_none() {
        return;
    }
    let text = crate::metrics::render(report, elapsed);
    if let Some(path) = file
        && let Err(error) = crate::metrics::write_file(path, &text)
    {
        tracing::warn!("{}", crate::errors::text(&error));
    }
    if let Some(url) = gateway
        && let Err(error) = crate::metrics::push(url, &text)
    {
        tracing::warn!("{}", crate::errors::text(&error));
    }
}

/// Prints the per-badge summary of a run.
pub fn print_report(report: &RunReport) {
    let what = match (report.dry_run, report.run_id) {
        (true, _) => "dry run (nothing written)".to_string(),
        (false, Some(id)) => format!("run {id}"),
        (false, None) => "run".to_string(),
    };
    let shard = report.shard.map(|s| format!(", shard {s}")).unwrap_or_default();
    println!("{what} as of {}{shard}", instant::format_utc(report.as_of));
    match (&report.pass, report.pass.members) {
        (PassReport { incremental: true, .. }, Some(members)) => {
            println!("incremental pass: {members} members evaluated (changed since the last run)")
        }
        (PassReport { full_because: Some(reason), .. }, _) => println!("full pass: {reason}"),
        _ => {}
    }
    let header = if report.dry_run { "would award" } else { "new awards" };
    // Revocation columns only when a badge follows its criterion.
    let following = report.badges.iter().any(|b| b.revoked > 0 || b.restored > 0);
    let rows = report
        .badges
        .iter()
        .map(|b| {
            let status = if b.backfill { format!("{} (backfill)", b.status) } else { b.status.to_string() };
            let mut row = vec![b.badge_id.clone(), status, b.new_awards.to_string()];
            if following {
                row.extend([b.revoked.to_string(), b.restored.to_string()]);
            }
            row.push(b.message.clone().unwrap_or_default());
            row
        })
        .collect();
    let mut headers = vec!["badge", "status", header];
    if following {
        headers.extend(["revoked", "restored"]);
    }
    headers.push("note");
    print_table(&headers, rows);
    println!("{} new awards", report.total_new_awards());
    if following {
        println!(
            "{} awards revoked (criteria no longer met), {} restored",
            report.total_revoked(),
            report.total_restored()
        );
    }
    if report.stopped {
        println!("stopped on request after the transaction in flight; the next run inserts the rest");
    }
    if report.notifications_released > 0 {
        println!("{} notifications queued for the mailer", report.notifications_released);
    }
}
