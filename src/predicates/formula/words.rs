//! A formula in plain English, for people rather than parsers: the default criteria
//! narrative of Open Badges exports, the "rule in words" of the report, and the clause lines
//! of `explain`.
//!
//! Every sentence says exactly what the compiled predicate ([`super::compile`]) checks. NOT is
//! pushed down to the clauses (De Morgan for groups), and each clause has a negated wording of
//! its own ("have been members for at least 3 months" for `NOT time_since_registration < '3
//! months'`), because "not have ..." is not English. A group nested under the other operator is
//! bracketed. No clause is ever lost.

use super::{AttributeValue, Clause, CmpOp, Filter, Formula};
use crate::features::Agg;
use crate::instant::{self, CalendarSpan};

/// The formula as a phrase completing "members who ...".
pub fn in_words(formula: &Formula) -> String {
    Phrase::of(formula, false).text(None)
}

/// One clause as a phrase completing "members who ...", as written (not negated).
pub fn clause_in_words(clause: &Clause) -> String {
    words(clause, false).text
}

/// What a metric's value is, as the name of a value shown beside it: "posts and comments",
/// "sign-ins"; a host metric by its own name.
pub fn metric_in_words(name: &str) -> String {
    let (head, kind) = match name.split_once('.') {
        Some((head, kind)) => (head, Some(kind)),
        None => (name, None),
    };
    match (head, kind) {
        ("posts", None) => "posts and comments".to_string(),
        ("posts", Some(kind)) => format!("posts of kind \"{kind}\""),
        ("distinct_threads", None) => "threads posted in".to_string(),
        ("distinct_threads", Some(kind)) => format!("threads with posts of kind \"{kind}\""),
        ("connections", None) => "connections".to_string(),
        ("logins", None) => "sign-ins".to_string(),
        ("trainings_enrolled", None) => "trainings enrolled in".to_string(),
        ("trainings_completed", None) => "trainings completed".to_string(),
        ("trainings_passed", None) => "trainings passed".to_string(),
        _ => name.to_string(),
    }
}

