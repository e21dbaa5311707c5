//! Bulk evaluation: every badge's criterion for every member, as Polars expressions.
//!
//! Owns the path from a loaded [`Snapshot`] to candidate awards: badges compile their
//! criteria into [`crate::predicates::Check`]s over a shared [`FeatureSet`], the feature frame is computed once,
//! and each badge's predicate filters it. No per-member loop: one frame, one filter per badge.

mod explain;
pub mod progress;

pub use explain::{BadgeOutcome as BadgeExplanation, CheckOutcome, NodeOutcome};

use crate::config::plan::{Badge, Criterion, Repeat};
use crate::features::{Context, FeatureSet, Sliding, grant_text};
use crate::instant;
use crate::predicates::CheckTree;
use crate::sources::Snapshot;
use anyhow::{Result, anyhow};
use polars::prelude::*;

/// A badge's criterion compiled against the feature set.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub badge_id: String,
    /// The criterion's checks; the root's expression is the whole predicate.
    pub tree: CheckTree,
}

/// Compiles a badge's criterion; `None` for manual badges (they have no predicate).
pub fn compile(badge: &Badge, features: &mut FeatureSet) -> Option<Compiled> {
    let since = badge.activity_since.map(instant::to_micros);
    let tree = match &badge.criterion {
        Criterion::Rule(rule) => CheckTree::Check(rule.compile(since, features)),
        Criterion::Formula { tree, .. } => {
            let timezone = features.context().timezone;
            crate::predicates::formula::compile::compile(tree, &timezone, since, features)
        }
        Criterion::Manual => return None,
    };
    Some(Compiled { badge_id: badge.id.clone(), tree })
}

/// Separates the badges that can be evaluated on `snapshot` from those that read a source
/// that failed to load, or whose formulas use an optional column the source did not return
/// (each with a message naming the source and why).
pub fn split_ready<'a>(badges: &[&'a Badge], snapshot: &Snapshot) -> (Vec<&'a Badge>, Vec<(String, String)>) {
    let mut ready = Vec::new();
    let mut failed = Vec::new();
    for badge in badges {
        if let Some(reason) = snapshot.failure_of(&badge.sources()) {
            failed.push((badge.id.clone(), reason));
            continue;
        }
        let mut needed = match &badge.criterion {
            Criterion::Formula { tree, .. } => crate::predicates::formula::compile::optional_columns(tree),
            _ => Default::default(),
        };
        // A badge repeating per item reads the item of each of its event sources.
        if badge.repeat == Some(Repeat::Item) {
            needed.extend(badge.sources().into_iter().filter(|k| k.is_event()).map(|k| (k, "item")));
        }
        let missing: Vec<String> = needed
            .into_iter()
            .filter(|(kind, column)| !snapshot.has_column(*kind, column))
            .map(|(kind, column)| missing_column(kind, column))
            .collect();
        if missing.is_empty() {
            ready.push(*badge);
        } else {
            let what = if matches!(badge.criterion, Criterion::Formula { .. }) { "the formula" } else { "the badge" };
            failed.push((badge.id.clone(), format!("{what} needs it: {}", missing.join("; "))));
        }
    }
    (ready, failed)
}

/// Why a badge cannot be evaluated without `column` of source `kind`.
fn missing_column(kind: crate::sources::SourceKind, column: &str) -> String {
    if let Some(name) = column.strip_prefix("user.") {
        // `user.NAME:TYPE`: the users column NAME, read as TYPE.
        let name = name.split(':').next().unwrap_or(name);
        return format!("source 'users' returns no '{name}' column (read by user.{name})");
    }
    if kind == crate::sources::SourceKind::Posts && column == "item" {
        return "source 'posts' returns no 'item' (or 'thread_id') column".to_string();
    }
    format!("source '{kind}' returns no '{column}' column")
}

/// Stack size of the thread that evaluates: Polars plans and expressions are walked
/// recursively, and a formula may nest 256 levels deep. Only the pages used are committed.
const EVALUATION_STACK: usize = 256 * 1024 * 1024;

/// Runs CPU-heavy evaluation on a thread of its own with a deep stack, off the async runtime.
pub async fn on_evaluation_thread<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("accolade-evaluate".to_string())
        .stack_size(EVALUATION_STACK)
        .spawn(move || {
            let _ = tx.send(work());
        })
        .map_err(|e| anyhow!("starting the evaluation thread: {e}"))?;
    rx.await.map_err(|_| anyhow!("the evaluation thread stopped unexpectedly"))?
}

/// Badges evaluated on one feature frame: the badges earned once on the member frame, or the
/// badges repeating one way on its (member, grant) frame.
pub struct Part {
    pub grant: Option<Repeat>,
    /// One row per member, or per member and grant (with `grant` and `grant_at`), sorted by
    /// member then by the grant's first row.
    pub features: DataFrame,
    pub compiled: Vec<Compiled>,
}

/// The feature frames of a snapshot and the compiled badges evaluated on them.
pub struct Evaluation {
    pub ctx: Context,
    pub parts: Vec<Part>,
    /// `max_grants` of the badges that have one.
    caps: Vec<(String, u32)>,
}

