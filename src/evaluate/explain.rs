//! One member's side of every check: the values behind "why didn't I get this badge?".
//!
//! Evaluates the same compiled checks as a run, on the member's row of the feature frame,
//! and renders each value for people (dates in the evaluation timezone, best week or month).

use super::{Evaluation, Period, ShowAs};
use crate::instant::{self, date_from_days, month_label};
use anyhow::{Result, anyhow};
use polars::prelude::*;

/// A check's outcome for one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    pub label: String,
    pub pass: bool,
    /// `(name, value)` pairs, e.g. `("has", "1")`.
    pub values: Vec<(String, String)>,
}

/// A badge's outcome for one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadgeOutcome {
    pub badge_id: String,
    pub qualifies: bool,
    pub checks: Vec<CheckOutcome>,
}

impl Evaluation {
    /// Explains every compiled badge for `user_id`; `None` if the id is not a member as of
    /// the evaluation instant.
    pub fn explain(&self, user_id: i64) -> Result<Option<Vec<BadgeOutcome>>> {
        let row = self.features.clone().lazy().filter(col("user_id").eq(lit(user_id)));
        let mut exprs = Vec::new();
        for (b, compiled) in self.compiled.iter().enumerate() {
            exprs.push(compiled.pass.clone().alias(format!("b{b}")));
            for (c, check) in compiled.checks.iter().enumerate() {
                exprs.push(check.pass.clone().alias(format!("b{b}c{c}")));
                for (v, shown) in check.shown.iter().enumerate() {
                    exprs.push(shown.expr.clone().alias(format!("b{b}c{c}v{v}")));
                }
            }
        }
        if exprs.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let row = row.select(exprs).collect().map_err(|e| anyhow!("explaining member {user_id}: {e}"))?;
        if row.height() == 0 {
            return Ok(None);
        }
        let get = |name: &str| -> Result<AnyValue<'static>> {
            let column = row.column(name).map_err(|e| anyhow!("explaining member {user_id}: {e}"))?;
            Ok(column.get(0).map_err(|e| anyhow!("explaining member {user_id}: {e}"))?.into_static())
        };
        let mut outcomes = Vec::new();
        for (b, compiled) in self.compiled.iter().enumerate() {
            let mut checks = Vec::new();
            for (c, check) in compiled.checks.iter().enumerate() {
                let mut values = Vec::new();
                for (v, shown) in check.shown.iter().enumerate() {
                    let value = get(&format!("b{b}c{c}v{v}"))?;
                    values.push((shown.name.to_string(), self.render(&value, shown.format)));
                }
                let pass = get(&format!("b{b}c{c}"))? == AnyValue::Boolean(true);
                checks.push(CheckOutcome { label: check.label.clone(), pass, values });
            }
            let qualifies = get(&format!("b{b}"))? == AnyValue::Boolean(true);
            outcomes.push(BadgeOutcome { badge_id: compiled.badge_id.clone(), qualifies, checks });
        }
        Ok(Some(outcomes))
    }

    fn render(&self, value: &AnyValue, format: ShowAs) -> String {
        let as_i64 = || value.extract::<i64>();
        match (value, format) {
            (AnyValue::Null, _) => "none".to_string(),
            (AnyValue::Boolean(b), _) => if *b { "yes" } else { "no" }.to_string(),
            (AnyValue::String(s), _) => format!("'{s}'"),
            (AnyValue::StringOwned(s), _) => format!("'{s}'"),
            (_, ShowAs::Instant) => as_i64()
                .and_then(instant::from_micros)
                .map(|t| t.with_timezone(&self.ctx.timezone).format("%Y-%m-%d %H:%M:%S %Z").to_string())
                .unwrap_or_else(|| value.to_string()),
            (_, ShowAs::PeriodKey(Period::Week)) => {
                as_i64().and_then(date_from_days).map(|d| d.to_string()).unwrap_or_else(|| value.to_string())
            }
            (_, ShowAs::PeriodKey(Period::Month)) => as_i64().map(month_label).unwrap_or_else(|| value.to_string()),
            (_, ShowAs::Millionths) => as_i64().map(millionths).unwrap_or_else(|| value.to_string()),
            (AnyValue::Float64(f), _) => f.to_string(),
            _ => value.to_string(),
        }
    }
}

/// Whole millionths as a decimal without trailing zeros: 2490000 is "2.49", 3000000 is "3".
fn millionths(value: i64) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let (whole, fraction) = (value.unsigned_abs() / 1_000_000, value.unsigned_abs() % 1_000_000);
    match fraction {
        0 => format!("{sign}{whole}"),
        _ => format!("{sign}{whole}.{}", format!("{fraction:06}").trim_end_matches('0')),
    }
}
