//! Incremental runs: evaluating only the members whose awards can have changed since the last
//! run of the same shard, with exactly the awards a full run would give.
//!
//! Owns the decision whether stored state can be trusted ([`decide`]) and which members a pass
//! evaluates ([`candidates`]): those with event rows created since the last run's instant minus
//! `late_rows`; those whose rows in the per-member sources changed (found by [`digest`]s, as the
//! host changes those in place); and those whose eligibility changes with time alone between
//! the two instants — rows leaving a `within` window, an account age reached, a current streak
//! ended by midnight, an enrolment or account dated later (see [`Sliding`]). Every criterion is
//! a function of one member's rows and the instant, so every other member's awards are what
//! the last run left, and the candidates are evaluated from their whole history.

pub mod digest;

use crate::config::plan::{Badge, Plan};
use crate::db::Db;
use crate::features::{Context, FeatureSet, Sliding};
use crate::instant;
use crate::sources::{self, Between, Shard, Snapshot, SourceKind};
use crate::store::{IncrementalState, Store};
use anyhow::{Result, anyhow};
use chrono::{DateTime, Utc};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// The layout of stored state; a different one is never trusted.
const STATE_FORMAT: u32 = 1;

/// What a run evaluated, kept with its state: a later run trusts the state only for the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub format: u32,
    /// The accolade version that wrote it.
    pub version: String,
    /// The digest of a fixed frame: changes if digests are computed differently.
    pub hashing: String,
    pub timezone: String,
    pub late_rows_seconds: i64,
    /// Each loaded source's query (a hash of its text).
    pub sources: BTreeMap<String, String>,
    /// Each evaluated badge's definition (a hash).
    pub badges: BTreeMap<String, String>,
}

fn short_hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..12])
}

impl Fingerprint {
    pub fn of(plan: &Plan, badges: &[&Badge]) -> Fingerprint {
        let wanted = crate::config::plan::wanted(badges.iter().copied());
        let sources = wanted
            .kinds
            .iter()
            .map(|kind| (kind.name().to_string(), short_hash(plan.sources.get(kind).map_or("", String::as_str))))
            .collect();
        let badges = badges.iter().map(|b| (b.id.clone(), short_hash(&format!("{b:?}")))).collect();
        Fingerprint {
            format: STATE_FORMAT,
            version: env!("CARGO_PKG_VERSION").to_string(),
            hashing: digest::probe(),
            timezone: plan.timezone.name().to_string(),
            late_rows_seconds: plan.late_rows.num_seconds(),
            sources,
            badges,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Why state kept under `stored` cannot be used for this fingerprint; `None` if it can.
    pub fn difference(&self, stored: &str) -> Option<String> {
        let Ok(old) = serde_json::from_str::<Fingerprint>(stored) else {
            return Some("the stored state was written by another version of accolade".to_string());
        };
        if old.format != self.format || old.version != self.version || old.hashing != self.hashing {
            return Some(format!("the stored state was written by accolade {}", old.version));
        }
        if old.timezone != self.timezone {
            return Some(format!("the timezone changed ({} to {})", old.timezone, self.timezone));
        }
        if old.late_rows_seconds != self.late_rows_seconds {
            return Some("[evaluation] late_rows changed".to_string());
        }
        for (name, hash) in &self.sources {
            match old.sources.get(name) {
                None => return Some(format!("source '{name}' was not read by the last run")),
                Some(before) if before != hash => return Some(format!("the query of source '{name}' changed")),
                Some(_) => {}
            }
        }
        for (id, hash) in &self.badges {
            match old.badges.get(id) {
                None => return Some(format!("badge '{id}' was not evaluated by the last run")),
                Some(before) if before != hash => return Some(format!("badge '{id}' changed")),
                Some(_) => {}
            }
        }
        if let Some(id) = old.badges.keys().find(|id| !self.badges.contains_key(*id)) {
            return Some(format!("badge '{id}' is no longer evaluated"));
        }
        None
    }
}

/// How a pass evaluates.
#[derive(Debug, Clone)]
pub enum Pass {
    /// Every member; `reason` says why when an incremental pass was asked for.
    Full { reason: Option<String> },
    /// The members changed since `state` was kept.
    Incremental { state: IncrementalState },
}

/// What a run was asked and what it found, for [`decide`].
pub struct Asked<'a> {
    pub full: bool,
    pub only: &'a [String],
    pub as_of: DateTime<Utc>,
    /// Badges whose evaluation is their backfill.
    pub backfills: &'a [String],
}

/// Whether this pass can be incremental, and if not why.
pub async fn decide(store: &Store, fingerprint: &Fingerprint, shard: &str, asked: Asked<'_>) -> Result<Pass> {
    let full = |reason: String| Ok(Pass::Full { reason: Some(reason) });
    if asked.full {
        return full("--full".to_string());
    }
    if !asked.only.is_empty() {
        return full("--badge limits the run, and incremental state covers every badge".to_string());
    }
    let Some(state) = store.incremental_state(shard).await? else {
        return full(format!("no run of shard {shard} has kept incremental state yet; this one does"));
    };
    if let Some(reason) = fingerprint.difference(&state.fingerprint) {
        return full(reason);
    }
    if let Some(later) = store.run_after(shard, state.run_id).await? {
        return full(format!(
            "run {} ({}) came after run {}, which kept the state, without keeping it (killed, failed, stopped or limited)",
            later.run_id, later.outcome, state.run_id
        ));
    }
    if asked.as_of < state.as_of {
        return full(format!(
            "--as-of {} is earlier than the last run's {}",
            instant::format_utc(asked.as_of),
            instant::format_utc(state.as_of)
        ));
    }
    if let Some(id) = asked.backfills.first() {
        return full(format!("badge '{id}' is evaluated for the first time: its backfill reads every member"));
    }
    Ok(Pass::Incremental { state })
}

/// The members an incremental pass evaluates, and why, and every member's new digest.
pub struct Candidates {
    /// Sorted member ids.
    pub members: Vec<i64>,
    pub digests: DataFrame,
    /// Members with event rows since the last run (less `late_rows`).
    pub with_new_rows: usize,
    /// Members whose per-member rows changed.
    pub changed: usize,
    /// Members whose eligibility can change with time alone.
    pub by_time: usize,
}

impl Candidates {
    /// No one to evaluate.
    pub fn none(digests: DataFrame) -> Candidates {
        Candidates { members: Vec::new(), digests, with_new_rows: 0, changed: 0, by_time: 0 }
    }
}

/// Where an incremental pass reads from and for.
pub struct Scope<'a> {
    pub db: &'a Db,
    pub plan: &'a Plan,
    pub shard: Option<Shard>,
    pub since: DateTime<Utc>,
    pub as_of: DateTime<Utc>,
    /// Rows per frame the per-member sources are digested in.
    pub scan_rows: usize,
}

