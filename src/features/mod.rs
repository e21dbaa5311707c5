//! Per-member features: the numbers and flags that rules and formulas compare.
//!
//! Owns the [`Feature`] catalogue and the one place each is computed from the snapshot, as a
//! grouped Polars aggregation joined onto the member frame. Every count over a member's events
//! (posts, connections, sign-ins, `[sources.events]`) is one [`Aggregate`]: the rule types and
//! the older formula clauses are aggregates too, so equal ones (same source, kinds, window) are
//! computed once per run however many badges and clauses use them.
//!
//! It also owns the vocabulary features are computed in, which the predicates, the plan and
//! evaluation share: the [`Context`] (instant and zone), calendar [`Period`]s, [`TrainingState`]s
//! and the [`Repeat`] kinds whose grant keys features compute.

use crate::instant::CalendarSpan;
use crate::sources::{Snapshot, SourceKind};
use anyhow::{Result, anyhow};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// The instant and zone an evaluation is made for.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub as_of: DateTime<Utc>,
    pub timezone: Tz,
}

impl Context {
    pub fn as_of_micros(&self) -> i64 {
        crate::instant::to_micros(self.as_of)
    }

    pub fn polars_timezone(&self) -> TimeZone {
        TimeZone::from_chrono(&self.timezone)
    }
}

/// A calendar period of the `social_connections` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Week,
    Month,
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Period::Week => "week",
            Period::Month => "month",
        })
    }
}

/// How far a member got in a training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrainingState {
    Enrolled,
    Completed,
    Passed,
}

impl fmt::Display for TrainingState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrainingState::Enrolled => "enrolled in",
            TrainingState::Completed => "completed",
            TrainingState::Passed => "passed",
        })
    }
}

/// How often a badge may be earned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Repeat {
    /// Once per ISO week (from Monday 00:00 local): grant `2026-W23`.
    Week,
    /// Once per calendar month: grant `2026-06`.
    Month,
    /// Once per calendar year: grant `2026`.
    Year,
    /// Once per distinct `item` of the criterion's event source: the grant is the item.
    Item,
}

impl Repeat {
    pub fn as_str(self) -> &'static str {
        match self {
            Repeat::Week => "week",
            Repeat::Month => "month",
            Repeat::Year => "year",
            Repeat::Item => "item",
        }
    }

    pub fn parse(text: &str) -> Option<Repeat> {
        [Repeat::Week, Repeat::Month, Repeat::Year, Repeat::Item].into_iter().find(|r| r.as_str() == text)
    }

    /// Whether `grant` names a grant of this kind: `2026-W23` (weeks 01 to 53), `2026-06`,
    /// `2026`, or any item id that is not empty.
    pub fn check_grant(self, grant: &str) -> Result<(), String> {
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let ok = match self {
            Repeat::Week => grant.split_once("-W").is_some_and(|(y, w)| {
                digits(y, 4) && digits(w, 2) && (1..=53).contains(&w.parse::<u32>().unwrap_or(0))
            }),
            Repeat::Month => grant.split_once('-').is_some_and(|(y, m)| {
                digits(y, 4) && digits(m, 2) && (1..=12).contains(&m.parse::<u32>().unwrap_or(0))
            }),
            Repeat::Year => digits(grant, 4),
            Repeat::Item => !grant.trim().is_empty() && grant.len() <= 191,
        };
        let example = match self {
            Repeat::Week => "an ISO week such as 2026-W23",
            Repeat::Month => "a month such as 2026-06",
            Repeat::Year => "a year such as 2026",
            Repeat::Item => "an item id (1 to 191 bytes)",
        };
        if ok {
            Ok(())
        } else {
            Err(format!("'{grant}' is not a grant of a badge repeating per {}: expected {example}", self.as_str()))
        }
    }
}

/// What an aggregate computes from a member's event rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Agg {
    /// Rows.
    Count,
    /// Distinct non-null `item`s.
    Distinct,
    /// The sum of `value`, in whole millionths.
    Sum,
    /// Distinct local days with a row.
    ActiveDays,
    /// The most rows in one local day, ISO week or month.
    BestDay,
    BestWeek,
    BestMonth,
    /// The longest run of consecutive local days or ISO weeks with a row.
    StreakDays,
    StreakWeeks,
    /// The run of consecutive local days with a row that ends on the evaluation day or the day
    /// before; 0 otherwise.
    CurrentStreakDays,
    /// The first or last row's instant (µs); null without one.
    First,
    Last,
}

impl Agg {
    pub const ALL: [Agg; 12] = [
        Agg::Count,
        Agg::Distinct,
        Agg::Sum,
        Agg::ActiveDays,
        Agg::BestDay,
        Agg::BestWeek,
        Agg::BestMonth,
        Agg::StreakDays,
        Agg::StreakWeeks,
        Agg::CurrentStreakDays,
        Agg::First,
        Agg::Last,
    ];

    /// The name formulas write.
    pub fn name(self) -> &'static str {
        match self {
            Agg::Count => "count",
            Agg::Distinct => "distinct",
            Agg::Sum => "sum",
            Agg::ActiveDays => "active_days",
            Agg::BestDay => "best_day",
            Agg::BestWeek => "best_week",
            Agg::BestMonth => "best_month",
            Agg::StreakDays => "streak_days",
            Agg::StreakWeeks => "streak_weeks",
            Agg::CurrentStreakDays => "current_streak_days",
            Agg::First => "first",
            Agg::Last => "last",
        }
    }

    pub fn from_name(name: &str) -> Option<Agg> {
        Agg::ALL.into_iter().find(|a| a.name() == name)
    }

    /// `first` and `last` give an instant, compared with a date; the others a number.
    pub fn is_date(self) -> bool {
        matches!(self, Agg::First | Agg::Last)
    }

    /// The calendar unit of a best-period or streak aggregate: these also have evidence (the
    /// period, or the run's first day or week; see [`Feature::EventKey`]).
    pub fn bucket(self) -> Option<Bucket> {
        match self {
            Agg::BestDay | Agg::StreakDays | Agg::CurrentStreakDays => Some(Bucket::Day),
            Agg::BestWeek | Agg::StreakWeeks => Some(Bucket::Week),
            Agg::BestMonth => Some(Bucket::Month),
            _ => None,
        }
    }
}

/// A local calendar period: what best-period and streak aggregates group rows by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bucket {
    Day,
    Week,
    Month,
}

impl From<Period> for Bucket {
    fn from(period: Period) -> Self {
        match period {
            Period::Week => Bucket::Week,
            Period::Month => Bucket::Month,
        }
    }
}

/// One aggregate over one member's events: which rows (the source, of which kinds, from which
/// instant up to the evaluation instant) and what is computed from them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aggregate {
    pub agg: Agg,
    pub source: SourceKind,
    /// Only rows of one of these kinds (sorted, distinct; empty: none); `None`: every row.
    pub kinds: Option<Vec<String>>,
    /// Only rows at or after this instant (µs): the latest of `activity_since`, `since` and the
    /// start of a `within` window.
    pub from: Option<i64>,
}

impl Aggregate {
    /// Every row of `source` from `from`.
    pub fn new(agg: Agg, source: SourceKind, from: Option<i64>) -> Self {
        Aggregate { agg, source, kinds: None, from }
    }

