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
    match write_export(&awards, export.format) {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) => {
            Ok(Outcome::Success)
        }
        other => other.map(|()| Outcome::Success),
    }
}

fn write_export(awards: &[crate::store::StoredAward], format: Format) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(&mut out);
            writer.write_record(["badge_id", "user_id", "awarded_at", "source"])?;
            for a in awards {
                writer.write_record([a.badge_id.as_str(), &a.user_id.to_string(), &a.awarded_at, &a.source])?;
            }
            writer.flush()?;
        }
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, awards)?;
            writeln!(out)?;
        }
    }
    out.flush().context("writing the export")
}
