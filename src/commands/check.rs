//! `accolade check`: validate the config, every rule and every source query at once.
//!
//! Compiles the config (collecting every problem), then prepares each source query against
//! the database and checks that it returns the columns its source requires; reads the
//! `metrics` source's names (unknown and shadowed metrics) and, when the awards database is
//! reachable, the published badges `run` would refuse. `--data` also reads every source whole.
//! Prints every problem, each naming its badge or source; exits 1 if there were any.

use super::Outcome;
use crate::config::{self, plan};
use crate::db::Db;
use crate::predicates::formula::Clause;
use crate::predicates::rules::Rule;
use crate::sources::{self, SourceKind};
use crate::store::{self, Store};
use anyhow::{Context, Result};
use polars::prelude::DataFrame;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct Opts {
    /// Also read every source: report every unreadable value (the first few per column),
    /// members the users source repeats, and trainings, kinds, roles and setting keys that
    /// badges name but no row has.
    #[arg(long)]
    pub data: bool,
}

pub async fn run(config_path: Option<&Path>, opts: Opts) -> Result<Outcome> {
    let path = config::locate(config_path);
    let Report { problems, warnings } = report_with(&path, opts.data).await;
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

/// Every problem and warning for the config file at `path`, without reading the sources' rows.
pub async fn report(path: &Path) -> Report {
    report_with(path, false).await
}

/// Every problem and warning for the config file at `path`; with `data`, from every source's
/// rows too.
pub async fn report_with(path: &Path, data: bool) -> Report {
    let raw = match config::load(path) {
        Ok(raw) => raw,
        Err(error) => return Report { problems: vec![crate::errors::text(&error)], warnings: Vec::new() },
    };
    let url = raw.database.url.clone();
    // Names that are not sources are reported by the plan; their queries are not prepared.
    let builtin =
        raw.sources.queries.iter().filter_map(|(name, sql)| Some((SourceKind::from_name(name)?, sql.clone())));
    let events = raw.sources.events.iter().filter(|(name, _)| SourceKind::check_event_name(name).is_ok());
    let queries: Vec<(SourceKind, String)> =
        builtin.chain(events.map(|(name, sql)| (SourceKind::event(name), sql.clone()))).collect();
    let (mut problems, plan) = match plan::compile(raw) {
        Ok(plan) => (Vec::new(), Some(plan)),
        Err(errors) => (errors.0, None),
    };
    let mut warnings = Vec::new();
    if let Some(plan) = &plan {
        warnings.extend(everyone_qualifies(plan));
    }
    match Db::connect(&url).await {
        Ok(db) => {
            let mut sources_ok = true;
            let mut user_columns = Vec::new();
            for (kind, sql) in &queries {
                let kind = *kind;
                match check_source(&db, kind, sql).await {
                    Ok(names) if kind == SourceKind::Users => user_columns = names,
                    Ok(_) => {}
                    Err(problem) => {
                        problems.push(problem);
                        sources_ok = false;
                    }
                }
            }
            if let (Some(plan), true) = (&plan, sources_ok) {
                // With --data every source is read once, and the metric names come from that read.
                let mut frames = BTreeMap::new();
                if data {
                    let found = survey(plan, &db, &mut frames).await;
                    problems.extend(found.problems);
                    warnings.extend(found.warnings);
                }
                let metrics = match frames.remove(&SourceKind::Metrics) {
                    Some(frame) => Ok(Some(frame)),
                    None if data => Ok(None),
                    None => load_metrics(plan, &db).await,
                };
                match metrics {
                    Ok(metrics) => {
                        let found = metric_names(plan, metrics.as_ref());
                        problems.extend(found.problems);
                        warnings.extend(found.warnings);
                    }
                    Err(error) => problems.push(crate::errors::text(&error)),
                }
                warnings.extend(missing_email(plan, &user_columns));
                problems.extend(missing_attributes(plan, &user_columns));
            }
            if let Some(plan) = &plan {
                match refusals(plan, &db).await {
                    Ok(found) => problems.extend(found),
                    Err(error) => warnings.push(format!(
                        "could not read the awards database to check published rules: {}",
                        crate::errors::text(&error)
                    )),
                }
            }
            db.close().await;
        }
        Err(error) => problems.push(format!("[database] {}", crate::errors::text(&error))),
    }
    Report { problems, warnings }
}

/// Rules with `min = 0`: every member qualifies (the first run awards it to everyone).
fn everyone_qualifies(plan: &plan::Plan) -> Vec<String> {
    plan.badges
        .iter()
        .filter(|b| {
            matches!(
                &b.criterion,
                plan::Criterion::Rule(Rule::SocialConnections { min: 0, .. } | Rule::PostsSent { min: 0 })
            )
        })
        .map(|b| format!("badge '{}': min = 0, so every member qualifies; set min to 1 or more", b.id))
        .collect()
}

/// The badges `run` would refuse: published, with a rule that no longer matches the stored one.
async fn refusals(plan: &plan::Plan, host: &Db) -> Result<Vec<String>> {
    let awards = match &plan.awards_url {
        Some(url) => Some(Db::connect(url).await.context("[database] awards_url")?),
        None => None,
    };
    let store = Store::new(awards.clone().unwrap_or_else(|| host.clone()));
    let stored = store.badge_definitions().await;
    if let Some(awards) = awards {
        awards.close().await;
    }
    let stored: BTreeMap<String, _> = stored?.into_iter().map(|b| (b.badge_id.clone(), b)).collect();
    Ok(plan
        .badges
        .iter()
        .filter_map(|badge| stored.get(&badge.id).and_then(|s| store::rule_change_refusal(badge, s)))
        .map(|refusal| format!("`run` will refuse it: {refusal}"))
        .collect())
}

/// `check --data`: every source read whole, every unreadable value and repeated member
/// reported, and every name a badge looks for that no row has.
/// The frames read go into `frames`.
async fn survey(plan: &plan::Plan, db: &Db, frames: &mut BTreeMap<SourceKind, DataFrame>) -> Report {
    let mut found = Report::default();
    for (&kind, sql) in &plan.sources {
        match sources::survey_source(db, kind, sql, plan.timezone).await {
            Ok(survey) => {
                for (column, bad) in &survey.unreadable {
                    let shown = if bad.count > bad.examples.len() {
                        format!("{} unreadable values, the first {}", bad.count, bad.examples.len())
                    } else if bad.count == 1 {
                        "1 unreadable value".to_string()
                    } else {
                        format!("{} unreadable values", bad.count)
                    };
                    found
                        .problems
                        .push(format!("source '{kind}', column '{column}': {shown}: {}", bad.examples.join("; ")));
                }
                if let Err(error) = sources::check_members(kind, &survey.frame) {
                    found.problems.push(crate::errors::text(&error));
                }
                frames.insert(kind, survey.frame);
            }
            Err(error) => found.problems.push(crate::errors::text(&error)),
        }
    }
    for reference in references(plan) {
        let Some(frame) = frames.get(&reference.source) else { continue };
        if !column_values(frame, reference.column).contains(reference.value.as_str()) {
            found.warnings.push(format!(
                "badge '{}': {} '{}' has no row in source '{}' (column '{}'): no member can earn it until one does",
                reference.badge, reference.what, reference.value, reference.source, reference.column
            ));
        }
    }
    found
}

/// A name a badge looks for in a source's rows: a training, a post kind, a role, a setting key.
struct Reference {
    badge: String,
    what: &'static str,
    value: String,
    source: SourceKind,
    column: &'static str,
}

fn references(plan: &plan::Plan) -> Vec<Reference> {
    let mut out = Vec::new();
    for badge in &plan.badges {
        let mut add = |what, value: String, source, column| {
            out.push(Reference { badge: badge.id.clone(), what, value, source, column });
        };
        match &badge.criterion {
            plan::Criterion::Rule(
                Rule::TrainingCompleted { training }
                | Rule::TrainingPassed { training }
                | Rule::TrainingEnrolled { training },
            ) => add("training", training.as_text(), SourceKind::Trainings, "training_id"),
            plan::Criterion::Formula { tree, .. } => {
                for clause in tree.clauses() {
                    match clause {
                        Clause::Metric { name, .. } => {
                            if let Some(("posts" | "distinct_threads", kind)) = name.value.split_once('.') {
                                add("kind", kind.to_string(), SourceKind::Posts, "kind");
                            }
                        }
                        Clause::RolesIn { roles } => {
                            for role in roles {
                                add("role", role.clone(), SourceKind::Roles, "role");
                            }
                        }
                        Clause::Setting { key, .. } | Clause::SettingNumber { key, .. } => {
                            add("setting key", key.value.clone(), SourceKind::Settings, "key")
                        }
                        Clause::Aggregate { source, filters, .. } | Clause::EventDate { source, filters, .. } => {
                            let kind = crate::predicates::formula::compile::event_source(&source.value);
                            for filter in filters {
                                if let crate::predicates::formula::Filter::Kind(kinds) = filter {
                                    for k in kinds {
                                        add("kind", k.clone(), kind, "kind");
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The distinct non-null texts of a column (empty if the frame lacks it).
fn column_values<'a>(frame: &'a DataFrame, column: &str) -> HashSet<&'a str> {
    frame.column(column).ok().and_then(|c| c.str().ok()).map(|s| s.iter().flatten().collect()).unwrap_or_default()
}

/// The `metrics` source's rows, if it is configured.
async fn load_metrics(plan: &plan::Plan, db: &Db) -> Result<Option<DataFrame>> {
    if !plan.sources.contains_key(&SourceKind::Metrics) {
        return Ok(None);
    }
    let wanted = sources::Wanted::kinds([SourceKind::Metrics]);
    let snapshot = sources::load_snapshot(db, &plan.sources, &wanted, plan.timezone).await.complete()?;
    Ok(snapshot.frames.into_values().next())
}

/// What the `metrics` source's names say (`metrics`: its rows, if configured and read):
/// formula metrics no row has (a warning: they are 0 until one does) and rows named like a
/// built-in metric (a problem: the built-in wins, so the rows are never read).
fn metric_names(plan: &plan::Plan, metrics: Option<&DataFrame>) -> Report {
    let used: Vec<(&str, String)> = plan
        .badges
        .iter()
        .filter_map(|b| match &b.criterion {
            plan::Criterion::Formula { tree, .. } => Some((b.id.as_str(), tree)),
            _ => None,
        })
        .flat_map(|(id, tree)| {
            crate::predicates::formula::compile::host_metrics(tree).into_iter().map(move |m| (id, m))
        })
        .collect();
    let Some(metrics) = metrics else { return Report::default() };
    let known: BTreeSet<String> = column_values(metrics, "name").into_iter().map(str::to_string).collect();
    let mut report = Report::default();
    for name in &known {
        let head = name.split_once('.').map_or(name.as_str(), |(head, _)| head);
        if crate::predicates::formula::compile::BUILTIN_METRICS.contains(&head) {
            report.problems.push(format!(
                "source 'metrics' has rows named '{name}', the name of a built-in metric: metric.{name} counts \
                 the {} source, so these rows are never read; rename them in the query (e.g. 'host_{}')",
                crate::predicates::formula::compile::metric_source(head),
                name.replace('.', "_")
            ));
        }
    }
    report.warnings.extend(used.into_iter().filter(|(_, metric)| !known.contains(metric)).map(|(id, metric)| {
        format!(
            "badge '{id}': the metrics source has no metric named '{metric}' \
             (metric.{metric} is 0 for everyone until it does)"
        )
    }));
    report
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

/// `user.NAME` clauses whose column the users query does not return: each badge and column.
fn missing_attributes(plan: &plan::Plan, user_columns: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for badge in &plan.badges {
        let mut missing: Vec<&str> = badge
            .user_columns()
            .iter()
            .filter(|spec| !user_columns.iter().any(|n| spec.matches(n)))
            .filter_map(|spec| spec.alias)
            .collect();
        missing.dedup();
        for name in missing {
            problems.push(format!(
                "badge '{}': the formula reads user.{name}, but source 'users' returns no '{name}' column \
                 (the query returns: {}); add it to the users query",
                badge.id,
                user_columns.join(", ")
            ));
        }
    }
    problems
}

/// The query's column names, or the problem with it.
async fn check_source(db: &Db, kind: SourceKind, sql: &str) -> Result<Vec<String>, String> {
    let names = sources::prepare_columns(db, kind, sql).await.map_err(|error| crate::errors::text(&error))?;
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
