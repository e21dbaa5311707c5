//! The validated plan a config compiles into.
//!
//! Owns every judgement about a config: known sources, a valid timezone, unique badge ids,
//! exactly one criterion per badge, rule fields, and that each badge's sources are
//! configured. [`compile`] collects all problems into one [`ConfigErrors`], each naming its
//! badge or source, so a user fixes everything in one pass. Downstream code never
//! re-validates a [`Plan`].

use super::RawConfig;
pub use crate::features::Repeat;
use crate::instant;
use crate::predicates::formula::{self, Formula};
use crate::predicates::rules::Rule;
use crate::sources::{ColumnSpec, SourceKind, SourceQueries, Wanted};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use std::collections::{BTreeSet, HashSet};
use std::fmt;

/// `[evaluation] late_rows` when absent.
pub const DEFAULT_LATE_ROWS: chrono::Duration = chrono::Duration::minutes(10);

/// A compiled config.
#[derive(Debug, Clone)]
pub struct Plan {
    pub database_url: String,
    /// The awards database, when it is not the host database.
    pub awards_url: Option<String>,
    pub when_locked: WhenLocked,
    /// `[evaluation] schedule`, validated.
    pub schedule: Option<String>,
    /// `[evaluation] shards`: the N of `$JOB_COMPLETION_INDEX`/N.
    pub shards: Option<u32>,
    /// `[evaluation] incremental_schedule`, validated: when `schedule` runs incremental passes.
    pub incremental_schedule: Option<String>,
    /// `[evaluation] late_rows`: how long after its `created_at` an event row may still appear
    /// in the host database and be counted by an incremental run (default 10 minutes).
    pub late_rows: chrono::Duration,
    pub notifications: Notifications,
    pub timezone: Tz,
    pub sources: SourceQueries,
    pub badges: Vec<Badge>,
    /// `[issuer]`, validated: needed by Open Badges exports.
    pub issuer: Option<Issuer>,
}

/// The issuer of Open Badges exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    /// Where the issuer profile is published (http or https).
    pub id: url::Url,
    pub name: String,
    pub url: url::Url,
    pub email: Option<String>,
    pub description: Option<String>,
}

impl Plan {
    pub fn badge(&self, id: &str) -> Option<&Badge> {
        self.badges.iter().find(|b| b.id == id)
    }
}

/// What evaluating `badges` loads: their sources and the users columns their `user.NAME`
/// clauses read.
pub fn wanted<'a>(badges: impl IntoIterator<Item = &'a Badge>) -> Wanted {
    let mut wanted = Wanted::kinds([SourceKind::Users]);
    for badge in badges {
        wanted.kinds.extend(badge.sources());
        for spec in badge.user_columns() {
            if !wanted.user_columns.contains(&spec) {
                wanted.user_columns.push(spec);
            }
        }
    }
    wanted
}

/// Notification settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Notifications {
    pub on_backfill: OnBackfill,
    /// Announce revocations (and restorations) by `revoke_when_unmet`.
    pub on_revoke_all: bool,
    /// Release at most this many notifications to the mailer per run (all when `None`).
    pub max_per_run: Option<u64>,
}

/// Whether a badge's backfill (its first evaluation after it is published) is announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnBackfill {
    /// Backfill awards are stored but nobody is notified.
    #[default]
    None,
    /// Every backfill award is announced (within `max_per_run`).
    All,
}

/// What a run does when another run holds the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenLocked {
    /// Exit with code 2 and a message saying another run is in progress.
    Exit,
    /// Wait until the other run finishes.
    Wait,
}

/// A badge as the plan knows it.
#[derive(Debug, Clone)]
pub struct Badge {
    pub id: String,
    pub name: String,
    pub image: Option<String>,
    pub points: i64,
    pub status: BadgeStatus,
    pub hidden_until_earned: bool,
    /// Only activity at or after this instant counts.
    pub activity_since: Option<DateTime<Utc>>,
    pub criterion: Criterion,
    /// What the badge is, for people (Open Badges `description`); generated if not written.
    pub description: Option<String>,
    /// How it is earned, in words (Open Badges criteria `narrative`); generated if not written.
    pub criteria: Option<String>,
    /// Earned once per period or item (`repeat`); `None`: once per member.
    pub repeat: Option<Repeat>,
    /// At most this many grants per member (`max_grants`, with `repeat`).
    pub max_grants: Option<u32>,
    /// A run over every member withdraws the rule's awards of members who no longer meet the
    /// criterion, and gives them back when they meet it again.
    pub revoke_when_unmet: bool,
    /// The badge is one level of a badge with `levels`.
    pub level: Option<Level>,
}

