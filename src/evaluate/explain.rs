//! One member's side of every check: the values behind "why didn't I get this badge?".
//!
//! Evaluates the same compiled check tree as a run, on the member's row of the feature frame:
//! every node's own expression (so AND, OR and NOT nodes are computed by Polars, as in a
//! run), and every value shown beside a check, rendered for people in plain words (dates in
//! the evaluation timezone, "no connections yet", "never").

use super::Evaluation;
use crate::features::Repeat;
use crate::features::{Bucket, grant_text, monday_of_week_number};
use crate::instant::{self, date_from_days};
use crate::predicates::{CheckTree, ShowAs};
use anyhow::{Result, anyhow};
use chrono::{Datelike, NaiveDate, NaiveDateTime};
use polars::prelude::*;

/// A check's outcome for one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// The check in words, e.g. "have written at least 5 posts or comments".
    pub label: String,
    pub pass: bool,
    /// `(name, value)` pairs in plain words, e.g. `("best week", "no connections yet")`.
    pub values: Vec<(String, String)>,
}

/// A node of a criterion's tree with its outcome for one member: `pass` is whether the node
/// itself holds, so a NOT over a failing check passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeOutcome {
    All { pass: bool, children: Vec<NodeOutcome> },
    Any { pass: bool, children: Vec<NodeOutcome> },
    Not { pass: bool, child: Box<NodeOutcome> },
    Check(CheckOutcome),
}

impl NodeOutcome {
    pub fn pass(&self) -> bool {
        match self {
            NodeOutcome::All { pass, .. } | NodeOutcome::Any { pass, .. } | NodeOutcome::Not { pass, .. } => *pass,
            NodeOutcome::Check(check) => check.pass,
        }
    }

    /// The node's children, left to right (none for a check).
    pub fn children(&self) -> Vec<&NodeOutcome> {
        match self {
            NodeOutcome::All { children, .. } | NodeOutcome::Any { children, .. } => children.iter().collect(),
            NodeOutcome::Not { child, .. } => vec![child.as_ref()],
            NodeOutcome::Check(_) => Vec::new(),
        }
    }

    /// The checks, left to right.
    pub fn checks(&self) -> Vec<&CheckOutcome> {
        // A work stack: a formula may nest 256 levels deep.
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(node) = stack.pop() {
            match node {
                NodeOutcome::Check(check) => out.push(check),
                group => stack.extend(group.children().into_iter().rev()),
            }
        }
        out
    }
}

/// A badge's outcome for one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadgeOutcome {
    pub badge_id: String,
    /// The grant explained, for a repeating badge (one outcome per grant the member has rows
    /// for); empty for a badge earned once.
    pub grant: String,
    pub qualifies: bool,
    /// The criterion's tree: one check for a rule, the formula's structure for a formula.
    pub tree: NodeOutcome,
}

impl BadgeOutcome {
    /// The checks, left to right.
    pub fn checks(&self) -> Vec<&CheckOutcome> {
        self.tree.checks()
    }
}

/// Names the columns of the explain row: node `n` of badge `b` is `b{b}n{n}`, in pre-order.
struct Columns<'a> {
    prefix: String,
    next: usize,
    exprs: &'a mut Vec<Expr>,
}

impl Columns<'_> {
    fn add(&mut self, tree: &CheckTree) {
        let node = format!("{}n{}", self.prefix, self.next);
        self.next += 1;
        self.exprs.push(tree.pass().clone().alias(node.as_str()));
        match tree {
            CheckTree::All { children, .. } | CheckTree::Any { children, .. } => {
                children.iter().for_each(|child| self.add(child))
            }
            CheckTree::Not { child, .. } => self.add(child),
            CheckTree::Check(check) => {
                for (v, shown) in check.shown.iter().enumerate() {
                    for (e, expr) in shown.exprs.iter().enumerate() {
                        self.exprs.push(expr.clone().alias(format!("{node}v{v}e{e}")));
                    }
                }
            }
        }
    }
}

