//! The real binary end to end: the demo, runs, exports, manual awards, `check` and exit
//! codes; and the same host data under another schema, mapped only by `[sources]` aliases.

use crate::support::{CANONICAL_SCHEMA, CANONICAL_SOURCES, TestHost};
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

/// What one invocation of the binary did.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn describe(&self) -> String {
        format!("exit {}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs `accolade` with `args`, isolated from the environment's config settings.
fn accolade(args: &[&str]) -> Outcome {
    let output = Command::new(env!("CARGO_BIN_EXE_accolade"))
        .args(args)
        .env_remove("ACCOLADE_CONFIG")
        .env_remove("ACCOLADE_DATABASE_URL")
        .env_remove("ACCOLADE_LOG")
        .output()
        .expect("running the accolade binary");
    Outcome {
        code: output.status.code().expect("accolade exits with a code, not a signal"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A demo community of 200 members in a temporary directory.
struct Demo {
    dir: TempDir,
    output: Outcome,
}

impl Demo {
    fn new() -> Demo {
        let dir = tempfile::tempdir().expect("creating a temporary directory for the demo");
        let output = accolade(&["demo", "--dir", path_str(dir.path()), "--users", "200"]);
        assert_eq!(output.code, 0, "demo failed: {}", output.describe());
        Demo { dir, output }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("accolade-demo.toml")
    }

    /// `accolade --config <demo config> args...`
    fn run(&self, args: &[&str]) -> Outcome {
        let config = self.config();
        let mut all = vec!["--config", path_str(&config)];
        all.extend_from_slice(args);
        accolade(&all)
    }

    /// The instant the demo's own run evaluated as of.
    fn as_of(&self) -> String {
        self.output
            .stdout
            .lines()
            .find_map(|line| line.split_once(" as of ").map(|(_, t)| t.trim().to_string()))
            .unwrap_or_else(|| panic!("no 'as of' line: {}", self.output.describe()))
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// The `N` of the summary line `N new awards`.
fn total_new_awards(stdout: &str) -> u64 {
    stdout
        .lines()
        .find_map(|line| line.trim().strip_suffix(" new awards")?.parse().ok())
        .unwrap_or_else(|| panic!("no 'N new awards' line in:\n{stdout}"))
}

/// The rows of an awards CSV export after checking its header: (badge, user, at, source); the
/// last column, the grant, is empty for badges earned once.
fn export_rows(csv: &str) -> Vec<(String, i64, String, String)> {
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("badge_id,user_id,awarded_at,source,grant"), "{csv}");
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 5, "{line}");
            assert_eq!(fields[4], "", "a badge earned once has no grant: {line}");
            let user = fields[1].parse().unwrap_or_else(|_| panic!("user_id is not a number in '{line}'"));
            (fields[0].to_string(), user, fields[2].to_string(), fields[3].to_string())
        })
        .collect()
}

#[test]
fn demo_awards_badges_and_a_second_run_at_the_same_instant_adds_nothing() {
    let demo = Demo::new();
    assert!(total_new_awards(&demo.output.stdout) > 0, "{}", demo.output.describe());

    let second = demo.run(&["run", "--as-of", &demo.as_of()]);

    assert_eq!(second.code, 0, "{}", second.describe());
    assert!(second.stdout.contains("0 new awards"), "{}", second.describe());
    assert_eq!(total_new_awards(&second.stdout), 0);
}

#[test]
fn awards_export_csv_has_a_header_and_rows_sorted_by_badge_then_user() {
    let demo = Demo::new();

    let export = demo.run(&["awards", "export", "--format", "csv"]);

    assert_eq!(export.code, 0, "{}", export.describe());
    let rows = export_rows(&export.stdout);
    assert_eq!(rows.len() as u64, total_new_awards(&demo.output.stdout));
    let keys: Vec<(String, i64)> = rows.iter().map(|r| (r.0.clone(), r.1)).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted, "rows are sorted by badge then user, without repeats");
    let as_of = demo.as_of();
    for (badge, user, awarded_at, source) in &rows {
        assert_eq!(awarded_at, &as_of, "{badge},{user}");
        // The demo's run is every badge's first evaluation: its backfill.
        assert_eq!(source, "backfill", "{badge},{user}");
    }
}

#[test]
fn award_with_an_unknown_member_exits_1_and_names_it() {
    let demo = Demo::new();

    let award = demo.run(&["award", "--badge", "conference-speaker", "--users", "1,2,999999"]);

    assert_eq!(award.code, 1, "{}", award.describe());
    assert!(award.stdout.contains("999999"), "{}", award.describe());
    let export = demo.run(&["awards", "export", "--format", "csv", "--badge", "conference-speaker"]);
    let speakers: Vec<(i64, String)> =
        export_rows(&export.stdout).into_iter().map(|(_, user, _, source)| (user, source)).collect();
    assert_eq!(speakers, vec![(1, "manual".to_string()), (2, "manual".to_string())]);

    let repeat = demo.run(&["award", "--badge", "conference-speaker", "--users", "1,2"]);
    assert_eq!(repeat.code, 0, "{}", repeat.describe());
}

#[test]
fn check_on_the_demo_config_exits_0() {
    let demo = Demo::new();

    let check = demo.run(&["check"]);

    assert_eq!(check.code, 0, "{}", check.describe());
}

#[test]
fn check_on_a_broken_config_exits_non_zero_and_prints_every_problem() {
    let demo = Demo::new();
    let text = std::fs::read_to_string(demo.config()).expect("reading the demo config");
    let broken: String = text
        .replace(r#"timezone = "America/New_York""#, r#"timezone = "Nowhere/Land""#)
        .replace("posted_at AS created_at", "posted_at AS created")
        .lines()
        .filter(|line| !line.starts_with("connections "))
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(broken, text);
    let path = demo.dir.path().join("broken.toml");
    std::fs::write(&path, broken).expect("writing the broken config");

    let check = accolade(&["--config", path_str(&path), "check"]);

    assert_ne!(check.code, 0, "{}", check.describe());
    for fragment in ["Nowhere/Land", "social-butterfly", "networker", "'connections'", "'posts'", "created_at"] {
        assert!(check.stdout.contains(fragment), "{fragment}: {}", check.describe());
    }
}

#[test]
fn run_with_a_garbage_as_of_exits_2() {
    let demo = Demo::new();

    let run = demo.run(&["run", "--as-of", "the day after tomorrow"]);

    assert_eq!(run.code, 2, "{}", run.describe());
    assert!(run.stderr.contains("--as-of"), "{}", run.describe());
}

#[test]
fn a_run_that_refuses_a_changed_published_rule_exits_1_and_names_the_badge() {
    let demo = Demo::new();
    let text = std::fs::read_to_string(demo.config()).expect("reading the demo config");
    let changed =
        text.replace(r#"rule = { type = "posts_sent", min = 10 }"#, r#"rule = { type = "posts_sent", min = 5 }"#);
    assert_ne!(changed, text);
    std::fs::write(demo.config(), changed).expect("rewriting the demo config");

    let run = demo.run(&["run", "--as-of", &demo.as_of()]);

    assert_eq!(run.code, 1, "{}", run.describe());
    assert!(run.stdout.contains("refused"), "{}", run.describe());
    assert!(run.stdout.contains("conversationalist"), "{}", run.describe());
}

// ---------------------------------------------------------------------------------------
// The same community under two schemas
// ---------------------------------------------------------------------------------------

/// A small community with something for every rule type: (id, created_at, blocked).
fn members() -> Vec<(i64, String, bool)> {
    (1..=24)
        .map(|i| {
            let created = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
                .expect("a valid date")
                .and_hms_opt(3, 30, 0)
                .expect("a valid time")
                + chrono::Duration::days((i * 37) % 900);
            (i, created.format("%Y-%m-%d %H:%M:%S").to_string(), i % 7 == 0)
        })
        .collect()
}

/// (user, created_at) rows.
fn posts() -> Vec<(i64, String)> {
    (1..=24)
        .flat_map(|i| (0..i % 5).map(move |k| (i, format!("2026-05-{:02} {:02}:15:00", 1 + k * 7, i % 24))))
        .collect()
}

/// (user, created_at) rows; late evening New York time, so that local and UTC days differ.
fn connections() -> Vec<(i64, String)> {
    (1..=24)
        .filter(|i| i % 3 == 0)
        .flat_map(|i| (0..5).map(move |k| (i, format!("2026-06-{:02} 02:30:00", 1 + i % 4 + k))))
        .collect()
}

/// (user, training, enrolled_at, progress, passed) rows.
fn trainings() -> Vec<(i64, &'static str, String, i64, bool)> {
    (1..=24)
        .filter_map(|i| {
            let enrolled = format!("2026-03-{:02} 12:00:00", 1 + i % 28);
            match i % 4 {
                1 => Some((i, "onboarding", enrolled, 100, true)),
                2 => Some((i, "onboarding", enrolled, 50, false)),
                3 => Some((i, "advanced", enrolled, 100, i % 2 == 1)),
                _ => None,
            }
        })
        .collect()
}

/// `INSERT INTO table (columns) VALUES rows`.
fn insert(table: &str, columns: &str, rows: Vec<String>) -> String {
    format!("INSERT INTO {table} ({columns}) VALUES {};\n", rows.join(", "))
}

fn boolean(value: bool) -> &'static str {
    if value { "TRUE" } else { "FALSE" }
}

/// The community as INSERTs into tables and columns named as the caller says.
fn community_sql(names: &[&str; 4], columns: &[&str; 4]) -> String {
    insert(
        names[0],
        columns[0],
        members().into_iter().map(|(id, at, blocked)| format!("({id}, '{at}', {})", boolean(blocked))).collect(),
    ) + &insert(names[1], columns[1], posts().into_iter().map(|(id, at)| format!("({id}, '{at}')")).collect())
        + &insert(names[2], columns[2], connections().into_iter().map(|(id, at)| format!("({id}, '{at}')")).collect())
        + &insert(
            names[3],
            columns[3],
            trainings()
                .into_iter()
                .map(|(id, training, at, progress, passed)| {
                    format!("({id}, '{training}', '{at}', {progress}, {})", boolean(passed))
                })
                .collect(),
        )
}

const EVERY_RULE: &str = r#"
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
rule = { type = "account_age", min = "1 years" }

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
rule = { type = "training_enrolled", training = "onboarding" }
"#;

/// Runs every rule on `host` through the binary and returns the CSV export.
fn run_and_export(host: &TestHost, sources: &str) -> String {
    let config = host.write_config("accolade.toml", &host.config_in("America/New_York", EVERY_RULE, sources));
    let config = path_str(&config);
    let run = accolade(&["--config", config, "run", "--as-of", "2026-06-15T12:00:00Z"]);
    assert_eq!(run.code, 0, "{}", run.describe());
    let export = accolade(&["--config", config, "awards", "export", "--format", "csv"]);
    assert_eq!(export.code, 0, "{}", export.describe());
    export.stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_data_under_another_schema_mapped_by_aliases_gives_the_same_awards() {
    let canonical = TestHost::new().await;
    canonical.exec(CANONICAL_SCHEMA).await;
    canonical
        .exec(&community_sql(
            &["users", "posts", "connections", "trainings"],
            &[
                "user_id, created_at, blocked",
                "user_id, created_at",
                "user_id, created_at",
                "user_id, training_id, enrolled_at, progress, passed",
            ],
        ))
        .await;

    let aliased = TestHost::new().await;
    aliased
        .exec(
            "CREATE TABLE members (id INTEGER NOT NULL, joined TEXT NOT NULL, is_banned BOOLEAN NOT NULL);
             CREATE TABLE forum_messages (author INTEGER NOT NULL, sent_on TEXT NOT NULL);
             CREATE TABLE friendships (member INTEGER NOT NULL, accepted TEXT NOT NULL);
             CREATE TABLE course_enrollments (member INTEGER NOT NULL, course TEXT NOT NULL, started TEXT, pct INTEGER, ok BOOLEAN);",
        )
        .await;
    aliased
        .exec(&community_sql(
            &["members", "forum_messages", "friendships", "course_enrollments"],
            &["id, joined, is_banned", "author, sent_on", "member, accepted", "member, course, started, pct, ok"],
        ))
        .await;
    let aliased_sources = r#"
users = "SELECT id AS user_id, joined AS created_at, is_banned AS blocked FROM members"
posts = "SELECT author AS user_id, sent_on AS created_at FROM forum_messages"
connections = "SELECT member AS user_id, accepted AS created_at FROM friendships"
trainings = "SELECT member AS user_id, course AS training_id, started AS enrolled_at, pct AS progress, ok AS passed FROM course_enrollments"
"#;

    let expected = run_and_export(&canonical, CANONICAL_SOURCES);
    let got = run_and_export(&aliased, aliased_sources);

    assert_eq!(got, expected);
    let rows = export_rows(&expected);
    let badges: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(badges.len(), 8, "every rule awards someone, so the comparison means something: {expected}");
}

// ---------------------------------------------------------------------------------------
// Runs and awards against a hand-made host
// ---------------------------------------------------------------------------------------

/// A canonical host with members 1..=4 (4 created in 2027) and a config file for it.
async fn small_host(badges: &str) -> (TestHost, PathBuf) {
    let host = TestHost::canonical().await;
    host.add_members(1..=3, "2026-01-01 00:00:00").await;
    host.add_members([4], "2027-01-01 00:00:00").await;
    host.add_events("posts", 1, &["2026-02-01 00:00:00"]).await;
    let config = host.write_config("accolade.toml", &host.config_in("America/New_York", badges, CANONICAL_SOURCES));
    (host, config)
}

const POSTER: &str = "[[badges]]\nid = \"poster\"\nname = \"Poster\"\nrule = { type = \"posts_sent\", min = 1 }\n\n[[badges]]\nid = \"speaker\"\nname = \"Speaker\"\nmanual = true\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_date_given_as_as_of_is_midnight_in_the_evaluation_timezone() {
    let (host, config) = small_host(POSTER).await;

    let run = accolade(&["--config", path_str(&config), "run", "--as-of", "2026-06-15"]);

    assert_eq!(run.code, 0, "{}", run.describe());
    assert!(run.stdout.contains("as of 2026-06-15T04:00:00Z"), "{}", run.describe());
    let awards = host.stored_awards().await;
    assert_eq!(awards.len(), 1);
    assert_eq!(awards[0].awarded_at, "2026-06-15T04:00:00Z");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_from_the_command_line_reports_but_writes_nothing() {
    let (host, config) = small_host(POSTER).await;

    let run = accolade(&["--config", path_str(&config), "run", "--dry-run", "--as-of", "2026-06-15T12:00:00Z"]);

    assert_eq!(run.code, 0, "{}", run.describe());
    assert!(run.stdout.contains("1 new awards"), "{}", run.describe());
    assert!(!host.is_migrated().await, "a dry run creates no tables");
}

#[tokio::test(flavor = "multi_thread")]
async fn award_from_a_file_with_a_header_awards_the_listed_members() {
    let (host, config) = small_host(POSTER).await;
    let file = host.dir().join("speakers.csv");
    std::fs::write(&file, "user_id,name\n2,Ann\n\"3\",Bob\n").expect("writing the id file");

    let award = accolade(&["--config", path_str(&config), "award", "--badge", "speaker", "--file", path_str(&file)]);

    assert_eq!(award.code, 0, "{}", award.describe());
    assert_eq!(host.awards().await, vec![("speaker".to_string(), 2), ("speaker".to_string(), 3)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_whose_source_value_cannot_be_read_exits_1_and_names_source_column_and_value() {
    let (host, config) = small_host(POSTER).await;
    host.add_members([5], "yesterday").await;

    let run = accolade(&["--config", path_str(&config), "run", "--as-of", "2026-06-15T12:00:00Z"]);

    let output = format!("{}{}", run.stdout, run.stderr);
    for fragment in ["users", "created_at", "yesterday"] {
        assert!(output.contains(fragment), "{fragment}: {}", run.describe());
    }
    assert_eq!(host.awards().await, Vec::<(String, i64)>::new());
    assert_eq!(
        run.code,
        1,
        "the run started and failed (exit 1), it did not fail to start (exit 2): {}",
        run.describe()
    );
}

/// The demo writes the image its config names, so its export bakes every award: into that
/// PNG for `social-butterfly`, into the generated SVG for badges without an image.
#[test]
fn the_demos_open_badges_export_bakes_every_award_into_its_badge_image() {
    let demo = Demo::new();
    let image = demo.dir.path().join("images/social.png");
    assert!(std::fs::read(&image).is_ok_and(|b| b.starts_with(b"\x89PNG")), "{}", image.display());
    let out = demo.dir.path().join("ob3");
    let exported = demo.run(&["awards", "export", "--format", "openbadges-v3", "--out", path_str(&out), "--bake"]);
    assert_eq!(exported.code, 0, "{}", exported.describe());
    let line = exported.stdout.lines().find(|l| l.starts_with("wrote ")).expect("a summary line");
    let written: usize = line.split(' ').nth(1).and_then(|n| n.parse().ok()).expect("a count");
    assert!(line.contains(&format!("{written} baked into badge images")), "{line}");
    let social = std::fs::read_dir(out.join("credentials/social-butterfly")).map(|d| d.count()).unwrap_or(0);
    let pngs = std::fs::read_dir(out.join("credentials/social-butterfly"))
        .map(|d| d.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "png")).count())
        .unwrap_or(0);
    assert!(pngs > 0 && social == 2 * pngs, "a PNG beside each social-butterfly credential: {pngs} of {social}");
}