/// A formula with every NOT pushed down to the clauses, chains of one operator flattened.
enum Phrase<'a> {
    All(Vec<Phrase<'a>>),
    Any(Vec<Phrase<'a>>),
    Clause { clause: &'a Clause, negated: bool },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    All,
    Any,
}

impl<'a> Phrase<'a> {
    /// `formula`, or its negation when `negated`: `NOT (a AND b)` is `NOT a OR NOT b`.
    fn of(formula: &'a Formula, negated: bool) -> Phrase<'a> {
        match formula {
            Formula::And(l, r) | Formula::Or(l, r) => {
                // AND stays AND unless negated; OR likewise.
                let group = match (formula, negated) {
                    (Formula::And(..), false) | (Formula::Or(..), true) => Group::All,
                    _ => Group::Any,
                };
                let mut items = Vec::new();
                for side in [l, r] {
                    match (Phrase::of(side, negated), group) {
                        (Phrase::All(inner), Group::All) | (Phrase::Any(inner), Group::Any) => items.extend(inner),
                        (other, _) => items.push(other),
                    }
                }
                if group == Group::All { Phrase::All(items) } else { Phrase::Any(items) }
            }
            Formula::Not(inner) => Phrase::of(inner, !negated),
            Formula::Clause(clause) => Phrase::Clause { clause, negated },
        }
    }

    /// The text; `parent` is the group this phrase is an item of.
    fn text(&self, parent: Option<Group>) -> String {
        let (joined, group) = match self {
            Phrase::All(items) => (join(items, " and ", Group::All), Group::All),
            Phrase::Any(items) => (join(items, " or ", Group::Any), Group::Any),
            Phrase::Clause { clause, negated } => {
                let words = words(clause, *negated);
                // "a and have either never signed in or ..." would read as one list.
                let bracket = words.compound && parent == Some(Group::All);
                return if bracket { format!("({})", words.text) } else { words.text };
            }
        };
        if parent.is_some_and(|p| p != group) { format!("({joined})") } else { joined }
    }
}

fn join(items: &[Phrase], separator: &str, group: Group) -> String {
    items.iter().map(|item| item.text(Some(group))).collect::<Vec<_>>().join(separator)
}

/// A clause's wording; `compound` when it joins two conditions with "or" itself.
struct Words {
    text: String,
    compound: bool,
}

impl From<String> for Words {
    fn from(text: String) -> Self {
        Words { text, compound: false }
    }
}

fn compound(text: String) -> Words {
    Words { text, compound: true }
}

/// The clause, or its negation, in words.
fn words(clause: &Clause, negated: bool) -> Words {
    // Clauses over values every member has (counts, the creation instant) negate by their
    // operator: NOT (x < 3) is x >= 3. The others have their own negated wordings.
    let op = |op: CmpOp| if negated { op.negated() } else { op };
    match clause {
        Clause::Metric { name, op: o, value } => metric(&name.value, op(*o), *value).into(),
        Clause::RolesIn { roles } => roles_in(roles, negated).into(),
        Clause::UserIdIn { ids } => user_id_in(ids, negated).into(),
        Clause::Setting { key, op: o, value } => setting(&key.value, *o, value, negated).into(),
        Clause::MaxConsecutiveLogins { op: o, value } => consecutive_logins(op(*o), *value).into(),
        Clause::AvatarChanged { op: o, value } => {
            // A member whose avatar_changed is NULL has not changed it (compile fills false).
            let changed = (*o == CmpOp::Eq) == *value;
            let text = if changed != negated { "have changed their avatar" } else { "have not changed their avatar" };
            text.to_string().into()
        }
        Clause::RegistrationDate { op: o, date } => match op(*o) {
            CmpOp::Ne => format!("did not register {}", when(CmpOp::Eq, &date.value)),
            o => format!("registered {}", when(o, &date.value)),
        }
        .into(),
        Clause::SigninDate { op: o, date } => {
            event_date(Agg::Last, &Stream::of("logins", &[]), &date.value, *o, negated, "")
        }
        Clause::Aggregate { agg, source, filters, op: o, value } => {
            aggregate(*agg, &Stream::of(&source.value, filters), op(*o), *value, &window(filters)).into()
        }
        Clause::EventDate { agg, source, filters, op: o, date } => {
            event_date(*agg, &Stream::of(&source.value, filters), &date.value, *o, negated, &window(filters))
        }
        Clause::Attribute { name, op: o, value } => attribute(&name.value, *o, value, negated).into(),
        Clause::SettingNumber { key, op: o, value } => {
            let n = number(*value);
            let compared = match o {
                CmpOp::Ne => format!("a number other than {n}"),
                o => format!("a number of {} {n}", amount(*o)),
            };
            let have = if negated { "do not have" } else { "have" };
            format!("{have} their {} setting set to {compared}", key.value).into()
        }
        Clause::TimeSinceRegistration { op: o, duration } => {
            let span = CalendarSpan::parse(&duration.value).map_or_else(|_| duration.value.clone(), |s| s.to_string());
            match op(*o) {
                CmpOp::Ne => format!("have not been members for exactly {span}"),
                o => format!("have been members for {} {span}", amount(o)),
            }
            .into()
        }
    }
}

/// What a built-in metric counts: "{verb} at least 5 {noun}".
struct Count {
    verb: String,
    one: String,
    many: String,
}

fn count(verb: &str, one: &str, many: &str) -> Count {
    Count { verb: verb.to_string(), one: one.to_string(), many: many.to_string() }
}

/// What the built-in metric `name` counts, or `None` for a host metric.
fn builtin_count(name: &str) -> Option<Count> {
    let (head, kind) = match name.split_once('.') {
        Some((head, kind)) => (head, Some(kind)),
        None => (name, None),
    };
    Some(match (head, kind) {
        ("posts", None) => count("have written", "post or comment", "posts or comments"),
        ("posts", Some(kind)) => {
            count("have written", &format!("post of kind \"{kind}\""), &format!("posts of kind \"{kind}\""))
        }
        ("distinct_threads", None) => count("have posted in", "thread", "different threads"),
        ("distinct_threads", Some(kind)) => {
            count(&format!("have written posts of kind \"{kind}\" in"), "thread", "different threads")
        }
        ("connections", None) => count("have made", "connection", "connections"),
        ("logins", None) => count("have signed in", "time", "times"),
        ("trainings_enrolled", None) => count("have enrolled in", "training", "different trainings"),
        ("trainings_completed", None) => count("have completed", "training", "different trainings"),
        ("trainings_passed", None) => count("have passed", "training", "different trainings"),
        _ => return None,
    })
}

/// A metric compared with `value`. Missing values are 0, so every operator negates exactly.
fn metric(name: &str, op: CmpOp, value: f64) -> String {
    let n = number(value);
    let Some(count) = builtin_count(name) else {
        // A host metric is a sum that may be fractional or negative: an amount, not a count.
        return match op {
            CmpOp::Ne => format!("have a {name} other than {n}"),
            op => format!("have a {name} of {} {n}", amount(op)),
        };
    };
    let noun = if value == 1.0 { &count.one } else { &count.many };
    match op {
        CmpOp::Ne => format!("{} exactly {n} {noun}", not_verb(&count.verb)),
        CmpOp::Lt => format!("{} fewer than {n} {noun}", count.verb),
        op => format!("{} {} {n} {noun}", count.verb, amount(op)),
    }
}

/// "have written" → "have not written".
fn not_verb(verb: &str) -> String {
    if verb == "have" {
        return "do not have".to_string();
    }
    match verb.strip_prefix("have ") {
        Some(rest) => format!("have not {rest}"),
        None => format!("not {verb}"),
    }
}

/// A comparison of amounts in words (`Ne` is worded by the caller).
fn amount(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Ge => "at least",
        CmpOp::Gt => "more than",
        CmpOp::Le => "at most",
        CmpOp::Lt => "less than",
        CmpOp::Eq | CmpOp::Ne => "exactly",
    }
}

/// `"A"`, `"A" or "B"`, `"A", "B" or "C"`: each item once.
fn quoted_list<T: ToString>(items: &[T], last: &str) -> (usize, String) {
    let mut unique: Vec<String> = Vec::new();
    for item in items {
        let text = format!("\"{}\"", item.to_string());
        if !unique.contains(&text) {
            unique.push(text);
        }
    }
    let text = match unique.split_last() {
        None => String::new(),
        Some((only, [])) => only.clone(),
        Some((tail, init)) => format!("{} {last} {tail}", init.join(", ")),
    };
    (unique.len(), text)
}

fn roles_in(roles: &[String], negated: bool) -> String {
    let (n, list) = quoted_list(roles, "or");
    match (n, negated) {
        (1, false) => format!("have the role {list}"),
        (1, true) => format!("do not have the role {list}"),
        (_, false) => format!("have one of the roles {list}"),
        (_, true) => format!("have none of the roles {list}"),
    }
}

fn user_id_in(ids: &[i64], negated: bool) -> String {
    // The ids are not shown: the narrative goes into public Open Badges documents.
    let (n, _) = quoted_list(ids, "or");
    match (n, negated) {
        (1, false) => "are the one member listed by id".to_string(),
        (1, true) => "are not the one member listed by id".to_string(),
        (n, false) => format!("are one of the {n} members listed by id"),
        (n, true) => format!("are not one of the {n} members listed by id"),
    }
}

/// `setting.KEY = 'V'` holds when the member's value is exactly V; `!=` when the member has a
/// value that is not empty, not "default" and not V. A member without the setting fails both.
fn setting(key: &str, op: CmpOp, value: &str, negated: bool) -> String {
    let shown = if value.is_empty() { "empty".to_string() } else { format!("\"{value}\"") };
    let placeholder = value.is_empty() || value == "default";
    match (op, negated) {
        (CmpOp::Ne, false) if placeholder => {
            format!("have their {key} setting set to a non-empty value other than \"default\"")
        }
        (CmpOp::Ne, false) => {
            format!("have their {key} setting set to a non-empty value other than \"default\" or {shown}")
        }
        (CmpOp::Ne, true) if placeholder => format!("have their {key} setting unset, empty or \"default\""),
        (CmpOp::Ne, true) => format!("have their {key} setting unset, empty, \"default\" or {shown}"),
        (_, false) => {
            format!("have their {key} setting set to {}", if value.is_empty() { "an empty value" } else { &shown })
        }
        (_, true) => {
            format!(
                "do not have their {key} setting set to {}",
                if value.is_empty() { "an empty value" } else { &shown }
            )
        }
    }
}

/// A stream of a member's events as the words of a sentence: what one row is, and what
/// having rows is, for one source and its kind filters.
struct Stream {
    /// Counting rows: "have written" 5 "posts or comments".
    verb: String,
    one: String,
    many: String,
    /// Having rows on a day: "have posted" (on 5 different days).
    active: String,
    /// The same in the past participle and the base form, for dates: "posted" / "post".
    participle: String,
    base: String,
    /// `distinct` counts threads for posts, items for the others.
    item: (&'static str, &'static str),
}

impl Stream {
    fn of(source: &str, filters: &[Filter]) -> Stream {
        let kinds: Vec<&String> =
            filters.iter().filter_map(|f| if let Filter::Kind(k) = f { Some(k) } else { None }).flatten().collect();
        let (_, listed) = quoted_list(&kinds, "or");
        let of_kind = if kinds.is_empty() { String::new() } else { format!(" of kind {listed}") };
        let events = source.replace('_', " ");
        let s = |text: &str| text.to_string();
        match source {
            "posts" if kinds.is_empty() => Stream {
                verb: s("have written"),
                one: s("post or comment"),
                many: s("posts or comments"),
                active: s("have posted"),
                participle: s("posted"),
                base: s("post"),
                item: ("thread", "different threads"),
            },
            "posts" => Stream {
                verb: s("have written"),
                one: format!("post{of_kind}"),
                many: format!("posts{of_kind}"),
                active: format!("have written posts{of_kind}"),
                participle: format!("written a post{of_kind}"),
                base: format!("write a post{of_kind}"),
                item: ("thread", "different threads"),
            },
            "connections" => Stream {
                verb: s("have made"),
                one: format!("connection{of_kind}"),
                many: format!("connections{of_kind}"),
                active: format!("have made connections{of_kind}"),
                participle: format!("made a connection{of_kind}"),
                base: format!("make a connection{of_kind}"),
                item: ("item", "different items"),
            },
            "logins" => Stream {
                verb: s("have signed in"),
                one: format!("time{}", if kinds.is_empty() { String::new() } else { format!(" (sign-ins{of_kind})") }),
                many: format!(
                    "times{}",
                    if kinds.is_empty() { String::new() } else { format!(" (sign-ins{of_kind})") }
                ),
                active: format!("have signed in{of_kind}"),
                participle: format!("signed in{of_kind}"),
                base: format!("sign in{of_kind}"),
                item: ("item", "different items"),
            },
            _ => Stream {
                verb: s("have"),
                one: format!("entry{of_kind} in {events}"),
                many: format!("entries{of_kind} in {events}"),
                active: format!("have had entries{of_kind} in {events}"),
                participle: format!("had an entry{of_kind} in {events}"),
                base: format!("have an entry{of_kind} in {events}"),
                item: ("item", "different items"),
            },
        }
    }
}

/// The window of an aggregate's filters in words: " in the last 30 days", " on or after
/// 2026-01-01"; empty without one.
fn window(filters: &[Filter]) -> String {
    let mut parts = Vec::new();
    for filter in filters {
        match filter {
            Filter::Within(span) => {
                let span = CalendarSpan::parse(&span.value).map_or_else(|_| span.value.clone(), |s| s.to_string());
                parts.push(format!("in the last {span}"));
            }
            Filter::Since(date) => parts.push(when(CmpOp::Ge, &date.value)),
            Filter::Kind(_) => {}
        }
    }
    if parts.is_empty() { String::new() } else { format!(" {}", parts.join(" and ")) }
}

/// A numeric aggregate compared with `value`. Members without rows have 0, so every operator
/// negates exactly (the caller passes the negated operator).
fn aggregate(agg: Agg, stream: &Stream, op: CmpOp, value: f64, window: &str) -> String {
    let n = number(value);
    let one = value == 1.0;
    let amount_of = |op: CmpOp, counted: bool| match op {
        CmpOp::Lt if counted => "fewer than",
        CmpOp::Ne => "exactly",
        op => amount(op),
    };
    // "have posted" + " on at least 5 different days": `Ne` says "not exactly".
    let phrase = |verb: &str, rest: String| match op {
        CmpOp::Ne => format!("{} {rest}{window}", not_verb(verb)),
        _ => format!("{verb} {rest}{window}"),
    };
    let a = amount_of(op, true);
    let days = |unit: &str| if one { unit.to_string() } else { format!("{unit}s") };
    match agg {
        Agg::Count => phrase(&stream.verb, format!("{a} {n} {}", if one { &stream.one } else { &stream.many })),
        Agg::Distinct => {
            let noun = if one { stream.item.0 } else { stream.item.1 };
            let verb = if stream.item.0 == "thread" {
                if stream.active == "have posted" {
                    "have posted in".to_string()
                } else {
                    format!("{} in", stream.active)
                }
            } else {
                format!("{} about", stream.active)
            };
            phrase(&verb, format!("{a} {n} {noun}"))
        }
        Agg::Sum => {
            let total = match op {
                CmpOp::Ne => format!("a total value other than {n}"),
                op => format!("a total value of {} {n}", amount_of(op, false)),
            };
            format!("have {total} over their {}{window}", stream.many)
        }
        Agg::ActiveDays => phrase(&stream.active, format!("on {a} {n} {}", if one { "day" } else { "different days" })),
        Agg::BestDay => {
            phrase(&stream.verb, format!("{a} {n} {} on one day", if one { &stream.one } else { &stream.many }))
        }
        Agg::BestWeek | Agg::BestMonth => {
            let unit = if agg == Agg::BestWeek { "week" } else { "month" };
            phrase(
                &stream.verb,
                format!("{a} {n} {} within one calendar {unit}", if one { &stream.one } else { &stream.many }),
            )
        }
        Agg::StreakDays => phrase(&stream.active, format!("on {a} {n} consecutive {}", days("day"))),
        Agg::StreakWeeks => phrase(&stream.active, format!("in {a} {n} consecutive {}", days("week"))),
        Agg::CurrentStreakDays => phrase(
            &stream.active,
            format!("on each day of a run of {a} {n} consecutive {} up to today or yesterday", days("day")),
        ),
        // Dates are worded by `event_date`.
        Agg::First | Agg::Last => format!("{} ({} {op} {n}){window}", stream.verb, agg.name()),
    }
}

/// `last(S) OP D` / `first(S) OP D`: compares the last (first) row's instant with D; a
/// member without rows fails, so the negations say "never".
fn event_date(agg: Agg, stream: &Stream, date: &str, op: CmpOp, negated: bool, window: &str) -> Words {
    let (p, base) = (&stream.participle, &stream.base);
    let which = if agg == Agg::First { "first" } else { "last" };
    // The last row is after D exactly when some row is; the first row is before D exactly
    // when some row is.
    let some_row = match agg {
        Agg::First => matches!(op, CmpOp::Le | CmpOp::Lt),
        _ => matches!(op, CmpOp::Ge | CmpOp::Gt),
    };
    let text = match (op, some_row, negated) {
        (_, true, false) => format!("have {p} {}{window}", when(op, date)),
        (_, true, true) => format!("have not {p} {}{window}", when(op, date)),
        (CmpOp::Eq, _, false) => format!("{which} {p} {}{window}", when(CmpOp::Eq, date)),
        (CmpOp::Eq, _, true) => format!("did not {which} {base} {}{window}", when(CmpOp::Eq, date)),
        (CmpOp::Ne, _, false) => format!("have {p}{window}, but not {which} {}", when(CmpOp::Eq, date)),
        (CmpOp::Ne, _, true) => {
            return compound(format!("have either never {p}{window} or {which} {p} {}", when(CmpOp::Eq, date)));
        }
        // Last at or before D: some row, and none after D (first at or after D: none before).
        (_, false, false) => format!("have {p}{window}, but never {}", when(op.negated(), date)),
        (_, false, true) => {
            return compound(format!("have either never {p}{window} or {p} {}", when(op.negated(), date)));
        }
    };
    text.into()
}

/// `user.NAME OP VALUE`: a member without a value (NULL) meets no comparison, so the negation
/// is "do not have".
fn attribute(name: &str, op: CmpOp, value: &AttributeValue, negated: bool) -> String {
    let shown = name.replace('_', " ");
    let have = if negated { "do not have" } else { "have" };
    match value {
        AttributeValue::Number(v) => match op {
            CmpOp::Ne => format!("{have} a {shown} other than {}", number(*v)),
            op => format!("{have} a {shown} of {} {}", amount(op), number(*v)),
        },
        AttributeValue::Text(text) if op == CmpOp::Ne => format!("{have} a {shown} other than \"{text}\""),
        AttributeValue::Text(text) => format!("{have} the {shown} \"{text}\""),
        AttributeValue::TextIn(items) => format!("{have} the {shown} {}", quoted_list(items, "or").1),
        AttributeValue::Bool(b) => {
            let set = if op == CmpOp::Eq { *b } else { !*b };
            format!("{have} {shown} set to {set}")
        }
        AttributeValue::Date(date) => format!("{have} a {shown} {}", when(op, &date.value)),
    }
}

/// The longest run of consecutive calendar days with a sign-in, compared with `value`.
fn consecutive_logins(op: CmpOp, value: f64) -> String {
    let n = number(value);
    let (days, streak) = if value == 1.0 { ("consecutive day", "day") } else { ("consecutive days", "days") };
    match op {
        CmpOp::Ge => format!("have signed in on at least {n} {days}"),
        CmpOp::Gt => format!("have signed in on more than {n} {days}"),
        CmpOp::Le => format!("have never signed in on more than {n} {days}"),
        CmpOp::Lt => format!("have never signed in on {n} or more consecutive days"),
        CmpOp::Eq => format!("have a longest sign-in streak of exactly {n} {streak}"),
        CmpOp::Ne => format!("do not have a longest sign-in streak of exactly {n} {streak}"),
    }
}

/// A comparison with a date literal in words (`Ne` is worded by the caller as "not" + `Eq`).
///
/// A date without a time means its first instant, so "on or after 2026-06-01" and "before
/// 2026-06-01" read as written, but `> '2026-06-01'` is true from 00:00:00.000001 that day:
/// those comparisons name the instant, "after 2026-06-01 00:00".
fn when(op: CmpOp, literal: &str) -> String {
    let text = literal.trim();
    let day = match instant::parse_iso(text, false) {
        // `YYYY`, `YYYY-MM` and `YYYY-MM-DD` have no time part.
        Ok(stamp) if text.len() <= 10 => Some(stamp.wall.date().to_string()),
        _ => None,
    };
    match (op, day) {
        (CmpOp::Ge, Some(day)) => format!("on or after {day}"),
        (CmpOp::Lt, Some(day)) => format!("before {day}"),
        (op, Some(day)) => format!("{} {day} 00:00", at(op)),
        (CmpOp::Lt, None) => format!("before {text}"),
        (op, None) => format!("{} {text}", at(op)),
    }
}

fn at(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Ge => "at or after",
        CmpOp::Gt => "after",
        CmpOp::Le => "at or before",
        CmpOp::Lt => "before",
        CmpOp::Eq | CmpOp::Ne => "at exactly",
    }
}

/// A number as people write it: no ".0" on whole numbers.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{}", value as i64) } else { value.to_string() }
}

