//! Lexer and recursive-descent parser for badge formulas.
//!
//! The lexer is pulled one token at a time by the parser (not run up front)
//! so that the error reported is always the first problem in reading order.
//! Errors about something missing point at a position (one caret); errors
//! about something present and wrong underline it.

use super::{AttributeValue, Clause, CmpOp, Filter, Formula, FormulaError, MAX_DEPTH, Span, Spanned};
use crate::features::Agg;

const CLAUSE_KINDS: &str = "metric.NAME, roles in [...], user_id in [...], setting.KEY, \
     avatar_changed, registration_date, signin_date, time_since_registration, user.NAME or an \
     aggregate such as count(SOURCE)";
const FILTER_KINDS: &str = "kind = 'K', kind in ['A', 'B'], within = 'N days' or since = 'DATE'";
const OPERATORS: [(&str, CmpOp); 6] =
    [(">=", CmpOp::Ge), ("<=", CmpOp::Le), ("!=", CmpOp::Ne), (">", CmpOp::Gt), ("<", CmpOp::Lt), ("=", CmpOp::Eq)];
/// Operators people type from other languages, and what to write instead.
const MISTYPED_OPERATORS: [(&str, &str); 4] = [
    ("==", "use '=' to compare"),
    ("=>", "use '>=' for at least"),
    ("=<", "use '<=' for at most"),
    ("<>", "use '!=' for not equal"),
];
const MAX_LOGINS_KEY: &str = "user.max_consecutive_logins";
/// Longest piece of user text quoted in a message, so a pasted megabyte
/// does not end up in every error.
const MAX_SHOWN_CHARS: usize = 40;

pub(super) fn parse(text: &str) -> Result<Formula, FormulaError> {
    Parser::new(text).formula()
}

fn err(span: Span, message: impl Into<String>) -> FormulaError {
    FormulaError::new(span, message)
}

fn point(at: usize) -> Span {
    Span::new(at, at)
}

