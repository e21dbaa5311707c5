//! `accolade outbox`: the notification outbox the host's mailer reads.
//!
//! One row per announced grant and event (`awarded`; `revoked` and `restored` with
//! `[notifications] on_revoke = "all"`): `deferred` (held back by `[notifications]
//! max_per_run`), `pending` (the mailer should send it) or `sent` (the mailer sent it and said
//! so).

use super::{Outcome, connect, disconnect, load_plan, print_table};
use anyhow::Result;
use std::path::Path;

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// table, or csv (header badge_id,user_id,created_at,state,grant,event).
    #[arg(long, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
}

pub async fn run(config: Option<&Path>, opts: Opts) -> Result<Outcome> {
    let plan = load_plan(config)?;
    let (db, store) = connect(&plan).await?;
    let rows = store.outbox().await;
    disconnect(&db, &store).await;
    let rows = rows?;
    match opts.format {
        Format::Csv => super::write_csv(
            &["badge_id", "user_id", "created_at", "state", "grant", "event"],
            rows.iter().map(|r| {
                vec![
                    r.badge_id.clone(),
                    r.user_id.to_string(),
                    r.created_at.clone(),
                    r.state.clone(),
                    r.grant.clone(),
                    r.event.clone(),
                ]
            }),
        )?,
        Format::Table => print_table(
            &["badge", "member", "grant", "event", "created at", "state"],
            rows.into_iter()
                .map(|r| vec![r.badge_id, r.user_id.to_string(), r.grant, r.event, r.created_at, r.state])
                .collect(),
        ),
    }
    Ok(Outcome::Success)
}
