//! Per-member features: the numbers and flags that rules and formulas compare.
//!
//! Owns the [`Feature`] catalogue and the one place each is computed from the snapshot, as a
//! grouped Polars aggregation joined onto the member frame. Rules ask a [`FeatureSet`] for the
//! column of a feature; equal features (same source, kind, training and `activity_since`) are
//! computed once per run however many badges use them.

use super::{Context, Period, TrainingState};
use crate::instant::CalendarSpan;
use crate::sources::{Snapshot, SourceKind};
use anyhow::{Result, anyhow};
use polars::prelude::*;
use std::collections::BTreeMap;

/// Days added before taking a remainder by 7, so the remainder of any date after year 1 is
/// non-negative whatever convention the remainder follows.
const WEEK_ALIGN: i64 = 7 * 200_000;

/// A per-member value computed from the snapshot. `since` is an `activity_since` instant
/// (µs): only rows at or after it count.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    /// Rows of `posts`, of one `kind` if given.
    Posts { kind: Option<String>, since: Option<i64> },
    /// Distinct non-null `thread_id`s of `posts`, of one `kind` if given.
    DistinctThreads { kind: Option<String>, since: Option<i64> },
    /// Rows of `connections`.
    Connections { since: Option<i64> },
    /// The most connections inside one calendar week or month.
    BestPeriod { period: Period, since: Option<i64> },
    /// The key of the (earliest) best week or month, for explain.
    BestPeriodKey { period: Period, since: Option<i64> },
    /// Rows of `logins`.
    Logins { since: Option<i64> },
    /// The longest run of consecutive local days with a sign-in.
    ConsecutiveLoginDays { since: Option<i64> },
    /// The last sign-in (µs), null without one.
    LastSignin { since: Option<i64> },
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
}

impl Feature {
    /// The value a member without any source row has.
    fn missing_value(&self) -> Option<Expr> {
        match self {
            Feature::BestPeriodKey { .. } | Feature::LastSignin { .. } | Feature::SettingValue { .. } => None,
            Feature::Metric { .. } => Some(lit(0i64)),
            Feature::AnyRole { .. } | Feature::IdIn { .. } => Some(lit(false)),
            _ => Some(lit(0i64)),
        }
    }
}

/// The features one evaluation needs, each with its column name in the feature frame.
#[derive(Debug)]
pub struct FeatureSet {
    ctx: Context,
    columns: BTreeMap<Feature, String>,
}

impl FeatureSet {
    pub fn new(ctx: Context) -> Self {
        FeatureSet { ctx, columns: BTreeMap::new() }
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The column holding `feature`, registering it on first use.
    pub fn column(&mut self, feature: Feature) -> Expr {
        let next = format!("f{}", self.columns.len());
        col(self.columns.entry(feature).or_insert(next).as_str())
    }

    /// The best week's or month's count and that period's key.
    pub fn best_period(&mut self, period: Period, since: Option<i64>) -> (Expr, Expr) {
        let count = self.column(Feature::BestPeriod { period, since });
        let key = self.column(Feature::BestPeriodKey { period, since });
        (count, key)
    }

    /// The instant (µs) at which a member's account is `span` old: `span` added to the
    /// creation instant on the calendar of the evaluation timezone. Adding in the zone (not on
    /// wall-clock readings) keeps it an instant, so eligibility never goes back when clocks
    /// do; a result inside a skipped hour moves forward out of it.
    pub fn eligible_from(&self, span: CalendarSpan) -> Expr {
        self.local_zoned(col("created_zoned"))
            .dt()
            .offset_by(lit(span.polars_offset()))
            .dt()
            .timestamp(TimeUnit::Microseconds)
    }

    /// The evaluation instant (µs since the epoch, UTC).
    pub fn as_of(&self) -> Expr {
        lit(self.ctx.as_of_micros())
    }

    /// The member frame with one column per registered feature.
    ///
    /// Each feature is computed and aligned to the members on its own (a join of the member
    /// ids with the feature's per-member values), then added as a column: one small plan per
    /// feature rather than one plan with a join per feature, whose depth would grow with the
    /// number of features.
    pub fn build(&self, snapshot: &Snapshot) -> Result<DataFrame> {
        let failed = |e: PolarsError| anyhow!("computing member features: {e}");
        let members =
            self.members(snapshot)?.sort(["user_id"], SortMultipleOptions::default()).collect().map_err(failed)?;
        let ids = members.select(["user_id"]).map_err(failed)?;
        let mut columns = Vec::with_capacity(self.columns.len());
        let mut best_periods = BestPeriods::new();
        for (feature, name) in &self.columns {
            let values = self
                .compute(feature, snapshot, &mut best_periods)?
                .select([col("user_id"), col("value").alias(name.as_str())]);
            let mut value = col(name.as_str());
            if let Some(missing) = feature.missing_value() {
                value = value.fill_null(missing);
            }
            // Keeping the left side's order aligns the values with `members` without a sort.
            let keep_order = JoinArgs { maintain_order: MaintainOrderJoin::Left, ..JoinArgs::new(JoinType::Left) };
            let aligned = ids
                .clone()
                .lazy()
                .join(values, [col("user_id")], [col("user_id")], keep_order)
                .select([value])
                .collect()
                .map_err(|e| anyhow!("computing feature {feature:?}: {e}"))?;
            columns.extend(aligned.into_columns());
        }
        members.hstack(&columns).map_err(failed)
    }

    /// Members created at or before the evaluation instant, with their base columns:
    /// `user_id`, `created_at` (µs), `created_zoned` (the datetime), `blocked`, and
    /// `avatar_changed` when the users source has it.
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
        Ok(users
            .clone()
            .lazy()
            .filter(micros(col("created_at")).lt_eq(self.as_of()))
            .select(columns)
            .unique(Some(cols(["user_id"])), UniqueKeepStrategy::First))
    }

