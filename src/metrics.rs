//! Prometheus metrics of a run, in the text exposition format: written to a file for
//! node-exporter's textfile collector (`--metrics-file`) and/or pushed to a Pushgateway
//! (`--pushgateway URL`, job `accolade`).

use crate::pipeline::RunReport;
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// The metrics of one finished run (or of a run that failed, when `report` is `None`).
pub fn render(report: Option<&RunReport>, duration: Duration) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let success = report.is_some_and(|r| !r.refused() && !r.stopped);
    gauge(
        "accolade_run_success",
        "1 if the last run evaluated every badge, else 0.",
        &[(String::new(), f64::from(u8::from(success)))],
    );
    gauge(
        "accolade_run_duration_seconds",
        "Wall-clock time of the last run.",
        &[(String::new(), duration.as_secs_f64())],
    );
    let Some(report) = report else { return out };
    gauge(
        "accolade_run_as_of_timestamp_seconds",
        "The evaluation instant of the last run.",
        &[(String::new(), report.as_of.timestamp() as f64)],
    );
    let per_badge: Vec<(String, f64)> =
        report.badges.iter().map(|b| (format!("{{badge=\"{}\"}}", escape(&b.badge_id)), b.new_awards as f64)).collect();
    gauge("accolade_run_new_awards", "Awards the last run inserted, per badge.", &per_badge);
    let refused = report.badges.iter().filter(|b| matches!(b.status, "refused" | "failed")).count();
    gauge(
        "accolade_run_badges_failed",
        "Badges the last run refused or could not evaluate.",
        &[(String::new(), refused as f64)],
    );
    gauge(
        "accolade_run_notifications_released",
        "Notifications the last run released to the mailer.",
        &[(String::new(), report.notifications_released as f64)],
    );
    out
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Writes metrics atomically (a temporary file renamed into place), so the collector never
/// reads half a file.
pub fn write_file(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("prom.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("moving metrics into {}", path.display()))
}

/// Pushes metrics to a Pushgateway under job `accolade` (replacing the job's previous ones).
pub fn push(gateway: &str, text: &str) -> Result<()> {
    let url = format!("{}/metrics/job/accolade", gateway.trim_end_matches('/'));
    ureq::put(&url)
        .header("Content-Type", "text/plain; version=0.0.4")
        .send(text)
        .with_context(|| format!("pushing metrics to {url}"))?;
    Ok(())
}
