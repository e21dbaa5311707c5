//! The badge formula language: the AST, its canonical printer, the public
//! `parse` entry point and `FormulaError` with caret rendering.
//!
//! The lexer and parser live in `parse.rs`; this file owns everything a caller
//! sees. The AST is plain data so the Polars compiler can match on it freely.

pub mod compile;
mod parse;
#[cfg(test)]
mod tests;
pub mod words;

use crate::features::Agg;
use std::fmt;

/// Deepest tree (and deepest `(`/`NOT` nesting) that `parse` accepts.
///
/// Every consumer of the AST (Display, Drop, the Polars compiler) recurses on
/// it, so an unbounded depth would let one pasted formula overflow a 2 MiB
/// worker-thread stack. An AND/OR chain of n clauses is n levels deep (a clause is one).
pub const MAX_DEPTH: usize = 256;

/// Parses formula text into a tree, or reports the first problem in reading order.
pub fn parse(text: &str) -> Result<Formula, FormulaError> {
    parse::parse(text)
}

#[derive(Debug, Clone, PartialEq)]
pub enum Formula {
    Or(Box<Formula>, Box<Formula>),
    And(Box<Formula>, Box<Formula>),
    Not(Box<Formula>),
    Clause(Clause),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
    Ne,
}

/// Byte offsets into the formula text, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

/// One comparison. Spans of names and keys cover exactly the NAME/KEY text
/// (without `metric.`/`setting.`); spans of dates and durations cover the
/// whole literal including its quotes, because escapes make the raw text and
/// the value differ in length.
#[derive(Debug, Clone, PartialEq)]
pub enum Clause {
    Metric {
        name: Spanned<String>,
        op: CmpOp,
        value: f64,
    },
    RolesIn {
        roles: Vec<String>,
    },
    UserIdIn {
        ids: Vec<i64>,
    },
    /// `op` is only `Eq` or `Ne`.
    Setting {
        key: Spanned<String>,
        op: CmpOp,
        value: String,
    },
    MaxConsecutiveLogins {
        op: CmpOp,
        value: f64,
    },
    /// `op` is only `Eq` or `Ne`.
    AvatarChanged {
        op: CmpOp,
        value: bool,
    },
    RegistrationDate {
        op: CmpOp,
        date: Spanned<String>,
    },
    SigninDate {
        op: CmpOp,
        date: Spanned<String>,
    },
    TimeSinceRegistration {
        op: CmpOp,
        duration: Spanned<String>,
    },
    /// `AGG(SOURCE[, FILTER]...) OP NUMBER`: an aggregate over the member's events. `agg` is
    /// never `First` or `Last` (those are [`Clause::EventDate`]).
    Aggregate {
        agg: Agg,
        source: Spanned<String>,
        filters: Vec<Filter>,
        op: CmpOp,
        value: f64,
    },
    /// `first(SOURCE[, FILTER]...) OP 'DATE'` or `last(...)`: `agg` is `First` or `Last`.
    EventDate {
        agg: Agg,
        source: Spanned<String>,
        filters: Vec<Filter>,
        op: CmpOp,
        date: Spanned<String>,
    },
    /// `user.NAME OP VALUE`: a column of the users source.
    Attribute {
        name: Spanned<String>,
        op: CmpOp,
        value: AttributeValue,
    },
    /// `setting.KEY OP NUMBER`: the setting's value read as a number.
    SettingNumber {
        key: Spanned<String>,
        op: CmpOp,
        value: f64,
    },
}

/// Which of a source's rows an aggregate reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `kind = 'K'` (one kind) or `kind in ['A', 'B']`.
    Kind(Vec<String>),
    /// `within = 'N days|weeks|months|years'`: rows from N before the evaluation instant.
    Within(Spanned<String>),
    /// `since = 'DATE'`: rows at or after DATE.
    Since(Spanned<String>),
}

