//! `accolade leaderboard`: members ranked by the points of the badges they hold.
//!
//! Computed from the awards table on every call (the `accolade_leaderboard` view gives the host
//! UI the same numbers), so it always agrees with the awards: a member with more badges is never
//! missing. Ties are broken by badge count, then by member id.

use super::{Outcome, connect, disconnect, load_plan, print_table};
use crate::instant;
use anyhow::{Result, anyhow};
use std::path::Path;

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// Only the first N members.
    #[arg(long, value_name = "N")]
    pub top: Option<u64>,
    /// Only awards at or after this date (a date in the evaluation timezone, or RFC 3339).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// table, csv (header rank,user_id,points,badges) or json.
    #[arg(long, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

pub async fn run(config: Option<&Path>, opts: Opts) -> Result<Outcome> {
    let plan = load_plan(config)?;
    let since = match &opts.since {
        Some(text) => Some(instant::parse_as_of(text, &plan.timezone).map_err(|e| anyhow!("--since: {e}"))?),
        None => None,
    };
    let (db, store) = connect(&plan).await?;
    let rows = store.leaderboard(opts.top, since).await;
    disconnect(&db, &store).await;
    let rows = rows?;
    let cells = |r: &crate::store::LeaderboardRow| {
        vec![r.rank.to_string(), r.user_id.to_string(), r.points.to_string(), r.badges.to_string()]
    };
    match opts.format {
        Format::Csv => super::write_csv(&["rank", "user_id", "points", "badges"], rows.iter().map(cells))?,
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Table => print_table(&["rank", "member", "points", "badges"], rows.iter().map(cells).collect()),
    }
    Ok(Outcome::Success)
}
