//! How far each member is from a badge whose criterion is one measure compared with a
//! threshold: the six rule types, single-clause formulas (`count(posts) >= 10`) and the levels
//! of a badge with `levels`.
//!
//! Owns which criteria have a measure and the frame of every member's measures: the same
//! feature frame as a run, with one value and one threshold column per badge.

use super::compile;
use crate::config::plan::{Badge, Criterion};
use crate::features::{Context, FeatureSet, METRIC_SCALE};
use crate::predicates::ShowAs;
use crate::predicates::formula::Formula;
use crate::predicates::rules::Rule;
use crate::sources::Snapshot;
use anyhow::{Result, anyhow};
use polars::prelude::*;

/// A badge's measure: the member's value, the threshold it must reach (per member for account
/// age), and whether it must pass the threshold rather than reach it.
#[derive(Debug, Clone)]
pub struct Measure {
    pub value: Expr,
    pub threshold: Expr,
    pub strict: bool,
    /// What the value counts, for people ("days" for account age, else empty).
    pub unit: &'static str,
}

const DAY_MICROS: i64 = 86_400_000_000;

/// The measure of `badge`, if its criterion is one (repeating and manual badges have none).
pub fn measure(badge: &Badge, features: &mut FeatureSet) -> Option<Measure> {
    if badge.repeat.is_some() {
        return None;
    }
    let (threshold, strict) = match &badge.criterion {
        Criterion::Manual => return None,
        Criterion::Formula { tree: Formula::Clause(clause), .. }
            if crate::predicates::formula::compile::is_measure(clause) =>
        {
            crate::predicates::formula::compile::threshold(clause)?
        }
        Criterion::Formula { .. } => return None,
        Criterion::Rule(Rule::AccountAge { min }) => {
            // Days a member has been one, against the days the span is from their creation.
            let days = |instant: Expr| crate::features::floor_div(instant - col("created_at"), DAY_MICROS);
            let reached = features.eligible_from(*min);
            return Some(Measure {
                value: days(features.as_of()).cast(DataType::Float64),
                threshold: days(reached).cast(DataType::Float64),
                strict: false,
                unit: "days",
            });
        }
        Criterion::Rule(Rule::PostsSent { min } | Rule::SocialConnections { min, .. }) => (f64::from(*min), false),
        Criterion::Rule(_) => (1.0, false),
    };
    let compiled = compile(badge, features)?;
    let super::CheckTree::Check(check) = compiled.tree else { return None };
    let shown = check.shown.first()?;
    let first = shown.exprs.first()?.clone().cast(DataType::Float64);
    let value = match shown.format {
        ShowAs::Millionths => first / lit(METRIC_SCALE),
        _ => first,
    };
    Some(Measure { value: value.fill_null(lit(0.0f64)), threshold: lit(threshold), strict, unit: "" })
}

/// Every member's measures of `badges`: `user_id`, and for the `i`-th badge that has a measure
/// `v{i}` (its value) and `t{i}` (its threshold); badges without one get no columns.
pub fn frame(ctx: Context, badges: &[Badge], snapshot: &Snapshot) -> Result<(DataFrame, Vec<Option<Measure>>)> {
    let mut features = FeatureSet::new(ctx);
    let measures: Vec<Option<Measure>> = badges.iter().map(|b| measure(b, &mut features)).collect();
    let members = features.build(snapshot)?;
    let mut columns = vec![col("user_id")];
    for (i, m) in measures.iter().enumerate() {
        if let Some(m) = m {
            columns.push(m.value.clone().alias(format!("v{i}")));
            columns.push(m.threshold.clone().alias(format!("t{i}")));
        }
    }
    let frame = members.lazy().select(columns).collect().map_err(|e| anyhow!("computing progress: {e}"))?;
    Ok((frame, measures))
}

/// Whether `value` meets a measure's threshold.
pub fn meets(value: f64, threshold: f64, strict: bool) -> bool {
    if strict { value > threshold } else { value >= threshold }
}
