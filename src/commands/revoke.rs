//! `accolade revoke`: withdraw a badge from listed members, with a reason (or `--undo` it).
//!
//! A revoked award keeps its row, so no rule awards the badge again; it no longer counts on
//! the dashboard, the leaderboard or the report, and Open Badges exports show it as revoked
//! the way each standard says. Members who do not hold the badge are reported.

use super::award::Members;
use super::{Outcome, connect, load_plan};
use crate::store;
use anyhow::{Result, bail};
use chrono::{SubsecRound, Utc};
use std::path::Path;

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// The badge to revoke.
    #[arg(long, value_name = "ID")]
    pub badge: String,
    /// The grant of a repeating badge: a week (2026-W23), month (2026-06), year (2026) or item.
    #[arg(long, value_name = "KEY")]
    pub grant: Option<String>,
    #[command(flatten)]
    pub members: Members,
    /// Why (shown in Open Badges exports as the revocation reason).
    #[arg(long, value_name = "TEXT", required_unless_present = "undo")]
    pub reason: Option<String>,
    /// Restore the listed members' revoked awards instead.
    #[arg(long, conflicts_with = "reason")]
    pub undo: bool,
}

pub async fn run(config: Option<&Path>, opts: Opts) -> Result<Outcome> {
    let plan = load_plan(config)?;
    let Some(badge) = plan.badge(&opts.badge) else {
        bail!("--badge {}: no badge with that id in the config", opts.badge);
    };
    let grant = badge.grant_of(opts.grant.as_deref()).map_err(|e| anyhow::anyhow!("--grant: {e}"))?;
    let reason = opts.reason.as_deref().map(str::trim);
    if reason.is_some_and(str::is_empty) {
        bail!("--reason is empty: say why the badge is revoked");
    }
    let ids = opts.members.ids()?;
    let (db, store) = connect(&plan).await?;
    let report = async {
        store::migrate(&store).await?;
        store.set_revoked(&opts.badge, &grant, &ids, reason, Utc::now().trunc_subsecs(0)).await
    }
    .await;
    super::disconnect(&db, &store).await;
    let report = report?;
    let (done, already) = if opts.undo { ("restored", "not revoked") } else { ("revoked", "already revoked") };
    println!(
        "badge '{}': {done} for {} member(s), {} {already}",
        opts.badge,
        report.changed.len(),
        report.unchanged.len()
    );
    if report.not_held.is_empty() {
        return Ok(Outcome::Success);
    }
    let ids: Vec<String> = report.not_held.iter().map(i64::to_string).collect();
    println!(
        "members without the badge (nothing to {}): {}",
        if opts.undo { "restore" } else { "revoke" },
        ids.join(", ")
    );
    Ok(Outcome::Failed)
}
