//! The benchmark script runs end to end at a tiny size: it generates a community into
//! PostgreSQL, runs the SQL-per-badge baseline and accolade, and finds the same awards.
//! The write-path script runs at a tiny size too, on SQLite and MariaDB. (No duration is
//! asserted: timings are the benchmarks' report, not a test.)

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
        // Yesterday's midnight: the incremental passes' instants, minutes later, are past too.
        .args(["--as-of", &(chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%dT00:00:00Z").to_string()])
        .args(["--incremental-k", "50,400"])
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
    let passes = results[0]["incremental"]["passes"].as_array().cloned().unwrap_or_default();
    assert_eq!(passes.len(), 2, "{stdout}");
    for pass in &passes {
        assert_eq!(pass["same_as_full"], true, "an incremental pass awards what a full run does: {pass}");
        assert!(pass["evaluated"].as_u64().is_some_and(|n| n > 0), "the pass was incremental: {pass}");
    }
    let chart = std::fs::read_to_string(out.path().join("chart.svg")).expect("chart.svg is written");
    assert!(chart.starts_with("<svg") && chart.contains("<polyline"));
}

#[test]
fn the_write_path_script_runs_at_a_tiny_size_and_its_floors_store_exactly_the_runs_awards() {
    let Some(_backend) = use_backend(Backend::MySql) else { return };
    for tool in ["sqlite3", "mysql"] {
        if Command::new(tool).arg("--version").output().is_err() {
            assert!(std::env::var_os("CI").is_none(), "the {tool} client is missing, and CI is set");
            crate::support::announce_skip(&format!("no {tool} command-line client"));
            return;
        }
    }
    let out = tempfile::tempdir().expect("a directory for the results");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/write_paths.py");

    let output = Command::new("python3")
        .arg(&script)
        .args(["--members", "1200", "--accolade", env!("CARGO_BIN_EXE_accolade")])
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("running python3 bench/write_paths.py");

    // The script itself checks that each floor stored as many rows as the run awarded.
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("write_paths-1200.json")).expect("the results are written"),
    )
    .expect("the results are JSON");
    for database in ["sqlite", "mysql"] {
        assert!(results[database]["awards"].as_u64().is_some_and(|n| n > 0), "{database}: {results}");
        assert!(results[database]["floor_s"].as_f64().is_some(), "{database}: {results}");
    }
}
