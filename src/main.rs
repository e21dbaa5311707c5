//! The `accolade` binary: parses the command line and hands over to the library.

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    accolade::telemetry::init();
    accolade::commands::main(accolade::commands::Cli::parse()).await
}
