//! One evaluation pass, from the plan to the awards: what `accolade run` and `accolade
//! schedule` call (the commands parse options and print).
//!
//! Takes the run lock, records the config's badges (refusing any whose published rule
//! changed), decides whether the pass is full or incremental ([`crate::incremental`]), loads
//! the sources the evaluated badges need (all members, or the candidates of an incremental
//! pass), computes every qualifying (badge, member) pair in bulk, removes existing awards with
//! an anti-join, and inserts the rest — as a backfill for badges evaluated for the first time
//! since they were published — then releases queued notifications within
//! `[notifications] max_per_run`, keeps the incremental state and records the run.

mod pass;

use crate::config::plan::{Badge, BadgeStatus, Criterion, OnBackfill, Plan, WhenLocked};
use crate::db::Db;
use crate::incremental::{Asked, Pass};
use crate::instant;
use crate::sources::Shard;
use crate::store::{self, AwardKind, AwardSource, BadgeOutcome, IncrementalState, Store};
use anyhow::Result;
use chrono::{DateTime, SubsecRound, Utc};
use pass::{Evaluated, Target, evaluate_and_store};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// What one run is asked to do.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub as_of: Option<DateTime<Utc>>,
    pub dry_run: bool,
    /// Only these badges (all when empty).
    pub only: Vec<String>,
    pub shard: Option<Shard>,
    /// When set (by a signal), the run stops after the transaction in flight.
    pub stop: Option<Arc<AtomicBool>>,
    /// Evaluate only the members changed since the last run, if its state can be trusted.
    pub incremental: bool,
    /// A full pass even if asked to be incremental.
    pub full: bool,
    /// Rows per frame an incremental pass digests the per-member sources in (default
    /// [`crate::incremental::SCAN_ROWS`]; tests make it small to cross frame edges).
    pub scan_rows: Option<usize>,
}

/// What one badge did in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct BadgeReport {
    pub badge_id: String,
    /// `evaluated`, `disabled`, `manual`, `skipped` (not selected), `refused` (its published
    /// rule changed) or `failed` (a column its formula needs is missing).
    pub status: &'static str,
    /// Its awards in this run are its backfill (its first evaluation since it was published).
    pub backfill: bool,
    /// New awards (inserted, or that would be inserted in a dry run).
    pub new_awards: u64,
    /// Awards withdrawn because the criterion no longer holds (`revoke_when_unmet`).
    pub revoked: u64,
    /// Awards this badge's criterion withdrew earlier, given back because it holds again.
    pub restored: u64,
    pub message: Option<String>,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub run_id: Option<i64>,
    pub as_of: DateTime<Utc>,
    pub dry_run: bool,
    pub shard: Option<Shard>,
    pub badges: Vec<BadgeReport>,
    /// Notifications moved to `pending` for the mailer.
    pub notifications_released: u64,
    /// The run stopped early on request; the next run inserts the rest.
    pub stopped: bool,
    /// How the members were chosen.
    pub pass: PassReport,
}

/// Whether a run evaluated every member or only those changed since the last run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    pub incremental: bool,
    /// Why a pass asked to be incremental was full.
    pub full_because: Option<String>,
    /// The members an incremental pass evaluated.
    pub members: Option<u64>,
    /// The run kept state for the next incremental run.
    pub kept_state: bool,
}

impl RunReport {
    /// Whether any badge was refused (its published rule changed) or failed.
    pub fn refused(&self) -> bool {
        self.badges.iter().any(|b| matches!(b.status, "refused" | "failed"))
    }

    pub fn new_awards(&self, badge_id: &str) -> u64 {
        self.badges.iter().find(|b| b.badge_id == badge_id).map_or(0, |b| b.new_awards)
    }

    pub fn total_new_awards(&self) -> u64 {
        self.badges.iter().map(|b| b.new_awards).sum()
    }

    pub fn total_revoked(&self) -> u64 {
        self.badges.iter().map(|b| b.revoked).sum()
    }

    pub fn total_restored(&self) -> u64 {
        self.badges.iter().map(|b| b.restored).sum()
    }
}

/// Marks errors that stopped a run before it started (the run lock, migrations).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotStarted(String);

/// One evaluation pass against `db` (host) and `store` (awards), unsharded.
pub async fn execute(
    plan: &Plan,
    db: &Db,
    store: &Store,
    as_of: Option<DateTime<Utc>>,
    dry_run: bool,
    only: &[String],
) -> Result<RunReport> {
    let options = RunOptions { as_of, dry_run, only: only.to_vec(), ..RunOptions::default() };
    execute_with(plan, db, store, &options).await
}

/// How far ahead of this machine's clock a real run's `as_of` may be (clock skew).
pub const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(1);

/// Refuses a real run as of an instant still to come: its awards would be permanent and
/// dated in the future, for members who may never qualify (a dry run may look ahead).
pub fn refuse_future(as_of: DateTime<Utc>, now: DateTime<Utc>) -> Result<()> {
    if as_of > now + CLOCK_SKEW {
        return Err(NotStarted(format!(
            "--as-of {} is later than now ({}): a run would store permanent awards dated in the future, \
             for members who may not qualify by then; use --dry-run, `explain` or `badges preview` to look ahead",
            instant::format_utc(as_of),
            instant::format_utc(now.trunc_subsecs(0)),
        ))
        .into());
    }
    Ok(())
}