    /// Only rows of these kinds: intersected with any kinds already required.
    pub fn of_kinds(mut self, kinds: &[String]) -> Self {
        let mut wanted: Vec<String> = kinds.to_vec();
        wanted.sort();
        wanted.dedup();
        if let Some(before) = &self.kinds {
            wanted.retain(|k| before.contains(k));
        }
        self.kinds = Some(wanted);
        self
    }

    /// Only rows at or after `instant` as well.
    pub fn from_instant(mut self, instant: i64) -> Self {
        self.from = Some(self.from.map_or(instant, |from| from.max(instant)));
        self
    }
}

/// A per-member value computed from the snapshot. `since` is an `activity_since` instant
/// (µs): only rows at or after it count.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    /// An aggregate's value: a count (0 without rows), a sum in whole millionths (0 without
    /// rows), or for `first`/`last` an instant (µs, null without rows).
    Event(Aggregate),
    /// The evidence of a best-period or streak aggregate: the (earliest) best period's key, or
    /// the first key of the (earliest) longest or the current run; null without one. Day keys
    /// are local days since 1970-01-01, a best week's key the days of its Monday, a streak week's
    /// key the week number (see [`monday_of_week_number`]), a month's `year * 12 + month - 1`.
    EventKey(Aggregate),
    /// Distinct trainings in that state (of one training if given).
    Trainings { state: TrainingState, training: Option<String>, since: Option<i64> },
    /// The sum of the member's `metrics` rows of that name, in whole millionths (see
    /// [`METRIC_SCALE`]); 0 without one.
    Metric { name: String },
    /// The member has any of these roles.
    AnyRole { roles: Vec<String> },
    /// The member's id is one of these.
    IdIn { ids: Vec<i64> },
    /// The member's value of a setting key (the greatest, if several), null without one.
    SettingValue { key: String },
    /// The member's value of a setting key read as a number (the greatest of those that are
    /// numbers), null without one.
    SettingNumber { key: String },
}

impl Feature {
    /// The value a member without any source row has.
    fn missing_value(&self) -> Option<Expr> {
        match self {
            Feature::Event(a) if a.agg.is_date() => None,
            Feature::EventKey(_) | Feature::SettingValue { .. } | Feature::SettingNumber { .. } => None,
            Feature::AnyRole { .. } | Feature::IdIn { .. } => Some(lit(false)),
            _ => Some(lit(0i64)),
        }
    }
}

/// The days of week `week`'s Monday (both since 1970-01-01, which was a Thursday): weeks are
/// numbered so that consecutive weeks are consecutive numbers.
pub fn monday_of_week_number(week: i64) -> i64 {
    7 * week - 3
}

/// The features one evaluation needs, each with its column name in the feature frame.
///
/// A set for badges that repeat (`grant`) has one row per member and grant instead of one per
/// member: event aggregates count only the rows of that period or item, every other feature is
/// the member's at the evaluation instant.
#[derive(Debug)]
pub struct FeatureSet {
    ctx: Context,
    columns: BTreeMap<Feature, String>,
    grant: Option<Repeat>,
    /// The spans compiled checks measured from the evaluation instant (see [`Sliding`]).
    sliding: std::cell::RefCell<Sliding>,
}

/// What makes a set's values change with time alone, with no new or changed rows: `within`
/// windows that slide (rows leave them), account ages that are reached, and current streaks
/// that end at local midnight. Incremental runs find the members this can change from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sliding {
    /// Spans of `within` windows: a row leaves the window `span` after its `created_at`.
    pub windows: std::collections::BTreeSet<CalendarSpan>,
    /// Spans from a member's creation compared with the evaluation instant (account age,
    /// `time_since_registration`).
    pub ages: std::collections::BTreeSet<CalendarSpan>,
    /// Event sources read by a `current_streak_days` aggregate.
    pub streaks: std::collections::BTreeSet<SourceKind>,
    /// Event sources read by any aggregate.
    pub sources: std::collections::BTreeSet<SourceKind>,
}

impl Sliding {
    pub fn merge(&mut self, other: Sliding) {
        self.windows.extend(other.windows);
        self.ages.extend(other.ages);
        self.streaks.extend(other.streaks);
        self.sources.extend(other.sources);
    }
}

/// The text of a period grant's key: a week's Monday (local days since 1970-01-01) as
/// `2026-W23` (ISO week-year and week), a month (`year * 12 + month - 1`) as `2026-06`, a year
/// as `2026`.
pub fn grant_text(repeat: Repeat, key: i64) -> String {
    match repeat {
        Repeat::Week => {
            use chrono::Datelike;
            let monday = chrono::NaiveDate::default().checked_add_signed(chrono::Duration::days(key));
            match monday {
                Some(day) => format!("{}-W{:02}", day.iso_week().year(), day.iso_week().week()),
                None => key.to_string(),
            }
        }
        Repeat::Month => format!("{:04}-{:02}", key.div_euclid(12), key.rem_euclid(12) + 1),
        Repeat::Year => format!("{key:04}"),
        Repeat::Item => key.to_string(),
    }
}

impl FeatureSet {
    pub fn new(ctx: Context) -> Self {
        FeatureSet { ctx, columns: BTreeMap::new(), grant: None, sliding: Default::default() }
    }

    /// A set whose rows are (member, grant) for badges that repeat by `repeat`.
    pub fn granted(ctx: Context, repeat: Repeat) -> Self {
        FeatureSet { ctx, columns: BTreeMap::new(), grant: Some(repeat), sliding: Default::default() }
    }