#[cfg(test)]
mod tests {
    use super::in_words;
    use crate::predicates::formula::parse;

    fn words(text: &str) -> String {
        in_words(&parse(text).expect("a valid formula"))
    }

    /// Each `(formula, words)` pair, and the formula under NOT with the negated words.
    fn assert_words(cases: &[(&str, &str, &str)]) {
        for (formula, positive, negative) in cases {
            assert_eq!(words(formula), *positive, "words of {formula}");
            assert_eq!(words(&format!("NOT {formula}")), *negative, "words of NOT {formula}");
        }
    }

    #[test]
    fn built_in_count_metrics_say_what_was_counted_for_every_operator() {
        assert_words(&[
            (
                "metric.posts >= 5",
                "have written at least 5 posts or comments",
                "have written fewer than 5 posts or comments",
            ),
            ("metric.posts > 1", "have written more than 1 post or comment", "have written at most 1 post or comment"),
            (
                "metric.posts <= 5",
                "have written at most 5 posts or comments",
                "have written more than 5 posts or comments",
            ),
            (
                "metric.posts < 5",
                "have written fewer than 5 posts or comments",
                "have written at least 5 posts or comments",
            ),
            (
                "metric.posts = 5",
                "have written exactly 5 posts or comments",
                "have not written exactly 5 posts or comments",
            ),
            (
                "metric.posts != 5",
                "have not written exactly 5 posts or comments",
                "have written exactly 5 posts or comments",
            ),
        ]);
    }

