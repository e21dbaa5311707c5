//! Snapshots of the host platform: which sources exist, which columns each must return, and
//! loading a source query's result into a Polars frame.
//!
//! Owns the contract between `[sources]` queries and the evaluator: columns are matched by
//! name (case-insensitively), values are converted to one type per column (see [`decode`]),
//! and a value that cannot be read fails with the source, the column, the row and the value.
//! Timestamps become `Datetime(µs, UTC)`; ids become `Int64`.

mod changed;
pub(crate) mod copy;
pub mod decode;
mod load;

pub use changed::{Between, members_condition, members_filter, members_with_rows};
pub use load::{
    Chunks, Reading, Survey, check_members, load_member_emails, load_snapshot, load_snapshot_of, load_snapshot_shard,
    prepare_columns, scan_source, survey_source,
};

use polars::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One kind of snapshot the host can provide through a `[sources]` query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    Users,
    Posts,
    Connections,
    Logins,
    Trainings,
    Roles,
    Settings,
    Metrics,
    /// A named event source of `[sources.events]` (its name interned, see [`SourceKind::event`]).
    Event(&'static str),
}

/// The built-in sources whose rows are a member's events: what aggregates count besides the
/// `[sources.events]` ones.
pub const BUILTIN_EVENT_SOURCES: [SourceKind; 3] = [SourceKind::Posts, SourceKind::Connections, SourceKind::Logins];

impl SourceKind {
    pub const ALL: [SourceKind; 8] = [
        SourceKind::Users,
        SourceKind::Posts,
        SourceKind::Connections,
        SourceKind::Logins,
        SourceKind::Trainings,
        SourceKind::Roles,
        SourceKind::Settings,
        SourceKind::Metrics,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Users => "users",
            SourceKind::Posts => "posts",
            SourceKind::Connections => "connections",
            SourceKind::Logins => "logins",
            SourceKind::Trainings => "trainings",
            SourceKind::Roles => "roles",
            SourceKind::Settings => "settings",
            SourceKind::Metrics => "metrics",
            SourceKind::Event(name) => name,
        }
    }

    /// A built-in source by name (`[sources.events]` names are not looked up here).
    pub fn from_name(name: &str) -> Option<SourceKind> {
        SourceKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The named event source `name`. Names are interned once per process (a handful per
    /// config), so that a source stays a small `Copy` key like the built-in ones.
    pub fn event(name: &str) -> SourceKind {
        SourceKind::Event(intern(name))
    }

    /// Whether the source's rows are events (posts, connections, logins, `[sources.events]`).
    pub fn is_event(self) -> bool {
        matches!(self, SourceKind::Posts | SourceKind::Connections | SourceKind::Logins | SourceKind::Event(_))
    }

    /// Whether `name` may name a `[sources.events]` source: lowercase letters, digits and `_`,
    /// starting with a letter, and not a built-in source's name.
    pub fn check_event_name(name: &str) -> Result<(), String> {
        let well_formed = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !well_formed {
            return Err(format!(
                "[sources.events] '{name}': a name is lowercase letters, digits and '_', starting with a letter"
            ));
        }
        if SourceKind::from_name(name).is_some() {
            return Err(format!("[sources.events] '{name}' is the name of a built-in source; choose another name"));
        }
        Ok(())
    }

    /// The columns this source's query must (or may) return, in the order frames hold them.
    pub fn columns(self) -> &'static [ColumnSpec] {
        match self {
            SourceKind::Users => USERS,
            SourceKind::Posts => POSTS,
            SourceKind::Connections | SourceKind::Logins | SourceKind::Event(_) => EVENTS,
            SourceKind::Trainings => TRAININGS,
            SourceKind::Roles => ROLES,
            SourceKind::Settings => SETTINGS,
            SourceKind::Metrics => METRICS,
        }
    }
}

const fn req(name: &'static str, ty: ColumnType) -> ColumnSpec {
    ColumnSpec { name, ty, required: true, nullable: false, alias: None }
}
const fn opt(name: &'static str, ty: ColumnType) -> ColumnSpec {
    ColumnSpec { name, ty, required: false, nullable: true, alias: None }
}
const fn nullable(name: &'static str, ty: ColumnType) -> ColumnSpec {
    ColumnSpec { name, ty, required: true, nullable: true, alias: None }
}

