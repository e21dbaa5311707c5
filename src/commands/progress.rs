//! `accolade progress`: how far a member is from each badge, or who is closest to one.
//!
//! For every badge whose criterion is one measure compared with a threshold (the levels of a
//! badge with `levels`, the six rule types, single-clause formulas such as `count(posts) >= 10`):
//! `--user ID` prints the member's value, the next threshold and, for levels, the next level's
//! name; `--badge ID --top N` lists the members closest to earning it (for a badge with levels,
//! its next level). Repeating and manual badges have no measure and are left out.

use super::{Outcome, connect, disconnect, load_plan, print_table};
use crate::config::plan::{Badge, Plan};
use crate::evaluate::on_evaluation_thread;
use crate::evaluate::progress::{self, Measure};
use crate::features::Context;
use crate::instant;
use crate::sources::{self, SourceKind};
use anyhow::{Result, anyhow, bail};
use chrono::{SubsecRound, Utc};
use polars::prelude::*;
use std::collections::HashSet;
use std::path::Path;

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// The member whose progress to show.
    #[arg(long = "user", value_name = "ID", required_unless_present = "badge", conflicts_with = "badge")]
    pub user: Option<i64>,
    /// The badge (or badge with levels) whose closest members to list.
    #[arg(long, value_name = "ID")]
    pub badge: Option<String>,
    /// How many members to list with --badge.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    /// Evaluate as of this instant (RFC 3339, epoch seconds, or a date in the evaluation timezone); default now.
    #[arg(long, value_name = "INSTANT")]
    pub as_of: Option<String>,
    /// table, or json.
    #[arg(long, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// A line of progress: one badge, or one badge with levels (its levels lowest first).
struct Entry<'a> {
    id: String,
    name: String,
    /// The badge itself, or its levels; each with its index among the measured badges.
    badges: Vec<(usize, &'a Badge)>,
}

/// The badges with a measure, grouped: a badge's levels form one entry.
fn entries<'a>(badges: &'a [Badge], measures: &[Option<Measure>]) -> Vec<Entry<'a>> {
    let mut out: Vec<Entry> = Vec::new();
    for (i, badge) in badges.iter().enumerate() {
        if measures[i].is_none() {
            continue;
        }
        match &badge.level {
            Some(level) => match out.iter_mut().find(|e| e.id == level.badge_id) {
                Some(entry) => entry.badges.push((i, badge)),
                None => out.push(Entry {
                    id: level.badge_id.clone(),
                    name: level.badge_name.clone(),
                    badges: vec![(i, badge)],
                }),
            },
            None => out.push(Entry { id: badge.id.clone(), name: badge.name.clone(), badges: vec![(i, badge)] }),
        }
    }
    out
}

pub async fn run(config: Option<&Path>, opts: Opts) -> Result<Outcome> {
    let plan = load_plan(config)?;
    let as_of = match &opts.as_of {
        Some(text) => instant::parse_as_of(text, &plan.timezone).map_err(|e| anyhow!("--as-of: {e}"))?,
        None => Utc::now().trunc_subsecs(0),
    };
    let ctx = Context { as_of, timezone: plan.timezone };
    let badges: Vec<Badge> = match &opts.badge {
        None => plan.badges.clone(),
        Some(id) => {
            let chosen: Vec<Badge> = plan
                .badges
                .iter()
                .filter(|b| b.id == *id || b.level.as_ref().is_some_and(|l| l.badge_id == *id))
                .cloned()
                .collect();
            if chosen.is_empty() {
                bail!("--badge {id}: no badge (or badge with levels) with that id in the config");
            }
            chosen
        }
    };
    let (db, store) = connect(&plan).await?;
    let loaded = async {
        let wanted = crate::config::plan::wanted(badges.iter());
        let snapshot = sources::load_snapshot(&db, &plan.sources, &wanted, plan.timezone).await.complete()?;
        // Held: awards not revoked (a revoked level is to be earned again).
        let ids: Vec<String> = badges.iter().map(|b| b.id.clone()).collect();
        let held: HashSet<(String, i64)> = store
            .award_records(&ids)
            .await?
            .into_iter()
            .filter(|a| a.revoked_at.is_none() && opts.user.is_none_or(|u| u == a.user_id))
            .map(|a| (a.badge_id, a.user_id))
            .collect();
        Ok::<_, anyhow::Error>((snapshot, held))
    }
    .await;
    disconnect(&db, &store).await;
    let (snapshot, held) = loaded?;
    if snapshot.frame(SourceKind::Users).is_none() {
        bail!("the users source was not loaded");
    }
    let computed = badges.clone();
    let (frame, measures) = on_evaluation_thread(move || progress::frame(ctx, &computed, &snapshot)).await?;
    let entries = entries(&badges, &measures);
    match opts.user {
        Some(user) => member_progress(&plan, user, &frame, &entries, &measures, &held, opts.format),
        None => closest(&entries, &frame, &measures, &held, opts.top, opts.format),
    }
}

