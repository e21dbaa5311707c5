//! `accolade check`: validate the config, every rule and every source query at once.
//!
//! Compiles the config (collecting every problem), then prepares each source query against
//! the database and checks that it returns the columns its source requires. Prints every
//! problem, each naming its badge or source; exits 1 if there were any.

use super::Outcome;
use crate::config::{self, plan};
use crate::db::Db;
use crate::sources::{self, SourceKind};
use anyhow::Result;
use std::path::Path;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct Opts {}

pub async fn run(config_path: Option<&Path>, _opts: Opts) -> Result<Outcome> {
    let path = config::locate(config_path);
    let problems = problems(&path).await?;
    if problems.is_empty() {
        println!("{}: OK", path.display());
        return Ok(Outcome::Success);
    }
    let plural = if problems.len() == 1 { "" } else { "s" };
    println!("{}: {} problem{plural}", path.display(), problems.len());
    for problem in &problems {
        println!("  - {}", problem.replace('\n', "\n    "));
    }
    Ok(Outcome::Failed)
}

/// Every problem in the config file at `path`, including its source queries.
pub async fn problems(path: &Path) -> Result<Vec<String>> {
    let raw = match config::load(path) {
        Ok(raw) => raw,
        Err(error) => return Ok(vec![format!("{error:#}")]),
    };
    let url = raw.database.url.clone();
    let queries: Vec<(String, String)> = raw.sources.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut problems = match plan::compile(raw) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.0,
    };
    match Db::connect(&url).await {
        Ok(db) => {
            for (name, sql) in queries {
                let Some(kind) = SourceKind::from_name(&name) else {
                    continue;
                };
                if let Some(problem) = check_source(&db, kind, &sql).await {
                    problems.push(problem);
                }
            }
            db.close().await;
        }
        Err(error) => problems.push(format!("[database] {error:#}")),
    }
    Ok(problems)
}

async fn check_source(db: &Db, kind: SourceKind, sql: &str) -> Option<String> {
    let names = match sources::prepare_columns(db, kind, sql).await {
        Ok(names) => names,
        Err(error) => return Some(format!("{error:#}")),
    };
    let missing: Vec<&str> = kind
        .columns()
        .iter()
        .filter(|spec| spec.required && !names.iter().any(|n| n.eq_ignore_ascii_case(spec.name)))
        .map(|spec| spec.name)
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "source '{kind}' lacks column{} {} (the query returns: {})",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            names.join(", ")
        )
    })
}
