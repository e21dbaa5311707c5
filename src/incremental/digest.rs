//! Member digests: one number per member that changes when any of the member's rows in the
//! per-member sources (users, trainings, roles, settings, metrics) changes, so that an
//! incremental run finds the members the host changed in place without keeping their rows.
//!
//! A row's hash combines its columns' hashes (Polars' vectorised hashing with a fixed seed);
//! a member's rows of one source combine into their count and the sum of their hashes' top 40
//! bits (independent of row order, no overflow below 2^24 rows), and a member's digest hashes
//! those per source. Digests are stored sorted by member, 16 bytes each, in chunks.

use crate::sources::{Snapshot, SourceKind};
use anyhow::{Result, anyhow};
use polars::prelude::*;

/// Members per stored chunk (1 MiB).
pub const CHUNK_MEMBERS: usize = 65_536;

const SEED: u64 = 0x6163_636f_6c61_6465;

fn hashes(frame: &DataFrame) -> Result<Vec<u64>> {
    let failed = |e: PolarsError| anyhow!("hashing member rows: {e}");
    let state = PlSeedableRandomStateQuality::seed_from_u64(SEED);
    let mut buf = Vec::with_capacity(frame.height());
    let mut columns = frame.columns().iter();
    match columns.next() {
        Some(first) => first.vec_hash(state.clone(), &mut buf).map_err(failed)?,
        None => return Ok(Vec::new()),
    }
    for column in columns {
        column.vec_hash_combine(state.clone(), &mut buf).map_err(failed)?;
    }
    Ok(buf)
}

/// One per-member source's share of the digests: `(user_id, n, s)` for each member with rows
/// in `frame`, `n` the rows and `s` the sum of their hashes' top 40 bits. An incremental pass
/// computes it per frame as a source loads (see [`sum_parts`]), keeping no source whole.
pub fn source_part(frame: &DataFrame) -> Result<DataFrame> {
    let failed = |e: PolarsError| anyhow!("computing member digests: {e}");
    let rows = DataFrame::new(
        frame.height(),
        vec![
            frame.column("user_id").map_err(failed)?.clone(),
            Column::new("h".into(), hashes(frame)?.into_iter().map(|h| h >> 24).collect::<Vec<u64>>()),
        ],
    )
    .map_err(failed)?;
    rows.lazy()
        .group_by([col("user_id")])
        .agg([len().cast(DataType::UInt64).alias("n"), col("h").sum().alias("s")])
        .collect()
        .map_err(failed)
}

/// The [`source_part`] of a source from those of the frames it was read in: the same counts
/// and sums as one part of the whole source.
pub fn sum_parts(mut parts: Vec<DataFrame>) -> Result<DataFrame> {
    let failed = |e: PolarsError| anyhow!("computing member digests: {e}");
    if parts.is_empty() {
        // A source that failed before its first frame.
        let columns = vec![
            Column::new("user_id".into(), Vec::<i64>::new()),
            Column::new("n".into(), Vec::<u64>::new()),
            Column::new("s".into(), Vec::<u64>::new()),
        ];
        return DataFrame::new(0, columns).map_err(failed);
    }
    if parts.len() == 1 {
        return Ok(parts.remove(0));
    }
    let parts: Vec<LazyFrame> = parts.into_iter().map(IntoLazy::lazy).collect();
    concat(parts, UnionArgs::default())
        .map_err(failed)?
        .group_by([col("user_id")])
        .agg([col("n").sum(), col("s").sum()])
        .collect()
        .map_err(failed)
}

/// `(user_id, digest)` of every member of `users` (a frame with their `user_id`s), sorted by
/// member, from the [`source_part`]s of the per-member sources in a fixed order (`None` for
/// a source that did not load).
pub fn combine(users: &DataFrame, parts: Vec<Option<DataFrame>>) -> Result<DataFrame> {
    let failed = |e: PolarsError| anyhow!("computing member digests: {e}");
    let members = users.select(["user_id"]).and_then(|m| m.sort(["user_id"], Default::default())).map_err(failed)?;
    let ids = members.column("user_id").map_err(failed)?.clone();
    // The digest hashes the member's id, then each source's count and sum (0 without rows),
    // one aligned source at a time: only the running hashes stay, not a column per source.
    let state = PlSeedableRandomStateQuality::seed_from_u64(SEED);
    let mut digests = Vec::with_capacity(ids.len());
    ids.vec_hash(state.clone(), &mut digests).map_err(failed)?;
    for part in parts.into_iter().flatten() {
        let keep_order = JoinArgs { maintain_order: MaintainOrderJoin::Left, ..JoinArgs::new(JoinType::Left) };
        let aligned = members
            .clone()
            .lazy()
            .join(part.lazy(), [col("user_id")], [col("user_id")], keep_order)
            .select([col("n").fill_null(lit(0u64)), col("s").fill_null(lit(0u64))])
            .collect()
            .map_err(failed)?;
        if aligned.height() != ids.len() {
            return Err(anyhow!("computing member digests: a source's rows did not align with the members"));
        }
        for column in aligned.columns() {
            column.vec_hash_combine(state.clone(), &mut digests).map_err(failed)?;
        }
    }
    DataFrame::new(ids.len(), vec![ids, Column::new("digest".into(), digests)]).map_err(failed)
}