    #[test]
    fn every_built_in_metric_has_its_own_verb_and_noun() {
        assert_words(&[
            (
                "metric.posts.question >= 2",
                "have written at least 2 posts of kind \"question\"",
                "have written fewer than 2 posts of kind \"question\"",
            ),
            ("metric.distinct_threads >= 1", "have posted in at least 1 thread", "have posted in fewer than 1 thread"),
            (
                "metric.distinct_threads.reply > 4",
                "have written posts of kind \"reply\" in more than 4 different threads",
                "have written posts of kind \"reply\" in at most 4 different threads",
            ),
            ("metric.connections >= 10", "have made at least 10 connections", "have made fewer than 10 connections"),
            ("metric.logins >= 3", "have signed in at least 3 times", "have signed in fewer than 3 times"),
            (
                "metric.trainings_enrolled >= 2",
                "have enrolled in at least 2 different trainings",
                "have enrolled in fewer than 2 different trainings",
            ),
            (
                "metric.trainings_completed = 1",
                "have completed exactly 1 training",
                "have not completed exactly 1 training",
            ),
            ("metric.trainings_passed >= 1", "have passed at least 1 training", "have passed fewer than 1 training"),
        ]);
    }

    #[test]
    fn host_metrics_are_amounts_compared_with_every_operator() {
        assert_words(&[
            (
                "metric.net_accepted_solutions >= 3",
                "have a net_accepted_solutions of at least 3",
                "have a net_accepted_solutions of less than 3",
            ),
            ("metric.karma > 0.5", "have a karma of more than 0.5", "have a karma of at most 0.5"),
            ("metric.karma <= -1", "have a karma of at most -1", "have a karma of more than -1"),
            ("metric.karma < 2", "have a karma of less than 2", "have a karma of at least 2"),
            ("metric.karma = 2", "have a karma of exactly 2", "have a karma other than 2"),
            ("metric.karma != 2", "have a karma other than 2", "have a karma of exactly 2"),
        ]);
    }