const USERS: &[ColumnSpec] = &[
    req("user_id", ColumnType::Id),
    req("created_at", ColumnType::Timestamp),
    nullable("blocked", ColumnType::Bool),
    opt("avatar_changed", ColumnType::Bool),
];
/// The users source's columns that only Open Badges exports read (see [`load_member_emails`]).
const USER_EMAILS: &[ColumnSpec] = &[req("user_id", ColumnType::Id), nullable("email", ColumnType::Text)];
/// Every event source: who, when, and optionally what kind of event, what it is about (a
/// thread, a post, a contest, a video: text or an integer) and a number (minutes, points).
const EVENTS: &[ColumnSpec] = &[
    req("user_id", ColumnType::Id),
    req("created_at", ColumnType::Timestamp),
    opt("kind", ColumnType::Text),
    opt("item", ColumnType::Text),
    opt("value", ColumnType::Number),
];
/// `posts` is an event source whose `item` may also be called `thread_id`.
const POSTS: &[ColumnSpec] = &[
    req("user_id", ColumnType::Id),
    req("created_at", ColumnType::Timestamp),
    opt("kind", ColumnType::Text),
    ColumnSpec { alias: Some("thread_id"), ..opt("item", ColumnType::Text) },
    opt("value", ColumnType::Number),
];
const TRAININGS: &[ColumnSpec] = &[
    req("user_id", ColumnType::Id),
    req("training_id", ColumnType::Text),
    nullable("enrolled_at", ColumnType::Timestamp),
    nullable("progress", ColumnType::Number),
    nullable("passed", ColumnType::Bool),
];
const ROLES: &[ColumnSpec] = &[req("user_id", ColumnType::Id), req("role", ColumnType::Text)];
const SETTINGS: &[ColumnSpec] = &[
    req("user_id", ColumnType::Id),
    // KEY is reserved in MySQL: `name` spares users the quoting (`AS \`key\``).
    ColumnSpec { alias: Some("name"), ..req("key", ColumnType::Text) },
    nullable("value", ColumnType::Text),
];
const METRICS: &[ColumnSpec] =
    &[req("user_id", ColumnType::Id), req("name", ColumnType::Text), nullable("value", ColumnType::Number)];

/// `name` as a `&'static str`, allocated once per distinct name for the life of the process.
pub fn intern(name: &str) -> &'static str {
    static NAMES: std::sync::LazyLock<std::sync::Mutex<BTreeSet<&'static str>>> =
        std::sync::LazyLock::new(Default::default);
    let mut names = NAMES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a source column is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// A member id: any integer (or integral text).
    Id,
    /// An instant: a native timestamp, ISO-8601 text, or integer epoch seconds.
    Timestamp,
    /// A boolean, or 0/1.
    Bool,
    /// Text; integers are read as their decimal text (so training ids may be numbers).
    Text,
    /// A number (integer, decimal or float).
    Number,
}

impl ColumnType {
    pub fn describe(self) -> &'static str {
        match self {
            ColumnType::Id => "an integer id",
            ColumnType::Timestamp => "a timestamp",
            ColumnType::Bool => "a boolean (true/false or 0/1)",
            ColumnType::Text => "text",
            ColumnType::Number => "a number",
        }
    }

    /// The Polars type a column of this kind becomes.
    pub fn dtype(self) -> DataType {
        match self {
            ColumnType::Id => DataType::Int64,
            ColumnType::Timestamp => DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
            ColumnType::Bool => DataType::Boolean,
            ColumnType::Text => DataType::String,
            ColumnType::Number => DataType::Float64,
        }
    }
}

/// One column a source query returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnSpec {
    pub name: &'static str,
    pub ty: ColumnType,
    /// The query must return it.
    pub required: bool,
    /// NULL is allowed (and means "unknown": false, zero, or no value).
    pub nullable: bool,
    /// Another name the query may use for this column.
    pub alias: Option<&'static str>,
}

impl ColumnSpec {
    /// The column's name in messages: the host's own name for a `user.NAME` column (its frame
    /// name carries the type it is read as), else the name.
    pub fn shown_name(&self) -> &'static str {
        match self.alias {
            Some(alias) if self.name.starts_with("user.") => alias,
            _ => self.name,
        }
    }

    /// Whether a result column named `column` is this one (names are case-insensitive).
    pub fn matches(&self, column: &str) -> bool {
        column.eq_ignore_ascii_case(self.name) || self.alias.is_some_and(|alias| column.eq_ignore_ascii_case(alias))
    }
}

/// A column of the users source that `user.NAME` clauses read, as the type their comparison
/// needs. Its frame column is `user.NAME:TYPE`, so one host column compared as a number in one
/// badge and as text in another is read once per meaning; a query that does not return it
/// leaves the column out (the badges reading it then fail, naming it).
pub fn user_attribute(name: &str, ty: ColumnType) -> ColumnSpec {
    let frame_name = intern(&user_attribute_column(name, ty));
    ColumnSpec { name: frame_name, ty, required: false, nullable: true, alias: Some(intern(name)) }
}

