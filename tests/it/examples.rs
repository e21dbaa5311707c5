//! `config/examples/discourse.toml` end to end on Discourse's own tables (their real column
//! names and types, the columns the example reads and a few it must ignore), on SQLite,
//! PostgreSQL and MariaDB: a small forum whose members sit on each side of every badge's
//! boundary, and the exact awards Discourse's matching built-in badges would give.

use crate::support::{Backend, TestHost, at, pairs, use_backend};

/// Discourse's tables as the example reads them; `TSTYPE` is the backend's timestamp type.
const DISCOURSE_SCHEMA: &str = "
CREATE TABLE users (
    id INTEGER NOT NULL PRIMARY KEY,
    username VARCHAR(60) NOT NULL,
    username_lower VARCHAR(60) NOT NULL,
    created_at TSTYPE NOT NULL,
    updated_at TSTYPE NOT NULL,
    active BOOLEAN NOT NULL,
    admin BOOLEAN NOT NULL,
    moderator BOOLEAN,
    trust_level INTEGER NOT NULL,
    staged BOOLEAN NOT NULL,
    suspended_at TSTYPE,
    suspended_till TSTYPE,
    silenced_till TSTYPE,
    uploaded_avatar_id INTEGER,
    locale VARCHAR(10)
);
CREATE TABLE topics (
    id INTEGER NOT NULL PRIMARY KEY,
    title VARCHAR(255) NOT NULL,
    user_id INTEGER,
    created_at TSTYPE NOT NULL,
    updated_at TSTYPE NOT NULL,
    archetype VARCHAR(255) NOT NULL,
    visible BOOLEAN NOT NULL,
    category_id INTEGER,
    deleted_at TSTYPE
);
CREATE TABLE posts (
    id INTEGER NOT NULL PRIMARY KEY,
    user_id INTEGER,
    topic_id INTEGER NOT NULL,
    post_number INTEGER NOT NULL,
    raw TEXT NOT NULL,
    created_at TSTYPE NOT NULL,
    updated_at TSTYPE NOT NULL,
    deleted_at TSTYPE,
    like_count INTEGER NOT NULL,
    post_type INTEGER NOT NULL,
    hidden BOOLEAN NOT NULL,
    self_edits INTEGER NOT NULL
);
CREATE TABLE post_actions (
    id INTEGER NOT NULL PRIMARY KEY,
    post_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    post_action_type_id INTEGER NOT NULL,
    deleted_at TSTYPE,
    created_at TSTYPE NOT NULL,
    updated_at TSTYPE NOT NULL
);
CREATE TABLE user_visits (
    id INTEGER NOT NULL PRIMARY KEY,
    user_id INTEGER NOT NULL,
    visited_at DATE NOT NULL,
    posts_read INTEGER,
    mobile BOOLEAN,
    time_read INTEGER NOT NULL
);
CREATE TABLE groups (
    id INTEGER NOT NULL PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    automatic BOOLEAN NOT NULL
);
CREATE TABLE group_users (
    id INTEGER NOT NULL PRIMARY KEY,
    group_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    owner BOOLEAN NOT NULL
);
CREATE TABLE user_profiles (
    user_id INTEGER NOT NULL PRIMARY KEY,
    location VARCHAR(3000),
    website VARCHAR(3000),
    bio_raw TEXT,
    bio_cooked TEXT
);
CREATE TABLE user_custom_fields (
    id INTEGER NOT NULL PRIMARY KEY,
    user_id INTEGER NOT NULL,
    name VARCHAR(256) NOT NULL,
    value TEXT,
    created_at TSTYPE NOT NULL,
    updated_at TSTYPE NOT NULL
);
";