/// The per-member sources among `kinds` (what digests cover).
pub fn per_member_kinds(kinds: &BTreeSet<SourceKind>) -> Vec<SourceKind> {
    kinds.iter().copied().filter(|k| !k.is_event()).collect()
}

/// The members with event rows that matter since the last run: created since its instant
/// (less `late_rows`) up to this one's, leaving a `within` window, or ending a current streak.
/// Queries only the event sources (pushed-down ranges), so it runs while the per-member
/// sources load. Returns the members and how many the first kind of range found.
pub async fn members_with_event_rows(
    scope: &Scope<'_>,
    sliding: &Sliding,
    event_kinds: &[SourceKind],
) -> Result<(BTreeSet<i64>, usize)> {
    let tz = scope.plan.timezone;
    let (at_since, at_now) =
        (Context { as_of: scope.since, timezone: tz }, Context { as_of: scope.as_of, timezone: tz });
    let (since_us, now_us) = (instant::to_micros(scope.since), instant::to_micros(scope.as_of));
    let late = scope.plan.late_rows.num_microseconds().unwrap_or(0);
    // A row dated after this run's instant counts only once a run's instant passes it, and
    // that run finds it then.
    let recent = Between { from: since_us.saturating_sub(late), to: Some(now_us) };
    let mut ranges: Vec<(SourceKind, Between)> = event_kinds.iter().map(|&k| (k, recent)).collect();
    for span in &sliding.windows {
        let (from, to) = (FeatureSet::new(at_since).window_start(*span), FeatureSet::new(at_now).window_start(*span));
        if from != i64::MIN && to > from {
            ranges.extend(sliding.sources.iter().map(|&k| (k, Between { from, to: Some(to) })));
        }
    }
    let day = |at: DateTime<Utc>| at.with_timezone(&tz).date_naive();
    if day(scope.since) != day(scope.as_of)
        && let Some(before) = day(scope.since).pred_opt().and_then(|d| d.and_hms_opt(0, 0, 0))
    {
        let from = instant::to_micros(instant::local_to_utc(before, &tz));
        ranges.extend(sliding.streaks.iter().map(|&k| (k, Between { from, to: None })));
    }
    let queries = ranges.iter().map(|(kind, between)| {
        sources::members_with_rows(scope.db, &scope.plan.sources, *kind, scope.shard, tz, *between)
    });
    let found = futures_util::future::try_join_all(queries).await?;
    let recent_count = found.iter().take(event_kinds.len()).map(Vec::len).sum();
    Ok((found.into_iter().flatten().collect(), recent_count))
}

