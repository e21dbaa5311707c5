//! The six rule types of a badge (the reference LMS's), their config shape and their meaning.
//!
//! Owns what each rule type means: which sources it reads, and how it becomes a bulk
//! Polars predicate over the per-member feature frame (see [`crate::features`]). Each rule
//! type is one match arm in each function below, with its tests in `tests/it/rules.rs`.

use super::{Check, Shown};
use crate::features::{Agg, Aggregate, Feature, FeatureSet, Period, TrainingState};
use crate::instant::CalendarSpan;
use crate::sources::SourceKind;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A badge's rule, as written in `rule = { type = "...", ... }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Rule {
    /// At least `min` connections inside one calendar week (ISO, Monday 00:00 local) or month.
    SocialConnections { min: u32, period: Period },
    /// `created_at + min`, on the local calendar, is at or before the evaluation instant; never
    /// for blocked members.
    AccountAge { min: CalendarSpan },
    /// At least `min` rows of `posts` (posts and comments alike).
    PostsSent { min: u32 },
    /// Progress 100 in the training.
    TrainingCompleted { training: TrainingRef },
    /// Passed the training.
    TrainingPassed { training: TrainingRef },
    /// Enrolled in the training (any row).
    TrainingEnrolled { training: TrainingRef },
}

/// A training id as the config writes it: text or a number, compared as text.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum TrainingRef {
    Text(String),
    Number(i64),
}

/// Always text, so `training = 101` and `training = "101"` are the same rule.
impl Serialize for TrainingRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.as_text())
    }
}

impl TrainingRef {
    pub fn as_text(&self) -> String {
        match self {
            TrainingRef::Text(t) => t.clone(),
            TrainingRef::Number(n) => n.to_string(),
        }
    }
}

impl Rule {
    /// The name written in `type = "..."`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Rule::SocialConnections { .. } => "social_connections",
            Rule::AccountAge { .. } => "account_age",
            Rule::PostsSent { .. } => "posts_sent",
            Rule::TrainingCompleted { .. } => "training_completed",
            Rule::TrainingPassed { .. } => "training_passed",
            Rule::TrainingEnrolled { .. } => "training_enrolled",
        }
    }

    /// The sources the rule reads besides `users`.
    pub fn sources(&self) -> Vec<SourceKind> {
        match self {
            Rule::SocialConnections { .. } => vec![SourceKind::Connections],
            Rule::AccountAge { .. } => vec![],
            Rule::PostsSent { .. } => vec![SourceKind::Posts],
            Rule::TrainingCompleted { .. } | Rule::TrainingPassed { .. } | Rule::TrainingEnrolled { .. } => {
                vec![SourceKind::Trainings]
            }
        }
    }

    /// Compiles the rule into one check over the feature frame. `since` is the badge's
    /// `activity_since` in microseconds.
    pub fn compile(&self, since: Option<i64>, features: &mut FeatureSet) -> Check {
        match self {
            Rule::SocialConnections { min, period } => {
                // best_week(connections) or best_month(connections).
                let agg = match period {
                    Period::Week => Agg::BestWeek,
                    Period::Month => Agg::BestMonth,
                };
                let (count, best) = features.aggregate(Aggregate::new(agg, SourceKind::Connections, since));
                let best = best.unwrap_or_else(|| lit(NULL));
                Check {
                    label: self.in_words(),
                    pass: count.clone().gt_eq(lit(i64::from(*min))),
                    shown: vec![Shown::best_period((*period).into(), SourceKind::Connections, count, best)],
                }
            }
            Rule::AccountAge { min } => {
                let eligible_from = features.eligible_from(*min);
                Check {
                    label: self.in_words(),
                    pass: col("blocked").not().and(eligible_from.lt_eq(features.as_of())),
                    shown: vec![Shown::member_for(), Shown::flag("blocked", col("blocked"))],
                }
            }
            Rule::PostsSent { min } => {
                let count = features.column(Feature::Event(Aggregate::new(Agg::Count, SourceKind::Posts, since)));
                Check {
                    label: self.in_words(),
                    pass: count.clone().gt_eq(lit(i64::from(*min))),
                    shown: vec![Shown::count("posts and comments", count)],
                }
            }
            Rule::TrainingCompleted { training } => {
                self.training_check(features, TrainingState::Completed, training, since)
            }
            Rule::TrainingPassed { training } => self.training_check(features, TrainingState::Passed, training, since),
            Rule::TrainingEnrolled { training } => {
                self.training_check(features, TrainingState::Enrolled, training, since)
            }
        }
    }

    /// A training rule's check: at least one row of the training in that state.
    fn training_check(
        &self,
        features: &mut FeatureSet,
        state: TrainingState,
        training: &TrainingRef,
        since: Option<i64>,
    ) -> Check {
        let id = training.as_text();
        let count = features.column(Feature::Trainings { state, training: Some(id.clone()), since });
        let name = match state {
            TrainingState::Enrolled => "enrolled",
            TrainingState::Completed => "completed",
            TrainingState::Passed => "passed",
        };
        Check {
            label: self.in_words(),
            pass: count.clone().gt_eq(lit(1i64)),
            shown: vec![Shown::flag(name, count.gt_eq(lit(1i64)))],
        }
    }
}

