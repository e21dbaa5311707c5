//! Operating the job: backfills and the notification outbox, the leaderboard, sharded runs,
//! the in-process scheduler's shutdown, metrics and JSON logs.

use crate::support::{Backend, CANONICAL_SOURCES, TestHost, at, badge, pairs, use_backend};
use accolade::commands::badges::preview_badge;
use accolade::commands::run::RunOptions;
use accolade::db::Db;
use accolade::sources::Shard;
use accolade::store::Store;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const POSTER: &str = r#"{ type = "posts_sent", min = 1 }"#;

/// `(badge_id, user_id, state)` of every outbox row, sorted.
async fn outbox(host: &TestHost) -> Vec<(String, i64, String)> {
    let mut rows: Vec<_> = host
        .store()
        .outbox()
        .await
        .expect("reading the outbox")
        .into_iter()
        .map(|r| (r.badge_id, r.user_id, r.state))
        .collect();
    rows.sort();
    rows
}

fn sources_of(awards: &[accolade::store::StoredAward]) -> BTreeMap<i64, String> {
    awards.iter().map(|a| (a.user_id, a.source.clone())).collect()
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_newly_published_badge_backfills_silently_and_announces_later_awards(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members(1..=3, "2026-01-01 00:00:00").await;
    host.add_events("posts", 1, &["2026-02-01 00:00:00"]).await;
    host.add_events("posts", 2, &["2026-02-01 00:00:00"]).await;
    let plan = host.plan(&host.config(&badge("poster", POSTER), CANONICAL_SOURCES));

    let first = host.run(&plan, at("2026-03-01T00:00:00Z")).await;
    assert!(first.badges[0].backfill);
    assert_eq!(outbox(&host).await, vec![], "a backfill is not announced by default");

    host.add_events("posts", 3, &["2026-03-02 00:00:00"]).await;
    let second = host.run(&plan, at("2026-03-03T00:00:00Z")).await;

    assert!(!second.badges[0].backfill);
    let awards = host.stored_awards().await;
    assert_eq!(
        sources_of(&awards),
        BTreeMap::from([(1, "backfill".into()), (2, "backfill".into()), (3, "rule".into())])
    );
    assert_eq!(outbox(&host).await, vec![("poster".to_string(), 3, "pending".to_string())]);
    assert_eq!(second.notifications_released, 1);
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn an_announced_backfill_spreads_over_runs_and_is_never_queued_twice(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members(1..=5, "2026-01-01 00:00:00").await;
    for user in 1..=5 {
        host.add_events("posts", user, &["2026-02-01 00:00:00"]).await;
    }
    let config = host.config(&badge("poster", POSTER), CANONICAL_SOURCES)
        + "\n[notifications]\non_backfill = \"all\"\nmax_per_run = 2\n";
    let plan = host.plan(&config);

    let mut pending_after_each_run = Vec::new();
    for day in 1..=4 {
        let report = host.run(&plan, at(&format!("2026-03-0{day}T00:00:00Z"))).await;
        let rows = outbox(&host).await;
        assert_eq!(rows.len(), 5, "one row per award, whatever the run");
        pending_after_each_run.push((report.notifications_released, rows.iter().filter(|r| r.2 == "pending").count()));
    }

    assert_eq!(pending_after_each_run, vec![(2, 2), (2, 4), (1, 5), (0, 5)]);
    assert!(host.stored_awards().await.iter().all(|a| a.source == "backfill"));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_badge_published_later_backfills_at_its_own_first_evaluation(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members(1..=2, "2026-01-01 00:00:00").await;
    host.add_events("posts", 1, &["2026-02-01 00:00:00"]).await;
    let draft = badge("poster", POSTER).replace("rule =", "status = \"disabled\"\nrule =");
    host.run(&host.plan(&host.config(&draft, CANONICAL_SOURCES)), at("2026-03-01T00:00:00Z")).await;
    assert_eq!(host.awards().await, vec![]);

    let published = host.plan(&host.config(&badge("poster", POSTER), CANONICAL_SOURCES));
    let report = host.run(&published, at("2026-03-02T00:00:00Z")).await;

    assert!(report.badges[0].backfill);
    assert_eq!(host.stored_awards().await[0].source, "backfill");
    assert_eq!(outbox(&host).await, vec![]);
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_preview_counts_members_before_the_badge_is_published(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members(1..=4, "2026-01-01 00:00:00").await;
    for user in [1, 3] {
        host.add_events("posts", user, &["2026-02-01 00:00:00"]).await;
    }
    let draft = badge("poster", POSTER).replace("rule =", "status = \"disabled\"\nrule =");
    let plan = host.plan(&host.config(&draft, CANONICAL_SOURCES));
    let db = Db::connect(host.url()).await.expect("connecting");
    let store = Store::new(db.clone());

    let preview = preview_badge(&plan, &db, &store, &plan.badges[0], at("2026-03-01T00:00:00Z")).await;
    db.close().await;

    let preview = preview.expect("the preview should succeed");
    assert_eq!((preview.qualifying, preview.new_awards, preview.backfill), (2, 2, true));
    assert!(!host.is_migrated().await, "a preview writes nothing");
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn the_leaderboard_ranks_by_points_then_badges_then_id_and_matches_the_awards(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members(1..=5, "2026-01-01 00:00:00").await;
    // member: posts → badges by thresholds 1 (10 points), 2 (10 points), 3 (50 points)
    for (user, posts) in [(1, 1), (2, 3), (3, 2), (4, 2), (5, 0)] {
        let stamps: Vec<String> = (0..posts).map(|i| format!("2026-02-0{} 00:00:00", i + 1)).collect();
        let stamps: Vec<&str> = stamps.iter().map(String::as_str).collect();
        if !stamps.is_empty() {
            host.add_events("posts", user, &stamps).await;
        }
    }
    let badges = badge("one", POSTER).replace("rule =", "points = 10\nrule =")
        + &badge("two", r#"{ type = "posts_sent", min = 2 }"#).replace("rule =", "points = 10\nrule =")
        + &badge("three", r#"{ type = "posts_sent", min = 3 }"#).replace("rule =", "points = 50\nrule =");
    let plan = host.plan(&host.config(&badges, CANONICAL_SOURCES));
    host.run(&plan, at("2026-03-01T00:00:00Z")).await;
    // A hand-awarded extra badge gives member 1 more badges than member 3 at equal points.
    let with_manual =
        host.plan(&host.config(&(badges.clone() + &crate::support::manual_badge("extra")), CANONICAL_SOURCES));
    host.award(&with_manual, "extra", &[1]).await.expect("manual award");

    let board = host.store().leaderboard(None, None).await.expect("reading the leaderboard");

    let lines: Vec<(u64, i64, i64, i64)> = board.iter().map(|r| (r.rank, r.user_id, r.points, r.badges)).collect();
    assert_eq!(lines, expected_board());
    let holders: std::collections::BTreeSet<i64> = host.awards().await.into_iter().map(|(_, u)| u).collect();
    let ranked: std::collections::BTreeSet<i64> = board.iter().map(|r| r.user_id).collect();
    assert_eq!(ranked, holders, "every member holding a badge is on the leaderboard");
    let top = host.store().leaderboard(Some(2), None).await.expect("reading the top 2");
    assert_eq!(top.iter().map(|r| r.user_id).collect::<Vec<_>>(), vec![2, 3]);
}

/// Member 2: 70 points (3 badges); 3 and 4: 20 points (2 badges each, lower id first);
/// member 1: 10 points with 2 badges (the manual one has no points) ranks below them.
fn expected_board() -> Vec<(u64, i64, i64, i64)> {
    vec![(1, 2, 70, 3), (2, 3, 20, 2), (3, 4, 20, 2), (4, 1, 10, 2)]
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn sharded_runs_together_award_exactly_what_one_run_awards(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let whole = TestHost::canonical().await;
    let sharded = TestHost::canonical().await;
    for host in [&whole, &sharded] {
        host.add_members([-7, -1, 0, 1, 2, 3, 4, 5, 10, 11], "2026-01-01 00:00:00").await;
        for user in [-7, 0, 2, 3, 11] {
            host.add_events("posts", user, &["2026-02-01 00:00:00"]).await;
        }
    }
    let badges = badge("poster", POSTER) + &badge("member", r#"{ type = "account_age", min = "1 day" }"#);
    let as_of = at("2026-03-01T00:00:00Z");
    whole.run(&whole.plan(&whole.config(&badges, CANONICAL_SOURCES)), as_of).await;

    let plan = sharded.plan(&sharded.config(&badges, CANONICAL_SOURCES));
    let mut per_shard = Vec::new();
    for index in 0..3 {
        let options =
            RunOptions { as_of: Some(as_of), shard: Some(Shard { index, count: 3 }), ..RunOptions::default() };
        let report = sharded.run_with(&plan, &options).await;
        per_shard.push(report.total_new_awards());
    }

    assert_eq!(sharded.awards().await, whole.awards().await);
    assert_eq!(per_shard.iter().sum::<u64>(), whole.awards().await.len() as u64);
    assert!(per_shard.iter().all(|&n| n > 0), "every shard had members: {per_shard:?}");
    assert!(whole.awards().await.contains(&("poster".to_string(), -7)));
}

/// A SQLite host with two posters and a config file, for the binary.
async fn poster_host(extra: &str) -> (TestHost, std::path::PathBuf) {
    let host = TestHost::on(Backend::Sqlite).await;
    host.exec(crate::support::CANONICAL_SCHEMA).await;
    host.add_members(1..=2, "2026-01-01 00:00:00").await;
    host.add_events("posts", 1, &["2026-02-01 00:00:00"]).await;
    host.add_events("posts", 2, &["2026-02-01 00:00:00"]).await;
    let config = host.config(&badge("poster", POSTER), CANONICAL_SOURCES) + extra;
    let path = host.write_config("accolade.toml", &config);
    (host, path)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scheduler_runs_passes_and_stops_cleanly_on_sigterm() {
    let (host, config) = poster_host("").await;
    let text = std::fs::read_to_string(&config).expect("reading the config");
    let text = text.replacen("[sources]", "[evaluation]\nschedule = \"* * * * * *\"\n\n[sources]", 1);
    std::fs::write(&config, text).expect("writing the config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_accolade"))
        .args(["--config", config.to_str().unwrap_or_default(), "schedule"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting accolade schedule");

    let deadline = Instant::now() + Duration::from_secs(60);
    while host.awards().await.len() < 2 {
        assert!(Instant::now() < deadline, "no pass completed within a minute");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().expect("sending SIGTERM");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the scheduler") {
            break status;
        }
        assert!(Instant::now() < deadline, "the scheduler did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    assert_eq!(status.code(), Some(0));
    let db = Db::connect(host.url()).await.expect("connecting");
    let Db::Sqlite(pool) = &db else { unreachable!("a SQLite host") };
    let running: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accolade_runs WHERE outcome = 'running'")
        .fetch_one(pool)
        .await
        .expect("counting runs");
    let finished: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accolade_runs WHERE outcome = 'success'")
        .fetch_one(pool)
        .await
        .expect("counting runs");
    db.close().await;
    assert_eq!(running, 0, "no pass is left half-recorded");
    assert!(finished >= 1);
    assert_eq!(host.awards().await, pairs(&[("poster", 1), ("poster", 2)]));
}

/// Accepts one HTTP request on a local port and returns (request line, body) once read.
fn one_http_request() -> (u16, std::thread::JoinHandle<(String, String)>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a local port");
    let port = listener.local_addr().expect("local address").port();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accepting the push");
        stream.set_read_timeout(Some(Duration::from_secs(20))).expect("read timeout");
        let mut reader = BufReader::new(stream);
        let mut request_line = String::new();
        reader.read_line(&mut request_line).expect("reading the request line");
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).expect("reading a header");
            if header.trim().is_empty() {
                break;
            }
            if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).expect("reading the body");
        let mut stream = reader.into_inner();
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        (request_line.trim().to_string(), String::from_utf8_lossy(&body).into_owned())
    });
    (port, handle)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_writes_prometheus_metrics_to_a_file_and_pushes_them() {
    let (host, config) = poster_host("").await;
    let metrics = host.dir().join("accolade.prom");
    let (port, request) = one_http_request();
    let output = Command::new(env!("CARGO_BIN_EXE_accolade"))
        .args(["--config", config.to_str().unwrap_or_default(), "run", "--as-of", "2026-03-01T00:00:00Z"])
        .args(["--metrics-file", metrics.to_str().unwrap_or_default()])
        .args(["--pushgateway", &format!("http://127.0.0.1:{port}")])
        .output()
        .expect("running accolade");
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));

    let written = std::fs::read_to_string(&metrics).expect("reading the metrics file");
    assert!(written.contains("accolade_run_success 1\n"), "{written}");
    assert!(written.contains("accolade_run_new_awards{badge=\"poster\"} 2\n"), "{written}");
    assert!(written.contains("# TYPE accolade_run_duration_seconds gauge\n"), "{written}");
    let (line, body) = request.join().expect("the push was received");
    assert!(line.starts_with("PUT /metrics/job/accolade "), "{line}");
    assert_eq!(body, written);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_json_lines_ending_with_a_run_summary() {
    let (_host, config) = poster_host("").await;
    let output = Command::new(env!("CARGO_BIN_EXE_accolade"))
        .args(["--config", config.to_str().unwrap_or_default(), "--log-format", "json", "run"])
        .args(["--as-of", "2026-03-01T00:00:00Z"])
        .output()
        .expect("running accolade");
    assert_eq!(output.status.code(), Some(0));

    let stderr = String::from_utf8_lossy(&output.stderr);
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let summary = events.iter().find(|e| e["message"] == "run finished").expect("a run finished event");
    assert_eq!(summary["new_awards"], 2);
    assert_eq!(summary["as_of"], "2026-03-01T00:00:00Z");
    assert!(!stderr.contains('\u{1b}'), "no terminal escapes in JSON mode");
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_run_asked_to_stop_commits_nothing_half_and_the_next_run_completes_it(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members(1..=3, "2026-01-01 00:00:00").await;
    let plan =
        host.plan(&host.config(&badge("member", r#"{ type = "account_age", min = "1 day" }"#), CANONICAL_SOURCES));
    // The stop arrives before the first transaction, as a signal during evaluation would.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let options = RunOptions { as_of: Some(at("2026-03-01T00:00:00Z")), stop: Some(stop), ..RunOptions::default() };

    let stopped = host.run_with(&plan, &options).await;
    let after_stop = host.awards().await;
    let resumed = host.run(&plan, at("2026-03-01T00:00:00Z")).await;

    assert!(stopped.stopped);
    assert_eq!(after_stop, vec![]);
    assert!(resumed.badges[0].backfill, "a stopped backfill is not complete: the next run continues it");
    assert_eq!(host.holders("member").await, vec![1, 2, 3]);
}