    /// How the set's rows are granted (`None`: one row per member).
    pub fn grant(&self) -> Option<Repeat> {
        self.grant
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The column holding `feature`, registering it on first use.
    pub fn column(&mut self, feature: Feature) -> Expr {
        let next = format!("f{}", self.columns.len());
        col(self.columns.entry(feature).or_insert(next).as_str())
    }

    /// An aggregate's value and, for best-period and streak aggregates, its evidence.
    pub fn aggregate(&mut self, aggregate: Aggregate) -> (Expr, Option<Expr>) {
        let key = aggregate.agg.bucket().map(|_| self.column(Feature::EventKey(aggregate.clone())));
        (self.column(Feature::Event(aggregate)), key)
    }

    /// The instant (µs) at which a member's account is `span` old: `span` added to the
    /// creation instant on the calendar of the evaluation timezone. Adding in the zone (not on
    /// wall-clock readings) keeps it an instant, so eligibility never goes back when clocks
    /// do; a result inside a skipped hour moves forward out of it.
    pub fn eligible_from(&self, span: CalendarSpan) -> Expr {
        self.sliding.borrow_mut().ages.insert(span);
        self.local_zoned(col("created_zoned"))
            .dt()
            .offset_by(lit(span.polars_offset()))
            .dt()
            .timestamp(TimeUnit::Microseconds)
    }

    /// The start (µs) of a `within` window: `span` before the evaluation instant, subtracted
    /// on the local calendar as [`FeatureSet::eligible_from`] adds it (a reading that falls in a
    /// skipped hour moves forward out of it). Before the representable range: the earliest
    /// instant, so every row counts.
    pub fn window_start(&self, span: CalendarSpan) -> i64 {
        self.sliding.borrow_mut().windows.insert(span);
        let tz = self.ctx.timezone;
        let wall = self.ctx.as_of.with_timezone(&tz).naive_local();
        span.subtract_from(wall)
            .map(|start| crate::instant::to_micros(crate::instant::local_to_utc(start, &tz)))
            .unwrap_or(i64::MIN)
    }

    /// What makes the set's values change with time alone (see [`Sliding`]).
    pub fn sliding(&self) -> Sliding {
        let mut sliding = self.sliding.borrow().clone();
        for feature in self.columns.keys() {
            if let Feature::Event(a) | Feature::EventKey(a) = feature {
                sliding.sources.insert(a.source);
                if a.agg == Agg::CurrentStreakDays {
                    sliding.streaks.insert(a.source);
                }
            }
        }
        sliding
    }

    /// The members of the `users` frame whose account reaches one of `ages` (or who are created)
    /// between the instants `from` and `to` (µs, both included): whose eligibility by account
    /// age can change between two evaluations at those instants.
    pub fn reaching_age(&self, users: &DataFrame, ages: &[CalendarSpan], from: i64, to: i64) -> Result<Vec<i64>> {
        let between = |e: Expr| e.clone().gt_eq(lit(from)).and(e.lt_eq(lit(to)));
        let mut any = between(col("created_at"));
        for span in ages {
            any = any.or(between(self.eligible_from(*span)).fill_null(lit(false)));
        }
        let found = users
            .clone()
            .lazy()
            .select([
                col("user_id"),
                micros(col("created_at")).alias("created_at"),
                col("created_at").alias("created_zoned"),
            ])
            .filter(any)
            .select([col("user_id")])
            .collect()
            .map_err(|e| anyhow!("finding members whose account age changes: {e}"))?;
        crate::sources::ids_of(&found)
    }

    /// The evaluation instant (µs since the epoch, UTC).
    pub fn as_of(&self) -> Expr {
        lit(self.ctx.as_of_micros())
    }

    /// The local day (days since 1970-01-01) of the evaluation instant.
    fn today(&self) -> i64 {
        let date = self.ctx.as_of.with_timezone(&self.ctx.timezone).date_naive();
        date.signed_duration_since(chrono::NaiveDate::default()).num_days()
    }

    /// The member frame with one column per registered feature.
    ///
    /// Each feature is computed and aligned to the members on its own (a join of the member
    /// ids with the feature's per-member values), then added as a column: one small plan per
    /// feature rather than one plan with a join per feature, whose depth would grow with the
    /// number of features.
    pub fn build(&self, snapshot: &Snapshot) -> Result<DataFrame> {
        let failed = |e: PolarsError| anyhow!("computing member features: {e}");
        let members = match self.grant {
            None => self.members(snapshot)?.sort(["user_id"], SortMultipleOptions::default()),
            Some(_) => self.members(snapshot)?.join(
                self.grants(snapshot)?,
                [col("user_id")],
                [col("user_id")],
                JoinArgs::new(JoinType::Inner),
            ),
        };
        let members = match self.grant {
            None => members,
            Some(_) => members.sort(["user_id", "grant_at", "grant"], SortMultipleOptions::default()),
        }
        .collect()
        .map_err(failed)?;
        let keys: &[&str] = if self.grant.is_some() { &["user_id", "grant"] } else { &["user_id"] };
        let ids = members.select(keys.iter().copied()).map_err(failed)?;
        let mut columns = Vec::with_capacity(self.columns.len());
        let mut keyed = Keyed::new();
        for (feature, name) in &self.columns {
            let clock = std::time::Instant::now();
            // Event aggregates of a granted set are per (member, grant); the rest per member.
            let on: Vec<Expr> = match (self.grant, feature) {
                (Some(_), Feature::Event(_)) => vec![col("user_id"), col("grant")],
                _ => vec![col("user_id")],
            };
            let mut picked = on.clone();
            picked.push(col("value").alias(name.as_str()));
            let values = self.compute(feature, snapshot, &mut keyed)?.select(picked);
            let mut value = col(name.as_str());
            if let Some(missing) = feature.missing_value() {
                value = value.fill_null(missing);
            }
            // Keeping the left side's order aligns the values with `members` without a sort.
            let keep_order = JoinArgs { maintain_order: MaintainOrderJoin::Left, ..JoinArgs::new(JoinType::Left) };
            let aligned = ids
                .clone()
                .lazy()
                .join(values, on.clone(), on, keep_order)
                .select([value])
                .collect()
                .map_err(|e| anyhow!("computing feature {feature:?}: {e}"))?;
            columns.extend(aligned.into_columns());
            let (rss_mib, peak_rss_mib) = crate::telemetry::memory_mib();
            tracing::debug!(
                feature = ?feature,
                elapsed_ms = clock.elapsed().as_millis() as u64,
                rss_mib,
                peak_rss_mib,
                "computed feature"
            );
        }
        members.hstack(&columns).map_err(failed)
    }

    /// Members created at or before the evaluation instant, with their base columns:
    /// `user_id`, `created_at` (µs), `created_zoned` (the datetime), `blocked`, and every
    /// other column the users source returned (`avatar_changed`, the `user.NAME` columns).
    fn members(&self, snapshot: &Snapshot) -> Result<LazyFrame> {
        let users = snapshot.frame(SourceKind::Users).ok_or_else(|| anyhow!("the users source was not loaded"))?;
        let mut columns = vec![
            col("user_id"),
            micros(col("created_at")).alias("created_at"),
            col("created_at").alias("created_zoned"),
            col("blocked").fill_null(lit(false)),
        ];
        if snapshot.has_column(SourceKind::Users, "avatar_changed") {
            columns.push(col("avatar_changed").fill_null(lit(false)));
        }
        for name in users.get_column_names() {
            if name.starts_with("user.") {
                let column = col(name.as_str());
                // Timestamps compare as µs, like `created_at`.
                let is_timestamp = matches!(users.column(name).map(|c| c.dtype()), Ok(DataType::Datetime(..)));
                columns.push(if is_timestamp { micros(column).alias(name.as_str()) } else { column });
            }
        }
        Ok(users
            .clone()
            .lazy()
            .filter(micros(col("created_at")).lt_eq(self.as_of()))
            .select(columns)
            .unique(Some(cols(["user_id"])), UniqueKeepStrategy::First))
    }

    /// The grants members may earn: `(user_id, grant, grant_at)` for every period or item with
    /// at least one row that an event aggregate of the set reads, `grant_at` its first row (µs).
    fn grants(&self, snapshot: &Snapshot) -> Result<LazyFrame> {
        let mut rows = Vec::new();
        for feature in self.columns.keys() {
            if let Feature::Event(aggregate) = feature {
                rows.push(self.events(snapshot, aggregate)?.select([
                    col("user_id"),
                    col("grant"),
                    micros(col("created_at")).alias("at"),
                ]));
            }
        }
        if rows.is_empty() {
            return Err(anyhow!("a repeating badge reads no events"));
        }
        Ok(concat(rows, UnionArgs::default())
            .map_err(|e| anyhow!("collecting grants: {e}"))?
            .group_by([col("user_id"), col("grant")])
            .agg([col("at").min().alias("grant_at")]))
    }

    /// Rows of an event source up to the evaluation instant (and from `from`).
    fn activity(&self, snapshot: &Snapshot, kind: SourceKind, from: Option<i64>) -> Result<LazyFrame> {
        let frame = snapshot.frame(kind).ok_or_else(|| anyhow!("the {kind} source was not loaded"))?;
        let at = micros(col("created_at"));
        let mut keep = at.clone().lt_eq(self.as_of());
        if let Some(from) = from {
            keep = keep.and(at.gt_eq(lit(from)));
        }
        Ok(frame.clone().lazy().filter(keep))
    }

    /// The rows an aggregate reads: its source's, in its window, of its kinds; in a granted set
    /// with each row's `grant` (rows without an item have none and are left out).
    fn events(&self, snapshot: &Snapshot, aggregate: &Aggregate) -> Result<LazyFrame> {
        let rows = self.activity(snapshot, aggregate.source, aggregate.from)?;
        let rows = match &aggregate.kinds {
            None => rows,
            Some(kinds) => {
                let any = kinds.iter().map(|k| col("kind").eq(lit(k.as_str()))).reduce(Expr::or).unwrap_or(lit(false));
                rows.filter(any.fill_null(lit(false)))
            }
        };
        let grant = match self.grant {
            None => return Ok(rows),
            Some(Repeat::Item) => col("item"),
            Some(Repeat::Week) => self.local_keys(snapshot, aggregate.source, DayKey::Week)?,
            Some(Repeat::Month) => self.local_keys(snapshot, aggregate.source, DayKey::Month)?,
            Some(Repeat::Year) => floor_div(self.local_keys(snapshot, aggregate.source, DayKey::Month)?, 12),
        };
        Ok(rows.with_column(grant.alias("grant")).filter(col("grant").is_not_null()))
    }

    /// A frame `(user_id, value)` for one feature.
    fn compute(&self, feature: &Feature, snapshot: &Snapshot, keyed: &mut Keyed) -> Result<LazyFrame> {
        let per_user = |lf: LazyFrame, value: Expr| lf.group_by([col("user_id")]).agg([value.alias("value")]);
        // An event aggregate of a granted set is per member and grant.
        let per_event_key = |lf: LazyFrame, value: Expr| match self.grant {
            None => per_user(lf, value),
            Some(_) => lf.group_by([col("user_id"), col("grant")]).agg([value.alias("value")]),
        };
        let event_keys = || match self.grant {
            None => vec![col("user_id")],
            Some(_) => vec![col("user_id"), col("grant")],
        };
        Ok(match feature {
            Feature::Event(aggregate) => {
                let rows = self.events(snapshot, aggregate)?;
                match aggregate.agg {
                    Agg::Count => per_event_key(rows, len().cast(DataType::Int64)),
                    Agg::Distinct => per_event_key(
                        rows.filter(col("item").is_not_null()),
                        col("item").n_unique().cast(DataType::Int64),
                    ),
                    Agg::Sum => per_event_key(rows, exact_sum(col("value").fill_null(lit(0.0f64)))),
                    Agg::ActiveDays => {
                        let day = self.local_keys(snapshot, aggregate.source, DayKey::Day)?;
                        let mut picked = event_keys();
                        picked.push(day.alias("day"));
                        per_event_key(rows.select(picked), col("day").n_unique().cast(DataType::Int64))
                    }
                    Agg::First => per_event_key(rows, micros(col("created_at")).min()),
                    Agg::Last => per_event_key(rows, micros(col("created_at")).max()),
                    _ => self.keyed(snapshot, aggregate, keyed)?.select([col("user_id"), col("best").alias("value")]),
                }
            }
            Feature::EventKey(aggregate) => {
                self.keyed(snapshot, aggregate, keyed)?.select([col("user_id"), col("key").alias("value")])
            }
            Feature::Trainings { state, training, since } => self.trainings(snapshot, *state, training, *since)?,
            Feature::Metric { name } => {
                let metrics = source(snapshot, SourceKind::Metrics)?.filter(col("name").eq(lit(name.as_str())));
                per_user(metrics, exact_sum(col("value").fill_null(lit(0.0f64))))
            }
            Feature::AnyRole { roles } => {
                let wanted = one_column_frame("role", Column::new("role".into(), roles.as_slice()))?;
                let holders = source(snapshot, SourceKind::Roles)?.semi_join(wanted, col("role"), col("role"));
                per_user(holders, lit(true))
            }
            Feature::IdIn { ids } => one_column_frame("user_id", Column::new("user_id".into(), ids.as_slice()))?
                .unique(None, UniqueKeepStrategy::Any)
                .with_column(lit(true).alias("value")),
            Feature::SettingValue { key } => {
                let settings = source(snapshot, SourceKind::Settings)?
                    .filter(col("key").eq(lit(key.as_str())).and(col("value").is_not_null()));
                per_user(settings, col("value").max())
            }
            Feature::SettingNumber { key } => {
                // Text that is not a number (or is empty) is no value, as if unset.
                let number = col("value").cast(DataType::Float64);
                let settings = source(snapshot, SourceKind::Settings)?
                    .filter(col("key").eq(lit(key.as_str())))
                    .select([col("user_id"), number.alias("number")])
                    .filter(col("number").is_not_null().and(col("number").is_finite()));
                per_user(settings, col("number").max())
            }
        })
    }

    /// A best-period or streak aggregate: `(user_id, best, key)`, computed once for its value
    /// and its evidence.
    fn keyed(&self, snapshot: &Snapshot, aggregate: &Aggregate, cache: &mut Keyed) -> Result<LazyFrame> {
        if let Some(frame) = cache.get(aggregate) {
            return Ok(frame.clone().lazy());
        }
        let failed = |e: PolarsError| anyhow!("computing {}({}): {e}", aggregate.agg.name(), aggregate.source);
        let key = match aggregate.agg {
            Agg::BestDay | Agg::StreakDays | Agg::CurrentStreakDays => DayKey::Day,
            Agg::BestWeek => DayKey::Week,
            Agg::StreakWeeks => DayKey::WeekNumber,
            Agg::BestMonth => DayKey::Month,
            other => return Err(anyhow!("{} has no calendar period", other.name())),
        };
        let rows = self
            .events(snapshot, aggregate)?
            .select([col("user_id"), self.local_keys(snapshot, aggregate.source, key)?.alias("period")])
            .collect()
            .map_err(failed)?;
        let frame = match aggregate.agg {
            Agg::BestDay | Agg::BestWeek | Agg::BestMonth => match Packed::of(&rows, "period", 0) {
                Some(packed) => packed.best_periods(rows).map_err(failed)?,
                None => best_of_counts(
                    rows.lazy().group_by([col("user_id"), col("period")]).agg([len().cast(DataType::Int64).alias("n")]),
                )
                .collect()
                .map_err(failed)?,
            },
            Agg::StreakDays | Agg::StreakWeeks => match Packed::of(&rows, "period", 1) {
                Some(packed) => packed.longest_runs(rows).map_err(failed)?,
                None => best_of_counts(runs_unpacked(rows)).collect().map_err(failed)?,
            },
            _ => {
                // The run that ends today or yesterday: a member has at most one (runs do not
                // overlap, and no row is after the evaluation instant).
                let runs = match Packed::of(&rows, "period", 1) {
                    Some(packed) => packed.runs(rows).map_err(failed)?,
                    None => runs_unpacked(rows),
                };
                let ends = col("period") + col("n") - lit(1i64);
                runs.filter(ends.gt_eq(lit(self.today() - 1)))
                    .select([col("user_id"), col("n").alias("best"), col("period").alias("key")])
                    .collect()
                    .map_err(failed)?
            }
        };
        cache.insert(aggregate.clone(), frame.clone());
        Ok(frame.lazy())
    }

    fn trainings(
        &self,
        snapshot: &Snapshot,
        state: TrainingState,
        training: &Option<String>,
        since: Option<i64>,
    ) -> Result<LazyFrame> {
        let enrolled = micros(col("enrolled_at"));
        // A row without an enrolment time counts, unless the badge asks for activity since a date.
        let mut keep = enrolled.clone().lt_eq(self.as_of()).fill_null(lit(since.is_none()));
        if let Some(since) = since {
            keep = keep.and(enrolled.gt_eq(lit(since)).fill_null(lit(false)));
        }
        if let Some(id) = training {
            keep = keep.and(col("training_id").eq(lit(id.as_str())));
        }
        keep = match state {
            TrainingState::Enrolled => keep,
            TrainingState::Completed => keep.and(col("progress").gt_eq(lit(100.0f64)).fill_null(lit(false))),
            TrainingState::Passed => keep.and(col("passed").fill_null(lit(false))),
        };
        Ok(source(snapshot, SourceKind::Trainings)?
            .filter(keep)
            .group_by([col("user_id")])
            .agg([col("training_id").n_unique().cast(DataType::Int64).alias("value")]))
    }

    /// The local calendar day (days since 1970-01-01 in the evaluation timezone) of each row's
    /// `created_at`, reduced to `key` (the day, its week or its month).
    fn local_keys(&self, snapshot: &Snapshot, kind: SourceKind, key: DayKey) -> Result<Expr> {
        let frame = snapshot.frame(kind).ok_or_else(|| anyhow!("the {kind} source was not loaded"))?;
        let at = frame
            .column("created_at")
            .and_then(|c| c.as_materialized_series().cast(&DataType::Int64))
            .map_err(|e| anyhow!("reading {kind}.created_at: {e}"))?;
        let at = at.i64().map_err(|e| anyhow!("reading {kind}.created_at: {e}"))?;
        // An empty column: any expression gives its (no) values.
        let (min, max) = at.min().zip(at.max()).unwrap_or((0, 0));
        let (first, changes) = crate::instant::offset_changes(&self.ctx.timezone, min, max);
        Ok(ZoneSpan { min, max, first, changes }.keys(key))
    }

    /// A UTC datetime column converted to the evaluation timezone (still an instant).
    fn local_zoned(&self, instant: Expr) -> Expr {
        instant.dt().convert_time_zone(self.ctx.polars_timezone())
    }
}

/// A source's `created_at` range (µs) with the evaluation zone's offset at its start and the
/// offset changes inside it (instant, new offset), all in µs.
struct ZoneSpan {
    min: i64,
    max: i64,
    first: i64,
    changes: Vec<(i64, i64)>,
}

impl ZoneSpan {
    /// Each row's local day reduced to `key`: one lookup in the quarter-hour table where the zone
    /// allows it, else the day from the offset step function and its key from a table of days.
    fn keys(&self, key: DayKey) -> Expr {
        const DAY: i64 = 86_400 * crate::instant::MICROS_PER_SECOND;
        if let Some(keys) = self.quarter_table(key) {
            return keys;
        }
        let days = self.stepped_days();
        if matches!(key, DayKey::Day) {
            return days;
        }
        // Offsets are under a day, so every local day lies within a day of its UTC day.
        let (first, last) = (self.min.div_euclid(DAY) - 1, self.max.div_euclid(DAY) + 1);
        let table = Series::new("day_keys".into(), (first..=last).map(|day| key.of_day(day)).collect::<Vec<_>>());
        lit(table).gather((days - lit(first)).cast(DataType::UInt32), false)
    }

