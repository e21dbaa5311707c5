//! `accolade report --out report.html`: the administrators' report (see [`crate::report`]).

use super::{Outcome, connect, load_plan};
use crate::report::{ReportData, render};
use anyhow::{Context, Result};
use chrono::{SubsecRound, Utc};
use std::path::{Path, PathBuf};

/// How many members the report's leaderboard shows.
pub const LEADERBOARD_TOP: u64 = 20;

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// The HTML file to write.
    #[arg(long, value_name = "FILE", default_value = "accolade-report.html")]
    pub out: PathBuf,
    /// The page's title (default: the [issuer] name's badges, else "Badges report").
    #[arg(long)]
    pub title: Option<String>,
}

pub async fn run(config: Option<&Path>, opts: Opts) -> Result<Outcome> {
    let plan = load_plan(config)?;
    let (db, store) = connect(&plan).await?;
    let gathered = async {
        let daily = store.daily_awards().await?;
        let leaderboard = store.leaderboard(Some(LEADERBOARD_TOP), None).await?;
        Ok::<_, anyhow::Error>((daily, leaderboard))
    }
    .await;
    super::disconnect(&db, &store).await;
    let (daily, leaderboard) = gathered?;
    let title = opts.title.clone().unwrap_or_else(|| match &plan.issuer {
        Some(issuer) => format!("{} badges", issuer.name),
        None => "Badges report".to_string(),
    });
    let data = ReportData {
        title,
        generated_at: Utc::now().trunc_subsecs(0),
        badges: plan.badges.iter().collect(),
        daily,
        leaderboard,
    };
    std::fs::write(&opts.out, render(&data)).with_context(|| format!("writing {}", opts.out.display()))?;
    println!("wrote the report to {}", opts.out.display());
    Ok(Outcome::Success)
}