/// What a `user.NAME` clause compares the column with; it decides how the column is read.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// A number: every operator.
    Number(f64),
    /// Quoted text with `=` or `!=`.
    Text(String),
    /// `in ['a', 'b']` (the clause's `op` is `Eq`).
    TextIn(Vec<String>),
    /// `true` or `false` with `=` or `!=`.
    Bool(bool),
    /// A quoted date with `<`, `<=`, `>` or `>=`: the column is a timestamp.
    Date(Spanned<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct FormulaError {
    pub span: Span,
    pub message: String,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Ge => ">=",
            CmpOp::Gt => ">",
            CmpOp::Le => "<=",
            CmpOp::Lt => "<",
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
        }
    }

    /// The operator that holds exactly when this one does not (on non-null values).
    pub fn negated(self) -> CmpOp {
        match self {
            CmpOp::Ge => CmpOp::Lt,
            CmpOp::Gt => CmpOp::Le,
            CmpOp::Le => CmpOp::Gt,
            CmpOp::Lt => CmpOp::Ge,
            CmpOp::Eq => CmpOp::Ne,
            CmpOp::Ne => CmpOp::Eq,
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Formula {
    /// All clauses, left to right as they appear in the text.
    pub fn clauses(&self) -> Vec<&Clause> {
        // A work stack instead of recursion: callers may hold hand-built trees
        // deeper than MAX_DEPTH.
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(node) = stack.pop() {
            match node {
                Formula::Or(l, r) | Formula::And(l, r) => {
                    stack.push(r);
                    stack.push(l);
                }
                Formula::Not(inner) => stack.push(inner),
                Formula::Clause(c) => out.push(c),
            }
        }
        out
    }

    /// The same tree with every span zeroed, for comparing trees parsed from
    /// different texts.
    pub fn strip_spans(&self) -> Formula {
        let strip = |b: &Formula| Box::new(b.strip_spans());
        match self {
            Formula::Or(l, r) => Formula::Or(strip(l), strip(r)),
            Formula::And(l, r) => Formula::And(strip(l), strip(r)),
            Formula::Not(inner) => Formula::Not(strip(inner)),
            Formula::Clause(c) => Formula::Clause(c.strip_spans()),
        }
    }

    /// Equality that ignores spans.
    pub fn same_tree(&self, other: &Formula) -> bool {
        self.strip_spans() == other.strip_spans()
    }

    fn precedence(&self) -> u8 {
        match self {
            Formula::Or(..) => 1,
            Formula::And(..) => 2,
            Formula::Not(_) => 3,
            Formula::Clause(_) => 4,
        }
    }
}

impl Clause {
    /// The same clause with every span zeroed.
    pub fn strip_spans(&self) -> Clause {
        let mut out = self.clone();
        match &mut out {
            Clause::Metric { name: s, .. }
            | Clause::Setting { key: s, .. }
            | Clause::RegistrationDate { date: s, .. }
            | Clause::SigninDate { date: s, .. }
            | Clause::TimeSinceRegistration { duration: s, .. }
            | Clause::SettingNumber { key: s, .. } => s.span = Span::new(0, 0),
            Clause::Aggregate { source, filters, .. } => strip_source(source, filters),
            Clause::EventDate { source, filters, date, .. } => {
                strip_source(source, filters);
                date.span = Span::new(0, 0);
            }
            Clause::Attribute { name, value, .. } => {
                name.span = Span::new(0, 0);
                if let AttributeValue::Date(date) = value {
                    date.span = Span::new(0, 0);
                }
            }
            Clause::RolesIn { .. }
            | Clause::UserIdIn { .. }
            | Clause::MaxConsecutiveLogins { .. }
            | Clause::AvatarChanged { .. } => {}
        }
        out
    }
}

impl Clause {
    /// An aggregate clause's call without its comparison: `count(posts, kind = 'reply')`.
    pub fn call(&self) -> Option<String> {
        struct Call<'a>(Agg, &'a Spanned<String>, &'a [Filter]);
        impl fmt::Display for Call<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_call(f, self.0, self.1, self.2)
            }
        }
        match self {
            Clause::Aggregate { agg, source, filters, .. } | Clause::EventDate { agg, source, filters, .. } => {
                Some(Call(*agg, source, filters).to_string())
            }
            _ => None,
        }
    }
}

fn strip_source(source: &mut Spanned<String>, filters: &mut [Filter]) {
    source.span = Span::new(0, 0);
    for filter in filters {
        if let Filter::Within(s) | Filter::Since(s) = filter {
            s.span = Span::new(0, 0);
        }
    }
}

/// Canonical form: re-parses to the same tree (ignoring spans) as long as the
/// tree is one `parse` could have produced (valid names, non-empty lists,
/// finite numbers, no `Setting` with the reserved key).
impl fmt::Display for Formula {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Formula::Or(l, r) => write_binary(f, l, "OR", r, 1),
            Formula::And(l, r) => write_binary(f, l, "AND", r, 2),
            Formula::Not(inner) => {
                f.write_str("NOT ")?;
                write_child(f, inner, inner.precedence() < 3)
            }
            Formula::Clause(c) => c.fmt(f),
        }
    }
}

fn write_binary(
    f: &mut fmt::Formatter<'_>,
    left: &Formula,
    keyword: &str,
    right: &Formula,
    precedence: u8,
) -> fmt::Result {
    // Left-associative: an equal-precedence right child needs parentheses
    // to keep its shape, an equal-precedence left child does not.
    write_child(f, left, left.precedence() < precedence)?;
    write!(f, " {keyword} ")?;
    write_child(f, right, right.precedence() <= precedence)
}

fn write_child(f: &mut fmt::Formatter<'_>, child: &Formula, parens: bool) -> fmt::Result {
    if parens { write!(f, "({child})") } else { write!(f, "{child}") }
}