    #[test]
    fn roles_are_quoted_listed_once_and_negate_to_none_of_them() {
        assert_words(&[
            ("roles in ['Expert']", "have the role \"Expert\"", "do not have the role \"Expert\""),
            ("roles in ['Expert', 'Expert']", "have the role \"Expert\"", "do not have the role \"Expert\""),
            (
                "roles in ['Spammer', 'Bot']",
                "have one of the roles \"Spammer\" or \"Bot\"",
                "have none of the roles \"Spammer\" or \"Bot\"",
            ),
            (
                "roles in ['A', 'B', 'C']",
                "have one of the roles \"A\", \"B\" or \"C\"",
                "have none of the roles \"A\", \"B\" or \"C\"",
            ),
        ]);
    }

    #[test]
    fn user_id_lists_count_the_members_without_naming_their_ids() {
        assert_words(&[
            ("user_id in [7]", "are the one member listed by id", "are not the one member listed by id"),
            (
                "user_id in [7, 8, 7]",
                "are one of the 2 members listed by id",
                "are not one of the 2 members listed by id",
            ),
        ]);
    }

    #[test]
    fn a_setting_other_than_default_needs_a_value_of_the_members_own() {
        assert_words(&[
            (
                "setting.bio != 'default'",
                "have their bio setting set to a non-empty value other than \"default\"",
                "have their bio setting unset, empty or \"default\"",
            ),
            (
                "setting.bio != ''",
                "have their bio setting set to a non-empty value other than \"default\"",
                "have their bio setting unset, empty or \"default\"",
            ),
            (
                "setting.profile.language != 'en'",
                "have their profile.language setting set to a non-empty value other than \"default\" or \"en\"",
                "have their profile.language setting unset, empty, \"default\" or \"en\"",
            ),
        ]);
    }