/// One evaluation pass. Needs a multi-threaded Tokio runtime: evaluation runs on a blocking
/// thread so that it never stalls the runtime.
pub async fn execute_with(plan: &Plan, db: &Db, store: &Store, options: &RunOptions) -> Result<RunReport> {
    for id in &options.only {
        if plan.badge(id).is_none() {
            return Err(NotStarted(format!("--badge {id}: no badge with that id in the config")).into());
        }
    }
    if let Some(as_of) = options.as_of
        && !options.dry_run
    {
        refuse_future(as_of, Utc::now())?;
    }
    // A dry run writes nothing, so it neither waits for nor blocks a real run.
    let _lock = match options.dry_run {
        false => Some(
            store::acquire_lock(store, options.shard, plan.when_locked == WhenLocked::Wait)
                .await
                .map_err(|e| NotStarted(crate::errors::text(&e)))?,
        ),
        true => None,
    };
    let started = Utc::now().trunc_subsecs(0);
    let as_of = options.as_of.unwrap_or(started);
    if !options.dry_run {
        store::migrate(store).await.map_err(|e| NotStarted(crate::errors::text(&e)))?;
    }
    let mut reports = record_badges(plan, store, started, options.dry_run).await?;
    let shard_key = options.shard.map_or_else(|| "0/1".to_string(), |s| s.to_string());
    let backfilled = store.backfilled(&shard_key).await?;
    let evaluated: Vec<&Badge> = plan
        .badges
        .iter()
        .filter(|b| reports[&b.id].status == "evaluated")
        .filter(|b| options.only.is_empty() || options.only.contains(&b.id))
        .collect();
    for report in reports.values_mut() {
        if report.status == "evaluated" && !evaluated.iter().any(|b| b.id == report.badge_id) {
            report.status = "skipped";
        }
        report.backfill = report.status == "evaluated" && !backfilled.contains(&report.badge_id);
    }
    // A run as of an earlier instant than one already evaluated (a replay) adds awards but
    // withdraws none: the members' state then is not their state now.
    let replay = match options.dry_run {
        true => false,
        false => store.latest_as_of(&shard_key).await?.is_some_and(|latest| as_of < latest),
    };
    let fingerprint = crate::incremental::Fingerprint::of(plan, &evaluated);
    let backfills: Vec<String> =
        reports.values().filter(|r| r.backfill && r.status == "evaluated").map(|r| r.badge_id.clone()).collect();
    let pass = match options.incremental {
        false => Pass::Full { reason: None },
        true => {
            let asked = Asked { full: options.full, only: &options.only, as_of, backfills: &backfills };
            crate::incremental::decide(store, &fingerprint, &shard_key, asked).await?
        }
    };
    if let Pass::Full { reason: Some(reason) } = &pass {
        tracing::warn!("a full pass: {reason}");
    }
    // Runs of every badge keep state once incremental runs are in use, so that the nightly full
    // pass leaves the next incremental one exact.
    let keep_state = !options.dry_run
        && !replay
        && options.only.is_empty()
        && (options.incremental || store.incremental_state(&shard_key).await?.is_some());
    let run_id = match options.dry_run {
        true => None,
        false => {
            let abandoned = store.fail_abandoned_runs(&shard_key, started).await?;
            if abandoned > 0 {
                tracing::warn!(
                    abandoned,
                    "recorded {abandoned} earlier run(s) that stopped without finishing as failed"
                );
            }
            Some(store.begin_run(started, as_of, &shard_key).await?)
        }
    };
    let kinds = award_kinds(plan, &reports);
    let stop = options.stop.as_deref();
    let target = Target {
        plan,
        db,
        store,
        as_of,
        replay,
        run_id,
        shard: options.shard,
        shard_key: &shard_key,
        kinds: &kinds,
        stop,
        scan_rows: options.scan_rows.unwrap_or(crate::incremental::SCAN_ROWS),
    };
    let mut pass_report = PassReport {
        incremental: matches!(pass, Pass::Incremental { .. }),
        full_because: match &pass {
            Pass::Full { reason } => reason.clone(),
            Pass::Incremental { .. } => None,
        },
        members: None,
        kept_state: false,
    };
    match evaluate_and_store(&target, &evaluated, &pass, keep_state).await {
        Ok(mut evaluated) => {
            let stopped = evaluated.stopped;
            pass_report.members = evaluated.candidates;
            let digests = evaluated.digests.take();
            let digests_unchanged = evaluated.digests_unchanged;
            apply(&mut reports, evaluated);
            let badges: Vec<BadgeReport> = plan.badges.iter().filter_map(|b| reports.remove(&b.id)).collect();
            let mut released = 0;
            if let Some(run_id) = run_id {
                // A stopped run's backfills are not complete: the next run continues them.
                if !stopped {
                    let done: Vec<String> = badges
                        .iter()
                        .filter(|b| b.backfill && b.status == "evaluated")
                        .map(|b| b.badge_id.clone())
                        .collect();
                    store.mark_backfilled(&done, &shard_key, started).await?;
                }
                released = store.release_notifications(plan.notifications.max_per_run, started).await?;
                let failed = badges.iter().any(|b| matches!(b.status, "refused" | "failed"));
                // Only a whole pass of every badge leaves state the next incremental run can trust.
                if let Some(digests) = digests.filter(|_| !stopped && !failed) {
                    let state = IncrementalState {
                        run_id,
                        as_of,
                        fingerprint: fingerprint.to_json(),
                        members: digests.height() as i64,
                    };
                    let chunks = match digests_unchanged {
                        true => None,
                        false => Some(crate::incremental::digest::encode(&digests)?),
                    };
                    store.keep_incremental_state(&shard_key, &state, chunks.as_deref(), Utc::now()).await?;
                    pass_report.kept_state = true;
                }
                let (outcome, message) = match (stopped, failed) {
                    (true, _) => ("partial", Some("stopped on request; the next run inserts the rest")),
                    (false, true) => ("partial", None),
                    (false, false) => ("success", None),
                };
                store.finish_run(run_id, outcome, &outcomes(&badges), message).await?;
            }
            let report = RunReport {
                run_id,
                as_of,
                dry_run: options.dry_run,
                shard: options.shard,
                badges,
                notifications_released: released,
                stopped,
                pass: pass_report,
            };
            tracing::info!(
                run_id,
                as_of = %instant::format_utc(as_of),
                new_awards = report.total_new_awards(),
                notifications_released = released,
                refused = report.refused(),
                "run finished"
            );
            Ok(report)
        }
        Err(error) => {
            if let Some(run_id) = run_id {
                let message = crate::errors::text(&error);
                // The run's own error matters more than a failure to record it.
                if let Err(recording) = store.finish_run(run_id, "failed", &[], Some(&message)).await {
                    tracing::error!("could not record run {run_id} as failed: {}", crate::errors::text(&recording));
                }
            }
            Err(error)
        }
    }
}

