//! `accolade explain --user ID`: why a member has, or hasn't, each badge.
//!
//! For each badge (or one): whether the member holds it (since when, from which run or by
//! hand), and its criterion with the member's outcome: a rule's check, or a formula's tree
//! (AND, OR, NOT and each clause on its own line, each with its own ✓ or ✗), with the member's
//! values in plain words beside each check, all computed by the same compiled expressions a run
//! uses. `--format json` gives a host UI the same, as one JSON document.

use super::{Outcome, connect, load_plan};
use crate::config::plan::{Badge, Criterion, Plan};
use crate::evaluate::{BadgeExplanation, CheckOutcome, Evaluation, NodeOutcome};
use crate::features::Context;
use crate::instant;
use crate::sources::{self, SourceKind};
use crate::store::StoredAward;
use anyhow::{Result, anyhow};
use chrono::{SubsecRound, Utc};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// The member to explain.
    #[arg(long = "user", value_name = "ID")]
    pub user: i64,
    /// Only this badge.
    #[arg(long, value_name = "ID")]
    pub badge: Option<String>,
    /// Evaluate as of this instant (RFC 3339, epoch seconds, or a date in the evaluation timezone); default now.
    #[arg(long, value_name = "INSTANT")]
    pub as_of: Option<String>,
    /// text (for people) or json (one document, for a host UI).
    #[arg(long, default_value = "text")]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
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
    match opts.format {
        Format::Text => print!("{}", render(&plan, &badges, opts.user, as_of, &held, explained.as_ref())),
        Format::Json => {
            let document = render_json(&plan, &badges, opts.user, as_of, &held, explained.as_ref());
            println!("{}", serde_json::to_string_pretty(&document)?);
        }
    }
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
    let wanted = crate::config::plan::wanted(evaluable.iter().copied());
    let snapshot = sources::load_snapshot(db, &plan.sources, &wanted, plan.timezone).await;
    // Without the members nothing can be explained; another source that failed only makes
    // the badges that read it unexplainable (below).
    if let Some(message) = snapshot.failed.get(&SourceKind::Users) {
        anyhow::bail!("{message}");
    }
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
            grant: String::new(),
            qualifies: false,
            tree: NodeOutcome::Check(CheckOutcome {
                label: format!("cannot be evaluated: {message}"),
                pass: false,
                values: vec![],
            }),
        }));
        badges
    }))
}

/// Held awards and explanations, looked up by badge id and grant (empty for a badge earned
/// once).
type ByBadge<'a> =
    (BTreeMap<(&'a str, &'a str), &'a (StoredAward, Option<i64>)>, BTreeMap<(&'a str, &'a str), &'a BadgeExplanation>);

/// The member's awards and the explanations by badge id and grant, for the renderers.
fn by_badge<'a>(held: &'a [(StoredAward, Option<i64>)], explained: Option<&'a Vec<BadgeExplanation>>) -> ByBadge<'a> {
    let held = held.iter().map(|h| ((h.0.badge_id.as_str(), h.0.grant.as_str()), h)).collect();
    let by_id =
        explained.map(|e| e.iter().map(|b| ((b.badge_id.as_str(), b.grant.as_str()), b)).collect()).unwrap_or_default();
    (held, by_id)
}

/// The grants of `badge` the member holds or has an explanation for, in order (the one empty
/// grant for a badge earned once).
fn grants_of<'a>(badge: &Badge, (held, by_id): &ByBadge<'a>) -> Vec<&'a str> {
    if badge.repeat.is_none() {
        return vec![""];
    }
    let id = badge.id.as_str();
    let mut grants: Vec<&str> = held.keys().chain(by_id.keys()).filter(|(b, _)| *b == id).map(|(_, g)| *g).collect();
    grants.sort_unstable();
    grants.dedup();
    grants
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
    let lookup = by_badge(held, explained);
    for badge in badges {
        let repeats = badge.repeat.map(|r| format!(", earned once per {}", r.as_str())).unwrap_or_default();
        out.push_str(&format!("\n{} ({}, {}{repeats})\n", badge.id, badge.name, badge.status.as_str()));
        let since = badge.activity_since.map(|t| format!("  counts activity since {}\n", instant::format_utc(t)));
        if badge.repeat.is_some()
            && let Some(since) = &since
        {
            out.push_str(since);
        }
        let grants = grants_of(badge, &lookup);
        if grants.is_empty() {
            out.push_str("  no grants yet: no period or item with activity\n");
        }
        // A repeating badge's grants each get a heading, their checks one level deeper.
        let depth = if badge.repeat.is_some() { 2 } else { 1 };
        for grant in grants {
            let pad = if badge.repeat.is_some() {
                out.push_str(&format!("  {grant}\n"));
                "    "
            } else {
                "  "
            };
            match lookup.0.get(&(badge.id.as_str(), grant)) {
                Some((award, run)) => {
                    let how = run.map_or_else(|| award.source.clone(), |r| format!("{}, run {r}", award.source));
                    out.push_str(&format!("{pad}held since {} ({how})\n", award.awarded_at));
                }
                None => out.push_str(&format!("{pad}not held\n")),
            }
            if badge.repeat.is_none()
                && let Some(since) = &since
            {
                out.push_str(since);
            }
            match (&badge.criterion, lookup.1.get(&(badge.id.as_str(), grant))) {
                (Criterion::Manual, _) => out.push_str(&format!("{pad}awarded by hand only\n")),
                (Criterion::Formula { .. }, Some(explanation)) => {
                    write_node(&mut out, &explanation.tree, depth);
                    write_verdict(&mut out, pad, explanation.qualifies);
                }
                (Criterion::Rule(_), Some(explanation)) => {
                    // A rule's checks stay a flat list: they all have to hold.
                    for check in explanation.checks() {
                        write_check(&mut out, check, depth);
                    }
                    write_verdict(&mut out, pad, explanation.qualifies);
                }
                (_, None) => {}
            }
        }
    }
    out
}

