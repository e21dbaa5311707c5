//! `accolade explain --user ID`: why a member has, or hasn't, each badge.
//!
//! For each badge (or one): whether the member holds it (since when, from which run or by
//! hand), and every clause of its rule or formula with the member's actual value beside the
//! threshold, computed by the same compiled checks a run uses.

use super::{Outcome, connect, load_plan};
use crate::config::plan::{Badge, Criterion, Plan};
use crate::evaluate::{BadgeExplanation, CheckOutcome, Context, Evaluation};
use crate::instant;
use crate::sources::{self, SourceKind};
use crate::store::StoredAward;
use anyhow::{Result, anyhow};
use chrono::{SubsecRound, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// The member to explain.
    #[arg(long = "user", value_name = "ID")]
    pub user: i64,
    /// Only this badge.
    #[arg(long, value_name = "ID")]
    pub badge: Option<String>,
    /// Evaluate as of this instant (RFC 3339, or a date in the evaluation timezone); default now.
    #[arg(long, value_name = "INSTANT")]
    pub as_of: Option<String>,
}

pub async fn run(config: Option<&Path>, opts: Opts) -> Result<Outcome> {
    let plan = load_plan(config)?;
    let as_of = match &opts.as_of {
        Some(text) => instant::parse_as_of(text, &plan.timezone).map_err(|e| anyhow!("--as-of: {e}"))?,
        None => Utc::now().trunc_subsecs(0),
    };
    let badges: Vec<&Badge> = match &opts.badge {
        Some(id) => vec![plan.badge(id).ok_or_else(|| anyhow!("--badge {id}: no badge with that id in the config"))?],
        None => plan.badges.iter().collect(),
    };
    let (db, store) = connect(&plan).await?;
    let result = async {
        let held = store.awards_of_member(opts.user).await?;
        let explained = explain(&plan, &db, &badges, opts.user, Context { as_of, timezone: plan.timezone }).await?;
        Ok::<_, anyhow::Error>((held, explained))
    }
    .await;
    super::disconnect(&db, &store).await;
    let (held, explained) = result?;
    print!("{}", render(&plan, &badges, opts.user, as_of, &held, explained.as_ref()));
    Ok(Outcome::Success)
}

/// Evaluates `badges` for one member; `None` if not a member as of the instant.
pub async fn explain(
    plan: &Plan,
    db: &crate::db::Db,
    badges: &[&Badge],
    user_id: i64,
    ctx: Context,
) -> Result<Option<Vec<BadgeExplanation>>> {
    let evaluable: Vec<&Badge> = badges.iter().copied().filter(|b| !matches!(b.criterion, Criterion::Manual)).collect();
    let mut wanted: BTreeSet<SourceKind> = evaluable.iter().flat_map(|b| b.sources()).collect();
    wanted.insert(SourceKind::Users);
    let snapshot = sources::load_snapshot(db, &plan.sources, &wanted, plan.timezone).await?;
    // A badge whose formula needs a column the source lacks is explained by that alone.
    let (ready, unavailable) = crate::evaluate::split_ready(&evaluable, &snapshot);
    let ready: Vec<Badge> = ready.into_iter().cloned().collect();
    let explained = crate::evaluate::on_evaluation_thread(move || {
        Evaluation::prepare(ctx, ready.iter(), &snapshot)?.explain(user_id)
    })
    .await?;
    Ok(explained.map(|mut badges| {
        badges.extend(unavailable.into_iter().map(|(badge_id, message)| BadgeExplanation {
            badge_id,
            qualifies: false,
            checks: vec![CheckOutcome {
                label: format!("cannot be evaluated: {message}"),
                pass: false,
                values: vec![],
            }],
        }));
        badges
    }))
}

/// The explanation as text.
pub fn render(
    plan: &Plan,
    badges: &[&Badge],
    user_id: i64,
    as_of: chrono::DateTime<Utc>,
    held: &[(StoredAward, Option<i64>)],
    explained: Option<&Vec<BadgeExplanation>>,
) -> String {
    let mut out = format!("member {user_id} as of {} ({})\n", instant::format_utc(as_of), plan.timezone);
    if explained.is_none() {
        out.push_str("  not a member at that instant: no such user_id in the users source, or created later\n");
    }
    let held: BTreeMap<&str, &(StoredAward, Option<i64>)> = held.iter().map(|h| (h.0.badge_id.as_str(), h)).collect();
    let by_id: BTreeMap<&str, &BadgeExplanation> =
        explained.map(|e| e.iter().map(|b| (b.badge_id.as_str(), b)).collect()).unwrap_or_default();
    for badge in badges {
        out.push_str(&format!("\n{} ({}, {})\n", badge.id, badge.name, badge.status.as_str()));
        match held.get(badge.id.as_str()) {
            Some((award, run)) => {
                let how = run.map_or_else(|| award.source.clone(), |r| format!("{}, run {r}", award.source));
                out.push_str(&format!("  held since {} ({how})\n", award.awarded_at));
            }
            None => out.push_str("  not held\n"),
        }
        if let Some(since) = badge.activity_since {
            out.push_str(&format!("  counts activity since {}\n", instant::format_utc(since)));
        }
        match (&badge.criterion, by_id.get(badge.id.as_str())) {
            (Criterion::Manual, _) => out.push_str("  awarded by hand only\n"),
            (_, Some(explanation)) => {
                for check in &explanation.checks {
                    let mark = if check.pass { "✓" } else { "✗" };
                    let values: Vec<String> = check.values.iter().map(|(n, v)| format!("{n} {v}")).collect();
                    out.push_str(&format!("  {}  {mark} ({})\n", check.label, values.join(", ")));
                }
                let verdict = if explanation.qualifies { "qualifies" } else { "does not qualify" };
                out.push_str(&format!("  → {verdict}\n"));
            }
            (_, None) => {}
        }
    }
    out
}