impl Evaluation {
    /// Compiles `badges`, computes the features they need once per way of granting, and keeps
    /// the frames.
    pub fn prepare<'a>(ctx: Context, badges: impl IntoIterator<Item = &'a Badge>, snapshot: &Snapshot) -> Result<Self> {
        // The member frame is always built (explain tells a member from an unknown id by it).
        let mut sets: Vec<(Option<Repeat>, FeatureSet, Vec<Compiled>)> = vec![(None, FeatureSet::new(ctx), Vec::new())];
        let mut caps = Vec::new();
        for badge in badges {
            if let Some(cap) = badge.max_grants {
                caps.push((badge.id.clone(), cap));
            }
            // Badges earned once share the member frame; each repeating badge has a frame of its
            // own, whose grants are the periods or items of its own aggregates' rows.
            let at = match badge.repeat {
                None => 0,
                Some(repeat) => {
                    sets.push((Some(repeat), FeatureSet::granted(ctx, repeat), Vec::new()));
                    sets.len() - 1
                }
            };
            let (_, set, compiled) = &mut sets[at];
            if let Some(c) = compile(badge, set) {
                compiled.push(c);
            }
        }
        let mut parts = Vec::new();
        for (grant, set, compiled) in sets {
            parts.push(Part { grant, features: set.build(snapshot)?, compiled });
        }
        Ok(Evaluation { ctx, parts, caps })
    }

    /// What makes `badges`' criteria change with time alone (compiled, not evaluated).
    pub fn sliding<'a>(ctx: Context, badges: impl IntoIterator<Item = &'a Badge>) -> Sliding {
        let mut sliding = Sliding::default();
        for badge in badges {
            let mut set = match badge.repeat {
                None => FeatureSet::new(ctx),
                Some(repeat) => FeatureSet::granted(ctx, repeat),
            };
            compile(badge, &mut set);
            sliding.merge(set.sliding());
        }
        sliding
    }

    /// Every (badge_id, user_id, grant) whose criterion holds, grouped by badge, each badge's
    /// members in id order (and a member's grants in the order of their first rows).
    pub fn qualifying(&self) -> Result<DataFrame> {
        let mut per_badge: Vec<LazyFrame> = Vec::new();
        for part in &self.parts {
            for c in &part.compiled {
                let held = part.features.clone().lazy().filter(c.tree.pass().clone());
                let grant = match part.grant {
                    None => lit(""),
                    Some(_) => col("grant"),
                };
                per_badge.push(held.select([
                    lit(c.badge_id.as_str()).alias("badge_id"),
                    col("user_id"),
                    grant.cast(DataType::String).alias("grant"),
                ]));
                if let Some(repeat) = part.grant
                    && repeat != Repeat::Item
                {
                    let last = per_badge.len() - 1;
                    per_badge[last] = self.period_texts(per_badge[last].clone(), repeat, &part.features)?;
                }
            }
        }
        if per_badge.is_empty() {
            return Ok(empty_awards());
        }
        // The union keeps the badges together, each one's members in id order (the feature
        // frames are sorted by id): grouped by badge, with no sort on the badge text.
        concat(per_badge, UnionArgs::default())
            .and_then(LazyFrame::collect)
            .map_err(|e| anyhow!("evaluating badge criteria: {e}"))
    }

    /// The rows of `qualifying` of these badges.
    pub fn qualifying_of(qualifying: &DataFrame, badge_ids: &[String]) -> Result<DataFrame> {
        let ids = Column::new("badge_id".into(), badge_ids);
        let wanted = DataFrame::new(badge_ids.len(), vec![ids]).map_err(|e| anyhow!("selecting badges: {e}"))?;
        qualifying
            .clone()
            .lazy()
            .semi_join(wanted.lazy(), col("badge_id"), col("badge_id"))
            .collect()
            .map_err(|e| anyhow!("selecting badges: {e}"))
    }

    /// `held` with its period keys (`grant`, as numbers in text) written as grant texts
    /// (`2026-W23`): each distinct period of the frame is written once and joined back.
    fn period_texts(&self, held: LazyFrame, repeat: Repeat, frame: &DataFrame) -> Result<LazyFrame> {
        let failed = |e: PolarsError| anyhow!("naming grants: {e}");
        let keys = frame.column("grant").map_err(failed)?.unique().map_err(failed)?;
        let keys = keys.i64().map_err(failed)?;
        let numbers: Vec<String> = keys.iter().flatten().map(|k| k.to_string()).collect();
        let texts: Vec<String> = keys.iter().flatten().map(|k| grant_text(repeat, k)).collect();
        let names = DataFrame::new(
            numbers.len(),
            vec![Column::new("grant".into(), numbers), Column::new("text".into(), texts)],
        )
        .map_err(failed)?;
        let keep_order = JoinArgs { maintain_order: MaintainOrderJoin::Left, ..JoinArgs::new(JoinType::Left) };
        Ok(held.join(names.lazy(), [col("grant")], [col("grant")], keep_order).select([
            col("badge_id"),
            col("user_id"),
            col("text").alias("grant"),
        ]))
    }

    /// The qualifying grants minus those already awarded (`existing` has `badge_id`, `user_id`
    /// and `grant`), in the same order; of a badge with `max_grants`, only as many of a member's
    /// new grants (the earliest) as the cap leaves beside the grants held.
    pub fn new_awards(&self, existing: DataFrame) -> Result<DataFrame> {
        self.new_of(self.qualifying()?, existing)
    }

    /// [`Evaluation::new_awards`] of already computed qualifying grants.
    pub fn new_of(&self, qualifying: DataFrame, existing: DataFrame) -> Result<DataFrame> {
        let keys = [col("badge_id"), col("user_id"), col("grant")];
        let keep_order = |how| JoinArgs { maintain_order: MaintainOrderJoin::Left, ..JoinArgs::new(how) };
        let new = qualifying.lazy().join(existing.clone().lazy(), keys.clone(), keys, keep_order(JoinType::Anti));
        let new = match self.caps.is_empty() {
            true => new,
            false => {
                let failed = |e: PolarsError| anyhow!("capping grants: {e}");
                let (ids, caps): (Vec<String>, Vec<i64>) =
                    self.caps.iter().map(|(id, cap)| (id.clone(), i64::from(*cap))).unzip();
                let caps = DataFrame::new(
                    ids.len(),
                    vec![Column::new("badge_id".into(), ids), Column::new("cap".into(), caps)],
                )
                .map_err(failed)?;
                let held = existing
                    .lazy()
                    .group_by([col("badge_id"), col("user_id")])
                    .agg([len().cast(DataType::Int64).alias("held")]);
                let rank = col("user_id")
                    .cum_count(false)
                    .over([col("badge_id"), col("user_id")])
                    .map_err(failed)?
                    .cast(DataType::Int64);
                new.join(caps.lazy(), [col("badge_id")], [col("badge_id")], keep_order(JoinType::Left))
                    .join(
                        held,
                        [col("badge_id"), col("user_id")],
                        [col("badge_id"), col("user_id")],
                        keep_order(JoinType::Left),
                    )
                    .filter(col("cap").is_null().or((rank + col("held").fill_null(lit(0i64))).lt_eq(col("cap"))))
                    .select([col("badge_id"), col("user_id"), col("grant")])
            }
        };
        new.collect().map_err(|e| anyhow!("removing existing awards: {e}"))
    }
}

