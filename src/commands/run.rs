//! `accolade run`: one evaluation pass.
//!
//! Records the config's badges (refusing any whose published rule changed), loads the
//! sources the evaluated badges need, computes every qualifying (badge, member) pair in bulk,
//! removes existing awards with an anti-join, and inserts the rest, recording the run.

use super::{Outcome, connect, load_plan, print_table};
use crate::config::plan::{Badge, BadgeStatus, Criterion, Plan, WhenLocked};
use crate::db::Db;
use crate::evaluate::{Context, Evaluation};
use crate::formula;
use crate::instant;
use crate::sources::{self, SourceKind};
use crate::store::{self, AwardSource, BadgeOutcome, Store};
use anyhow::{Result, bail};
use chrono::{DateTime, SubsecRound, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct Opts {
    /// Evaluate as of this instant (RFC 3339, or a date in the evaluation timezone); default now.
    #[arg(long, value_name = "INSTANT")]
    pub as_of: Option<String>,
    /// Compute and report, but write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Evaluate only these badges (repeatable).
    #[arg(long = "badge", value_name = "ID")]
    pub badges: Vec<String>,
}

/// What one badge did in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct BadgeReport {
    pub badge_id: String,
    /// `evaluated`, `disabled`, `manual`, `skipped` (not selected), `refused` (its published
    /// rule changed) or `failed` (a column its formula needs is missing).
    pub status: &'static str,
    /// New awards (inserted, or that would be inserted in a dry run).
    pub new_awards: u64,
    pub message: Option<String>,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub run_id: Option<i64>,
    pub as_of: DateTime<Utc>,
    pub dry_run: bool,
    pub badges: Vec<BadgeReport>,
}

impl RunReport {
    /// Whether any badge was refused (its published rule changed) or failed.
    pub fn refused(&self) -> bool {
        self.badges.iter().any(|b| matches!(b.status, "refused" | "failed"))
    }

    pub fn new_awards(&self, badge_id: &str) -> u64 {
        self.badges.iter().find(|b| b.badge_id == badge_id).map_or(0, |b| b.new_awards)
    }
}

pub async fn run(config: Option<&Path>, opts: Opts) -> Result<Outcome> {
    let plan = load_plan(config)?;
    let as_of = match &opts.as_of {
        Some(text) => Some(instant::parse_as_of(text, &plan.timezone).map_err(|e| anyhow::anyhow!("--as-of: {e}"))?),
        None => None,
    };
    let (db, store) = connect(&plan).await?;
    let report = execute(&plan, &db, &store, as_of, opts.dry_run, &opts.badges).await;
    super::disconnect(&db, &store).await;
    let report = report?;
    print_report(&report);
    Ok(if report.refused() { Outcome::Failed } else { Outcome::Success })
}

