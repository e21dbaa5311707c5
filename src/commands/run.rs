//! `accolade run`: one evaluation pass.
//!
//! Takes the run lock, records the config's badges (refusing any whose published rule
//! changed), loads the sources the evaluated badges need, computes every qualifying (badge,
//! member) pair in bulk, removes existing awards with an anti-join, and inserts the rest —
//! as a backfill for badges evaluated for the first time since they were published — then
//! releases queued notifications within `[notifications] max_per_run` and records the run.

use super::{Outcome, connect, load_plan, print_table};
use crate::config::plan::{Badge, BadgeStatus, Criterion, OnBackfill, Plan, WhenLocked};
use crate::db::Db;
use crate::evaluate::{Context, Evaluation};
use crate::incremental::{Asked, Pass};
use crate::instant;
use crate::sources::{self, Shard, Snapshot};
use crate::store::{self, AwardKind, AwardSource, BadgeOutcome, IncrementalState, Inserted, Store};
use anyhow::{Result, anyhow};
use chrono::{DateTime, SubsecRound, Utc};
use polars::prelude::DataFrame;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

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
    let target = Target { plan, db, store, as_of, replay, run_id, shard: options.shard, kinds: &kinds, stop };
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
                    let chunks = crate::incremental::digest::encode(&digests)?;
                    store.keep_incremental_state(&shard_key, &state, &chunks, Utc::now()).await?;
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

/// Where a run's awards go.
struct Target<'a> {
    plan: &'a Plan,
    db: &'a Db,
    store: &'a Store,
    as_of: DateTime<Utc>,
    /// `as_of` is earlier than a finished run's: revoke_when_unmet withdraws nothing.
    replay: bool,
    run_id: Option<i64>,
    shard: Option<Shard>,
    kinds: &'a HashMap<String, AwardKind>,
    stop: Option<&'a AtomicBool>,
}

/// What evaluating and storing produced: new awards per badge, and badges that failed.
#[derive(Debug, Default)]
struct Evaluated {
    counts: Vec<(String, u64)>,
    /// What `revoke_when_unmet` did per badge.
    followed: HashMap<String, store::Followed>,
    failed: Vec<(String, String)>,
    /// Badges that were evaluated but left something out, and what.
    notes: Vec<(String, String)>,
    stopped: bool,
    /// The members an incremental pass evaluated.
    candidates: Option<u64>,
    /// Every member's digest, when the run keeps incremental state.
    digests: Option<DataFrame>,
}