/// Indentation of tree level `depth`: two spaces for the badge's lines, four more per level.
fn indent(depth: usize) -> String {
    " ".repeat(2 + 4 * depth.saturating_sub(1))
}

fn mark(pass: bool) -> &'static str {
    if pass { "✓" } else { "✗" }
}

/// A node on its own line with its outcome, its children below it, one level deeper.
fn write_node(out: &mut String, node: &NodeOutcome, depth: usize) {
    let group = match node {
        NodeOutcome::All { .. } => "all of:",
        NodeOutcome::Any { .. } => "any of:",
        NodeOutcome::Not { .. } => "not:",
        NodeOutcome::Check(check) => return write_check(out, check, depth),
    };
    out.push_str(&format!("{}{} {group}\n", indent(depth), mark(node.pass())));
    for child in node.children() {
        write_node(out, child, depth + 1);
    }
}

/// `✓ label — name: value; name: value`.
fn write_check(out: &mut String, check: &CheckOutcome, depth: usize) {
    out.push_str(&format!("{}{} {}", indent(depth), mark(check.pass), check.label));
    if !check.values.is_empty() {
        let values: Vec<String> = check.values.iter().map(|(n, v)| format!("{n}: {v}")).collect();
        out.push_str(&format!(" — {}", values.join("; ")));
    }
    out.push('\n');
}

fn write_verdict(out: &mut String, pad: &str, qualifies: bool) {
    out.push_str(pad);
    out.push_str(if qualifies { "→ qualifies\n" } else { "→ does not qualify\n" });
}

/// The explanation as one JSON document: the member, the instant and one object per badge with
/// `badge_id`, `held` (and `since`, `source`, `run` when held), `qualifies` and, when the badge
/// was evaluated, its `tree` of nodes `{op, pass, label?, values?, children?}`.
pub fn render_json(
    plan: &Plan,
    badges: &[&Badge],
    user_id: i64,
    as_of: chrono::DateTime<Utc>,
    held: &[(StoredAward, Option<i64>)],
    explained: Option<&Vec<BadgeExplanation>>,
) -> serde_json::Value {
    let lookup = by_badge(held, explained);
    // One grant's fields: held (since, source, run), qualifies, tree.
    let grant_fields = |object: &mut serde_json::Value, badge: &Badge, grant: &str| {
        let held = lookup.0.get(&(badge.id.as_str(), grant));
        object["held"] = held.is_some().into();
        if let Some((award, run)) = held {
            object["since"] = award.awarded_at.clone().into();
            object["source"] = award.source.clone().into();
            object["run"] = (*run).into();
        }
        let explanation = lookup.1.get(&(badge.id.as_str(), grant));
        object["qualifies"] = explanation.is_some_and(|e| e.qualifies).into();
        if let Some(explanation) = explanation {
            object["tree"] = node_json(&explanation.tree);
        }
    };
    let badges: Vec<serde_json::Value> = badges
        .iter()
        .map(|badge| {
            let mut object = serde_json::json!({
                "badge_id": badge.id,
                "name": badge.name,
                "status": badge.status.as_str(),
                "criterion": badge.criterion.type_name(),
            });
            if let Some(since) = badge.activity_since {
                object["activity_since"] = instant::format_utc(since).into();
            }
            match badge.repeat {
                None => grant_fields(&mut object, badge, ""),
                Some(repeat) => {
                    let grants: Vec<serde_json::Value> = grants_of(badge, &lookup)
                        .into_iter()
                        .map(|grant| {
                            let mut entry = serde_json::json!({ "grant": grant });
                            grant_fields(&mut entry, badge, grant);
                            entry
                        })
                        .collect();
                    object["repeat"] = repeat.as_str().into();
                    object["held"] = grants.iter().any(|g| g["held"] == true).into();
                    object["qualifies"] = grants.iter().any(|g| g["qualifies"] == true).into();
                    object["grants"] = grants.into();
                }
            }
            object
        })
        .collect();
    serde_json::json!({
        "user_id": user_id,
        "as_of": instant::format_utc(as_of),
        "timezone": plan.timezone.name(),
        "member": explained.is_some(),
        "badges": badges,
    })
}

fn node_json(node: &NodeOutcome) -> serde_json::Value {
    let group = |op: &str| {
        let children: Vec<serde_json::Value> = node.children().into_iter().map(node_json).collect();
        serde_json::json!({ "op": op, "pass": node.pass(), "children": children })
    };
    match node {
        NodeOutcome::All { .. } => group("and"),
        NodeOutcome::Any { .. } => group("or"),
        NodeOutcome::Not { .. } => group("not"),
        NodeOutcome::Check(check) => {
            let values: Vec<serde_json::Value> =
                check.values.iter().map(|(name, value)| serde_json::json!({ "name": name, "value": value })).collect();
            serde_json::json!({ "op": "clause", "pass": check.pass, "label": check.label, "values": values })
        }
    }
}