/// A number as people read it: whole numbers without a fraction.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{}", value as i64) } else { format!("{value}") }
}

/// `--user`: one line per entry.
fn member_progress(
    plan: &Plan,
    user: i64,
    frame: &DataFrame,
    entries: &[Entry],
    measures: &[Option<Measure>],
    held: &HashSet<(String, i64)>,
    format: Format,
) -> Result<Outcome> {
    let row = frame.clone().lazy().filter(col("user_id").eq(lit(user))).collect()?;
    if row.height() == 0 {
        bail!("member {user} is not in the users source (or was created after the evaluation instant)");
    }
    let get = |name: &str| -> Result<f64> {
        let value = row.column(name)?.get(0)?;
        Ok(value.extract::<f64>().unwrap_or(0.0))
    };
    let mut lines = Vec::new();
    let mut json = Vec::new();
    for entry in entries {
        let (first, _) = entry.badges[0];
        let value = get(&format!("v{first}"))?;
        let mut next: Option<(f64, &Badge, bool)> = None;
        let mut levels = Vec::new();
        for (i, badge) in &entry.badges {
            let threshold = get(&format!("t{i}"))?;
            let strict = measures[*i].as_ref().is_some_and(|m| m.strict);
            let earned = held.contains(&(badge.id.clone(), user));
            if next.is_none() && !earned && !progress::meets(value, threshold, strict) {
                next = Some((threshold, badge, strict));
            }
            levels.push(serde_json::json!({
                "badge_id": badge.id, "name": badge.name, "threshold": threshold, "held": earned,
            }));
        }
        let unit = measures[first].as_ref().map_or("", |m| m.unit);
        let is_levels = entry.badges.iter().any(|(_, b)| b.level.is_some());
        let held_names: Vec<String> = entry
            .badges
            .iter()
            .filter(|(_, b)| held.contains(&(b.id.clone(), user)))
            .map(|(_, b)| b.name.clone())
            .collect();
        lines.push(vec![
            entry.id.clone(),
            entry.name.clone(),
            if unit.is_empty() { number(value) } else { format!("{} {unit}", number(value)) },
            next.map_or_else(
                || "-".to_string(),
                |(t, _, strict)| format!("{}{}", if strict { "> " } else { "" }, number(t)),
            ),
            match (is_levels, next) {
                (true, Some((_, badge, _))) => badge.name.clone(),
                (true, None) => "all levels".to_string(),
                (false, _) => "-".to_string(),
            },
            if held_names.is_empty() { "-".to_string() } else { held_names.join(", ") },
        ]);
        json.push(serde_json::json!({
            "badge_id": entry.id,
            "name": entry.name,
            "value": value,
            "unit": unit,
            "next_threshold": next.map(|(t, _, _)| t),
            "next_strict": next.map(|(_, _, s)| s),
            "next_badge_id": next.map(|(_, b, _)| b.id.clone()),
            "next_level": next.filter(|_| is_levels).map(|(_, b, _)| b.name.clone()),
            "levels": if is_levels { serde_json::Value::from(levels) } else { serde_json::Value::Null },
        }));
    }
    match format {
        Format::Table => {
            println!("member {user} ({})", plan.timezone);
            print_table(&["badge", "name", "value", "next threshold", "next level", "held"], lines);
        }
        Format::Json => {
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({"user_id": user, "badges": json}))?)
        }
    }
    Ok(Outcome::Success)
}