/// User text for a message: single-quoted, control characters escaped,
/// long text cut short.
fn quote(s: &str) -> String {
    let mut out = String::from("'");
    for (i, c) in s.chars().enumerate() {
        if i == MAX_SHOWN_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

fn is_segment_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Characters that, glued to a number, make it malformed (`5abc`, `1.2.3`).
fn is_number_junk(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

fn closing_quote(open: char) -> char {
    match open {
        '‘' => '’',
        '“' => '”',
        other => other,
    }
}

fn is_quote(c: char) -> bool {
    matches!(c, '\'' | '"' | '‘' | '’' | '“' | '”')
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Word,
    Number,
    Str(String),
    Op(CmpOp),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    kind: Kind,
    span: Span,
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek_char(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump_char(&mut self) -> Option<char> {
        let c = self.peek_char()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat_while(&mut self, keep: impl Fn(char) -> bool) -> usize {
        let start = self.pos;
        while self.peek_char().is_some_and(&keep) {
            self.bump_char();
        }
        self.pos - start
    }

    fn slice(&self, start: usize) -> &'a str {
        self.src.get(start..self.pos).unwrap_or("")
    }

    fn next_token(&mut self) -> Result<Token, FormulaError> {
        self.eat_while(char::is_whitespace);
        let start = self.pos;
        let kind = match self.peek_char() {
            None => Kind::Eof,
            Some(c) => self.lex(c)?,
        };
        Ok(Token { kind, span: Span::new(start, self.pos) })
    }

    fn lex(&mut self, c: char) -> Result<Kind, FormulaError> {
        let punctuation = match c {
            '(' => Some(Kind::LParen),
            ')' => Some(Kind::RParen),
            '[' => Some(Kind::LBracket),
            ']' => Some(Kind::RBracket),
            ',' => Some(Kind::Comma),
            _ => None,
        };
        if let Some(kind) = punctuation {
            self.bump_char();
            return Ok(kind);
        }
        match c {
            '>' | '<' | '=' | '!' => self.operator(c),
            '\'' | '"' | '‘' | '“' => self.string(c),
            '-' | '0'..='9' => self.number(),
            '≥' | '≤' | '≠' => {
                let ascii = match c {
                    '≥' => ">=",
                    '≤' => "<=",
                    _ => "!=",
                };
                Err(self.unexpected_char(c, &format!(": write '{ascii}'")))
            }
            c if is_segment_start(c) => self.word(),
            _ => Err(self.unexpected_char(c, "")),
        }
    }

    fn unexpected_char(&self, c: char, hint: &str) -> FormulaError {
        let span = Span::new(self.pos, self.pos + c.len_utf8());
        err(span, format!("unexpected character {}{hint}", quote(&c.to_string())))
    }

    fn operator(&mut self, c: char) -> Result<Kind, FormulaError> {
        for (wrong, right) in MISTYPED_OPERATORS {
            if self.rest().starts_with(wrong) {
                let span = Span::new(self.pos, self.pos + wrong.len());
                return Err(err(span, format!("'{wrong}' is not an operator: {right}")));
            }
        }
        for (text, op) in OPERATORS {
            if self.rest().starts_with(text) {
                self.pos += text.len();
                return Ok(Kind::Op(op));
            }
        }
        Err(self.unexpected_char(c, ": use NOT to negate or != to compare"))
    }

    fn string(&mut self, open: char) -> Result<Kind, FormulaError> {
        let opening = Span::new(self.pos, self.pos + open.len_utf8());
        let unterminated = || err(opening, "unterminated string starting here");
        let close = closing_quote(open);
        self.bump_char();
        let mut value = String::new();
        loop {
            match self.bump_char() {
                None => return Err(unterminated()),
                Some(c) if c == close => return Ok(Kind::Str(value)),
                Some('\\') => value.push(self.escaped()?.ok_or_else(unterminated)?),
                Some(c) => value.push(c),
            }
        }
    }

    /// The character after a backslash; `None` at the end of the text.
    fn escaped(&mut self) -> Result<Option<char>, FormulaError> {
        let backslash = self.pos - 1;
        match self.bump_char() {
            // Any quote may be escaped, not only the closing one, so that
            // `"O\'Brien"` works whichever quotes the user picked.
            Some(c) if c == '\\' || is_quote(c) => Ok(Some(c)),
            Some(c) => Err(err(
                Span::new(backslash, self.pos),
                format!(
                    "unknown escape {}: a backslash may only escape a quote or another backslash",
                    quote(&format!("\\{c}"))
                ),
            )),
            None => Ok(None),
        }
    }

    fn number(&mut self) -> Result<Kind, FormulaError> {
        let start = self.pos;
        if self.peek_char() == Some('-') {
            self.bump_char();
        }
        if self.eat_while(|c| c.is_ascii_digit()) == 0 {
            return Err(err(point(self.pos), "expected a digit after '-'"));
        }
        let mut after_dot = self.rest().chars().skip(1);
        if self.peek_char() == Some('.') && after_dot.next().is_some_and(|c| c.is_ascii_digit()) {
            self.bump_char();
            self.eat_while(|c| c.is_ascii_digit());
        }
        if self.eat_while(is_number_junk) > 0 {
            let span = Span::new(start, self.pos);
            return Err(err(span, format!("invalid number {}", quote(self.slice(start)))));
        }
        Ok(Kind::Number)
    }

    /// A dotted name: segments joined by dots with nothing in between.
    fn word(&mut self) -> Result<Kind, FormulaError> {
        let start = self.pos;
        self.eat_while(is_segment_char);
        while self.peek_char() == Some('.') {
            self.bump_char();
            if !self.peek_char().is_some_and(is_segment_start) {
                let message = format!("expected a name after {}", quote(self.slice(start)));
                return Err(err(point(self.pos), message));
            }
            self.eat_while(is_segment_char);
        }
        Ok(Kind::Word)
    }
}

// ---------------------------------------------------------------- parser

/// A subtree with its height, so depth is limited without walking the tree.
struct Node {
    formula: Formula,
    height: usize,
}

impl Node {
    fn leaf(clause: Clause) -> Node {
        Node { formula: Formula::Clause(clause), height: 1 }
    }

    fn binary(
        make: fn(Box<Formula>, Box<Formula>) -> Formula,
        left: Node,
        right: Node,
        at: Span,
    ) -> Result<Node, FormulaError> {
        let height = check_height(1 + left.height.max(right.height), at)?;
        let formula = make(Box::new(left.formula), Box::new(right.formula));
        Ok(Node { formula, height })
    }
}

fn check_height(height: usize, at: Span) -> Result<usize, FormulaError> {
    if height > MAX_DEPTH {
        let message = format!(
            "formula is too big: more than {MAX_DEPTH} levels of AND, OR and NOT \
             (an AND/OR chain of n clauses is n levels deep)"
        );
        return Err(err(at, message));
    }
    Ok(height)
}

struct Parser<'a> {
    src: &'a str,
    lexer: Lexer<'a>,
    peeked: Option<Token>,
    /// Span of the last token taken, for "after 'X'" in messages.
    last: Option<Span>,
    /// Open `(` and `NOT` on the parser's own call stack.
    nesting: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        Parser { src, lexer: Lexer { src, pos: 0 }, peeked: None, last: None, nesting: 0 }
    }

    fn peek(&mut self) -> Result<Token, FormulaError> {
        let token = match self.peeked.take() {
            Some(t) => t,
            None => self.lexer.next_token()?,
        };
        Ok(self.peeked.insert(token).clone())
    }

    fn bump(&mut self) -> Result<Token, FormulaError> {
        let token = match self.peeked.take() {
            Some(t) => t,
            None => self.lexer.next_token()?,
        };
        self.last = Some(token.span);
        Ok(token)
    }

    fn text(&self, span: Span) -> &'a str {
        self.src.get(span.start..span.end).unwrap_or("")
    }

    fn describe(&self, token: &Token) -> String {
        match token.kind {
            Kind::Eof => "the end of the formula".to_string(),
            _ => quote(self.text(token.span)),
        }
    }

    fn is_keyword(&self, token: &Token, keyword: &str) -> bool {
        token.kind == Kind::Word && self.text(token.span).eq_ignore_ascii_case(keyword)
    }

    fn eat_keyword(&mut self, keyword: &str) -> Result<Option<Token>, FormulaError> {
        let next = self.peek()?;
        if self.is_keyword(&next, keyword) {
            return self.bump().map(Some);
        }
        Ok(None)
    }

    fn column(&self, span: Span) -> usize {
        FormulaError::new(span, "").column(self.src)
    }

    // ------------------------------------------------------ boolean structure

    fn formula(&mut self) -> Result<Formula, FormulaError> {
        if self.peek()?.kind == Kind::Eof {
            return Err(err(point(0), "empty formula"));
        }
        let node = self.or_expr()?;
        let next = self.peek()?;
        match next.kind {
            Kind::Eof => Ok(node.formula),
            Kind::RParen => Err(err(next.span, "unmatched ')': there is no '(' to close")),
            _ => Err(err(
                next.span,
                format!("unexpected {} after a complete clause: expected AND, OR or the end", self.describe(&next)),
            )),
        }
    }

    fn or_expr(&mut self) -> Result<Node, FormulaError> {
        let mut left = self.and_expr()?;
        while let Some(op) = self.eat_keyword("OR")? {
            let right = self.and_expr()?;
            left = Node::binary(Formula::Or, left, right, op.span)?;
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Node, FormulaError> {
        let mut left = self.not_expr()?;
        while let Some(op) = self.eat_keyword("AND")? {
            let right = self.not_expr()?;
            left = Node::binary(Formula::And, left, right, op.span)?;
        }
        Ok(left)
    }

    fn not_expr(&mut self) -> Result<Node, FormulaError> {
        let Some(not) = self.eat_keyword("NOT")? else {
            return self.primary();
        };
        let inner = self.nested(not.span, Self::not_expr)?;
        let height = check_height(inner.height + 1, not.span)?;
        let formula = Formula::Not(Box::new(inner.formula));
        Ok(Node { formula, height })
    }

    fn primary(&mut self) -> Result<Node, FormulaError> {
        let open = self.peek()?;
        if open.kind != Kind::LParen {
            return self.clause().map(Node::leaf);
        }
        self.bump()?;
        let inner = self.nested(open.span, Self::or_expr)?;
        self.close_paren(open.span)?;
        Ok(inner)
    }

    /// Runs `inner` one nesting level deeper; the limit keeps the parser's
    /// own recursion off the end of the stack.
    fn nested(&mut self, at: Span, inner: fn(&mut Self) -> Result<Node, FormulaError>) -> Result<Node, FormulaError> {
        if self.nesting >= MAX_DEPTH {
            let message = format!("too many nested '(' or NOT: at most {MAX_DEPTH} are allowed");
            return Err(err(at, message));
        }
        self.nesting += 1;
        let result = inner(self);
        self.nesting -= 1;
        result
    }

    fn close_paren(&mut self, open: Span) -> Result<(), FormulaError> {
        let next = self.bump()?;
        let close = format!("')' to close '(' at column {}", self.column(open));
        match next.kind {
            Kind::RParen => Ok(()),
            Kind::Eof => Err(err(next.span, format!("expected {close}"))),
            _ => Err(err(
                next.span,
                format!("unexpected {} after a complete clause: expected AND, OR or {close}", self.describe(&next)),
            )),
        }
    }

    // ------------------------------------------------------------- clauses

    fn clause(&mut self) -> Result<Clause, FormulaError> {
        let head = self.peek()?;
        let is_operator = self.is_keyword(&head, "AND") || self.is_keyword(&head, "OR");
        if head.kind != Kind::Word || is_operator {
            return Err(self.expected_clause(&head));
        }
        self.bump()?;
        let word = self.text(head.span);
        if let Some(name) = word.strip_prefix("metric.") {
            return self.metric(&head, name);
        }
        if let Some(key) = word.strip_prefix("setting.") {
            return self.setting(&head, key);
        }
        if let Some(name) = word.strip_prefix("user.") {
            return self.attribute(&head, name);
        }
        if let Some(agg) = Agg::from_name(word) {
            return self.aggregate(&head, agg);
        }
        match word {
            "roles" => self.roles(&head),
            "user_id" => self.user_ids(&head),
            "avatar_changed" => self.avatar_changed(&head),
            "registration_date" => self.dated(&head, "date like '2015-01-01'"),
            "signin_date" => self.dated(&head, "date like '2015-01-01'"),
            "time_since_registration" => self.dated(&head, "duration like '1 years'"),
            "metric" => {
                Err(err(point(head.span.end), "expected '.' and a metric name after 'metric', like metric.posts"))
            }
            "setting" => Err(err(
                point(head.span.end),
                "expected '.' and a setting key after 'setting', like setting.profile.location",
            )),
            "user" => Err(err(
                point(head.span.end),
                "expected '.' and a column of the users source after 'user', like user.trust_level",
            )),
            _ => Err(unknown_clause(word, head.span)),
        }
    }

    fn expected_clause(&self, found: &Token) -> FormulaError {
        let after = match self.last {
            Some(span) => format!(" after {}", quote(self.text(span))),
            None => String::new(),
        };
        let message = match found.kind {
            Kind::Eof => format!("expected a clause{after}"),
            _ => format!("expected a clause{after} but found {}", self.describe(found)),
        };
        err(point(found.span.start), message)
    }

    fn metric(&mut self, head: &Token, name: &str) -> Result<Clause, FormulaError> {
        let name = self.suffix(head, name);
        let op = self.operator(head)?;
        let value = self.number_after(op)?;
        Ok(Clause::Metric { name, op, value })
    }

    fn setting(&mut self, head: &Token, key: &str) -> Result<Clause, FormulaError> {
        if key == MAX_LOGINS_KEY {
            let op = self.operator(head)?;
            let value = self.number_after(op)?;
            return Ok(Clause::MaxConsecutiveLogins { op, value });
        }
        let key = self.suffix(head, key);
        let op_token = self.peek()?;
        let Kind::Op(op) = op_token.kind else {
            return Err(err(
                point(op_token.span.start),
                format!("expected = or != after {}", quote(self.text(head.span))),
            ));
        };
        self.bump()?;
        let value = self.bump()?;
        match value.kind {
            Kind::Number => Ok(Clause::SettingNumber { key, op, value: self.number_value(&value)? }),
            // Text compares only for (in)equality; a number takes every operator.
            Kind::Str(_) if !matches!(op, CmpOp::Eq | CmpOp::Ne) => {
                Err(err(op_token.span, format!("{} takes only = or !=", self.text(head.span))))
            }
            Kind::Str(text) => Ok(Clause::Setting { key, op, value: text }),
            _ => Err(err(point(value.span.start), format!("expected a quoted string or a number after '{op}'"))),
        }
    }

    /// `user.NAME OP VALUE` or `user.NAME in [...]`.
    fn attribute(&mut self, head: &Token, name: &str) -> Result<Clause, FormulaError> {
        let name = self.suffix(head, name);
        if !name.value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            let message = format!(
                "{} is not a column name: user.NAME takes a column of the users source (letters, digits and '_')",
                quote(&name.value)
            );
            return Err(err(name.span, message));
        }
        if self.eat_keyword("in")?.is_some() {
            let empty = format!("'user.{} in' needs at least one value", name.value);
            let items = self.list(&empty, |p, token| match token.kind {
                Kind::Str(s) => Ok(s),
                _ => Err(p.expected_item(&token, "a quoted value like 'en'")),
            })?;
            return Ok(Clause::Attribute { name, op: CmpOp::Eq, value: AttributeValue::TextIn(items) });
        }
        let op_token = self.peek()?;
        let op = self.operator(head)?;
        let equality = matches!(op, CmpOp::Eq | CmpOp::Ne);
        let token = self.bump()?;
        let value = match token.kind {
            Kind::Number => AttributeValue::Number(self.number_value(&token)?),
            Kind::Str(text) if equality => AttributeValue::Text(text),
            // An ordered comparison with quoted text: the column is a timestamp, the text a date.
            Kind::Str(text) => AttributeValue::Date(Spanned { value: text, span: token.span }),
            Kind::Word if self.is_keyword(&token, "true") || self.is_keyword(&token, "false") => {
                if !equality {
                    let message = format!("{} compared with true or false takes only = or !=", self.text(head.span));
                    return Err(err(op_token.span, message));
                }
                AttributeValue::Bool(self.is_keyword(&token, "true"))
            }
            _ => {
                let message = format!("expected a number, a quoted text or date, or true or false after '{op}'");
                return Err(err(point(token.span.start), message));
            }
        };
        Ok(Clause::Attribute { name, op, value })
    }

    /// `AGG(SOURCE[, FILTER]...) OP NUMBER`, or `OP 'DATE'` for `first` and `last`.
    fn aggregate(&mut self, head: &Token, agg: Agg) -> Result<Clause, FormulaError> {
        let name = agg.name();
        let open = self.bump()?;
        if open.kind != Kind::LParen {
            let message = format!("expected '(' and a source after '{name}', like {name}(posts)");
            return Err(err(point(open.span.start), message));
        }
        let source = self.bump()?;
        let source_name = self.text(source.span);
        if source.kind != Kind::Word || source_name.contains('.') {
            let message =
                format!("expected a source after '{name}(': posts, connections, logins or a name of [sources.events]");
            return Err(err(point(source.span.start), message));
        }
        let source = Spanned { value: source_name.to_string(), span: source.span };
        let mut filters = Vec::new();
        let close = loop {
            let next = self.bump()?;
            let closing = format!("')' to close '{name}(' at column {}", self.column(open.span));
            match next.kind {
                Kind::RParen => break next,
                Kind::Comma => filters.push(self.filter()?),
                Kind::Eof => return Err(err(next.span, format!("expected {closing}"))),
                _ => {
                    let message = format!("expected ',' and a filter, or {closing}");
                    return Err(err(point(next.span.start), message));
                }
            }
        };
        // Messages about what follows quote the whole call: "after 'count(posts)'".
        let call = Token { kind: Kind::Word, span: Span::new(head.span.start, close.span.end) };
        let op = self.operator(&call)?;
        if agg.is_date() {
            let date = self.string_after(op, "date like '2015-01-01'")?;
            return Ok(Clause::EventDate { agg, source, filters, op, date });
        }
        let value = self.number_after(op)?;
        Ok(Clause::Aggregate { agg, source, filters, op, value })
    }

    /// One filter of an aggregate, after its comma.
    fn filter(&mut self) -> Result<Filter, FormulaError> {
        let name = self.bump()?;
        let word = if name.kind == Kind::Word { self.text(name.span) } else { "" };
        match word {
            "kind" => {
                if self.eat_keyword("in")?.is_some() {
                    let kinds = self.list("'kind in' needs at least one kind", |p, token| match token.kind {
                        Kind::Str(s) => Ok(s),
                        _ => Err(p.expected_item(&token, "a quoted kind like 'reply'")),
                    })?;
                    return Ok(Filter::Kind(kinds));
                }
                self.filter_equals(&name)?;
                Ok(Filter::Kind(vec![self.string_after(CmpOp::Eq, "kind like 'reply'")?.value]))
            }
            "within" => {
                self.filter_equals(&name)?;
                Ok(Filter::Within(self.string_after(CmpOp::Eq, "span like '30 days'")?))
            }
            "since" => {
                self.filter_equals(&name)?;
                Ok(Filter::Since(self.string_after(CmpOp::Eq, "date like '2026-01-01'")?))
            }
            "" => Err(err(point(name.span.start), format!("expected a filter after ',': {FILTER_KINDS}"))),
            other => Err(err(name.span, format!("unknown filter {}: expected {FILTER_KINDS}", quote(other)))),
        }
    }

    /// The `=` after a filter's name.
    fn filter_equals(&mut self, name: &Token) -> Result<(), FormulaError> {
        let token = self.bump()?;
        match token.kind {
            Kind::Op(CmpOp::Eq) => Ok(()),
            Kind::Op(_) => Err(err(token.span, format!("filter '{}' takes only =", self.text(name.span)))),
            _ => Err(err(point(token.span.start), format!("expected '=' after '{}'", self.text(name.span)))),
        }
    }

    fn avatar_changed(&mut self, head: &Token) -> Result<Clause, FormulaError> {
        let op = self.eq_or_ne(head)?;
        let token = self.bump()?;
        let value = if self.is_keyword(&token, "true") {
            true
        } else if self.is_keyword(&token, "false") {
            false
        } else {
            let message = format!("expected true or false after '{op}'");
            return Err(err(point(token.span.start), message));
        };
        Ok(Clause::AvatarChanged { op, value })
    }

    fn dated(&mut self, head: &Token, what: &str) -> Result<Clause, FormulaError> {
        let op = self.operator(head)?;
        let text = self.string_after(op, what)?;
        Ok(match self.text(head.span) {
            "registration_date" => Clause::RegistrationDate { op, date: text },
            "signin_date" => Clause::SigninDate { op, date: text },
            _ => Clause::TimeSinceRegistration { op, duration: text },
        })
    }

    /// The part of `head` after its `metric.`/`setting.` prefix, with its span.
    fn suffix(&self, head: &Token, rest: &str) -> Spanned<String> {
        let start = head.span.end - rest.len();
        Spanned { value: rest.to_string(), span: Span::new(start, head.span.end) }
    }

    // ------------------------------------------------------------ operands

    fn operator(&mut self, after: &Token) -> Result<CmpOp, FormulaError> {
        let token = self.bump()?;
        match token.kind {
            Kind::Op(op) => Ok(op),
            _ => Err(err(
                point(token.span.start),
                format!("expected a comparison operator (>=, >, <=, <, =, !=) after {}", quote(self.text(after.span))),
            )),
        }
    }

    fn eq_or_ne(&mut self, head: &Token) -> Result<CmpOp, FormulaError> {
        let subject = quote(self.text(head.span));
        let token = self.bump()?;
        match token.kind {
            Kind::Op(op @ (CmpOp::Eq | CmpOp::Ne)) => Ok(op),
            Kind::Op(_) => Err(err(token.span, format!("{} takes only = or !=", self.text(head.span)))),
            _ => Err(err(point(token.span.start), format!("expected = or != after {subject}"))),
        }
    }

    /// The value of a number token.
    fn number_value(&self, token: &Token) -> Result<f64, FormulaError> {
        let text = self.text(token.span);
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(err(token.span, format!("number {} is too large", quote(text)))),
        }
    }

    fn number_after(&mut self, op: CmpOp) -> Result<f64, FormulaError> {
        let token = self.bump()?;
        match token.kind {
            Kind::Number => self.number_value(&token),
            Kind::Str(_) => {
                Err(err(point(token.span.start), format!("expected a number after '{}', not a quoted string", op)))
            }
            _ => Err(err(point(token.span.start), format!("expected a number after '{op}'"))),
        }
    }

    fn string_after(&mut self, op: CmpOp, what: &str) -> Result<Spanned<String>, FormulaError> {
        let token = self.bump()?;
        match token.kind {
            Kind::Str(value) => Ok(Spanned { value, span: token.span }),
            _ => Err(err(point(token.span.start), format!("expected a quoted {what} after '{op}'"))),
        }
    }

    // --------------------------------------------------------------- lists

    fn roles(&mut self, head: &Token) -> Result<Clause, FormulaError> {
        self.expect_in(head)?;
        let roles = self.list("'roles in' needs at least one role", |p, token| match token.kind {
            Kind::Str(s) => Ok(s),
            _ => Err(p.expected_item(&token, "a quoted role name like 'Admin'")),
        })?;
        Ok(Clause::RolesIn { roles })
    }

    fn user_ids(&mut self, head: &Token) -> Result<Clause, FormulaError> {
        self.expect_in(head)?;
        let ids = self.list("'user_id in' needs at least one id", |p, token| match token.kind {
            Kind::Number => user_id(p.text(token.span), token.span),
            _ => Err(p.expected_item(&token, "a user id (a whole number)")),
        })?;
        Ok(Clause::UserIdIn { ids })
    }

    fn expected_item(&self, token: &Token, what: &str) -> FormulaError {
        let message = format!("expected {what} in the list");
        err(point(token.span.start), message)
    }

    fn expect_in(&mut self, head: &Token) -> Result<(), FormulaError> {
        let token = self.bump()?;
        if self.is_keyword(&token, "in") {
            return Ok(());
        }
        let message = format!("expected 'in' after {}", quote(self.text(head.span)));
        Err(err(point(token.span.start), message))
    }

    /// `[item, item, ...]`: at least one item, no trailing comma. Iterative,
    /// so a list of any length costs linear time and constant stack.
    fn list<T>(
        &mut self,
        empty: &str,
        mut item: impl FnMut(&Self, Token) -> Result<T, FormulaError>,
    ) -> Result<Vec<T>, FormulaError> {
        let open = self.open_bracket()?;
        if self.peek()?.kind == Kind::RBracket {
            let close = self.bump()?;
            return Err(err(Span::new(open.start, close.span.end), empty));
        }
        let mut items = Vec::new();
        loop {
            let token = self.bump()?;
            items.push(item(self, token)?);
            if self.list_separator()? {
                return Ok(items);
            }
        }
    }

    fn open_bracket(&mut self) -> Result<Span, FormulaError> {
        let token = self.bump()?;
        match token.kind {
            Kind::LBracket => Ok(token.span),
            _ => Err(err(point(token.span.start), "expected '[' after 'in'")),
        }
    }

    /// Consumes `,` or `]`; true at the end of the list.
    fn list_separator(&mut self) -> Result<bool, FormulaError> {
        let token = self.bump()?;
        match token.kind {
            Kind::RBracket => Ok(true),
            Kind::Comma if self.peek()?.kind == Kind::RBracket => {
                Err(err(token.span, "trailing ',' before ']': remove it or add another item"))
            }
            Kind::Comma => Ok(false),
            _ => Err(err(point(token.span.start), "expected ']' or ',' in the list")),
        }
    }
}

fn user_id(text: &str, span: Span) -> Result<i64, FormulaError> {
    text.parse::<i64>().map_err(|_| {
        let problem = if text.contains('.') { "must be a whole number" } else { "does not fit in a 64-bit integer" };
        err(span, format!("user id {} {problem}", quote(text)))
    })
}

fn unknown_clause(word: &str, span: Span) -> FormulaError {
    let hint = match suggestion(word) {
        Some(s) => format!(" (did you mean '{s}'?)"),
        None => String::new(),
    };
    let message = format!("unknown clause {}: expected {CLAUSE_KINDS}{hint}", quote(word));
    err(span, message)
}

/// The clause name the user probably meant: names are case-sensitive, so a
/// wrong case is the likeliest slip.
fn suggestion(word: &str) -> Option<String> {
    const NAMES: [&str; 6] =
        ["roles", "user_id", "avatar_changed", "registration_date", "signin_date", "time_since_registration"];
    if word == "role" {
        return Some("roles".to_string());
    }
    if let Some(name) = NAMES.iter().copied().chain(Agg::ALL.map(Agg::name)).find(|n| n.eq_ignore_ascii_case(word)) {
        return Some(name.to_string());
    }
    ["metric.", "setting.", "user."].iter().find_map(|prefix| {
        let head = word.get(..prefix.len())?;
        let rest = word.get(prefix.len()..)?;
        let fits = head.eq_ignore_ascii_case(prefix) && !rest.is_empty();
        fits.then(|| format!("{prefix}{rest}"))
    })
}