/// One evaluation pass against `db` (host) and `store` (awards).
pub async fn execute(
    plan: &Plan,
    db: &Db,
    store: &Store,
    as_of: Option<DateTime<Utc>>,
    dry_run: bool,
    only: &[String],
) -> Result<RunReport> {
    for id in only {
        if plan.badge(id).is_none() {
            bail!("--badge {id}: no badge with that id in the config");
        }
    }
    // Whole seconds: awards and runs carry readable instants, and a replay can name them.
    // A dry run writes nothing, so it neither waits for nor blocks a real run.
    let _lock = match dry_run {
        false => Some(store::acquire_lock(store, plan.when_locked == WhenLocked::Wait).await?),
        true => None,
    };
    let started = Utc::now().trunc_subsecs(0);
    let as_of = as_of.unwrap_or(started);
    if !dry_run {
        store::migrate(store).await?;
    }
    let mut reports = record_badges(plan, store, started, dry_run).await?;
    let evaluated: Vec<&Badge> = plan
        .badges
        .iter()
        .filter(|b| reports[&b.id].status == "evaluated")
        .filter(|b| only.is_empty() || only.contains(&b.id))
        .collect();
    for report in reports.values_mut() {
        if report.status == "evaluated" && !evaluated.iter().any(|b| b.id == report.badge_id) {
            report.status = "skipped";
        }
    }
    let run_id = if dry_run { None } else { Some(store.begin_run(started, as_of).await?) };
    let outcome = evaluate_and_store(plan, db, store, &evaluated, as_of, run_id).await;
    match outcome {
        Ok(evaluated) => {
            for (badge_id, count) in evaluated.counts {
                if let Some(report) = reports.get_mut(&badge_id) {
                    report.new_awards = count;
                }
            }
            for (badge_id, message) in evaluated.failed {
                tracing::error!(badge = %badge_id, "{message}");
                if let Some(report) = reports.get_mut(&badge_id) {
                    report.status = "failed";
                    report.message = Some(message);
                }
            }
            let badges: Vec<BadgeReport> = plan.badges.iter().filter_map(|b| reports.remove(&b.id)).collect();
            if let Some(run_id) = run_id {
                let result =
                    if badges.iter().any(|b| matches!(b.status, "refused" | "failed")) { "partial" } else { "success" };
                store.finish_run(run_id, result, &outcomes(&badges), None).await?;
            }
            Ok(RunReport { run_id, as_of, dry_run, badges })
        }
        Err(error) => {
            if let Some(run_id) = run_id {
                let message = format!("{error:#}");
                store.finish_run(run_id, "failed", &[], Some(&message)).await?;
            }
            Err(error)
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
    let stored: BTreeMap<String, _> = store.badges().await?.into_iter().map(|b| (b.badge_id.clone(), b)).collect();
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
        let report = BadgeReport { badge_id: badge.id.clone(), status, new_awards: 0, message: refusal };
        reports.insert(badge.id.clone(), report);
    }
    Ok(reports)
}

/// What evaluating and storing produced: new awards per badge, and badges that failed.
#[derive(Debug, Default)]
struct Evaluated {
    counts: Vec<(String, u64)>,
    failed: Vec<(String, String)>,
}

/// Loads what the badges need, evaluates them, and inserts new awards (only counts them,
/// in a dry run).
async fn evaluate_and_store(
    plan: &Plan,
    db: &Db,
    store: &Store,
    badges: &[&Badge],
    as_of: DateTime<Utc>,
    run_id: Option<i64>,
) -> Result<Evaluated> {
    if badges.is_empty() {
        return Ok(Evaluated::default());
    }
    let wanted: BTreeSet<SourceKind> = badges.iter().flat_map(|b| b.sources()).collect();
    let snapshot = sources::load_snapshot(db, &plan.sources, &wanted).await?;
    let (ready, failed) = split_by_columns(badges, &snapshot);
    let ctx = Context { as_of, timezone: plan.timezone };
    let evaluation = Evaluation::prepare(ctx, ready.iter().copied(), &snapshot)?;
    let ids: Vec<String> = ready.iter().map(|b| b.id.clone()).collect();
    let existing = store.existing_awards(&ids).await?;
    let new = evaluation.new_awards(existing)?;
    tracing::info!(new_awards = new.height(), "evaluated {} badges", ready.len());
    let counts = match run_id {
        Some(run_id) => store.insert_awards(&new, as_of, AwardSource::Rule, Some(run_id)).await?,
        None => count_per_badge(&new)?,
    };
    Ok(Evaluated { counts, failed })
}

/// Separates badges whose formulas use an optional column the source did not return.
fn split_by_columns<'a>(badges: &[&'a Badge], snapshot: &sources::Snapshot) -> (Vec<&'a Badge>, Vec<(String, String)>) {
    let mut ready = Vec::new();
    let mut failed = Vec::new();
    for badge in badges {
        let Criterion::Formula { tree, .. } = &badge.criterion else {
            ready.push(*badge);
            continue;
        };
        let missing: Vec<String> = formula::compile::optional_columns(tree)
            .into_iter()
            .filter(|(kind, column)| !snapshot.has_column(*kind, column))
            .map(|(kind, column)| format!("source '{kind}' returns no '{column}' column"))
            .collect();
        if missing.is_empty() {
            ready.push(*badge);
        } else {
            failed.push((badge.id.clone(), format!("the formula needs it: {}", missing.join("; "))));
        }
    }
    (ready, failed)
}

fn count_per_badge(awards: &polars::prelude::DataFrame) -> Result<Vec<(String, u64)>> {
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
            message: b.message.clone(),
        })
        .collect()
}

/// Prints the per-badge summary of a run.
pub fn print_report(report: &RunReport) {
    let what = if report.dry_run {
        "dry run (nothing written)".to_string()
    } else {
        report.run_id.map_or_else(|| "run".to_string(), |id| format!("run {id}"))
    };
    println!("{what} as of {}", instant::format_utc(report.as_of));
    let header = if report.dry_run { "would award" } else { "new awards" };
    let rows = report
        .badges
        .iter()
        .map(|b| {
            vec![
                b.badge_id.clone(),
                b.status.to_string(),
                b.new_awards.to_string(),
                b.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print_table(&["badge", "status", header, "note"], rows);
    let total: u64 = report.badges.iter().map(|b| b.new_awards).sum();
    println!("{total} new awards");
}