    /// Where the zone's offsets and their changes all fall on quarter hours (every zone since the
    /// 1970s), each UTC quarter hour lies inside one local day: the local day of every instant,
    /// or its week or month, is then one lookup in a table of the quarter hours between the
    /// span's ends, instead of one pass over the column per offset change. `None` when that does
    /// not hold or the table would be large (over a century of quarter hours).
    fn quarter_table(&self, key: DayKey) -> Option<Expr> {
        const DAY: i64 = 86_400 * crate::instant::MICROS_PER_SECOND;
        const QUARTER: i64 = 15 * 60 * crate::instant::MICROS_PER_SECOND;
        const MAX_QUARTERS: i64 = 100 * 366 * 96;
        let aligned = |v: i64| v.rem_euclid(QUARTER) == 0;
        if !aligned(self.first) || !self.changes.iter().all(|(at, offset)| aligned(*at) && aligned(*offset)) {
            return None;
        }
        let base = self.min.div_euclid(QUARTER);
        let quarters = self.max.div_euclid(QUARTER).checked_sub(base)?.checked_add(1)?;
        if quarters > MAX_QUARTERS {
            return None;
        }
        let mut keys = Vec::with_capacity(usize::try_from(quarters).ok()?);
        let (mut offset, mut next) = (self.first, self.changes.iter().peekable());
        for q in 0..quarters {
            let start = (base + q) * QUARTER;
            while let Some((_, changed)) = next.next_if(|(at, _)| *at <= start) {
                offset = *changed;
            }
            keys.push(key.of_day((start + offset).div_euclid(DAY)));
        }
        let table = Series::new("local_days".into(), keys);
        // Every instant is at or after `min`, so the index is never negative.
        let index = ((micros(col("created_at")) - lit(base * QUARTER)) / lit(QUARTER)).cast(DataType::UInt32);
        Some(lit(table).gather(index, false))
    }

