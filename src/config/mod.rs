//! The configuration file as the user writes it, and where it is found.
//!
//! Owns the TOML shape (the public contract of `accolade.toml`) and its lookup order:
//! `--config FILE`, else `$ACCOLADE_CONFIG`, else `./accolade.toml`; `ACCOLADE_DATABASE_URL`
//! overrides `database.url` and `ACCOLADE_AWARDS_DATABASE_URL` `database.awards_url`. A
//! relative `sqlite://` path in the file is read from the file's folder (one from the
//! environment, from the working directory). Nothing here judges whether the values make sense: [`plan`]
//! compiles a [`RawConfig`] into a validated [`plan::Plan`] and reports every problem at once.

pub mod plan;

use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The config file name looked for in the working directory.
pub const DEFAULT_CONFIG_FILE: &str = "accolade.toml";

/// The top level of `accolade.toml`. Badges stay loosely typed here so that one badge's
/// mistake does not hide another's: [`plan::compile`] reads each one on its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub database: DatabaseSection,
    #[serde(default)]
    pub evaluation: EvaluationSection,
    #[serde(default)]
    pub sources: SourcesSection,
    #[serde(default)]
    pub notifications: NotificationsSection,
    /// Who issues the badges, for Open Badges exports.
    pub issuer: Option<IssuerSection>,
    #[serde(default)]
    pub badges: Vec<toml::Table>,
}

/// `[sources]`: one query per built-in source (`users = "SELECT ..."`), and under
/// `[sources.events]` any number of named event sources.
#[derive(Debug, Default, Deserialize)]
pub struct SourcesSection {
    /// `[sources.events]`: name → query.
    #[serde(default)]
    pub events: BTreeMap<String, String>,
    /// The built-in sources (and any unknown name, which the plan reports).
    #[serde(flatten)]
    pub queries: BTreeMap<String, String>,
}

/// `[issuer]`: the organisation named as the issuer in Open Badges exports.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSection {
    /// The URL the issuer's profile is published at; the exported documents' ids live beside it.
    pub id: String,
    pub name: String,
    /// The issuer's home page.
    pub url: String,
    pub email: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// The host platform's database, read by `[sources]`.
    pub url: String,
    /// Where the evaluator's own tables live, if not in the host database (so the host can
    /// be read with a read-only account).
    pub awards_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationSection {
    /// IANA zone name; UTC when absent.
    pub timezone: Option<String>,
    /// What a run does when another run holds the awards database's lock: "exit" or "wait".
    pub when_locked: Option<String>,
    /// When `accolade schedule` runs passes: 5-field cron, or 6 with seconds first.
    pub schedule: Option<String>,
    /// How many shards `$JOB_COMPLETION_INDEX` picks from (Kubernetes Indexed Jobs).
    pub shards: Option<u32>,
    /// When `accolade schedule` runs incremental passes between the full ones of `schedule`.
    pub incremental_schedule: Option<String>,
    /// How long after their `created_at` event rows may still appear ("10 minutes").
    pub late_rows: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsSection {
    /// Whether a badge's backfill awards are announced: "none" (default) or "all".
    pub on_backfill: Option<String>,
    /// At most this many notifications are released to the mailer per run.
    pub max_per_run: Option<u64>,
    /// Whether revocations and restorations by `revoke_when_unmet` are announced: "none"
    /// (default) or "all".
    pub on_revoke: Option<String>,
}

/// Where the config comes from: the explicit path, the environment, or the default file.
pub fn locate(explicit: Option<&Path>) -> PathBuf {
    if let Some(path) = explicit {
        return path.to_path_buf();
    }
    match std::env::var_os("ACCOLADE_CONFIG") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(DEFAULT_CONFIG_FILE),
    }
}

/// Reads and parses the config file, then applies environment overrides.
pub fn load(path: &Path) -> Result<RawConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    let mut raw = parse(&text).with_context(|| format!("config file {}", path.display()))?;
    // Relative SQLite paths in the file mean beside the file, wherever the job runs from.
    let base = path.parent().unwrap_or(Path::new(""));
    raw.database.url = resolve_sqlite_url(&raw.database.url, base);
    raw.database.awards_url = raw.database.awards_url.map(|url| resolve_sqlite_url(&url, base));
    if let Ok(url) = std::env::var("ACCOLADE_DATABASE_URL")
        && !url.is_empty()
    {
        raw.database.url = url;
    }
    if let Ok(url) = std::env::var("ACCOLADE_AWARDS_DATABASE_URL")
        && !url.is_empty()
    {
        raw.database.awards_url = Some(url);
    }
    Ok(raw)
}

/// Parses config text (no environment overrides).
pub fn parse(text: &str) -> Result<RawConfig> {
    toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
}

/// A `sqlite://` URL whose relative file path is read from `base` (the config file's folder),
/// as an absolute path; other URLs, absolute paths and in-memory databases are unchanged.
pub fn resolve_sqlite_url(url: &str, base: &Path) -> String {
    let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) else {
        return url.to_string();
    };
    let (file, query) = match rest.split_once('?') {
        Some((file, query)) => (file, format!("?{query}")),
        None => (rest, String::new()),
    };
    if file.is_empty() || file.starts_with(':') || Path::new(file).is_absolute() {
        return url.to_string();
    }
    let joined = base.join(file);
    let absolute = std::path::absolute(&joined).unwrap_or(joined);
    format!("sqlite://{}{query}", absolute.display())
}

#[cfg(test)]
mod tests {
    use super::resolve_sqlite_url;
    use std::path::Path;

    #[test]
    fn a_relative_sqlite_path_is_read_beside_the_config_file() {
        assert_eq!(
            resolve_sqlite_url("sqlite://host.db", Path::new("/etc/accolade")),
            "sqlite:///etc/accolade/host.db"
        );
        assert_eq!(
            resolve_sqlite_url("sqlite:data/host.db?mode=ro", Path::new("/srv")),
            "sqlite:///srv/data/host.db?mode=ro"
        );
    }

    #[test]
    fn absolute_paths_memory_databases_and_servers_are_left_alone() {
        let base = Path::new("/etc/accolade");
        assert_eq!(resolve_sqlite_url("sqlite:///var/host.db", base), "sqlite:///var/host.db");
        assert_eq!(resolve_sqlite_url("sqlite::memory:", base), "sqlite::memory:");
        assert_eq!(resolve_sqlite_url("postgres://db/app", base), "postgres://db/app");
    }
}
