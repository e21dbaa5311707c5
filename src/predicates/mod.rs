//! Predicates: what a badge's criterion says about a member, as Polars expressions over the
//! per-member feature frame.
//!
//! The [`rules`] (the six rule types) and the [`formula`] language both compile into a
//! [`CheckTree`] of [`Check`]s over the [`crate::features`] they ask for; [`crate::evaluate`]
//! filters the feature frame with them. This module owns those shared types; it reads
//! features and sources, never evaluation.

pub mod formula;
pub mod rules;

use crate::features::Bucket;
use polars::prelude::*;

/// One condition of a criterion: what it says, whether a member meets it, and the member's
/// values that explain why.
#[derive(Debug, Clone)]
pub struct Check {
    /// The condition in words, completing "members who ...".
    pub label: String,
    pub pass: Expr,
    pub shown: Vec<Shown>,
}

/// A member value shown next to a check, computed from one or more expressions, and how to
/// print it for people.
#[derive(Debug, Clone)]
pub struct Shown {
    pub name: String,
    pub exprs: Vec<Expr>,
    pub format: ShowAs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowAs {
    /// A count; a member without any has 0.
    Count,
    /// yes or no.
    Flag,
    /// A setting's text, or "not set".
    Setting,
    /// µs since the epoch (UTC), shown in the evaluation timezone, or `if_none`.
    Instant { if_none: &'static str },
    /// A number kept in whole millionths (host metric sums).
    Millionths,
    /// Two expressions: the most rows in one period and that period's key (a day key is local
    /// days since 1970-01-01, a week key the local days of its Monday, a month key `year * 12 +
    /// month - 1`). `noun` names a row, singular and plural ("connection", "connections").
    BestPeriod { bucket: Bucket, noun: (&'static str, &'static str) },
    /// Two expressions: a run's length in days or weeks and its first day (local days since
    /// 1970-01-01) or week (see [`crate::features::monday_of_week_number`]).
    Streak(Bucket),
    /// Two instants (µs): the first and last instant an aggregate's rows may have.
    Window,
    /// The member's creation instant (µs), shown as the calendar time since then.
    MemberFor,
}

impl Shown {
    fn new(name: impl Into<String>, exprs: Vec<Expr>, format: ShowAs) -> Self {
        Shown { name: name.into(), exprs, format }
    }
    pub fn count(name: impl Into<String>, expr: Expr) -> Self {
        Shown::new(name, vec![expr], ShowAs::Count)
    }
    pub fn millionths(name: impl Into<String>, expr: Expr) -> Self {
        Shown::new(name, vec![expr], ShowAs::Millionths)
    }
    pub fn flag(name: impl Into<String>, expr: Expr) -> Self {
        Shown::new(name, vec![expr], ShowAs::Flag)
    }
    pub fn setting(name: impl Into<String>, expr: Expr) -> Self {
        Shown::new(name, vec![expr], ShowAs::Setting)
    }
    /// An instant; `if_none` says what a member without one has ("never").
    pub fn instant(name: impl Into<String>, expr: Expr, if_none: &'static str) -> Self {
        Shown::new(name, vec![expr], ShowAs::Instant { if_none })
    }
    /// "best week: 7 connections (week of 2026-03-02)".
    pub fn best_period(bucket: Bucket, source: crate::sources::SourceKind, count: Expr, key: Expr) -> Self {
        let unit = match bucket {
            Bucket::Day => "day",
            Bucket::Week => "week",
            Bucket::Month => "month",
        };
        let noun = match source {
            crate::sources::SourceKind::Connections => ("connection", "connections"),
            crate::sources::SourceKind::Posts => ("post", "posts"),
            crate::sources::SourceKind::Logins => ("sign-in", "sign-ins"),
            _ => ("entry", "entries"),
        };
        Shown::new(format!("best {unit}"), vec![count, key], ShowAs::BestPeriod { bucket, noun })
    }
    /// "longest streak: 5 days (2026-03-02 to 2026-03-06)".
    pub fn streak(name: impl Into<String>, bucket: Bucket, length: Expr, first: Expr) -> Self {
        Shown::new(name, vec![length, first], ShowAs::Streak(bucket))
    }
    /// "counted: 2026-05-16 00:00:00 EDT to 2026-06-15 12:00:00 EDT".
    pub fn window(from: Expr, to: Expr) -> Self {
        Shown::new("counted", vec![from, to], ShowAs::Window)
    }
    /// "member for: 1 year 2 months (since ...)".
    pub fn member_for() -> Self {
        Shown::new("member for", vec![col("created_at")], ShowAs::MemberFor)
    }
}

/// How a criterion's checks combine. Every group carries the expression that says whether it
/// holds, built from its children's expressions exactly as the criterion's `pass` is, so
/// explain shows each node's outcome as a run computes it.
#[derive(Debug, Clone)]
pub enum CheckTree {
    /// Every child holds (a chain of ANDs).
    All {
        pass: Expr,
        children: Vec<CheckTree>,
    },
    /// At least one child holds (a chain of ORs).
    Any {
        pass: Expr,
        children: Vec<CheckTree>,
    },
    /// The child does not hold.
    Not {
        pass: Expr,
        child: Box<CheckTree>,
    },
    Check(Check),
}

impl CheckTree {
    /// Whether this node holds: the predicate of the whole tree at its root.
    pub fn pass(&self) -> &Expr {
        match self {
            CheckTree::All { pass, .. } | CheckTree::Any { pass, .. } | CheckTree::Not { pass, .. } => pass,
            CheckTree::Check(check) => &check.pass,
        }
    }

    /// The checks, left to right.
    pub fn checks(&self) -> Vec<&Check> {
        // A work stack: a formula may nest 256 levels deep.
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(node) = stack.pop() {
            match node {
                CheckTree::All { children, .. } | CheckTree::Any { children, .. } => {
                    stack.extend(children.iter().rev())
                }
                CheckTree::Not { child, .. } => stack.push(child),
                CheckTree::Check(check) => out.push(check),
            }
        }
        out
    }
}
