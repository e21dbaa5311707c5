//! Every rule type at its boundaries: exact thresholds, calendar edges in the evaluation
//! timezone, the evaluation instant, and every way a host may write timestamps and booleans.
//!
//! Instants in America/New_York are written to the host as UTC text; the comment next to
//! each gives the local reading. June is EDT (UTC-4), January to early March is EST (UTC-5).

use crate::support::{Backend, CANONICAL_SOURCES, TestHost, at, badge, pairs, use_backend};

const NEW_YORK: &str = "America/New_York";

// ---------------------------------------------------------------------------------------
// posts_sent
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn posts_sent_is_earned_at_exactly_min_posts_and_not_at_one_less(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members(1..=3, "2026-01-01 00:00:00").await;
    host.add_events("posts", 1, &["2026-03-01 10:00:00", "2026-03-02 10:00:00"]).await;
    host.add_events("posts", 2, &["2026-03-01 10:00:00", "2026-03-02 10:00:00", "2026-03-03 10:00:00"]).await;
    let plan = host.plan(&host.config(&badge("poster", r#"{ type = "posts_sent", min = 3 }"#), CANONICAL_SOURCES));

    let report = host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("poster", 2)]));
    assert_eq!(report.new_awards("poster"), 1);
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn rows_after_as_of_do_not_count_and_rows_exactly_at_as_of_do(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members(1..=4, "2026-01-01 00:00:00").await;
    // Posts: 1 has its second post one second too late, 2 exactly at as_of.
    host.add_events("posts", 1, &["2026-06-01 00:00:00", "2026-06-15 12:00:01"]).await;
    host.add_events("posts", 2, &["2026-06-01 00:00:00", "2026-06-15 12:00:00"]).await;
    // Connections in the same week (Monday 2026-06-15): same pattern for 3 and 4.
    host.add_events("connections", 3, &["2026-06-15 11:00:00", "2026-06-15 12:00:01"]).await;
    host.add_events("connections", 4, &["2026-06-15 11:00:00", "2026-06-15 12:00:00"]).await;
    let badges = badge("poster", r#"{ type = "posts_sent", min = 2 }"#)
        + &badge("friendly", r#"{ type = "social_connections", min = 2, period = "week" }"#);
    let plan = host.plan(&host.config(&badges, CANONICAL_SOURCES));

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("friendly", 4), ("poster", 2)]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn members_created_after_as_of_get_nothing_until_a_later_run(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.exec(
        "INSERT INTO users (user_id, created_at, blocked) VALUES
            (1, '2026-01-01 00:00:00', FALSE),
            (2, '2026-06-15 12:00:01', FALSE),
            (3, '2026-06-15 12:00:00', FALSE);
         INSERT INTO posts (user_id, created_at) VALUES
            (1, '2026-06-01 00:00:00'), (2, '2026-06-01 00:00:00'), (3, '2026-06-01 00:00:00');
         INSERT INTO trainings (user_id, training_id, enrolled_at, progress, passed) VALUES
            (1, 'onboarding', '2026-06-01 00:00:00', 100, TRUE),
            (2, 'onboarding', '2026-06-01 00:00:00', 100, TRUE),
            (3, 'onboarding', '2026-06-01 00:00:00', 100, TRUE);",
    )
    .await;
    let badges = badge("poster", r#"{ type = "posts_sent", min = 1 }"#)
        + &badge("enrolled", r#"{ type = "training_enrolled", training = "onboarding" }"#)
        + &badge("member", r#"{ type = "account_age", min = "0 days" }"#);
    let plan = host.plan(&host.config(&badges, CANONICAL_SOURCES));

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;
    assert_eq!(
        host.awards().await,
        pairs(&[("enrolled", 1), ("enrolled", 3), ("member", 1), ("member", 3), ("poster", 1), ("poster", 3),])
    );

    host.run(&plan, at("2026-06-15T12:00:01Z")).await;
    assert_eq!(host.holders("member").await, vec![1, 2, 3]);
    assert_eq!(host.holders("poster").await, vec![1, 2, 3]);
    assert_eq!(host.holders("enrolled").await, vec![1, 2, 3]);
}

// ---------------------------------------------------------------------------------------
// social_connections, period = "week"
// ---------------------------------------------------------------------------------------

fn week_badge(min: u32) -> String {
    badge("butterfly", &format!(r#"{{ type = "social_connections", min = {min}, period = "week" }}"#))
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn social_connections_need_min_inside_one_week_not_in_total(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members(1..=3, "2026-01-01 00:00:00").await;
    // 1: four in the week of Monday 2026-06-01 and four in the next: eight, never five.
    host.add_events(
        "connections",
        1,
        &[
            "2026-06-01 10:00:00",
            "2026-06-02 10:00:00",
            "2026-06-03 10:00:00",
            "2026-06-04 10:00:00",
            "2026-06-08 10:00:00",
            "2026-06-09 10:00:00",
            "2026-06-10 10:00:00",
            "2026-06-11 10:00:00",
        ],
    )
    .await;
    // 2: exactly five in one week, long ago (any week in history counts).
    host.add_events(
        "connections",
        2,
        &[
            "2026-02-02 10:00:00",
            "2026-02-03 10:00:00",
            "2026-02-04 10:00:00",
            "2026-02-05 10:00:00",
            "2026-02-08 10:00:00",
        ],
    )
    .await;
    // 3: four in one week.
    host.add_events(
        "connections",
        3,
        &["2026-06-01 10:00:00", "2026-06-02 10:00:00", "2026-06-03 10:00:00", "2026-06-07 10:00:00"],
    )
    .await;
    let plan = host.plan(&host.config(&week_badge(5), CANONICAL_SOURCES));

    host.run(&plan, at("2026-06-30T00:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("butterfly", 2)]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn connection_on_sunday_night_counts_for_that_week(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members([1], "2026-01-01 00:00:00").await;
    host.add_events(
        "connections",
        1,
        &[
            "2026-06-08 13:00:00", // Mon 06-08 09:00 EDT
            "2026-06-09 13:00:00", // Tue
            "2026-06-10 13:00:00", // Wed
            "2026-06-11 13:00:00", // Thu
            "2026-06-15 03:59:00", // Sun 06-14 23:59 EDT (already Monday in UTC)
        ],
    )
    .await;
    let plan = host.plan(&host.config_in(NEW_YORK, &week_badge(5), CANONICAL_SOURCES));

    host.run(&plan, at("2026-06-30T00:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("butterfly", 1)]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn connection_at_local_monday_midnight_starts_a_new_week(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members(1..=2, "2026-01-01 00:00:00").await;
    // 1: Tue-Fri of the week of 06-08, then Monday 06-15 00:00 EDT: four and one.
    host.add_events(
        "connections",
        1,
        &[
            "2026-06-09 13:00:00",
            "2026-06-10 13:00:00",
            "2026-06-11 13:00:00",
            "2026-06-12 13:00:00",
            "2026-06-15 04:00:00", // Mon 06-15 00:00 EDT
        ],
    )
    .await;
    // 2: Sunday 06-14 23:59 EDT, then four in the week of 06-15: one and four (in UTC,
    // all five would be in the week of 06-15).
    host.add_events(
        "connections",
        2,
        &[
            "2026-06-15 03:59:00", // Sun 06-14 23:59 EDT
            "2026-06-15 13:00:00",
            "2026-06-16 13:00:00",
            "2026-06-17 13:00:00",
            "2026-06-18 13:00:00",
        ],
    )
    .await;
    let plan = host.plan(&host.config_in(NEW_YORK, &week_badge(5), CANONICAL_SOURCES));

    host.run(&plan, at("2026-06-30T00:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[]));
}

#[tokio::test(flavor = "multi_thread")]
async fn five_connections_across_sunday_night_split_four_and_one_but_five_in_one_week_earn_the_badge() {
    let host = TestHost::canonical().await;
    host.add_members(1..=2, "2026-01-01 00:00:00").await;
    // 1: Sunday 06-14 20:00, 21:00, 22:00, 23:59 EDT and Monday 06-15 00:00 EDT.
    // Local weeks: 4 + 1. (In UTC all five are on Monday.)
    host.add_events(
        "connections",
        1,
        &[
            "2026-06-15 00:00:00",
            "2026-06-15 01:00:00",
            "2026-06-15 02:00:00",
            "2026-06-15 03:59:00",
            "2026-06-15 04:00:00",
        ],
    )
    .await;
    // 2: Monday 06-15 00:00 EDT to Sunday 06-21 23:59 EDT: one local week.
    // (In UTC the last one is on Monday 06-22.)
    host.add_events(
        "connections",
        2,
        &[
            "2026-06-15 04:00:00",
            "2026-06-16 16:00:00",
            "2026-06-17 16:00:00",
            "2026-06-19 16:00:00",
            "2026-06-22 03:59:00",
        ],
    )
    .await;
    let plan = host.plan(&host.config_in(NEW_YORK, &week_badge(5), CANONICAL_SOURCES));

    host.run(&plan, at("2026-06-30T00:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("butterfly", 2)]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_week_that_spans_new_year_is_one_week(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members([1], "2025-01-01 00:00:00").await;
    // Tue 2025-12-30 .. Sun 2026-01-04 (EST): one ISO week, two months, two years.
    host.add_events(
        "connections",
        1,
        &[
            "2025-12-30 17:00:00",
            "2025-12-31 17:00:00",
            "2026-01-01 17:00:00",
            "2026-01-02 17:00:00",
            "2026-01-05 04:00:00", // Sun 2026-01-04 23:00 EST
        ],
    )
    .await;
    let badges = week_badge(5) + &badge("networker", r#"{ type = "social_connections", min = 4, period = "month" }"#);
    let plan = host.plan(&host.config_in(NEW_YORK, &badges, CANONICAL_SOURCES));

    host.run(&plan, at("2026-02-01T00:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("butterfly", 1)]));
}

// ---------------------------------------------------------------------------------------
// social_connections, period = "month"
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn month_boundary_is_local_midnight_of_the_first(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members(1..=3, "2025-01-01 00:00:00").await;
    // 1: Jan 31 23:59 EST twice, Feb 1 00:00 EST twice: 2 + 2 (in UTC: 4 in February).
    host.add_events(
        "connections",
        1,
        &["2026-02-01 04:59:00", "2026-02-01 04:59:00", "2026-02-01 05:00:00", "2026-02-01 05:00:00"],
    )
    .await;
    // 2: Jan 5, Jan 31 20:00 and 23:59 EST: 3 in January (in UTC: 1 + 2).
    host.add_events("connections", 2, &["2026-01-05 17:00:00", "2026-02-01 01:00:00", "2026-02-01 04:59:00"]).await;
    // 3: Feb 1 00:00, Feb 2 and Feb 28 23:59 EST: 3 in February (in UTC: 2 + 1).
    host.add_events("connections", 3, &["2026-02-01 05:00:00", "2026-02-02 17:00:00", "2026-03-01 04:59:00"]).await;
    let plan = host.plan(&host.config_in(
        NEW_YORK,
        &badge("networker", r#"{ type = "social_connections", min = 3, period = "month" }"#),
        CANONICAL_SOURCES,
    ));

    host.run(&plan, at("2026-06-01T00:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("networker", 2), ("networker", 3)]));
}

// ---------------------------------------------------------------------------------------
// account_age
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn one_month_after_january_31_is_february_28_and_blocked_members_never_qualify(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    // All created on Jan 31 10:00 EST; 2 is blocked; 3 a second later.
    host.exec(
        "INSERT INTO users (user_id, created_at, blocked) VALUES
            (1, '2026-01-31 15:00:00', FALSE),
            (2, '2026-01-31 15:00:00', TRUE),
            (3, '2026-01-31 15:00:01', FALSE)",
    )
    .await;
    let plan = host.plan(&host.config_in(
        NEW_YORK,
        &badge("month-old", r#"{ type = "account_age", min = "1 months" }"#),
        CANONICAL_SOURCES,
    ));

    host.run(&plan, at("2026-02-28T14:59:59Z")).await; // Feb 28 09:59:59 EST
    assert_eq!(host.awards().await, pairs(&[]));

    host.run(&plan, at("2026-02-28T15:00:00Z")).await; // Feb 28 10:00 EST
    assert_eq!(host.awards().await, pairs(&[("month-old", 1)]));

    host.run(&plan, at("2026-11-01T00:00:00Z")).await;
    assert_eq!(host.awards().await, pairs(&[("month-old", 1), ("month-old", 3)]));
    let awards = host.stored_awards().await;
    assert_eq!(awards[0].awarded_at, "2026-02-28T15:00:00Z");
    assert_eq!(awards[1].awarded_at, "2026-11-01T00:00:00Z");
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn account_age_counts_months_on_the_local_calendar(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    // 2026-01-31 03:00 UTC is Jan 30 22:00 EST: a month later is Feb 28 22:00 EST
    // (Mar 1 03:00 UTC), not Feb 28 03:00 UTC as the UTC calendar would say.
    host.exec("INSERT INTO users (user_id, created_at, blocked) VALUES (1, '2026-01-31 03:00:00', FALSE)").await;
    let plan = host.plan(&host.config_in(
        NEW_YORK,
        &badge("month-old", r#"{ type = "account_age", min = "1 month" }"#),
        CANONICAL_SOURCES,
    ));

    host.run(&plan, at("2026-03-01T02:59:59Z")).await;
    assert_eq!(host.awards().await, pairs(&[]));

    host.run(&plan, at("2026-03-01T03:00:00Z")).await;
    assert_eq!(host.awards().await, pairs(&[("month-old", 1)]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn account_age_is_reached_exactly_at_the_eligibility_instant(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members([1], "2026-05-01 12:00:00").await;
    host.add_members([2], "2026-05-01 12:00:01").await;
    let plan =
        host.plan(&host.config(&badge("thirty", r#"{ type = "account_age", min = "30 days" }"#), CANONICAL_SOURCES));

    host.run(&plan, at("2026-05-31T12:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("thirty", 1)]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_day_of_account_age_is_a_calendar_day_across_the_spring_dst_change(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    // Sat 2026-03-07 12:00 EST; clocks go forward on Sunday 03-08, so the next local noon
    // (12:00 EDT, 16:00 UTC) comes 23 hours later.
    host.add_members([1], "2026-03-07 17:00:00").await;
    host.add_members([2], "2026-03-07 17:00:01").await;
    let plan = host.plan(&host.config_in(
        NEW_YORK,
        &badge("day-old", r#"{ type = "account_age", min = "1 day" }"#),
        CANONICAL_SOURCES,
    ));

    host.run(&plan, at("2026-03-08T16:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("day-old", 1)]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn account_age_in_years_and_weeks_clips_february_29(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members([1], "2024-02-29 12:00:00").await;
    host.add_members([2], "2024-03-01 12:00:00").await;
    host.add_members([3], "2026-02-14 12:00:00").await;
    host.add_members([4], "2026-02-14 12:00:01").await;
    let badges = badge("veteran", r#"{ type = "account_age", min = "2 years" }"#)
        + &badge("fortnight", r#"{ type = "account_age", min = "2 weeks" }"#);
    let plan = host.plan(&host.config(&badges, CANONICAL_SOURCES));

    host.run(&plan, at("2026-02-28T12:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("fortnight", 1), ("fortnight", 2), ("fortnight", 3), ("veteran", 1),]));
}

// ---------------------------------------------------------------------------------------
// trainings
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn training_rules_tell_completed_passed_and_enrolled_apart(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members(1..=7, "2026-01-01 00:00:00").await;
    host.exec(
        "INSERT INTO trainings (user_id, training_id, enrolled_at, progress, passed) VALUES
            (1, 'onboarding', '2026-06-01 00:00:00', 100, FALSE),
            (2, 'onboarding', '2026-06-01 00:00:00', 99, TRUE),
            (3, 'advanced', '2026-06-01 00:00:00', 100, TRUE),
            (4, 'onboarding', NULL, NULL, NULL),
            (5, 'onboarding', '2026-06-15 12:00:01', 100, TRUE),
            (7, 'onboarding', '2026-06-15 12:00:00', 100, TRUE)",
    )
    .await;
    let badges = badge("completed", r#"{ type = "training_completed", training = "onboarding" }"#)
        + &badge("passed", r#"{ type = "training_passed", training = "onboarding" }"#)
        + &badge("enrolled", r#"{ type = "training_enrolled", training = "onboarding" }"#);
    let plan = host.plan(&host.config(&badges, CANONICAL_SOURCES));

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.holders("completed").await, vec![1, 7]);
    assert_eq!(host.holders("passed").await, vec![2, 7]);
    assert_eq!(host.holders("enrolled").await, vec![1, 2, 4, 7]);
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn numeric_training_ids_match_whether_written_as_numbers_or_text(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members(1..=2, "2026-01-01 00:00:00").await;
    host.exec(
        "CREATE TABLE course_progress (member INTEGER NOT NULL, course INTEGER NOT NULL, pct INTEGER NOT NULL);
         INSERT INTO course_progress (member, course, pct) VALUES (1, 101, 100), (2, 1010, 100);",
    )
    .await;
    let sources = r#"
users = "SELECT user_id, created_at, blocked FROM users"
trainings = "SELECT member AS user_id, course AS training_id, NULL AS enrolled_at, pct AS progress, NULL AS passed FROM course_progress"
"#;
    let badges = badge("by-number", r#"{ type = "training_completed", training = 101 }"#)
        + &badge("by-text", r#"{ type = "training_completed", training = "101" }"#);
    let plan = host.plan(&host.config(&badges, sources));

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("by-number", 1), ("by-text", 1)]));
}

// ---------------------------------------------------------------------------------------
// activity_since
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn activity_since_excludes_activity_before_that_local_date(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members(1..=3, "2026-01-01 00:00:00").await;
    // activity_since = 2026-06-01 in New York is 2026-06-01 04:00 UTC.
    host.add_events("posts", 1, &["2026-06-01 04:00:00", "2026-06-10 00:00:00"]).await;
    host.add_events("posts", 2, &["2026-06-01 03:59:59", "2026-06-10 00:00:00"]).await;
    host.add_events("posts", 3, &["2026-05-01 00:00:00", "2026-05-02 00:00:00", "2026-05-03 00:00:00"]).await;
    host.exec(
        "INSERT INTO trainings (user_id, training_id, enrolled_at, progress, passed) VALUES
            (1, 'onboarding', '2026-06-01 04:00:00', 0, FALSE),
            (2, 'onboarding', NULL, 0, FALSE),
            (3, 'onboarding', '2026-06-01 03:59:59', 0, FALSE)",
    )
    .await;
    let badges = r#"
[[badges]]
id = "summer-poster"
name = "Summer Poster"
activity_since = "2026-06-01"
rule = { type = "posts_sent", min = 2 }

[[badges]]
id = "poster"
name = "Poster"
rule = { type = "posts_sent", min = 2 }

[[badges]]
id = "summer-student"
name = "Summer Student"
activity_since = "2026-06-01"
rule = { type = "training_enrolled", training = "onboarding" }

[[badges]]
id = "student"
name = "Student"
rule = { type = "training_enrolled", training = "onboarding" }
"#;
    let plan = host.plan(&host.config_in(NEW_YORK, badges, CANONICAL_SOURCES));

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.holders("summer-poster").await, vec![1]);
    assert_eq!(host.holders("poster").await, vec![1, 2, 3]);
    assert_eq!(host.holders("summer-student").await, vec![1]);
    assert_eq!(host.holders("student").await, vec![1, 2, 3]);
}

// ---------------------------------------------------------------------------------------
// How hosts write timestamps and booleans
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn text_timestamps_with_space_t_fraction_and_offset_are_utc_unless_they_carry_an_offset(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::new().await;
    // The evaluation timezone is New York, but zone-less source text is still UTC.
    host.exec(
        "CREATE TABLE users (user_id INTEGER NOT NULL, created_at TEXT NOT NULL, blocked BOOLEAN NOT NULL);
         CREATE TABLE posts (user_id INTEGER NOT NULL, created_at TEXT NOT NULL);
         INSERT INTO users (user_id, created_at, blocked) VALUES
            (1, '2026-01-01 00:00:00', FALSE),
            (2, '2026-01-01T00:00:00', FALSE),
            (3, '2026-01-01 00:00:00.5', FALSE),
            (4, '2026-01-01T00:00:00.123456Z', FALSE),
            (5, '2026-01-01 02:00:00+02:00', FALSE),
            (6, '2026-01-01T00:00:00-05:00', FALSE),
            (7, '2026-01-01T00:00:00Z', FALSE),
            (8, '2026-01-01 00:00:00', FALSE),
            (9, '2026-01-01 00:00:00', FALSE),
            (10, '2026-06-15T12:00:00.000001Z', FALSE);
         INSERT INTO posts (user_id, created_at) VALUES
            (1, '2026-06-15 12:00:00'),
            (2, '2026-06-15T12:00:00'),
            (3, '2026-06-15 12:00:00.000001'),
            (4, '2026-06-15T11:59:59.999999'),
            (5, '2026-06-15 14:00:00+02:00'),
            (6, '2026-06-15T08:00:01-04:00'),
            (7, '2026-06-15T12:00:00Z'),
            (8, '2026-06-15 12:00:01'),
            (9, '2026-06-15T07:59:59.5-04:00'),
            (10, '2026-06-01 00:00:00');",
    )
    .await;
    let sources = r#"
users = "SELECT user_id, created_at, blocked FROM users"
posts = "SELECT user_id, created_at FROM posts"
"#;
    let plan = host.plan(&host.config_in(NEW_YORK, &badge("poster", r#"{ type = "posts_sent", min = 1 }"#), sources));

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.holders("poster").await, vec![1, 2, 4, 5, 7, 9]);
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn integer_epoch_seconds_are_read_as_timestamps(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::new().await;
    let as_of = at("2026-06-15T12:00:00Z");
    let t = as_of.timestamp();
    host.exec(&format!(
        "CREATE TABLE users (user_id INTEGER NOT NULL, created_at INTEGER NOT NULL, blocked BOOLEAN NOT NULL);
         CREATE TABLE posts (user_id INTEGER NOT NULL, created_at INTEGER NOT NULL);
         INSERT INTO users (user_id, created_at, blocked) VALUES
            (1, {created}, FALSE), (2, {created}, FALSE), (3, {late}, FALSE), (4, {t}, FALSE);
         INSERT INTO posts (user_id, created_at) VALUES
            (1, {t}), (2, {late}), (3, {created}), (4, {t});",
        created = t - 86_400 * 30,
        late = t + 1,
    ))
    .await;
    let sources = r#"
users = "SELECT user_id, created_at, blocked FROM users"
posts = "SELECT user_id, created_at FROM posts"
"#;
    let badges = badge("poster", r#"{ type = "posts_sent", min = 1 }"#)
        + &badge("month-old", r#"{ type = "account_age", min = "30 days" }"#);
    let plan = host.plan(&host.config(&badges, sources));

    host.run(&plan, as_of).await;

    assert_eq!(host.awards().await, pairs(&[("month-old", 1), ("month-old", 2), ("poster", 1), ("poster", 4)]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn native_timestamps_of_the_host_database_are_read(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::new().await;
    let ty = host.native_timestamp_type();
    let created = host.native_timestamp("2026-05-16T12:00:00Z");
    let at_as_of = host.native_timestamp("2026-06-15T12:00:00Z");
    let late = host.native_timestamp("2026-06-15T12:00:01Z");
    host.exec(&format!(
        "CREATE TABLE users (user_id INTEGER NOT NULL, created_at {ty} NOT NULL, blocked BOOLEAN NOT NULL);
         CREATE TABLE posts (user_id INTEGER NOT NULL, created_at {ty} NOT NULL);
         INSERT INTO users (user_id, created_at, blocked) VALUES
            (1, {created}, FALSE), (2, {created}, FALSE), (3, {late}, FALSE), (4, {at_as_of}, FALSE);
         INSERT INTO posts (user_id, created_at) VALUES
            (1, {at_as_of}), (2, {late}), (3, {created}), (4, {at_as_of});"
    ))
    .await;
    let sources = r#"
users = "SELECT user_id, created_at, blocked FROM users"
posts = "SELECT user_id, created_at FROM posts"
"#;
    let badges = badge("poster", r#"{ type = "posts_sent", min = 1 }"#)
        + &badge("month-old", r#"{ type = "account_age", min = "30 days" }"#);
    let plan = host.plan(&host.config(&badges, sources));

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("month-old", 1), ("month-old", 2), ("poster", 1), ("poster", 4)]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn text_epoch_and_native_timestamps_work_side_by_side_in_one_config(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::new().await;
    let as_of = at("2026-06-15T12:00:00Z");
    let ty = host.native_timestamp_type();
    let monday = host.native_timestamp("2026-06-15T09:00:00Z");
    let tuesday_late = host.native_timestamp("2026-06-16T09:00:00Z");
    host.exec(&format!(
        "CREATE TABLE users (user_id INTEGER NOT NULL, created_at INTEGER NOT NULL, blocked BOOLEAN NOT NULL);
         CREATE TABLE posts (user_id INTEGER NOT NULL, created_at TEXT NOT NULL);
         CREATE TABLE connections (user_id INTEGER NOT NULL, created_at {ty} NOT NULL);
         INSERT INTO users (user_id, created_at, blocked) VALUES
            (1, {old}, FALSE), (2, {young}, FALSE);
         INSERT INTO posts (user_id, created_at) VALUES
            (1, '2026-06-15T12:00:00Z'), (2, '2026-06-15 11:00:00'), (2, '2026-06-15 12:00:00.5');
         INSERT INTO connections (user_id, created_at) VALUES
            (1, {monday}), (1, {monday}), (2, {monday}), (2, {tuesday_late});",
        old = as_of.timestamp() - 86_400 * 7,
        young = as_of.timestamp() - 86_400 * 7 + 1,
    ))
    .await;
    let sources = r#"
users = "SELECT user_id, created_at, blocked FROM users"
posts = "SELECT user_id, created_at FROM posts"
connections = "SELECT user_id, created_at FROM connections"
"#;
    let badges = badge("week-old", r#"{ type = "account_age", min = "1 week" }"#)
        + &badge("poster", r#"{ type = "posts_sent", min = 1 }"#)
        + &badge("talker", r#"{ type = "posts_sent", min = 2 }"#)
        + &week_badge(2);
    let plan = host.plan(&host.config(&badges, sources));

    host.run(&plan, as_of).await;

    assert_eq!(host.awards().await, pairs(&[("butterfly", 1), ("poster", 1), ("poster", 2), ("week-old", 1),]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn booleans_may_be_zero_and_one_or_true_and_false_text(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::new().await;
    host.exec(
        "CREATE TABLE users_int (user_id INTEGER NOT NULL, created_at TEXT NOT NULL, blocked INTEGER NOT NULL);
         CREATE TABLE users_text (user_id INTEGER NOT NULL, created_at TEXT NOT NULL, blocked TEXT NOT NULL);
         CREATE TABLE trainings_int (user_id INTEGER NOT NULL, training_id TEXT NOT NULL, passed INTEGER NOT NULL);
         CREATE TABLE trainings_text (user_id INTEGER NOT NULL, training_id TEXT NOT NULL, passed TEXT NOT NULL);
         INSERT INTO users_int (user_id, created_at, blocked) VALUES
            (1, '2026-01-01 00:00:00', 0), (2, '2026-01-01 00:00:00', 1);
         INSERT INTO users_text (user_id, created_at, blocked) VALUES
            (3, '2026-01-01 00:00:00', 'false'), (4, '2026-01-01 00:00:00', 'true');
         INSERT INTO trainings_int (user_id, training_id, passed) VALUES
            (1, 'exam', 0), (2, 'exam', 1);
         INSERT INTO trainings_text (user_id, training_id, passed) VALUES
            (3, 'exam', 'false'), (4, 'exam', 'true');",
    )
    .await;
    // One config per column type (a UNION of integer and text columns is not portable).
    for (suffix, members) in [("int", [1, 2]), ("text", [3, 4])] {
        let sources = format!(
            r#"
users = "SELECT user_id, created_at, blocked FROM users_{suffix}"
trainings = "SELECT user_id, training_id, NULL AS enrolled_at, NULL AS progress, passed FROM trainings_{suffix}"
"#
        );
        let badges = badge(&format!("regular-{suffix}"), r#"{ type = "account_age", min = "1 day" }"#)
            + &badge(&format!("examined-{suffix}"), r#"{ type = "training_passed", training = "exam" }"#);
        let plan = host.plan(&host.config(&badges, &sources));

        host.run(&plan, at("2026-06-15T12:00:00Z")).await;

        assert_eq!(host.holders(&format!("regular-{suffix}")).await, vec![members[0]], "{suffix}");
        assert_eq!(host.holders(&format!("examined-{suffix}")).await, vec![members[1]], "{suffix}");
    }
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn account_age_eligibility_never_goes_back_as_as_of_advances_through_the_fall_dst_change(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    // Created Sat 2026-10-31 01:30 EDT. One calendar day later, 01:30 on Sun 2026-11-01,
    // happens twice: at 05:30 UTC (EDT) and again at 06:30 UTC (EST).
    host.add_members([1], "2026-10-31 05:30:00").await;
    let plan = host.plan(&host.config_in(
        NEW_YORK,
        &badge("day-old", r#"{ type = "account_age", min = "1 day" }"#),
        CANONICAL_SOURCES,
    ));

    let earlier = host.dry_run(&plan, at("2026-11-01T05:45:00Z")).await; // 01:45 EDT
    let later = host.dry_run(&plan, at("2026-11-01T06:10:00Z")).await; // 01:10 EST

    assert_eq!(earlier.new_awards("day-old"), 1, "old enough at 05:45 UTC");
    assert_eq!(later.new_awards("day-old"), 1, "still old enough 25 minutes later");
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_host_without_any_rows_awards_nothing_and_does_not_fail(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    let badges = week_badge(1)
        + &badge("networker", r#"{ type = "social_connections", min = 1, period = "month" }"#)
        + &badge("member", r#"{ type = "account_age", min = "0 days" }"#)
        + &badge("poster", r#"{ type = "posts_sent", min = 0 }"#)
        + &badge("completed", r#"{ type = "training_completed", training = "onboarding" }"#)
        + &badge("passed", r#"{ type = "training_passed", training = "onboarding" }"#)
        + &badge("enrolled", r#"{ type = "training_enrolled", training = "onboarding" }"#);
    let plan = host.plan(&host.config_in(NEW_YORK, &badges, CANONICAL_SOURCES));

    let report = host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert!(report.badges.iter().all(|b| b.status == "evaluated"));
    assert_eq!(host.awards().await, pairs(&[]));

    // Members without any activity: only the rules that need none are earned.
    host.add_members([1], "2026-01-01 00:00:00").await;
    host.run(&plan, at("2026-06-15T12:00:00Z")).await;
    assert_eq!(host.awards().await, pairs(&[("member", 1), ("poster", 1)]));
}