impl Rule {
    /// The rule as a phrase completing "members who ...".
    pub fn in_words(&self) -> String {
        match self {
            Rule::SocialConnections { min, period } => {
                format!("have made at least {min} {} within one calendar {period}", plural(*min, "connection"))
            }
            Rule::AccountAge { min } => format!("have been members for at least {min} and are not blocked"),
            Rule::PostsSent { min } => {
                format!("have written at least {min} {} or {}", plural(*min, "post"), plural(*min, "comment"))
            }
            Rule::TrainingCompleted { training } => format!("have completed the training \"{}\"", training.as_text()),
            Rule::TrainingPassed { training } => format!("have passed the training \"{}\"", training.as_text()),
            Rule::TrainingEnrolled { training } => {
                format!("have enrolled in the training \"{}\"", training.as_text())
            }
        }
    }
}

/// `word`, with an `s` unless `count` is 1.
fn plural(count: u32, word: &str) -> String {
    if count == 1 { word.to_string() } else { format!("{word}s") }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::SocialConnections { min, period } => {
                write!(f, "at least {min} connections in one {period}")
            }
            Rule::AccountAge { min } => write!(f, "account at least {min} old, not blocked"),
            Rule::PostsSent { min } => write!(f, "at least {min} posts and comments"),
            Rule::TrainingCompleted { training } => {
                write!(f, "completed training '{}'", training.as_text())
            }
            Rule::TrainingPassed { training } => {
                write!(f, "passed training '{}'", training.as_text())
            }
            Rule::TrainingEnrolled { training } => {
                write!(f, "enrolled in training '{}'", training.as_text())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Rule, TrainingRef};
    use crate::features::Period;
    use crate::instant::CalendarSpan;

    #[test]
    fn every_rule_type_reads_as_a_sentence_about_members() {
        let span = |text| CalendarSpan::parse(text).expect("a span");
        let cases = [
            (
                Rule::SocialConnections { min: 5, period: Period::Week },
                "have made at least 5 connections within one calendar week",
            ),
            (
                Rule::SocialConnections { min: 1, period: Period::Month },
                "have made at least 1 connection within one calendar month",
            ),
            (Rule::AccountAge { min: span("1 years") }, "have been members for at least 1 year and are not blocked"),
            (Rule::PostsSent { min: 1 }, "have written at least 1 post or comment"),
            (Rule::PostsSent { min: 10 }, "have written at least 10 posts or comments"),
            (Rule::TrainingCompleted { training: TrainingRef::Number(101) }, "have completed the training \"101\""),
            (
                Rule::TrainingPassed { training: TrainingRef::Text("safety".into()) },
                "have passed the training \"safety\"",
            ),
            (
                Rule::TrainingEnrolled { training: TrainingRef::Text("safety".into()) },
                "have enrolled in the training \"safety\"",
            ),
        ];
        for (rule, words) in cases {
            assert_eq!(rule.in_words(), words, "{rule:?}");
        }
    }
}