/// The example config with this host's database as both host and awards database.
fn example_config(host: &TestHost) -> String {
    let text = include_str!("../../config/examples/discourse.toml");
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("url = ") {
            out.push_str(&format!("url = \"{}\"\n", host.url()));
        } else if !line.starts_with("awards_url = ") {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A small forum at 2026-06-15 12:00 UTC. Members:
/// 1: trust 4, avatar and bio, visited 10 days in a row across May's end, liked 2's post,
///    started a topic in April (and edited it), a member since January 2025.
/// 2: trust 2, visited 9 days in a row (one short), replied in May and got 1's like; a deleted
///    post of theirs was edited and liked.
/// 3: trust 1, silenced; liked only a deleted post, and took back a like.
/// 4: trust 3, avatar but a blank bio, last posted in March 2025 (over a year ago).
/// 6: trust 0, avatar and bio, no posts.
/// 7: staged; -1: the system user (both ignored).
async fn forum() -> TestHost {
    let host = TestHost::new().await;
    host.exec(&DISCOURSE_SCHEMA.replace("TSTYPE", host.native_timestamp_type())).await;
    let ts = |t: &str| host.native_timestamp(t);
    let user = |id: i64, created: &str, trust: i64, staged: bool, silenced: Option<&str>, avatar: bool| {
        format!(
            "{id}, 'u{id}', 'u{id}', {c}, {c}, TRUE, FALSE, FALSE, {trust}, {staged}, NULL, NULL, {s}, {a}, 'en'",
            c = ts(created),
            s = silenced.map_or("NULL".to_string(), &ts),
            a = if avatar { "7" } else { "NULL" },
        )
    };
    let users = [
        user(1, "2025-01-10T08:00:00Z", 4, false, None, true),
        user(2, "2025-02-01T08:00:00Z", 2, false, None, false),
        user(3, "2026-01-01T08:00:00Z", 1, false, Some("2999-01-01T00:00:00Z"), false),
        user(4, "2024-06-01T08:00:00Z", 3, false, None, true),
        user(6, "2025-03-01T08:00:00Z", 0, false, None, true),
        user(7, "2024-01-01T08:00:00Z", 4, true, None, true),
        user(-1, "2024-01-01T00:00:00Z", 4, false, None, true),
    ];
    let rows: Vec<&str> = users.iter().map(String::as_str).collect();
    host.insert(
        "users",
        "id, username, username_lower, created_at, updated_at, active, admin, moderator, trust_level, staged, \
         suspended_at, suspended_till, silenced_till, uploaded_avatar_id, locale",
        &rows,
    )
    .await;
    let topic = format!("10, 'Welcome', 1, {t}, {t}, 'regular', TRUE, 4, NULL", t = ts("2026-04-01T10:00:00Z"));
    host.insert(
        "topics",
        "id, title, user_id, created_at, updated_at, archetype, visible, category_id, deleted_at",
        &[&topic],
    )
    .await;
    let post = |id: i64, user: i64, number: i64, created: &str, deleted: Option<&str>, edits: i64| {
        format!(
            "{id}, {user}, 10, {number}, 'text', {c}, {c}, {d}, 0, 1, FALSE, {edits}",
            c = ts(created),
            d = deleted.map_or("NULL".to_string(), &ts),
        )
    };
    let posts = [
        post(10, 1, 1, "2026-04-01T10:00:00Z", None, 1),
        post(20, 2, 2, "2026-05-01T10:00:00Z", None, 0),
        post(21, 2, 3, "2026-05-02T10:00:00Z", Some("2026-05-03T10:00:00Z"), 2),
        post(30, 4, 4, "2025-03-01T10:00:00Z", None, 0),
        // A post by the system user.
        post(40, -1, 5, "2026-05-01T10:00:00Z", None, 1),
    ];
    let rows: Vec<&str> = posts.iter().map(String::as_str).collect();
    host.insert(
        "posts",
        "id, user_id, topic_id, post_number, raw, created_at, updated_at, deleted_at, like_count, post_type, hidden, \
         self_edits",
        &rows,
    )
    .await;
    let action = |id: i64, post: i64, user: i64, kind: i64, deleted: Option<&str>| {
        format!(
            "{id}, {post}, {user}, {kind}, {d}, {c}, {c}",
            d = deleted.map_or("NULL".to_string(), &ts),
            c = ts("2026-05-02T12:00:00Z"),
        )
    };
    let actions = [
        action(1, 20, 1, 2, None),                         // 1 likes 2's reply
        action(2, 21, 3, 2, None),                         // 3 likes 2's deleted post
        action(3, 10, 3, 2, Some("2026-05-05T12:00:00Z")), // 3 takes back a like of 1's topic
        action(4, 10, 4, 3, None),                         // 4 bookmarks 1's topic: not a like
    ];
    let rows: Vec<&str> = actions.iter().map(String::as_str).collect();
    host.insert("post_actions", "id, post_id, user_id, post_action_type_id, deleted_at, created_at, updated_at", &rows)
        .await;
    let mut visits = Vec::new();
    // 1: May 27 to June 5, 10 days; 2: May 1 to 9 (9 days), then May 11.
    let days_1 = (27..=31).map(|d| format!("2026-05-{d:02}")).chain((1..=5).map(|d| format!("2026-06-{d:02}")));
    let days_2 = (1..=9).chain([11]).map(|d| format!("2026-05-{d:02}"));
    for (user, day) in days_1.map(|d| (1, d)).chain(days_2.map(|d| (2, d))) {
        visits.push(format!("{}, {user}, '{day}', 3, FALSE, 60", visits.len() + 1));
    }
    let rows: Vec<&str> = visits.iter().map(String::as_str).collect();
    host.insert("user_visits", "id, user_id, visited_at, posts_read, mobile, time_read", &rows).await;
    host.insert("groups", "id, name, automatic", &["1, 'admins', TRUE"]).await;
    host.insert("group_users", "id, group_id, user_id, owner", &["1, 1, 1, FALSE"]).await;
    host.insert(
        "user_profiles",
        "user_id, location, website, bio_raw, bio_cooked",
        &[
            "1, NULL, NULL, 'I have run this forum since 2019.', NULL",
            "4, NULL, NULL, '   ', NULL",
            "6, NULL, NULL, 'Hello there, I am six.', NULL",
        ],
    )
    .await;
    let field = format!("1, 1, 'user_field_1', 'Berlin', {t}, {t}", t = ts("2025-05-01T10:00:00Z"));
    host.insert("user_custom_fields", "id, user_id, name, value, created_at, updated_at", &[&field]).await;
    host
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn the_discourse_example_gives_discourses_badges_on_discourses_own_tables(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = forum().await;
    let plan = host.plan(&example_config(&host));

    let report = host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert!(report.badges.iter().all(|b| b.status == "evaluated"), "{:#?}", report.badges);
    assert_eq!(
        host.awards().await,
        pairs(&[
            ("anniversary", 1),
            ("anniversary", 2),
            ("autobiographer", 1),
            ("autobiographer", 6),
            ("basic-user", 1),
            ("basic-user", 2),
            ("basic-user", 3),
            ("basic-user", 4),
            ("editor", 1),
            ("enthusiast", 1),
            ("first-like", 1),
            ("leader", 1),
            ("member", 1),
            ("member", 2),
            ("member", 4),
            ("regular", 1),
            ("regular", 4),
            ("welcome", 2),
        ])
    );
}
