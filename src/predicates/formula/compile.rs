//! From a parsed formula to bulk Polars predicates.
//!
//! Owns what each clause means: which feature it reads, which sources and optional columns
//! it needs, how its literals (dates, spans) are validated against the evaluation timezone,
//! and the boolean expression it becomes. The formula becomes a [`CheckTree`]: every clause
//! one [`Check`], every AND/OR chain and NOT a node with its own expression, so `explain` can
//! show the formula's structure, each node's outcome and the member's values.
//!
//! Every clause over a member's events is an [`Aggregate`]: `metric.posts`, `signin_date` and
//! `setting.user.max_consecutive_logins` are `count(posts)`, `last(logins)` and
//! `streak_days(logins)`, computed and shown as those are.

use super::{AttributeValue, Clause, CmpOp, Filter, Formula, FormulaError, Spanned};
use crate::features::{Agg, Aggregate, Bucket, Feature, FeatureSet, METRIC_SCALE, TrainingState};
use crate::instant::{self, CalendarSpan};
use crate::predicates::{Check, CheckTree, Shown};
use crate::sources::{ColumnSpec, ColumnType, SourceKind};
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

/// Columns of the users source that every member frame has, and the one type each compares
/// as in `user.NAME` clauses.
const KNOWN_USER_COLUMNS: [(&str, ColumnType); 4] = [
    ("user_id", ColumnType::Number),
    ("created_at", ColumnType::Timestamp),
    ("blocked", ColumnType::Bool),
    ("avatar_changed", ColumnType::Bool),
];

/// The source an aggregate's SOURCE names: a built-in event source, else a `[sources.events]`
/// one (validated by [`validate`]).
pub fn event_source(name: &str) -> SourceKind {
    match SourceKind::from_name(name) {
        Some(kind) if kind.is_event() => kind,
        _ => SourceKind::event(name),
    }
}

/// The type a `user.NAME` clause reads its column as.
fn attribute_type(value: &AttributeValue) -> ColumnType {
    match value {
        AttributeValue::Number(_) => ColumnType::Number,
        AttributeValue::Text(_) | AttributeValue::TextIn(_) => ColumnType::Text,
        AttributeValue::Bool(_) => ColumnType::Bool,
        AttributeValue::Date(_) => ColumnType::Timestamp,
    }
}

fn type_in_words(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Id | ColumnType::Number => "a number",
        ColumnType::Timestamp => "a date (with <, <=, > or >=)",
        ColumnType::Bool => "true or false",
        ColumnType::Text => "quoted text",
    }
}

/// Checks the literals of every clause (dates, spans) and that each aggregate reads an event
/// source (`events`: the `[sources.events]` names); returns every problem.
pub fn validate(tree: &Formula, timezone: &Tz, events: &BTreeSet<String>) -> Vec<FormulaError> {
    let mut problems = Vec::new();
    let date = |text: &Spanned<String>, problems: &mut Vec<FormulaError>| {
        if let Err(e) = instant::parse_date_literal(&text.value, timezone) {
            problems.push(FormulaError::new(text.span, e));
        }
    };
    let span = |text: &Spanned<String>, problems: &mut Vec<FormulaError>| {
        if let Err(e) = CalendarSpan::parse(&text.value) {
            problems.push(FormulaError::new(text.span, e));
        }
    };
    for clause in tree.clauses() {
        match clause {
            Clause::RegistrationDate { date: d, .. } | Clause::SigninDate { date: d, .. } => date(d, &mut problems),
            Clause::TimeSinceRegistration { duration, .. } => span(duration, &mut problems),
            Clause::Metric { name, .. } => {
                if let Some(problem) = builtin_misuse(name) {
                    problems.push(problem);
                }
            }
            Clause::Aggregate { source, filters, .. } | Clause::EventDate { source, filters, .. } => {
                let builtin = SourceKind::from_name(&source.value);
                if !builtin.is_some_and(SourceKind::is_event) && !events.contains(&source.value) {
                    problems.push(unknown_event_source(source, builtin.is_some(), events));
                }
                for filter in filters {
                    match filter {
                        Filter::Within(s) => span(s, &mut problems),
                        Filter::Since(d) => date(d, &mut problems),
                        Filter::Kind(_) => {}
                    }
                }
                if let Clause::EventDate { date: d, .. } = clause {
                    date(d, &mut problems);
                }
            }
            Clause::Attribute { name, value, .. } => {
                if let AttributeValue::Date(d) = value {
                    date(d, &mut problems);
                }
                let lower = name.value.to_ascii_lowercase();
                if let Some((known, ty)) = KNOWN_USER_COLUMNS.iter().find(|(known, _)| *known == lower)
                    && *ty != attribute_type(value)
                {
                    let message = format!("user.{known} compares with {}", type_in_words(*ty));
                    problems.push(FormulaError::new(name.span, message));
                }
            }
            _ => {}
        }
    }
    problems
}

