//! `explain`: for one member, each badge's clauses with a tick or a cross and the member's own
//! values, from the library call and from the command line, on every backend.
//!
//! The evaluation timezone is America/New_York: instants are shown in it (June is EDT).

use crate::support::{Backend, TestHost, accolade_binary, at, badge, formula_badge, formula_badge_since, use_backend};
use accolade::config::plan::Plan;
use accolade::evaluate::{BadgeExplanation, CheckOutcome};

const NEW_YORK: &str = "America/New_York";
const AS_OF: &str = "2026-06-15T12:00:00Z";

/// A check as explain reports it.
fn check(label: &str, pass: bool, values: &[(&str, &str)]) -> CheckOutcome {
    CheckOutcome {
        label: label.to_string(),
        pass,
        values: values.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
    }
}

fn explanation(badge_id: &str, qualifies: bool, checks: Vec<CheckOutcome>) -> BadgeExplanation {
    BadgeExplanation { badge_id: badge_id.to_string(), qualifies, checks }
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
                vec![
                    check("metric.net_accepted_solutions >= 3", false, &[("has", "1")]),
                    check("roles in ['Expert']", true, &[("has one", "yes")]),
                ]
            ),
            explanation(
                "profile",
                true,
                vec![
                    check("setting.profile.location != 'default'", true, &[("has", "'Lisbon'")]),
                    check("avatar_changed = true", true, &[("changed", "yes")]),
                ]
            ),
            explanation(
                "regular",
                true,
                vec![
                    check("setting.user.max_consecutive_logins >= 2", true, &[("has", "2")]),
                    check("signin_date >= '2026-06-01'", false, &[("last sign-in", "2026-05-02 08:00:00 EDT")]),
                ]
            ),
            // The clause under NOT fails (a year is reached exactly at as_of), so NOT holds.
            explanation(
                "veteran",
                true,
                vec![
                    check("time_since_registration < '1 years'", false, &[("reached on", "2026-06-15 08:00:00 EDT")]),
                    check("registration_date < '2026'", true, &[("registered", "2025-06-15 08:00:00 EDT")]),
                ]
            ),
            explanation(
                "listed",
                false,
                vec![
                    check("user_id in [7, 8]", true, &[("listed", "yes")]),
                    check("metric.posts.question >= 1", false, &[("has", "0")]),
                ]
            ),
            // Only the post of 2026-06-02 is since 2026-06-01.
            explanation("recent-poster", false, vec![check("metric.posts >= 2", false, &[("has", "1")])]),
            explanation(
                "butterfly",
                false,
                vec![check("connections in one week >= 3", false, &[("best", "2"), ("week of", "2026-06-08")])]
            ),
        ]
    );
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn explain_shows_none_for_a_missing_setting_or_sign_in_and_zero_for_missing_counts(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = community().await;

    let explained = host.explain(&plan(&host), 8, at(AS_OF)).await.expect("8 is a member");

    let values = |badge_id: &str| -> Vec<Vec<(String, String)>> {
        let badge = explained.iter().find(|b| b.badge_id == badge_id).expect("every badge is explained");
        badge.checks.iter().map(|c| c.values.clone()).collect()
    };
    let pairs = |items: &[&[(&str, &str)]]| -> Vec<Vec<(String, String)>> {
        items.iter().map(|vs| vs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()).collect()
    };
    assert_eq!(values("expert"), pairs(&[&[("has", "0")], &[("has one", "no")]]));
    assert_eq!(values("profile"), pairs(&[&[("has", "none")], &[("changed", "no")]]));
    assert_eq!(values("regular"), pairs(&[&[("has", "0")], &[("last sign-in", "none")]]));
    assert_eq!(values("butterfly"), pairs(&[&[("best", "0"), ("week of", "none")]]));
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
async fn explain_render_puts_a_tick_or_cross_and_the_value_beside_each_clause(
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
                  \x20 metric.net_accepted_solutions >= 3  ✗ (has 1)\n\
                  \x20 roles in ['Expert']  ✓ (has one yes)\n\
                  \x20 → does not qualify\n";
    assert!(text.contains(expert), "no block {expert:?} in:\n{text}");
    assert!(text.contains("  setting.profile.location != 'default'  ✓ (has 'Lisbon')\n  avatar_changed = true  ✓ (changed yes)\n  → qualifies\n"), "{text}");
    assert!(text.contains("recent-poster (recent-poster, published)\n  not held\n  counts activity since 2026-06-01T04:00:00Z\n  metric.posts >= 2  ✗ (has 1)\n"), "{text}");
    assert!(text.contains("  connections in one week >= 3  ✗ (best 2, week of 2026-06-08)\n"), "{text}");
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
            "\nexpert (expert, published)\n  not held\n  metric.net_accepted_solutions >= 3  ✗ (has 1)\n  \
             roles in ['Expert']  ✓ (has one yes)\n  → does not qualify\n"
        ),
        "{}",
        out.describe()
    );
    assert!(
        text.contains(
            "\nbutterfly (butterfly, published)\n  not held\n  \
             connections in one week >= 3  ✗ (best 2, week of 2026-06-08)\n  → does not qualify\n"
        ),
        "{}",
        out.describe()
    );
    assert!(
        text.contains("  signin_date >= '2026-06-01'  ✗ (last sign-in 2026-05-02 08:00:00 EDT)\n"),
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
    assert_eq!(expert.checks[0], check("metric.net_accepted_solutions >= 3", false, &[("has", "1")]));
}
