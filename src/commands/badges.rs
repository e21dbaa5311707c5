//! `accolade badges`: the admin dashboard as a table.
//!
//! One row per badge of the config (and per stored badge no longer in it): id, name, rule
//! type, status, last update, recipients count.

use super::{Outcome, connect, disconnect, load_plan, print_table};
use crate::config::plan::{Badge, Criterion, OnBackfill};
use crate::evaluate::Evaluation;
use crate::features::Context;
use crate::sources;
use crate::store::StoredBadge;
use anyhow::{Result, anyhow, bail};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct Opts {
    #[command(subcommand)]
    pub action: Option<Action>,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Action {
    /// How many members a badge would be awarded to now, even before it is published.
    Preview(PreviewOpts),
}

#[derive(Debug, Clone, clap::Args)]
pub struct PreviewOpts {
    /// The badge to preview.
    pub id: String,
    /// Evaluate as of this instant (RFC 3339, epoch seconds, or a date in the evaluation timezone); default now.
    #[arg(long, value_name = "INSTANT")]
    pub as_of: Option<String>,
}

pub async fn run(config: Option<&Path>, opts: Opts) -> Result<Outcome> {
    let plan = load_plan(config)?;
    if let Some(Action::Preview(preview)) = opts.action {
        return self::preview(&plan, preview).await;
    }
    let (db, store) = connect(&plan).await?;
    let stored = store.badges().await;
    super::disconnect(&db, &store).await;
    print_dashboard(&plan, stored?);
    Ok(Outcome::Success)
}

/// Prints the dashboard for the plan's badges, with what the store knows of them.
pub fn print_dashboard(plan: &crate::config::plan::Plan, stored: Vec<StoredBadge>) {
    let mut stored: BTreeMap<String, StoredBadge> = stored.into_iter().map(|b| (b.badge_id.clone(), b)).collect();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for badge in &plan.badges {
        // A badge with levels: a line of its own, its levels under it.
        if let Some(level) = &badge.level
            && level.index == 0
        {
            let count =
                plan.badges.iter().filter(|b| b.level.as_ref().is_some_and(|l| l.badge_id == level.badge_id)).count();
            rows.push(vec![
                level.badge_id.clone(),
                level.badge_name.clone(),
                format!("levels ({count}) of {}", level.measure),
                badge.status.as_str().to_string(),
                String::new(),
                String::new(),
            ]);
        }
        let name = match &badge.level {
            Some(level) => format!("  └ {} (from {})", badge.name, level.min),
            None => badge.name.clone(),
        };
        let rule_type = match badge.repeat {
            Some(repeat) => format!("{}, per {}", badge.criterion.type_name(), repeat.as_str()),
            None => badge.criterion.type_name().to_string(),
        };
        let known = stored.remove(&badge.id);
        rows.push(vec![
            badge.id.clone(),
            name,
            rule_type,
            badge.status.as_str().to_string(),
            known.as_ref().map_or_else(|| "never run".to_string(), |b| crate::instant::format_utc(b.updated_at)),
            known.and_then(|b| b.recipients).unwrap_or(0).to_string(),
        ]);
    }
    rows.extend(stored.into_values().map(|b| {
        vec![
            b.badge_id,
            b.name,
            b.rule_type,
            format!("{} (not in config)", b.status),
            crate::instant::format_utc(b.updated_at),
            b.recipients.unwrap_or(0).to_string(),
        ]
    }));
    print_table(&["id", "name", "rule type", "status", "last update", "recipients"], rows);
}

/// What publishing a badge now would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// Members who meet the criterion now.
    pub qualifying: usize,
    /// Of those, members who would get it (not holding it yet).
    pub new_awards: usize,
    /// The awards would be its backfill (its first evaluation since publication).
    pub backfill: bool,
}

async fn preview(plan: &crate::config::plan::Plan, opts: PreviewOpts) -> Result<Outcome> {
    let badge = plan.badge(&opts.id).ok_or_else(|| anyhow!("no badge '{}' in the config", opts.id))?;
    let as_of = match &opts.as_of {
        Some(text) => crate::instant::parse_as_of(text, &plan.timezone).map_err(|e| anyhow!("--as-of: {e}"))?,
        None => chrono::Utc::now(),
    };
    let (db, store) = connect(plan).await?;
    let result = preview_badge(plan, &db, &store, badge, as_of).await;
    disconnect(&db, &store).await;
    let preview = result?;
    let announced = match (preview.backfill, plan.notifications.on_backfill) {
        (false, _) | (true, OnBackfill::All) => "each is announced",
        (true, OnBackfill::None) => "as a backfill, without notifications ([notifications] on_backfill = \"none\")",
    };
    println!(
        "badge '{}' would be awarded to {} member(s) now ({} qualify, {} already hold it); {announced}",
        badge.id,
        preview.new_awards,
        preview.qualifying,
        preview.qualifying - preview.new_awards
    );
    Ok(Outcome::Success)
}

/// Evaluates one badge as if it were published, writing nothing.
pub async fn preview_badge(
    plan: &crate::config::plan::Plan,
    db: &crate::db::Db,
    store: &crate::store::Store,
    badge: &Badge,
    as_of: chrono::DateTime<chrono::Utc>,
) -> Result<Preview> {
    if matches!(badge.criterion, Criterion::Manual) {
        bail!("badge '{}' is awarded by hand only: there is nothing to preview", badge.id);
    }
    let snapshot = sources::load_snapshot(db, &plan.sources, &crate::config::plan::wanted([badge]), plan.timezone)
        .await
        .complete()?;
    let ctx = Context { as_of, timezone: plan.timezone };
    let existing = store.existing_awards(std::slice::from_ref(&badge.id)).await?;
    let backfill = !store.backfilled("0/1").await?.contains(&badge.id);
    let badge = badge.clone();
    let (qualifying, new_awards) = crate::evaluate::on_evaluation_thread(move || -> Result<(usize, usize)> {
        let evaluation = Evaluation::prepare(ctx, std::iter::once(&badge), &snapshot)?;
        Ok((evaluation.qualifying()?.height(), evaluation.new_awards(existing)?.height()))
    })
    .await?;
    Ok(Preview { qualifying, new_awards, backfill })
}