/// `--badge ID --top N`: the members closest to the badge's (or its next level's) threshold who
/// do not hold it, closest first.
fn closest(
    entries: &[Entry],
    frame: &DataFrame,
    measures: &[Option<Measure>],
    held: &HashSet<(String, i64)>,
    top: usize,
    format: Format,
) -> Result<Outcome> {
    let Some(entry) = entries.first() else {
        bail!("--badge: the badge's criterion is not one measure compared with a threshold (or it repeats)");
    };
    let (first, _) = entry.badges[0];
    let value = col(format!("v{first}"));
    // Each member's next threshold: the first badge of the entry not met, as a chain of
    // when/then over the levels (lowest first); members who hold that badge are dropped below.
    let unmet = |i: usize| {
        let threshold = col(format!("t{i}"));
        match measures[i].as_ref().is_some_and(|m| m.strict) {
            true => value.clone().lt_eq(threshold),
            false => value.clone().lt(threshold),
        }
    };
    let mut next_threshold = lit(NULL).cast(DataType::Float64);
    let mut next_index = lit(NULL).cast(DataType::Int64);
    for (i, _) in entry.badges.iter().rev() {
        next_threshold = when(unmet(*i)).then(col(format!("t{i}"))).otherwise(next_threshold);
        next_index = when(unmet(*i)).then(lit(*i as i64)).otherwise(next_index);
    }
    let ranked = frame
        .clone()
        .lazy()
        .select([col("user_id"), value.clone().alias("value"), next_threshold.alias("next"), next_index.alias("index")])
        .filter(col("next").is_not_null())
        .with_column((col("next") - col("value")).alias("remaining"))
        .sort_by_exprs(
            [col("remaining"), col("user_id")],
            SortMultipleOptions::default().with_order_descending_multi([false, false]),
        )
        .collect()?;
    let users = ranked.column("user_id")?.i64()?.clone();
    let values = ranked.column("value")?.f64()?.clone();
    let nexts = ranked.column("next")?.f64()?.clone();
    let indexes = ranked.column("index")?.i64()?.clone();
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for (((user, value), next), index) in users.iter().zip(values.iter()).zip(nexts.iter()).zip(indexes.iter()) {
        if rows.len() == top {
            break;
        }
        let (Some(user), Some(value), Some(next), Some(index)) = (user, value, next, index) else { continue };
        let Some((_, badge)) = entry.badges.iter().find(|(i, _)| *i as i64 == index) else { continue };
        if held.contains(&(badge.id.clone(), user)) {
            continue;
        }
        rows.push(vec![
            (rows.len() + 1).to_string(),
            user.to_string(),
            number(value),
            number(next),
            badge.name.clone(),
            number(next - value),
        ]);
        json.push(serde_json::json!({
            "user_id": user, "value": value, "next_threshold": next, "next_badge_id": badge.id,
            "next_name": badge.name, "remaining": next - value,
        }));
    }
    match format {
        Format::Table => {
            println!("closest to {} ({})", entry.id, entry.name);
            print_table(&["rank", "member", "value", "next threshold", "next badge", "to go"], rows);
        }
        Format::Json => {
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({"badge_id": entry.id, "members": json}))?)
        }
    }
    Ok(Outcome::Success)
}
