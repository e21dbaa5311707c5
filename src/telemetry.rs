//! Logging set-up: human-readable logs on standard error, filtered by `ACCOLADE_LOG`
//! (a tracing filter such as `info` or `accolade=debug`; default `warn`).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls (in tests) are no-ops.
pub fn init() {
    let filter = EnvFilter::try_from_env("ACCOLADE_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
