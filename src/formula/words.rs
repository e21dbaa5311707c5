//! A formula in plain English, for people rather than parsers: the default criteria
//! narrative of Open Badges exports and the "rule in words" of the report.
//!
//! The wording follows the formula's tree: AND and OR join phrases, a group that the tree
//! nests under another operator is bracketed, NOT says "not". It never loses a clause.

use super::{Clause, CmpOp, Formula};

/// The formula as a phrase completing "members who ...".
pub fn in_words(formula: &Formula) -> String {
    phrase(formula, 0)
}

fn phrase(formula: &Formula, parent: u8) -> String {
    let own = formula.precedence();
    let text = match formula {
        Formula::Or(l, r) => format!("{} or {}", phrase(l, own), phrase(r, own)),
        Formula::And(l, r) => format!("{} and {}", phrase(l, own), phrase(r, own)),
        Formula::Not(inner) => format!("not {}", phrase(inner, 5)),
        Formula::Clause(clause) => clause_words(clause),
    };
    // Brackets where the tree nests a looser operator (or anything under NOT but a clause).
    let bracket = matches!(formula, Formula::Or(..) | Formula::And(..)) && parent != 0 && parent != own;
    if bracket { format!("({text})") } else { text }
}

fn clause_words(clause: &Clause) -> String {
    match clause {
        Clause::Metric { name, op, value } => format!("have {} {} {}", name.value, amount(*op), number(*value)),
        Clause::RolesIn { roles } => match roles.as_slice() {
            [one] => format!("have the role {one}"),
            many => format!("have one of the roles {}", many.join(", ")),
        },
        Clause::UserIdIn { ids } => match ids.len() {
            1 => "are the one listed member".to_string(),
            n => format!("are one of {n} listed members"),
        },
        Clause::Setting { key, op, value } => match op {
            CmpOp::Ne => format!("do not have setting {} set to \"{value}\"", key.value),
            _ => format!("have setting {} set to \"{value}\"", key.value),
        },
        Clause::MaxConsecutiveLogins { op, value } => {
            format!("signed in on {} {} consecutive days", amount(*op), number(*value))
        }
        Clause::AvatarChanged { op, value } => match (*op == CmpOp::Eq) == *value {
            true => "have changed their avatar".to_string(),
            false => "have not changed their avatar".to_string(),
        },
        Clause::RegistrationDate { op, date } => format!("registered {} {}", when(*op), date.value),
        Clause::SigninDate { op, date } => format!("last signed in {} {}", when(*op), date.value),
        Clause::TimeSinceRegistration { op, duration } => {
            format!("have been members for {} {}", amount(*op), duration.value)
        }
    }
}

/// A comparison of amounts in words.
fn amount(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Ge => "at least",
        CmpOp::Gt => "more than",
        CmpOp::Le => "at most",
        CmpOp::Lt => "less than",
        CmpOp::Eq => "exactly",
        CmpOp::Ne => "other than",
    }
}

/// A comparison of dates in words.
fn when(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Ge => "on or after",
        CmpOp::Gt => "after",
        CmpOp::Le => "on or before",
        CmpOp::Lt => "before",
        CmpOp::Eq => "on",
        CmpOp::Ne => "not on",
    }
}

/// A number as people write it: no ".0" on whole numbers.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{}", value as i64) } else { value.to_string() }
}

#[cfg(test)]
mod tests {
    use super::in_words;
    use crate::formula::parse;

    fn words(text: &str) -> String {
        in_words(&parse(text).expect("a valid formula"))
    }

    #[test]
    fn a_metric_and_a_role_read_as_one_sentence() {
        assert_eq!(
            words("metric.net_accepted_solutions >= 3 AND roles in ['Expert']"),
            "have net_accepted_solutions at least 3 and have the role Expert"
        );
    }

    #[test]
    fn an_or_nested_under_and_is_bracketed() {
        assert_eq!(
            words("avatar_changed = true AND (signin_date >= \"2024-01-01\" OR user_id in [1, 2])"),
            "have changed their avatar and (last signed in on or after 2024-01-01 or are one of 2 listed members)"
        );
    }

    #[test]
    fn not_negates_the_group_it_covers() {
        assert_eq!(
            words("NOT (roles in ['Spammer', 'Bot'] OR avatar_changed = false)"),
            "not (have one of the roles Spammer, Bot or have not changed their avatar)"
        );
    }
}