    #[test]
    fn a_setting_equal_to_a_value_is_exactly_that_value() {
        assert_words(&[
            (
                "setting.profile.language = 'en'",
                "have their profile.language setting set to \"en\"",
                "do not have their profile.language setting set to \"en\"",
            ),
            (
                "setting.theme = 'default'",
                "have their theme setting set to \"default\"",
                "do not have their theme setting set to \"default\"",
            ),
            (
                "setting.bio = ''",
                "have their bio setting set to an empty value",
                "do not have their bio setting set to an empty value",
            ),
        ]);
    }

    #[test]
    fn consecutive_sign_in_days_read_as_a_streak_for_every_operator() {
        let clause = "setting.user.max_consecutive_logins";
        let cases = [
            (
                ">= 7",
                "have signed in on at least 7 consecutive days",
                "have never signed in on 7 or more consecutive days",
            ),
            (
                ">= 1",
                "have signed in on at least 1 consecutive day",
                "have never signed in on 1 or more consecutive days",
            ),
            (
                "> 7",
                "have signed in on more than 7 consecutive days",
                "have never signed in on more than 7 consecutive days",
            ),
            (
                "<= 7",
                "have never signed in on more than 7 consecutive days",
                "have signed in on more than 7 consecutive days",
            ),
            (
                "< 7",
                "have never signed in on 7 or more consecutive days",
                "have signed in on at least 7 consecutive days",
            ),
            (
                "= 7",
                "have a longest sign-in streak of exactly 7 days",
                "do not have a longest sign-in streak of exactly 7 days",
            ),
            (
                "!= 7",
                "do not have a longest sign-in streak of exactly 7 days",
                "have a longest sign-in streak of exactly 7 days",
            ),
        ];
        for (rest, positive, negative) in cases {
            assert_words(&[(&format!("{clause} {rest}"), positive, negative)]);
        }
    }

