//! `accolade check`: validate the config, every rule and every source query at once.
//!
//! Compiles the config (collecting every problem), then prepares each source query against
//! the database and checks that it returns the columns its source requires. Prints every
//! problem, each naming its badge or source; exits 1 if there were any.

use super::Outcome;
use crate::config::{self, plan};
use crate::db::Db;
use crate::sources::{self, SourceKind};
use anyhow::Result;
use std::collections::{BTreeSet, HashSet};
use std::path::Path;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct Opts {}

pub async fn run(config_path: Option<&Path>, _opts: Opts) -> Result<Outcome> {
    let path = config::locate(config_path);
    let Report { problems, warnings } = report(&path).await;
    for warning in &warnings {
        println!("warning: {warning}");
    }
    if problems.is_empty() {
        println!("{}: OK", path.display());
        return Ok(Outcome::Success);
    }
    let plural = if problems.len() == 1 { "" } else { "s" };
    println!("{}: {} problem{plural}", path.display(), problems.len());
    for problem in &problems {
        println!("  - {}", problem.replace('\n', "\n    "));
    }
    Ok(Outcome::Failed)
}

/// What `check` found: problems (exit 1) and warnings (reported only).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

/// Every problem in the config file at `path`, including its source queries.
pub async fn problems(path: &Path) -> Vec<String> {
    report(path).await.problems
}

/// Every problem and warning for the config file at `path`.
pub async fn report(path: &Path) -> Report {
    let raw = match config::load(path) {
        Ok(raw) => raw,
        Err(error) => return Report { problems: vec![format!("{error:#}")], warnings: Vec::new() },
    };
    let url = raw.database.url.clone();
    let queries: Vec<(String, String)> = raw.sources.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let (mut problems, plan) = match plan::compile(raw) {
        Ok(plan) => (Vec::new(), Some(plan)),
        Err(errors) => (errors.0, None),
    };
    let mut warnings = Vec::new();
    match Db::connect(&url).await {
        Ok(db) => {
            let mut sources_ok = true;
            let mut user_columns = Vec::new();
            for (name, sql) in queries {
                let Some(kind) = SourceKind::from_name(&name) else { continue };
                match check_source(&db, kind, &sql).await {
                    Ok(names) if kind == SourceKind::Users => user_columns = names,
                    Ok(_) => {}
                    Err(problem) => {
                        problems.push(problem);
                        sources_ok = false;
                    }
                }
            }
            if let (Some(plan), true) = (&plan, sources_ok) {
                match unknown_metrics(plan, &db).await {
                    Ok(found) => warnings.extend(found),
                    Err(error) => problems.push(format!("{error:#}")),
                }
                warnings.extend(missing_email(plan, &user_columns));
            }
            db.close().await;
        }
        Err(error) => problems.push(format!("[database] {error:#}")),
    }
    Report { problems, warnings }
}

/// Formula metrics the `metrics` source has no row for (they evaluate as 0 until it does).
async fn unknown_metrics(plan: &plan::Plan, db: &Db) -> Result<Vec<String>> {
    let used: Vec<(&str, String)> = plan
        .badges
        .iter()
        .filter_map(|b| match &b.criterion {
            plan::Criterion::Formula { tree, .. } => Some((b.id.as_str(), tree)),
            _ => None,
        })
        .flat_map(|(id, tree)| crate::formula::compile::host_metrics(tree).into_iter().map(move |m| (id, m)))
        .collect();
    if used.is_empty() || !plan.sources.contains_key(&SourceKind::Metrics) {
        return Ok(Vec::new());
    }
    let wanted = BTreeSet::from([SourceKind::Metrics]);
    let snapshot = sources::load_snapshot(db, &plan.sources, &wanted).await?;
    let known: HashSet<String> = snapshot
        .frame(SourceKind::Metrics)
        .and_then(|df| df.column("name").ok())
        .and_then(|c| c.str().ok().map(|s| s.iter().flatten().map(str::to_string).collect()))
        .unwrap_or_default();
    Ok(used
        .into_iter()
        .filter(|(_, metric)| !known.contains(metric))
        .map(|(id, metric)| {
            format!(
                "badge '{id}': the metrics source has no metric named '{metric}' \
                 (metric.{metric} is 0 for everyone until it does)"
            )
        })
        .collect())
}

/// With `[issuer]` set, Open Badges exports identify recipients by the users source's `email`
/// (`user_columns`: what the users query returns).
fn missing_email(plan: &plan::Plan, user_columns: &[String]) -> Option<String> {
    plan.issuer.as_ref()?;
    (!user_columns.iter().any(|n| n.eq_ignore_ascii_case("email"))).then(|| {
        "[issuer] is set but source 'users' returns no 'email' column: Open Badges exports identify \
         recipients by it (add e.g. `email` to the users query)"
            .to_string()
    })
}

/// The query's column names, or the problem with it.
async fn check_source(db: &Db, kind: SourceKind, sql: &str) -> Result<Vec<String>, String> {
    let names = sources::prepare_columns(db, kind, sql).await.map_err(|error| format!("{error:#}"))?;
    let missing: Vec<&str> = kind
        .columns()
        .iter()
        .filter(|spec| spec.required && !names.iter().any(|n| spec.matches(n)))
        .map(|spec| spec.name)
        .collect();
    if missing.is_empty() {
        return Ok(names);
    }
    Err(format!(
        "source '{kind}' lacks column{} {} (the query returns: {})",
        if missing.len() == 1 { "" } else { "s" },
        missing.join(", "),
        names.join(", ")
    ))
}
