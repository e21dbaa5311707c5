//! `explain`: for one member, each badge's criterion with a tick or a cross and the member's
//! own values in plain words: a formula as its tree (AND, OR, NOT and clauses, each node with
//! its own outcome), a rule as its check; from the library call and from the command line, as
//! text and as JSON, on every backend.
//!
//! The evaluation timezone is America/New_York: instants are shown in it (June is EDT).

use crate::support::{Backend, TestHost, accolade_binary, at, badge, formula_badge, formula_badge_since, use_backend};
use accolade::config::plan::Plan;
use accolade::evaluate::{BadgeExplanation, CheckOutcome, NodeOutcome};

const NEW_YORK: &str = "America/New_York";
const AS_OF: &str = "2026-06-15T12:00:00Z";

/// A check as explain reports it.
fn check(label: &str, pass: bool, values: &[(&str, &str)]) -> NodeOutcome {
    NodeOutcome::Check(CheckOutcome {
        label: label.to_string(),
        pass,
        values: values.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
    })
}

fn all(pass: bool, children: Vec<NodeOutcome>) -> NodeOutcome {
    NodeOutcome::All { pass, children }
}

fn any(pass: bool, children: Vec<NodeOutcome>) -> NodeOutcome {
    NodeOutcome::Any { pass, children }
}

fn not(pass: bool, child: NodeOutcome) -> NodeOutcome {
    NodeOutcome::Not { pass, child: Box::new(child) }
}

fn explanation(badge_id: &str, qualifies: bool, tree: NodeOutcome) -> BadgeExplanation {
    BadgeExplanation { badge_id: badge_id.to_string(), grant: String::new(), qualifies, tree }
}

/// Member 7 (registered 2025-06-15 08:00 EDT, an Expert with one accepted solution, a
/// location, a changed avatar, two sign-ins on consecutive days in May, two posts and two
/// connections in the week of Monday 2026-06-08), member 8 (registered, nothing else) and
/// member 9 (registered after the evaluation instant).
async fn community() -> TestHost {
    let host = TestHost::for_formulas().await;
    host.insert(
        "users",
        "user_id, created_at, blocked, avatar_changed",
        &[
            "7, '2025-06-15 12:00:00', FALSE, TRUE",
            "8, '2026-01-01 00:00:00', FALSE, NULL",
            "9, '2026-06-15 12:00:01', FALSE, TRUE",
        ],
    )
    .await;
    host.insert("counters", "user_id, counter, amount", &["7, 'net_accepted_solutions', 1"]).await;
    host.insert("member_roles", "user_id, role", &["7, 'Expert'", "9, 'Expert'"]).await;
    host.insert("profile_settings", "user_id, setting_key, setting_value", &["7, 'profile.location', 'Lisbon'"]).await;
    host.add_events("sign_ins", 7, &["2026-05-01 12:00:00", "2026-05-02 12:00:00"]).await;
    host.add_events("posts", 7, &["2026-05-20 12:00:00", "2026-06-02 12:00:00"]).await;
    host.add_events("connections", 7, &["2026-06-02 12:00:00", "2026-06-09 12:00:00", "2026-06-10 12:00:00"]).await;
    host
}

