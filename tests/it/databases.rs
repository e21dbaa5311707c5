//! The three host databases as they really are: every column type a host may use for
//! timestamps, ids, booleans and numbers, read on each database; one config giving the same
//! awards on SQLite, PostgreSQL and MariaDB; a read-only host with a separate awards database;
//! one run at a time; a run killed while it inserts; and the Moodle example on Moodle's own
//! tables.
//!
//! Tests that need a database's own column types write their DDL per backend; everything else
//! is portable SQL. Tests that start the real binary use [`Running`] (standard error read as it
//! comes, so a test can wait for "waiting for the lock" instead of sleeping).

use crate::support::{Backend, TestHost, admin_exec, admin_url, at, badge, pairs, use_backend};
use accolade::commands::run::{RunReport, execute};
use accolade::config::plan::Plan;
use accolade::db::Db;
use accolade::store::{
    COPY_AWARDS_PER_TRANSACTION, INSERT_BATCH_ROWS, STATEMENTS_PER_TRANSACTION, Store, acquire_lock,
};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The evaluation instant of most tests here.
const AS_OF: &str = "2026-06-15T12:00:00Z";

/// How long a test waits for the binary before it gives up (never an assertion on speed).
const PATIENCE: Duration = Duration::from_secs(300);

/// Epoch seconds of an RFC 3339 instant.
fn epoch(rfc3339: &str) -> i64 {
    at(rfc3339).timestamp()
}

/// `(badge_id, user_id)` pairs sorted the way Rust sorts them (a database's collation may
/// order badge ids differently).
fn sorted(mut awards: Vec<(String, i64)>) -> Vec<(String, i64)> {
    awards.sort();
    awards
}

/// The awards of `host`, sorted by badge then member in Rust's order.
async fn awards_of(host: &TestHost) -> Vec<(String, i64)> {
    sorted(host.awards().await)
}

/// Pairs from a badge id and its holders.
fn holders(badge_id: &str, users: impl IntoIterator<Item = i64>) -> Vec<(String, i64)> {
    users.into_iter().map(|u| (badge_id.to_string(), u)).collect()
}

// ---------------------------------------------------------------------------------------
// The real binary
// ---------------------------------------------------------------------------------------

/// What one finished invocation of the binary did.
struct Finished {
    /// `None` when it was ended by a signal.
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn describe(&self) -> String {
        format!("exit {:?}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }

    /// The `N` of the summary line `N new awards`.
    fn new_awards(&self) -> u64 {
        self.stdout
            .lines()
            .find_map(|line| line.trim().strip_suffix(" new awards")?.parse().ok())
            .unwrap_or_else(|| panic!("no 'N new awards' line: {}", self.describe()))
    }
}

/// `accolade --config CONFIG ARGS...`, isolated from the environment's settings.
fn accolade_command(config: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_accolade"));
    command
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("ACCOLADE_CONFIG")
        .env_remove("ACCOLADE_DATABASE_URL")
        .env_remove("ACCOLADE_AWARDS_DATABASE_URL")
        .env_remove("ACCOLADE_LOG")
        .env_remove("JOB_COMPLETION_INDEX");
    command
}

/// Runs the binary to its end.
fn accolade(config: &Path, args: &[&str]) -> Finished {
    Running::start(config, args).finish()
}

/// A running `accolade` (with `ACCOLADE_LOG=info`) whose standard error is read line by line
/// as it comes.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Vec<String>,
    stdout: std::thread::JoinHandle<String>,
}

impl Running {
    fn start(config: &Path, args: &[&str]) -> Running {
        let mut child = accolade_command(config, args)
            .env("ACCOLADE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the accolade binary");
        let mut out = child.stdout.take().expect("piped stdout");
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text);
            text
        });
        let err = child.stderr.take().expect("piped stderr");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines, stderr: Vec::new(), stdout }
    }

    /// Waits until a line of standard error contains `fragment`.
    fn wait_for_line(&mut self, fragment: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let found = line.contains(fragment);
                    self.stderr.push(line);
                    if found {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let finished = self.finish_now();
                    panic!("accolade ended before saying '{fragment}': {}", finished.describe());
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let finished = self.finish_now();
                    panic!("accolade did not say '{fragment}' in {PATIENCE:?}: {}", finished.describe());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Whether the process is still running.
    fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("polling the accolade process").is_none()
    }

    /// Waits for the process to end (killing it after [`PATIENCE`]) and collects its output.
    fn finish(mut self) -> Finished {
        let deadline = Instant::now() + PATIENCE;
        while self.is_running() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let finished = self.finish_now();
                panic!("accolade did not finish in {PATIENCE:?}: {}", finished.describe());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.finish_now()
    }

    fn finish_now(&mut self) -> Finished {
        let status = self.child.wait().expect("waiting for the accolade process");
        self.stderr.extend(self.lines.iter());
        let stdout = std::mem::replace(&mut self.stdout, std::thread::spawn(String::new));
        Finished { code: status.code(), stdout: stdout.join().unwrap_or_default(), stderr: self.stderr.join("\n") }
    }
}

// ---------------------------------------------------------------------------------------
// Type mapping: timestamps
// ---------------------------------------------------------------------------------------

/// A column type and two SQL values of it: one exactly at a boundary instant, one just after.
struct Stamp {
    ty: &'static str,
    exact: String,
    late: String,
}

fn stamp(ty: &'static str, exact: &str, late: &str) -> Stamp {
    Stamp { ty, exact: exact.to_string(), late: late.to_string() }
}