impl Badge {
    /// The grant a manual award or revocation names: none for a badge earned once, and one
    /// (checked) for a repeating badge.
    pub fn grant_of(&self, grant: Option<&str>) -> Result<String, String> {
        match (self.repeat, grant) {
            (None, None) => Ok(String::new()),
            (None, Some(_)) => Err(format!("badge '{}' is earned once: it has no grants; remove --grant", self.id)),
            (Some(repeat), None) => {
                Err(format!("badge '{}' is earned once per {}: name the grant with --grant", self.id, repeat.as_str()))
            }
            (Some(repeat), Some(grant)) => {
                repeat.check_grant(grant).map(|()| grant.to_string()).map_err(|e| format!("badge '{}': {e}", self.id))
            }
        }
    }
}

/// Where a level badge belongs: its badge's id and name, the measure, and the level's threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    /// The id and name of the badge with `levels` (`commenter`).
    pub badge_id: String,
    pub badge_name: String,
    /// The measure as written (`count(posts, kind = 'comment')`).
    pub measure: String,
    /// The level's position, lowest first, and its threshold.
    pub index: usize,
    pub min: f64,
}

impl Badge {
    /// The sources evaluating this badge reads (always including `users`).
    pub fn sources(&self) -> BTreeSet<SourceKind> {
        let mut kinds = BTreeSet::from([SourceKind::Users]);
        match &self.criterion {
            Criterion::Rule(rule) => kinds.extend(rule.sources()),
            Criterion::Formula { tree, .. } => kinds.extend(formula::compile::sources(tree)),
            Criterion::Manual => {}
        }
        kinds
    }

    /// The users columns beyond the standard ones that the badge's `user.NAME` clauses read.
    pub fn user_columns(&self) -> Vec<ColumnSpec> {
        match &self.criterion {
            Criterion::Formula { tree, .. } => formula::compile::user_attributes(tree),
            _ => Vec::new(),
        }
    }

    /// How the badge is earned, in words: `criteria` as written, else a sentence generated
    /// from the rule or formula.
    pub fn criteria_narrative(&self) -> String {
        if let Some(text) = &self.criteria {
            return text.clone();
        }
        let mut sentence = match &self.criterion {
            Criterion::Rule(rule) => format!("Awarded to members who {}.", rule.in_words()),
            Criterion::Formula { tree, .. } => format!("Awarded to members who {}.", formula::words::in_words(tree)),
            Criterion::Manual => "Awarded by hand by the community's team.".to_string(),
        };
        if let Some(since) = self.activity_since {
            sentence.push_str(&format!(" Only activity since {} counts.", instant::format_utc(since)));
        }
        match self.repeat {
            Some(Repeat::Item) => sentence.push_str(" Earned once for each item, counting that item's activity."),
            Some(period) => sentence.push_str(&format!(
                " Earned once each calendar {}, counting that {}'s activity.",
                period.as_str(),
                period.as_str()
            )),
            None => {}
        }
        if let Some(cap) = self.max_grants {
            sentence.push_str(&format!(" At most {cap} times per member."));
        }
        sentence
    }

    /// What the badge is: `description` as written, else its name and how it is earned.
    pub fn description_text(&self) -> String {
        self.description.clone().unwrap_or_else(|| format!("{}: {}", self.name, self.criteria_narrative()))
    }

