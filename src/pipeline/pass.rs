//! The work of one pass once it is decided: loading (every member, or an incremental pass's
//! candidates), evaluating on the evaluation thread, inserting new awards and making awards
//! follow their criteria.

use crate::config::plan::{Badge, Plan};
use crate::db::Db;
use crate::evaluate::Evaluation;
use crate::features::Context;
use crate::incremental::Pass;
use crate::instant;
use crate::sources::{self, Shard, Snapshot, SourceKind};
use crate::store::{self, AwardKind, AwardSource, IncrementalState, Inserted, Store};
use anyhow::Result;
use chrono::{DateTime, Utc};
use polars::prelude::DataFrame;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

/// Where a run's awards go.
pub(super) struct Target<'a> {
    pub(super) plan: &'a Plan,
    pub(super) db: &'a Db,
    pub(super) store: &'a Store,
    pub(super) as_of: DateTime<Utc>,
    /// `as_of` is earlier than a finished run's: revoke_when_unmet withdraws nothing.
    pub(super) replay: bool,
    pub(super) run_id: Option<i64>,
    pub(super) shard: Option<Shard>,
    /// How the shard is recorded (`0/1` when unsharded).
    pub(super) shard_key: &'a str,
    pub(super) kinds: &'a HashMap<String, AwardKind>,
    pub(super) stop: Option<&'a AtomicBool>,
    /// Rows per frame the per-member sources are digested in.
    pub(super) scan_rows: usize,
}

/// What evaluating and storing produced: new awards per badge, and badges that failed.
#[derive(Debug, Default)]
pub(super) struct Evaluated {
    pub(super) counts: Vec<(String, u64)>,
    /// What `revoke_when_unmet` did per badge.
    pub(super) followed: HashMap<String, store::Followed>,
    pub(super) failed: Vec<(String, String)>,
    /// Badges that were evaluated but left something out, and what.
    pub(super) notes: Vec<(String, String)>,
    pub(super) stopped: bool,
    /// The members an incremental pass evaluated.
    pub(super) candidates: Option<u64>,
    /// Every member's digest, when the run keeps incremental state.
    pub(super) digests: Option<DataFrame>,
    /// No member's digest changed since the state was kept: the stored ones stay.
    pub(super) digests_unchanged: bool,
}