/// `(user_id, digest)` of every member of the snapshot's users frame, sorted by member,
/// from the frames of `kinds` (the per-member sources wanted).
pub fn member_digests(snapshot: &Snapshot, kinds: &[SourceKind]) -> Result<DataFrame> {
    let users = snapshot.frame(SourceKind::Users).ok_or_else(|| anyhow!("the users source was not loaded"))?;
    let parts = kinds.iter().map(|kind| snapshot.frame(*kind).map(source_part).transpose()).collect::<Result<_>>()?;
    combine(users, parts)
}

/// No member's digest.
pub fn none() -> Result<DataFrame> {
    DataFrame::new(
        0,
        vec![Column::new("user_id".into(), Vec::<i64>::new()), Column::new("digest".into(), Vec::<u64>::new())],
    )
    .map_err(|e| anyhow!("member digests: {e}"))
}

/// The digest a fixed frame has: stored with the state, so that digests made by a build that
/// hashes differently are never compared with this build's.
pub fn probe() -> String {
    let frame = DataFrame::new(
        2,
        vec![Column::new("user_id".into(), [1i64, 2]), Column::new("v".into(), ["accolade", "digest"])],
    );
    match frame.map(|f| hashes(&f)) {
        Ok(Ok(h)) => format!("{:016x}{:016x}", h[0], h[1]),
        _ => "unavailable".to_string(),
    }
}

/// Digests as stored chunks: `(user_id, digest)` little-endian, in member order.
pub fn encode(digests: &DataFrame) -> Result<Vec<Vec<u8>>> {
    let failed = |e: PolarsError| anyhow!("storing member digests: {e}");
    let ids = digests.column("user_id").and_then(|c| c.i64().cloned()).map_err(failed)?;
    let values = digests.column("digest").and_then(|c| c.u64().cloned()).map_err(failed)?;
    let mut chunks = Vec::new();
    let mut chunk = Vec::with_capacity(CHUNK_MEMBERS * 16);
    for (id, value) in ids.iter().zip(values.iter()) {
        let (Some(id), Some(value)) = (id, value) else { continue };
        chunk.extend_from_slice(&id.to_le_bytes());
        chunk.extend_from_slice(&value.to_le_bytes());
        if chunk.len() == CHUNK_MEMBERS * 16 {
            chunks.push(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_MEMBERS * 16)));
        }
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    Ok(chunks)
}

/// Stored chunks back as `(user_id, digest)`.
pub fn decode(chunks: &[Vec<u8>]) -> Result<DataFrame> {
    let mut ids = Vec::new();
    let mut values = Vec::new();
    for (index, chunk) in chunks.iter().enumerate() {
        if chunk.len() % 16 != 0 {
            return Err(anyhow!(
                "stored member digests: chunk {index} has {} bytes, not a multiple of 16",
                chunk.len()
            ));
        }
        for pair in chunk.chunks_exact(16) {
            let (id, value) = pair.split_at(8);
            ids.push(i64::from_le_bytes(id.try_into().map_err(|_| anyhow!("stored member digests: a short id"))?));
            values.push(u64::from_le_bytes(
                value.try_into().map_err(|_| anyhow!("stored member digests: a short digest"))?,
            ));
        }
    }
    DataFrame::new(ids.len(), vec![Column::new("user_id".into(), ids), Column::new("digest".into(), values)])
        .map_err(|e| anyhow!("stored member digests: {e}"))
}