    #[test]
    fn avatar_changed_reads_the_same_however_the_boolean_is_written() {
        assert_words(&[
            ("avatar_changed = true", "have changed their avatar", "have not changed their avatar"),
            ("avatar_changed != false", "have changed their avatar", "have not changed their avatar"),
            ("avatar_changed = false", "have not changed their avatar", "have changed their avatar"),
            ("avatar_changed != true", "have not changed their avatar", "have changed their avatar"),
        ]);
    }

    #[test]
    fn a_registration_date_of_a_whole_day_reads_as_that_day_where_that_is_exact() {
        assert_words(&[
            ("registration_date >= '2026-06-01'", "registered on or after 2026-06-01", "registered before 2026-06-01"),
            ("registration_date < '2026'", "registered before 2026-01-01", "registered on or after 2026-01-01"),
            (
                "registration_date > '2026-06'",
                "registered after 2026-06-01 00:00",
                "registered at or before 2026-06-01 00:00",
            ),
            (
                "registration_date <= '2026-06-01'",
                "registered at or before 2026-06-01 00:00",
                "registered after 2026-06-01 00:00",
            ),
            (
                "registration_date = '2026-06-01'",
                "registered at exactly 2026-06-01 00:00",
                "did not register at exactly 2026-06-01 00:00",
            ),
            (
                "registration_date != '2026-06-01'",
                "did not register at exactly 2026-06-01 00:00",
                "registered at exactly 2026-06-01 00:00",
            ),
        ]);
    }

    #[test]
    fn a_registration_date_with_a_time_is_written_as_given() {
        assert_words(&[
            (
                "registration_date >= '2026-06-01T09:30:00Z'",
                "registered at or after 2026-06-01T09:30:00Z",
                "registered before 2026-06-01T09:30:00Z",
            ),
            (
                "registration_date > '2026-06-01T09:30+02:00'",
                "registered after 2026-06-01T09:30+02:00",
                "registered at or before 2026-06-01T09:30+02:00",
            ),
        ]);
    }

    #[test]
    fn a_sign_in_date_counts_members_who_never_signed_in_correctly_for_every_operator() {
        assert_words(&[
            (
                "signin_date >= '2026-06-01'",
                "have signed in on or after 2026-06-01",
                "have not signed in on or after 2026-06-01",
            ),
            (
                "signin_date > '2026-06-01'",
                "have signed in after 2026-06-01 00:00",
                "have not signed in after 2026-06-01 00:00",
            ),
            (
                "signin_date <= '2026-06-01'",
                "have signed in, but never after 2026-06-01 00:00",
                "have either never signed in or signed in after 2026-06-01 00:00",
            ),
            (
                "signin_date < '2026-06-01'",
                "have signed in, but never on or after 2026-06-01",
                "have either never signed in or signed in on or after 2026-06-01",
            ),
            (
                "signin_date = '2026-06-01T09:30:00Z'",
                "last signed in at exactly 2026-06-01T09:30:00Z",
                "did not last sign in at exactly 2026-06-01T09:30:00Z",
            ),
            (
                "signin_date != '2026-06-01T09:30:00Z'",
                "have signed in, but not last at exactly 2026-06-01T09:30:00Z",
                "have either never signed in or last signed in at exactly 2026-06-01T09:30:00Z",
            ),
        ]);
    }

    #[test]
    fn time_since_registration_reads_as_membership_for_every_operator() {
        assert_words(&[
            (
                "time_since_registration >= '3 months'",
                "have been members for at least 3 months",
                "have been members for less than 3 months",
            ),
            (
                "time_since_registration > '1 years'",
                "have been members for more than 1 year",
                "have been members for at most 1 year",
            ),
            (
                "time_since_registration <= '2 weeks'",
                "have been members for at most 2 weeks",
                "have been members for more than 2 weeks",
            ),
            (
                "time_since_registration < '3 months'",
                "have been members for less than 3 months",
                "have been members for at least 3 months",
            ),
            (
                "time_since_registration = '30 days'",
                "have been members for exactly 30 days",
                "have not been members for exactly 30 days",
            ),
            (
                "time_since_registration != '1 day'",
                "have not been members for exactly 1 day",
                "have been members for exactly 1 day",
            ),
        ]);
    }

    #[test]
    fn a_metric_and_a_role_read_as_one_sentence() {
        assert_eq!(
            words("metric.net_accepted_solutions >= 3 AND roles in ['Expert']"),
            "have a net_accepted_solutions of at least 3 and have the role \"Expert\""
        );
    }

    #[test]
    fn a_chain_of_one_operator_needs_no_brackets() {
        assert_eq!(
            words("metric.posts >= 1 AND (metric.logins >= 2 AND metric.connections >= 3)"),
            "have written at least 1 post or comment and have signed in at least 2 times and have made at least 3 connections"
        );
        assert_eq!(
            words("(avatar_changed = true OR metric.logins >= 2) OR metric.connections >= 3"),
            "have changed their avatar or have signed in at least 2 times or have made at least 3 connections"
        );
    }

    #[test]
    fn an_or_nested_under_and_is_bracketed() {
        assert_eq!(
            words("avatar_changed = true AND (signin_date >= \"2024-01-01\" OR user_id in [1, 2])"),
            "have changed their avatar and (have signed in on or after 2024-01-01 or are one of the 2 members listed by id)"
        );
    }

