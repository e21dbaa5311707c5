//! From a parsed formula to bulk Polars predicates.
//!
//! Owns what each clause means: which feature it reads, which sources and optional columns
//! it needs, how its literals (dates, spans) are validated against the evaluation timezone,
//! and the boolean expression it becomes. Every clause is one [`Check`], so `explain` can
//! show each clause with the member's value beside it.

use super::{Clause, CmpOp, Formula, FormulaError, Spanned};
use crate::evaluate::{Check, Feature, FeatureSet, METRIC_SCALE, ShowAs, Shown, TrainingState};
use crate::instant::{self, CalendarSpan};
use crate::sources::SourceKind;
use chrono_tz::Tz;
use polars::prelude::*;
use std::collections::BTreeSet;

/// Metric names computed from the snapshot; any other name is read from `metrics`.
pub const BUILTIN_METRICS: &[&str] = &[
    "posts",
    "distinct_threads",
    "connections",
    "logins",
    "trainings_enrolled",
    "trainings_completed",
    "trainings_passed",
];

/// Checks the literals of every clause (dates, spans); returns every problem.
pub fn validate(tree: &Formula, timezone: &Tz) -> Vec<FormulaError> {
    let mut problems = Vec::new();
    for clause in tree.clauses() {
        match clause {
            Clause::RegistrationDate { date, .. } | Clause::SigninDate { date, .. } => {
                if let Err(e) = instant::parse_date_literal(&date.value, timezone) {
                    problems.push(FormulaError::new(date.span, e));
                }
            }
            Clause::TimeSinceRegistration { duration, .. } => {
                if let Err(e) = CalendarSpan::parse(&duration.value) {
                    problems.push(FormulaError::new(duration.span, e));
                }
            }
            Clause::Metric { name, .. } => {
                if let Some(problem) = builtin_misuse(name) {
                    problems.push(problem);
                }
            }
            _ => {}
        }
    }
    problems
}

/// `trainings_passed.x` and the like: built-in names that take no kind.
fn builtin_misuse(name: &Spanned<String>) -> Option<FormulaError> {
    let (head, rest) = name.value.split_once('.')?;
    let takes_kind = matches!(head, "posts" | "distinct_threads");
    (BUILTIN_METRICS.contains(&head) && !takes_kind && !rest.is_empty()).then(|| {
        FormulaError::new(
            name.span,
            format!("metric.{head} is built in and takes no '.{rest}'; only posts and distinct_threads take a kind"),
        )
    })
}

/// The sources a formula reads besides `users`.
pub fn sources(tree: &Formula) -> BTreeSet<SourceKind> {
    tree.clauses()
        .into_iter()
        .filter_map(|clause| match clause {
            Clause::Metric { name, .. } => Some(metric_source(&name.value)),
            Clause::RolesIn { .. } => Some(SourceKind::Roles),
            Clause::Setting { .. } => Some(SourceKind::Settings),
            Clause::MaxConsecutiveLogins { .. } | Clause::SigninDate { .. } => Some(SourceKind::Logins),
            _ => None,
        })
        .collect()
}

/// Optional source columns a formula relies on: `(source, column)`.
pub fn optional_columns(tree: &Formula) -> BTreeSet<(SourceKind, &'static str)> {
    let mut needed = BTreeSet::new();
    for clause in tree.clauses() {
        match clause {
            Clause::AvatarChanged { .. } => {
                needed.insert((SourceKind::Users, "avatar_changed"));
            }
            Clause::Metric { name, .. } => {
                let (head, kind) = split_metric(&name.value);
                if matches!(head, "posts" | "distinct_threads") && kind.is_some() {
                    needed.insert((SourceKind::Posts, "kind"));
                }
                if head == "distinct_threads" {
                    needed.insert((SourceKind::Posts, "thread_id"));
                }
            }
            _ => {}
        }
    }
    needed
}

/// Host metric names the formula reads from the `metrics` source.
pub fn host_metrics(tree: &Formula) -> Vec<String> {
    tree.clauses()
        .into_iter()
        .filter_map(|clause| match clause {
            Clause::Metric { name, .. } if metric_source(&name.value) == SourceKind::Metrics => {
                Some(name.value.clone())
            }
            _ => None,
        })
        .collect()
}

fn split_metric(name: &str) -> (&str, Option<&str>) {
    match name.split_once('.') {
        Some((head, kind)) => (head, Some(kind)),
        None => (name, None),
    }
}

/// The source a built-in metric counts (`posts`, `trainings_passed`, ...).
pub fn builtin_source(head: &str) -> SourceKind {
    metric_source(head)
}

fn metric_source(name: &str) -> SourceKind {
    match split_metric(name).0 {
        "posts" | "distinct_threads" => SourceKind::Posts,
        "connections" => SourceKind::Connections,
        "logins" => SourceKind::Logins,
        "trainings_enrolled" | "trainings_completed" | "trainings_passed" => SourceKind::Trainings,
        _ => SourceKind::Metrics,
    }
}

fn metric_feature(name: &str, since: Option<i64>) -> Feature {
    let (head, kind) = split_metric(name);
    let kind = kind.map(str::to_string);
    let trainings = |state| Feature::Trainings { state, training: None, since };
    match head {
        "posts" => Feature::Posts { kind, since },
        "distinct_threads" => Feature::DistinctThreads { kind, since },
        "connections" => Feature::Connections { since },
        "logins" => Feature::Logins { since },
        "trainings_enrolled" => trainings(TrainingState::Enrolled),
        "trainings_completed" => trainings(TrainingState::Completed),
        "trainings_passed" => trainings(TrainingState::Passed),
        _ => Feature::Metric { name: name.to_string() },
    }
}