    /// The local day of each row from the zone's few offset changes over the span, as a chain
    /// of comparisons, instead of a zone lookup per row (for zones without the quarter table).
    fn stepped_days(&self) -> Expr {
        const DAY: i64 = 86_400 * crate::instant::MICROS_PER_SECOND;
        // Shifts instants far enough forward that integer division rounds down for any date
        // after year 1.
        const SHIFT_DAYS: i64 = 1_000_000;
        let micros = micros(col("created_at"));
        // The offset is a step function: the first offset plus each change's difference from
        // the instant it takes effect.
        let mut offset = lit(self.first);
        let mut previous = self.first;
        for (at, next) in &self.changes {
            offset = offset + micros.clone().gt_eq(lit(*at)).cast(DataType::Int64) * lit(next - previous);
            previous = *next;
        }
        (micros + offset + lit(SHIFT_DAYS * DAY)) / lit(DAY) - lit(SHIFT_DAYS)
    }
}

/// What a local day is reduced to: the day itself, the Monday of its ISO week, its ISO week's
/// number (consecutive weeks are consecutive numbers; see [`monday_of_week_number`]), or its
/// month (`year * 12 + month - 1`), each as an Int64 key.
#[derive(Debug, Clone, Copy)]
enum DayKey {
    Day,
    Week,
    WeekNumber,
    Month,
}

impl DayKey {
    /// The key of local day `day` (days since 1970-01-01).
    fn of_day(self, day: i64) -> i64 {
        match self {
            DayKey::Day => day,
            DayKey::Week => day - (day + 3).rem_euclid(7),
            DayKey::WeekNumber => (day + 3).div_euclid(7),
            DayKey::Month => month_of_day(day),
        }
    }
}

/// The month (`year * 12 + month - 1`) of a day number (days since 1970-01-01), by H. Hinnant's
/// civil-from-days.
fn month_of_day(day: i64) -> i64 {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let mp = (5 * (doe - (365 * yoe + yoe / 4 - yoe / 100)) + 2) / 153;
    let january_or_february = i64::from(mp >= 10);
    (yoe + era * 400 + january_or_february) * 12 + mp + 2 - january_or_february * 12
}

/// `(user_id, key)` pairs packed into one Int64, `(user_id - user_min) * stride + (key -
/// key_min)`, so that counting, deduplicating and sorting work on one integer column instead
/// of two (several times faster, and a fraction of the memory). Only when the ranges fit well
/// inside an i64 (any auto-increment ids do); otherwise callers use the two-column plan.
struct Packed {
    user_min: i64,
    key_min: i64,
    stride: i64,
    /// How many members' strides fit (the user range), for overflow checks of wider packings.
    users: i64,
}

/// Packed values stay below this, leaving headroom for arithmetic on them.
const PACKED_LIMIT: i64 = 1 << 61;

impl Packed {
    /// The packing of `rows`' `user_id` and `key` columns with `gap` unused keys after each
    /// member's range, or `None` if the rows are empty or the ranges are too wide.
    fn of(rows: &DataFrame, key: &str, gap: i64) -> Option<Packed> {
        let range = |name: &str| {
            let column = rows.column(name).ok()?.i64().ok()?.clone();
            Some((column.min()?, column.max()?))
        };
        let (user_min, user_max) = range("user_id")?;
        let (key_min, key_max) = range(key)?;
        let users = user_max.checked_sub(user_min)?.checked_add(1)?;
        let stride = key_max.checked_sub(key_min)?.checked_add(1 + gap)?;
        (users.checked_mul(stride)? < PACKED_LIMIT).then_some(Packed { user_min, key_min, stride, users })
    }