/// Each evaluated badge's award source and whether its members are told.
fn award_kinds(plan: &Plan, reports: &BTreeMap<String, BadgeReport>) -> HashMap<String, AwardKind> {
    reports
        .values()
        .map(|r| {
            let kind = if r.backfill {
                AwardKind { source: AwardSource::Backfill, notify: plan.notifications.on_backfill == OnBackfill::All }
            } else {
                AwardKind { source: AwardSource::Rule, notify: true }
            };
            (r.badge_id.clone(), kind)
        })
        .collect()
}

fn apply(reports: &mut BTreeMap<String, BadgeReport>, evaluated: Evaluated) {
    for (badge_id, count) in evaluated.counts {
        if let Some(report) = reports.get_mut(&badge_id) {
            report.new_awards = count;
        }
    }
    for (badge_id, followed) in evaluated.followed {
        if let Some(report) = reports.get_mut(&badge_id) {
            report.revoked = followed.revoked;
            report.restored = followed.restored;
        }
    }
    for (badge_id, message) in evaluated.notes {
        tracing::warn!(badge = %badge_id, "{message}");
        if let Some(report) = reports.get_mut(&badge_id) {
            report.message = Some(message);
        }
    }
    for (badge_id, message) in evaluated.failed {
        tracing::error!(badge = %badge_id, "{message}");
        if let Some(report) = reports.get_mut(&badge_id) {
            report.status = "failed";
            report.message = Some(message);
        }
    }
}

/// Records every config badge and decides which may be evaluated.
async fn record_badges(
    plan: &Plan,
    store: &Store,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<BTreeMap<String, BadgeReport>> {
    let stored: BTreeMap<String, _> =
        store.badge_definitions().await?.into_iter().map(|b| (b.badge_id.clone(), b)).collect();
    let mut reports = BTreeMap::new();
    for badge in &plan.badges {
        let known = stored.get(&badge.id);
        let refusal = known.and_then(|s| store::rule_change_refusal(badge, s));
        if refusal.is_none() && !dry_run {
            store.record_badge(badge, known, now).await?;
        }
        let status = match (&refusal, badge.status, &badge.criterion) {
            (Some(_), _, _) => "refused",
            (None, BadgeStatus::Disabled, _) => "disabled",
            (None, _, Criterion::Manual) => "manual",
            (None, _, _) => "evaluated",
        };
        if let Some(message) = &refusal {
            tracing::error!(badge = %badge.id, "{message}");
        }
        let report = BadgeReport {
            badge_id: badge.id.clone(),
            status,
            backfill: false,
            new_awards: 0,
            revoked: 0,
            restored: 0,
            message: refusal,
        };
        reports.insert(badge.id.clone(), report);
    }
    Ok(reports)
}

fn outcomes(badges: &[BadgeReport]) -> Vec<BadgeOutcome> {
    badges
        .iter()
        .map(|b| BadgeOutcome {
            badge_id: b.badge_id.clone(),
            outcome: b.status,
            awarded: b.new_awards,
            revoked: b.revoked,
            restored: b.restored,
            message: b.message.clone(),
        })
        .collect()
}