/// What reading the per-member sources whole found: every member's digest, the members whose
/// account age or an enrolment is reached between the two instants, and the sources that
/// failed to load (with why; no digests when the users source failed).
pub struct Scanned {
    pub digests: DataFrame,
    pub by_time: Vec<i64>,
    pub failed: BTreeMap<SourceKind, String>,
}

/// Rows per frame a per-member source is digested in while it loads.
pub const SCAN_ROWS: usize = 65_536;

/// Frames read ahead of the digesting thread, at most.
const FRAMES_AHEAD: usize = 2;

/// Frames' parts kept before they are summed into one.
const PARTS_SUMMED: usize = 8;

/// What one per-member source left once digested.
struct Scan {
    part: DataFrame,
    /// The members (`user_id`), from the users source.
    users: Option<DataFrame>,
    by_time: Vec<i64>,
}

/// Reads each per-member source of `wanted` whole (to find what the host changed in place) and
/// digests it as soon as it loads, keeping only its share of the digests and, of users and
/// trainings, the members whose account age or enrolment is reached since the last run: no
/// source is held whole. The candidates' rows are read again, filtered, by the pass.
pub async fn scan_per_member(scope: &Scope<'_>, wanted: &sources::Wanted, sliding: &Sliding) -> Result<Scanned> {
    let tz = scope.plan.timezone;
    let at_now = Context { as_of: scope.as_of, timezone: tz };
    let (since_us, now_us) = (instant::to_micros(scope.since), instant::to_micros(scope.as_of));
    let kinds = per_member_kinds(&wanted.kinds);
    let ages: Vec<_> = sliding.ages.iter().copied().collect();
    let scans = kinds.iter().map(|&kind| {
        let one = sources::Wanted { kinds: BTreeSet::from([kind]), user_columns: wanted.user_columns.clone() };
        let ages = ages.clone();
        async move {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<DataFrame>(FRAMES_AHEAD);
            // A thread of its own sums each frame as the reader hands it on.
            let digesting = crate::evaluate::on_evaluation_thread(move || -> Result<Scan> {
                let (mut parts, mut users, mut by_time) = (Vec::new(), Vec::new(), Vec::new());
                while let Some(frame) = rx.blocking_recv() {
                    parts.push(digest::source_part(&frame)?);
                    // Summed as they come, so that a member's rows in many frames stay one row.
                    if parts.len() == PARTS_SUMMED {
                        parts = vec![digest::sum_parts(std::mem::take(&mut parts))?];
                    }
                    match kind {
                        SourceKind::Users => {
                            by_time.extend(FeatureSet::new(at_now).reaching_age(&frame, &ages, since_us, now_us)?);
                            users.push(frame.select(["user_id"]).map_err(|e| anyhow!("source 'users': {e}"))?.lazy());
                        }
                        SourceKind::Trainings => by_time.extend(enrolled_between(&frame, since_us, now_us)?),
                        _ => {}
                    }
                }
                let users = match users.is_empty() {
                    true => None,
                    false => Some(
                        concat(users, UnionArgs::default())
                            .and_then(LazyFrame::collect)
                            .map_err(|e| anyhow!("source 'users': {e}"))?,
                    ),
                };
                Ok(Scan { part: digest::sum_parts(parts)?, users, by_time })
            });
            let reading = async move {
                let mut chunks = sources::Chunks::new(kind, scope.scan_rows, tx);
                sources::scan_source(scope.db, &scope.plan.sources, &one, kind, scope.shard, tz, &mut chunks).await
            };
            let scan = match tokio::join!(reading, digesting) {
                (_, Err(error)) => return Err(error),
                // Recorded, as a full pass records it: the badges that read the source fail.
                (Err(error), Ok(_)) => return Ok((kind, Err(crate::errors::text(&error)))),
                (Ok(_), Ok(scan)) => scan,
            };
            if let Some(ids) = &scan.users
                && let Err(error) = sources::check_members(kind, ids)
            {
                return Ok((kind, Err(crate::errors::text(&error))));
            }
            Ok((kind, Ok(scan)))
        }
    });
    let scans = futures_util::future::try_join_all(scans).await?;
    let mut failed = BTreeMap::new();
    let (mut users, mut by_time, mut parts) = (None, Vec::new(), Vec::new());
    for (kind, scan) in scans {
        match scan {
            Ok(scan) => {
                users = users.or(scan.users);
                by_time.extend(scan.by_time);
                parts.push(Some(scan.part));
            }
            Err(reason) => {
                failed.insert(kind, reason);
                parts.push(None);
            }
        }
    }
    let Some(users) = users else {
        // Every badge reads the members: the pass evaluates no one, and its badges fail with
        // the reason, as in a full pass.
        failed.entry(SourceKind::Users).or_insert_with(|| "source 'users' did not load".to_string());
        return Ok(Scanned { digests: digest::none()?, by_time: Vec::new(), failed });
    };
    let clock = std::time::Instant::now();
    let digests = crate::evaluate::on_evaluation_thread(move || digest::combine(&users, parts)).await?;
    tracing::debug!(elapsed_ms = clock.elapsed().as_millis() as u64, "combined member digests");
    Ok(Scanned { digests, by_time, failed })
}