/// Loads what the badges need, evaluates them, and inserts new awards (only counts them,
/// in a dry run).
async fn evaluate_and_store(
    target: &Target<'_>,
    badges: &[&Badge],
    pass: &Pass,
    keep_state: bool,
) -> Result<Evaluated> {
    if badges.is_empty() {
        return Ok(Evaluated::default());
    }
    let wanted = crate::config::plan::wanted(badges.iter().copied());
    let loading = crate::telemetry::phase("loading sources");
    let clock = std::time::Instant::now();
    let ids: Vec<String> = badges.iter().map(|b| b.id.clone()).collect();
    let (snapshot, existing, candidates) = match pass {
        Pass::Full { .. } => {
            let (snapshot, existing) = load_everything(target, &wanted, &ids).await;
            (snapshot, existing?, None)
        }
        Pass::Incremental { state } => {
            let (snapshot, existing, candidates) = load_changed(target, badges, &wanted, &ids, state).await?;
            (snapshot, existing, Some(candidates))
        }
    };
    drop(loading);
    let (rss_mib, peak_rss_mib) = crate::telemetry::memory_mib();
    tracing::info!(elapsed_ms = clock.elapsed().as_millis() as u64, rss_mib, peak_rss_mib, "loaded sources");
    let evaluated_members = candidates.as_ref().map(|c| c.members.len() as u64);
    let (members, mut digests) = match candidates {
        Some(c) => (Some(c.members), Some(c.digests)),
        None => (None, None),
    };
    // A full pass that keeps state digests the whole snapshot it loaded.
    let digest_kinds = match keep_state && digests.is_none() {
        true => Some(crate::incremental::per_member_kinds(&wanted.kinds)),
        false => None,
    };
    let (ready, failed) = crate::evaluate::split_ready(badges, &snapshot);
    if ready.is_empty() {
        return Ok(Evaluated { failed, candidates: evaluated_members, ..Evaluated::default() });
    }
    let evaluated = ready.len();
    let clock = std::time::Instant::now();
    let ctx = Context { as_of: target.as_of, timezone: target.plan.timezone };
    let ready: Vec<Badge> = ready.into_iter().cloned().collect();
    // Badges whose awards follow their criteria: their qualifying members are kept as well.
    let following: Vec<String> = ready.iter().filter(|b| b.revoke_when_unmet).map(|b| b.id.clone()).collect();
    let evaluating = crate::telemetry::phase("evaluating badges");
    let wanted_following = following.clone();
    let restrict_to = members.clone();
    let (new, qualifying, full_digests) =
        crate::evaluate::on_evaluation_thread(move || -> Result<(DataFrame, DataFrame, Option<DataFrame>)> {
            let digests = match digest_kinds {
                Some(kinds) => Some(crate::incremental::digest::member_digests(&snapshot, &kinds)?),
                None => None,
            };
            let snapshot = match restrict_to {
                Some(members) => crate::incremental::restrict(snapshot, &members)?,
                None => snapshot,
            };
            let evaluation = Evaluation::prepare(ctx, ready.iter(), &snapshot)?;
            // The features hold what the predicates need: the sources can go before the filtering.
            drop(snapshot);
            let qualifying = evaluation.qualifying()?;
            let following = match wanted_following.is_empty() {
                true => crate::evaluate::empty_awards(),
                false => Evaluation::qualifying_of(&qualifying, &wanted_following)?,
            };
            Ok((evaluation.new_of(qualifying, existing)?, following, digests))
        })
        .await?;
    if full_digests.is_some() {
        digests = full_digests;
    }
    let (new, left_out) = crate::evaluate::storable(new)?;
    let notes: Vec<(String, String)> = left_out
        .into_iter()
        .map(|(badge, n)| {
            let limit = crate::evaluate::MAX_GRANT_BYTES;
            (badge, format!("{n} grant(s) left out: their item ids are longer than {limit} bytes (or hold NUL)"))
        })
        .collect();
    drop(evaluating);
    let (rss_mib, peak_rss_mib) = crate::telemetry::memory_mib();
    tracing::info!(
        elapsed_ms = clock.elapsed().as_millis() as u64,
        new_awards = new.height(),
        rss_mib,
        peak_rss_mib,
        "evaluated {evaluated} badges"
    );
    let clock = std::time::Instant::now();
    let _writing = crate::telemetry::phase("writing awards");
    let inserted = match target.run_id {
        Some(run_id) => {
            let default = AwardKind { source: AwardSource::Rule, notify: true };
            target.store.insert_awards(&new, target.as_of, target.kinds, default, Some(run_id), target.stop).await?
        }
        None => Inserted { counts: count_per_badge(&new)?, stopped: false },
    };
    let (rss_mib, peak_rss_mib) = crate::telemetry::memory_mib();
    tracing::info!(elapsed_ms = clock.elapsed().as_millis() as u64, rss_mib, peak_rss_mib, "wrote awards");
    // Revocations by rule need a whole, real evaluation: never in a dry run, nor after a stop.
    if target.replay && !following.is_empty() {
        tracing::info!("a run as of an instant before the last run's revokes and restores nothing (revoke_when_unmet)");
    }
    let followed = match (target.run_id, inserted.stopped) {
        (Some(_), false) if !following.is_empty() && !target.replay => {
            let announce = target.plan.notifications.on_revoke_all;
            let followed = target
                .store
                .follow_criteria(&following, &qualifying, target.shard, members.as_deref(), announce, target.as_of)
                .await?;
            let revoked: u64 = followed.values().map(|f| f.revoked).sum();
            let restored: u64 = followed.values().map(|f| f.restored).sum();
            tracing::info!(revoked, restored, "awards following their criteria");
            followed
        }
        _ => HashMap::new(),
    };
    Ok(Evaluated {
        counts: inserted.counts,
        followed,
        failed,
        notes,
        stopped: inserted.stopped,
        candidates: evaluated_members,
        digests,
    })
}

