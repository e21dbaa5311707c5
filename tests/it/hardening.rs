//! What a first real user hit (part 7): the scheduler's slots, replays as of the future,
//! repeated members, calendar dates, one bad value, what `check` foresees, logs, messages and
//! the newcomer's first steps. Each test failed before its fix.

use crate::support::{
    Backend, BinaryRun, CANONICAL_SOURCES, TestHost, accolade_binary, at, badge, formula_badge, pairs, status,
    use_backend,
};
use chrono::{DateTime, Utc};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const POSTER: &str = r#"{ type = "posts_sent", min = 1 }"#;

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// A canonical host with members 1–3 (joined 2026-01-01) and one post by member 1, and its
/// config file with the poster badge.
async fn poster_host() -> (TestHost, std::path::PathBuf) {
    let host = TestHost::canonical().await;
    host.add_members(1..=3, "2026-01-01 00:00:00").await;
    host.add_events("posts", 1, &["2026-02-01 00:00:00"]).await;
    let config = host.write_config("accolade.toml", &host.config(&badge("poster", POSTER), CANONICAL_SOURCES));
    (host, config)
}

fn run_binary(config: &Path, args: &[&str]) -> BinaryRun {
    let mut all = vec!["--config", path_str(config)];
    all.extend_from_slice(args);
    accolade_binary(&all)
}

// ---------------------------------------------------------------------------------------
// 1. The scheduler: each slot once, never early, as of its instant
// ---------------------------------------------------------------------------------------