/// The candidates of a pass: `with_rows` (from [`members_with_event_rows`]), the members whose
/// `digests` differ from the `stored` ones, and `by_time`, those whose eligibility the scan
/// found reached with time alone.
pub async fn candidates(
    digests: DataFrame,
    by_time: Vec<i64>,
    stored: DataFrame,
    with_rows: (BTreeSet<i64>, usize),
) -> Result<Candidates> {
    let (with_rows, found_new) = with_rows;
    let (digests, changed) = crate::evaluate::on_evaluation_thread(move || -> Result<(DataFrame, Vec<i64>)> {
        let clock = std::time::Instant::now();
        let changed = digest::changed(&stored, &digests)?;
        tracing::debug!(elapsed_ms = clock.elapsed().as_millis() as u64, "compared member digests");
        Ok((digests, changed))
    })
    .await?;
    let (changed_count, by_time_count) = (changed.len(), by_time.len());
    let mut members = with_rows;
    members.extend(changed);
    members.extend(by_time);
    Ok(Candidates {
        members: members.into_iter().collect(),
        digests,
        with_new_rows: found_new,
        changed: changed_count,
        by_time: by_time_count,
    })
}

/// Members with a training enrolment dated between the two instants (µs, both included): it
/// starts to count when the evaluation instant passes it.
fn enrolled_between(trainings: &DataFrame, from: i64, to: i64) -> Result<Vec<i64>> {
    let at = col("enrolled_at").dt().timestamp(TimeUnit::Microseconds);
    let found = trainings
        .clone()
        .lazy()
        .filter(at.clone().gt_eq(lit(from)).and(at.lt_eq(lit(to))).fill_null(lit(false)))
        .select([col("user_id")])
        .collect()
        .map_err(|e| anyhow!("finding enrolments dated since the last run: {e}"))?;
    crate::sources::ids_of(&found)
}

/// `snapshot`'s frames restricted to `members` (sorted ids).
pub fn restrict(snapshot: Snapshot, members: &[i64]) -> Result<Snapshot> {
    let ids = DataFrame::new(members.len(), vec![Column::new("user_id".into(), members)])
        .map_err(|e| anyhow!("selecting members: {e}"))?;
    let mut frames = BTreeMap::new();
    for (kind, frame) in snapshot.frames {
        let kept = frame
            .lazy()
            .semi_join(ids.clone().lazy(), col("user_id"), col("user_id"))
            .collect()
            .map_err(|e| anyhow!("source '{kind}': selecting members: {e}"))?;
        frames.insert(kind, kept);
    }
    Ok(Snapshot { frames, failed: snapshot.failed })
}