/// Reads the explain row back in the order [`Columns`] named it.
struct Row<'a> {
    evaluation: &'a Evaluation,
    frame: &'a DataFrame,
    /// The member's row (of a repeating badge's frame: one of the member's grants).
    row: usize,
    user_id: i64,
    prefix: String,
    next: usize,
}

impl Row<'_> {
    fn get(&self, name: &str) -> Result<AnyValue<'static>> {
        let failed = |e: PolarsError| anyhow!("explaining member {}: {e}", self.user_id);
        let column = self.frame.column(name).map_err(failed)?;
        Ok(column.get(self.row).map_err(failed)?.into_static())
    }

    fn outcome(&mut self, tree: &CheckTree) -> Result<NodeOutcome> {
        let node = format!("{}n{}", self.prefix, self.next);
        self.next += 1;
        let pass = self.get(&node)? == AnyValue::Boolean(true);
        Ok(match tree {
            CheckTree::All { children, .. } => NodeOutcome::All { pass, children: self.outcomes(children)? },
            CheckTree::Any { children, .. } => NodeOutcome::Any { pass, children: self.outcomes(children)? },
            CheckTree::Not { child, .. } => NodeOutcome::Not { pass, child: Box::new(self.outcome(child)?) },
            CheckTree::Check(check) => {
                let mut values = Vec::new();
                for (v, shown) in check.shown.iter().enumerate() {
                    let parts: Vec<AnyValue> =
                        (0..shown.exprs.len()).map(|e| self.get(&format!("{node}v{v}e{e}"))).collect::<Result<_>>()?;
                    values.push((shown.name.clone(), self.evaluation.render(&parts, shown.format)));
                }
                NodeOutcome::Check(CheckOutcome { label: check.label.clone(), pass, values })
            }
        })
    }

    fn outcomes(&mut self, trees: &[CheckTree]) -> Result<Vec<NodeOutcome>> {
        trees.iter().map(|tree| self.outcome(tree)).collect()
    }
}

impl Evaluation {
    /// Explains every compiled badge for `user_id`; `None` if the id is not a member as of
    /// the evaluation instant.
    pub fn explain(&self, user_id: i64) -> Result<Option<Vec<BadgeOutcome>>> {
        let failed = |e: PolarsError| anyhow!("explaining member {user_id}: {e}");
        let mut outcomes = Vec::new();
        for (p, part) in self.parts.iter().enumerate() {
            let rows = part.features.clone().lazy().filter(col("user_id").eq(lit(user_id)));
            let mut exprs = match part.grant {
                None => vec![lit("").alias("grant")],
                Some(_) => vec![col("grant").cast(DataType::String)],
            };
            for (b, compiled) in part.compiled.iter().enumerate() {
                Columns { prefix: format!("b{b}"), next: 0, exprs: &mut exprs }.add(&compiled.tree);
            }
            let frame = rows.select(exprs).collect().map_err(failed)?;
            // The member frame (the first part) tells a member from an unknown id.
            if p == 0 && frame.height() == 0 {
                return Ok(None);
            }
            let grants: Vec<String> = frame
                .column("grant")
                .and_then(|c| c.str().cloned())
                .map_err(failed)?
                .iter()
                .map(|g| match (part.grant, g) {
                    (Some(repeat), Some(key)) if repeat != Repeat::Item => {
                        key.parse::<i64>().map_or_else(|_| key.to_string(), |k| grant_text(repeat, k))
                    }
                    (_, g) => g.unwrap_or_default().to_string(),
                })
                .collect();
            for (b, compiled) in part.compiled.iter().enumerate() {
                for (row, grant) in grants.iter().enumerate() {
                    let mut reader =
                        Row { evaluation: self, frame: &frame, row, user_id, prefix: format!("b{b}"), next: 0 };
                    // The root node's expression is the badge's whole predicate, as in a run.
                    let tree = reader.outcome(&compiled.tree)?;
                    outcomes.push(BadgeOutcome {
                        badge_id: compiled.badge_id.clone(),
                        grant: grant.clone(),
                        qualifies: tree.pass(),
                        tree,
                    });
                }
            }
        }
        Ok(Some(outcomes))
    }

