//! `accolade badges`: the admin dashboard as a table.
//!
//! One row per badge of the config (and per stored badge no longer in it): id, name, rule
//! type, status, last update, recipients count.

use super::{Outcome, connect, load_plan, print_table};
use crate::store::StoredBadge;
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct Opts {}

pub async fn run(config: Option<&Path>, _opts: Opts) -> Result<Outcome> {
    let plan = load_plan(config)?;
    let (db, store) = connect(&plan).await?;
    let stored = store.badges().await;
    super::disconnect(&db, &store).await;
    print_dashboard(&plan, stored?);
    Ok(Outcome::Success)
}

/// Prints the dashboard for the plan's badges, with what the store knows of them.
pub fn print_dashboard(plan: &crate::config::plan::Plan, stored: Vec<StoredBadge>) {
    let mut stored: BTreeMap<String, StoredBadge> = stored.into_iter().map(|b| (b.badge_id.clone(), b)).collect();
    let mut rows: Vec<Vec<String>> = plan
        .badges
        .iter()
        .map(|badge| {
            let known = stored.remove(&badge.id);
            vec![
                badge.id.clone(),
                badge.name.clone(),
                badge.criterion.type_name().to_string(),
                badge.status.as_str().to_string(),
                known.as_ref().map_or_else(|| "never run".to_string(), |b| crate::instant::format_utc(b.updated_at)),
                known.map_or(0, |b| b.recipients).to_string(),
            ]
        })
        .collect();
    rows.extend(stored.into_values().map(|b| {
        vec![
            b.badge_id,
            b.name,
            b.rule_type,
            format!("{} (not in config)", b.status),
            crate::instant::format_utc(b.updated_at),
            b.recipients.to_string(),
        ]
    }));
    print_table(&["id", "name", "rule type", "status", "last update", "recipients"], rows);
}