    /// The criterion in a canonical text form: if this changes, who qualifies may change.
    /// Stored with the badge so that a published badge's rule cannot be edited silently.
    pub fn criterion_fingerprint(&self) -> String {
        let since =
            self.activity_since.map(|t| format!(" activity_since={}", instant::format_utc(t))).unwrap_or_default();
        // Repetition changes what is awarded: it is part of the rule (and absent, as before,
        // for badges earned once).
        let repeat = self.repeat.map(|r| format!(" repeat={}", r.as_str())).unwrap_or_default();
        let cap = self.max_grants.map(|n| format!(" max_grants={n}")).unwrap_or_default();
        format!("{}{since}{repeat}{cap}", self.criterion.canonical())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BadgeStatus {
    #[default]
    Published,
    Disabled,
}

impl BadgeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BadgeStatus::Published => "published",
            BadgeStatus::Disabled => "disabled",
        }
    }
}

/// How a badge is earned.
#[derive(Debug, Clone, PartialEq)]
pub enum Criterion {
    Rule(Rule),
    /// A formula as written, and its tree.
    Formula {
        text: String,
        tree: Formula,
    },
    /// Only awarded by hand (`accolade award`).
    Manual,
}

impl Criterion {
    /// The rule type shown on the dashboard.
    pub fn type_name(&self) -> &'static str {
        match self {
            Criterion::Rule(rule) => rule.type_name(),
            Criterion::Formula { .. } => "formula",
            Criterion::Manual => "manual",
        }
    }

    fn canonical(&self) -> String {
        match self {
            Criterion::Rule(rule) => serde_json::to_string(rule).unwrap_or_else(|_| format!("{rule:?}")),
            // The canonical print: spacing, quotes and keyword case are not changes.
            Criterion::Formula { tree, .. } => format!("formula: {tree}"),
            Criterion::Manual => "manual".to_string(),
        }
    }

    /// The criterion in words.
    pub fn describe(&self) -> String {
        match self {
            Criterion::Rule(rule) => rule.to_string(),
            Criterion::Formula { tree, .. } => tree.to_string(),
            Criterion::Manual => "awarded by hand".to_string(),
        }
    }
}