/// Members whose digest differs between `old` and `new`, or who are in only one of them.
pub fn changed(old: &DataFrame, new: &DataFrame) -> Result<Vec<i64>> {
    let failed = |e: PolarsError| anyhow!("comparing member digests: {e}");
    // Between two passes the members are mostly the same: then the digests compare in place.
    let (old_ids, new_ids) = (old.column("user_id").map_err(failed)?, new.column("user_id").map_err(failed)?);
    if old_ids.as_materialized_series().equals(new_ids.as_materialized_series()) {
        let differs = old.column("digest").and_then(|d| d.not_equal(new.column("digest")?)).map_err(failed)?;
        let found = new.select(["user_id"]).and_then(|f| f.filter(&differs)).map_err(failed)?;
        return crate::sources::ids_of(&found);
    }
    // One join on the member: a member in only one of them has no digest on the other side.
    let full = JoinArgs { coalesce: JoinCoalesce::CoalesceColumns, ..JoinArgs::new(JoinType::Full) };
    let found = old
        .clone()
        .lazy()
        .join(new.clone().lazy(), [col("user_id")], [col("user_id")], full)
        .filter(col("digest").neq_missing(col("digest_right")))
        .select([col("user_id")])
        .collect()
        .map_err(failed)?;
    crate::sources::ids_of(&found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn snapshot(roles: &[(i64, &str)]) -> Snapshot {
        let users = DataFrame::new(
            3,
            vec![Column::new("user_id".into(), [1i64, 2, 3]), Column::new("blocked".into(), [false, false, true])],
        )
        .expect("users");
        let (ids, names): (Vec<i64>, Vec<&str>) = roles.iter().copied().unzip();
        let roles =
            DataFrame::new(ids.len(), vec![Column::new("user_id".into(), ids), Column::new("role".into(), names)])
                .expect("roles");
        let frames = BTreeMap::from([(SourceKind::Users, users), (SourceKind::Roles, roles)]);
        Snapshot { frames, failed: BTreeMap::new() }
    }

    #[test]
    fn a_digest_changes_only_for_the_member_whose_rows_changed_and_not_with_row_order() {
        let kinds = [SourceKind::Users, SourceKind::Roles];
        let before =
            member_digests(&snapshot(&[(1, "Expert"), (2, "Member"), (2, "Mentor")]), &kinds).expect("digests");
        let reordered =
            member_digests(&snapshot(&[(2, "Mentor"), (1, "Expert"), (2, "Member")]), &kinds).expect("digests");
        assert_eq!(changed(&before, &reordered).expect("compared"), Vec::<i64>::new());
        let after = member_digests(&snapshot(&[(1, "Expert"), (2, "Member"), (3, "Member")]), &kinds).expect("digests");
        let mut found = changed(&before, &after).expect("compared");
        found.sort_unstable();
        assert_eq!(found, vec![2, 3]);
    }

    #[test]
    fn a_source_digested_in_frames_gives_the_digests_of_the_source_whole() {
        let kinds = [SourceKind::Users, SourceKind::Roles];
        let whole = snapshot(&[(1, "Expert"), (2, "Member"), (3, "Mentor"), (2, "Mentor"), (1, "Member")]);
        let expected = member_digests(&whole, &kinds).expect("digests");
        let roles = whole.frame(SourceKind::Roles).expect("roles");
        // Member 1's and 2's rows fall in different frames.
        let frames = [roles.slice(0, 2), roles.slice(2, 2), roles.slice(4, 1)];
        let roles_part = sum_parts(frames.iter().map(|f| source_part(f).expect("a part")).collect()).expect("summed");
        let users = whole.frame(SourceKind::Users).expect("users");
        let parts = vec![Some(source_part(users).expect("users part")), Some(roles_part)];
        let digests = combine(users, parts).expect("combined");
        assert!(digests.equals(&expected), "{digests} != {expected}");
    }

    #[test]
    fn members_who_came_or_went_count_as_changed_with_those_whose_digest_differs() {
        let frame = |ids: &[i64], digests: &[u64]| {
            DataFrame::new(ids.len(), vec![Column::new("user_id".into(), ids), Column::new("digest".into(), digests)])
                .expect("digests")
        };
        let old = frame(&[1, 2, 3, 4], &[10, 20, 30, 40]);
        let mut found = changed(&old, &frame(&[1, 2, 4, 5], &[10, 21, 40, 50])).expect("compared");
        found.sort_unstable();
        assert_eq!(found, vec![2, 3, 5]);
        assert_eq!(changed(&old, &frame(&[1, 2, 3, 4], &[10, 20, 31, 40])).expect("compared"), vec![3]);
        assert_eq!(changed(&old, &old).expect("compared"), Vec::<i64>::new());
    }

    #[test]
    fn digests_survive_storing_in_chunks() {
        let kinds = [SourceKind::Users, SourceKind::Roles];
        let digests = member_digests(&snapshot(&[(1, "Expert")]), &kinds).expect("digests");
        let back = decode(&encode(&digests).expect("encoded")).expect("decoded");
        assert!(back.equals(&digests), "{back} != {digests}");
        assert!(decode(&[vec![0u8; 15]]).is_err());
    }
}
