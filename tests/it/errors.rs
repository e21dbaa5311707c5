//! Problems a user must be told about: `check` reports every config and source problem at
//! once, each naming its badge or source; a source value that cannot be read fails the run
//! naming the source, the column and the value.

use crate::support::{CANONICAL_SOURCES, TestHost, at, badge, pairs};
use accolade::commands::check::problems;

/// The problems `check` finds in `config`, written to a file next to the host.
async fn check(host: &TestHost, config: &str) -> Vec<String> {
    let path = host.write_config("accolade.toml", config);
    problems(&path).await
}

/// Asserts that one problem mentions every fragment.
fn assert_reported(problems: &[String], fragments: &[&str]) {
    assert!(
        problems.iter().any(|p| fragments.iter().all(|f| p.contains(f))),
        "no problem mentions all of {fragments:?}; problems:\n{}",
        problems.join("\n")
    );
}

fn poster() -> String {
    badge("poster", r#"{ type = "posts_sent", min = 1 }"#)
}

#[tokio::test(flavor = "multi_thread")]
async fn check_finds_no_problem_in_a_good_config() {
    let host = TestHost::canonical().await;
    let config = host.config(&poster(), CANONICAL_SOURCES);

    assert_eq!(check(&host, &config).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_every_problem_at_once() {
    let host = TestHost::canonical().await;
    let config = format!(
        r#"
[database]
url = "{url}"

[evaluation]
timezone = "Mars/Olympus_Mons"

[sources]
posts = "SELECT user_id FROM posts"
trainings = "SELEC user_id FROM trainings"
comments = "SELECT user_id, created_at FROM posts"

[[badges]]
id = "poster"
name = "Poster"
rule = {{ type = "posts_sent", min = 1 }}

[[badges]]
id = "poster"
name = "Poster again"
rule = {{ type = "posts_sent", min = 2 }}

[[badges]]
id = "butterfly"
name = "Butterfly"
rule = {{ type = "social_connections", min = 5, period = "week" }}

[[badges]]
id = "typo"
name = "Typo"
rule = {{ type = "posts_sent", min = 1, minimum = 3 }}

[[badges]]
id = "someday"
name = "Someday"
activity_since = "last tuesday"
rule = {{ type = "posts_sent", min = 1 }}
"#,
        url = host.url()
    );

    let problems = check(&host, &config).await;

    assert_reported(&problems, &["timezone", "Mars/Olympus_Mons"]);
    assert_reported(&problems, &["comments", "not a source"]);
    assert_reported(&problems, &["users", "required"]);
    assert_reported(&problems, &["'poster'", "unique"]);
    assert_reported(&problems, &["'butterfly'", "'connections'"]);
    assert_reported(&problems, &["'typo'", "minimum"]);
    assert_reported(&problems, &["'someday'", "activity_since"]);
    assert_reported(&problems, &["'posts'", "created_at"]);
    assert_reported(&problems, &["'trainings'"]);
    assert!(problems.len() >= 9, "{problems:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_names_an_unknown_source_key() {
    let host = TestHost::canonical().await;
    let sources = format!("{CANONICAL_SOURCES}\nfriendships = \"SELECT user_id, created_at FROM connections\"");
    let problems = check(&host, &host.config(&poster(), &sources)).await;

    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_reported(&problems, &["'friendships'", "not a source"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_names_the_badge_and_the_source_it_needs_but_lacks() {
    let host = TestHost::canonical().await;
    let sources = r#"
users = "SELECT user_id, created_at, blocked FROM users"
posts = "SELECT user_id, created_at FROM posts"
"#;
    let badges = poster() + &badge("butterfly", r#"{ type = "social_connections", min = 5, period = "week" }"#);

    let problems = check(&host, &host.config(&badges, sources)).await;

    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_reported(&problems, &["badge 'butterfly'", "source 'connections'"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_duplicate_badge_ids() {
    let host = TestHost::canonical().await;
    let badges = poster() + &badge("poster", r#"{ type = "posts_sent", min = 5 }"#);

    let problems = check(&host, &host.config(&badges, CANONICAL_SOURCES)).await;

    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_reported(&problems, &["badge 'poster'", "unique"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_rejects_badge_ids_that_would_step_out_of_an_export_directory() {
    let host = TestHost::canonical().await;
    let badges =
        badge("..", r#"{ type = "posts_sent", min = 1 }"#) + &badge("a/b", r#"{ type = "posts_sent", min = 1 }"#);

    let problems = check(&host, &host.config(&badges, CANONICAL_SOURCES)).await;

    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert_reported(&problems, &["badge '..'", "with a letter or digit"]);
    assert_reported(&problems, &["badge 'a/b'", "letters, digits"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_rejects_a_timezone_that_is_not_an_iana_name() {
    let host = TestHost::canonical().await;
    let config = host.config_in("Eastern Standard Time", &poster(), CANONICAL_SOURCES);

    let problems = check(&host, &config).await;

    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_reported(&problems, &["timezone", "Eastern Standard Time"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_requires_a_users_source() {
    let host = TestHost::canonical().await;
    let sources = r#"posts = "SELECT user_id, created_at FROM posts""#;

    let problems = check(&host, &host.config(&poster(), sources)).await;

    assert_reported(&problems, &["[sources] users", "required"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_rejects_an_unknown_field_in_a_rule() {
    let host = TestHost::canonical().await;
    let badges = badge("poster", r#"{ type = "posts_sent", min = 1, period = "week" }"#);

    let problems = check(&host, &host.config(&badges, CANONICAL_SOURCES)).await;

    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_reported(&problems, &["badge 'poster'", "period"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_rejects_an_unknown_field_in_a_badge() {
    let host = TestHost::canonical().await;
    let badges = "[[badges]]\nid = \"poster\"\nname = \"Poster\"\npoints = 5\nactivty_since = \"2026-01-01\"\nrule = { type = \"posts_sent\", min = 1 }\n";

    let problems = check(&host, &host.config(badges, CANONICAL_SOURCES)).await;

    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_reported(&problems, &["badge 'poster'", "activty_since"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_names_the_source_and_the_column_a_query_lacks() {
    let host = TestHost::canonical().await;
    let sources = r#"
users = "SELECT user_id, created_at FROM users"
posts = "SELECT user_id, created_at FROM posts"
"#;

    let problems = check(&host, &host.config(&poster(), sources)).await;

    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_reported(&problems, &["source 'users'", "blocked"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_a_query_with_a_syntax_error() {
    let host = TestHost::canonical().await;
    let sources = r#"
users = "SELECT user_id, created_at, blocked FROM users"
posts = "SELECT user_id, created_at FROM posts WHERE"
"#;

    let problems = check(&host, &host.config(&poster(), sources)).await;

    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_reported(&problems, &["source 'posts'"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_a_query_on_a_table_that_does_not_exist() {
    let host = TestHost::canonical().await;
    let sources = r#"
users = "SELECT user_id, created_at, blocked FROM users"
posts = "SELECT user_id, created_at FROM forum_posts"
"#;

    let problems = check(&host, &host.config(&poster(), sources)).await;

    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_reported(&problems, &["source 'posts'", "forum_posts"]);
}

// ---------------------------------------------------------------------------------------
// Values that cannot be read fail the badges that read them
// ---------------------------------------------------------------------------------------

/// Runs the poster badge with `sources`, expects the badge to fail, and returns its message.
async fn failing_run(host: &TestHost, sources: &str) -> String {
    let plan = host.plan(&host.config(&poster(), sources));
    let report = host.run(&plan, at("2026-06-15T12:00:00Z")).await;
    assert_eq!(crate::support::status(&report, "poster"), "failed", "{report:?}");
    assert_eq!(host.awards().await, pairs(&[]), "a failed badge awards nothing");
    report.badges.iter().find_map(|b| b.message.clone()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_timestamp_fails_the_run_naming_source_column_and_value() {
    let host = TestHost::canonical().await;
    host.add_members([1], "2026-01-01 00:00:00").await;
    host.add_members([2], "yesterday").await;
    host.add_events("posts", 1, &["2026-02-01 00:00:00"]).await;

    let message = failing_run(&host, CANONICAL_SOURCES).await;

    for fragment in ["users", "created_at", "yesterday"] {
        assert!(message.contains(fragment), "{fragment}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_boolean_fails_the_run_naming_source_column_and_value() {
    let host = TestHost::new().await;
    host.exec(
        "CREATE TABLE users (user_id INTEGER NOT NULL, created_at TEXT NOT NULL, blocked TEXT NOT NULL);
         CREATE TABLE posts (user_id INTEGER NOT NULL, created_at TEXT NOT NULL);
         INSERT INTO users (user_id, created_at, blocked) VALUES
            (1, '2026-01-01 00:00:00', 'false'), (2, '2026-01-01 00:00:00', 'perhaps');
         INSERT INTO posts (user_id, created_at) VALUES (1, '2026-02-01 00:00:00');",
    )
    .await;
    let sources = r#"
users = "SELECT user_id, created_at, blocked FROM users"
posts = "SELECT user_id, created_at FROM posts"
"#;

    let message = failing_run(&host, sources).await;

    for fragment in ["users", "blocked", "perhaps"] {
        assert!(message.contains(fragment), "{fragment}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_member_id_fails_the_run_naming_source_column_and_value() {
    let host = TestHost::new().await;
    host.exec(
        "CREATE TABLE users (user_id INTEGER NOT NULL, created_at TEXT NOT NULL, blocked BOOLEAN NOT NULL);
         CREATE TABLE posts (author TEXT NOT NULL, created_at TEXT NOT NULL);
         INSERT INTO users (user_id, created_at, blocked) VALUES (1, '2026-01-01 00:00:00', FALSE);
         INSERT INTO posts (author, created_at) VALUES ('1', '2026-02-01 00:00:00'), ('alice', '2026-02-01 00:00:00');",
    )
    .await;
    let sources = r#"
users = "SELECT user_id, created_at, blocked FROM users"
posts = "SELECT author AS user_id, created_at FROM posts"
"#;

    let message = failing_run(&host, sources).await;

    for fragment in ["posts", "user_id", "alice"] {
        assert!(message.contains(fragment), "{fragment}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_null_in_a_required_column_fails_the_run_naming_source_and_column() {
    let host = TestHost::new().await;
    host.exec(
        "CREATE TABLE users (user_id INTEGER NOT NULL, created_at TEXT NOT NULL, blocked BOOLEAN NOT NULL);
         CREATE TABLE posts (user_id INTEGER NOT NULL, created_at TEXT);
         INSERT INTO users (user_id, created_at, blocked) VALUES (1, '2026-01-01 00:00:00', FALSE);
         INSERT INTO posts (user_id, created_at) VALUES (1, '2026-02-01 00:00:00'), (1, NULL);",
    )
    .await;
    let sources = r#"
users = "SELECT user_id, created_at, blocked FROM users"
posts = "SELECT user_id, created_at FROM posts"
"#;

    let message = failing_run(&host, sources).await;

    for fragment in ["posts", "created_at", "NULL"] {
        assert!(message.contains(fragment), "{fragment}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_query_lacking_a_required_column_fails_the_run_naming_source_and_column() {
    let host = TestHost::canonical().await;
    host.add_members([1], "2026-01-01 00:00:00").await;
    let sources = r#"
users = "SELECT user_id, created_at, blocked FROM users"
posts = "SELECT user_id FROM posts"
"#;

    let message = failing_run(&host, sources).await;

    for fragment in ["posts", "created_at"] {
        assert!(message.contains(fragment), "{fragment}: {message}");
    }
}
