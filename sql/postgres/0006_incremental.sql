-- What an incremental run (`accolade run --incremental`) needs from the run before it, per
-- shard ('0/1' when unsharded): the instant it evaluated (the watermark), what it evaluated
-- (a fingerprint of the badges, source queries and timezone, as JSON), and the digest of every
-- member's rows in the per-member sources. Written in one transaction at the end of a run that
-- finished whole, so a run killed at any point leaves the previous state, which the next run
-- sees is older than a run since and does not trust.
CREATE TABLE IF NOT EXISTS accolade_incremental (
    shard       TEXT PRIMARY KEY,
    run_id      BIGINT NOT NULL,
    as_of       TIMESTAMPTZ NOT NULL,
    fingerprint TEXT NOT NULL,
    members     BIGINT NOT NULL,
    written_at  TIMESTAMPTZ NOT NULL
);

-- The member digests of `accolade_incremental`, sorted by member, in chunks: 16 bytes per
-- member (user_id, digest; little-endian).
CREATE TABLE IF NOT EXISTS accolade_incremental_digests (
    shard TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    data  BYTEA NOT NULL,
    PRIMARY KEY (shard, chunk)
);