    fn pack(&self, key: &str) -> Expr {
        (col("user_id") - lit(self.user_min)) * lit(self.stride) + (col(key) - lit(self.key_min))
    }

    /// Each member's runs of consecutive keys (a repeated key continues nothing): the packed
    /// first key `k` of each run and its length `n`, sorted by `k`.
    fn packed_runs(&self, rows: DataFrame) -> PolarsResult<DataFrame> {
        let k = col("k");
        let keys = rows
            .lazy()
            .select([self.pack("period").alias("k")])
            .sort(["k"], SortMultipleOptions::default())
            // Sorted: a repeated key is a repeat of the previous row.
            .filter(k.clone().neq(k.shift(lit(1))).fill_null(lit(true)));
        runs_of(keys, 1).collect()
    }

    /// Each member's runs of consecutive keys: `(user_id, period, n)`, `period` the run's first
    /// key.
    fn runs(&self, rows: DataFrame) -> PolarsResult<LazyFrame> {
        let runs = self.packed_runs(rows)?;
        Ok(runs.lazy().select([
            (col("k") / lit(self.stride) + lit(self.user_min)).alias("user_id"),
            (col("k") % lit(self.stride) + lit(self.key_min)).alias("period"),
            col("n"),
        ]))
    }

    /// Each member's longest run of consecutive keys and the first key of the earliest such
    /// run: `(user_id, best, key)`.
    fn longest_runs(&self, rows: DataFrame) -> PolarsResult<DataFrame> {
        let runs = self.packed_runs(rows)?;
        self.best_of_packed(runs)
    }

    /// `frame` (sorted by its packed key `k`) with column `name`: each row's member id, `k /
    /// stride + offset`, flagged as sorted so that grouping by it takes Polars' sorted path
    /// (contiguous slices) instead of a hash table over millions of rows.
    fn with_members(&self, mut frame: DataFrame, name: &str, offset: i64) -> PolarsResult<DataFrame> {
        let mut members = (frame.column("k")?.i64()? / self.stride + offset).into_series();
        members.set_sorted_flag(polars::series::IsSorted::Ascending);
        frame.with_column(members.with_name(name.into()).into_column())?;
        Ok(frame)
    }

    /// Each member's most rows in one period and the earliest period with that many:
    /// `(user_id, best, key)`.
    fn best_periods(&self, rows: DataFrame) -> PolarsResult<DataFrame> {
        // Count by sorting the packed keys and measuring the runs of equal keys: a sort of one
        // Int64 column needs a fraction of a hash group-by's memory over millions of rows.
        let keys = rows.lazy().select([self.pack("period").alias("k")]).sort(["k"], SortMultipleOptions::default());
        let counts = runs_of(keys, 0).collect()?;
        self.best_of_packed(counts)
    }

