//! `accolade migrate`: create or upgrade the evaluator's tables in the awards database.

use super::{Outcome, connect, load_plan};
use crate::store;
use anyhow::Result;
use std::path::Path;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct Opts {}

pub async fn run(config: Option<&Path>, _opts: Opts) -> Result<Outcome> {
    let plan = load_plan(config)?;
    let (db, store) = connect(&plan).await?;
    let applied = store::migrate(&store).await;
    super::disconnect(&db, &store).await;
    match applied?.as_slice() {
        [] => println!("the awards tables are up to date"),
        versions => println!("applied migrations {versions:?}"),
    }
    Ok(Outcome::Success)
}