/// Loads what the badges need, evaluates them, and inserts new awards (only counts them,
/// in a dry run).
pub(super) async fn evaluate_and_store(
    target: &Target<'_>,
    badges: &[&Badge],
    pass: &Pass,
    keep_state: bool,
) -> Result<Evaluated> {
    if badges.is_empty() {
        return Ok(Evaluated::default());
    }
    let wanted = crate::config::plan::wanted(badges.iter().copied());
    let loading = crate::telemetry::phase("loading sources");
    let clock = std::time::Instant::now();
    let ids: Vec<String> = badges.iter().map(|b| b.id.clone()).collect();
    let (snapshot, existing, candidates) = match pass {
        Pass::Full { .. } => {
            let (snapshot, existing) = load_everything(target, &wanted, &ids).await;
            (snapshot, existing?, None)
        }
        Pass::Incremental { state } => {
            let (snapshot, existing, candidates) = load_changed(target, badges, &wanted, &ids, state).await?;
            (snapshot, existing, Some(candidates))
        }
    };
    drop(loading);
    let (rss_mib, peak_rss_mib) = crate::telemetry::memory_mib();
    tracing::info!(elapsed_ms = clock.elapsed().as_millis() as u64, rss_mib, peak_rss_mib, "loaded sources");
    let evaluated_members = candidates.as_ref().map(|c| c.members.len() as u64);
    let digests_unchanged = candidates.as_ref().is_some_and(|c| c.changed == 0);
    let (members, mut digests) = match candidates {
        Some(c) => (Some(c.members), Some(c.digests)),
        None => (None, None),
    };
    // A full pass that keeps state digests the whole snapshot it loaded.
    let digest_kinds = match keep_state && digests.is_none() {
        true => Some(crate::incremental::per_member_kinds(&wanted.kinds)),
        false => None,
    };
    let (ready, failed) = crate::evaluate::split_ready(badges, &snapshot);
    if ready.is_empty() {
        return Ok(Evaluated { failed, candidates: evaluated_members, ..Evaluated::default() });
    }
    let evaluated = ready.len();
    let clock = std::time::Instant::now();
    let ctx = Context { as_of: target.as_of, timezone: target.plan.timezone };
    let ready: Vec<Badge> = ready.into_iter().cloned().collect();
    // Badges whose awards follow their criteria: their qualifying members are kept as well.
    let following: Vec<String> = ready.iter().filter(|b| b.revoke_when_unmet).map(|b| b.id.clone()).collect();
    let evaluating = crate::telemetry::phase("evaluating badges");
    let wanted_following = following.clone();
    let restrict_to = members.clone();
    let (new, qualifying, full_digests) =
        crate::evaluate::on_evaluation_thread(move || -> Result<(DataFrame, DataFrame, Option<DataFrame>)> {
            let digests = match digest_kinds {
                Some(kinds) => Some(crate::incremental::digest::member_digests(&snapshot, &kinds)?),
                None => None,
            };
            let snapshot = match restrict_to {
                Some(members) => crate::incremental::restrict(snapshot, &members)?,
                None => snapshot,
            };
            let evaluation = Evaluation::prepare(ctx, ready.iter(), &snapshot)?;
            // The features hold what the predicates need: the sources can go before the filtering.
            drop(snapshot);
            let qualifying = evaluation.qualifying()?;
            let following = match wanted_following.is_empty() {
                true => crate::evaluate::empty_awards(),
                false => Evaluation::qualifying_of(&qualifying, &wanted_following)?,
            };
            Ok((evaluation.new_of(qualifying, existing)?, following, digests))
        })
        .await?;
    if full_digests.is_some() {
        digests = full_digests;
    }
    let (new, left_out) = crate::evaluate::storable(new)?;
    let notes: Vec<(String, String)> = left_out
        .into_iter()
        .map(|(badge, n)| {
            let limit = crate::evaluate::MAX_GRANT_BYTES;
            (badge, format!("{n} grant(s) left out: their item ids are longer than {limit} bytes (or hold NUL)"))
        })
        .collect();
    drop(evaluating);
    let (rss_mib, peak_rss_mib) = crate::telemetry::memory_mib();
    tracing::info!(
        elapsed_ms = clock.elapsed().as_millis() as u64,
        new_awards = new.height(),
        rss_mib,
        peak_rss_mib,
        "evaluated {evaluated} badges"
    );
    let clock = std::time::Instant::now();
    let _writing = crate::telemetry::phase("writing awards");
    let inserted = match target.run_id {
        Some(run_id) => {
            let default = AwardKind { source: AwardSource::Rule, notify: true };
            target.store.insert_awards(&new, target.as_of, target.kinds, default, Some(run_id), target.stop).await?
        }
        None => Inserted { counts: count_per_badge(&new)?, stopped: false },
    };
    let (rss_mib, peak_rss_mib) = crate::telemetry::memory_mib();
    tracing::info!(elapsed_ms = clock.elapsed().as_millis() as u64, rss_mib, peak_rss_mib, "wrote awards");
    // Revocations by rule need a whole, real evaluation: never in a dry run, nor after a stop.
    if target.replay && !following.is_empty() {
        tracing::info!("a run as of an instant before the last run's revokes and restores nothing (revoke_when_unmet)");
    }
    let followed = match (target.run_id, inserted.stopped) {
        (Some(_), false) if !following.is_empty() && !target.replay => {
            let announce = target.plan.notifications.on_revoke_all;
            let followed = target
                .store
                .follow_criteria(&following, &qualifying, target.shard, members.as_deref(), announce, target.as_of)
                .await?;
            let revoked: u64 = followed.values().map(|f| f.revoked).sum();
            let restored: u64 = followed.values().map(|f| f.restored).sum();
            tracing::info!(revoked, restored, "awards following their criteria");
            followed
        }
        _ => HashMap::new(),
    };
    Ok(Evaluated {
        counts: inserted.counts,
        followed,
        failed,
        notes,
        stopped: inserted.stopped,
        candidates: evaluated_members,
        digests,
        digests_unchanged,
    })
}

