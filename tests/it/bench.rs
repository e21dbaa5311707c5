//! The benchmark script runs end to end at a tiny size: it generates a community into
//! PostgreSQL, runs the SQL-per-badge baseline and accolade, and finds the same awards.
//! (No duration is asserted: timings are the benchmark's report, not a test.)

use crate::support::{Backend, use_backend};
use std::path::Path;
use std::process::Command;

#[test]
fn the_bench_script_runs_at_a_tiny_size_and_finds_the_same_awards_as_the_sql_baseline() {
    let Some(_backend) = use_backend(Backend::Postgres) else { return };
    let out = tempfile::tempdir().expect("a directory for the results");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/run.py");
    let pg =
        std::env::var("ACCOLADE_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let server = pg.rsplit_once('/').map_or(pg.as_str(), |(server, _)| server);

    let output = Command::new("python3")
        .arg(&script)
        .args(["--sizes", "1500", "--accolade", env!("CARGO_BIN_EXE_accolade"), "--pg-url", server])
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("running python3 bench/run.py");

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("awards match: True"), "{stdout}");
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("results.json")).expect("results.json is written"),
    )
    .expect("results.json is JSON");
    assert_eq!(results[0]["members"], 1500);
    assert_eq!(results[0]["awards_match"], true);
    assert!(results[0]["awards"].as_u64().is_some_and(|n| n > 0));
    let chart = std::fs::read_to_string(out.path().join("chart.svg")).expect("chart.svg is written");
    assert!(chart.starts_with("<svg") && chart.contains("<polyline"));
}
