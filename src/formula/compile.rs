//! From a parsed formula to bulk Polars predicates.
//!
//! Owns what each clause means: which feature it reads, which sources and optional columns
//! it needs, how its literals (dates, spans) are validated against the evaluation timezone,
//! and the boolean expression it becomes. The formula becomes a [`CheckTree`]: every clause
//! one [`Check`], every AND/OR chain and NOT a node with its own expression, so `explain` can
//! show the formula's structure, each node's outcome and the member's values.

use super::{Clause, CmpOp, Formula, FormulaError, Spanned};
use crate::evaluate::{Check, CheckTree, Feature, FeatureSet, METRIC_SCALE, Shown, TrainingState};
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

/// The source a metric is read from: the one a built-in metric counts (`posts`,
/// `trainings_passed`, ...), else `metrics`.
pub fn metric_source(name: &str) -> SourceKind {
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

/// Compiles a validated formula into its tree of checks, one per clause; the root's `pass`
/// is the whole predicate.
pub fn compile(tree: &Formula, timezone: &Tz, since: Option<i64>, features: &mut FeatureSet) -> CheckTree {
    match tree {
        Formula::And(a, b) => {
            let (left, right) = (compile(a, timezone, since, features), compile(b, timezone, since, features));
            let pass = left.pass().clone().and(right.pass().clone());
            CheckTree::All { pass, children: chain(left, right, true) }
        }
        Formula::Or(a, b) => {
            let (left, right) = (compile(a, timezone, since, features), compile(b, timezone, since, features));
            let pass = left.pass().clone().or(right.pass().clone());
            CheckTree::Any { pass, children: chain(left, right, false) }
        }
        Formula::Not(inner) => {
            let child = compile(inner, timezone, since, features);
            CheckTree::Not { pass: child.pass().clone().not(), child: Box::new(child) }
        }
        Formula::Clause(clause) => CheckTree::Check(compile_clause(clause, timezone, since, features)),
    }
}

/// The children of `left AND right` (`and`) or `left OR right`, a side that is itself a chain
/// of the same operator spliced in: `a AND b AND c` is one group of three, as people read it.
fn chain(left: CheckTree, right: CheckTree, and: bool) -> Vec<CheckTree> {
    let mut children = Vec::new();
    for side in [left, right] {
        match (side, and) {
            (CheckTree::All { children: inner, .. }, true) | (CheckTree::Any { children: inner, .. }, false) => {
                children.extend(inner)
            }
            (other, _) => children.push(other),
        }
    }
    children
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
    let label = super::words::clause_in_words(clause);
    let (pass, shown) = match clause {
        Clause::Metric { name, op, value } => {
            let shown_as = super::words::metric_in_words(&name.value);
            let feature = metric_feature(&name.value, since);
            let host_metric = matches!(feature, Feature::Metric { .. });
            let column = features.column(feature);
            if host_metric {
                // Host metrics are summed in whole millionths: compare in millionths too, so
                // 0.70 + 0.10 meets 0.8 exactly.
                let threshold = (value * METRIC_SCALE).round();
                let pass = compare(column.clone().cast(DataType::Float64), *op, lit(threshold));
                (pass, vec![Shown::millionths(shown_as, column)])
            } else {
                let pass = compare(column.clone().cast(DataType::Float64), *op, lit(*value));
                (pass, vec![Shown::count(shown_as, column)])
            }
        }
        Clause::RolesIn { roles } => {
            let mut roles = roles.clone();
            roles.sort();
            roles.dedup();
            let name = if roles.len() == 1 { "has the role" } else { "has one of the roles" };
            let column = features.column(Feature::AnyRole { roles });
            (column.clone(), vec![Shown::flag(name, column)])
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
            (pass.fill_null(lit(false)), vec![Shown::setting(format!("{} setting", key.value), column)])
        }
        Clause::MaxConsecutiveLogins { op, value } => {
            let column = features.column(Feature::ConsecutiveLoginDays { since });
            let pass = compare(column.clone().cast(DataType::Float64), *op, lit(*value));
            (pass, vec![Shown::count("most consecutive days signed in", column)])
        }
        Clause::AvatarChanged { op, value } => {
            let pass = compare(col("avatar_changed"), *op, lit(*value));
            (pass.fill_null(lit(false)), vec![Shown::flag("avatar changed", col("avatar_changed"))])
        }
        Clause::RegistrationDate { op, date } => {
            let threshold = date_micros(&date.value, tz);
            let pass = compare(col("created_at"), *op, lit(threshold));
            (pass, vec![Shown::instant("registered", col("created_at"), "unknown")])
        }
        Clause::SigninDate { op, date } => {
            let threshold = date_micros(&date.value, tz);
            let column = features.column(Feature::LastSignin { since });
            let pass = compare(column.clone(), *op, lit(threshold)).fill_null(lit(false));
            (pass, vec![Shown::instant("last sign-in", column, "never")])
        }
        Clause::TimeSinceRegistration { op, duration } => {
            // time since registration OP span  <=>  as_of OP created + span (on the local calendar)
            let span = CalendarSpan::parse(&duration.value)
                .unwrap_or(CalendarSpan { count: 0, unit: crate::instant::CalendarUnit::Days });
            let reached = features.eligible_from(span);
            let pass = compare(features.as_of(), *op, reached.clone());
            (pass, vec![Shown::member_for()])
        }
    };
    Check { label, pass, shown }
}

/// A date literal already accepted by [`validate`], in µs.
fn date_micros(text: &str, tz: &Tz) -> i64 {
    instant::parse_date_literal(text, tz).map(instant::to_micros).unwrap_or(i64::MIN)
}
