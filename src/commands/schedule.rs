//! `accolade schedule`: run evaluation passes in-process on `[evaluation] schedule` (full
//! passes) and `incremental_schedule` (incremental passes between them; when both are due at
//! once, the full pass runs).
//!
//! tokio-cron-scheduler fires the passes, with three of its limits covered here:
//! - it fixes a job's UTC offset when the job is created, so a recurring job drifts by an
//!   hour after a daylight-saving change: instead each pass is a one-shot job at the next
//!   fire time, computed afresh in the evaluation timezone ([`crate::cron::next_fire`]);
//! - it does not prevent overlapping runs: the next pass is scheduled only after the current
//!   one has ended (and the run lock guards against other processes);
//! - it fires on its own tick, up to a second before the instant asked for: each pass waits
//!   for its slot's instant, runs `as_of` that instant, and the next slot is computed after
//!   it, so a slot runs exactly once, never early;
//! - its shutdown does not wait for a running job: on SIGTERM or SIGINT the current pass
//!   stops after the transaction in flight, within the grace period, and the process exits 0.

use super::run::{RunOptions, execute_with, print_report};
use super::{Outcome, connect, disconnect, load_plan};
use crate::cron::{next_fire, parse_schedule};
use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, Utc};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_cron_scheduler::{Job, JobScheduler};

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// Seconds a signal waits for the current pass to stop before the process exits anyway.
    #[arg(long, default_value_t = 30)]
    pub grace_seconds: u64,
}