/// The longest grant key every awards database stores (MySQL's key columns are 191 characters).
pub const MAX_GRANT_BYTES: usize = 191;

/// The awards whose grant keys can be stored (at most [`MAX_GRANT_BYTES`], no NUL), and per
/// badge how many grants were left out (an item id too long to be a key).
pub fn storable(awards: DataFrame) -> Result<(DataFrame, Vec<(String, u64)>)> {
    let failed = |e: PolarsError| anyhow!("checking grant keys: {e}");
    let Ok(grants) = awards.column("grant") else { return Ok((awards, Vec::new())) };
    let grants = grants.str().map_err(failed)?;
    let keep: BooleanChunked =
        grants.iter().map(|g| g.is_none_or(|g| g.len() <= MAX_GRANT_BYTES && !g.contains('\0'))).collect();
    if keep.all() {
        return Ok((awards, Vec::new()));
    }
    let dropped = awards.filter(&!&keep).map_err(failed)?;
    let mut counts: Vec<(String, u64)> = Vec::new();
    for badge in dropped.column("badge_id").and_then(|c| c.str().cloned()).map_err(failed)?.iter().flatten() {
        match counts.iter_mut().find(|(b, _)| b == badge) {
            Some((_, n)) => *n += 1,
            None => counts.push((badge.to_string(), 1)),
        }
    }
    Ok((awards.filter(&keep).map_err(failed)?, counts))
}

/// An empty `(badge_id, user_id, grant)` frame.
pub fn empty_awards() -> DataFrame {
    granted_awards_frame(Vec::new(), Vec::new(), Vec::new()).unwrap_or_default()
}

/// A `(badge_id, user_id, grant)` frame of awards of badges earned once (the empty grant) from
/// two equally long vectors.
pub fn awards_frame(badge_ids: Vec<String>, user_ids: Vec<i64>) -> Result<DataFrame> {
    let grants = vec![String::new(); user_ids.len()];
    granted_awards_frame(badge_ids, user_ids, grants)
}

/// A `(badge_id, user_id, grant)` frame from three equally long vectors.
pub fn granted_awards_frame(badge_ids: Vec<String>, user_ids: Vec<i64>, grants: Vec<String>) -> Result<DataFrame> {
    let height = user_ids.len();
    DataFrame::new(
        height,
        vec![
            Column::new("badge_id".into(), badge_ids),
            Column::new("user_id".into(), user_ids),
            Column::new("grant".into(), grants),
        ],
    )
    .map_err(|e| anyhow!("building an awards frame: {e}"))
}
