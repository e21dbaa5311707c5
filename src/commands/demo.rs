//! `accolade demo`: a synthetic community in SQLite, its config, and one evaluation pass.
//!
//! Writes `accolade-demo.db` (rebuilt from scratch), `accolade-demo.toml` and the badge image
//! it names (`images/social.png`) in the working directory (or `--dir`), runs one pass, and
//! prints the summary and the dashboard, so a newcomer sees the whole path with nothing but
//! Rust installed.

use super::{Outcome, badges, connect, run};
use crate::config::{self, plan};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

const DEMO_DB: &str = "accolade-demo.db";
const DEMO_CONFIG_FILE: &str = "accolade-demo.toml";
/// The image the demo config gives `social-butterfly` (as config/demo.toml does), written
/// beside the config so `awards export --bake` bakes into it.
const DEMO_IMAGE: (&str, &[u8]) = ("images/social.png", include_bytes!("../../config/images/social.png"));

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// Members in the demo community.
    #[arg(long, default_value_t = 1000)]
    pub users: u32,
    /// Where to write accolade-demo.db and accolade-demo.toml.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
}

pub async fn run(opts: Opts) -> Result<Outcome> {
    std::fs::create_dir_all(&opts.dir).with_context(|| format!("cannot create {}", opts.dir.display()))?;
    let db_path = opts.dir.join(DEMO_DB);
    let config_path = opts.dir.join(DEMO_CONFIG_FILE);
    build_database(&db_path, opts.users).await?;
    // The config names its database relative to itself, so it works from any directory.
    let text = demo_config(Path::new(DEMO_DB));
    std::fs::write(&config_path, &text).with_context(|| format!("cannot write {}", config_path.display()))?;
    let image_path = opts.dir.join(DEMO_IMAGE.0);
    if let Some(folder) = image_path.parent() {
        std::fs::create_dir_all(folder).with_context(|| format!("cannot create {}", folder.display()))?;
    }
    std::fs::write(&image_path, DEMO_IMAGE.1).with_context(|| format!("cannot write {}", image_path.display()))?;
    println!("wrote {} ({} members) and {}", db_path.display(), opts.users, config_path.display());

    let mut raw = config::parse(&text)?;
    raw.database.url = config::resolve_sqlite_url(&raw.database.url, &opts.dir);
    let plan = plan::compile(raw).map_err(|e| anyhow::anyhow!("demo config: {e}"))?;
    let (db, store) = connect(&plan).await?;
    let report = run::execute(&plan, &db, &store, None, false, &[]).await;
    let stored = store.badges().await;
    super::disconnect(&db, &store).await;
    run::print_report(&report?);
    println!();
    badges::print_dashboard(&plan, stored?);
    let accolade = invoked_as();
    let config = config_path.display();
    println!("\nnext: {accolade} --config {config} explain --user 1");
    println!("      {accolade} --config {config} awards export | head");
    println!("      {accolade} --config {config} report --out report.html");
    Ok(Outcome::Success)
}

/// The command that runs this binary as the user ran it: `cargo run --` under cargo, else the
/// program path as typed (`accolade` on the PATH, `./target/release/accolade`, ...).
fn invoked_as() -> String {
    if std::env::var_os("CARGO").is_some() && std::env::var_os("CARGO_MANIFEST_DIR").is_some() {
        return "cargo run --".to_string();
    }
    std::env::args().next().filter(|a| !a.is_empty()).unwrap_or_else(|| "accolade".to_string())
}

/// The demo config pointing at `db_path`.
pub fn demo_config(db_path: &Path) -> String {
    super::generate::demo_config(&format!("sqlite://{}", db_path.display()))
}

/// Creates the demo host database from scratch with `members` members.
pub async fn build_database(db_path: &Path, members: u32) -> Result<()> {
    super::generate::generate(&format!("sqlite://{}", db_path.display()), members).await
}