pub async fn run(config: Option<&Path>, opts: Opts) -> Result<Outcome> {
    let plan = load_plan(config)?;
    if plan.schedule.is_none() && plan.incremental_schedule.is_none() {
        return Err(anyhow!("[evaluation] schedule is not set (nor incremental_schedule)"));
    }
    let parse = |key: &str, text: &Option<String>| -> Result<Option<croner::Cron>> {
        text.as_deref().map(|t| parse_schedule(t).map_err(|e| anyhow!("[evaluation] {key}: {e}"))).transpose()
    };
    let full = parse("schedule", &plan.schedule)?;
    let incremental = parse("incremental_schedule", &plan.incremental_schedule)?;
    let text = format!(
        "full: {}, incremental: {}",
        plan.schedule.as_deref().unwrap_or("none"),
        plan.incremental_schedule.as_deref().unwrap_or("none")
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut scheduler = JobScheduler::new().await.context("starting the scheduler")?;
    scheduler.start().await.context("starting the scheduler")?;
    tracing::info!(schedule = %text, timezone = %plan.timezone, "scheduler started");
    // Fire times are computed strictly after the last slot that ran (or now, if later), so a
    // slot runs once even when its pass ends before the slot's second is over.
    let mut after = Utc::now();
    let outcome = loop {
        let (next, is_incremental) = next_pass(full.as_ref(), incremental.as_ref(), &plan.timezone, after)?;
        let cron = if is_incremental { incremental.as_ref() } else { full.as_ref() };
        let Some(cron) = cron else { break Outcome::Success };
        tracing::info!(next = %crate::instant::format_utc(next), incremental = is_incremental, "next pass");
        let fired = one_shot(&scheduler, next).await?;
        tokio::select! {
            _ = fired => {}
            _ = shutdown_signal() => {
                tracing::info!("signal received: the scheduler is stopping");
                break Outcome::Success;
            }
        }
        // The library fires on its own tick, up to a second early: wait for the instant itself.
        if let Ok(early) = (next - Utc::now()).to_std() {
            tokio::select! {
                _ = tokio::time::sleep(early) => {}
                _ = shutdown_signal() => {
                    tracing::info!("signal received: the scheduler is stopping");
                    break Outcome::Success;
                }
            }
        }
        let options = RunOptions {
            as_of: Some(next),
            stop: Some(stop.clone()),
            incremental: is_incremental,
            ..RunOptions::default()
        };
        let pass = pass(&plan, &options);
        tokio::pin!(pass);
        let result = tokio::select! {
            result = &mut pass => result,
            _ = shutdown_signal() => {
                tracing::info!("signal received: the scheduler is stopping after the current transaction");
                stop.store(true, Ordering::SeqCst);
                match tokio::time::timeout(Duration::from_secs(opts.grace_seconds), &mut pass).await {
                    Ok(result) => { report(result); }
                    Err(_) => tracing::warn!("the pass did not stop within the grace period; exiting"),
                }
                break Outcome::Success;
            }
        };
        report(result);
        let now = Utc::now();
        let missed = missed_slots(cron, &plan.timezone, next, now);
        if missed > 0 {
            tracing::warn!(missed, "the pass outlasted {missed} later slot(s); they are skipped, not run late");
        }
        after = now.max(next);
    };
    scheduler.shutdown().await.context("stopping the scheduler")?;
    Ok(outcome)
}

/// The next pass after `after`: its instant, and whether it is incremental (a full pass due
/// at the same instant wins).
fn next_pass(
    full: Option<&croner::Cron>,
    incremental: Option<&croner::Cron>,
    tz: &chrono_tz::Tz,
    after: DateTime<Utc>,
) -> Result<(DateTime<Utc>, bool)> {
    let full_at = full.map(|c| next_fire(c, tz, after)).transpose()?;
    let incremental_at = incremental.map(|c| next_fire(c, tz, after)).transpose()?;
    match (full_at, incremental_at) {
        (Some(f), Some(i)) if i < f => Ok((i, true)),
        (Some(f), _) => Ok((f, false)),
        (None, Some(i)) => Ok((i, true)),
        (None, None) => Err(anyhow!("[evaluation] schedule is not set")),
    }
}

/// One pass with fresh connections (a database restart between passes is harmless).
async fn pass(plan: &crate::config::plan::Plan, options: &RunOptions) -> Result<super::run::RunReport> {
    let (db, store) = connect(plan).await?;
    let result = execute_with(plan, &db, &store, options).await;
    disconnect(&db, &store).await;
    result
}

fn report(result: Result<super::run::RunReport>) {
    match result {
        Ok(report) => print_report(&report),
        // A failed pass is logged; the next one retries the work.
        Err(error) => tracing::error!("pass failed: {}", crate::errors::text(&error)),
    }
}

/// How many fire times fell strictly between `slot` and `now` (a pass that outlasted them).
fn missed_slots(cron: &croner::Cron, tz: &chrono_tz::Tz, slot: DateTime<Utc>, now: DateTime<Utc>) -> usize {
    let mut count = 0;
    let mut at = slot;
    while let Ok(next) = next_fire(cron, tz, at) {
        if next > now || count >= 1000 {
            break;
        }
        count += 1;
        at = next;
    }
    count
}

/// Schedules a one-shot job at `at` and returns a future that completes when it fires.
async fn one_shot(scheduler: &JobScheduler, at: DateTime<Utc>) -> Result<tokio::sync::oneshot::Receiver<()>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let delay = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    let job = Job::new_one_shot_at_instant(std::time::Instant::now() + delay, move |_, _| {
        if let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) {
            let _ = tx.send(());
        }
    })
    .map_err(|e| anyhow!("scheduling the next pass: {e}"))?;
    scheduler.add(job).await.map_err(|e| anyhow!("scheduling the next pass: {e}"))?;
    Ok(rx)
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
    }

    #[test]
    fn incremental_passes_run_between_full_passes_and_a_full_pass_wins_a_shared_slot() {
        let full = parse_schedule("0 2 * * *").ok();
        let every_five = parse_schedule("*/5 * * * *").ok();
        let tz = chrono_tz::UTC;
        let next = |after| next_pass(full.as_ref(), every_five.as_ref(), &tz, utc(after)).ok();
        assert_eq!(next("2026-12-07T01:52:00Z"), Some((utc("2026-12-07T01:55:00Z"), true)));
        assert_eq!(next("2026-12-07T01:55:00Z"), Some((utc("2026-12-07T02:00:00Z"), false)));
        assert_eq!(
            next_pass(None, every_five.as_ref(), &tz, utc("2026-12-07T02:00:00Z")).ok(),
            Some((utc("2026-12-07T02:05:00Z"), true))
        );
        assert!(next_pass(None, None, &tz, utc("2026-12-07T02:00:00Z")).is_err());
    }
}