/// Compiles a validated formula: the whole predicate and one check per clause.
pub fn compile(tree: &Formula, timezone: &Tz, since: Option<i64>, features: &mut FeatureSet) -> (Expr, Vec<Check>) {
    let mut checks = Vec::new();
    let pass = compile_node(tree, timezone, since, features, &mut checks);
    (pass, checks)
}

fn compile_node(
    tree: &Formula,
    tz: &Tz,
    since: Option<i64>,
    features: &mut FeatureSet,
    checks: &mut Vec<Check>,
) -> Expr {
    match tree {
        Formula::And(a, b) => {
            let left = compile_node(a, tz, since, features, checks);
            left.and(compile_node(b, tz, since, features, checks))
        }
        Formula::Or(a, b) => {
            let left = compile_node(a, tz, since, features, checks);
            left.or(compile_node(b, tz, since, features, checks))
        }
        Formula::Not(inner) => compile_node(inner, tz, since, features, checks).not(),
        Formula::Clause(clause) => {
            let check = compile_clause(clause, tz, since, features);
            let pass = check.pass.clone();
            checks.push(check);
            pass
        }
    }
}

fn compare(value: Expr, op: CmpOp, threshold: Expr) -> Expr {
    match op {
        CmpOp::Ge => value.gt_eq(threshold),
        CmpOp::Gt => value.gt(threshold),
        CmpOp::Le => value.lt_eq(threshold),
        CmpOp::Lt => value.lt(threshold),
        CmpOp::Eq => value.eq(threshold),
        CmpOp::Ne => value.neq(threshold),
    }
}

/// One clause as a check. Every `pass` is non-null (a member without a value fails), so
/// NOT and OR combine plain booleans.
fn compile_clause(clause: &Clause, tz: &Tz, since: Option<i64>, features: &mut FeatureSet) -> Check {
    let label = clause.to_string();
    let (pass, shown) = match clause {
        Clause::Metric { name, op, value } => {
            let feature = metric_feature(&name.value, since);
            let host_metric = matches!(feature, Feature::Metric { .. });
            let column = features.column(feature);
            if host_metric {
                // Host metrics are summed in whole millionths: compare in millionths too, so
                // 0.70 + 0.10 meets 0.8 exactly.
                let threshold = (value * METRIC_SCALE).round();
                let pass = compare(column.clone().cast(DataType::Float64), *op, lit(threshold));
                (pass, vec![Shown { name: "has", expr: column, format: ShowAs::Millionths }])
            } else {
                let pass = compare(column.clone().cast(DataType::Float64), *op, lit(*value));
                (pass, vec![Shown::count("has", column)])
            }
        }
        Clause::RolesIn { roles } => {
            let mut roles = roles.clone();
            roles.sort();
            roles.dedup();
            let column = features.column(Feature::AnyRole { roles });
            (column.clone(), vec![Shown::flag("has one", column)])
        }
        Clause::UserIdIn { ids } => {
            let mut ids = ids.clone();
            ids.sort_unstable();
            ids.dedup();
            let column = features.column(Feature::IdIn { ids });
            (column.clone(), vec![Shown::flag("listed", column)])
        }
        Clause::Setting { key, op, value } => {
            let column = features.column(Feature::SettingValue { key: key.value.clone() });
            let pass = match op {
                CmpOp::Eq => column.clone().eq(lit(value.as_str())),
                _ => column
                    .clone()
                    .neq(lit(""))
                    .and(column.clone().neq(lit("default")))
                    .and(column.clone().neq(lit(value.as_str()))),
            };
            (pass.fill_null(lit(false)), vec![Shown { name: "has", expr: column, format: ShowAs::Text }])
        }
        Clause::MaxConsecutiveLogins { op, value } => {
            let column = features.column(Feature::ConsecutiveLoginDays { since });
            let pass = compare(column.clone().cast(DataType::Float64), *op, lit(*value));
            (pass, vec![Shown::count("has", column)])
        }
        Clause::AvatarChanged { op, value } => {
            let pass = compare(col("avatar_changed"), *op, lit(*value));
            (pass.fill_null(lit(false)), vec![Shown::flag("changed", col("avatar_changed"))])
        }
        Clause::RegistrationDate { op, date } => {
            let threshold = date_micros(&date.value, tz);
            let pass = compare(col("created_at"), *op, lit(threshold));
            (pass, vec![Shown { name: "registered", expr: col("created_at"), format: ShowAs::Instant }])
        }
        Clause::SigninDate { op, date } => {
            let threshold = date_micros(&date.value, tz);
            let column = features.column(Feature::LastSignin { since });
            let pass = compare(column.clone(), *op, lit(threshold)).fill_null(lit(false));
            (pass, vec![Shown { name: "last sign-in", expr: column, format: ShowAs::Instant }])
        }
        Clause::TimeSinceRegistration { op, duration } => {
            // time since registration OP span  <=>  as_of OP created + span (on the local calendar)
            let span = CalendarSpan::parse(&duration.value)
                .unwrap_or(CalendarSpan { count: 0, unit: crate::instant::CalendarUnit::Days });
            let reached = features.eligible_from(span);
            let pass = compare(features.as_of(), *op, reached.clone());
            (pass, vec![Shown::instant("reached on", reached)])
        }
    };
    Check { label, pass, shown }
}

/// A date literal already accepted by [`validate`], in µs.
fn date_micros(text: &str, tz: &Tz) -> i64 {
    instant::parse_date_literal(text, tz).map(instant::to_micros).unwrap_or(i64::MIN)
}