    /// From packed keys `k` (sorted) with a count `n` each: each member's largest `n` and the
    /// earliest key with it, `(user_id, best, key)`.
    fn best_of_packed(&self, counts: DataFrame) -> PolarsResult<DataFrame> {
        let most = counts.column("n")?.i64()?.max().unwrap_or(0);
        // Repack as (member, most - n, period): the smallest value per member is its best count
        // in its earliest period.
        let span = (most + 1)
            .checked_mul(self.stride)
            .filter(|s| self.users.checked_mul(*s).is_some_and(|v| v < PACKED_LIMIT));
        let Some(span) = span else {
            let unpacked = counts.lazy().select([
                (col("k") / lit(self.stride) + lit(self.user_min)).alias("user_id"),
                (col("k") % lit(self.stride) + lit(self.key_min)).alias("period"),
                col("n"),
            ]);
            return best_of_counts(unpacked).collect();
        };
        let rank = col("member") * lit(span) + (lit(most) - col("n")) * lit(self.stride) + col("k") % lit(self.stride);
        let r = col("r");
        self.with_members(counts, "member", 0)?
            .lazy()
            .select([col("member"), rank.alias("r")])
            .group_by([col("member")])
            .agg([r.min()])
            .select([
                (col("member") + lit(self.user_min)).alias("user_id"),
                (lit(most) - (col("r") % lit(span)) / lit(self.stride)).alias("best"),
                (col("r") % lit(self.stride) + lit(self.key_min)).alias("key"),
            ])
            .collect()
    }
}

/// Each member's runs of consecutive keys from `(user_id, period)` rows, by a sort on both
/// columns (the plan for unpackable ids): `(user_id, period, n)`, `period` the run's first key.
fn runs_unpacked(rows: DataFrame) -> LazyFrame {
    let starts_run = col("user_id")
        .neq(col("user_id").shift(lit(1)))
        .or(col("period").neq(col("period").shift(lit(1)) + lit(1i64)))
        .fill_null(lit(true));
    rows.lazy()
        .unique(None, UniqueKeepStrategy::Any)
        .sort(["user_id", "period"], SortMultipleOptions::default())
        .with_column(starts_run.cast(DataType::Int64).cum_sum(false).alias("run"))
        .group_by([col("user_id"), col("run")])
        .agg([col("period").min(), len().cast(DataType::Int64).alias("n")])
        .select([col("user_id"), col("period"), col("n")])
}

/// The runs of a sorted key column `k` in which each key is the previous one plus `step` (0:
/// equal keys; 1: consecutive days): each run's first key `k` and its length `n`.
fn runs_of(sorted: LazyFrame, step: i64) -> LazyFrame {
    let k = col("k");
    sorted
        .with_row_index("position", None)
        .with_columns([col("position").cast(DataType::Int64), len().cast(DataType::Int64).alias("total")])
        .filter(k.clone().neq(k.clone().shift(lit(1)) + lit(step)).fill_null(lit(true)))
        .select([k, (col("position").shift(lit(-1)).fill_null(col("total")) - col("position")).alias("n")])
}

/// From counts `(user_id, period, n)`: each member's largest `n` and the earliest period with
/// it, `(user_id, best, key)`, by a two-column group-by (the plan for unpackable ids).
fn best_of_counts(counts: LazyFrame) -> LazyFrame {
    counts
        .group_by([col("user_id")])
        .agg([col("n").max().alias("best"), col("period").filter(col("n").eq(col("n").max())).min().alias("key")])
}

/// Metric values are summed as whole millionths, so DECIMAL values add up exactly
/// (0.70 + 0.10 is 0.8, not 0.7999999999999999) for values of up to six decimals.
pub const METRIC_SCALE: f64 = 1_000_000.0;

/// The sum of `value` in whole millionths (Int64), each value rounded to the nearest one.
fn exact_sum(value: Expr) -> Expr {
    let scaled = value * lit(METRIC_SCALE);
    let rounded = when(scaled.clone().gt_eq(lit(0.0f64)))
        .then((scaled.clone() + lit(0.5f64)).cast(DataType::Int64))
        .otherwise((scaled - lit(0.5f64)).cast(DataType::Int64));
    rounded.sum()
}

/// Best-period and streak frames already computed in one build.
type Keyed = HashMap<Aggregate, DataFrame>;

/// `value` divided by `by`, rounded down, as whole numbers (Polars' own floor division needs a
/// feature this build leaves out: `%` is floored, so `value - value % by` divides exactly).
pub(crate) fn floor_div(value: Expr, by: i64) -> Expr {
    ((value.clone() - value % lit(by)) / lit(by)).cast(DataType::Int64)
}

/// A datetime column as µs since the epoch.
fn micros(instant: Expr) -> Expr {
    instant.dt().timestamp(TimeUnit::Microseconds)
}

fn source(snapshot: &Snapshot, kind: SourceKind) -> Result<LazyFrame> {
    snapshot.frame(kind).map(|df| df.clone().lazy()).ok_or_else(|| anyhow!("the {kind} source was not loaded"))
}

fn one_column_frame(name: &str, column: Column) -> Result<LazyFrame> {
    DataFrame::new(column.len(), vec![column]).map(IntoLazy::lazy).map_err(|e| anyhow!("building the {name} list: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    /// The local day (days since 1970-01-01) of each instant by the quarter-hour table, or
    /// `None` when the zone's offsets do not allow it.
    fn table_days(tz: chrono_tz::Tz, instants: &[i64]) -> Option<Vec<i64>> {
        table_keys(tz, instants, DayKey::Day)
    }

    /// Each instant's local day reduced to `key` by the quarter-hour table.
    fn table_keys(tz: chrono_tz::Tz, instants: &[i64], key: DayKey) -> Option<Vec<i64>> {
        let expr = zone_span(tz, instants).quarter_table(key)?;
        Some(evaluate_keys(expr, instants))
    }

    fn zone_span(tz: chrono_tz::Tz, instants: &[i64]) -> ZoneSpan {
        let (min, max) = (*instants.iter().min().expect("instants"), *instants.iter().max().expect("instants"));
        let (first, changes) = crate::instant::offset_changes(&tz, min, max);
        ZoneSpan { min, max, first, changes }
    }

    /// `expr` (over a `created_at` column) evaluated for these instants.
    fn evaluate_keys(expr: Expr, instants: &[i64]) -> Vec<i64> {
        let at = Column::new("created_at".into(), instants)
            .cast(&DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)))
            .expect("datetimes");
        let frame = DataFrame::new(instants.len(), vec![at]).expect("a frame");
        let days = frame.lazy().select([expr.alias("day")]).collect().expect("local days");
        days.column("day").expect("day").i64().expect("i64").into_no_null_iter().collect()
    }

    #[test]
    fn the_quarter_hour_table_gives_chronos_local_day_in_zones_with_odd_offsets_and_changes() {
        // Every 7 minutes 13 seconds over three years: both sides of every change and midnight.
        let start = 1_700_000_000_000_000i64;
        let step = (7 * 60 + 13) * 1_000_000i64;
        let instants: Vec<i64> = (0..220_000).map(|i| start + i * step).collect();
        for tz in [
            chrono_tz::America::New_York,
            chrono_tz::America::St_Johns,
            chrono_tz::Asia::Kathmandu,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::Europe::Dublin,
            chrono_tz::UTC,
        ] {
            let days = table_days(tz, &instants).unwrap_or_else(|| panic!("{tz}: quarter-hour offsets"));
            for (micros, day) in instants.iter().zip(days) {
                let local = chrono::DateTime::from_timestamp_micros(*micros).map(|t| t.with_timezone(&tz).date_naive());
                let expected = local.map(|d| i64::from(d.num_days_from_ce()) - 719_163);
                assert_eq!(Some(day), expected, "{tz} at {micros}");
            }
        }
    }

    #[test]
    fn the_quarter_hour_table_gives_each_instants_local_iso_week_and_month() {
        // Every 53 minutes over two years, in a zone whose offset changes twice a year.
        let tz = chrono_tz::Europe::Berlin;
        let start = 1_735_000_000_000_000i64;
        let instants: Vec<i64> = (0..20_000).map(|i| start + i * 53 * 60 * 1_000_000).collect();
        let weeks = table_keys(tz, &instants, DayKey::Week).expect("Berlin's offsets are whole hours");
        let months = table_keys(tz, &instants, DayKey::Month).expect("Berlin's offsets are whole hours");
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
        for ((micros, week), month) in instants.iter().zip(weeks).zip(months) {
            let local = chrono::DateTime::from_timestamp_micros(*micros).expect("an instant").with_timezone(&tz);
            let date = local.date_naive();
            let monday = date - chrono::Duration::days(i64::from(date.weekday().num_days_from_monday()));
            assert_eq!(epoch + chrono::Duration::days(week), monday, "week of {local}");
            assert_eq!(month, i64::from(date.year()) * 12 + i64::from(date.month0()), "month of {local}");
        }
    }

    #[test]
    fn floor_div_rounds_down_for_negative_and_positive_values() {
        let values = [-25i64, -24, -13, -12, -1, 0, 1, 11, 12, 25];
        let frame = df!("v" => values).expect("a frame");
        let out = frame.lazy().select([floor_div(col("v"), 12).alias("q")]).collect().expect("the division");
        let got: Vec<Option<i64>> = out.column("q").expect("q").i64().expect("i64").iter().collect();
        let expected: Vec<Option<i64>> = values.iter().map(|v| Some(v.div_euclid(12))).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn month_of_day_agrees_with_the_calendar_for_every_day_from_1600_to_2400() {
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
        for day in -135_140..157_000i64 {
            let date = epoch + chrono::Duration::days(day);
            assert_eq!(month_of_day(day), i64::from(date.year()) * 12 + i64::from(date.month0()), "{date}");
        }
    }

    #[test]
    fn a_zone_whose_offset_is_not_a_whole_quarter_hour_keeps_the_step_function() {
        // Liberia was 44 minutes 30 seconds behind UTC until 1972.
        let instants = [0i64, 30 * 86_400 * 1_000_000];
        assert_eq!(table_days(chrono_tz::Africa::Monrovia, &instants), None);
    }

    #[test]
    fn where_the_quarter_table_cannot_be_used_the_step_function_gives_each_instants_local_day_week_and_month() {
        // Liberia, 44 minutes 30 seconds behind UTC until 7 January 1972, then on UTC: every 37
        // minutes from 1971 to 1973, across that change.
        let tz = chrono_tz::Africa::Monrovia;
        let start = 31_536_000_000_000i64;
        let instants: Vec<i64> = (0..40_000).map(|i| start + i * 37 * 60 * 1_000_000).collect();
        let span = zone_span(tz, &instants);
        assert!(span.quarter_table(DayKey::Day).is_none());
        let [days, weeks, months] =
            [DayKey::Day, DayKey::Week, DayKey::Month].map(|key| evaluate_keys(span.keys(key), &instants));
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
        for (i, micros) in instants.iter().enumerate() {
            let local = chrono::DateTime::from_timestamp_micros(*micros).expect("an instant").with_timezone(&tz);
            let date = local.date_naive();
            let monday = date - chrono::Duration::days(i64::from(date.weekday().num_days_from_monday()));
            assert_eq!(epoch + chrono::Duration::days(days[i]), date, "day of {local}");
            assert_eq!(epoch + chrono::Duration::days(weeks[i]), monday, "week of {local}");
            assert_eq!(months[i], i64::from(date.year()) * 12 + i64::from(date.month0()), "month of {local}");
        }
    }

    fn frame(user_ids: &[i64], keys: &[i64], key: &str) -> DataFrame {
        DataFrame::new(user_ids.len(), vec![Column::new("user_id".into(), user_ids), Column::new(key.into(), keys)])
            .expect("a frame")
    }

    fn sorted_rows(frame: DataFrame, columns: &[&str]) -> Vec<Vec<Option<i64>>> {
        let frame = frame.sort(columns.iter().copied(), SortMultipleOptions::default()).expect("sorted");
        (0..frame.height())
            .map(|row| {
                columns
                    .iter()
                    .map(|c| frame.column(c).and_then(|c| c.i64().cloned()).ok().and_then(|c| c.get(row)))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn packed_runs_never_join_one_members_last_day_to_the_next_members_first() {
        // Member 1: days 10, 11, 11 (a repeat), 12, then 14; member 2: 13, 14 (right after 1's).
        let rows = frame(&[1, 1, 1, 1, 1, 2, 2], &[10, 11, 11, 12, 14, 13, 14], "period");
        let packed = Packed::of(&rows, "period", 1).expect("small ranges pack");
        let runs = packed.longest_runs(rows).expect("runs");
        assert_eq!(
            sorted_rows(runs, &["user_id", "best", "key"]),
            vec![vec![Some(1), Some(3), Some(10)], vec![Some(2), Some(2), Some(13)]]
        );
    }

    #[test]
    fn packed_and_two_column_runs_find_the_same_runs() {
        let rows = frame(&[3, 3, 3, 3, 7, 7, 7, 7], &[5, 6, 6, 9, 1, 2, 3, 5], "period");
        let packed = Packed::of(&rows, "period", 1).expect("small ranges pack");
        let sorted = |lf: LazyFrame| sorted_rows(lf.collect().expect("runs"), &["user_id", "period", "n"]);
        let expected = vec![
            vec![Some(3), Some(5), Some(2)],
            vec![Some(3), Some(9), Some(1)],
            vec![Some(7), Some(1), Some(3)],
            vec![Some(7), Some(5), Some(1)],
        ];
        assert_eq!(sorted(packed.runs(rows.clone()).expect("packed runs")), expected);
        assert_eq!(sorted(runs_unpacked(rows)), expected);
    }

    #[test]
    fn consecutive_iso_weeks_have_consecutive_numbers_whose_monday_is_their_first_day() {
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
        for day in -3_000..3_000i64 {
            let week = DayKey::WeekNumber.of_day(day);
            assert_eq!(monday_of_week_number(week), DayKey::Week.of_day(day), "day {day}");
            assert_eq!(DayKey::WeekNumber.of_day(day + 7), week + 1, "day {day}");
            let monday = epoch + chrono::Duration::days(monday_of_week_number(week));
            assert_eq!(monday.weekday(), chrono::Weekday::Mon, "day {day}");
        }
    }

    #[test]
    fn packed_best_periods_take_the_earliest_of_tied_periods() {
        // Member 5: periods 3, 3, 7, 7, 9 (tie at 2: the earliest is 3); member 9: period 4 once.
        let rows = frame(&[5, 5, 5, 5, 5, 9], &[7, 3, 7, 3, 9, 4], "period");
        let packed = Packed::of(&rows, "period", 0).expect("small ranges pack");
        let best = packed.best_periods(rows).expect("best periods");
        assert_eq!(
            sorted_rows(best, &["user_id", "best", "key"]),
            vec![vec![Some(5), Some(2), Some(3)], vec![Some(9), Some(1), Some(4)]]
        );
    }

    #[test]
    fn ids_too_far_apart_to_pack_are_left_to_the_two_column_plan() {
        let rows = frame(&[-(1 << 62), 1 << 62], &[0, 1], "day");
        assert!(Packed::of(&rows, "day", 1).is_none());
    }

    #[test]
    fn decimal_metric_values_add_up_exactly() {
        let frame = DataFrame::new(
            3,
            vec![Column::new("user_id".into(), [1i64, 1, 2]), Column::new("value".into(), [0.70f64, 0.10, 2.49])],
        )
        .and_then(|df| {
            df.lazy()
                .group_by([col("user_id")])
                .agg([exact_sum(col("value")).alias("sum")])
                .sort(["user_id"], Default::default())
                .collect()
        })
        .map_err(|e| e.to_string());
        let sums: Vec<Option<i64>> = frame
            .and_then(|df| df.column("sum").and_then(|c| c.i64().cloned()).map_err(|e| e.to_string()))
            .map(|c| c.iter().collect())
            .unwrap_or_default();
        assert_eq!(sums, vec![Some(800_000), Some(2_490_000)]);
    }
}