/// A full pass's reading: every source of the shard, and the existing awards of `ids`.
async fn load_everything(
    target: &Target<'_>,
    wanted: &sources::Wanted,
    ids: &[String],
) -> (Snapshot, Result<DataFrame>) {
    let load =
        sources::load_snapshot_shard(target.db, &target.plan.sources, wanted, target.shard, target.plan.timezone);
    // The existing awards are read while the sources load (the awards database has spare time
    // once the small sources are done), for every badge to evaluate: pairs of a badge that then
    // cannot be evaluated match nothing in the anti-join.
    let read_existing = async {
        let clock = std::time::Instant::now();
        let existing = target.store.existing_awards(ids).await;
        if let Ok(existing) = &existing {
            let elapsed_ms = clock.elapsed().as_millis() as u64;
            tracing::info!(elapsed_ms, existing = existing.height(), "read existing awards");
        }
        existing
    };
    tokio::join!(load, read_existing)
}

/// An incremental pass's reading: the per-member sources whole, each digested as it loads (to
/// find what changed in place), the candidates, then every source and the existing awards of
/// the candidates only.
async fn load_changed(
    target: &Target<'_>,
    badges: &[&Badge],
    wanted: &sources::Wanted,
    ids: &[String],
    state: &IncrementalState,
) -> Result<(Snapshot, DataFrame, crate::incremental::Candidates)> {
    let (db, queries, tz) = (target.db, &target.plan.sources, target.plan.timezone);
    let event_kinds: Vec<_> = wanted.kinds.iter().copied().filter(|k| k.is_event()).collect();
    let scope = crate::incremental::Scope {
        db,
        plan: target.plan,
        shard: target.shard,
        since: state.as_of,
        as_of: target.as_of,
        scan_rows: target.scan_rows,
    };
    // What makes the criteria change with time alone: compiled once, read by both searches.
    let at_now = Context { as_of: target.as_of, timezone: tz };
    let sliding = Evaluation::sliding(at_now, badges.iter().copied());
    let clock = std::time::Instant::now();
    // The candidates' event queries run while the per-member sources load.
    let (scanned, stored, with_rows) = tokio::join!(
        crate::incremental::scan_per_member(&scope, wanted, &sliding),
        target.store.member_digest_chunks(target.shard_key),
        crate::incremental::members_with_event_rows(&scope, &sliding, &event_kinds)
    );
    let crate::incremental::Scanned { digests, by_time, failed: failed_whole } = scanned?;
    let stored = crate::incremental::digest::decode(&stored?)?;
    if failed_whole.contains_key(&SourceKind::Users) {
        // No member can be evaluated: every badge fails with the reason, as in a full pass.
        let existing = target.store.existing_awards_of(ids, Some(&[])).await?;
        let candidates = crate::incremental::Candidates::none(digests);
        return Ok((Snapshot { frames: Default::default(), failed: failed_whole }, existing, candidates));
    }
    let candidates = crate::incremental::candidates(digests, by_time, stored, with_rows?).await?;
    tracing::info!(
        elapsed_ms = clock.elapsed().as_millis() as u64,
        members = candidates.members.len(),
        with_new_rows = candidates.with_new_rows,
        changed = candidates.changed,
        by_time = candidates.by_time,
        since = %instant::format_utc(state.as_of),
        "an incremental pass: found the members to evaluate"
    );
    let (mut snapshot, existing) = tokio::join!(
        sources::load_snapshot_of(db, queries, wanted, target.shard, Some(&candidates.members), tz),
        target.store.existing_awards_of(ids, Some(&candidates.members))
    );
    // A source that failed to load whole fails its badges, as in a full pass.
    for (kind, reason) in failed_whole {
        snapshot.frames.remove(&kind);
        snapshot.failed.insert(kind, reason);
    }
    Ok((snapshot, existing?, candidates))
}

fn count_per_badge(awards: &DataFrame) -> Result<Vec<(String, u64)>> {
    let mut counts: Vec<(String, u64)> = Vec::new();
    let ids = awards.column("badge_id").and_then(|c| c.str().cloned())?;
    for id in ids.iter().flatten() {
        match counts.last_mut() {
            Some((badge, n)) if badge == id => *n += 1,
            _ => counts.push((id.to_string(), 1)),
        }
    }
    Ok(counts)
}