/// A full pass's reading: every source of the shard, and the existing awards of `ids`.
async fn load_everything(
    target: &Target<'_>,
    wanted: &sources::Wanted,
    ids: &[String],
) -> (Snapshot, Result<DataFrame>) {
    let load =
        sources::load_snapshot_shard(target.db, &target.plan.sources, wanted, target.shard, target.plan.timezone);
    // The existing awards are read while the sources load (the awards database has spare time
    // once the small sources are done), for every badge to evaluate: pairs of a badge that then
    // cannot be evaluated match nothing in the anti-join.
    let read_existing = async {
        let clock = std::time::Instant::now();
        let existing = target.store.existing_awards(ids).await;
        if let Ok(existing) = &existing {
            let elapsed_ms = clock.elapsed().as_millis() as u64;
            tracing::info!(elapsed_ms, existing = existing.height(), "read existing awards");
        }
        existing
    };
    tokio::join!(load, read_existing)
}

/// An incremental pass's reading: the per-member sources whole (to find what changed in
/// place), the candidates, then the event sources and existing awards of the candidates only.
async fn load_changed(
    target: &Target<'_>,
    badges: &[&Badge],
    wanted: &sources::Wanted,
    ids: &[String],
    state: &IncrementalState,
) -> Result<(Snapshot, DataFrame, crate::incremental::Candidates)> {
    let shard_key = target.shard.map_or_else(|| "0/1".to_string(), |s| s.to_string());
    let (db, queries, tz) = (target.db, &target.plan.sources, target.plan.timezone);
    let per_member_kinds = crate::incremental::per_member_kinds(&wanted.kinds);
    let event_kinds: Vec<_> = wanted.kinds.iter().copied().filter(|k| k.is_event()).collect();
    let per_member_wanted =
        sources::Wanted { kinds: per_member_kinds.into_iter().collect(), user_columns: wanted.user_columns.clone() };
    let (per_member, stored) = tokio::join!(
        sources::load_snapshot_shard(db, queries, &per_member_wanted, target.shard, tz),
        target.store.member_digest_chunks(&shard_key)
    );
    let stored = crate::incremental::digest::decode(&stored?)?;
    let scope = crate::incremental::Scope {
        db,
        plan: target.plan,
        shard: target.shard,
        since: state.as_of,
        as_of: target.as_of,
    };
    let owned: Vec<Badge> = badges.iter().map(|b| (*b).clone()).collect();
    let clock = std::time::Instant::now();
    let (candidates, mut snapshot) =
        crate::incremental::candidates(&scope, &owned, per_member, stored, &event_kinds).await?;
    tracing::info!(
        elapsed_ms = clock.elapsed().as_millis() as u64,
        members = candidates.members.len(),
        with_new_rows = candidates.with_new_rows,
        changed = candidates.changed,
        by_time = candidates.by_time,
        since = %instant::format_utc(state.as_of),
        "an incremental pass: found the members to evaluate"
    );
    let event_wanted = sources::Wanted::kinds(event_kinds);
    let (events, existing) = tokio::join!(
        sources::load_snapshot_of(db, queries, &event_wanted, target.shard, Some(&candidates.members), tz),
        target.store.existing_awards_of(ids, Some(&candidates.members))
    );
    snapshot.frames.extend(events.frames);
    snapshot.failed.extend(events.failed);
    Ok((snapshot, existing?, candidates))
}

fn count_per_badge(awards: &DataFrame) -> Result<Vec<(String, u64)>> {
    let mut counts: Vec<(String, u64)> = Vec::new();
    let ids = awards.column("badge_id").and_then(|c| c.str().cloned())?;
    for id in ids.iter().flatten() {
        match counts.last_mut() {
            Some((badge, n)) if badge == id => *n += 1,
            _ => counts.push((id.to_string(), 1)),
        }
    }
    Ok(counts)
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
