//! `accolade awards export`: every award, sorted by badge then member, as CSV or JSON.

use super::{Outcome, connect, load_plan};
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Action {
    /// Write awards to standard output.
    Export(ExportOpts),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ExportOpts {
    /// csv (header badge_id,user_id,awarded_at,source) or json (an array of objects).
    #[arg(long, default_value = "csv")]
    pub format: Format,
    /// Only these badges (repeatable).
    #[arg(long = "badge", value_name = "ID")]
    pub badges: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

pub async fn run(config: Option<&Path>, opts: Opts) -> Result<Outcome> {
    let Action::Export(export) = opts.action;
    let plan = load_plan(config)?;
    for id in &export.badges {
        if plan.badge(id).is_none() {
            bail!("--badge {id}: no badge with that id in the config");
        }
    }
    let (db, store) = connect(&plan).await?;
    let awards = store.awards(&export.badges).await;
    super::disconnect(&db, &store).await;
    let awards = awards?;
    match export.format {
        Format::Csv => super::write_csv(
            &["badge_id", "user_id", "awarded_at", "source"],
            awards
                .iter()
                .map(|a| vec![a.badge_id.clone(), a.user_id.to_string(), a.awarded_at.clone(), a.source.clone()]),
        )?,
        Format::Json => {
            let mut out = std::io::stdout().lock();
            let written = serde_json::to_writer_pretty(&mut out, &awards)
                .map_err(anyhow::Error::from)
                .and_then(|()| writeln!(out).map_err(anyhow::Error::from))
                .and_then(|()| out.flush().context("writing the export"));
            match written {
                Err(e) if !super::is_broken_pipe(&e) => return Err(e),
                _ => {}
            }
        }
    }
    Ok(Outcome::Success)
}
