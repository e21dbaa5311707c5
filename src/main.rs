//! The `accolade` binary: parses the command line and hands over to the library.

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = accolade::commands::Cli::parse();
    accolade::telemetry::init(cli.log_format);
    accolade::commands::main(cli).await
}