/// The five timestamp columns of [`timestamps_of_every_column_type_count_up_to_the_exact_evaluation_instant`]:
/// users.created_at (boundary 2026-06-08T00:00:00Z, one week before the evaluation), then
/// posts, connections, logins and trainings.enrolled_at (boundary: the evaluation instant,
/// 2026-06-15T00:00:00Z).
fn timestamp_columns(backend: Backend) -> [Stamp; 5] {
    let as_of = epoch("2026-06-15T00:00:00Z");
    let epoch_seconds = stamp("BIGINT", &as_of.to_string(), &(as_of + 1).to_string());
    let text_type = if backend == Backend::MySql { "VARCHAR(40)" } else { "TEXT" };
    // Text with an offset, and text in UTC with a fraction.
    let text = stamp(text_type, "'2026-06-14T20:00:00-04:00'", "'2026-06-15T00:00:00.000001Z'");
    match backend {
        Backend::Postgres => [
            stamp("TIMESTAMPTZ", "'2026-06-08 02:00:00+02'", "'2026-06-07 20:00:00.000001-04'"),
            stamp("TIMESTAMP", "'2026-06-15 00:00:00'", "'2026-06-15 00:00:00.000001'"),
            stamp("DATE", "'2026-06-15'", "'2026-06-16'"),
            epoch_seconds,
            text,
        ],
        Backend::MySql => [
            // TIMESTAMP is stored in UTC and converted to the session zone (UTC for sqlx).
            stamp("TIMESTAMP", "'2026-06-08 00:00:00'", "'2026-06-08 00:00:01'"),
            stamp("DATETIME(6)", "'2026-06-15 00:00:00'", "'2026-06-15 00:00:00.000001'"),
            stamp("DATE", "'2026-06-15'", "'2026-06-16'"),
            epoch_seconds,
            text,
        ],
        Backend::Sqlite => [
            stamp("TEXT", "'2026-06-08 00:00:00'", "'2026-06-08 00:00:01'"),
            stamp("DATETIME", "datetime('2026-06-15 00:00:00')", "'2026-06-15T00:00:00.001'"),
            stamp("DATE", "'2026-06-15'", "'2026-06-16'"),
            epoch_seconds,
            text,
        ],
    }
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn timestamps_of_every_column_type_count_up_to_the_exact_evaluation_instant(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::new().await;
    if let (Backend::Postgres, Some(name)) = (backend, host.database_name()) {
        // The run's sessions get a zone far from UTC: no value may be read through it.
        host.exec(&format!("ALTER DATABASE {name} SET timezone TO 'America/New_York'")).await;
    }
    let [users, posts, connections, logins, trainings] = timestamp_columns(backend);
    host.exec(&format!(
        "CREATE TABLE users (user_id BIGINT NOT NULL, created_at {} NOT NULL, blocked BOOLEAN NOT NULL);
         CREATE TABLE posts (user_id BIGINT NOT NULL, created_at {} NOT NULL);
         CREATE TABLE connections (user_id BIGINT NOT NULL, created_at {} NOT NULL);
         CREATE TABLE logins (user_id BIGINT NOT NULL, created_at {} NOT NULL);
         CREATE TABLE trainings (user_id BIGINT NOT NULL, training_id VARCHAR(40) NOT NULL, enrolled_at {} NOT NULL,
                                 progress INTEGER, passed BOOLEAN);",
        users.ty, posts.ty, connections.ty, logins.ty, trainings.ty
    ))
    .await;
    // Member 2 is created just after the one-week boundary, all others exactly at it.
    let members: Vec<String> =
        (1..=10).map(|id| format!("({id}, {}, FALSE)", if id == 2 { &users.late } else { &users.exact })).collect();
    host.exec(&format!(
        "INSERT INTO users (user_id, created_at, blocked) VALUES {};
         INSERT INTO posts (user_id, created_at) VALUES (3, {}), (4, {});
         INSERT INTO connections (user_id, created_at) VALUES (5, {}), (6, {});
         INSERT INTO logins (user_id, created_at) VALUES (7, {}), (8, {});
         INSERT INTO trainings (user_id, training_id, enrolled_at, progress, passed) VALUES
            (9, 'course', {}, 0, FALSE), (10, 'course', {}, 0, FALSE);",
        members.join(", "),
        posts.exact,
        posts.late,
        connections.exact,
        connections.late,
        logins.exact,
        logins.late,
        trainings.exact,
        trainings.late,
    ))
    .await;
    let sources = r#"
users = "SELECT user_id, created_at, blocked FROM users"
posts = "SELECT user_id, created_at FROM posts"
connections = "SELECT user_id, created_at FROM connections"
logins = "SELECT user_id, created_at FROM logins"
trainings = "SELECT user_id, training_id, enrolled_at, progress, passed FROM trainings"
"#;
    let badges = badge("week-old", r#"{ type = "account_age", min = "1 week" }"#)
        + &badge("poster", r#"{ type = "posts_sent", min = 1 }"#)
        + &badge("friend", r#"{ type = "social_connections", min = 1, period = "week" }"#)
        + &badge("enrolled", r#"{ type = "training_enrolled", training = "course" }"#)
        + "[[badges]]\nid = \"signed-in\"\nname = \"signed-in\"\nformula = \"metric.logins >= 1\"\n";
    let plan = host.plan(&host.config(&badges, sources));

    host.run(&plan, at("2026-06-15T00:00:00Z")).await;

    let mut expected = pairs(&[("enrolled", 9), ("friend", 5), ("poster", 3), ("signed-in", 7)]);
    expected.extend(holders("week-old", [1, 3, 4, 5, 6, 7, 8, 9, 10]));
    assert_eq!(awards_of(&host).await, sorted(expected));
}

// ---------------------------------------------------------------------------------------
// Type mapping: integer ids of every width
// ---------------------------------------------------------------------------------------

/// An integer column type, the member ids stored in it, and which of them have a post.
struct Width {
    name: &'static str,
    ty: &'static str,
    ids: Vec<i64>,
    posted: Vec<i64>,
}

fn width(name: &'static str, ty: &'static str, ids: &[i64], posted: &[i64]) -> Width {
    Width { name, ty, ids: ids.to_vec(), posted: posted.to_vec() }
}

/// 2^53 and 2^53 + 1: the same number once read as a float.
const TWO_53: i64 = 9_007_199_254_740_992;

fn integer_widths(backend: Backend) -> Vec<Width> {
    let bigint = [i64::MAX, i64::MIN, TWO_53 + 1, TWO_53];
    match backend {
        Backend::Postgres => vec![
            width("smallint", "SMALLINT", &[32_767, -32_768, 1], &[32_767]),
            width("integer", "INTEGER", &[2_147_483_647, -2_147_483_648, 2], &[-2_147_483_648]),
            width("bigint", "BIGINT", &bigint, &[i64::MAX, TWO_53 + 1]),
        ],
        Backend::MySql => vec![
            width("tinyint", "TINYINT", &[127, -128], &[127]),
            width("tinyint_unsigned", "TINYINT UNSIGNED", &[255, 0], &[255]),
            width("smallint", "SMALLINT", &[32_767, -32_768], &[-32_768]),
            width("smallint_unsigned", "SMALLINT UNSIGNED", &[65_535], &[65_535]),
            width("mediumint", "MEDIUMINT", &[8_388_607, -8_388_608], &[8_388_607]),
            width("mediumint_unsigned", "MEDIUMINT UNSIGNED", &[16_777_215], &[16_777_215]),
            width("int", "INT", &[2_147_483_647, -2_147_483_648], &[2_147_483_647]),
            width("int_unsigned", "INT UNSIGNED", &[4_294_967_295], &[4_294_967_295]),
            width("bigint", "BIGINT", &bigint, &[i64::MAX, TWO_53 + 1]),
            width("bigint_unsigned", "BIGINT UNSIGNED", &[i64::MAX, 2 * TWO_53 + 1], &[2 * TWO_53 + 1]),
        ],
        Backend::Sqlite => vec![
            width("smallint", "SMALLINT", &[32_767, -32_768], &[32_767]),
            width("integer", "INTEGER", &bigint, &[i64::MAX, TWO_53 + 1]),
        ],
    }
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn member_ids_of_every_integer_width_come_back_exactly_as_stored(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::new().await;
    let widths = integer_widths(backend);
    let posted: BTreeSet<i64> = widths.iter().flat_map(|w| w.posted.iter().copied()).collect();
    host.exec("CREATE TABLE posts (user_id BIGINT NOT NULL, created_at VARCHAR(40) NOT NULL)").await;
    let rows: Vec<String> = posted.iter().map(|id| format!("({id}, '2026-06-01 00:00:00')")).collect();
    host.exec(&format!("INSERT INTO posts (user_id, created_at) VALUES {}", rows.join(", "))).await;
    let mut expected = Vec::new();
    for w in &widths {
        let rows: Vec<String> = w.ids.iter().map(|id| format!("({id}, '2026-01-01 00:00:00', FALSE)")).collect();
        host.exec(&format!(
            "CREATE TABLE users_{name} (user_id {ty} NOT NULL, created_at VARCHAR(40) NOT NULL, blocked BOOLEAN NOT NULL);
             INSERT INTO users_{name} (user_id, created_at, blocked) VALUES {rows};",
            name = w.name,
            ty = w.ty,
            rows = rows.join(", ")
        ))
        .await;
        let sources = format!(
            "users = \"SELECT user_id, created_at, blocked FROM users_{}\"\nposts = \"SELECT user_id, created_at FROM posts\"",
            w.name
        );
        let member = format!("member-{}", w.name);
        let poster = format!("poster-{}", w.name);
        let badges = badge(&member, r#"{ type = "account_age", min = "0 days" }"#)
            + &badge(&poster, r#"{ type = "posts_sent", min = 1 }"#);
        let plan = host.plan(&host.config(&badges, &sources));

        host.run(&plan, at(AS_OF)).await;

        expected.extend(holders(&member, w.ids.iter().copied()));
        expected.extend(holders(&poster, w.ids.iter().copied().filter(|id| posted.contains(id))));
    }
    assert_eq!(awards_of(&host).await, sorted(expected));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bigint_unsigned_id_above_the_signed_range_fails_the_run_naming_source_column_and_value() {
    let Some(_backend) = use_backend(Backend::MySql) else { return };
    let host = TestHost::new().await;
    host.exec(
        "CREATE TABLE users (user_id BIGINT UNSIGNED NOT NULL, created_at VARCHAR(40) NOT NULL, blocked BOOLEAN NOT NULL);
         INSERT INTO users (user_id, created_at, blocked) VALUES
            (1, '2026-01-01 00:00:00', FALSE), (18446744073709551615, '2026-01-01 00:00:00', FALSE);",
    )
    .await;
    let sources = r#"users = "SELECT user_id, created_at, blocked FROM users""#;
    let plan = host.plan(&host.config(&badge("member", r#"{ type = "account_age", min = "0 days" }"#), sources));

    let report = host.run(&plan, at(AS_OF)).await;

    assert_eq!(crate::support::status(&report, "member"), "failed");
    let message = report.badges[0].message.clone().unwrap_or_default();
    for fragment in ["users", "user_id", "18446744073709551615"] {
        assert!(message.contains(fragment), "{fragment}: {message}");
    }
    assert_eq!(host.awards().await, pairs(&[]));
}

// ---------------------------------------------------------------------------------------
// Type mapping: booleans, NULLs and decimals
// ---------------------------------------------------------------------------------------

/// Boolean column types: (table suffix, SQL type, whether values are written TRUE/FALSE
/// rather than 1/0).
fn boolean_types(backend: Backend) -> Vec<(&'static str, &'static str, bool)> {
    match backend {
        Backend::Postgres => {
            vec![("bool", "BOOLEAN", true), ("smallint", "SMALLINT", false), ("int", "INTEGER", false)]
        }
        Backend::MySql => vec![
            ("bool", "BOOLEAN", true),
            ("tinyint1", "TINYINT(1)", false),
            ("int", "INT", false),
            ("tinyint_unsigned", "TINYINT UNSIGNED", false),
        ],
        Backend::Sqlite => vec![("bool", "BOOLEAN", true), ("int", "INTEGER", false)],
    }
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn booleans_may_be_boolean_tinyint_1_or_0_1_integers_and_null_is_false(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::new().await;
    let mut expected = Vec::new();
    for (k, (name, ty, literal_booleans)) in boolean_types(backend).into_iter().enumerate() {
        let (yes, no) = if literal_booleans { ("TRUE", "FALSE") } else { ("1", "0") };
        // a: true everywhere; b: false everywhere; c: NULL everywhere.
        let (a, b, c) = (10 * k as i64 + 1, 10 * k as i64 + 2, 10 * k as i64 + 3);
        host.exec(&format!(
            "CREATE TABLE users_{name} (user_id BIGINT NOT NULL, created_at VARCHAR(40) NOT NULL, blocked {ty}, avatar {ty});
             CREATE TABLE trainings_{name} (user_id BIGINT NOT NULL, training_id VARCHAR(40) NOT NULL, passed {ty});
             INSERT INTO users_{name} (user_id, created_at, blocked, avatar) VALUES
                ({a}, '2026-01-01 00:00:00', {yes}, {yes}),
                ({b}, '2026-01-01 00:00:00', {no}, {no}),
                ({c}, '2026-01-01 00:00:00', NULL, NULL);
             INSERT INTO trainings_{name} (user_id, training_id, passed) VALUES
                ({a}, 'exam', {yes}), ({b}, 'exam', {no}), ({c}, 'exam', NULL);"
        ))
        .await;
        let sources = format!(
            "users = \"SELECT user_id, created_at, blocked, avatar AS avatar_changed FROM users_{name}\"\n\
             trainings = \"SELECT user_id, training_id, NULL AS enrolled_at, NULL AS progress, passed FROM trainings_{name}\""
        );
        let (unblocked, passed, avatar) =
            (format!("unblocked-{name}"), format!("passed-{name}"), format!("avatar-{name}"));
        let badges = badge(&unblocked, r#"{ type = "account_age", min = "0 days" }"#)
            + &badge(&passed, r#"{ type = "training_passed", training = "exam" }"#)
            + &format!("[[badges]]\nid = \"{avatar}\"\nname = \"{avatar}\"\nformula = \"avatar_changed = true\"\n");
        let plan = host.plan(&host.config(&badges, &sources));

        host.run(&plan, at(AS_OF)).await;

        expected.extend(holders(&unblocked, [b, c]));
        expected.extend(holders(&passed, [a]));
        expected.extend(holders(&avatar, [a]));
    }
    assert_eq!(awards_of(&host).await, sorted(expected));
}

/// A column named `key`, as the settings source needs it: KEY is reserved on MySQL.
fn key_column(backend: Backend) -> &'static str {
    if backend == Backend::MySql { "`key`" } else { "key" }
}

/// `[sources] settings` for a `settings` table with a `key` column: a qualified name after a
/// dot is an identifier even on MySQL, where a bare `key` is reserved.
const SETTINGS_SOURCE: &str = r#"settings = "SELECT s.user_id, s.key, s.value FROM settings s""#;

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn nulls_in_nullable_columns_mean_not_blocked_not_completed_not_passed_zero_and_unset(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::new().await;
    host.exec(&format!(
        "CREATE TABLE users (user_id BIGINT NOT NULL, created_at VARCHAR(40) NOT NULL, blocked BOOLEAN);
         CREATE TABLE trainings (user_id BIGINT NOT NULL, training_id VARCHAR(40) NOT NULL, enrolled_at VARCHAR(40),
                                 progress INTEGER, passed BOOLEAN);
         CREATE TABLE metrics (user_id BIGINT NOT NULL, name VARCHAR(40) NOT NULL, value DECIMAL(10,2));
         CREATE TABLE settings (user_id BIGINT NOT NULL, {key} VARCHAR(40) NOT NULL, value VARCHAR(40));
         INSERT INTO users (user_id, created_at, blocked) VALUES
            (1, '2026-01-01 00:00:00', NULL), (2, '2026-01-01 00:00:00', TRUE), (3, '2026-01-01 00:00:00', FALSE);
         INSERT INTO trainings (user_id, training_id, enrolled_at, progress, passed) VALUES
            (1, 'intro', NULL, NULL, NULL), (2, 'intro', '2026-02-01 00:00:00', 100, TRUE),
            (3, 'intro', '2026-02-01 00:00:00', 50, NULL);
         INSERT INTO metrics (user_id, name, value) VALUES
            (1, 'score', NULL), (2, 'score', 3.00), (3, 'score', NULL), (3, 'score', 1.00);
         INSERT INTO settings (user_id, {key}, value) VALUES (1, 'theme', NULL), (2, 'theme', 'dark'), (3, 'theme', '');",
        key = key_column(backend)
    ))
    .await;
    let sources = format!(
        "users = \"SELECT user_id, created_at, blocked FROM users\"
trainings = \"SELECT user_id, training_id, enrolled_at, progress, passed FROM trainings\"
metrics = \"SELECT user_id, name, value FROM metrics\"
{SETTINGS_SOURCE}"
    );
    let formula =
        |id: &str, formula: &str| format!("[[badges]]\nid = \"{id}\"\nname = \"{id}\"\nformula = \"{formula}\"\n\n");
    let badges = badge("month-old", r#"{ type = "account_age", min = "1 month" }"#)
        + &badge("completed", r#"{ type = "training_completed", training = "intro" }"#)
        + &badge("passed", r#"{ type = "training_passed", training = "intro" }"#)
        + &badge("enrolled", r#"{ type = "training_enrolled", training = "intro" }"#)
        + &formula("low-score", "metric.score < 1")
        + &formula("has-score", "metric.score >= 1")
        + &formula("themed", "setting.theme != 'default'");
    let plan = host.plan(&host.config(&badges, &sources));

    host.run(&plan, at(AS_OF)).await;

    let mut expected = Vec::new();
    expected.extend(holders("month-old", [1, 3])); // NULL blocked is not blocked
    expected.extend(holders("completed", [2])); // NULL progress is not complete
    expected.extend(holders("passed", [2])); // NULL passed is not passed
    expected.extend(holders("enrolled", [1, 2, 3])); // a row without enrolled_at is an enrolment
    expected.extend(holders("low-score", [1])); // NULL adds nothing: 0
    expected.extend(holders("has-score", [2, 3])); // NULL + 1.00 = 1
    expected.extend(holders("themed", [2])); // a NULL value is no value
    assert_eq!(awards_of(&host).await, sorted(expected));
}

fn decimal_type(backend: Backend, precision: u8, scale: u8) -> String {
    match backend {
        Backend::Postgres => format!("NUMERIC({precision},{scale})"),
        Backend::MySql | Backend::Sqlite => format!("DECIMAL({precision},{scale})"),
    }
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn decimal_metric_values_and_progress_compare_exactly_at_their_thresholds(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::new().await;
    host.exec(&format!(
        "CREATE TABLE users (user_id BIGINT NOT NULL, created_at VARCHAR(40) NOT NULL, blocked BOOLEAN NOT NULL);
         CREATE TABLE metrics (user_id BIGINT NOT NULL, name VARCHAR(40) NOT NULL, value {money});
         CREATE TABLE trainings (user_id BIGINT NOT NULL, training_id VARCHAR(40) NOT NULL, progress {percent});
         INSERT INTO users (user_id, created_at, blocked) VALUES
            (1, '2026-01-01 00:00:00', FALSE), (2, '2026-01-01 00:00:00', FALSE), (3, '2026-01-01 00:00:00', FALSE),
            (4, '2026-01-01 00:00:00', FALSE), (5, '2026-01-01 00:00:00', FALSE);
         INSERT INTO metrics (user_id, name, value) VALUES
            (1, 'score', 2.50), (2, 'score', 2.49), (3, 'score', 1.25), (3, 'score', 1.25),
            (4, 'score', -2.50), (4, 'score', 5.00), (5, 'bonus', 9.99);
         INSERT INTO trainings (user_id, training_id, progress) VALUES
            (1, 'intro', 100.00), (2, 'intro', 99.99), (3, 'intro', 100.0);",
        money = decimal_type(backend, 10, 2),
        percent = decimal_type(backend, 5, 2),
    ))
    .await;
    let sources = r#"
users = "SELECT user_id, created_at, blocked FROM users"
metrics = "SELECT user_id, name, value FROM metrics"
trainings = "SELECT user_id, training_id, NULL AS enrolled_at, progress, NULL AS passed FROM trainings"
"#;
    let badges = "[[badges]]\nid = \"scorer\"\nname = \"scorer\"\nformula = \"metric.score >= 2.5\"\n\n\
                  [[badges]]\nid = \"near-miss\"\nname = \"near-miss\"\nformula = \"metric.score = 2.49\"\n\n"
        .to_string()
        + &badge("completed", r#"{ type = "training_completed", training = "intro" }"#);
    let plan = host.plan(&host.config(&badges, sources));

    host.run(&plan, at(AS_OF)).await;

    let mut expected = holders("scorer", [1, 3, 4]);
    expected.extend(holders("near-miss", [2]));
    expected.extend(holders("completed", [1, 3]));
    assert_eq!(awards_of(&host).await, sorted(expected));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn decimal_metric_rows_that_add_up_exactly_to_the_threshold_meet_it(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::new().await;
    host.exec(&format!(
        "CREATE TABLE users (user_id BIGINT NOT NULL, created_at VARCHAR(40) NOT NULL, blocked BOOLEAN NOT NULL);
         CREATE TABLE metrics (user_id BIGINT NOT NULL, name VARCHAR(40) NOT NULL, value {money});
         INSERT INTO users (user_id, created_at, blocked) VALUES (1, '2026-01-01 00:00:00', FALSE);
         INSERT INTO metrics (user_id, name, value) VALUES (1, 'rating', 0.70), (1, 'rating', 0.10);",
        money = decimal_type(backend, 10, 2),
    ))
    .await;
    let sources = r#"
users = "SELECT user_id, created_at, blocked FROM users"
metrics = "SELECT user_id, name, value FROM metrics"
"#;
    let badges = "[[badges]]\nid = \"rated\"\nname = \"rated\"\nformula = \"metric.rating >= 0.8\"\n";
    let plan = host.plan(&host.config(badges, sources));

    host.run(&plan, at(AS_OF)).await;

    assert_eq!(awards_of(&host).await, pairs(&[("rated", 1)]));
}

/// Members 1 and 3 readable, member 2 created 'soon'; one badge on the users source alone.
async fn host_with_an_unreadable_created_at() -> (TestHost, Plan) {
    let host = TestHost::canonical().await;
    host.exec(
        "INSERT INTO users (user_id, created_at, blocked) VALUES
            (1, '2026-01-01 00:00:00', FALSE), (2, 'soon', FALSE), (3, '2026-01-01 00:00:00', FALSE);",
    )
    .await;
    let sources = r#"users = "SELECT user_id, created_at, blocked FROM users""#;
    let plan = host.plan(&host.config(&badge("member", r#"{ type = "account_age", min = "1 day" }"#), sources));
    (host, plan)
}

/// Asserts that the run's badge failed naming the users source, created_at and 'soon'.
fn assert_the_badge_failed_naming_soon(report: &RunReport) {
    assert_eq!(crate::support::status(report, "member"), "failed", "{report:?}");
    let message = report.badges[0].message.clone().unwrap_or_default();
    for fragment in ["source 'users'", "column 'created_at'", "'soon'"] {
        assert!(message.contains(fragment), "the message should contain {fragment}: {message}");
    }
}

/// Asserts that `awards` recorded one partial run whose badge failed naming 'soon'.
async fn assert_recorded_as_failed_naming_soon(awards: &TestHost) {
    assert_eq!(awards.awards().await, pairs(&[]));
    let partial = awards.count("SELECT COUNT(*) FROM accolade_runs WHERE outcome = 'partial'").await;
    assert_eq!(partial, 1, "the run is recorded as partial: a badge failed");
    let recorded =
        awards.text("SELECT message FROM accolade_run_badges WHERE outcome = 'failed'").await.unwrap_or_default();
    assert!(recorded.contains("'soon'"), "the recorded message names the value: {recorded}");
}

/// Runs `plan`, expects its badge to fail naming the users source, created_at and 'soon', and
/// the run to be recorded with that failure and no award.
async fn assert_the_run_fails_naming_soon(host: &TestHost, plan: &Plan) {
    let report = host.run(plan, at(AS_OF)).await;
    assert_the_badge_failed_naming_soon(&report);
    assert_recorded_as_failed_naming_soon(host).await;
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_created_at_fails_the_run_naming_source_column_and_value_and_records_it(
    #[values(Backend::Sqlite, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let (host, plan) = host_with_an_unreadable_created_at().await;

    assert_the_run_fails_naming_soon(&host, &plan).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_created_at_read_through_copy_names_source_column_and_value() {
    let Some(_backend) = use_backend(Backend::Postgres) else { return };
    let (host, plan) = host_with_an_unreadable_created_at().await;
    // The awards in a database of their own: only the host's connections read the COPY.
    let awards = TestHost::new().await;
    let db = Db::connect(host.url()).await.expect("connecting to the host");
    let store = Store::new(Db::connect(awards.url()).await.expect("connecting to the awards database"));

    let report = execute(&plan, &db, &store, Some(at(AS_OF)), false, &[]).await.expect("the run should end");

    assert_the_badge_failed_naming_soon(&report);
    assert!(report.badges[0].message.as_deref().unwrap_or_default().contains("row 2"), "{report:?}");
    assert_recorded_as_failed_naming_soon(&awards).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_created_at_read_through_copy_fails_the_run_naming_source_column_and_value_and_records_it() {
    let Some(_backend) = use_backend(Backend::Postgres) else { return };
    let (host, plan) = host_with_an_unreadable_created_at().await;
    // accolade's pools hold up to 8 connections and which one the run's bookkeeping gets after
    // the failed COPY depends on timing (the failure is intermittent with several sources).
    // With two, one holds the run lock and the other serves everything else: deterministic.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(host.url())
        .await
        .expect("connecting to the host");
    let db = Db::Postgres(pool);
    let store = Store::new(db.clone());

    let report = execute(&plan, &db, &store, Some(at(AS_OF)), false, &[]).await.expect("the run should end");
    db.close().await;

    assert_the_badge_failed_naming_soon(&report);
    assert_recorded_as_failed_naming_soon(&host).await;
}

// ---------------------------------------------------------------------------------------
// Same config, three databases, same awards
// ---------------------------------------------------------------------------------------

/// A community in portable SQL: epoch-second and text timestamps (space, `T`, offsets),
/// nullable booleans, DECIMAL counters, kinds and threads.
fn portable_community() -> String {
    let mut sql = String::from(
        "CREATE TABLE members (id BIGINT NOT NULL, joined BIGINT NOT NULL, banned BOOLEAN, avatar BOOLEAN);
         CREATE TABLE forum_posts (author BIGINT NOT NULL, posted VARCHAR(40) NOT NULL, kind VARCHAR(20) NOT NULL, thread BIGINT);
         CREATE TABLE friendships (member BIGINT NOT NULL, accepted VARCHAR(40) NOT NULL);
         CREATE TABLE sign_ins (member BIGINT NOT NULL, signed_in VARCHAR(40) NOT NULL);
         CREATE TABLE enrolments (member BIGINT NOT NULL, course VARCHAR(40) NOT NULL, enrolled VARCHAR(40),
                                  pct DECIMAL(5,2), ok BOOLEAN);
         CREATE TABLE member_roles (member BIGINT NOT NULL, role_name VARCHAR(40) NOT NULL);
         CREATE TABLE counters (member BIGINT NOT NULL, counter VARCHAR(40) NOT NULL, amount DECIMAL(10,2));
        ",
    );
    let boolean = |value: Option<bool>| match value {
        Some(true) => "TRUE",
        Some(false) => "FALSE",
        None => "NULL",
    };
    let mut members = Vec::new();
    let mut posts = Vec::new();
    let mut friendships = Vec::new();
    let mut sign_ins = Vec::new();
    let mut enrolments = Vec::new();
    let mut roles = Vec::new();
    let mut counters = Vec::new();
    let first = epoch("2024-01-01T00:00:00Z");
    for i in 1..=40i64 {
        // The last members join after the evaluation instant.
        let banned = match i % 9 {
            0 => Some(true),
            4 => None,
            _ => Some(false),
        };
        let avatar = if i % 5 == 0 { None } else { Some(i % 2 == 0) };
        members.push(format!("({i}, {}, {}, {})", first + i * 23 * 86_400, boolean(banned), boolean(avatar)));
        for k in 0..i % 6 {
            let kind = ["post", "comment", "question"][((i + k) % 3) as usize];
            let thread = if k == 3 { "NULL".to_string() } else { ((i + k) % 7).to_string() };
            let day = 1 + k * 5;
            let posted = if k % 2 == 0 {
                format!("2026-05-{day:02} {:02}:10:00", i % 24)
            } else {
                format!("2026-05-{day:02}T{:02}:10:00-04:00", i % 20)
            };
            posts.push(format!("({i}, '{posted}', '{kind}', {thread})"));
        }
        if i % 3 == 0 {
            // 02:30 UTC is the evening before in New York.
            for k in 0..5 {
                friendships.push(format!("({i}, '2026-06-{:02} 02:30:00')", 1 + i % 5 + k));
            }
        }
        if i % 4 == 1 {
            for k in 0..i % 7 {
                sign_ins.push(format!("({i}, '2026-06-{:02}T03:30:00Z')", 1 + k));
            }
        }
        match i % 4 {
            1 => enrolments.push(format!("({i}, 'onboarding', '2026-03-{:02} 12:00:00', 100.00, TRUE)", 1 + i % 28)),
            2 => enrolments
                .push(format!("({i}, 'onboarding', '2026-03-{:02}T12:00:00+02:00', 99.50, FALSE)", 1 + i % 28)),
            _ => {
                let enrolled = if i % 8 == 7 { "NULL".to_string() } else { format!("'2026-04-{:02}'", 1 + i % 28) };
                let ok = if i % 8 == 3 { "TRUE" } else { "NULL" };
                enrolments.push(format!("({i}, 'advanced', {enrolled}, NULL, {ok})"));
            }
        }
        if i % 10 == 0 {
            roles.push(format!("({i}, 'Moderator')"));
        }
        if i % 7 == 0 {
            roles.push(format!("({i}, 'Expert')"));
        }
        counters.push(format!("({i}, 'kudos', {:.2})", (i % 5) as f64 * 0.75));
        if i % 3 == 0 {
            counters.push(format!("({i}, 'kudos', 0.25)"));
        }
        if i % 11 == 0 {
            counters.push(format!("({i}, 'kudos', NULL)"));
        }
    }
    for (table, columns, rows) in [
        ("members", "id, joined, banned, avatar", members),
        ("forum_posts", "author, posted, kind, thread", posts),
        ("friendships", "member, accepted", friendships),
        ("sign_ins", "member, signed_in", sign_ins),
        ("enrolments", "member, course, enrolled, pct, ok", enrolments),
        ("member_roles", "member, role_name", roles),
        ("counters", "member, counter, amount", counters),
    ] {
        sql.push_str(&format!("INSERT INTO {table} ({columns}) VALUES {};\n", rows.join(", ")));
    }
    sql
}

const PORTABLE_SOURCES: &str = r#"
users = "SELECT id AS user_id, joined AS created_at, banned AS blocked, avatar AS avatar_changed FROM members"
posts = "SELECT author AS user_id, posted AS created_at, kind, thread AS thread_id FROM forum_posts"
connections = "SELECT member AS user_id, accepted AS created_at FROM friendships"
logins = "SELECT member AS user_id, signed_in AS created_at FROM sign_ins"
trainings = "SELECT member AS user_id, course AS training_id, enrolled AS enrolled_at, pct AS progress, ok AS passed FROM enrolments"
roles = "SELECT member AS user_id, role_name AS role FROM member_roles"
metrics = "SELECT member AS user_id, counter AS name, amount AS value FROM counters"
"#;

const EVERY_KIND_OF_BADGE: &str = r#"
[[badges]]
id = "butterfly"
name = "Butterfly"
rule = { type = "social_connections", min = 5, period = "week" }

[[badges]]
id = "networker"
name = "Networker"
rule = { type = "social_connections", min = 5, period = "month" }

[[badges]]
id = "veteran"
name = "Veteran"
rule = { type = "account_age", min = "1 year" }

[[badges]]
id = "talker"
name = "Talker"
rule = { type = "posts_sent", min = 3 }

[[badges]]
id = "recent-talker"
name = "Recent Talker"
activity_since = "2026-05-10"
rule = { type = "posts_sent", min = 2 }

[[badges]]
id = "onboarded"
name = "Onboarded"
rule = { type = "training_completed", training = "onboarding" }

[[badges]]
id = "advanced"
name = "Advanced"
rule = { type = "training_passed", training = "advanced" }

[[badges]]
id = "student"
name = "Student"
rule = { type = "training_enrolled", training = "advanced" }

[[badges]]
id = "asker"
name = "Asker"
formula = "metric.posts.question >= 2 OR roles in ['Moderator']"

[[badges]]
id = "appreciated"
name = "Appreciated"
formula = "metric.kudos >= 2.25 AND avatar_changed = true"

[[badges]]
id = "regular"
name = "Regular"
formula = "setting.user.max_consecutive_logins >= 3 AND NOT time_since_registration < '6 months'"

[[badges]]
id = "threads"
name = "Threads"
formula = "metric.distinct_threads >= 3 AND signin_date >= '2026-06-02'"

[[badges]]
id = "early"
name = "Early"
formula = "registration_date < '2024-06-01' AND NOT roles in ['Expert']"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn one_config_on_sqlite_postgres_and_mariadb_gives_the_same_awards() {
    let (Some(_pg), Some(_my)) = (use_backend(Backend::Postgres), use_backend(Backend::MySql)) else { return };
    let mut exports = Vec::new();
    for backend in [Backend::Sqlite, Backend::Postgres, Backend::MySql] {
        let host = TestHost::on(backend).await;
        host.exec(&portable_community()).await;
        // Only the URL differs.
        let plan = host.plan(&host.config_in("America/New_York", EVERY_KIND_OF_BADGE, PORTABLE_SOURCES));

        host.run(&plan, at(AS_OF)).await;

        exports.push((backend, host.store().awards(&[]).await.expect("exporting the awards")));
    }
    let (_, sqlite) = &exports[0];
    for (backend, export) in &exports[1..] {
        assert_eq!(export, sqlite, "{backend:?} and SQLite differ");
    }
    // Every badge awards some members but not all, so the comparison means something.
    let members = 38; // 39 and 40 join after the evaluation instant
    let badge_ids = [
        "butterfly",
        "networker",
        "veteran",
        "talker",
        "recent-talker",
        "onboarded",
        "advanced",
        "student",
        "asker",
        "appreciated",
        "regular",
        "threads",
        "early",
    ];
    for id in badge_ids {
        let n = sqlite.iter().filter(|a| a.badge_id == *id).count();
        assert!(n > 0 && n < members, "badge {id} has {n} holders: {sqlite:#?}");
    }
}

// ---------------------------------------------------------------------------------------
// One run at a time
// ---------------------------------------------------------------------------------------

/// A canonical host with members 1..=`n`, each with one post, and a config file for a poster
/// and a member badge (`when_locked = "wait"` if `wait`).
async fn posters(n: i64, wait: bool) -> (TestHost, PathBuf) {
    let host = TestHost::canonical().await;
    for chunk in (1..=n).collect::<Vec<_>>().chunks(1_000) {
        host.add_members(chunk.iter().copied(), "2026-01-01 00:00:00").await;
        let rows: Vec<String> = chunk.iter().map(|id| format!("({id}, '2026-02-01 00:00:00')")).collect();
        host.exec(&format!("INSERT INTO posts (user_id, created_at) VALUES {}", rows.join(", "))).await;
    }
    let sources = "users = \"SELECT user_id, created_at, blocked FROM users\"\n\
                   posts = \"SELECT user_id, created_at FROM posts\"";
    let badges = badge("poster", r#"{ type = "posts_sent", min = 1 }"#)
        + &badge("member", r#"{ type = "account_age", min = "1 month" }"#);
    let mut text = host.config(&badges, sources);
    if wait {
        text = text.replacen("[sources]", "[evaluation]\nwhen_locked = \"wait\"\n\n[sources]", 1);
    }
    let config = host.write_config("accolade.toml", &text);
    (host, config)
}

/// Every poster and member award of members 1..=`n`.
fn all_posters(n: i64) -> Vec<(String, i64)> {
    let mut expected = holders("member", 1..=n);
    expected.extend(holders("poster", 1..=n));
    sorted(expected)
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_run_started_while_another_holds_the_lock_exits_2_and_inserts_nothing(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let (host, config) = posters(3, false).await;
    let store = host.store();
    // The lock of this test's own database (each database has its own; see
    // a_run_lock_on_one_mysql_database_does_not_block_a_run_on_another).
    let lock = acquire_lock(&store, None, true).await.expect("taking the run lock");

    let run = accolade(&config, &["run", "--as-of", AS_OF]);

    drop(lock);
    assert_eq!(run.code, Some(2), "{}", run.describe());
    assert!(run.stderr.contains("another accolade run holds the lock"), "{}", run.describe());
    assert!(run.stderr.contains("when_locked"), "the message says how to wait instead: {}", run.describe());
    assert_eq!(host.awards().await, pairs(&[]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn with_when_locked_wait_a_run_waits_for_the_lock_and_completes_once_it_is_released(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let (host, config) = posters(3, true).await;
    let store = host.store();
    let lock = acquire_lock(&store, None, true).await.expect("taking the run lock");

    let mut run = Running::start(&config, &["run", "--as-of", AS_OF]);
    run.wait_for_line("another run holds the lock; waiting");

    assert!(run.is_running(), "it keeps waiting while the lock is held");
    assert_eq!(host.awards().await, pairs(&[]), "nothing is inserted while it waits");
    drop(lock);
    let finished = run.finish();
    assert_eq!(finished.code, Some(0), "{}", finished.describe());
    assert_eq!(finished.new_awards(), 6, "{}", finished.describe());
    assert_eq!(awards_of(&host).await, all_posters(3));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_runs_that_wait_for_each_other_award_each_member_once(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let n = 3_000;
    let (host, config) = posters(n, true).await;

    let first = Running::start(&config, &["run", "--as-of", AS_OF]);
    let second = Running::start(&config, &["run", "--as-of", AS_OF]);
    let (first, second) = (first.finish(), second.finish());

    assert_eq!(first.code, Some(0), "{}", first.describe());
    assert_eq!(second.code, Some(0), "{}", second.describe());
    let mut reported = [first.new_awards(), second.new_awards()];
    reported.sort();
    assert_eq!(reported, [0, 2 * n as u64], "one run inserted everything, the other nothing");
    let awards = awards_of(&host).await;
    assert_eq!(awards.len() as i64, 2 * n);
    assert_eq!(awards, all_posters(n), "the union is a single run's awards, without duplicates");
    assert_eq!(host.count("SELECT COUNT(*) FROM accolade_runs WHERE outcome = 'success'").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_lock_on_one_mysql_database_does_not_block_a_run_on_another() {
    let Some(_backend) = use_backend(Backend::MySql) else { return };
    let (one, _) = posters(2, false).await;
    let (other, _) = posters(2, false).await;
    let plan = other.plan(&other.config(
        &badge("poster", r#"{ type = "posts_sent", min = 1 }"#),
        "users = \"SELECT user_id, created_at, blocked FROM users\"\nposts = \"SELECT user_id, created_at FROM posts\"",
    ));
    let lock = acquire_lock(&one.store(), None, true).await.expect("taking the run lock of the first database");
    // Not TestHost::run, which waits for the lock on MySQL because of this very bug.
    let db = Db::connect(other.url()).await.expect("connecting to the second database");

    let report = execute(&plan, &db, &Store::new(db.clone()), Some(at(AS_OF)), false, &[]).await;

    drop(lock);
    db.close().await;
    let report = report.unwrap_or_else(|e| panic!("a run on another database should not be locked out: {e:#}"));
    assert_eq!(report.new_awards("poster"), 2);
}

// ---------------------------------------------------------------------------------------
// A run killed while it inserts
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_while_inserting_keeps_whole_transactions_and_the_next_run_inserts_the_rest(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    const MEMBERS: i64 = 300_000;
    let per_transaction = match backend {
        Backend::Postgres => COPY_AWARDS_PER_TRANSACTION,
        _ => INSERT_BATCH_ROWS * STATEMENTS_PER_TRANSACTION,
    } as i64;
    let host = TestHost::canonical().await;
    host.exec(&match backend {
        Backend::Sqlite => format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {MEMBERS})
             INSERT INTO users (user_id, created_at, blocked) SELECT i, '2020-01-01 00:00:00', FALSE FROM n"
        ),
        Backend::Postgres => format!(
            "INSERT INTO users (user_id, created_at, blocked)
             SELECT i, '2020-01-01 00:00:00', FALSE FROM generate_series(1, {MEMBERS}) AS i"
        ),
        // MariaDB's SEQUENCE engine (built in since 10.1).
        Backend::MySql => format!(
            "INSERT INTO users (user_id, created_at, blocked)
             SELECT seq, '2020-01-01 00:00:00', FALSE FROM seq_1_to_{MEMBERS}"
        ),
    })
    .await;
    assert_eq!(host.count("SELECT COUNT(*) FROM users").await, MEMBERS);
    // The second run may start before the server has noticed that the first one died.
    let text = host
        .config(
            &badge("member", r#"{ type = "account_age", min = "1 day" }"#),
            "users = \"SELECT user_id, created_at, blocked FROM users\"",
        )
        .replacen("[sources]", "[evaluation]\nwhen_locked = \"wait\"\n\n[sources]", 1);
    let config = host.write_config("accolade.toml", &text);
    let count = "SELECT COUNT(*) FROM accolade_awards";

    let mut run = Running::start(&config, &["run", "--as-of", AS_OF]);
    let deadline = Instant::now() + PATIENCE;
    loop {
        if !run.is_running() {
            let finished = run.finish();
            panic!(
                "the run finished before it could be killed mid-insert (make the host bigger): {}",
                finished.describe()
            );
        }
        let inserted = host.try_count(count).await.unwrap_or(0);
        if inserted > 0 && inserted < MEMBERS {
            run.child.kill().expect("killing the run");
            break;
        }
        assert!(Instant::now() < deadline, "the run inserted nothing in {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
    let killed = run.finish();

    assert_eq!(killed.code, None, "ended by SIGKILL: {}", killed.describe());
    let kept = host.count(count).await;
    assert!(kept > 0 && kept < MEMBERS, "{kept} awards were kept, expected some but not all");
    assert_eq!(kept % per_transaction, 0, "{kept} awards kept: whole transactions of {per_transaction} only");

    let rerun = accolade(&config, &["run", "--as-of", AS_OF]);

    assert_eq!(rerun.code, Some(0), "{}", rerun.describe());
    assert_eq!(rerun.new_awards(), (MEMBERS - kept) as u64, "{}", rerun.describe());
    assert_eq!(host.count(count).await, MEMBERS);
    assert_eq!(host.count("SELECT COUNT(DISTINCT user_id) FROM accolade_awards").await, MEMBERS);
    assert_eq!(host.count("SELECT MIN(user_id) FROM accolade_awards").await, 1);
    assert_eq!(host.count("SELECT MAX(user_id) FROM accolade_awards").await, MEMBERS);
}

// ---------------------------------------------------------------------------------------
// A read-only host on PostgreSQL
// ---------------------------------------------------------------------------------------

/// A PostgreSQL login role with SELECT on some tables of a host and nothing else; dropped
/// (with its privileges) when the guard is dropped, which must happen before the host's.
struct ReadOnlyRole {
    name: String,
    host_url: String,
}

impl ReadOnlyRole {
    async fn create(host: &TestHost, tables: &[&str]) -> ReadOnlyRole {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let name = format!("accolade_ro_{}_{nanos}", std::process::id());
        admin_exec(Backend::Postgres, &format!("CREATE ROLE {name} LOGIN")).await;
        let role = ReadOnlyRole { name, host_url: host.url().to_string() };
        // PostgreSQL before 15 lets everyone create tables in `public`: not this role.
        host.exec(&format!(
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT USAGE ON SCHEMA public TO {name}; GRANT SELECT ON {} TO {name};",
            tables.join(", "),
            name = role.name
        ))
        .await;
        role
    }
}

impl Drop for ReadOnlyRole {
    fn drop(&mut self) {
        let (name, host_url) = (self.name.clone(), self.host_url.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async move {
                // Privileges live in the host database; the role itself on the server.
                let host = Db::connect(&host_url).await.ok()?;
                let revoked = match &host {
                    Db::Postgres(pool) => {
                        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP OWNED BY {name}"))).execute(pool).await.ok()
                    }
                    _ => None,
                };
                host.close().await;
                revoked?;
                let admin = Db::connect(&admin_url(Backend::Postgres)).await.ok()?;
                let dropped = match &admin {
                    Db::Postgres(pool) => sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {name}")))
                        .execute(pool)
                        .await
                        .ok(),
                    _ => None,
                };
                admin.close().await;
                dropped.map(|_| ())
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: could not drop the test role {}", self.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_host_account_reads_the_host_and_awards_go_only_to_the_awards_database() {
    let Some(_backend) = use_backend(Backend::Postgres) else { return };
    let host = TestHost::canonical().await;
    host.add_members(1..=3, "2026-01-01 00:00:00").await;
    host.add_events("posts", 1, &["2026-02-01 00:00:00"]).await;
    host.add_events("posts", 2, &["2026-02-01 00:00:00", "2026-02-02 00:00:00"]).await;
    let awards = TestHost::new().await;
    let role = ReadOnlyRole::create(&host, &["users", "posts", "connections", "trainings"]).await;
    let sources =
        "users = \"SELECT user_id, created_at, blocked FROM users\"\nposts = \"SELECT user_id, created_at FROM posts\"";
    let badges = badge("poster", r#"{ type = "posts_sent", min = 1 }"#)
        + &badge("member", r#"{ type = "account_age", min = "1 month" }"#);
    let read_only = format!(
        "[database]\nurl = \"{}\"\nawards_url = \"{}\"\n\n[sources]\n{sources}\n\n{badges}",
        host.url_as(&role.name),
        awards.url()
    );
    let config = host.write_config("read-only.toml", &read_only);

    let run = accolade(&config, &["run", "--as-of", AS_OF]);

    assert_eq!(run.code, Some(0), "{}", run.describe());
    let mut expected = holders("member", [1, 2, 3]);
    expected.extend(holders("poster", [1, 2]));
    assert_eq!(awards_of(&awards).await, sorted(expected));
    let tables = "SELECT COUNT(*) FROM information_schema.tables WHERE table_name LIKE 'accolade%'";
    assert_eq!(host.count(tables).await, 0, "the host has no accolade tables");
    assert!(awards.count(tables).await >= 5, "the awards database has accolade's tables");

    // Without awards_url, the read-only account would have to create the tables in the host.
    let alone = read_only.lines().filter(|l| !l.starts_with("awards_url")).collect::<Vec<_>>().join("\n");
    let config = host.write_config("read-only-alone.toml", &alone);

    let refused = accolade(&config, &["run", "--as-of", AS_OF]);

    assert_eq!(refused.code, Some(2), "{}", refused.describe());
    for fragment in ["accolade_migrations", "permission denied"] {
        assert!(refused.stderr.contains(fragment), "{fragment}: {}", refused.describe());
    }
    assert_eq!(host.count(tables).await, 0, "still no accolade tables in the host");
    drop(role);
}

// ---------------------------------------------------------------------------------------
// The Moodle example on Moodle's own tables
// ---------------------------------------------------------------------------------------

/// The part of Moodle's schema the example reads, as Moodle's installer creates it (lib/db,
/// mod/forum/db and admin/tool/log/store/standard/db install.xml): the columns the queries use
/// and a few realistic NOT NULL ones. XMLDB int(10) is BIGINT, int(1) is SMALLINT on
/// PostgreSQL and TINYINT(1) on MySQL, number(10,5) is NUMERIC(10,5), text is TEXT/LONGTEXT.
fn moodle_schema(backend: Backend) -> String {
    let (id, flag, text) = match backend {
        Backend::MySql => ("BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY", "TINYINT(1)", "LONGTEXT"),
        _ => ("BIGSERIAL PRIMARY KEY", "SMALLINT", "TEXT"),
    };
    format!(
        "CREATE TABLE mdl_user (
            id {id},
            auth VARCHAR(20) NOT NULL DEFAULT 'manual',
            confirmed {flag} NOT NULL DEFAULT 0,
            deleted {flag} NOT NULL DEFAULT 0,
            suspended {flag} NOT NULL DEFAULT 0,
            mnethostid BIGINT NOT NULL DEFAULT 0,
            username VARCHAR(100) NOT NULL DEFAULT '',
            firstname VARCHAR(100) NOT NULL DEFAULT '',
            lastname VARCHAR(100) NOT NULL DEFAULT '',
            email VARCHAR(100) NOT NULL DEFAULT '',
            lang VARCHAR(30) NOT NULL DEFAULT 'en',
            picture BIGINT NOT NULL DEFAULT 0,
            timecreated BIGINT NOT NULL DEFAULT 0,
            timemodified BIGINT NOT NULL DEFAULT 0
         );
         CREATE TABLE mdl_forum_posts (
            id {id},
            discussion BIGINT NOT NULL DEFAULT 0,
            parent BIGINT NOT NULL DEFAULT 0,
            userid BIGINT NOT NULL DEFAULT 0,
            created BIGINT NOT NULL DEFAULT 0,
            modified BIGINT NOT NULL DEFAULT 0,
            subject VARCHAR(255) NOT NULL DEFAULT '',
            message {text} NOT NULL,
            deleted {flag} NOT NULL DEFAULT 0
         );
         CREATE TABLE mdl_message_contacts (
            id {id},
            userid BIGINT NOT NULL,
            contactid BIGINT NOT NULL,
            timecreated BIGINT
         );
         CREATE TABLE mdl_logstore_standard_log (
            id {id},
            eventname VARCHAR(255) NOT NULL DEFAULT '',
            component VARCHAR(100) NOT NULL DEFAULT '',
            action VARCHAR(100) NOT NULL DEFAULT '',
            target VARCHAR(100) NOT NULL DEFAULT '',
            crud VARCHAR(1) NOT NULL DEFAULT '',
            edulevel {flag} NOT NULL,
            contextid BIGINT NOT NULL,
            contextlevel BIGINT NOT NULL,
            contextinstanceid BIGINT NOT NULL,
            userid BIGINT NOT NULL,
            timecreated BIGINT NOT NULL,
            origin VARCHAR(10),
            ip VARCHAR(45)
         );
         CREATE TABLE mdl_course (
            id {id},
            category BIGINT NOT NULL DEFAULT 0,
            fullname VARCHAR(1333) NOT NULL DEFAULT '',
            shortname VARCHAR(255) NOT NULL DEFAULT '',
            idnumber VARCHAR(100) NOT NULL DEFAULT '',
            visible {flag} NOT NULL DEFAULT 1,
            enablecompletion {flag} NOT NULL DEFAULT 0,
            timecreated BIGINT NOT NULL DEFAULT 0
         );
         CREATE TABLE mdl_enrol (
            id {id},
            enrol VARCHAR(20) NOT NULL DEFAULT '',
            status BIGINT NOT NULL DEFAULT 0,
            courseid BIGINT NOT NULL,
            sortorder BIGINT NOT NULL DEFAULT 0,
            roleid BIGINT DEFAULT 0,
            timecreated BIGINT NOT NULL DEFAULT 0,
            timemodified BIGINT NOT NULL DEFAULT 0
         );
         CREATE TABLE mdl_user_enrolments (
            id {id},
            status BIGINT NOT NULL DEFAULT 0,
            enrolid BIGINT NOT NULL,
            userid BIGINT NOT NULL,
            timestart BIGINT NOT NULL DEFAULT 0,
            timeend BIGINT NOT NULL DEFAULT 2147483647,
            modifierid BIGINT NOT NULL DEFAULT 0,
            timecreated BIGINT NOT NULL DEFAULT 0,
            timemodified BIGINT NOT NULL DEFAULT 0,
            UNIQUE (enrolid, userid)
         );
         CREATE TABLE mdl_course_completions (
            id {id},
            userid BIGINT NOT NULL DEFAULT 0,
            course BIGINT NOT NULL DEFAULT 0,
            timeenrolled BIGINT NOT NULL DEFAULT 0,
            timestarted BIGINT NOT NULL DEFAULT 0,
            timecompleted BIGINT,
            reaggregate BIGINT NOT NULL DEFAULT 0,
            UNIQUE (userid, course)
         );
         CREATE TABLE mdl_grade_items (
            id {id},
            courseid BIGINT,
            categoryid BIGINT,
            itemname VARCHAR(255),
            itemtype VARCHAR(30) NOT NULL DEFAULT '',
            itemmodule VARCHAR(30),
            iteminstance BIGINT,
            grademax NUMERIC(10,5) NOT NULL DEFAULT 100,
            grademin NUMERIC(10,5) NOT NULL DEFAULT 0,
            gradepass NUMERIC(10,5) NOT NULL DEFAULT 0,
            sortorder BIGINT NOT NULL DEFAULT 0,
            timecreated BIGINT,
            timemodified BIGINT
         );
         CREATE TABLE mdl_grade_grades (
            id {id},
            itemid BIGINT NOT NULL,
            userid BIGINT NOT NULL,
            rawgrade NUMERIC(10,5),
            finalgrade NUMERIC(10,5),
            timecreated BIGINT,
            timemodified BIGINT,
            UNIQUE (userid, itemid)
         );
         CREATE TABLE mdl_role (
            id {id},
            name VARCHAR(255) NOT NULL DEFAULT '',
            shortname VARCHAR(100) NOT NULL DEFAULT '',
            description {text} NOT NULL,
            sortorder BIGINT NOT NULL DEFAULT 0,
            archetype VARCHAR(30) NOT NULL DEFAULT ''
         );
         CREATE TABLE mdl_role_assignments (
            id {id},
            roleid BIGINT NOT NULL DEFAULT 0,
            contextid BIGINT NOT NULL DEFAULT 0,
            userid BIGINT NOT NULL DEFAULT 0,
            timemodified BIGINT NOT NULL DEFAULT 0,
            modifierid BIGINT NOT NULL DEFAULT 0,
            component VARCHAR(100) NOT NULL DEFAULT '',
            itemid BIGINT NOT NULL DEFAULT 0,
            sortorder BIGINT NOT NULL DEFAULT 0
         );
         CREATE TABLE mdl_user_preferences (
            id {id},
            userid BIGINT NOT NULL DEFAULT 0,
            name VARCHAR(255) NOT NULL DEFAULT '',
            value VARCHAR(1333) NOT NULL DEFAULT '',
            UNIQUE (userid, name)
         );"
    )
}

/// A small Moodle site (the evaluation is 2026-06-15 12:00 UTC, 13:00 in London):
///
/// | id | user | notes |
/// |---|---|---|
/// | 1 | guest | Moodle's guest account: not a member |
/// | 2 | admin | joined 2024; one discussion |
/// | 3 | tina | editing teacher with a picture; one discussion; enrolled in INTRO101 |
/// | 4 | noah | non-editing teacher without a picture; joined 2025-03 |
/// | 5 | alice | joined exactly one year before (London calendar); 3 discussions; 3 contacts in one London week; completed and passed INTRO101 at exactly gradepass; lang fr |
/// | 6 | bob | joined one hour too late for a year; 2 discussions and replies in 5 threads; 3 contacts in the London week of 06-08 (one at Monday 00:30 BST, still Sunday in UTC); grade 59.99999 of 60 |
/// | 7 | carol | suspended: one reply, lang es; joined 2023 |
/// | 8 | dave | deleted: his posts count for nobody; his contacts still count for the other member |
/// | 9 | erin | 5 consecutive London days of logins; replies in 4 threads; 3 contacts in one week (one with dave); enrolled twice in INTRO101 (manual and self); completed, not graded; lang de |
/// | 10 | frank | logins on 4 London days (5 UTC days), a login-as and logouts; PHYS201 only; a post after the evaluation; lang en_us |
fn moodle_site(backend: Backend) -> String {
    let t = epoch;
    let mut sql = String::new();
    let users = [
        // id, username, deleted, suspended, lang, picture, timecreated
        (1, "guest", 0, 0, "en", 0, 0),
        (2, "admin", 0, 0, "en", 0, t("2024-01-10T09:00:00Z")),
        (3, "tina", 0, 0, "en", 5, t("2025-09-01T08:00:00Z")),
        (4, "noah", 0, 0, "", 0, t("2025-03-01T08:00:00Z")),
        (5, "alice", 0, 0, "fr", 7, t("2025-06-15T11:00:00Z")),
        (6, "bob", 0, 0, "en", 0, t("2025-06-15T13:00:00Z")),
        (7, "carol", 0, 1, "es", 0, t("2023-01-05T10:00:00Z")),
        (8, "dave@example.com.1767225600", 1, 0, "it", 0, t("2023-02-01T10:00:00Z")),
        (9, "erin", 0, 0, "de", 0, t("2026-01-01T10:00:00Z")),
        (10, "frank", 0, 0, "en_us", 0, t("2026-02-01T10:00:00Z")),
    ];
    let rows: Vec<String> = users
        .iter()
        .map(|(id, username, deleted, suspended, lang, picture, created)| {
            format!(
                "({id}, 'manual', 1, {deleted}, {suspended}, 1, '{username}', '{username}', 'Example', \
                 '{username}@example.com', '{lang}', {picture}, {created}, {created})"
            )
        })
        .collect();
    sql.push_str(&format!(
        "INSERT INTO mdl_user (id, auth, confirmed, deleted, suspended, mnethostid, username, firstname, lastname, \
         email, lang, picture, timecreated, timemodified) VALUES {};\n",
        rows.join(", ")
    ));
    // Forum posts: (discussion, parent, userid, created). First posts have parent 0.
    let may = |day: u32, hour: u32| t(&format!("2026-05-{day:02}T{hour:02}:00:00Z"));
    let posts = [
        (101, 0, 5, may(1, 9)),
        (102, 0, 5, may(2, 9)),
        (103, 0, 5, may(3, 9)),
        (104, 0, 6, may(4, 9)),
        (105, 0, 6, may(5, 9)),
        (106, 0, 3, may(6, 9)),
        (107, 0, 2, may(7, 9)),
        (101, 1, 6, may(8, 10)),
        (101, 1, 6, may(8, 11)),
        (102, 2, 6, may(9, 10)),
        (103, 3, 6, may(10, 10)),
        (106, 6, 6, may(11, 10)),
        (107, 7, 6, may(12, 10)),
        (101, 1, 9, may(13, 10)),
        (101, 1, 9, may(14, 10)),
        (102, 2, 9, may(15, 10)),
        (104, 4, 9, may(16, 10)),
        (105, 5, 9, may(17, 10)),
        (105, 5, 9, may(18, 10)),
        (104, 4, 7, may(19, 10)),
        (101, 1, 8, may(20, 10)),
        (108, 0, 8, may(21, 10)),
        (108, 0, 10, t("2026-06-16T09:00:00Z")),
    ];
    let rows: Vec<String> = posts
        .iter()
        .map(|(discussion, parent, user, created)| {
            format!("({discussion}, {parent}, {user}, {created}, {created}, 'Re: hello', '<p>Hello</p>', 0)")
        })
        .collect();
    sql.push_str(&format!(
        "INSERT INTO mdl_forum_posts (discussion, parent, userid, created, modified, subject, message, deleted) VALUES {};\n",
        rows.join(", ")
    ));
    // Contacts count for both members. London weeks start on Monday 00:00 BST (Sunday 23:00 UTC).
    let contacts = [
        (5, 6, "2026-06-08T10:00:00Z"),
        (5, 9, "2026-06-09T10:00:00Z"),
        (5, 10, "2026-06-10T10:00:00Z"),
        (6, 3, "2026-06-07T22:30:00Z"), // Sunday 23:30 BST: the week of 06-01
        (6, 4, "2026-06-07T23:30:00Z"), // Monday 00:30 BST: the week of 06-08
        (6, 9, "2026-06-09T12:00:00Z"),
        (8, 9, "2026-06-09T13:00:00Z"),
        (8, 10, "2026-06-09T14:00:00Z"),
    ];
    let rows: Vec<String> =
        contacts.iter().map(|(user, contact, at)| format!("({user}, {contact}, {})", t(at))).collect();
    sql.push_str(&format!(
        "INSERT INTO mdl_message_contacts (userid, contactid, timecreated) VALUES {};\n",
        rows.join(", ")
    ));
    // Logins: erin on five consecutive London days, frank on four (five UTC days, the first
    // at 23:30 UTC, already the next day in London), plus a login-as and logouts that do not count.
    let mut logs = Vec::new();
    for day in 1..=5 {
        logs.push(("\\core\\event\\user_loggedin", "loggedin", 9, t(&format!("2026-06-{day:02}T08:00:00Z"))));
        logs.push(("\\core\\event\\user_loggedout", "loggedout", 9, t(&format!("2026-06-{:02}T08:00:00Z", day + 7))));
    }
    logs.push(("\\core\\event\\user_loggedin", "loggedin", 10, t("2026-06-01T23:30:00Z")));
    for day in 2..=5 {
        logs.push(("\\core\\event\\user_loggedin", "loggedin", 10, t(&format!("2026-06-{day:02}T10:00:00Z"))));
    }
    logs.push(("\\core\\event\\user_loggedinas", "loggedinas", 10, t("2026-06-06T10:00:00Z")));
    logs.push(("\\core\\event\\user_loggedout", "loggedout", 10, t("2026-06-07T10:00:00Z")));
    for day in [1, 2, 4] {
        logs.push(("\\core\\event\\user_loggedin", "loggedin", 5, t(&format!("2026-06-{day:02}T07:00:00Z"))));
    }
    // MySQL string literals treat a backslash as an escape character.
    let backslash = if backend == Backend::MySql { "\\\\" } else { "\\" };
    let rows: Vec<String> = logs
        .iter()
        .map(|(event, action, user, at)| {
            let event = event.replace('\\', backslash);
            format!("('{event}', 'core', '{action}', 'user', 'r', 0, 1, 10, 0, {user}, {at}, 'web', '192.0.2.1')")
        })
        .collect();
    sql.push_str(&format!(
        "INSERT INTO mdl_logstore_standard_log (eventname, component, action, target, crud, edulevel, contextid, \
         contextlevel, contextinstanceid, userid, timecreated, origin, ip) VALUES {};\n",
        rows.join(", ")
    ));
    let created = t("2025-01-01T00:00:00Z");
    sql.push_str(&format!(
        "INSERT INTO mdl_course (id, category, fullname, shortname, idnumber, visible, enablecompletion, timecreated) VALUES
            (1, 0, 'Example Site', 'example', '', 1, 0, 0),
            (2, 1, 'Introduction', 'INTRO101', 'INTRO101', 1, 1, {created}),
            (3, 1, 'Physics', 'PHYS201', 'PHYS201', 1, 1, {created});
         INSERT INTO mdl_enrol (id, enrol, status, courseid, sortorder, roleid, timecreated, timemodified) VALUES
            (10, 'manual', 0, 2, 0, 5, {created}, {created}),
            (11, 'self', 0, 2, 1, 5, {created}, {created}),
            (12, 'manual', 0, 3, 0, 5, {created}, {created});
         INSERT INTO mdl_user_enrolments (status, enrolid, userid, timestart, timecreated, timemodified) VALUES
            (0, 10, 5, {a}, {a}, {a}), (0, 11, 6, {a}, {a}, {a}), (0, 10, 9, {a}, {a}, {a}),
            (0, 11, 9, {b}, {b}, {b}), (0, 10, 3, {a}, {a}, {a}), (0, 12, 10, {a}, {a}, {a});
         INSERT INTO mdl_course_completions (userid, course, timeenrolled, timestarted, timecompleted) VALUES
            (5, 2, {a}, {a}, {done}), (6, 2, {a}, {a}, NULL), (9, 2, {a}, {a}, {done});
         INSERT INTO mdl_grade_items (id, courseid, itemname, itemtype, itemmodule, iteminstance, grademax, gradepass, sortorder) VALUES
            (20, 2, NULL, 'course', NULL, 2, 100.00000, 60.00000, 1),
            (21, 2, 'Essay', 'mod', 'assign', 1, 100.00000, 50.00000, 2),
            (22, 3, NULL, 'course', NULL, 3, 100.00000, 0.00000, 1);
         INSERT INTO mdl_grade_grades (itemid, userid, rawgrade, finalgrade) VALUES
            (20, 5, 60.00000, 60.00000), (20, 6, 59.99999, 59.99999), (20, 9, NULL, NULL),
            (21, 6, 80.00000, 80.00000), (22, 10, 95.00000, 95.00000);
         INSERT INTO mdl_role (id, name, shortname, description, sortorder, archetype) VALUES
            (1, '', 'manager', '', 1, 'manager'), (2, '', 'coursecreator', '', 2, 'coursecreator'),
            (3, '', 'editingteacher', '', 3, 'editingteacher'), (4, '', 'teacher', '', 4, 'teacher'),
            (5, '', 'student', '', 5, 'student'), (6, '', 'guest', '', 6, 'guest'), (7, '', 'user', '', 7, 'user');
         INSERT INTO mdl_role_assignments (roleid, contextid, userid, timemodified, modifierid) VALUES
            (3, 20, 3, {created}, 2), (4, 20, 4, {created}, 2), (5, 20, 5, {a}, 2), (5, 20, 6, {a}, 2),
            (5, 20, 9, {a}, 2), (5, 21, 10, {a}, 2);
         INSERT INTO mdl_user_preferences (userid, name, value) VALUES
            (5, 'email_bounce_count', '1'), (9, 'auth_forcepasswordchange', '0'), (6, 'htmleditor', ''),
            (3, 'block_myoverview_user_view_preference', 'list');\n",
        a = t("2026-03-01T09:00:00Z"),
        b = t("2026-03-05T09:00:00Z"),
        done = t("2026-05-20T09:00:00Z"),
    ));
    sql
}

/// The awards the example's badges give on [`moodle_site`].
fn moodle_awards() -> Vec<(String, i64)> {
    let mut expected = Vec::new();
    for (badge_id, users) in [
        ("first-words", vec![2, 3, 5, 6, 7, 9]),
        ("discussion-starter", vec![5]),
        ("helper", vec![6]),
        ("networker", vec![5, 6, 9]),
        ("one-year", vec![2, 4, 5]),
        ("intro-completed", vec![5, 9]),
        ("intro-passed", vec![5]),
        ("enrolled", vec![3, 5, 6, 9]),
        ("regular", vec![9]),
        ("teacher", vec![3]),
        ("polyglot", vec![5, 7, 9, 10]),
    ] {
        expected.extend(holders(badge_id, users));
    }
    sorted(expected)
}

/// The Moodle example with its database URLs pointed at `host` and `awards`.
fn moodle_example_for(host: &TestHost, awards: &TestHost) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples/moodle.toml");
    let example = std::fs::read_to_string(&path).expect("reading the Moodle example");
    let mut replaced = 0;
    let text: Vec<String> = example
        .lines()
        .map(|line| {
            if line.starts_with("url = ") {
                replaced += 1;
                format!("url = \"{}\"", host.url())
            } else if line.starts_with("awards_url = ") {
                replaced += 1;
                format!("awards_url = \"{}\"", awards.url())
            } else {
                line.to_string()
            }
        })
        .collect();
    assert_eq!(replaced, 2, "the example should set url and awards_url:\n{example}");
    text.join("\n")
}

/// The example with `when_locked = "wait"`, as an operator sharing a database between a
/// CronJob and manual runs would set it.
fn waiting_for_the_lock(text: String) -> String {
    let waiting = text.replacen("\n[evaluation]\n", "\n[evaluation]\nwhen_locked = \"wait\"\n", 1);
    assert_ne!(waiting, text, "the example has an [evaluation] section");
    waiting
}

/// Runs the Moodle example (adapted by `adapt`) on the Moodle site plus `extra_sql` on
/// `backend`, and checks every badge's awards.
async fn run_moodle_example(backend: Backend, extra_sql: &str, adapt: impl Fn(String) -> String) {
    let host = TestHost::on(backend).await;
    host.exec(&moodle_schema(backend)).await;
    host.exec(&moodle_site(backend)).await;
    if !extra_sql.is_empty() {
        host.exec(extra_sql).await;
    }
    let awards = TestHost::on(backend).await;
    let config = host.write_config("moodle.toml", &adapt(moodle_example_for(&host, &awards)));

    let run = accolade(&config, &["run", "--as-of", AS_OF]);

    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert_eq!(awards_of(&awards).await, moodle_awards());
    let tables = match backend {
        Backend::MySql => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'accolade%'"
        }
        _ => "SELECT COUNT(*) FROM information_schema.tables WHERE table_name LIKE 'accolade%'",
    };
    assert_eq!(host.count(tables).await, 0, "the Moodle database gets no accolade tables");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_moodle_example_awards_each_badge_to_the_right_members_of_a_moodle_site_on_postgres() {
    let Some(_backend) = use_backend(Backend::Postgres) else { return };
    run_moodle_example(Backend::Postgres, "", |text| text).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_moodle_example_runs_unchanged_on_mariadb() {
    let Some(_backend) = use_backend(Backend::MySql) else { return };
    run_moodle_example(Backend::MySql, "", waiting_for_the_lock).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_moodle_example_tolerates_a_contact_without_timecreated() {
    let Some(_backend) = use_backend(Backend::Postgres) else { return };
    // noah and tina became contacts before Moodle 3.6 recorded when: no week to count it in.
    let old_contact = "INSERT INTO mdl_message_contacts (userid, contactid, timecreated) VALUES (4, 3, NULL)";
    run_moodle_example(Backend::Postgres, old_contact, |text| text).await;
}

// ---------------------------------------------------------------------------------------
// A writer that races the run's write
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_manual_award_stored_after_the_run_read_the_existing_awards_is_kept_and_not_duplicated(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    use accolade::store::{AwardKind, AwardSource};
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members(1..=5, "2026-01-01 00:00:00").await;
    let plan = host
        .plan(&host.config(&badge("poster", r#"{ type = "posts_sent", min = 1 }"#), crate::support::CANONICAL_SOURCES));
    host.run(&plan, at(AS_OF)).await; // creates the tables and records the badge
    let store = host.store();
    // The run's candidates, as computed before the manual award lands.
    let candidates =
        accolade::evaluate::awards_frame(vec!["poster".to_string(); 5], (1..=5).collect()).expect("a candidates frame");
    let manual = AwardKind { source: AwardSource::Manual, notify: true };
    let by_hand = accolade::evaluate::awards_frame(vec!["poster".to_string()], vec![3]).expect("a frame");
    let manual_kinds = std::collections::HashMap::from([("poster".to_string(), manual)]);
    let landed = store.insert_awards(&by_hand, at(AS_OF), &manual_kinds, manual, None, None).await.expect("award");
    assert_eq!(landed.counts, vec![("poster".to_string(), 1)]);

    let rule = AwardKind { source: AwardSource::Rule, notify: true };
    let kinds = std::collections::HashMap::from([("poster".to_string(), rule)]);
    let written = store.insert_awards(&candidates, at(AS_OF), &kinds, rule, Some(1), None).await;

    let written = written.expect("the run's write goes on past the pair another writer stored");
    assert_eq!(written.counts, vec![("poster".to_string(), 4)], "the raced pair is not counted as new");
    assert_eq!(host.holders("poster").await, vec![1, 2, 3, 4, 5], "each award exactly once");
    let sources: Vec<(i64, String)> = host.stored_awards().await.into_iter().map(|a| (a.user_id, a.source)).collect();
    assert!(sources.contains(&(3, "manual".to_string())), "the manual award keeps its source: {sources:?}");
    let queued = host.count("SELECT COUNT(*) FROM accolade_outbox WHERE badge_id = 'poster'").await;
    assert_eq!(queued, 5, "every new award queued once, the manual one included");
}

// ---------------------------------------------------------------------------------------
// The awards table's key
// ---------------------------------------------------------------------------------------

/// The awards table's primary key columns in key order, and how many indexes it has.
async fn awards_key(host: &TestHost) -> (Option<String>, i64) {
    let (columns, indexes) = match host.backend() {
        Backend::Sqlite => (
            "SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_index_info((SELECT name FROM \
             pragma_index_list('accolade_awards') WHERE origin = 'pk')) ORDER BY seqno)",
            "SELECT COUNT(*) FROM pragma_index_list('accolade_awards')",
        ),
        Backend::Postgres => (
            "SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM pg_index i \
             CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
             WHERE i.indrelid = 'accolade_awards'::regclass AND i.indisprimary",
            "SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'accolade_awards'",
        ),
        Backend::MySql => (
            "SELECT GROUP_CONCAT(column_name ORDER BY seq_in_index) FROM information_schema.statistics \
             WHERE table_schema = DATABASE() AND table_name = 'accolade_awards' AND index_name = 'PRIMARY'",
            "SELECT COUNT(DISTINCT index_name) FROM information_schema.statistics \
             WHERE table_schema = DATABASE() AND table_name = 'accolade_awards'",
        ),
    };
    (host.text(columns).await, host.count(indexes).await)
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn upgrading_to_the_member_first_key_keeps_every_award_and_the_key_still_refuses_a_second_one(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    use accolade::store::{AwardKind, AwardSource};
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    let store = host.store();
    accolade::store::migrate_until(&store, 3).await.expect("the schema as version 3 left it");
    assert_eq!(awards_key(&host).await, (Some("badge_id,user_id".to_string()), 2), "the old key and member index");
    let quiet = AwardKind { source: AwardSource::Backfill, notify: false };
    let kinds = std::collections::HashMap::from([("poster".to_string(), quiet)]);
    // The rows as version 3 stored them (today's writer knows the newer columns).
    let at_text = host.native_timestamp(AS_OF);
    let (yes, no) = match host.backend() {
        Backend::Postgres => ("TRUE", "FALSE"),
        _ => ("1", "0"),
    };
    host.exec(&format!(
        "INSERT INTO accolade_awards (badge_id, user_id, awarded_at, source, notify) VALUES \
         ('poster', 2, {at_text}, 'backfill', {no}), ('poster', 1, {at_text}, 'backfill', {no}), \
         ('helper', 2, {at_text}, 'manual', {yes}), ('helper', 7, {at_text}, 'manual', {yes})"
    ))
    .await;
    host.exec("UPDATE accolade_awards SET revoked_at = awarded_at, revocation_reason = 'spam' WHERE user_id = 7").await;
    let now = host.native_timestamp(AS_OF);
    host.exec(&format!(
        "INSERT INTO accolade_badges (badge_id, name, points, status, rule_type, criterion, created_at, updated_at) \
         VALUES ('poster', 'Poster', 5, 'published', 'manual', 'manual', {now}, {now}), \
         ('helper', 'Helper', 1, 'published', 'manual', 'manual', {now}, {now})"
    ))
    .await;
    let applied = accolade::store::migrate(&store).await.expect("the upgrade");

    assert_eq!(applied, vec![4, 5, 6]);
    let key = Some("user_id,badge_id,grant_key".to_string());
    assert_eq!(awards_key(&host).await, (key, 1), "one index: the member-first key, with the grant");
    let kept: Vec<(String, i64, String, String, String)> = host
        .stored_awards()
        .await
        .into_iter()
        .map(|a| (a.badge_id, a.user_id, a.awarded_at, a.source, a.grant))
        .collect();
    let expected: Vec<(String, i64, String, String, String)> =
        [("helper", 2, "manual"), ("helper", 7, "manual"), ("poster", 1, "backfill"), ("poster", 2, "backfill")]
            .into_iter()
            .map(|(b, u, s)| (b.to_string(), u, AS_OF.to_string(), s.to_string(), String::new()))
            .collect();
    assert_eq!(kept, expected, "every award kept, with its time and source, as the single grant");
    let by_hand = host.text("SELECT revoked_by FROM accolade_awards WHERE user_id = 7").await;
    assert_eq!(by_hand.as_deref(), Some("manual"), "an earlier revocation was made by hand");
    assert_eq!(host.count("SELECT COUNT(*) FROM accolade_awards WHERE notify = FALSE").await, 2);
    let reason = host.text("SELECT revocation_reason FROM accolade_awards WHERE user_id = 7").await;
    assert_eq!(reason.as_deref(), Some("spam"), "the revocation kept");
    let ranked = host.count("SELECT COUNT(*) FROM accolade_leaderboard").await;
    assert_eq!(ranked, 2, "the view reads the new table (member 7's revoked award left out)");
    assert_eq!(host.count("SELECT badges FROM accolade_leaderboard WHERE user_id = 2").await, 2);
    let again = accolade::evaluate::awards_frame(vec!["poster".into(), "poster".into()], vec![2, 3]).expect("a frame");
    let written = store.insert_awards(&again, at(AS_OF), &kinds, quiet, None, None).await.expect("a second write");
    assert_eq!(written.counts, vec![("poster".to_string(), 1)], "only the pair that did not exist is new");
    assert_eq!(host.holders("poster").await, vec![1, 2, 3], "member 2 holds it once");
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_write_of_many_badges_and_members_counts_each_badges_new_awards_in_the_frames_badge_order(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    use accolade::store::{AwardKind, AwardSource};
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    let store = host.store();
    accolade::store::migrate(&store).await.expect("the schema");
    // More rows than one transaction, badges in an order that is not alphabetical, members in
    // descending order: the write sorts them into the key's order and counts per badge.
    let members = accolade::store::COPY_AWARDS_PER_TRANSACTION as i64 + 7;
    let mut badges = Vec::new();
    let mut users = Vec::new();
    for badge in ["zeta", "alpha", "mid"] {
        for user in (1..=members).rev().filter(|u| badge != "mid" || u % 3 == 0) {
            badges.push(badge.to_string());
            users.push(user);
        }
    }
    let rule = AwardKind { source: AwardSource::Rule, notify: true };
    let kinds = std::collections::HashMap::from([("alpha".to_string(), AwardKind { notify: false, ..rule })]);
    // One award exists already: that transaction takes the conflict-skipping path.
    let existing = accolade::evaluate::awards_frame(vec!["mid".into()], vec![300]).expect("a frame");
    store.insert_awards(&existing, at(AS_OF), &kinds, rule, None, None).await.expect("an existing award");
    let frame = accolade::evaluate::awards_frame(badges, users).expect("a frame");

    let written = store.insert_awards(&frame, at(AS_OF), &kinds, rule, Some(1), None).await.expect("the write");

    let thirds = members / 3;
    let expected = vec![
        ("zeta".to_string(), members as u64),
        ("alpha".to_string(), members as u64),
        ("mid".to_string(), thirds as u64 - 1),
    ];
    assert_eq!(written.counts, expected);
    let stored = host.count("SELECT COUNT(*) FROM accolade_awards").await;
    assert_eq!(stored, 2 * members + thirds, "every pair once");
    let queued = host.count("SELECT COUNT(*) FROM accolade_outbox").await;
    assert_eq!(queued, members + thirds, "announced badges queued once each, the quiet one not at all");
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn more_deferred_notifications_than_one_statement_holds_are_all_released(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    use accolade::store::{AwardKind, AwardSource};
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    let store = host.store();
    accolade::store::migrate(&store).await.expect("the schema");
    // Several release statements' worth of deferred rows, and one already pending.
    let members = 2_500_i64;
    let rule = AwardKind { source: AwardSource::Rule, notify: true };
    let kinds = std::collections::HashMap::new();
    let frame = accolade::evaluate::awards_frame(vec!["poster".into(); members as usize], (1..=members).collect())
        .expect("a frame");
    store.insert_awards(&frame, at(AS_OF), &kinds, rule, None, None).await.expect("the write");
    assert_eq!(host.count("SELECT COUNT(*) FROM accolade_outbox WHERE state = 'deferred'").await, members);

    let first = store.release_notifications(Some(1_500), at(AS_OF)).await.expect("a throttled release");
    assert_eq!(first, 1_500, "the oldest 1,500 released");
    let rest = store.release_notifications(None, at(AS_OF)).await.expect("the release of the rest");
    assert_eq!(rest, (members - 1_500) as u64, "the others released, none twice");
    assert_eq!(host.count("SELECT COUNT(*) FROM accolade_outbox WHERE state = 'pending'").await, members);
}
