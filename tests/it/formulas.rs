//! Badge formulas end to end: every clause at its boundary, the boolean structure, the
//! README's reference examples, the evaluation instant and `activity_since`, failures that
//! must name their cause (a missing column, a formula that does not parse), and the
//! fingerprint that lets a published formula be reformatted but not changed.
//!
//! Every test of meaning runs on SQLite, PostgreSQL and MariaDB against [`FORMULA_SCHEMA`]:
//! timestamps are UTC text; the comment next to an instant in America/New_York gives its
//! local reading (June is EDT, UTC-4; January to early March is EST, UTC-5).

use crate::support::{
    Backend, FORMULA_SCHEMA, TestHost, accolade_binary, at, badge, formula_badge, formula_badge_since, pairs, status,
    use_backend,
};
use accolade::commands::check;
use accolade::config::plan::Plan;
use accolade::db::Db;
use accolade::store::{Store, acquire_lock};

const NEW_YORK: &str = "America/New_York";

/// The plan of `badges` on a formula host, evaluated in `timezone`.
fn plan_in(host: &TestHost, timezone: &str, badges: &str) -> Plan {
    host.plan(&host.config_waiting(timezone, badges, &host.formula_sources()))
}

// ---------------------------------------------------------------------------------------
// metric.NAME OP NUMBER
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn each_comparison_operator_holds_exactly_at_its_threshold(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    // Member n has n - 1 posts: 1 has none, 5 has four.
    host.add_members(1..=5, "2026-01-01 00:00:00").await;
    for member in 2..=5i64 {
        let rows: Vec<String> = (1..member).map(|d| format!("({member}, '2026-03-0{d} 10:00:00')")).collect();
        host.exec(&format!("INSERT INTO posts (user_id, created_at) VALUES {}", rows.join(", "))).await;
    }
    let badges = formula_badge("ge", "metric.posts >= 3")
        + &formula_badge("gt", "metric.posts > 3")
        + &formula_badge("le", "metric.posts <= 1")
        + &formula_badge("lt", "metric.posts < 1")
        + &formula_badge("eq", "metric.posts = 2")
        + &formula_badge("ne", "metric.posts != 2");
    let plan = plan_in(&host, "UTC", &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.holders("ge").await, vec![4, 5]);
    assert_eq!(host.holders("gt").await, vec![5]);
    assert_eq!(host.holders("le").await, vec![1, 2]);
    assert_eq!(host.holders("lt").await, vec![1]);
    assert_eq!(host.holders("eq").await, vec![3]);
    assert_eq!(host.holders("ne").await, vec![1, 2, 4, 5]);
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn metric_posts_of_a_kind_counts_only_rows_of_that_kind(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=3, "2026-01-01 00:00:00").await;
    host.exec(
        "INSERT INTO posts (user_id, created_at, kind, thread_id) VALUES
            (1, '2026-03-01 10:00:00', 'question', 1), (1, '2026-03-02 10:00:00', 'question', 2),
            (2, '2026-03-01 10:00:00', 'question', 1), (2, '2026-03-02 10:00:00', 'reply', 1),
            (2, '2026-03-03 10:00:00', 'reply', 1), (2, '2026-03-04 10:00:00', 'comment', 1),
            (3, '2026-03-01 10:00:00', 'Question', 1), (3, '2026-03-02 10:00:00', 'question', 1)",
    )
    .await;
    let badges = formula_badge("asker", "metric.posts.question >= 2") + &formula_badge("talker", "metric.posts >= 4");
    let plan = plan_in(&host, "UTC", &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    // 2 has four posts but one question; 3's 'Question' is another kind.
    assert_eq!(host.awards().await, pairs(&[("asker", 1), ("talker", 2)]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn distinct_threads_count_each_non_null_thread_once_overall_and_per_kind(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=4, "2026-01-01 00:00:00").await;
    host.exec(
        "INSERT INTO posts (user_id, created_at, kind, thread_id) VALUES
            (1, '2026-03-01 10:00:00', 'reply', 10), (1, '2026-03-02 10:00:00', 'reply', 11),
            (1, '2026-03-03 10:00:00', 'reply', 12),
            (2, '2026-03-01 10:00:00', 'reply', 10), (2, '2026-03-02 10:00:00', 'reply', 10),
            (2, '2026-03-03 10:00:00', 'reply', 11), (2, '2026-03-04 10:00:00', 'reply', NULL),
            (2, '2026-03-05 10:00:00', 'reply', NULL),
            (3, '2026-03-01 10:00:00', 'reply', 10), (3, '2026-03-02 10:00:00', 'reply', 11),
            (3, '2026-03-03 10:00:00', 'question', 12),
            (4, '2026-03-01 10:00:00', 'question', 10), (4, '2026-03-02 10:00:00', 'question', 11),
            (4, '2026-03-03 10:00:00', 'question', 12)",
    )
    .await;
    let badges = formula_badge("threads", "metric.distinct_threads >= 3")
        + &formula_badge("replier", "metric.distinct_threads.reply >= 3");
    let plan = plan_in(&host, "UTC", &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    // 2: five replies, two threads (NULL is no thread); 3: three threads, two of them replies.
    assert_eq!(host.holders("threads").await, vec![1, 3, 4]);
    assert_eq!(host.holders("replier").await, vec![1]);
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn connections_and_logins_metrics_count_rows(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=3, "2026-01-01 00:00:00").await;
    host.add_events("connections", 1, &["2026-03-01 10:00:00", "2026-03-01 11:00:00"]).await;
    host.add_events("connections", 2, &["2026-03-01 10:00:00"]).await;
    // Two sign-ins the same day are two logins.
    host.add_events("sign_ins", 2, &["2026-03-01 10:00:00", "2026-03-01 10:05:00", "2026-04-01 10:00:00"]).await;
    host.add_events("sign_ins", 3, &["2026-03-01 10:00:00", "2026-03-02 10:00:00"]).await;
    let badges =
        formula_badge("connected", "metric.connections >= 2") + &formula_badge("regular", "metric.logins >= 3");
    let plan = plan_in(&host, "UTC", &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("connected", 1), ("regular", 2)]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn training_metrics_count_distinct_trainings_enrolled_completed_and_passed(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=3, "2026-01-01 00:00:00").await;
    host.exec(
        "INSERT INTO trainings (user_id, training_id, enrolled_at, progress, passed) VALUES
            (1, 'a', '2026-02-01 00:00:00', 100, TRUE), (1, 'b', '2026-02-01 00:00:00', 100, TRUE),
            (2, 'a', '2026-02-01 00:00:00', 100, FALSE), (2, 'a', '2026-03-01 00:00:00', 100, TRUE),
            (2, 'b', '2026-02-01 00:00:00', 99, FALSE),
            (3, 'a', '2026-02-01 00:00:00', 100, FALSE), (3, 'b', '2026-02-01 00:00:00', 100, NULL),
            (3, 'c', '2026-02-01 00:00:00', NULL, TRUE)",
    )
    .await;
    let badges = formula_badge("enrolled", "metric.trainings_enrolled >= 3")
        + &formula_badge("completed", "metric.trainings_completed >= 2")
        + &formula_badge("passed", "metric.trainings_passed >= 2");
    let plan = plan_in(&host, "UTC", &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    // 2 took 'a' twice: one training, not two.
    assert_eq!(host.holders("enrolled").await, vec![3]);
    assert_eq!(host.holders("completed").await, vec![1, 3]);
    assert_eq!(host.holders("passed").await, vec![1]);
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn host_metrics_add_up_across_rows_and_a_member_without_rows_has_zero(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=6, "2026-01-01 00:00:00").await;
    host.insert(
        "counters",
        "user_id, counter, amount",
        &[
            "1, 'kudos', 2",
            "1, 'kudos', 3",
            "2, 'kudos', 4",
            "3, 'solutions', 9",
            "5, 'kudos', 5",
            "5, 'kudos', -1",
            "6, 'kudos', NULL",
            "6, 'kudos', 5",
            "2, 'badge.points', 7",
            "3, 'badge.points', 6",
        ],
    )
    .await;
    let badges = formula_badge("generous", "metric.kudos >= 5")
        + &formula_badge("unthanked", "metric.kudos < 1")
        + &formula_badge("four", "metric.kudos = 4")
        + &formula_badge("pointed", "metric.badge.points >= 7");
    let plan = plan_in(&host, "UTC", &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.holders("generous").await, vec![1, 6]);
    // 3 has other counters only and 4 none at all: both have 0 kudos.
    assert_eq!(host.holders("unthanked").await, vec![3, 4]);
    assert_eq!(host.holders("four").await, vec![2, 5]);
    // A host metric's name may contain dots.
    assert_eq!(host.holders("pointed").await, vec![2]);
}

// ---------------------------------------------------------------------------------------
// roles in [...], user_id in [...]
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn roles_in_matches_members_holding_any_listed_role(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=5, "2026-01-01 00:00:00").await;
    host.insert(
        "member_roles",
        "user_id, role",
        &["1, 'Admin'", "2, 'Moderator'", "3, 'admin'", "4, 'Expert'", "4, 'Admin'", "5, 'Expert'"],
    )
    .await;
    let plan = plan_in(&host, "UTC", &formula_badge("staff", "roles in ['Admin', 'Moderator']"));

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.holders("staff").await, vec![1, 2, 4]);
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn user_id_in_awards_only_listed_ids_that_are_members(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=5, "2026-01-01 00:00:00").await;
    let plan = plan_in(&host, "UTC", &formula_badge("listed", "user_id in [5, 2, 99, 2, -7]"));

    let report = host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.holders("listed").await, vec![2, 5]);
    assert_eq!(report.new_awards("listed"), 2);
}

/// Odd ids 1, 3, …, 199,999: 100,000 ids.
fn hundred_thousand_odd_ids() -> String {
    let ids: Vec<String> = (0..100_000i64).map(|i| (2 * i + 1).to_string()).collect();
    format!("user_id in [{}]", ids.join(","))
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_list_of_100000_user_ids_awards_exactly_the_listed_members(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=3000, "2026-01-01 00:00:00").await;
    let plan = plan_in(&host, "UTC", &formula_badge("listed", &hundred_thousand_odd_ids()));

    let report = host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    let odd_members: Vec<i64> = (1..=3000).filter(|id| id % 2 == 1).collect();
    assert_eq!(status(&report, "listed"), "evaluated");
    assert_eq!(host.holders("listed").await, odd_members);
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_published_100000_id_formula_is_not_refused_by_the_next_run(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=10, "2026-01-01 00:00:00").await;
    let plan = plan_in(&host, "UTC", &formula_badge("listed", &hundred_thousand_odd_ids()));
    host.run(&plan, at("2026-06-15T12:00:00Z")).await;
    host.add_members([11], "2026-06-16 00:00:00").await;

    let report = host.run(&plan, at("2026-06-17T00:00:00Z")).await;

    assert_eq!(status(&report, "listed"), "evaluated", "{:?}", report.badges[0].message.as_deref().map(short));
    assert!(!report.refused());
    assert_eq!(host.holders("listed").await, vec![1, 3, 5, 7, 9, 11]);
}

/// The first 300 characters of a (possibly huge) message.
fn short(text: &str) -> String {
    text.chars().take(300).collect()
}

// ---------------------------------------------------------------------------------------
// AND, OR, NOT and parentheses
// ---------------------------------------------------------------------------------------

/// The criteria words word `NOT (x OP v)` as `x OP' v` with the opposite operator for clauses
/// over values every member has (counts, host metrics, the sign-in streak, the creation
/// instant and its age): that is only true if both award exactly the same members, including
/// members without any activity.
#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn not_over_a_value_clause_awards_the_same_members_as_the_opposite_operator(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members([1], "2026-01-01 00:00:00").await;
    host.add_members([2], "2026-03-15 12:00:00").await;
    host.add_members([3], "2026-05-01 00:00:00").await;
    host.add_events("posts", 2, &["2026-04-01 12:00:00", "2026-04-02 12:00:00"]).await;
    host.add_events("posts", 3, &["2026-05-01 12:00:00", "2026-05-02 12:00:00", "2026-05-03 12:00:00"]).await;
    host.add_events("sign_ins", 2, &["2026-04-01 12:00:00", "2026-04-02 12:00:00"]).await;
    host.add_events("sign_ins", 3, &["2026-05-01 12:00:00"]).await;
    host.insert("counters", "user_id, counter, amount", &["2, 'karma', 1", "3, 'karma', 2.5"]).await;
    let clauses = [
        ("metric.posts", "2"),
        ("metric.karma", "1"),
        ("setting.user.max_consecutive_logins", "2"),
        ("registration_date", "'2026-03-15T12:00:00Z'"),
        ("time_since_registration", "'3 months'"),
    ];
    let ops = [(">=", "<"), (">", "<="), ("<=", ">"), ("<", ">="), ("=", "!="), ("!=", "=")];
    let mut badges = String::new();
    let mut pairs = Vec::new();
    for (c, (subject, value)) in clauses.iter().enumerate() {
        for (o, (op, opposite)) in ops.iter().enumerate() {
            let (negated, reworded) = (format!("not-{c}-{o}"), format!("opposite-{c}-{o}"));
            badges += &formula_badge(&negated, &format!("NOT {subject} {op} {value}"));
            badges += &formula_badge(&reworded, &format!("{subject} {opposite} {value}"));
            pairs.push((format!("{subject} {op} {value}"), negated, reworded));
        }
    }
    let plan = plan_in(&host, NEW_YORK, &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    // Not vacuous: member 1 has no posts, and member 2 is 3 months old exactly at as_of.
    assert_eq!(host.holders("opposite-0-0").await, vec![1]);
    assert_eq!(host.holders("opposite-4-0").await, vec![3]);
    assert_eq!(host.holders("opposite-3-5").await, vec![2]);
    for (clause, negated, reworded) in pairs {
        assert_eq!(host.holders(&negated).await, host.holders(&reworded).await, "NOT {clause}");
    }
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn not_binds_tighter_than_and_and_and_tighter_than_or(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    // Members 1..=8 hold every combination of roles A, B, C: member n holds A if bit 0 of
    // n - 1 is set, B for bit 1, C for bit 2. So 1: none, 2: A, 3: B, 4: AB, 5: C, 6: AC,
    // 7: BC, 8: ABC.
    host.add_members(1..=8, "2026-01-01 00:00:00").await;
    let mut rows = Vec::new();
    for member in 1..=8i64 {
        for (bit, role) in ["A", "B", "C"].iter().enumerate() {
            if (member - 1) & (1 << bit) != 0 {
                rows.push(format!("{member}, '{role}'"));
            }
        }
    }
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    host.insert("member_roles", "user_id, role", &rows).await;
    let (a, b, c) = ("roles in ['A']", "roles in ['B']", "roles in ['C']");
    let badges = formula_badge("a-or-b-and-not-c", &format!("{a} OR {b} AND NOT {c}"))
        + &formula_badge("parenthesised", &format!("({a} OR {b}) AND NOT {c}"))
        + &formula_badge("not-of-group", &format!("NOT ({a} OR {b})"))
        + &formula_badge("not-a-or-b", &format!("NOT {a} OR {b}"))
        + &formula_badge("a-and-b-or-c", &format!("{a} AND {b} OR {c}"))
        + &formula_badge("a-and-group", &format!("{a} AND ({b} OR {c})"))
        + &formula_badge("lowercase", &format!("{a} and not {b} or {c}"))
        + &formula_badge("double-not", &format!("NOT NOT {a}"));
    let plan = plan_in(&host, "UTC", &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    // A OR (B AND NOT C)
    assert_eq!(host.holders("a-or-b-and-not-c").await, vec![2, 3, 4, 6, 8]);
    // (A OR B) AND NOT C
    assert_eq!(host.holders("parenthesised").await, vec![2, 3, 4]);
    // neither A nor B
    assert_eq!(host.holders("not-of-group").await, vec![1, 5]);
    // (NOT A) OR B
    assert_eq!(host.holders("not-a-or-b").await, vec![1, 3, 4, 5, 7, 8]);
    // (A AND B) OR C
    assert_eq!(host.holders("a-and-b-or-c").await, vec![4, 5, 6, 7, 8]);
    // A AND (B OR C)
    assert_eq!(host.holders("a-and-group").await, vec![4, 6, 8]);
    // (A AND NOT B) OR C
    assert_eq!(host.holders("lowercase").await, vec![2, 5, 6, 7, 8]);
    assert_eq!(host.holders("double-not").await, vec![2, 4, 6, 8]);
}

// ---------------------------------------------------------------------------------------
// The README's reference examples
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn the_readme_reference_formulas_award_the_expected_members(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=9, "2026-01-01 00:00:00").await;
    host.add_members([12], "2026-01-01 00:00:00").await;
    host.add_members([10], "2026-03-15 12:00:00").await; // three months old exactly at as_of
    host.add_members([11], "2026-03-15 12:00:01").await; // one second short of three months
    // Expert: metric.net_accepted_solutions >= 3 AND roles in ['Expert']
    host.insert(
        "counters",
        "user_id, counter, amount",
        &[
            "1, 'net_accepted_solutions', 2",
            "1, 'net_accepted_solutions', 1",
            "2, 'net_accepted_solutions', 2",
            "3, 'net_accepted_solutions', 5",
        ],
    )
    .await;
    host.insert("member_roles", "user_id, role", &["1, 'Expert'", "2, 'Expert'", "3, 'Moderator'"]).await;
    // Helper: metric.distinct_threads.reply >= 5 OR roles in ['Moderator']
    host.exec(
        "INSERT INTO posts (user_id, created_at, kind, thread_id) VALUES
            (4, '2026-02-01 10:00:00', 'reply', 1), (4, '2026-02-01 11:00:00', 'reply', 2),
            (4, '2026-02-01 12:00:00', 'reply', 3), (4, '2026-02-01 13:00:00', 'reply', 4),
            (4, '2026-02-01 14:00:00', 'reply', 5),
            (5, '2026-02-01 10:00:00', 'reply', 1), (5, '2026-02-01 11:00:00', 'reply', 2),
            (5, '2026-02-01 12:00:00', 'reply', 3), (5, '2026-02-01 13:00:00', 'reply', 4),
            (5, '2026-02-01 14:00:00', 'reply', 4), (5, '2026-02-01 15:00:00', 'question', 5)",
    )
    .await;
    // Locals: setting.profile.location != 'default' AND avatar_changed = true
    host.exec(
        "UPDATE users SET avatar_changed = TRUE WHERE user_id IN (6, 7, 9);
         UPDATE users SET avatar_changed = FALSE WHERE user_id = 8",
    )
    .await;
    host.insert(
        "profile_settings",
        "user_id, setting_key, setting_value",
        &[
            "6, 'profile.location', 'Lisbon'",
            "7, 'profile.location', 'default'",
            "8, 'profile.location', 'Oslo'",
            "9, 'profile.location', ''",
        ],
    )
    .await;
    // Regular: setting.user.max_consecutive_logins >= 7 AND NOT time_since_registration < '3 months'
    let week: Vec<String> = (1..=7).map(|d| format!("2026-06-0{d} 12:00:00")).collect();
    let week: Vec<&str> = week.iter().map(String::as_str).collect();
    host.add_events("sign_ins", 10, &week).await;
    host.add_events("sign_ins", 11, &week).await;
    host.add_events("sign_ins", 12, &week[..6]).await;
    let badges = formula_badge("expert", "metric.net_accepted_solutions >= 3 AND roles in ['Expert']")
        + &formula_badge("helper", "metric.distinct_threads.reply >= 5 OR roles in ['Moderator']")
        + &formula_badge("local", "setting.profile.location != 'default' AND avatar_changed = true")
        + &formula_badge(
            "regular",
            "setting.user.max_consecutive_logins >= 7 AND NOT time_since_registration < '3 months'",
        );
    let plan = plan_in(&host, "UTC", &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(
        host.awards().await,
        pairs(&[("expert", 1), ("helper", 3), ("helper", 4), ("local", 6), ("regular", 10)])
    );
}

// ---------------------------------------------------------------------------------------
// setting.KEY
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn settings_compare_exact_case_sensitive_values_under_dotted_keys(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=8, "2026-01-01 00:00:00").await;
    host.insert(
        "profile_settings",
        "user_id, setting_key, setting_value",
        &[
            "1, 'theme', 'dark'",
            "2, 'theme', 'default'",
            "3, 'theme', ''",
            "5, 'theme', NULL",
            "6, 'theme', 'Dark'",
            "7, 'profile.location', 'Lisbon'",
            "8, 'location', 'Lisbon'",
            "8, 'profile.location', 'lisbon'",
            "4, 'Theme', 'dark'",
        ],
    )
    .await;
    let badges = formula_badge("customised", "setting.theme != 'default'")
        + &formula_badge("dark", "setting.theme = 'dark'")
        + &formula_badge("blank", "setting.theme = ''")
        + &formula_badge("not-dark", "NOT setting.theme = \"dark\"")
        + &formula_badge("lisbon", "setting.profile.location = 'Lisbon'")
        + &formula_badge("located", "setting.profile.location != 'default'");
    let plan = plan_in(&host, "UTC", &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    // An empty value, NULL, or no row is not a value; 4's key is 'Theme', another key.
    assert_eq!(host.holders("customised").await, vec![1, 6]);
    assert_eq!(host.holders("dark").await, vec![1]);
    assert_eq!(host.holders("blank").await, vec![3]);
    assert_eq!(host.holders("not-dark").await, vec![2, 3, 4, 5, 6, 7, 8]);
    // 8 has 'Lisbon' under the key 'location' and 'lisbon' under 'profile.location'.
    assert_eq!(host.holders("lisbon").await, vec![7]);
    assert_eq!(host.holders("located").await, vec![7, 8]);
}

// ---------------------------------------------------------------------------------------
// avatar_changed
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn avatar_changed_reads_the_users_column_and_null_is_false(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.insert(
        "users",
        "user_id, created_at, blocked, avatar_changed",
        &[
            "1, '2026-01-01 00:00:00', FALSE, TRUE",
            "2, '2026-01-01 00:00:00', FALSE, FALSE",
            "3, '2026-01-01 00:00:00', FALSE, NULL",
        ],
    )
    .await;
    let badges = formula_badge("changed", "avatar_changed = true")
        + &formula_badge("unchanged", "avatar_changed = FALSE")
        + &formula_badge("not-changed", "avatar_changed != true");
    let plan = plan_in(&host, "UTC", &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.holders("changed").await, vec![1]);
    assert_eq!(host.holders("unchanged").await, vec![2, 3]);
    assert_eq!(host.holders("not-changed").await, vec![2, 3]);
}

/// `[sources]` whose users query returns no `avatar_changed` column.
fn sources_without_avatar(host: &TestHost) -> String {
    host.formula_sources().replace("blocked, avatar_changed FROM users", "blocked FROM users")
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_formula_on_avatar_changed_fails_its_badge_when_users_lacks_the_column_and_others_still_run(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=2, "2026-01-01 00:00:00").await;
    host.exec("UPDATE users SET avatar_changed = TRUE").await;
    host.add_events("posts", 2, &["2026-03-01 10:00:00"]).await;
    let badges = formula_badge("avatar", "avatar_changed = true OR metric.posts >= 1")
        + &formula_badge("poster", "metric.posts >= 1")
        + &badge("rule-poster", r#"{ type = "posts_sent", min = 1 }"#);
    let sources = sources_without_avatar(&host);
    assert!(!sources.contains("avatar_changed"), "{sources}");
    let plan = host.plan(&host.config_waiting("UTC", &badges, &sources));

    let report = host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(status(&report, "avatar"), "failed");
    let message = report.badges.iter().find(|b| b.badge_id == "avatar").and_then(|b| b.message.clone());
    let message = message.expect("a failed badge carries a message");
    assert!(message.contains("avatar_changed"), "{message}");
    assert!(report.refused());
    assert_eq!(status(&report, "poster"), "evaluated");
    assert_eq!(host.awards().await, pairs(&[("poster", 2), ("rule-poster", 2)]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn formulas_on_post_kinds_or_threads_fail_their_badge_when_posts_lacks_the_column(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=2, "2026-01-01 00:00:00").await;
    host.exec(
        "INSERT INTO posts (user_id, created_at, kind, thread_id) VALUES (2, '2026-03-01 10:00:00', 'question', 1)",
    )
    .await;
    let badges = formula_badge("asker", "metric.posts.question >= 1")
        + &formula_badge("threads", "metric.distinct_threads >= 1")
        + &formula_badge("poster", "metric.posts >= 1");
    let sources = host
        .formula_sources()
        .replace("SELECT user_id, created_at, kind, thread_id FROM posts", "SELECT user_id, created_at FROM posts");
    let plan = host.plan(&host.config_waiting("UTC", &badges, &sources));

    let report = host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    let message = |id: &str| report.badges.iter().find(|b| b.badge_id == id).and_then(|b| b.message.clone());
    assert_eq!(status(&report, "asker"), "failed");
    assert!(message("asker").is_some_and(|m| m.contains("'kind'")), "{:?}", message("asker"));
    assert_eq!(status(&report, "threads"), "failed");
    assert!(message("threads").is_some_and(|m| m.contains("'thread_id'")), "{:?}", message("threads"));
    assert_eq!(status(&report, "poster"), "evaluated");
    assert_eq!(host.awards().await, pairs(&[("poster", 2)]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn the_binary_exits_1_and_names_the_column_when_a_formula_needs_a_missing_avatar_changed(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=2, "2026-01-01 00:00:00").await;
    host.add_events("posts", 2, &["2026-03-01 10:00:00"]).await;
    let badges = formula_badge("avatar", "avatar_changed = true") + &formula_badge("poster", "metric.posts >= 1");
    let path = host.write_config("accolade.toml", &host.config_waiting("UTC", &badges, &sources_without_avatar(&host)));

    let run = accolade_binary(&["--config", path.to_str().expect("UTF-8 path"), "run", "--as-of", "2026-06-15"]);

    assert_eq!(run.code, 1, "{}", run.describe());
    assert!(run.stdout.contains("failed") && run.stdout.contains("avatar_changed"), "{}", run.describe());
    assert_eq!(host.awards().await, pairs(&[("poster", 2)]));
}

// ---------------------------------------------------------------------------------------
// setting.user.max_consecutive_logins
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn consecutive_login_days_are_local_calendar_days_counted_once(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=5, "2026-01-01 00:00:00").await;
    // 1: local days 06-01, 06-02, 06-03 (in UTC: 06-02, 06-02, 06-04: never two in a row).
    host.add_events(
        "sign_ins",
        1,
        &[
            "2026-06-02 03:00:00", // Mon 06-01 23:00 EDT
            "2026-06-02 15:00:00", // Tue 06-02 11:00
            "2026-06-04 02:00:00", // Wed 06-03 22:00
        ],
    )
    .await;
    // 2: 06-01, three times on 06-02, then a day without, then 06-04: a run of two.
    host.add_events(
        "sign_ins",
        2,
        &[
            "2026-06-01 13:00:00",
            "2026-06-02 13:00:00",
            "2026-06-02 14:00:00",
            "2026-06-02 20:00:00",
            "2026-06-04 13:00:00",
        ],
    )
    .await;
    // 3: one sign-in.
    host.add_events("sign_ins", 3, &["2026-06-01 13:00:00"]).await;
    // 4: UTC days 06-01..06-04 in a row, but local days 06-01, 06-01, 06-02, 06-04.
    host.add_events(
        "sign_ins",
        4,
        &[
            "2026-06-01 04:30:00", // Mon 06-01 00:30 EDT
            "2026-06-02 03:30:00", // Mon 06-01 23:30
            "2026-06-03 03:59:00", // Tue 06-02 23:59
            "2026-06-04 04:00:00", // Thu 06-04 00:00
        ],
    )
    .await;
    // 5: no sign-ins at all.
    let badges = formula_badge("streak-3", "setting.user.max_consecutive_logins >= 3")
        + &formula_badge("streak-2", "setting.user.max_consecutive_logins = 2")
        + &formula_badge("streak-over-1", "setting.user.max_consecutive_logins > 1")
        + &formula_badge("never", "setting.user.max_consecutive_logins < 1");
    let plan = plan_in(&host, NEW_YORK, &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.holders("streak-3").await, vec![1]);
    assert_eq!(host.holders("streak-2").await, vec![2, 4]);
    assert_eq!(host.holders("streak-over-1").await, vec![1, 2, 4]);
    assert_eq!(host.holders("never").await, vec![5]);
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn consecutive_login_days_run_on_across_both_dst_changes(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=2, "2026-01-01 00:00:00").await;
    // 1: 23:30 local on Mar 7, 8 (clocks go forward at 02:00) and 9.
    host.add_events(
        "sign_ins",
        1,
        &[
            "2026-03-08 04:30:00", // Sat 03-07 23:30 EST
            "2026-03-09 03:30:00", // Sun 03-08 23:30 EDT
            "2026-03-10 03:30:00", // Mon 03-09 23:30 EDT
        ],
    )
    .await;
    // 2: 00:30 local on Oct 31, Nov 1 (clocks go back at 02:00) and Nov 2.
    host.add_events(
        "sign_ins",
        2,
        &[
            "2026-10-31 04:30:00", // Sat 10-31 00:30 EDT
            "2026-11-01 04:30:00", // Sun 11-01 00:30 EDT
            "2026-11-02 05:30:00", // Mon 11-02 00:30 EST
        ],
    )
    .await;
    let plan = plan_in(&host, NEW_YORK, &formula_badge("streak-3", "setting.user.max_consecutive_logins >= 3"));

    host.run(&plan, at("2026-11-15T12:00:00Z")).await;

    assert_eq!(host.holders("streak-3").await, vec![1, 2]);
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn consecutive_login_days_in_utc_follow_utc_midnight(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=2, "2026-01-01 00:00:00").await;
    // The same sign-ins as members 1 and 4 above, read in UTC.
    host.add_events("sign_ins", 1, &["2026-06-02 03:00:00", "2026-06-02 15:00:00", "2026-06-04 02:00:00"]).await;
    host.add_events(
        "sign_ins",
        2,
        &["2026-06-01 04:30:00", "2026-06-02 03:30:00", "2026-06-03 03:59:00", "2026-06-04 04:00:00"],
    )
    .await;
    let plan = plan_in(&host, "UTC", &formula_badge("streak-3", "setting.user.max_consecutive_logins >= 3"));

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.holders("streak-3").await, vec![2]);
}

// ---------------------------------------------------------------------------------------
// signin_date, registration_date, time_since_registration
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn signin_date_compares_the_last_sign_in_at_or_before_as_of_and_is_false_without_one(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=4, "2026-01-01 00:00:00").await;
    // '2026-06-01' in New York is 2026-06-01T04:00:00Z.
    host.add_events("sign_ins", 1, &["2026-05-01 12:00:00", "2026-06-01 04:00:00"]).await;
    host.add_events("sign_ins", 2, &["2026-06-01 03:59:59", "2026-05-01 12:00:00"]).await;
    // 3 never signed in; 4's last sign-in is after as_of, so its last one is in May.
    host.add_events("sign_ins", 4, &["2026-05-01 12:00:00", "2026-06-20 12:00:00"]).await;
    let badges = formula_badge("recent", "signin_date >= '2026-06-01'")
        + &formula_badge("lapsed", "signin_date < \"2026-06-01\"")
        + &formula_badge("not-recent", "NOT signin_date >= '2026-06-01'");
    let plan = plan_in(&host, NEW_YORK, &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.holders("recent").await, vec![1]);
    assert_eq!(host.holders("lapsed").await, vec![2, 4]);
    assert_eq!(host.holders("not-recent").await, vec![2, 3, 4]);
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn registration_date_reads_partial_dates_as_their_first_local_instant_and_honours_zones(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members([1], "2026-01-01 05:00:00").await; // 2026-01-01 00:00 EST
    host.add_members([2], "2026-01-01 04:59:59").await; // 2025-12-31 23:59:59 EST
    host.add_members([3], "2026-03-01 04:59:59").await; // 2026-02-28 23:59:59 EST
    host.add_members([4], "2026-03-01 05:00:00").await; // 2026-03-01 00:00 EST
    host.add_members([5], "2026-06-15 10:30:00").await; // 2026-06-15 06:30 EDT
    host.add_members([6], "2026-06-15 10:29:59").await;
    let badges = formula_badge("year", "registration_date >= '2026'")
        + &formula_badge("month", "registration_date < '2026-03'")
        + &formula_badge("day", "registration_date = '2026-01-01'")
        + &formula_badge("minutes-offset", "registration_date >= '2026-06-15T12:30+02:00'")
        + &formula_badge("seconds-z", "registration_date <= \"2026-06-15T10:29:59Z\"")
        + &formula_badge("fraction", "registration_date > '2026-06-15T06:29:59.5-04:00'")
        + &formula_badge("local-time", "registration_date >= '2026-06-15T06:30'")
        + &formula_badge("not-at", "registration_date != '2026-03-01T00:00:00-05:00'");
    let plan = plan_in(&host, NEW_YORK, &badges);

    host.run(&plan, at("2026-07-01T00:00:00Z")).await;

    assert_eq!(host.holders("year").await, vec![1, 3, 4, 5, 6]);
    assert_eq!(host.holders("month").await, vec![1, 2, 3]);
    assert_eq!(host.holders("day").await, vec![1]);
    assert_eq!(host.holders("minutes-offset").await, vec![5]);
    assert_eq!(host.holders("seconds-z").await, vec![1, 2, 3, 4, 6]);
    assert_eq!(host.holders("fraction").await, vec![5]);
    assert_eq!(host.holders("local-time").await, vec![5]);
    assert_eq!(host.holders("not-at").await, vec![1, 2, 3, 5, 6]);
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn time_since_registration_adds_calendar_spans_and_includes_blocked_members_unlike_account_age(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.insert(
        "users",
        "user_id, created_at, blocked",
        &[
            "1, '2026-01-31 15:00:00', FALSE", // Jan 31 10:00 EST: a month later is Feb 28 10:00
            "2, '2026-01-31 15:00:00', TRUE",  // the same, blocked
            "3, '2026-02-01 05:00:00', FALSE", // Feb 1 00:00 EST: a month later is exactly as_of
            "4, '2026-02-01 05:00:01', FALSE", // one second later
            "5, '2026-02-20 12:00:00', FALSE", // two weeks later is Mar 6
            "6, '2025-03-01 05:00:00', FALSE", // Mar 1 2025 00:00 EST: exactly a year
        ],
    )
    .await;
    let badges = formula_badge("month-old", "time_since_registration >= '1 months'")
        + &formula_badge("fresh", "time_since_registration < '2 weeks'")
        + &formula_badge("year-old", "time_since_registration >= \"1 year\"")
        + &badge("account-month", r#"{ type = "account_age", min = "1 months" }"#);
    let plan = plan_in(&host, NEW_YORK, &badges);

    host.run(&plan, at("2026-03-01T05:00:00Z")).await; // Mar 1 00:00 EST

    assert_eq!(host.holders("month-old").await, vec![1, 2, 3, 6]);
    assert_eq!(host.holders("account-month").await, vec![1, 3, 6]);
    assert_eq!(host.holders("fresh").await, vec![5]);
    assert_eq!(host.holders("year-old").await, vec![6]);
}

// ---------------------------------------------------------------------------------------
// The evaluation instant and activity_since
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn formulas_count_only_rows_at_or_before_as_of_and_ignore_members_created_after_it(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=2, "2026-01-01 00:00:00").await;
    host.add_members([3], "2026-06-15 12:00:01").await;
    host.add_members([4], "2026-06-15 12:00:00").await;
    host.add_events("posts", 1, &["2026-06-01 00:00:00", "2026-06-15 12:00:00"]).await;
    host.add_events("posts", 2, &["2026-06-01 00:00:00", "2026-06-15 12:00:01"]).await;
    host.add_events("sign_ins", 1, &["2026-06-14 12:00:00", "2026-06-15 12:00:00"]).await;
    host.add_events("sign_ins", 2, &["2026-06-14 12:00:00", "2026-06-15 12:00:01"]).await;
    host.insert("member_roles", "user_id, role", &["3, 'Staff'", "4, 'Staff'"]).await;
    let badges = formula_badge("poster", "metric.posts >= 2")
        + &formula_badge("streak", "setting.user.max_consecutive_logins >= 2")
        + &formula_badge("staff", "roles in ['Staff'] OR user_id in [3]")
        + &formula_badge("early", "registration_date < '2027'");
    let plan = plan_in(&host, "UTC", &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.holders("poster").await, vec![1]);
    assert_eq!(host.holders("streak").await, vec![1]);
    assert_eq!(host.holders("staff").await, vec![4]);
    assert_eq!(host.holders("early").await, vec![1, 2, 4]);
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn activity_since_limits_activity_clauses_of_a_formula_but_not_host_metrics(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=10, "2026-01-01 00:00:00").await;
    // Posts and kudos (activity_since = 2026-06-01, UTC).
    host.add_events("posts", 1, &["2026-05-31 23:59:59", "2026-06-01 00:00:00", "2026-06-02 00:00:00"]).await;
    host.add_events("posts", 2, &["2026-05-30 00:00:00", "2026-05-31 00:00:00", "2026-06-02 00:00:00"]).await;
    host.add_events("posts", 3, &["2026-06-01 00:00:00", "2026-06-02 00:00:00"]).await;
    host.insert("counters", "user_id, counter, amount", &["1, 'kudos', 2", "2, 'kudos', 2", "3, 'kudos', 1"]).await;
    // Sign-ins.
    host.add_events(
        "sign_ins",
        4,
        &["2026-05-30 12:00:00", "2026-05-31 12:00:00", "2026-06-01 12:00:00", "2026-06-02 12:00:00"],
    )
    .await;
    host.add_events("sign_ins", 5, &["2026-06-01 12:00:00", "2026-06-02 12:00:00", "2026-06-03 12:00:00"]).await;
    host.add_events("sign_ins", 6, &["2026-05-20 12:00:00", "2026-05-21 12:00:00", "2026-05-22 12:00:00"]).await;
    // Connections and trainings.
    host.add_events("connections", 7, &["2026-05-31 23:59:59"]).await;
    host.add_events("connections", 8, &["2026-06-01 00:00:00"]).await;
    host.insert(
        "trainings",
        "user_id, training_id, enrolled_at, progress, passed",
        &["9, 'intro', '2026-05-15 00:00:00', 100, TRUE", "10, 'intro', '2026-06-05 00:00:00', 100, TRUE"],
    )
    .await;
    let since = "2026-06-01";
    let busy = "metric.posts >= 2 AND metric.kudos >= 2";
    let streak = "setting.user.max_consecutive_logins >= 3";
    let seen = "signin_date >= '2026-01-01'";
    let social = "metric.connections >= 1 OR metric.trainings_passed >= 1 OR metric.logins >= 4";
    let badges = formula_badge_since("busy-since", busy, since)
        + &formula_badge("busy", busy)
        + &formula_badge_since("streak-since", streak, since)
        + &formula_badge("streak", streak)
        + &formula_badge_since("seen-since", seen, since)
        + &formula_badge("seen", seen)
        + &formula_badge_since("social-since", social, since)
        + &formula_badge("social", social);
    let plan = plan_in(&host, "UTC", &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    // Kudos are not activity: 1 keeps its two whatever the date.
    assert_eq!(host.holders("busy-since").await, vec![1]);
    assert_eq!(host.holders("busy").await, vec![1, 2]);
    assert_eq!(host.holders("streak-since").await, vec![5]);
    assert_eq!(host.holders("streak").await, vec![4, 5, 6]);
    assert_eq!(host.holders("seen-since").await, vec![4, 5]);
    assert_eq!(host.holders("seen").await, vec![4, 5, 6]);
    assert_eq!(host.holders("social-since").await, vec![8, 10]);
    assert_eq!(host.holders("social").await, vec![4, 7, 8, 9, 10]);
}

// ---------------------------------------------------------------------------------------
// Formulas that do not parse, unknown metrics
// ---------------------------------------------------------------------------------------

/// `check`'s report on a config with these badges, on a SQLite host with every source.
async fn check_report(host: &TestHost, badges: &str) -> check::Report {
    let path = host.write_config("accolade.toml", &host.config_waiting("UTC", badges, &host.formula_sources()));
    check::report(&path).await
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_a_formula_that_does_not_parse_with_badge_column_formula_caret_and_expectation() {
    let host = TestHost::for_formulas().await;
    let badges =
        formula_badge("bad", "metric.posts >= AND roles in ['A']") + &formula_badge("good", "metric.posts >= 1");

    let report = check_report(&host, &badges).await;

    let caret = format!("{}^ expected a number after '>='", " ".repeat(16));
    let expected = format!("badge 'bad': formula, column 17:\nmetric.posts >= AND roles in ['A']\n{caret}");
    assert_eq!(report.problems, vec![expected]);
    assert_eq!(report.warnings, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_every_broken_formula_at_once_each_with_its_column_and_caret() {
    let host = TestHost::for_formulas().await;
    // (badge, formula, column, caret width, part of the message)
    let cases: [(&str, &str, usize, usize, &str); 8] = [
        ("unclosed", "(metric.posts >= 1 OR roles in ['A']", 37, 1, "expected ')' to close '(' at column 1"),
        ("trailing-comma", "roles in ['A',]", 14, 1, "trailing ',' before ']'"),
        (
            "no-and",
            "metric.posts >= 3 roles in ['A']",
            19,
            5,
            "unexpected 'roles' after a complete clause: expected AND, OR",
        ),
        ("wrong-case", "Roles in ['A']", 1, 5, "unknown clause 'Roles'"),
        ("bad-date", "registration_date >= '2026-13-01'", 22, 12, "'2026-13-01' is not a calendar date"),
        ("bad-span", "time_since_registration >= '3 fortnights'", 28, 14, "'3 fortnights' is not a span"),
        ("string-for-number", "metric.posts >= '3'", 17, 1, "expected a number after '>=', not a quoted string"),
        // Columns count characters, not bytes: 'ë' is one column.
        ("non-ascii", "roles in ['Zoë'] OR metric.posts >= x", 37, 1, "expected a number after '>='"),
    ];
    let badges: String = cases.iter().map(|(id, formula, ..)| formula_badge(id, formula)).collect();

    let report = check_report(&host, &badges).await;

    assert_eq!(report.problems.len(), cases.len(), "{:#?}", report.problems);
    for (id, formula, column, width, message) in cases {
        let carets = format!("{}{}", " ".repeat(column - 1), "^".repeat(width));
        let problem = report
            .problems
            .iter()
            .find(|p| p.starts_with(&format!("badge '{id}': ")))
            .unwrap_or_else(|| panic!("no problem for badge '{id}': {:#?}", report.problems));
        let lines: Vec<&str> = problem.lines().collect();
        assert_eq!(lines.len(), 3, "{problem}");
        assert_eq!(lines[0], format!("badge '{id}': formula, column {column}:"), "{problem}");
        assert_eq!(lines[1], formula, "{problem}");
        assert!(lines[2].starts_with(&format!("{carets} ")), "caret for '{id}' should be {carets:?}:\n{problem}");
        assert!(lines[2].contains(message), "{problem}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_formula_that_does_not_parse_makes_run_exit_2_and_check_exit_1_with_the_caret() {
    let host = TestHost::for_formulas().await;
    host.add_members(1..=2, "2026-01-01 00:00:00").await;
    let badges =
        formula_badge("bad", "metric.posts >= AND roles in ['A']") + &formula_badge("good", "metric.posts < 1");
    let path = host.write_config("accolade.toml", &host.config_waiting("UTC", &badges, &host.formula_sources()));
    let config = path.to_str().expect("UTF-8 path");

    let run = accolade_binary(&["--config", config, "run", "--as-of", "2026-06-15"]);
    let check = accolade_binary(&["--config", config, "check"]);

    assert_eq!(run.code, 2, "{}", run.describe());
    for (out, what) in [(&run.stderr, &run), (&check.stdout, &check)] {
        assert!(out.contains("badge 'bad': formula, column 17:"), "{}", what.describe());
        assert!(out.contains("metric.posts >= AND roles in ['A']"), "{}", what.describe());
        // Indented as a block, the caret still sits under 'AND'.
        let formula_line = out.lines().find(|l| l.ends_with("metric.posts >= AND roles in ['A']")).unwrap_or_default();
        let indent = formula_line.len() - "metric.posts >= AND roles in ['A']".len();
        let caret = format!("{}^ expected a number after '>='", " ".repeat(indent + 16));
        assert!(out.lines().any(|l| l == caret), "no line {caret:?}:\n{}", what.describe());
    }
    assert_eq!(check.code, 1, "{}", check.describe());
    // Nothing ran: not even the good badge was awarded.
    assert!(!host.is_migrated().await);
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn check_warns_about_a_metric_the_metrics_source_does_not_have_without_a_problem(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=2, "2026-01-01 00:00:00").await;
    host.insert("counters", "user_id, counter, amount", &["1, 'kudos', 3"]).await;
    let badges = formula_badge("typo", "metric.kudos >= 1 AND metric.kudoz >= 1 OR metric.posts >= 9")
        + &formula_badge("fine", "metric.kudos >= 1");

    let report = check_report(&host, &badges).await;

    assert_eq!(report.problems, Vec::<String>::new());
    assert_eq!(report.warnings.len(), 1, "{:#?}", report.warnings);
    let warning = &report.warnings[0];
    assert!(warning.contains("'typo'") && warning.contains("'kudoz'"), "{warning}");
    let check = accolade_binary(&["--config", host.dir().join("accolade.toml").to_str().expect("UTF-8"), "check"]);
    assert_eq!(check.code, 0, "{}", check.describe());
    assert!(check.stdout.contains("warning:") && check.stdout.contains("kudoz"), "{}", check.describe());
}

/// `user_id in [1] OR user_id in [2] OR …` with `clauses` clauses.
fn or_chain(clauses: i64) -> String {
    (1..=clauses).map(|id| format!("user_id in [{id}]")).collect::<Vec<_>>().join(" OR ")
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn an_or_chain_of_256_clauses_is_evaluated(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(250..=260, "2026-01-01 00:00:00").await;
    let plan = plan_in(&host, "UTC", &formula_badge("chain", &or_chain(256)));

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.holders("chain").await, (250..=256).collect::<Vec<i64>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn check_refuses_an_or_chain_of_257_clauses_and_points_at_the_last_or() {
    let host = TestHost::for_formulas().await;
    let formula = or_chain(257);

    let report = check_report(&host, &formula_badge("chain", &formula)).await;

    assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
    let problem = &report.problems[0];
    let last_or = formula.rfind(" OR ").expect("a chain has ORs") + 2;
    assert!(problem.starts_with(&format!("badge 'chain': formula, column {}:\n", last_or)), "{problem}");
    assert!(problem.contains("formula is too big: more than 256 levels"), "{problem}");
}

// ---------------------------------------------------------------------------------------
// The fingerprint of a published formula
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn reformatting_a_published_formula_is_accepted_but_changing_its_threshold_is_refused(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=4, "2026-01-01 00:00:00").await;
    host.insert("member_roles", "user_id, role", &["1, 'Expert'", "2, 'Expert'", "3, 'Expert'", "4, 'Helper'"]).await;
    host.add_events("posts", 1, &["2026-03-01 10:00:00", "2026-03-02 10:00:00"]).await;
    host.add_events("posts", 2, &["2026-03-01 10:00:00"]).await;
    host.add_events("posts", 3, &["2026-03-01 10:00:00"]).await;
    let v1 = "metric.posts >= 2 AND (roles in ['Expert'] OR NOT setting.theme = 'dark')";
    let reformatted = "  metric.posts>=2.0   and ((roles IN [\"Expert\"]) or not setting.theme = \"dark\")  ";
    let changed = "metric.posts >= 1 AND (roles in ['Expert'] OR NOT setting.theme = 'dark')";
    host.run(&plan_in(&host, "UTC", &formula_badge("expert", v1)), at("2026-06-15T12:00:00Z")).await;
    assert_eq!(host.holders("expert").await, vec![1]);
    host.add_events("posts", 2, &["2026-06-20 10:00:00"]).await;

    let report =
        host.run(&plan_in(&host, "UTC", &formula_badge("expert", reformatted)), at("2026-07-01T00:00:00Z")).await;

    assert_eq!(status(&report, "expert"), "evaluated");
    assert!(!report.refused());
    assert_eq!(host.holders("expert").await, vec![1, 2]);

    let report = host.run(&plan_in(&host, "UTC", &formula_badge("expert", changed)), at("2026-07-02T00:00:00Z")).await;

    assert_eq!(status(&report, "expert"), "refused");
    assert!(report.refused());
    let message = report.badges[0].message.clone().expect("a refused badge carries a message");
    assert!(message.contains("'expert'"), "{message}");
    // Under the changed formula 3 would qualify; the refused badge did not move.
    assert_eq!(host.holders("expert").await, vec![1, 2]);
}

// ---------------------------------------------------------------------------------------
// Found while testing formulas on MariaDB
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_run_holding_the_lock_of_one_mysql_database_does_not_block_a_run_on_another() {
    let Some(_backend) = use_backend(Backend::MySql) else { return };
    let busy = TestHost::for_formulas().await;
    let host = TestHost::for_formulas().await;
    host.add_members(1..=2, "2026-01-01 00:00:00").await;
    let busy_db = Db::connect(busy.url()).await.expect("connecting to the busy database");
    let held = acquire_lock(&Store::new(busy_db.clone()), None, true).await.expect("taking the busy database's lock");
    let plan = host.plan(&host.config_in("UTC", &formula_badge("listed", "user_id in [1]"), &host.formula_sources()));

    let report = host.try_run(&plan, at("2026-06-15T12:00:00Z")).await;

    drop(held);
    busy_db.close().await;
    let report = report.unwrap_or_else(|e| panic!("the run on another database should not wait for this lock: {e:#}"));
    assert_eq!(status(&report, "listed"), "evaluated");
    assert_eq!(host.holders("listed").await, vec![1]);
}

/// Member ids too far apart to pack into one integer with the day take the two-column plan:
/// both plans must agree (streaks and best weeks alike). SQLite, whose INTEGER is 64-bit in
/// the canonical schema.
#[tokio::test(flavor = "multi_thread")]
async fn streaks_and_best_weeks_are_the_same_for_ids_at_the_ends_of_the_integer_range() {
    let host = TestHost::on(Backend::Sqlite).await;
    host.exec(FORMULA_SCHEMA).await;
    let (low, high) = (-(1_i64 << 62), 1_i64 << 62);
    host.add_members([low, 7, high], "2026-01-01 00:00:00").await;
    for id in [low, high] {
        host.add_events("sign_ins", id, &["2026-06-01 13:00:00", "2026-06-02 13:00:00", "2026-06-03 13:00:00"]).await;
    }
    host.add_events("sign_ins", 7, &["2026-06-01 13:00:00", "2026-06-03 13:00:00"]).await;
    let connections = ["2026-06-01 13:00:00", "2026-06-02 13:00:00", "2026-06-09 13:00:00"];
    host.add_events("connections", high, &connections).await;
    host.add_events("connections", 7, &connections[..1]).await;
    let badges = formula_badge("streak-3", "setting.user.max_consecutive_logins >= 3")
        + &badge("weekly-2", r#"{ type = "social_connections", min = 2, period = "week" }"#);
    let plan = plan_in(&host, "UTC", &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.holders("streak-3").await, vec![low, high]);
    assert_eq!(host.holders("weekly-2").await, vec![high]);
}