fn badges() -> String {
    formula_badge("expert", "metric.net_accepted_solutions >= 3 AND roles in ['Expert']")
        + &formula_badge("profile", "setting.profile.location != 'default' AND avatar_changed = true")
        + &formula_badge("regular", "setting.user.max_consecutive_logins >= 2 OR signin_date >= '2026-06-01'")
        + &formula_badge("veteran", "NOT time_since_registration < '1 years' AND registration_date < '2026'")
        + &formula_badge("listed", "user_id in [7, 8] AND metric.posts.question >= 1")
        + &formula_badge_since("recent-poster", "metric.posts >= 2", "2026-06-01")
        + &badge("butterfly", r#"{ type = "social_connections", min = 3, period = "week" }"#)
}

fn plan(host: &TestHost) -> Plan {
    host.plan(&host.config_waiting(NEW_YORK, &badges(), &host.formula_sources()))
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn explain_gives_every_clause_with_its_outcome_and_the_members_value(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = community().await;

    let explained = host.explain(&plan(&host), 7, at(AS_OF)).await.expect("7 is a member");

    assert_eq!(
        explained,
        vec![
            explanation(
                "expert",
                false,
                all(
                    false,
                    vec![
                        check("have a net_accepted_solutions of at least 3", false, &[("net_accepted_solutions", "1")]),
                        check("have the role \"Expert\"", true, &[("has the role", "yes")]),
                    ]
                )
            ),
            explanation(
                "profile",
                true,
                all(
                    true,
                    vec![
                        check(
                            "have their profile.location setting set to a non-empty value other than \"default\"",
                            true,
                            &[("profile.location setting", "\"Lisbon\"")]
                        ),
                        check("have changed their avatar", true, &[("avatar changed", "yes")]),
                    ]
                )
            ),
            explanation(
                "regular",
                true,
                any(
                    true,
                    vec![
                        check(
                            "have signed in on at least 2 consecutive days",
                            true,
                            &[("most consecutive days signed in", "2")]
                        ),
                        check(
                            "have signed in on or after 2026-06-01",
                            false,
                            &[("last sign-in", "2026-05-02 08:00:00 EDT")]
                        ),
                    ]
                )
            ),
            // The clause under NOT fails (a year is reached exactly at as_of), so NOT holds.
            explanation(
                "veteran",
                true,
                all(
                    true,
                    vec![
                        not(
                            true,
                            check(
                                "have been members for less than 1 year",
                                false,
                                &[("member for", "1 year (since 2025-06-15 08:00:00 EDT)")]
                            )
                        ),
                        check("registered before 2026-01-01", true, &[("registered", "2025-06-15 08:00:00 EDT")]),
                    ]
                )
            ),
            explanation(
                "listed",
                false,
                all(
                    false,
                    vec![
                        check("are one of the 2 members listed by id", true, &[("listed", "yes")]),
                        check(
                            "have written at least 1 post of kind \"question\"",
                            false,
                            &[("posts of kind \"question\"", "0")]
                        ),
                    ]
                )
            ),
            // Only the post of 2026-06-02 is since 2026-06-01.
            explanation(
                "recent-poster",
                false,
                check("have written at least 2 posts or comments", false, &[("posts and comments", "1")])
            ),
            explanation(
                "butterfly",
                false,
                check(
                    "have made at least 3 connections within one calendar week",
                    false,
                    &[("best week", "2 connections (week of 2026-06-08)")]
                )
            ),
        ]
    );
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn explain_says_in_plain_words_that_a_member_has_no_setting_sign_in_or_connections(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = community().await;

    let explained = host.explain(&plan(&host), 8, at(AS_OF)).await.expect("8 is a member");

    let values = |badge_id: &str| -> Vec<Vec<(String, String)>> {
        let badge = explained.iter().find(|b| b.badge_id == badge_id).expect("every badge is explained");
        badge.checks().iter().map(|c| c.values.clone()).collect()
    };
    let pairs = |items: &[&[(&str, &str)]]| -> Vec<Vec<(String, String)>> {
        items.iter().map(|vs| vs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()).collect()
    };
    assert_eq!(values("expert"), pairs(&[&[("net_accepted_solutions", "0")], &[("has the role", "no")]]));
    assert_eq!(values("profile"), pairs(&[&[("profile.location setting", "not set")], &[("avatar changed", "no")]]));
    assert_eq!(values("regular"), pairs(&[&[("most consecutive days signed in", "0")], &[("last sign-in", "never")]]));
    assert_eq!(values("butterfly"), pairs(&[&[("best week", "no connections yet")]]));
    assert!(explained.iter().all(|b| !b.qualifies), "{explained:#?}");
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn explain_returns_none_for_an_unknown_id_and_for_a_member_created_after_as_of(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = community().await;
    let plan = plan(&host);

    assert_eq!(host.explain(&plan, 99, at(AS_OF)).await, None);
    assert_eq!(host.explain(&plan, 9, at(AS_OF)).await, None);
    assert!(host.explain(&plan, 9, at("2026-06-15T12:00:01Z")).await.is_some());
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn explain_render_shows_a_formula_as_a_tree_with_each_nodes_outcome(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = community().await;
    let plan = plan(&host);
    let explained = host.explain(&plan, 7, at(AS_OF)).await;
    let badges: Vec<_> = plan.badges.iter().collect();

    let text = accolade::commands::explain::render(&plan, &badges, 7, at(AS_OF), &[], explained.as_ref());

    assert!(text.starts_with("member 7 as of 2026-06-15T12:00:00Z (America/New_York)\n"), "{text}");
    let expert = "\nexpert (expert, published)\n  not held\n\
                  \x20 ✗ all of:\n\
                  \x20     ✗ have a net_accepted_solutions of at least 3 — net_accepted_solutions: 1\n\
                  \x20     ✓ have the role \"Expert\" — has the role: yes\n\
                  \x20 → does not qualify\n";
    assert!(text.contains(expert), "no block {expert:?} in:\n{text}");
    let veteran = "\nveteran (veteran, published)\n  not held\n\
                   \x20 ✓ all of:\n\
                   \x20     ✓ not:\n\
                   \x20         ✗ have been members for less than 1 year — member for: 1 year (since 2025-06-15 08:00:00 EDT)\n\
                   \x20     ✓ registered before 2026-01-01 — registered: 2025-06-15 08:00:00 EDT\n\
                   \x20 → qualifies\n";
    assert!(text.contains(veteran), "no block {veteran:?} in:\n{text}");
    assert!(text.contains("  ✓ any of:\n      ✓ have signed in on at least 2 consecutive days"), "{text}");
    assert!(
        text.contains(
            "recent-poster (recent-poster, published)\n  not held\n  counts activity since 2026-06-01T04:00:00Z\n  \
             ✗ have written at least 2 posts or comments — posts and comments: 1\n  → does not qualify\n"
        ),
        "{text}"
    );
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn explain_render_keeps_a_rule_as_a_flat_check_with_its_values_in_words(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = community().await;
    let plan = plan(&host);
    let badges: Vec<_> = plan.badges.iter().collect();

    let seven = host.explain(&plan, 7, at(AS_OF)).await;
    let eight = host.explain(&plan, 8, at(AS_OF)).await;

    let seven = accolade::commands::explain::render(&plan, &badges, 7, at(AS_OF), &[], seven.as_ref());
    let eight = accolade::commands::explain::render(&plan, &badges, 8, at(AS_OF), &[], eight.as_ref());
    let butterfly = "\nbutterfly (butterfly, published)\n  not held\n  \
                     ✗ have made at least 3 connections within one calendar week — best week: ";
    assert!(
        seven.contains(&format!("{butterfly}2 connections (week of 2026-06-08)\n  → does not qualify\n")),
        "{seven}"
    );
    assert!(eight.contains(&format!("{butterfly}no connections yet\n  → does not qualify\n")), "{eight}");
    assert!(eight.contains("      ✗ have signed in on or after 2026-06-01 — last sign-in: never\n"), "{eight}");
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn explain_tree_outcomes_agree_with_the_awards_a_run_gives(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = community().await;
    let plan = plan(&host);
    host.run(&plan, at(AS_OF)).await;

    for user_id in [7, 8] {
        let explained = host.explain(&plan, user_id, at(AS_OF)).await.expect("a member");
        for badge in &explained {
            let awarded = host.holders(&badge.badge_id).await.contains(&user_id);
            assert_eq!(badge.tree.pass(), badge.qualifies, "{user_id} {badge:#?}");
            assert_eq!(badge.qualifies, awarded, "member {user_id}, badge {}", badge.badge_id);
            assert_groups_follow_their_children(&badge.tree);
        }
    }
}

/// Each AND, OR and NOT node's outcome (computed by Polars) is its children's, combined.
fn assert_groups_follow_their_children(node: &NodeOutcome) {
    let expected = match node {
        NodeOutcome::All { children, .. } => children.iter().all(NodeOutcome::pass),
        NodeOutcome::Any { children, .. } => children.iter().any(NodeOutcome::pass),
        NodeOutcome::Not { child, .. } => !child.pass(),
        NodeOutcome::Check(_) => return,
    };
    assert_eq!(node.pass(), expected, "{node:#?}");
    match node {
        NodeOutcome::All { children, .. } | NodeOutcome::Any { children, .. } => {
            children.iter().for_each(assert_groups_follow_their_children)
        }
        NodeOutcome::Not { child, .. } => assert_groups_follow_their_children(child),
        NodeOutcome::Check(_) => {}
    }
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn explain_from_the_command_line_shows_held_badges_clauses_values_and_the_best_week(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = community().await;
    let path = host.write_config("accolade.toml", &host.config_waiting(NEW_YORK, &badges(), &host.formula_sources()));
    let config = path.to_str().expect("UTF-8 path");
    let run = accolade_binary(&["--config", config, "run", "--as-of", AS_OF]);
    assert_eq!(run.code, 0, "{}", run.describe());

    let out = accolade_binary(&["--config", config, "explain", "--user", "7", "--as-of", AS_OF]);

    assert_eq!(out.code, 0, "{}", out.describe());
    let text = &out.stdout;
    assert!(text.starts_with("member 7 as of 2026-06-15T12:00:00Z (America/New_York)\n"), "{}", out.describe());
    assert!(
        text.contains("\nprofile (profile, published)\n  held since 2026-06-15T12:00:00Z (backfill, run 1)\n"),
        "{}",
        out.describe()
    );
    assert!(
        text.contains(
            "\nexpert (expert, published)\n  not held\n  ✗ all of:\n      \
             ✗ have a net_accepted_solutions of at least 3 — net_accepted_solutions: 1\n      \
             ✓ have the role \"Expert\" — has the role: yes\n  → does not qualify\n"
        ),
        "{}",
        out.describe()
    );
    assert!(
        text.contains(
            "\nbutterfly (butterfly, published)\n  not held\n  \
             ✗ have made at least 3 connections within one calendar week — \
             best week: 2 connections (week of 2026-06-08)\n  → does not qualify\n"
        ),
        "{}",
        out.describe()
    );
    assert!(
        text.contains("      ✗ have signed in on or after 2026-06-01 — last sign-in: 2026-05-02 08:00:00 EDT\n"),
        "{}",
        out.describe()
    );
    for id in ["expert", "profile", "regular", "veteran", "listed", "recent-poster", "butterfly"] {
        assert!(text.contains(&format!("\n{id} ({id}, published)\n")), "no block for {id}: {}", out.describe());
    }

    let one = accolade_binary(&["--config", config, "explain", "--user", "7", "--badge", "expert", "--as-of", AS_OF]);

    assert_eq!(one.code, 0, "{}", one.describe());
    assert!(one.stdout.contains("\nexpert (expert, published)\n"), "{}", one.describe());
    assert!(!one.stdout.contains("profile ("), "{}", one.describe());

    let stranger = accolade_binary(&["--config", config, "explain", "--user", "99", "--as-of", AS_OF]);

    assert_eq!(stranger.code, 0, "{}", stranger.describe());
    assert!(stranger.stdout.contains("not a member at that instant"), "{}", stranger.describe());
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn explain_still_explains_the_other_badges_when_a_formula_needs_a_missing_column(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = community().await;
    let sources = host.formula_sources().replace("blocked, avatar_changed FROM users", "blocked FROM users");
    let badges = formula_badge("avatar", "avatar_changed = true")
        + &formula_badge("expert", "metric.net_accepted_solutions >= 3 AND roles in ['Expert']");
    let plan = host.plan(&host.config_waiting(NEW_YORK, &badges, &sources));

    let explained = host.try_explain(&plan, 7, at(AS_OF)).await;

    let explained = explained.unwrap_or_else(|e| panic!("explain failed for every badge: {e:#}"));
    let explained = explained.expect("7 is a member");
    let expert = explained.iter().find(|b| b.badge_id == "expert").expect("expert is explained");
    let NodeOutcome::Check(first) =
        check("have a net_accepted_solutions of at least 3", false, &[("net_accepted_solutions", "1")])
    else {
        unreachable!("check builds a check")
    };
    assert_eq!(expert.checks()[0], &first);
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn explain_as_json_gives_a_host_ui_each_badge_with_its_tree(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = community().await;
    let path = host.write_config("accolade.toml", &host.config_waiting(NEW_YORK, &badges(), &host.formula_sources()));
    let config = path.to_str().expect("UTF-8 path");
    let run = accolade_binary(&["--config", config, "run", "--as-of", AS_OF]);
    assert_eq!(run.code, 0, "{}", run.describe());

    let out = accolade_binary(&["--config", config, "explain", "--user", "7", "--as-of", AS_OF, "--format", "json"]);

    assert_eq!(out.code, 0, "{}", out.describe());
    let document: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.describe()));
    assert_eq!(document["user_id"], 7);
    assert_eq!(document["member"], true);
    assert_eq!(document["timezone"], NEW_YORK);
    let badge = |id: &str| -> &serde_json::Value {
        let badges = document["badges"].as_array().expect("a list of badges");
        badges.iter().find(|b| b["badge_id"] == id).unwrap_or_else(|| panic!("no {id} in {document:#}"))
    };
    let veteran = badge("veteran");
    assert_eq!(veteran["held"], true);
    assert_eq!(veteran["source"], "backfill");
    assert_eq!(veteran["since"], "2026-06-15T12:00:00Z");
    assert_eq!(veteran["qualifies"], true);
    assert_eq!(
        veteran["tree"],
        serde_json::json!({
            "op": "and",
            "pass": true,
            "children": [
                {
                    "op": "not",
                    "pass": true,
                    "children": [{
                        "op": "clause",
                        "pass": false,
                        "label": "have been members for less than 1 year",
                        "values": [{"name": "member for", "value": "1 year (since 2025-06-15 08:00:00 EDT)"}],
                    }],
                },
                {
                    "op": "clause",
                    "pass": true,
                    "label": "registered before 2026-01-01",
                    "values": [{"name": "registered", "value": "2025-06-15 08:00:00 EDT"}],
                },
            ],
        })
    );
    let expert = badge("expert");
    assert_eq!(expert["held"], false);
    assert!(expert.get("since").is_none(), "{expert:#}");
    assert_eq!(expert["qualifies"], false);
    assert_eq!(expert["tree"]["op"], "and");
    assert_eq!(expert["tree"]["pass"], false);
    let butterfly = badge("butterfly");
    assert_eq!(butterfly["tree"]["op"], "clause");
    assert_eq!(butterfly["tree"]["values"][0]["value"], "2 connections (week of 2026-06-08)");

    let stranger =
        accolade_binary(&["--config", config, "explain", "--user", "99", "--as-of", AS_OF, "--format", "json"]);

    assert_eq!(stranger.code, 0, "{}", stranger.describe());
    let document: serde_json::Value = serde_json::from_str(&stranger.stdout).expect("valid JSON");
    assert_eq!(document["member"], false);
    assert!(
        document["badges"]
            .as_array()
            .is_some_and(|b| b.iter().all(|b| b["qualifies"] == false && b.get("tree").is_none()))
    );
}