/// `(as_of, started_at)` of every recorded run, in run order.
async fn recorded_runs(host: &TestHost) -> Vec<(DateTime<Utc>, DateTime<Utc>, String)> {
    let db = accolade::db::Db::connect(host.url()).await.expect("connecting");
    let accolade::db::Db::Sqlite(pool) = &db else { unreachable!("a SQLite host") };
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT as_of, started_at, outcome FROM accolade_runs ORDER BY run_id")
            .fetch_all(pool)
            .await
            .expect("reading accolade_runs");
    db.close().await;
    rows.into_iter().map(|(a, s, o)| (at(&a), at(&s), o)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scheduler_runs_each_slot_once_never_early_and_as_of_the_slots_instant() {
    let (host, config) = poster_host().await;
    let text = std::fs::read_to_string(&config).expect("reading the config");
    let text = text.replacen("[sources]", "[evaluation]\nschedule = \"* * * * * *\"\n\n[sources]", 1);
    std::fs::write(&config, text).expect("writing the config");
    let log = host.dir().join("schedule.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_accolade"))
        .args(["--config", path_str(&config), "schedule"])
        .env_remove("ACCOLADE_LOG")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("creating the log file"))
        .spawn()
        .expect("starting accolade schedule");

    let deadline = Instant::now() + Duration::from_secs(90);
    while recorded_runs_count(&host).await < 5 {
        assert!(Instant::now() < deadline, "five passes did not complete within 90 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("sending SIGTERM");
    assert!(killed.success());
    let status = child.wait().expect("waiting for the scheduler");
    assert_eq!(status.code(), Some(0));

    let runs = recorded_runs(&host).await;
    let stderr = std::fs::read_to_string(&log).expect("reading the log");
    assert!(runs.len() >= 5, "{runs:?}");
    for pair in runs.windows(2) {
        assert!(pair[0].0 < pair[1].0, "each slot runs once: two runs as of {} ({runs:?})", pair[0].0);
    }
    for (as_of, started, outcome) in &runs {
        assert_eq!(as_of.timestamp_subsec_micros(), 0, "as_of is the slot's instant, a whole second: {as_of}");
        assert!(started >= as_of, "a pass started ({started}) before its slot ({as_of})");
        let announced = format!("next={}", accolade::instant::format_utc(*as_of));
        assert!(stderr.contains(&announced), "the log named {announced} before the pass:\n{stderr}");
        assert!(outcome == "success" || outcome == "partial" || outcome == "running", "{outcome}");
    }
    assert!(stderr.contains("the scheduler is stopping"), "{stderr}");
    assert!(!stderr.contains("Job creator created"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "no colour codes when standard error is a file:\n{stderr}");
    assert_eq!(host.awards().await, pairs(&[("poster", 1)]));
}

async fn recorded_runs_count(host: &TestHost) -> i64 {
    host.try_count("SELECT COUNT(*) FROM accolade_runs WHERE outcome <> 'running'").await.unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// 2. --as-of in the future
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_real_run_as_of_the_future_exits_2_and_writes_nothing_but_a_dry_run_may_look_ahead() {
    let (host, config) = poster_host().await;

    let refused = run_binary(&config, &["run", "--as-of", "2099-01-01"]);
    assert_eq!(refused.code, 2, "{}", refused.describe());
    assert!(refused.stderr.contains("later than now"), "{}", refused.describe());
    assert!(refused.stderr.contains("--dry-run"), "the refusal says how to look ahead: {}", refused.describe());
    assert!(!host.is_migrated().await, "a refused run touches nothing");

    let ahead = run_binary(&config, &["run", "--dry-run", "--as-of", "2099-01-01"]);
    assert_eq!(ahead.code, 0, "{}", ahead.describe());
    assert!(ahead.stdout.contains("1 new awards"), "{}", ahead.describe());
    let explained = run_binary(&config, &["explain", "--user", "1", "--as-of", "2099-01-01"]);
    assert_eq!(explained.code, 0, "{}", explained.describe());
    let preview = run_binary(&config, &["badges", "preview", "poster", "--as-of", "2099-01-01"]);
    assert_eq!(preview.code, 0, "{}", preview.describe());
    assert_eq!(host.awards().await, pairs(&[]));
}

#[tokio::test(flavor = "multi_thread")]
async fn as_of_accepts_epoch_seconds_like_the_data_does() {
    let (host, config) = poster_host().await;
    let instant = at("2026-06-15T12:00:00Z");

    let run = run_binary(&config, &["run", "--as-of", &instant.timestamp().to_string()]);

    assert_eq!(run.code, 0, "{}", run.describe());
    assert!(run.stdout.contains("as of 2026-06-15T12:00:00Z"), "{}", run.describe());
    assert_eq!(host.stored_awards().await[0].awarded_at, "2026-06-15T12:00:00Z");
}

#[test]
fn a_four_digit_as_of_is_still_a_year_and_a_longer_number_is_epoch_seconds() {
    let tz = chrono_tz::UTC;
    assert_eq!(accolade::instant::parse_as_of("2026", &tz), Ok(at("2026-01-01T00:00:00Z")));
    assert_eq!(accolade::instant::parse_as_of("1781524800", &tz), Ok(at("2026-06-15T12:00:00Z")));
    assert!(accolade::commands::run::refuse_future(at("2026-06-15T12:00:59Z"), at("2026-06-15T12:00:00Z")).is_ok());
    assert!(accolade::commands::run::refuse_future(at("2026-06-15T12:01:01Z"), at("2026-06-15T12:00:00Z")).is_err());
}

// ---------------------------------------------------------------------------------------
// 3. Repeated members
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_users_source_that_repeats_members_fails_naming_an_example_id_how_many_and_the_fix(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members(1..=4, "2026-01-01 00:00:00").await;
    host.add_events("posts", 1, &["2026-02-01 00:00:00"]).await;
    host.exec(
        "CREATE TABLE emails (user_id INTEGER NOT NULL, email TEXT NOT NULL);
         INSERT INTO emails (user_id, email) VALUES
            (1, 'a@x.org'), (2, 'b@x.org'), (2, 'b2@x.org'), (3, 'c@x.org'), (3, 'c2@x.org'), (3, 'c3@x.org'), (4, 'd@x.org')",
    )
    .await;
    let sources = CANONICAL_SOURCES.replace(
        "SELECT user_id, created_at, blocked FROM users",
        "SELECT u.user_id, u.created_at, u.blocked, e.email FROM users u JOIN emails e ON e.user_id = u.user_id",
    );
    let plan = host.plan(&host.config(&badge("poster", POSTER), &sources));

    let report = host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(status(&report, "poster"), "failed");
    let message = report.badges[0].message.clone().unwrap_or_default();
    for fragment in ["source 'users'", "2 rows for user_id 2", "2 ids repeat", "GROUP BY"] {
        assert!(message.contains(fragment), "{fragment}: {message}");
    }
    assert_eq!(host.awards().await, pairs(&[]));
}

// ---------------------------------------------------------------------------------------
// 4. Calendar dates
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_date_means_local_midnight_in_the_evaluation_timezone_native_or_text(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::new().await;
    // Native DATE sign-ins, date-only text join dates.
    host.exec(
        "CREATE TABLE users (user_id INTEGER NOT NULL, created_at VARCHAR(20) NOT NULL, blocked BOOLEAN NOT NULL);
         CREATE TABLE sign_ins (user_id INTEGER NOT NULL, seen_on DATE NOT NULL);
         INSERT INTO users (user_id, created_at, blocked) VALUES
            (1, '2026-10-01', FALSE), (2, '2026-09-30', FALSE);
         INSERT INTO sign_ins (user_id, seen_on) VALUES (1, '2026-10-01'), (2, '2026-09-30')",
    )
    .await;
    let sources = r#"
users = "SELECT user_id, created_at, blocked FROM users"
logins = "SELECT user_id, seen_on AS created_at FROM sign_ins"
"#;
    let badges = formula_badge("seen", "signin_date >= '2026-10-01'")
        + &formula_badge("joined", "registration_date >= '2026-10-01'");
    let plan = host.plan(&host.config_in("America/New_York", &badges, sources));

    host.run(&plan, at("2026-11-01T00:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("joined", 1), ("seen", 1)]));
}

// ---------------------------------------------------------------------------------------
// 5. One unreadable value, and check --data
// ---------------------------------------------------------------------------------------

/// A formula host whose sign-ins hold one value written the US way, a training rule and a
/// setting nobody has, and a posts badge that reads none of that.
async fn host_with_a_bad_sign_in() -> (TestHost, std::path::PathBuf) {
    let host = TestHost::for_formulas().await;
    host.exec(
        "INSERT INTO users (user_id, created_at, blocked) VALUES (1, '2026-01-01 00:00:00', FALSE), (2, '2026-01-01 00:00:00', FALSE);
         INSERT INTO posts (user_id, created_at, kind) VALUES (1, '2026-02-01 00:00:00', 'answer');
         INSERT INTO sign_ins (user_id, created_at) VALUES (1, '2026-02-01 10:00:00'), (2, '01/12/2026 10:00'), (2, 'soon');
         INSERT INTO trainings (user_id, training_id, progress) VALUES (1, 'rust-101', 100)",
    )
    .await;
    let badges = badge("poster", POSTER)
        + &formula_badge("regular", "signin_date >= '2026-01-15'")
        + &badge("pythonista", r#"{ type = "training_completed", training = "python-101" }"#)
        + &formula_badge("bio", "setting.bio != 'default' AND metric.posts.question >= 1");
    let config = host.write_config("accolade.toml", &host.config(&badges, &host.formula_sources()));
    (host, config)
}

#[tokio::test(flavor = "multi_thread")]
async fn one_unreadable_value_fails_only_the_badges_that_read_its_source_and_the_run_exits_1() {
    let (host, config) = host_with_a_bad_sign_in().await;

    let run = run_binary(&config, &["run", "--as-of", "2026-06-15T12:00:00Z"]);

    assert_eq!(run.code, 1, "{}", run.describe());
    let line = run.stdout.lines().find(|l| l.contains("regular")).unwrap_or_default();
    assert!(line.contains("failed"), "{}", run.describe());
    for fragment in ["source 'logins'", "column 'created_at'", "row 2", "'01/12/2026 10:00'"] {
        assert!(run.stdout.contains(fragment), "{fragment}: {}", run.describe());
    }
    assert_eq!(host.awards().await, pairs(&[("poster", 1)]), "the other badges were evaluated and stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reads_no_rows_but_check_data_reports_every_bad_value_and_every_empty_reference() {
    let (_host, config) = host_with_a_bad_sign_in().await;

    let plain = run_binary(&config, &["check"]);
    assert_eq!(plain.code, 0, "plain check prepares the queries only: {}", plain.describe());

    let data = run_binary(&config, &["check", "--data"]);
    assert_eq!(data.code, 1, "{}", data.describe());
    for fragment in [
        "source 'logins', column 'created_at': 2 unreadable values",
        "row 2: cannot read '01/12/2026 10:00' as a timestamp",
        "row 3: cannot read 'soon' as a timestamp",
        "badge 'pythonista': training 'python-101' has no row in source 'trainings'",
        "badge 'bio': setting key 'bio' has no row in source 'settings'",
        "badge 'bio': kind 'question' has no row in source 'posts'",
    ] {
        assert!(data.stdout.contains(fragment), "{fragment}: {}", data.describe());
    }
    assert!(!data.stdout.contains("training 'rust-101'"), "{}", data.describe());
}

// ---------------------------------------------------------------------------------------
// 6. What check foresees
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_what_run_will_refuse_warns_for_min_0_and_rejects_shadowed_metrics() {
    let (host, config) = poster_host().await;
    let first = run_binary(&config, &["run", "--as-of", "2026-06-15T12:00:00Z"]);
    assert_eq!(first.code, 0, "{}", first.describe());
    host.exec(
        "CREATE TABLE counters (user_id INTEGER NOT NULL, counter TEXT NOT NULL, amount INTEGER);
         INSERT INTO counters (user_id, counter, amount) VALUES (1, 'posts', 4), (1, 'solutions', 2)",
    )
    .await;
    let sources =
        format!("{CANONICAL_SOURCES}\nmetrics = \"SELECT user_id, counter AS name, amount AS value FROM counters\"");
    let changed = badge("poster", r#"{ type = "posts_sent", min = 2 }"#)
        + &badge("everyone", r#"{ type = "posts_sent", min = 0 }"#)
        + &formula_badge("solver", "metric.solutions >= 1");
    let config = host.write_config("accolade.toml", &host.config(&changed, &sources));

    let check = run_binary(&config, &["check"]);

    assert_eq!(check.code, 1, "{}", check.describe());
    for fragment in [
        "`run` will refuse it: badge 'poster' was published",
        "warning: badge 'everyone': min = 0, so every member qualifies",
        "source 'metrics' has rows named 'posts'",
        "counts the posts source",
        "rename them",
    ] {
        assert!(check.stdout.contains(fragment), "{fragment}: {}", check.describe());
    }
    let run = run_binary(&config, &["run", "--as-of", "2026-06-15T12:00:00Z"]);
    assert!(run.stdout.contains("refused"), "check foresaw it: {}", run.describe());
}

// ---------------------------------------------------------------------------------------
// 7–8. Logs and messages
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_database_error_is_said_once_and_logs_to_a_pipe_carry_no_colour_codes() {
    let (host, _) = poster_host().await;
    let sources =
        CANONICAL_SOURCES.replace("SELECT user_id, created_at FROM posts", "SELECT user_id, sentat FROM posts");
    let config = host.write_config("bad.toml", &host.config(&badge("poster", POSTER), &sources));

    let run = run_binary(&config, &["run", "--as-of", "2026-06-15T12:00:00Z"]);

    assert_eq!(run.code, 1, "{}", run.describe());
    let output = format!("{}{}", run.stdout, run.stderr);
    assert!(output.contains("no such column: sentat"), "{}", run.describe());
    for line in output.lines() {
        assert!(line.matches("no such column").count() <= 1, "said twice: {line}");
    }
    assert!(!run.stderr.contains('\u{1b}'), "{}", run.describe());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relative_sqlite_path_is_read_beside_the_config_and_a_missing_file_is_named_in_full() {
    let (host, _) = poster_host().await;
    let text = host.config(&badge("poster", POSTER), CANONICAL_SOURCES).replace(host.url(), "sqlite://host.db");
    let config = host.write_config("relative.toml", &text);
    let elsewhere = tempfile::tempdir().expect("a temporary directory");
    let run = |config: &Path| {
        let output = Command::new(env!("CARGO_BIN_EXE_accolade"))
            .args(["--config", path_str(config), "run", "--as-of", "2026-06-15T12:00:00Z"])
            .current_dir(elsewhere.path())
            .output()
            .expect("running accolade");
        (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
    };

    let (code, stderr) = run(&config);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(host.awards().await, pairs(&[("poster", 1)]));

    let missing = host.write_config("missing.toml", &text.replace("sqlite://host.db", "sqlite://gone/host.db"));
    let (code, stderr) = run(&missing);
    assert_eq!(code, Some(2), "{stderr}");
    let full = host.dir().join("gone").join("host.db");
    assert!(stderr.contains(&full.display().to_string()), "names {}: {stderr}", full.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_negative_min_says_which_key_and_what_is_allowed() {
    let host = TestHost::canonical().await;
    let config = host.write_config(
        "accolade.toml",
        &host.config(&badge("chatty", r#"{ type = "posts_sent", min = -3 }"#), CANONICAL_SOURCES),
    );

    let problems = accolade::commands::check::problems(&config).await;

    assert!(
        problems
            .iter()
            .any(|p| p.contains("badge 'chatty'") && p.contains("rule.min = -3: expected a whole number, 0 or more")),
        "{problems:?}"
    );
    assert!(!problems.iter().any(|p| p.contains("u32")), "{problems:?}");
}

// ---------------------------------------------------------------------------------------
// 11. A newcomer's first steps
// ---------------------------------------------------------------------------------------

#[test]
fn the_demo_hints_at_the_command_that_works_as_it_was_run() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let demo = |under_cargo: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_accolade"));
        command.args(["demo", "--users", "50", "--dir", path_str(dir.path())]);
        if under_cargo {
            command.env("CARGO", "cargo").env("CARGO_MANIFEST_DIR", env!("CARGO_MANIFEST_DIR"));
        } else {
            command.env_remove("CARGO").env_remove("CARGO_MANIFEST_DIR");
        }
        let output = command.output().expect("running the demo");
        assert_eq!(output.status.code(), Some(0));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };

    assert!(demo(true).contains("next: cargo run -- --config"));
    assert!(demo(false).contains(&format!("next: {} --config", env!("CARGO_BIN_EXE_accolade"))));
}

#[test]
fn what_the_readmes_demo_writes_is_ignored_by_git() {
    let root = env!("CARGO_MANIFEST_DIR");
    for path in ["accolade-demo.db", "accolade-demo.toml", "report.html", "ob3/badges/x.json", "ob2/issuer.json"] {
        let ignored = Command::new("git").args(["-C", root, "check-ignore", "-q", "--no-index", path]).status();
        assert!(ignored.is_ok_and(|s| s.success()), "{path} is not in .gitignore");
    }
}

#[test]
fn release_builds_ship_without_debug_info_and_a_profiling_profile_keeps_line_tables() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).expect("Cargo.toml");
    let manifest: toml::Table = toml::from_str(&manifest).expect("Cargo.toml is TOML");
    let profile = |name: &str, key: &str| manifest["profile"][name].get(key).cloned();
    assert_eq!(profile("release", "debug"), Some(toml::Value::Boolean(false)));
    assert_eq!(profile("release", "strip"), Some(toml::Value::String("debuginfo".into())));
    assert_eq!(profile("profiling", "inherits"), Some(toml::Value::String("release".into())));
    assert_eq!(profile("profiling", "debug"), Some(toml::Value::String("line-tables-only".into())));
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_still_explains_the_badges_whose_sources_loaded_and_says_why_the_others_cannot_be() {
    let (_host, config) = host_with_a_bad_sign_in().await;

    let explained = run_binary(&config, &["explain", "--user", "1", "--as-of", "2026-06-15T12:00:00Z"]);

    assert_eq!(explained.code, 0, "{}", explained.describe());
    let section = |badge: &str| {
        let start = format!("\n{badge} (");
        explained.stdout.split(&start).nth(1).and_then(|rest| rest.split("\n\n").next()).unwrap_or_default().to_string()
    };
    let regular = section("regular");
    assert!(regular.contains("cannot be evaluated") && regular.contains("source 'logins'"), "{}", explained.describe());
    let poster = section("poster");
    assert!(poster.contains("→ qualifies"), "{}", explained.describe());
}

#[tokio::test(flavor = "multi_thread")]
async fn check_data_reads_the_metrics_once_and_reports_a_bad_metric_value_once() {
    let (host, config) = host_with_a_bad_sign_in().await;
    host.exec("INSERT INTO counters (user_id, counter, amount) VALUES (1, 'karma', 3), (2, 'karma', 'lots')").await;

    let data = run_binary(&config, &["check", "--data"]);

    assert_eq!(data.code, 1, "{}", data.describe());
    assert_eq!(data.stdout.matches("'lots'").count(), 1, "one report of the bad value: {}", data.describe());
    assert!(data.stdout.contains("source 'metrics', column 'value': 1 unreadable value"), "{}", data.describe());
}