fn unknown_event_source(source: &Spanned<String>, builtin: bool, events: &BTreeSet<String>) -> FormulaError {
    let configured = if events.is_empty() {
        "none is configured".to_string()
    } else {
        format!("configured: {}", events.iter().cloned().collect::<Vec<_>>().join(", "))
    };
    let what = if builtin { "is not an event source" } else { "is not a source" };
    FormulaError::new(
        source.span,
        format!(
            "'{}' {what}: aggregates read posts, connections, logins or a source of [sources.events] ({configured})",
            source.value
        ),
    )
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

/// Whether a clause compares one number of the member with a threshold (a measure of levels,
/// and what `progress` reports).
pub fn is_measure(clause: &Clause) -> bool {
    match clause {
        Clause::Aggregate { .. }
        | Clause::Metric { .. }
        | Clause::MaxConsecutiveLogins { .. }
        | Clause::SettingNumber { .. } => true,
        Clause::Attribute { value, .. } => matches!(value, AttributeValue::Number(_)),
        _ => false,
    }
}

/// The threshold a measure clause must reach: `(N, strict)` for `>= N` (`> N`: strict); `None`
/// for other comparisons (a measure to stay under has no next threshold).
pub fn threshold(clause: &Clause) -> Option<(f64, bool)> {
    let (op, value) = match clause {
        Clause::Aggregate { op, value, .. }
        | Clause::Metric { op, value, .. }
        | Clause::MaxConsecutiveLogins { op, value }
        | Clause::SettingNumber { op, value, .. } => (*op, *value),
        Clause::Attribute { op, value: AttributeValue::Number(value), .. } => (*op, *value),
        _ => return None,
    };
    match op {
        CmpOp::Ge => Some((value, false)),
        CmpOp::Gt => Some((value, true)),
        _ => None,
    }
}

/// Why a formula cannot be the criterion of a repeating badge (`repeat`; `item` when it repeats
/// per item): each event aggregate must count only the rows of one period or item, so windows,
/// best periods and streaks cannot take part; at least one event aggregate must; per item, all
/// must read one source.
pub fn repeat_problems(tree: &Formula, item: bool) -> Vec<String> {
    let mode = if item { "item" } else { "a period" };
    let mut problems = Vec::new();
    let mut sources = BTreeSet::new();
    for clause in tree.clauses() {
        match clause {
            Clause::Metric { name, .. } => match metric_source(&name.value) {
                SourceKind::Posts | SourceKind::Connections | SourceKind::Logins => {
                    sources.insert(metric_source(&name.value));
                }
                _ => {}
            },
            Clause::SigninDate { .. } => {
                sources.insert(SourceKind::Logins);
            }
            Clause::MaxConsecutiveLogins { .. } => problems.push(format!(
                "repeat: setting.user.max_consecutive_logins is a streak across the member's history, not a \
                 count of {mode}'s rows"
            )),
            Clause::Aggregate { agg, source, filters, .. } | Clause::EventDate { agg, source, filters, .. } => {
                if agg.bucket().is_some() {
                    problems.push(format!(
                        "repeat: {}({}) spans periods (a best period or a streak), so it cannot count only \
                         {mode}'s rows; use count, distinct, sum, active_days, first or last",
                        agg.name(),
                        source.value
                    ));
                } else if filters.iter().any(|f| matches!(f, Filter::Within(_))) {
                    problems.push(format!(
                        "repeat: {}({}, within = ...) counts a window that slides across periods; each grant \
                         already counts only {mode}'s rows, so remove within",
                        agg.name(),
                        source.value
                    ));
                }
                sources.insert(event_source(&source.value));
            }
            _ => {}
        }
    }
    if sources.is_empty() && problems.is_empty() {
        problems.push(
            "repeat: the formula reads no events, so no period or item could be counted; a repeating badge \
             needs an event aggregate such as count(posts)"
                .to_string(),
        );
    }
    if item && sources.len() > 1 {
        let names: Vec<&str> = sources.iter().map(|s| s.name()).collect();
        problems.push(format!(
            "repeat = \"item\": the formula reads events of {} sources ({}); per item, every aggregate must \
             read one and the same source",
            sources.len(),
            names.join(", ")
        ));
    }
    problems
}

/// The sources a formula reads besides `users`.
pub fn sources(tree: &Formula) -> BTreeSet<SourceKind> {
    tree.clauses()
        .into_iter()
        .filter_map(|clause| match clause {
            Clause::Metric { name, .. } => Some(metric_source(&name.value)),
            Clause::RolesIn { .. } => Some(SourceKind::Roles),
            Clause::Setting { .. } | Clause::SettingNumber { .. } => Some(SourceKind::Settings),
            Clause::MaxConsecutiveLogins { .. } | Clause::SigninDate { .. } => Some(SourceKind::Logins),
            Clause::Aggregate { source, .. } | Clause::EventDate { source, .. } => Some(event_source(&source.value)),
            _ => None,
        })
        .collect()
}

/// Optional source columns a formula relies on: `(source, column)`. A `user.NAME` column is
/// named by its frame column (see [`user_attributes`]).
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
                    needed.insert((SourceKind::Posts, "item"));
                }
            }
            Clause::Aggregate { agg, source, filters, .. } | Clause::EventDate { agg, source, filters, .. } => {
                let source = event_source(&source.value);
                if filters.iter().any(|f| matches!(f, Filter::Kind(_))) {
                    needed.insert((source, "kind"));
                }
                match agg {
                    Agg::Distinct => needed.insert((source, "item")),
                    Agg::Sum => needed.insert((source, "value")),
                    _ => false,
                };
            }
            Clause::Attribute { name, value, .. } => match attribute_column(&name.value, value) {
                AttributeColumn::Extra(spec) => {
                    needed.insert((SourceKind::Users, spec.name));
                }
                AttributeColumn::Known("avatar_changed") => {
                    needed.insert((SourceKind::Users, "avatar_changed"));
                }
                AttributeColumn::Known(_) => {}
            },
            _ => {}
        }
    }
    needed
}