    /// Rows of an activity source up to the evaluation instant (and from `since`).
    fn activity(&self, snapshot: &Snapshot, kind: SourceKind, since: Option<i64>) -> Result<LazyFrame> {
        let frame = snapshot.frame(kind).ok_or_else(|| anyhow!("the {kind} source was not loaded"))?;
        let at = micros(col("created_at"));
        let mut keep = at.clone().lt_eq(self.as_of());
        if let Some(since) = since {
            keep = keep.and(at.gt_eq(lit(since)));
        }
        Ok(frame.clone().lazy().filter(keep))
    }

    /// A frame `(user_id, value)` for one feature.
    fn compute(&self, feature: &Feature, snapshot: &Snapshot, best_periods: &mut BestPeriods) -> Result<LazyFrame> {
        let per_user = |lf: LazyFrame, value: Expr| lf.group_by([col("user_id")]).agg([value.alias("value")]);
        let count = || len().cast(DataType::Int64);
        Ok(match feature {
            Feature::Posts { kind, since } => {
                per_user(of_kind(self.activity(snapshot, SourceKind::Posts, *since)?, kind), count())
            }
            Feature::DistinctThreads { kind, since } => {
                let posts = of_kind(self.activity(snapshot, SourceKind::Posts, *since)?, kind)
                    .filter(col("thread_id").is_not_null());
                per_user(posts, col("thread_id").n_unique().cast(DataType::Int64))
            }
            Feature::Connections { since } => {
                per_user(self.activity(snapshot, SourceKind::Connections, *since)?, count())
            }
            Feature::Logins { since } => per_user(self.activity(snapshot, SourceKind::Logins, *since)?, count()),
            Feature::BestPeriod { period, since } => self
                .best_periods(snapshot, *period, *since, best_periods)?
                .select([col("user_id"), col("best").alias("value")]),
            Feature::BestPeriodKey { period, since } => self
                .best_periods(snapshot, *period, *since, best_periods)?
                .select([col("user_id"), col("key").alias("value")]),
            Feature::ConsecutiveLoginDays { since } => self.consecutive_days(snapshot, *since)?,
            Feature::LastSignin { since } => {
                per_user(self.activity(snapshot, SourceKind::Logins, *since)?, micros(col("created_at")).max())
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
        })
    }

    /// Each member's best count and its (earliest) period, computed once for both features.
    fn best_periods(
        &self,
        snapshot: &Snapshot,
        period: Period,
        since: Option<i64>,
        cache: &mut BestPeriods,
    ) -> Result<LazyFrame> {
        if let Some(frame) = cache.get(&(period, since)) {
            return Ok(frame.clone().lazy());
        }
        let frame = self
            .period_counts(snapshot, period, since)?
            .group_by([col("user_id")])
            .agg([col("n").max().alias("best"), col("period").filter(col("n").eq(col("n").max())).min().alias("key")])
            .collect()
            .map_err(|e| anyhow!("counting connections per {period}: {e}"))?;
        cache.insert((period, since), frame.clone());
        Ok(frame.lazy())
    }

    /// Connections counted per member and calendar week (Monday-start key, in local days) or
    /// month (`year * 12 + month - 1`): `(user_id, period, n)`.
    fn period_counts(&self, snapshot: &Snapshot, period: Period, since: Option<i64>) -> Result<LazyFrame> {
        let days = self.local_days(snapshot, SourceKind::Connections)?;
        let key = match period {
            Period::Week => days.clone() - ((days + lit(3 + WEEK_ALIGN)) % lit(7i64)),
            Period::Month => {
                let date = days.cast(DataType::Int32).cast(DataType::Date);
                date.clone().dt().year().cast(DataType::Int64) * lit(12i64) + date.dt().month().cast(DataType::Int64)
                    - lit(1i64)
            }
        };
        Ok(self
            .activity(snapshot, SourceKind::Connections, since)?
            .select([col("user_id"), key.alias("period")])
            .group_by([col("user_id"), col("period")])
            .agg([len().cast(DataType::Int64).alias("n")]))
    }

    /// The longest run of consecutive local calendar days with at least one sign-in.
    fn consecutive_days(&self, snapshot: &Snapshot, since: Option<i64>) -> Result<LazyFrame> {
        let day = self.local_days(snapshot, SourceKind::Logins)?;
        let starts_run = col("user_id")
            .neq(col("user_id").shift(lit(1)))
            .or(col("day").neq(col("day").shift(lit(1)) + lit(1i64)))
            .fill_null(lit(true));
        Ok(self
            .activity(snapshot, SourceKind::Logins, since)?
            .select([col("user_id"), day.alias("day")])
            .unique(None, UniqueKeepStrategy::Any)
            .sort(["user_id", "day"], SortMultipleOptions::default())
            .with_column(starts_run.cast(DataType::Int64).cum_sum(false).alias("run"))
            .group_by([col("user_id"), col("run")])
            .agg([len().cast(DataType::Int64).alias("days")])
            .group_by([col("user_id")])
            .agg([col("days").max().alias("value")]))
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
    /// `created_at`: the UTC offset comes from the zone's few offset changes over the column's
    /// range, as a chain of comparisons, instead of a zone lookup per row.
    fn local_days(&self, snapshot: &Snapshot, kind: SourceKind) -> Result<Expr> {
        const DAY: i64 = 86_400 * crate::instant::MICROS_PER_SECOND;
        // Shifts instants far enough forward that integer division rounds down for any date
        // after year 1.
        const SHIFT_DAYS: i64 = 1_000_000;
        let frame = snapshot.frame(kind).ok_or_else(|| anyhow!("the {kind} source was not loaded"))?;
        let at = frame
            .column("created_at")
            .and_then(|c| c.as_materialized_series().cast(&DataType::Int64))
            .map_err(|e| anyhow!("reading {kind}.created_at: {e}"))?;
        let at = at.i64().map_err(|e| anyhow!("reading {kind}.created_at: {e}"))?;
        let (first, changes) = match (at.min(), at.max()) {
            (Some(min), Some(max)) => crate::instant::offset_changes(&self.ctx.timezone, min, max),
            _ => (0, Vec::new()),
        };
        let micros = micros(col("created_at"));
        // The offset is a step function: the first offset plus each change's difference from
        // the instant it takes effect.
        let mut offset = lit(first);
        let mut previous = first;
        for (at, next) in changes {
            offset = offset + micros.clone().gt_eq(lit(at)).cast(DataType::Int64) * lit(next - previous);
            previous = next;
        }
        Ok((micros + offset + lit(SHIFT_DAYS * DAY)) / lit(DAY) - lit(SHIFT_DAYS))
    }

    /// A UTC datetime column converted to the evaluation timezone (still an instant).
    fn local_zoned(&self, instant: Expr) -> Expr {
        instant.dt().convert_time_zone(self.ctx.polars_timezone())
    }
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

/// Best-period frames already computed in one build, by period and `activity_since`.
type BestPeriods = std::collections::HashMap<(Period, Option<i64>), DataFrame>;

/// A datetime column as µs since the epoch.
fn micros(instant: Expr) -> Expr {
    instant.dt().timestamp(TimeUnit::Microseconds)
}

fn of_kind(posts: LazyFrame, kind: &Option<String>) -> LazyFrame {
    match kind {
        Some(kind) => posts.filter(col("kind").eq(lit(kind.as_str()))),
        None => posts,
    }
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
