//! `accolade award`: award a badge by hand.
//!
//! Takes member ids from `--users 1,2,3` or `--file ids.csv` (one id per line or in the first
//! column; a header line is skipped), checks them against the users source, and inserts
//! awards with `source = manual`. Members who already hold the badge are left as they are;
//! unknown ids are reported and not awarded.

use super::{Outcome, connect, load_plan};
use crate::config::plan::BadgeStatus;
use crate::evaluate::granted_awards_frame;
use crate::sources::{self, SourceKind};
use crate::store::{self, AwardKind, AwardSource};
use anyhow::{Context, Result, anyhow, bail};
use chrono::{SubsecRound, Utc};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// The badge to award.
    #[arg(long, value_name = "ID")]
    pub badge: String,
    /// The grant of a repeating badge: a week (2026-W23), month (2026-06), year (2026) or item.
    #[arg(long, value_name = "KEY")]
    pub grant: Option<String>,
    #[command(flatten)]
    pub members: Members,
}

/// The members a command acts on: `--users 1,2,3` or `--file ids.csv`.
#[derive(Debug, Clone, clap::Args)]
pub struct Members {
    /// Member ids, comma-separated.
    #[arg(long, value_name = "IDS", required_unless_present = "file", value_delimiter = ',')]
    pub users: Vec<String>,
    /// A file of member ids: one per line, or the first column of a CSV.
    #[arg(long, value_name = "FILE", conflicts_with = "users")]
    pub file: Option<PathBuf>,
}

impl Members {
    /// The listed ids, or an error naming the item that is not one.
    pub fn ids(&self) -> Result<Vec<i64>> {
        match &self.file {
            Some(file) => read_id_file(file),
            None => parse_ids(self.users.iter().map(String::as_str), "--users"),
        }
    }
}

/// What a manual award did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwardReport {
    pub awarded: Vec<i64>,
    pub already_held: Vec<i64>,
    pub unknown: Vec<i64>,
}

pub async fn run(config: Option<&Path>, opts: Opts) -> Result<Outcome> {
    let plan = load_plan(config)?;
    let ids = opts.members.ids()?;
    let (db, store) = connect(&plan).await?;
    let report = award_grant(&plan, &db, &store, &opts.badge, opts.grant.as_deref(), &ids).await;
    super::disconnect(&db, &store).await;
    let report = report?;
    println!(
        "badge '{}': awarded to {} member(s), {} already had it",
        opts.badge,
        report.awarded.len(),
        report.already_held.len()
    );
    if report.unknown.is_empty() {
        return Ok(Outcome::Success);
    }
    let unknown: Vec<String> = report.unknown.iter().map(i64::to_string).collect();
    println!("unknown members (not awarded): {}", unknown.join(", "));
    Ok(Outcome::Failed)
}

/// Awards `badge_id` by hand to the known members among `ids`.
pub async fn award(
    plan: &crate::config::plan::Plan,
    db: &crate::db::Db,
    store: &store::Store,
    badge_id: &str,
    ids: &[i64],
) -> Result<AwardReport> {
    award_grant(plan, db, store, badge_id, None, ids).await
}

/// Awards `badge_id` by hand to the known members among `ids`: the grant `grant` of a
/// repeating badge (required for one, refused for a badge earned once).
pub async fn award_grant(
    plan: &crate::config::plan::Plan,
    db: &crate::db::Db,
    store: &store::Store,
    badge_id: &str,
    grant: Option<&str>,
    ids: &[i64],
) -> Result<AwardReport> {
    let badge =
        plan.badge(badge_id).ok_or_else(|| anyhow!("--badge {badge_id}: no badge with that id in the config"))?;
    let grant = badge.grant_of(grant).map_err(|e| anyhow!("--grant: {e}"))?;
    if badge.status == BadgeStatus::Disabled {
        bail!("badge '{badge_id}' is disabled: it cannot be earned by new members");
    }
    store::migrate(store).await?;
    let stored = store.badge_definitions().await?;
    let known = stored.iter().find(|s| s.badge_id == badge.id);
    if let Some(refusal) = known.and_then(|s| store::rule_change_refusal(badge, s)) {
        bail!("{refusal}");
    }
    store.record_badge(badge, known, Utc::now().trunc_subsecs(0)).await?;
    let members = member_ids(plan, db).await?;
    let wanted: BTreeSet<i64> = ids.iter().copied().collect();
    let (known, unknown): (Vec<i64>, Vec<i64>) = wanted.into_iter().partition(|id| members.contains(id));
    let held: HashSet<i64> = store
        .awards(std::slice::from_ref(&badge.id))
        .await?
        .into_iter()
        .filter(|a| a.grant == grant)
        .map(|a| a.user_id)
        .collect();
    let (already_held, awarded): (Vec<i64>, Vec<i64>) = known.into_iter().partition(|id| held.contains(id));
    let frame =
        granted_awards_frame(vec![badge.id.clone(); awarded.len()], awarded.clone(), vec![grant; awarded.len()])?;
    // Conflicts (a concurrent award of the same pair) are no-ops: the pair is held either way.
    let manual = AwardKind { source: AwardSource::Manual, notify: true };
    let now = Utc::now().trunc_subsecs(0);
    store.insert_awards(&frame, now, &HashMap::new(), manual, None, None).await?;
    store.release_notifications(plan.notifications.max_per_run, now).await?;
    Ok(AwardReport { awarded, already_held, unknown })
}

async fn member_ids(plan: &crate::config::plan::Plan, db: &crate::db::Db) -> Result<HashSet<i64>> {
    let snapshot =
        sources::load_snapshot(db, &plan.sources, &sources::Wanted::kinds([SourceKind::Users]), plan.timezone)
            .await
            .complete()?;
    let users = snapshot.frame(SourceKind::Users).ok_or_else(|| anyhow!("the users source was not loaded"))?;
    let ids = users.column("user_id").and_then(|c| c.i64().cloned())?;
    Ok(ids.iter().flatten().collect())
}

fn read_id_file(path: &Path) -> Result<Vec<i64>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut cells: Vec<&str> = text
        .lines()
        .map(|line| line.split(',').next().unwrap_or("").trim().trim_matches('"'))
        .filter(|cell| !cell.is_empty())
        .collect();
    if cells.first().is_some_and(|first| first.parse::<i64>().is_err()) {
        cells.remove(0); // a header line
    }
    parse_ids(cells.into_iter(), &path.display().to_string())
}

fn parse_ids<'a>(cells: impl Iterator<Item = &'a str>, origin: &str) -> Result<Vec<i64>> {
    cells
        .enumerate()
        .filter(|(_, cell)| !cell.trim().is_empty())
        .map(|(i, cell)| {
            cell.trim().parse::<i64>().map_err(|_| anyhow!("{origin}: '{cell}' (item {}) is not a member id", i + 1))
        })
        .collect()
}
