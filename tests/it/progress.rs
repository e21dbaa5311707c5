//! `accolade progress` and the dashboard's levels, through the real binary on SQLite: each
//! member's value against the next threshold and the next level, the members closest to a
//! badge, and levels listed under their badge.

use crate::support::{TestHost, accolade_binary, at, formula_badge};

const LEVELS: &str = r#"
[[badges]]
id = "commenter"
name = "Commenter"
measure = "count(posts, kind = 'comment')"
levels = [
  { id = "bronze", name = "Bronze Commenter", min = 2, points = 10 },
  { id = "silver", name = "Silver Commenter", min = 4, points = 25 },
  { id = "gold",   name = "Gold Commenter",   min = 6, points = 100 },
]
"#;

/// A host where member 1 wrote 3 comments and a post, member 2 nothing, member 3 seven
/// comments; the levels above and `poster` (5 posts of any kind); one run has awarded them.
async fn host_with_levels() -> (TestHost, std::path::PathBuf) {
    let host = TestHost::for_formulas().await;
    host.add_members(1..=3, "2025-01-01 00:00:00").await;
    let comment = |user: i64, day: u32| format!("{user}, '2026-05-{day:02} 10:00:00', 'comment', NULL");
    let mut rows: Vec<String> = (1..=3).map(|d| comment(1, d)).collect();
    rows.push("1, '2026-05-04 10:00:00', 'post', NULL".to_string());
    rows.extend((1..=7).map(|d| comment(3, d)));
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    host.insert("posts", "user_id, created_at, kind, thread_id", &rows).await;
    let badges = format!("{LEVELS}\n{}", formula_badge("poster", "count(posts) >= 5"));
    let config = host.write_config("accolade.toml", &host.config(&badges, &host.formula_sources()));
    let plan = host.plan(&std::fs::read_to_string(&config).expect("the config"));
    host.run(&plan, at("2026-06-01T00:00:00Z")).await;
    (host, config)
}

fn json(args: &[&str]) -> serde_json::Value {
    let run = accolade_binary(args);
    assert_eq!(run.code, 0, "{}", run.describe());
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.describe()))
}

fn entry<'a>(document: &'a serde_json::Value, badge: &str) -> &'a serde_json::Value {
    document["badges"]
        .as_array()
        .and_then(|all| all.iter().find(|b| b["badge_id"] == badge))
        .unwrap_or_else(|| panic!("no entry for {badge} in {document}"))
}

/// Member 1 (3 comments) holds bronze (2) and is 1 from silver (4); member 3 (7 comments)
/// holds every level and has no next one; the plain badge shows 4 posts of 5.
#[tokio::test(flavor = "multi_thread")]
async fn progress_gives_a_members_value_the_next_threshold_and_the_next_levels_name() {
    let (_host, config) = host_with_levels().await;
    let config = config.to_str().expect("a UTF-8 path");
    let as_of = "2026-06-01T00:00:00Z";
    let one = json(&["progress", "--config", config, "--user", "1", "--as-of", as_of, "--format", "json"]);
    let commenter = entry(&one, "commenter");
    assert_eq!(commenter["value"], 3.0, "{one}");
    assert_eq!(commenter["next_threshold"], 4.0, "{one}");
    assert_eq!(commenter["next_level"], "Silver Commenter", "{one}");
    let held: Vec<bool> = commenter["levels"].as_array().expect("levels").iter().map(|l| l["held"] == true).collect();
    assert_eq!(held, vec![true, false, false], "{one}");
    let poster = entry(&one, "poster");
    assert_eq!((poster["value"].clone(), poster["next_threshold"].clone()), (4.0.into(), 5.0.into()), "{one}");
    assert!(poster["next_level"].is_null(), "a plain badge has no level: {one}");

    let three = json(&["progress", "--config", config, "--user", "3", "--as-of", as_of, "--format", "json"]);
    let commenter = entry(&three, "commenter");
    assert_eq!(commenter["value"], 7.0, "{three}");
    assert!(commenter["next_threshold"].is_null() && commenter["next_level"].is_null(), "all earned: {three}");

    let table = accolade_binary(&["progress", "--config", config, "--user", "1", "--as-of", as_of]);
    assert_eq!(table.code, 0, "{}", table.describe());
    assert!(table.stdout.contains("Silver Commenter"), "{}", table.describe());
    let unknown = accolade_binary(&["progress", "--config", config, "--user", "99", "--as-of", as_of]);
    assert_ne!(unknown.code, 0, "an unknown member is an error: {}", unknown.describe());
    assert!(unknown.stderr.contains("member 99"), "{}", unknown.describe());
}

/// Closest first by what is still needed to the next level: member 1 needs 1 comment for
/// silver, member 2 needs 2 for bronze; member 3 has every level and is not listed.
#[tokio::test(flavor = "multi_thread")]
async fn progress_of_a_badge_lists_the_members_closest_to_its_next_level_first() {
    let (_host, config) = host_with_levels().await;
    let config = config.to_str().expect("a UTF-8 path");
    let as_of = "2026-06-01T00:00:00Z";
    let top = json(&[
        "progress",
        "--config",
        config,
        "--badge",
        "commenter",
        "--top",
        "5",
        "--as-of",
        as_of,
        "--format",
        "json",
    ]);
    let members: Vec<(i64, String, f64)> = top["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            let user = m["user_id"].as_i64().expect("user_id");
            let next = m["next_badge_id"].as_str().expect("next_badge_id").to_string();
            (user, next, m["remaining"].as_f64().expect("remaining"))
        })
        .collect();
    assert_eq!(
        members,
        vec![(1, "commenter.silver".to_string(), 1.0), (2, "commenter.bronze".to_string(), 2.0)],
        "{top}"
    );
    let one = json(&[
        "progress",
        "--config",
        config,
        "--badge",
        "commenter",
        "--top",
        "1",
        "--as-of",
        as_of,
        "--format",
        "json",
    ]);
    assert_eq!(one["members"].as_array().map(Vec::len), Some(1), "--top 1: {one}");
    let manual = accolade_binary(&["progress", "--config", config, "--badge", "nope", "--as-of", as_of]);
    assert_ne!(manual.code, 0, "{}", manual.describe());
    assert!(manual.stderr.contains("--badge nope"), "{}", manual.describe());
}

/// The dashboard lists a badge with levels on its own line, then each level under it with its
/// threshold and recipients.
#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_lists_levels_under_their_badge_with_their_recipients() {
    let (_host, config) = host_with_levels().await;
    let run = accolade_binary(&["badges", "--config", config.to_str().expect("a UTF-8 path")]);
    assert_eq!(run.code, 0, "{}", run.describe());
    let lines: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("| commenter")).collect();
    assert_eq!(lines.len(), 4, "{}", run.stdout);
    assert!(lines[0].contains("levels (3)"), "{}", run.stdout);
    let recipients: Vec<&str> =
        lines[1..].iter().map(|l| l.trim_end_matches('|').rsplit('|').next().unwrap_or("").trim()).collect();
    assert_eq!(recipients, vec!["2", "1", "1"], "bronze: members 1 and 3; silver and gold: member 3\n{}", run.stdout);
    assert!(lines[1].contains("Bronze Commenter (from 2)"), "{}", run.stdout);
}