/// Every problem found in a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.0.len() == 1 { "" } else { "s" };
        writeln!(f, "{} problem{plural} in the config:", self.0.len())?;
        for problem in &self.0 {
            writeln!(f, "  - {}", problem.replace('\n', "\n    "))?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The fields of one `[[badges]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBadge {
    id: String,
    name: String,
    image: Option<String>,
    #[serde(default)]
    points: i64,
    #[serde(default)]
    status: BadgeStatus,
    #[serde(default)]
    hidden_until_earned: bool,
    activity_since: Option<String>,
    rule: Option<Rule>,
    formula: Option<String>,
    #[serde(default)]
    manual: bool,
    description: Option<String>,
    criteria: Option<String>,
    repeat: Option<String>,
    max_grants: Option<u32>,
    #[serde(default)]
    revoke_when_unmet: bool,
    measure: Option<String>,
    levels: Option<Vec<RawLevel>>,
}

/// One entry of a badge's `levels`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLevel {
    id: String,
    name: String,
    min: toml::Value,
    #[serde(default)]
    points: i64,
    image: Option<String>,
    description: Option<String>,
    criteria: Option<String>,
}

/// Compiles a raw config into a plan, or reports every problem in it.
pub fn compile(raw: RawConfig) -> Result<Plan, ConfigErrors> {
    let mut errors = Vec::new();
    let timezone = match raw.evaluation.timezone.as_deref() {
        None => Tz::UTC,
        Some(name) => name.parse::<Tz>().unwrap_or_else(|_| {
            errors
                .push(format!("[evaluation] timezone '{name}' is not an IANA time zone name (e.g. America/New_York)"));
            Tz::UTC
        }),
    };
    let when_locked = match raw.evaluation.when_locked.as_deref() {
        None | Some("exit") => WhenLocked::Exit,
        Some("wait") => WhenLocked::Wait,
        Some(other) => {
            errors.push(format!("[evaluation] when_locked = '{other}': expected \"exit\" or \"wait\""));
            WhenLocked::Exit
        }
    };
    let on_backfill = match raw.notifications.on_backfill.as_deref() {
        None | Some("none") => OnBackfill::None,
        Some("all") => OnBackfill::All,
        Some(other) => {
            errors.push(format!("[notifications] on_backfill = '{other}': expected \"none\" or \"all\""));
            OnBackfill::None
        }
    };
    let on_revoke_all = match raw.notifications.on_revoke.as_deref() {
        None | Some("none") => false,
        Some("all") => true,
        Some(other) => {
            errors.push(format!("[notifications] on_revoke = '{other}': expected \"none\" or \"all\""));
            false
        }
    };
    let notifications = Notifications { on_backfill, on_revoke_all, max_per_run: raw.notifications.max_per_run };
    if let Some(Err(e)) = raw.evaluation.schedule.as_deref().map(crate::cron::parse_schedule) {
        errors.push(format!("[evaluation] schedule {e}"));
    }
    if let Some(Err(e)) = raw.evaluation.incremental_schedule.as_deref().map(crate::cron::parse_schedule) {
        errors.push(format!("[evaluation] incremental_schedule {e}"));
    }
    let late_rows = match raw.evaluation.late_rows.as_deref() {
        None => DEFAULT_LATE_ROWS,
        Some(text) => crate::instant::parse_duration(text).unwrap_or_else(|e| {
            errors.push(format!("[evaluation] late_rows {e}"));
            DEFAULT_LATE_ROWS
        }),
    };
    if raw.evaluation.shards == Some(0) {
        errors.push("[evaluation] shards must be at least 1".to_string());
    }
    if raw.database.url.trim().is_empty() {
        errors.push("[database] url is empty".to_string());
    }
    let sources = compile_sources(&raw, &mut errors);
    let issuer = raw.issuer.as_ref().and_then(|section| compile_issuer(section, &mut errors));
    // Names of [sources.events] (valid or not: an aggregate over a misnamed source is reported
    // with the source, not again with each formula).
    let events: BTreeSet<String> = raw.sources.events.keys().cloned().collect();
    let mut badges = Vec::new();
    let mut seen = HashSet::new();
    for (index, table) in raw.badges.into_iter().enumerate() {
        let label = badge_label(&table, index);
        match compile_badge(table, &timezone, &events) {
            Ok(compiled) => {
                for badge in compiled {
                    let label = format!("badge '{}'", badge.id);
                    if !seen.insert(badge.id.clone()) {
                        errors.push(format!("{label}: the id is used by another badge; ids must be unique"));
                    }
                    for kind in badge.sources() {
                        if !sources.contains_key(&kind) {
                            errors.push(format!(
                                "{label} ({}) needs source '{kind}', which [sources] does not define",
                                badge.criterion.type_name()
                            ));
                        }
                    }
                    badges.push(badge);
                }
            }
            Err(problems) => errors.extend(problems.into_iter().map(|p| format!("{label}: {p}"))),
        }
    }
    if errors.is_empty() {
        Ok(Plan {
            database_url: raw.database.url,
            awards_url: raw.database.awards_url,
            when_locked,
            schedule: raw.evaluation.schedule,
            shards: raw.evaluation.shards,
            incremental_schedule: raw.evaluation.incremental_schedule,
            late_rows,
            notifications,
            timezone,
            sources,
            badges,
            issuer,
        })
    } else {
        Err(ConfigErrors(errors))
    }
}

fn compile_sources(raw: &RawConfig, errors: &mut Vec<String>) -> SourceQueries {
    let mut sources = SourceQueries::new();
    for (name, query) in &raw.sources.events {
        match SourceKind::check_event_name(name) {
            Err(problem) => errors.push(problem),
            Ok(()) if query.trim().is_empty() => errors.push(format!("source '{name}': the query is empty")),
            Ok(()) => {
                sources.insert(SourceKind::event(name), query.trim().trim_end_matches(';').to_string());
            }
        }
    }
    for (name, query) in &raw.sources.queries {
        match SourceKind::from_name(name) {
            Some(kind) if query.trim().is_empty() => errors.push(format!("source '{kind}': the query is empty")),
            Some(kind) => {
                sources.insert(kind, query.trim().trim_end_matches(';').to_string());
            }
            None => {
                let known: Vec<_> = SourceKind::ALL.iter().map(|k| k.name()).collect();
                errors.push(format!(
                    "[sources] '{name}' is not a source; known sources: {} (name other event sources under \
                     [sources.events])",
                    known.join(", ")
                ));
            }
        }
    }
    if !sources.contains_key(&SourceKind::Users) {
        errors.push("[sources] users is required: a query returning user_id, created_at, blocked".to_string());
    }
    sources
}

fn compile_issuer(section: &crate::config::IssuerSection, errors: &mut Vec<String>) -> Option<Issuer> {
    let mut web_url = |field: &str, text: &str| match url::Url::parse(text.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
        Ok(_) => {
            errors.push(format!("[issuer] {field} = '{text}': expected an http or https URL"));
            None
        }
        Err(e) => {
            errors.push(format!("[issuer] {field} = '{text}' is not a URL: {e}"));
            None
        }
    };
    let id = web_url("id", &section.id);
    let url = web_url("url", &section.url);
    if section.name.trim().is_empty() {
        errors.push("[issuer] name is empty".to_string());
    }
    if let Some(email) = &section.email
        && !email.contains('@')
    {
        errors.push(format!("[issuer] email = '{email}' is not an email address"));
    }
    Some(Issuer {
        id: id?,
        name: section.name.trim().to_string(),
        url: url?,
        email: section.email.clone(),
        description: section.description.clone(),
    })
}

fn badge_label(table: &toml::Table, index: usize) -> String {
    match table.get("id").and_then(|v| v.as_str()) {
        Some(id) => format!("badge '{id}'"),
        None => format!("badges[{index}]"),
    }
}

/// Whether `id` may name a badge (or a level: `commenter.bronze`).
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        // Ids name files and URLs of Open Badges exports: "." and ".." would step out of them.
        && id.chars().any(|c| c.is_ascii_alphanumeric())
}

/// One `[[badges]]` table: one badge, or one per level of a badge with `levels`.
fn compile_badge(table: toml::Table, timezone: &Tz, events: &BTreeSet<String>) -> Result<Vec<Badge>, Vec<String>> {
    let mut raw: RawBadge = toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| vec![in_users_words(e.message().trim_end(), &table)])?;
    let mut problems = Vec::new();
    if !valid_id(&raw.id) {
        problems.push("the id must be 1 to 100 letters, digits, '-', '_' and '.', with a letter or digit".to_string());
    }
    if let Some(levels) = raw.levels.take() {
        return compile_levels(raw, levels, timezone, events, problems);
    }
    if raw.measure.is_some() {
        problems.push("measure is the measure of levels: add levels = [{ id, name, min }, ...], or use formula".into());
    }
    let repeat = match raw.repeat.as_deref() {
        None => None,
        Some(text) => Repeat::parse(text).or_else(|| {
            problems.push(format!("repeat = '{text}': expected \"week\", \"month\", \"year\" or \"item\""));
            None
        }),
    };
    if raw.max_grants.is_some() && raw.repeat.is_none() {
        problems.push("max_grants caps the grants of a repeating badge: add repeat, or remove max_grants".into());
    }
    if raw.max_grants == Some(0) {
        problems.push("max_grants must be at least 1".into());
    }
    if raw.revoke_when_unmet && raw.repeat.is_some() {
        problems.push(
            "revoke_when_unmet cannot be used with repeat: a grant of a past period or item stays earned; \
             remove one of them"
                .into(),
        );
    }
    if raw.name.trim().is_empty() {
        problems.push("the name is empty".to_string());
    }
    let activity_since = raw.activity_since.as_deref().and_then(|text| {
        instant::parse_date_literal(text, timezone).map_err(|e| problems.push(format!("activity_since: {e}"))).ok()
    });
    let criterion = match (raw.rule, raw.formula, raw.manual) {
        (Some(rule), None, false) => Some(Criterion::Rule(rule)),
        (None, Some(text), false) => compile_formula(text, timezone, events, &mut problems),
        (None, None, true) => Some(Criterion::Manual),
        (None, None, false) => {
            problems
                .push("has no criterion: add rule = { type = ... }, formula = \"...\" or manual = true".to_string());
            None
        }
        _ => {
            problems.push("has more than one criterion (rule, formula, manual = true); keep one".to_string());
            None
        }
    };
    if let (Some(repeat), Some(criterion)) = (repeat, &criterion) {
        problems.extend(repeat_problems(criterion, repeat));
    }
    if raw.revoke_when_unmet && matches!(criterion, Some(Criterion::Manual)) {
        problems.push("revoke_when_unmet needs a rule or formula: a manual badge is never revoked by a run".into());
    }
    match criterion {
        Some(criterion) if problems.is_empty() => Ok(vec![Badge {
            id: raw.id,
            name: raw.name,
            image: raw.image,
            points: raw.points,
            status: raw.status,
            hidden_until_earned: raw.hidden_until_earned,
            activity_since,
            criterion,
            description: raw.description,
            criteria: raw.criteria,
            repeat,
            max_grants: raw.max_grants,
            revoke_when_unmet: raw.revoke_when_unmet,
            level: None,
        }]),
        _ => Err(problems),
    }
}

/// Why a criterion cannot repeat: every event aggregate must count one period's (or item's)
/// rows, and at least one must.
fn repeat_problems(criterion: &Criterion, repeat: Repeat) -> Vec<String> {
    match criterion {
        Criterion::Manual => Vec::new(),
        Criterion::Formula { tree, .. } => formula::compile::repeat_problems(tree, repeat == Repeat::Item),
        Criterion::Rule(Rule::PostsSent { .. }) => Vec::new(),
        Criterion::Rule(Rule::SocialConnections { .. }) => vec![format!(
            "repeat = \"{}\": rule social_connections counts a best week or month across the member's history, \
             not one period's or item's rows; use formula = \"count(connections) >= N\"",
            repeat.as_str()
        )],
        Criterion::Rule(rule) => vec![format!(
            "repeat = \"{}\": rule {} reads no events, so no period or item could be counted; \
             a repeating badge needs an event aggregate such as count(posts)",
            repeat.as_str(),
            rule.type_name()
        )],
    }
}

/// The badges of a `[[badges]]` table with `measure` and `levels`: `ID.LEVEL` for each level,
/// earned when the measure reaches the level's `min`.
fn compile_levels(
    raw: RawBadge,
    levels: Vec<RawLevel>,
    timezone: &Tz,
    events: &BTreeSet<String>,
    mut problems: Vec<String>,
) -> Result<Vec<Badge>, Vec<String>> {
    if raw.rule.is_some() || raw.formula.is_some() || raw.manual {
        problems.push("a badge with levels is earned by its measure: remove rule, formula or manual".into());
    }
    if raw.repeat.is_some() || raw.max_grants.is_some() {
        problems.push("a badge with levels cannot repeat: remove repeat and max_grants".into());
    }
    if levels.is_empty() {
        problems.push("levels is empty: give at least one { id, name, min }".into());
    }
    let Some(measure) = raw.measure.clone() else {
        problems.push("levels need a measure, e.g. measure = \"count(posts, kind = 'comment')\"".into());
        return Err(problems);
    };
    let activity_since = raw.activity_since.as_deref().and_then(|text| {
        instant::parse_date_literal(text, timezone).map_err(|e| problems.push(format!("activity_since: {e}"))).ok()
    });
    let mut badges = Vec::new();
    let mut previous: Option<f64> = None;
    let mut ids = HashSet::new();
    for (index, level) in levels.into_iter().enumerate() {
        let at = format!("levels[{index}] ('{}')", level.id);
        if !valid_id(&level.id) || level.id.contains('.') {
            problems.push(format!("{at}: a level id is 1 to 100 letters, digits, '-' and '_'"));
        } else if !valid_id(&format!("{}.{}", raw.id, level.id)) {
            problems
                .push(format!("{at}: the level's badge id '{}.{}' is longer than 100 characters", raw.id, level.id));
        }
        if !ids.insert(level.id.clone()) {
            problems.push(format!("{at}: another level has this id"));
        }
        if level.name.trim().is_empty() {
            problems.push(format!("{at}: the name is empty"));
        }
        let min = match &level.min {
            toml::Value::Integer(n) => Some(*n as f64),
            toml::Value::Float(x) if x.is_finite() => Some(*x),
            other => {
                problems.push(format!("{at}: min = {other}: expected a number"));
                None
            }
        };
        let Some(min) = min else { continue };
        if let Some(before) = previous
            && min <= before
        {
            problems.push(format!(
                "{at}: min = {min} is not above the previous level's {before}; thresholds must increase"
            ));
        }
        previous = Some(min);
        let text = format!("{measure} >= {min}");
        let mut formula_problems = Vec::new();
        let Some(criterion) = compile_formula(text, timezone, events, &mut formula_problems) else {
            problems.extend(formula_problems.into_iter().map(|p| format!("measure >= min of {at}: {p}")));
            continue;
        };
        let one_measure = match &criterion {
            Criterion::Formula { tree: formula::Formula::Clause(clause), .. } => formula::compile::is_measure(clause),
            _ => false,
        };
        if !one_measure {
            problems.push(format!(
                "measure = \"{measure}\" is not a number to compare (an aggregate, metric.NAME, setting.KEY or \
                 user.NAME)"
            ));
            break;
        }
        badges.push(Badge {
            id: format!("{}.{}", raw.id, level.id),
            name: level.name,
            image: level.image.or_else(|| raw.image.clone()),
            points: level.points,
            status: raw.status,
            hidden_until_earned: raw.hidden_until_earned,
            activity_since,
            criterion,
            description: level.description.or_else(|| raw.description.clone()),
            criteria: level.criteria,
            repeat: None,
            max_grants: None,
            revoke_when_unmet: raw.revoke_when_unmet,
            level: Some(Level {
                badge_id: raw.id.clone(),
                badge_name: raw.name.clone(),
                measure: measure.clone(),
                index,
                min,
            }),
        });
    }
    if raw.name.trim().is_empty() {
        problems.push("the name is empty".to_string());
    }
    if problems.is_empty() { Ok(badges) } else { Err(problems) }
}

/// serde's message for a badge value of the wrong shape, in the config's words: the key that
/// holds the value and what it may be (`rule.min = -3: expected a whole number, 0 or more`,
/// not `invalid value: integer '-3', expected u32`).
fn in_users_words(message: &str, table: &toml::Table) -> String {
    let Some(rest) =
        message.strip_prefix("invalid value: integer `").or_else(|| message.strip_prefix("invalid value: integer '"))
    else {
        return message.to_string();
    };
    let Some((value, expected)) = rest.split_once("`, expected ").or_else(|| rest.split_once("', expected ")) else {
        return message.to_string();
    };
    let allowed = match expected {
        "u8" | "u16" | "u32" | "u64" => format!("a whole number, 0 or more (at most {})", max_of(expected)),
        "i8" | "i16" | "i32" | "i64" => "a whole number".to_string(),
        other => other.to_string(),
    };
    match value.parse::<i64>().ok().and_then(|v| key_holding(table, v, "")) {
        Some(key) => format!("{key} = {value}: expected {allowed}"),
        None => format!("{value} is not allowed: expected {allowed}"),
    }
}