/// The frame column holding users column `name` read as `ty`.
pub fn user_attribute_column(name: &str, ty: ColumnType) -> String {
    let ty = match ty {
        ColumnType::Id | ColumnType::Number => "number",
        ColumnType::Timestamp => "timestamp",
        ColumnType::Bool => "boolean",
        ColumnType::Text => "text",
    };
    format!("user.{}:{ty}", name.to_ascii_lowercase())
}

/// What to load: the sources, and the extra users columns `user.NAME` clauses read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    pub kinds: BTreeSet<SourceKind>,
    pub user_columns: Vec<ColumnSpec>,
}

impl Wanted {
    /// These sources with their standard columns only.
    pub fn kinds(kinds: impl IntoIterator<Item = SourceKind>) -> Wanted {
        Wanted { kinds: kinds.into_iter().collect(), user_columns: Vec::new() }
    }

    /// The columns to read from source `kind`.
    pub fn columns(&self, kind: SourceKind) -> Vec<ColumnSpec> {
        let mut specs = kind.columns().to_vec();
        if kind == SourceKind::Users {
            for spec in &self.user_columns {
                if !specs.iter().any(|s| s.name == spec.name) {
                    specs.push(*spec);
                }
            }
        }
        specs
    }
}

/// The `[sources]` queries of a config, by kind.
pub type SourceQueries = BTreeMap<SourceKind, String>;

/// The frames of one evaluation: one per configured source that some badge needs.
/// Frames hold only the columns the query returned among [`SourceKind::columns`].
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub frames: BTreeMap<SourceKind, DataFrame>,
    /// Sources that could not be read, with why (naming the column, row and value when one
    /// value was the cause): the badges that need them fail, the others are evaluated.
    pub failed: BTreeMap<SourceKind, String>,
}

impl Snapshot {
    /// Fails with the first source that could not be read (for commands that need them all).
    pub fn complete(self) -> anyhow::Result<Snapshot> {
        match self.failed.values().next() {
            Some(message) => Err(anyhow::anyhow!("{message}")),
            None => Ok(self),
        }
    }

    /// Why a badge that reads `sources` cannot be evaluated, if one of them failed to load.
    pub fn failure_of(&self, sources: &BTreeSet<SourceKind>) -> Option<String> {
        let reasons: Vec<&str> = sources.iter().filter_map(|k| self.failed.get(k)).map(String::as_str).collect();
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }

    pub fn frame(&self, kind: SourceKind) -> Option<&DataFrame> {
        self.frames.get(&kind)
    }

    /// Whether the source was loaded and returned this (optional) column.
    pub fn has_column(&self, kind: SourceKind, column: &str) -> bool {
        self.frame(kind).is_some_and(|df| df.column(column).is_ok())
    }
}

/// One of N slices of the members: those with `user_id mod N = I` (a non-negative modulo).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Parses `I/N` with `0 <= I < N`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("'{text}' is not a shard: expected I/N with 0 <= I < N, e.g. 0/4");
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = index.trim().parse().map_err(|_| bad())?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// The shard of a Kubernetes Indexed Job pod: `$JOB_COMPLETION_INDEX` of `shards`.
    pub fn from_environment(shards: Option<u32>) -> anyhow::Result<Option<Shard>> {
        let Ok(index) = std::env::var("JOB_COMPLETION_INDEX") else { return Ok(None) };
        let Some(count) = shards else {
            anyhow::bail!("JOB_COMPLETION_INDEX is set but [evaluation] shards is not: set how many shards there are");
        };
        Shard::parse(&format!("{index}/{count}")).map(Some).map_err(|e| anyhow::anyhow!("JOB_COMPLETION_INDEX: {e}"))
    }

    /// `sql` restricted to this shard's members.
    pub fn filter(&self, sql: &str) -> String {
        let n = self.count;
        format!("SELECT * FROM ({sql}) AS accolade_shard WHERE ((user_id % {n}) + {n}) % {n} = {}", self.index)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The `user_id` column of `frame` as ids (nulls left out).
pub fn ids_of(frame: &DataFrame) -> anyhow::Result<Vec<i64>> {
    let ids = frame
        .column("user_id")
        .and_then(|c| c.i64().cloned())
        .map_err(|e| anyhow::anyhow!("reading member ids: {e}"))?;
    Ok(ids.iter().flatten().collect())
}