impl fmt::Display for Clause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Clause::Metric { name, op, value } => write!(f, "metric.{} {op} {value}", name.value),
            Clause::RolesIn { roles } => {
                f.write_str("roles in ")?;
                write_list(f, roles, |f, r| write_quoted(f, r))
            }
            Clause::UserIdIn { ids } => {
                f.write_str("user_id in ")?;
                write_list(f, ids, |f, id| write!(f, "{id}"))
            }
            Clause::Setting { key, op, value } => {
                write!(f, "setting.{} {op} ", key.value)?;
                write_quoted(f, value)
            }
            Clause::MaxConsecutiveLogins { op, value } => {
                write!(f, "setting.user.max_consecutive_logins {op} {value}")
            }
            Clause::AvatarChanged { op, value } => write!(f, "avatar_changed {op} {value}"),
            Clause::RegistrationDate { op, date } => write_literal(f, "registration_date", *op, date),
            Clause::SigninDate { op, date } => write_literal(f, "signin_date", *op, date),
            Clause::TimeSinceRegistration { op, duration } => {
                write_literal(f, "time_since_registration", *op, duration)
            }
            Clause::Aggregate { agg, source, filters, op, value } => {
                write_call(f, *agg, source, filters)?;
                write!(f, " {op} {value}")
            }
            Clause::EventDate { agg, source, filters, op, date } => {
                write_call(f, *agg, source, filters)?;
                write!(f, " {op} ")?;
                write_quoted(f, &date.value)
            }
            Clause::Attribute { name, op, value } => {
                write!(f, "user.{}", name.value)?;
                match value {
                    AttributeValue::Number(n) => write!(f, " {op} {n}"),
                    AttributeValue::Text(text) => {
                        write!(f, " {op} ")?;
                        write_quoted(f, text)
                    }
                    AttributeValue::TextIn(items) => {
                        f.write_str(" in ")?;
                        write_list(f, items, |f, t| write_quoted(f, t))
                    }
                    AttributeValue::Bool(b) => write!(f, " {op} {b}"),
                    AttributeValue::Date(date) => {
                        write!(f, " {op} ")?;
                        write_quoted(f, &date.value)
                    }
                }
            }
            Clause::SettingNumber { key, op, value } => write!(f, "setting.{} {op} {value}", key.value),
        }
    }
}

/// `count(posts, kind = 'reply', within = '30 days')`.
fn write_call(f: &mut fmt::Formatter<'_>, agg: Agg, source: &Spanned<String>, filters: &[Filter]) -> fmt::Result {
    write!(f, "{}({}", agg.name(), source.value)?;
    for filter in filters {
        f.write_str(", ")?;
        match filter {
            Filter::Kind(kinds) if kinds.len() == 1 => {
                f.write_str("kind = ")?;
                write_quoted(f, &kinds[0])?;
            }
            Filter::Kind(kinds) => {
                f.write_str("kind in ")?;
                write_list(f, kinds, |f, k| write_quoted(f, k))?;
            }
            Filter::Within(span) => {
                f.write_str("within = ")?;
                write_quoted(f, &span.value)?;
            }
            Filter::Since(date) => {
                f.write_str("since = ")?;
                write_quoted(f, &date.value)?;
            }
        }
    }
    f.write_str(")")
}

fn write_literal(f: &mut fmt::Formatter<'_>, field: &str, op: CmpOp, text: &Spanned<String>) -> fmt::Result {
    write!(f, "{field} {op} ")?;
    write_quoted(f, &text.value)
}

fn write_list<T>(
    f: &mut fmt::Formatter<'_>,
    items: &[T],
    mut item: impl FnMut(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
) -> fmt::Result {
    f.write_str("[")?;
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        item(f, x)?;
    }
    f.write_str("]")
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("'")?;
    for c in s.chars() {
        if c == '\'' || c == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("'")
}

impl FormulaError {
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        FormulaError { span, message: message.into() }
    }

    /// 1-based column in characters (not bytes) of span.start.
    pub fn column(&self, text: &str) -> usize {
        chars_before(text, self.span.start) + 1
    }

    /// The text flattened to one line, then a caret line under the span
    /// (one `^` per character, at least one) followed by the message.
    pub fn render(&self, text: &str) -> String {
        // Newlines and tabs become single spaces so that one character is
        // one column and the caret lines up.
        let line: String = text.chars().map(|c| if c.is_whitespace() || c.is_control() { ' ' } else { c }).collect();
        let start = chars_before(text, self.span.start);
        let width = chars_before(text, self.span.end).saturating_sub(start).max(1);
        let pad = " ".repeat(start);
        let carets = "^".repeat(width);
        format!("{line}\n{pad}{carets} {}", self.message)
    }
}

/// Number of characters that start before `byte`; tolerant of offsets past
/// the end or inside a character, so a span from another text cannot panic.
fn chars_before(text: &str, byte: usize) -> usize {
    text.char_indices().take_while(|(i, _)| *i < byte).count()
}

/// `column N: message`. Without the text only the byte offset is known, so
/// N here is `span.start + 1`: equal to [`FormulaError::column`] for ASCII
/// text. Use `column`/`render` when the text is at hand.
impl fmt::Display for FormulaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.span.start.saturating_add(1), self.message)
    }
}

impl std::error::Error for FormulaError {}