fn max_of(unsigned: &str) -> u64 {
    match unsigned {
        "u8" => u64::from(u8::MAX),
        "u16" => u64::from(u16::MAX),
        "u32" => u64::from(u32::MAX),
        _ => u64::MAX,
    }
}

/// The dotted key of the first integer `value` in `table` (nested tables included).
fn key_holding(table: &toml::Table, value: i64, prefix: &str) -> Option<String> {
    table.iter().find_map(|(key, item)| {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match item {
            toml::Value::Integer(v) if *v == value => Some(path),
            toml::Value::Table(inner) => key_holding(inner, value, &path),
            _ => None,
        }
    })
}

/// Parses and validates a formula, adding each problem with its column and a caret.
fn compile_formula(
    text: String,
    timezone: &Tz,
    events: &BTreeSet<String>,
    problems: &mut Vec<String>,
) -> Option<Criterion> {
    let errors = match formula::parse(&text) {
        Ok(tree) => {
            let errors = formula::compile::validate(&tree, timezone, events);
            if errors.is_empty() {
                return Some(Criterion::Formula { text, tree });
            }
            errors
        }
        Err(error) => vec![error],
    };
    for error in errors {
        problems.push(format!("formula, column {}:\n{}", error.column(&text), error.render(&text)));
    }
    None
}