    #[test]
    fn an_and_nested_under_or_is_bracketed() {
        assert_eq!(
            words("roles in ['Moderator'] OR metric.posts >= 10 AND avatar_changed = true"),
            "have the role \"Moderator\" or (have written at least 10 posts or comments and have changed their avatar)"
        );
    }

    #[test]
    fn not_over_a_clause_reads_as_the_opposite_clause() {
        assert_eq!(
            words("setting.user.max_consecutive_logins >= 7 AND NOT time_since_registration < '3 months'"),
            "have signed in on at least 7 consecutive days and have been members for at least 3 months"
        );
    }

    #[test]
    fn not_over_an_or_reads_as_neither_clause() {
        assert_eq!(
            words("NOT (roles in ['Spammer', 'Bot'] OR avatar_changed = false)"),
            "have none of the roles \"Spammer\" or \"Bot\" and have changed their avatar"
        );
    }

    #[test]
    fn not_over_an_and_reads_as_either_clause_failing() {
        assert_eq!(
            words("metric.posts >= 1 AND NOT (roles in ['Spammer'] AND metric.logins < 2)"),
            "have written at least 1 post or comment and (do not have the role \"Spammer\" or have signed in at least 2 times)"
        );
    }

    #[test]
    fn double_not_cancels_out() {
        assert_eq!(words("NOT NOT roles in ['Expert']"), "have the role \"Expert\"");
        assert_eq!(
            words("NOT (NOT (metric.posts >= 1 OR avatar_changed = true))"),
            words("metric.posts >= 1 OR avatar_changed = true")
        );
    }

    #[test]
    fn a_clause_that_says_or_itself_is_bracketed_inside_and() {
        assert_eq!(
            words("avatar_changed = true AND NOT signin_date < '2026-01-01'"),
            "have changed their avatar and (have either never signed in or signed in on or after 2026-01-01)"
        );
        assert_eq!(
            words("avatar_changed = true OR NOT signin_date < '2026-01-01'"),
            "have changed their avatar or have either never signed in or signed in on or after 2026-01-01"
        );
    }

    #[test]
    fn deep_nesting_brackets_each_level() {
        assert_eq!(
            words(
                "metric.posts >= 1 AND (metric.logins >= 1 OR (metric.connections >= 1 AND NOT avatar_changed = true))"
            ),
            "have written at least 1 post or comment and (have signed in at least 1 time or \
             (have made at least 1 connection and have not changed their avatar))"
        );
    }

    #[test]
    fn aggregates_say_what_was_counted_over_which_window_and_negate_by_their_operator() {
        assert_words(&[
            (
                "count(posts, within = '30 days') >= 10",
                "have written at least 10 posts or comments in the last 30 days",
                "have written fewer than 10 posts or comments in the last 30 days",
            ),
            (
                "count(likes_received) >= 100",
                "have at least 100 entries in likes received",
                "have fewer than 100 entries in likes received",
            ),
            (
                "distinct(posts, kind = 'reply') >= 5",
                "have written posts of kind \"reply\" in at least 5 different threads",
                "have written posts of kind \"reply\" in fewer than 5 different threads",
            ),
            (
                "streak_weeks(posts) >= 4",
                "have posted in at least 4 consecutive weeks",
                "have posted in fewer than 4 consecutive weeks",
            ),
            (
                "active_days(logins, within = '1 month') >= 20",
                "have signed in on at least 20 different days in the last 1 month",
                "have signed in on fewer than 20 different days in the last 1 month",
            ),
            (
                "sum(videos, kind = 'lectora-101') >= 120",
                "have a total value of at least 120 over their entries of kind \"lectora-101\" in videos",
                "have a total value of less than 120 over their entries of kind \"lectora-101\" in videos",
            ),
            (
                "best_week(connections) >= 5",
                "have made at least 5 connections within one calendar week",
                "have made fewer than 5 connections within one calendar week",
            ),
            (
                "count(posts, since = '2026-01-01') = 1",
                "have written exactly 1 post or comment on or after 2026-01-01",
                "have not written exactly 1 post or comment on or after 2026-01-01",
            ),
        ]);
    }

    #[test]
    fn first_and_last_read_like_the_sign_in_date_for_any_source() {
        assert_words(&[
            (
                "last(posts) >= '2026-01-01'",
                "have posted on or after 2026-01-01",
                "have not posted on or after 2026-01-01",
            ),
            ("first(posts) < '2026-01-01'", "have posted before 2026-01-01", "have not posted before 2026-01-01"),
            (
                "first(likes) >= '2026-01-01'",
                "have had an entry in likes, but never before 2026-01-01",
                "have either never had an entry in likes or had an entry in likes before 2026-01-01",
            ),
        ]);
    }

    #[test]
    fn member_attributes_and_numeric_settings_read_as_what_the_member_has() {
        assert_words(&[
            ("user.trust_level >= 2", "have a trust level of at least 2", "do not have a trust level of at least 2"),
            (
                "user.locale in ['en', 'de']",
                "have the locale \"en\" or \"de\"",
                "do not have the locale \"en\" or \"de\"",
            ),
            ("user.active = true", "have active set to true", "do not have active set to true"),
            (
                "setting.level >= 3",
                "have their level setting set to a number of at least 3",
                "do not have their level setting set to a number of at least 3",
            ),
        ]);
    }
}