    /// A shown value in plain words.
    fn render(&self, values: &[AnyValue], format: ShowAs) -> String {
        let first = values.first().unwrap_or(&AnyValue::Null);
        let as_i64 = |value: &AnyValue| value.extract::<i64>();
        match format {
            ShowAs::Count => match first {
                AnyValue::Null => "0".to_string(),
                AnyValue::Float64(f) => f.to_string(),
                other => as_i64(other).map_or_else(|| other.to_string(), |n| n.to_string()),
            },
            ShowAs::Millionths => match first {
                AnyValue::Null => "0".to_string(),
                other => as_i64(other).map_or_else(|| other.to_string(), millionths),
            },
            ShowAs::Flag => match first {
                AnyValue::Boolean(true) => "yes".to_string(),
                AnyValue::Boolean(false) => "no".to_string(),
                AnyValue::Null => "unknown".to_string(),
                other => other.to_string(),
            },
            ShowAs::Setting => match first {
                AnyValue::Null => "not set".to_string(),
                AnyValue::String("") => "empty".to_string(),
                AnyValue::String(s) => format!("\"{s}\""),
                AnyValue::StringOwned(s) if s.is_empty() => "empty".to_string(),
                AnyValue::StringOwned(s) => format!("\"{s}\""),
                other => other.to_string(),
            },
            ShowAs::Instant { if_none } => match first {
                AnyValue::Null => if_none.to_string(),
                other => self.local_time(other).unwrap_or_else(|| other.to_string()),
            },
            ShowAs::BestPeriod { bucket, noun: (one, many) } => {
                let count = as_i64(first).unwrap_or(0);
                let key = values.get(1).and_then(as_i64);
                match (count, key) {
                    (0, _) | (_, None) => format!("no {many} yet"),
                    (n, Some(key)) => {
                        let noun = if n == 1 { one } else { many };
                        format!("{n} {noun} ({})", period_label(bucket, key))
                    }
                }
            }
            ShowAs::Streak(bucket) => {
                let length = as_i64(first).unwrap_or(0);
                let key = values.get(1).and_then(as_i64);
                match (length, key) {
                    (0, _) | (_, None) => "0".to_string(),
                    (n, Some(key)) => streak_label(bucket, n, key),
                }
            }
            ShowAs::Window => {
                let bound = |value: Option<&AnyValue>| {
                    value.and_then(|v| self.local_time(v)).unwrap_or_else(|| "the beginning".to_string())
                };
                format!("{} to {}", bound(Some(first)), bound(values.get(1)))
            }
            ShowAs::MemberFor => {
                let created = as_i64(first).and_then(instant::from_micros);
                match created {
                    None => "unknown".to_string(),
                    Some(created) => {
                        let tz = self.ctx.timezone;
                        let age = calendar_age(
                            created.with_timezone(&tz).naive_local(),
                            self.ctx.as_of.with_timezone(&tz).naive_local(),
                        );
                        format!("{age} (since {})", created.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S %Z"))
                    }
                }
            }
        }
    }

    /// An instant in µs as a local time of the evaluation timezone.
    fn local_time(&self, value: &AnyValue) -> Option<String> {
        let instant = instant::from_micros(value.extract::<i64>()?)?;
        Some(instant.with_timezone(&self.ctx.timezone).format("%Y-%m-%d %H:%M:%S %Z").to_string())
    }
}

/// "2026-03-02" for a day key (local days since 1970-01-01), "week of 2026-03-02" for a week
/// key (the local days of its Monday), "March 2026" for a month key.
fn period_label(bucket: Bucket, key: i64) -> String {
    match bucket {
        Bucket::Day => date_from_days(key).map_or_else(|| format!("day {key}"), |d| d.to_string()),
        Bucket::Week => date_from_days(key).map_or_else(|| format!("week {key}"), |d| format!("week of {d}")),
        Bucket::Month => {
            let (year, month) = (key.div_euclid(12), key.rem_euclid(12) + 1);
            i32::try_from(year)
                .ok()
                .and_then(|y| NaiveDate::from_ymd_opt(y, u32::try_from(month).ok()?, 1))
                .map_or_else(|| instant::month_label(key), |d| d.format("%B %Y").to_string())
        }
    }
}

/// "3 days (2026-03-02 to 2026-03-04)" for a run of days from day key `first`; "4 weeks (weeks
/// of 2026-03-02 to 2026-03-23)" for a run of weeks from week number `first`.
fn streak_label(bucket: Bucket, length: i64, first: i64) -> String {
    let day = |d: i64| date_from_days(d).map_or_else(|| format!("day {d}"), |date| date.to_string());
    match (bucket, length) {
        (Bucket::Week, 1) => format!("1 week (week of {})", day(monday_of_week_number(first))),
        (Bucket::Week, n) => {
            let monday = monday_of_week_number(first);
            format!("{n} weeks (weeks of {} to {})", day(monday), day(monday + 7 * (n - 1)))
        }
        (_, 1) => format!("1 day ({})", day(first)),
        (_, n) => format!("{n} days ({} to {})", day(first), day(first + n - 1)),
    }
}

/// The calendar time from `from` to `to` (wall-clock readings): "1 year 2 months 3 days",
/// whole months first as the calendar counts them, or "less than a day".
fn calendar_age(from: NaiveDateTime, to: NaiveDateTime) -> String {
    if to < from {
        return "not yet registered".to_string();
    }
    let mut months = (to.year() - from.year()) * 12 + to.month() as i32 - from.month() as i32;
    let after = |months: i32| from.checked_add_months(chrono::Months::new(u32::try_from(months).ok()?));
    while months > 0 && after(months).is_none_or(|t| t > to) {
        months -= 1;
    }
    let days = after(months.max(0)).map_or(0, |t| (to - t).num_days());
    let parts: Vec<String> = [(months / 12, "year"), (months % 12, "month"), (days as i32, "day")]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}{}", if n == 1 { "" } else { "s" }))
        .collect();
    if parts.is_empty() { "less than a day".to_string() } else { parts.join(" ") }
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

#[cfg(test)]
mod tests {
    use super::{calendar_age, period_label, streak_label};
    use crate::features::Bucket;
    use chrono::NaiveDateTime;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap_or_default()
    }