/// The users columns beyond the standard ones that the formula's `user.NAME` clauses read.
pub fn user_attributes(tree: &Formula) -> Vec<ColumnSpec> {
    let mut specs: Vec<ColumnSpec> = Vec::new();
    for clause in tree.clauses() {
        if let Clause::Attribute { name, value, .. } = clause
            && let AttributeColumn::Extra(spec) = attribute_column(&name.value, value)
            && !specs.contains(&spec)
        {
            specs.push(spec);
        }
    }
    specs
}

/// Where a `user.NAME` clause's column is in the member frame.
enum AttributeColumn {
    /// A column every member frame has (`created_at` in µs).
    Known(&'static str),
    /// A column read for `user.NAME` clauses.
    Extra(ColumnSpec),
}

fn attribute_column(name: &str, value: &AttributeValue) -> AttributeColumn {
    let lower = name.to_ascii_lowercase();
    match KNOWN_USER_COLUMNS.iter().find(|(known, _)| *known == lower) {
        Some((known, _)) => AttributeColumn::Known(known),
        None => AttributeColumn::Extra(crate::sources::user_attribute(&lower, attribute_type(value))),
    }
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

/// A metric's feature: the built-in counts are aggregates (`metric.posts.reply` is
/// `count(posts, kind = 'reply')`, `metric.distinct_threads` is `distinct(posts)`).
fn metric_feature(name: &str, since: Option<i64>) -> Feature {
    let (head, kind) = split_metric(name);
    let trainings = |state| Feature::Trainings { state, training: None, since };
    let aggregate = |agg, source| {
        let aggregate = Aggregate::new(agg, source, since);
        Feature::Event(match kind {
            Some(kind) => aggregate.of_kinds(&[kind.to_string()]),
            None => aggregate,
        })
    };
    match head {
        "posts" => aggregate(Agg::Count, SourceKind::Posts),
        "distinct_threads" => aggregate(Agg::Distinct, SourceKind::Posts),
        "connections" => aggregate(Agg::Count, SourceKind::Connections),
        "logins" => aggregate(Agg::Count, SourceKind::Logins),
        "trainings_enrolled" => trainings(TrainingState::Enrolled),
        "trainings_completed" => trainings(TrainingState::Completed),
        "trainings_passed" => trainings(TrainingState::Passed),
        _ => Feature::Metric { name: name.to_string() },
    }
}

/// The aggregate a clause reads: its source's rows from `since` (the badge's
/// `activity_since`), narrowed by each filter.
fn aggregate_of(
    agg: Agg,
    source: &str,
    filters: &[Filter],
    tz: &Tz,
    since: Option<i64>,
    features: &FeatureSet,
) -> Aggregate {
    let mut aggregate = Aggregate::new(agg, event_source(source), since);
    for filter in filters {
        aggregate = match filter {
            Filter::Kind(kinds) => aggregate.of_kinds(kinds),
            Filter::Within(span) => match CalendarSpan::parse(&span.value) {
                Ok(span) => aggregate.from_instant(features.window_start(span)),
                Err(_) => aggregate,
            },
            Filter::Since(date) => aggregate.from_instant(date_micros(&date.value, tz)),
        };
    }
    aggregate
}

/// What explain shows for an aggregate: its value (with its evidence, for best periods and
/// streaks), named `name`.
fn aggregate_shown(aggregate: &Aggregate, name: String, value: Expr, key: Option<Expr>) -> Shown {
    let key = key.unwrap_or_else(|| lit(NULL));
    match aggregate.agg {
        Agg::Sum => Shown::millionths(name, value),
        Agg::BestDay | Agg::BestWeek | Agg::BestMonth => {
            Shown::best_period(aggregate.agg.bucket().unwrap_or(Bucket::Day), aggregate.source, value, key)
        }
        Agg::StreakDays => Shown::streak("longest streak", Bucket::Day, value, key),
        Agg::StreakWeeks => Shown::streak("longest streak", Bucket::Week, value, key),
        Agg::CurrentStreakDays => Shown::streak("current streak", Bucket::Day, value, key),
        Agg::First => Shown::instant(name, value, "never"),
        Agg::Last => Shown::instant(name, value, "never"),
        Agg::Count | Agg::Distinct | Agg::ActiveDays => Shown::count(name, value),
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
            let column = features.column(Feature::Event(Aggregate::new(Agg::StreakDays, SourceKind::Logins, since)));
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
            let column = features.column(Feature::Event(Aggregate::new(Agg::Last, SourceKind::Logins, since)));
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
        Clause::Aggregate { agg, source, filters, op, value } => {
            let aggregate = aggregate_of(*agg, &source.value, filters, tz, since, features);
            let (column, key) = features.aggregate(aggregate.clone());
            // Sums are kept in whole millionths (as host metrics are): compare in millionths.
            let threshold = if *agg == Agg::Sum { (value * METRIC_SCALE).round() } else { *value };
            let pass = compare(column.clone().cast(DataType::Float64), *op, lit(threshold));
            let name = call_text(clause);
            let mut shown = vec![aggregate_shown(&aggregate, name, column, key)];
            shown.extend(window_shown(filters, &aggregate, features));
            (pass, shown)
        }
        Clause::EventDate { agg, source, filters, op, date } => {
            let aggregate = aggregate_of(*agg, &source.value, filters, tz, since, features);
            let (column, key) = features.aggregate(aggregate.clone());
            let pass = compare(column.clone(), *op, lit(date_micros(&date.value, tz))).fill_null(lit(false));
            let mut shown = vec![aggregate_shown(&aggregate, call_text(clause), column, key)];
            shown.extend(window_shown(filters, &aggregate, features));
            (pass, shown)
        }
        Clause::Attribute { name, op, value } => {
            let column = match attribute_column(&name.value, value) {
                AttributeColumn::Known(known) => col(known),
                AttributeColumn::Extra(spec) => col(spec.name),
            };
            let shown_name = format!("user.{}", name.value);
            let (pass, shown) = match value {
                AttributeValue::Number(n) => {
                    (compare(column.clone().cast(DataType::Float64), *op, lit(*n)), Shown::setting(shown_name, column))
                }
                AttributeValue::Text(text) => {
                    (compare(column.clone(), *op, lit(text.as_str())), Shown::setting(shown_name, column))
                }
                AttributeValue::TextIn(items) => {
                    let any = items.iter().map(|t| column.clone().eq(lit(t.as_str()))).reduce(Expr::or);
                    (any.unwrap_or(lit(false)), Shown::setting(shown_name, column))
                }
                AttributeValue::Bool(b) => (compare(column.clone(), *op, lit(*b)), Shown::flag(shown_name, column)),
                AttributeValue::Date(date) => (
                    compare(column.clone(), *op, lit(date_micros(&date.value, tz))),
                    Shown::instant(shown_name, column, "not set"),
                ),
            };
            // A member without a value (NULL) meets no comparison.
            (pass.fill_null(lit(false)), vec![shown])
        }
        Clause::SettingNumber { key, op, value } => {
            let column = features.column(Feature::SettingNumber { key: key.value.clone() });
            let pass = compare(column.clone(), *op, lit(*value)).fill_null(lit(false));
            (pass, vec![Shown::setting(format!("{} setting", key.value), column)])
        }
    };
    Check { label, pass, shown }
}

/// `count(posts, within = '30 days')`: an aggregate clause's call, the name of its value.
fn call_text(clause: &Clause) -> String {
    clause.call().unwrap_or_else(|| clause.to_string())
}

/// The bounds of an aggregate's window, when a filter gives it one.
fn window_shown(filters: &[Filter], aggregate: &Aggregate, features: &FeatureSet) -> Option<Shown> {
    let windowed = filters.iter().any(|f| matches!(f, Filter::Within(_) | Filter::Since(_)));
    let from = aggregate.from.filter(|_| windowed)?;
    Some(Shown::window(lit(from), features.as_of()))
}

/// A date literal already accepted by [`validate`], in µs.
fn date_micros(text: &str, tz: &Tz) -> i64 {
    instant::parse_date_literal(text, tz).map(instant::to_micros).unwrap_or(i64::MIN)
}
