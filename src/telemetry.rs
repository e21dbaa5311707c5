//! Logs and progress: human-readable logs on standard error, or JSON lines for log
//! collectors (`--log-format json` / `ACCOLADE_LOG_FORMAT=json`), filtered by `ACCOLADE_LOG`
//! (a tracing filter such as `info` or `accolade=debug`; default `info`). Progress spinners
//! show long phases only when standard error is a terminal and logs are not JSON.

use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

static PROGRESS: OnceLock<bool> = OnceLock::new();

/// Installs the global subscriber once; later calls (in tests) are no-ops.
pub fn init(format: LogFormat) {
    let builder = tracing_subscriber::fmt().with_env_filter(filter()).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_target(false).with_ansi(colour()).try_init(),
    };
    let _ = PROGRESS.set(format == LogFormat::Text && std::io::stderr().is_terminal());
}

/// `ACCOLADE_LOG` (default `info`), with the scheduler library's per-job chatter ("Job
/// creator created" at every pass) and sqlx's statement logs kept out unless named.
fn filter() -> EnvFilter {
    let mut text = std::env::var("ACCOLADE_LOG").ok().filter(|t| !t.trim().is_empty()).unwrap_or_else(|| "info".into());
    for quiet in ["sqlx=error", "tokio_cron_scheduler=warn"] {
        let target = quiet.split('=').next().unwrap_or_default();
        if !text.contains(target) {
            text.push(',');
            text.push_str(quiet);
        }
    }
    EnvFilter::try_new(&text).unwrap_or_else(|_| EnvFilter::new("info,sqlx=error,tokio_cron_scheduler=warn"))
}

/// Colour codes only on a terminal, and never with `NO_COLOR` set (https://no-color.org).
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A spinner for one phase of a run, cleared when dropped; nothing unless progress is shown.
pub struct Phase(Option<indicatif::ProgressBar>);

/// Starts showing `message` as a phase in progress.
pub fn phase(message: &'static str) -> Phase {
    if !PROGRESS.get().copied().unwrap_or(false) {
        return Phase(None);
    }
    let bar = indicatif::ProgressBar::new_spinner().with_message(message);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Phase(Some(bar))
}

impl Drop for Phase {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

/// This process's resident memory now and at its peak so far, in MiB (Linux; `(0, 0)`
/// elsewhere), for the phase timings in the logs.
pub fn memory_mib() -> (u64, u64) {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return (0, 0) };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