    #[test]
    fn membership_reads_in_years_months_and_days() {
        assert_eq!(calendar_age(at("2025-04-01 08:00"), at("2026-06-04 09:00")), "1 year 2 months 3 days");
        assert_eq!(calendar_age(at("2025-06-15 08:00"), at("2026-06-15 08:00")), "1 year");
        assert_eq!(calendar_age(at("2025-06-15 08:00"), at("2026-06-15 07:59")), "11 months 30 days");
        assert_eq!(calendar_age(at("2026-01-31 00:00"), at("2026-02-28 00:00")), "1 month");
        assert_eq!(calendar_age(at("2026-06-15 08:00"), at("2026-06-15 20:00")), "less than a day");
    }

    #[test]
    fn a_best_month_is_named_and_a_best_week_is_dated_by_its_monday() {
        assert_eq!(period_label(Bucket::Month, 2026 * 12 + 2), "March 2026");
        assert_eq!(period_label(Bucket::Week, 20_514), "week of 2026-03-02");
        assert_eq!(period_label(Bucket::Day, 20_514), "2026-03-02");
    }

    #[test]
    fn a_streak_names_its_first_and_last_day_or_week() {
        assert_eq!(streak_label(Bucket::Day, 3, 20_514), "3 days (2026-03-02 to 2026-03-04)");
        assert_eq!(streak_label(Bucket::Day, 1, 20_514), "1 day (2026-03-02)");
        // Week 2931 starts on Monday 2026-03-02 (7 * 2931 - 3 = 20_514).
        assert_eq!(streak_label(Bucket::Week, 4, 2_931), "4 weeks (weeks of 2026-03-02 to 2026-03-23)");
        assert_eq!(streak_label(Bucket::Week, 1, 2_931), "1 week (week of 2026-03-02)");
    }
}
