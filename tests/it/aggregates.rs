//! Named event sources, aggregate clauses and member attributes end to end, each at its
//! boundaries, on SQLite, PostgreSQL and MariaDB: `kind`/`item`/`value` of an event source,
//! `within` at its exact start across a DST change, `since` at local midnight, streaks across
//! month and year ends on local days, ISO weeks from Monday 00:00, the current streak, first and
//! last rows, decimal sums, distinct items with NULLs, `user.NAME` of every type, numeric
//! settings, and the errors that name a badge's missing column or unknown source.
//!
//! Timestamps are UTC text; the evaluation timezone is America/New_York unless a test says
//! otherwise, and the comment next to an instant gives its local reading (EST is UTC-5 until
//! 2026-03-08 02:00, EDT UTC-4 after).

use crate::support::{Backend, TestHost, at, formula_badge, formula_badge_since, pairs, status, use_backend};
use accolade::commands::check;
use accolade::config::plan::Plan;

const NEW_YORK: &str = "America/New_York";

/// An event source of its own: video views with a series (`kind`), a video (`item`) and
/// minutes watched (`value`, a decimal).
const VIDEOS: &str = "CREATE TABLE video_views (user_id INTEGER NOT NULL, watched_at TEXT NOT NULL, \
                      series TEXT, video_id INTEGER, minutes DECIMAL(10,2))";

/// A formula host with `video_views`, members 1..=`members` created on 2025-01-01.
async fn host_with_videos(members: i64) -> TestHost {
    let host = TestHost::for_formulas().await;
    host.exec(VIDEOS).await;
    host.add_members(1..=members, "2025-01-01 00:00:00").await;
    host
}

/// `[sources]` of a formula host plus `[sources.events] videos`.
fn sources_with_videos(host: &TestHost) -> String {
    let value = host.ident("value");
    format!(
        "{}\n[sources.events]\nvideos = 'SELECT user_id, watched_at AS created_at, series AS kind, video_id AS item, \
         minutes AS {value} FROM video_views'\n",
        host.formula_sources()
    )
}

fn plan_with_videos(host: &TestHost, timezone: &str, badges: &str) -> Plan {
    host.plan(&host.config_waiting(timezone, badges, &sources_with_videos(host)))
}

fn plan_in(host: &TestHost, timezone: &str, badges: &str) -> Plan {
    host.plan(&host.config_waiting(timezone, badges, &host.formula_sources()))
}

async fn add_views(host: &TestHost, rows: &[&str]) {
    host.insert("video_views", "user_id, watched_at, series, video_id, minutes", rows).await;
}

// ---------------------------------------------------------------------------------------
// An event source's kind, item and value
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn an_event_source_counts_rows_distinct_items_and_exact_decimal_sums_of_the_kinds_asked_for(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_videos(4).await;
    add_views(
        &host,
        &[
            // 1: videos 1 and 2 of the series (video 1 twice), 0.70 + 0.60 + 0.00 = 1.3 minutes.
            "1, '2026-02-01 10:00:00', 'lectora-101', 1, 0.70",
            "1, '2026-02-02 10:00:00', 'lectora-101', 1, 0.60",
            "1, '2026-02-03 10:00:00', 'lectora-101', 2, NULL",
            // 2: one video of the series and a NULL item; 0.70 + 0.59 = 1.29 minutes.
            "2, '2026-02-01 10:00:00', 'lectora-101', 1, 0.70",
            "2, '2026-02-02 10:00:00', 'lectora-101', NULL, 0.59",
            // 3: three views of other series (no kind is one of them).
            "3, '2026-02-01 10:00:00', 'intro', 5, 10",
            "3, '2026-02-02 10:00:00', NULL, 6, 10",
            "3, '2026-02-03 10:00:00', 'advanced', 7, 10",
        ],
    )
    .await;
    let badges = formula_badge("viewer", "count(videos) >= 3")
        + &formula_badge("series", "distinct(videos, kind = 'lectora-101') >= 2")
        + &formula_badge("minutes", "sum(videos, kind = 'lectora-101') >= 1.3")
        + &formula_badge("either", "count(videos, kind in ['intro', 'advanced']) >= 2")
        + &formula_badge("both-filters", "count(videos, kind in ['intro', 'advanced'], kind = 'intro') >= 2")
        + &formula_badge("no-item", "distinct(videos) = 1");
    let plan = plan_with_videos(&host, "UTC", &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(
        host.awards().await,
        pairs(&[("either", 3), ("minutes", 1), ("no-item", 2), ("series", 1), ("viewer", 1), ("viewer", 3),])
    );
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn an_event_source_obeys_the_evaluation_instant_and_activity_since(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_videos(2).await;
    add_views(
        &host,
        &[
            // 1: one view before activity_since, one at it, one after the evaluation instant.
            "1, '2026-01-31 23:59:59', 'a', 1, 1",
            "1, '2026-02-01 00:00:00', 'a', 2, 1",
            "1, '2026-06-15 12:00:01', 'a', 3, 1",
            // 2: two views after activity_since.
            "2, '2026-03-01 00:00:00', 'a', 1, 1",
            "2, '2026-03-02 00:00:00', 'a', 2, 1",
        ],
    )
    .await;
    let badges = formula_badge_since("two", "count(videos) >= 2", "2026-02-01");
    let plan = plan_with_videos(&host, "UTC", &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("two", 2)]));
}

// ---------------------------------------------------------------------------------------
// within and since
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn within_starts_exactly_n_local_days_before_the_evaluation_instant_across_a_dst_change(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=4, "2025-01-01 00:00:00").await;
    // As of 2026-03-08 12:00 EDT (16:00Z), one local day before is 2026-03-07 12:00 EST
    // (17:00Z): 23 hours, because clocks went forward that night.
    host.add_events("posts", 1, &["2026-03-07 17:00:00"]).await; // 12:00:00 EST: the exact start
    host.add_events("posts", 2, &["2026-03-07 16:59:59"]).await; // 11:59:59 EST: just before
    host.add_events("posts", 3, &["2026-03-08 16:00:00"]).await; // the evaluation instant itself
    host.add_events("posts", 4, &["2026-03-08 16:00:01"]).await; // after it
    let badges = formula_badge("recent", "count(posts, within = '1 day') >= 1")
        + &formula_badge("not-recent", "NOT count(posts, within = '1 day') >= 1");
    let plan = plan_in(&host, NEW_YORK, &badges);

    host.run(&plan, at("2026-03-08T16:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("not-recent", 2), ("not-recent", 4), ("recent", 1), ("recent", 3)]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn within_a_month_of_the_last_day_of_march_starts_on_the_last_day_of_february(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=2, "2025-01-01 00:00:00").await;
    // As of 2026-03-31 12:00 EDT (16:00Z), a month before is 2026-02-28 12:00 EST (17:00Z).
    host.add_events("posts", 1, &["2026-02-28 17:00:00", "2026-03-30 10:00:00"]).await;
    host.add_events("posts", 2, &["2026-02-28 16:59:59", "2026-03-30 10:00:00"]).await;
    let plan = plan_in(&host, NEW_YORK, &formula_badge("monthly", "count(posts, within = '1 month') >= 2"));

    host.run(&plan, at("2026-03-31T16:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("monthly", 1)]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn since_counts_rows_from_local_midnight_of_its_date(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=2, "2025-01-01 00:00:00").await;
    host.add_events("connections", 1, &["2026-03-01 05:00:00"]).await; // 00:00:00 EST on March 1
    host.add_events("connections", 2, &["2026-03-01 04:59:59"]).await; // 23:59:59 EST on February 28
    let plan = plan_in(&host, NEW_YORK, &formula_badge("march", "count(connections, since = '2026-03-01') >= 1"));

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("march", 1)]));
}

// ---------------------------------------------------------------------------------------
// Days, weeks, streaks
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn streaks_of_local_days_continue_across_month_and_year_ends(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=3, "2025-01-01 00:00:00").await;
    let logins = |user: i64, at: &'static [&'static str]| (user, at);
    for (user, instants) in [
        // 1: December 30, 31, January 1, 2 (local): 4 days across the year's end.
        logins(1, &["2025-12-30 15:00:00", "2025-12-31 15:00:00", "2026-01-01 15:00:00", "2026-01-02 15:00:00"]),
        // 2: December 30 23:30, December 31 18:00 and January 2 01:00 (local): in UTC these are
        // December 31, December 31 and January 2, but locally two consecutive days then a gap.
        logins(2, &["2025-12-31 04:30:00", "2025-12-31 23:00:00", "2026-01-02 06:00:00"]),
        // 3: January 31 and February 1 (local), twice each: 2 days across a month's end.
        logins(3, &["2026-01-31 12:00:00", "2026-01-31 13:00:00", "2026-02-01 12:00:00", "2026-02-02 04:00:00"]),
    ] {
        host.add_events("sign_ins", user, instants).await;
    }
    let badges = formula_badge("four", "streak_days(logins) >= 4")
        + &formula_badge("two", "streak_days(logins) = 2")
        + &formula_badge("old-clause", "setting.user.max_consecutive_logins >= 4");
    let plan = plan_in(&host, NEW_YORK, &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("four", 1), ("old-clause", 1), ("two", 2), ("two", 3)]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn week_streaks_count_iso_weeks_from_monday_midnight_across_the_years_end(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=3, "2025-01-01 00:00:00").await;
    // 1: one post in each week from Monday 2025-12-22 to the week of Monday 2026-01-12.
    host.add_events(
        "posts",
        1,
        &["2025-12-24 15:00:00", "2025-12-31 15:00:00", "2026-01-07 15:00:00", "2026-01-13 15:00:00"],
    )
    .await;
    // 2: the same but the week of 2026-01-05 is missed: runs of 2 and 1.
    host.add_events("posts", 2, &["2025-12-24 15:00:00", "2025-12-31 15:00:00", "2026-01-13 15:00:00"]).await;
    // 3: Sunday 2026-01-04 23:30 EST and Monday 2026-01-05 00:00 EST are two weeks; then Mondays
    // 2026-01-12 00:00 and 2026-01-19 00:00 EST: 4 weeks, each at a week's edge.
    host.add_events(
        "posts",
        3,
        &["2026-01-05 04:30:00", "2026-01-05 05:00:00", "2026-01-12 05:00:00", "2026-01-19 05:00:00"],
    )
    .await;
    let plan = plan_in(&host, NEW_YORK, &formula_badge("weekly", "streak_weeks(posts) >= 4"));

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("weekly", 1), ("weekly", 3)]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn the_current_streak_ends_on_the_evaluation_day_or_the_day_before(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=4, "2025-01-01 00:00:00").await;
    // The evaluation instant is 2026-01-10 00:30 EST (05:30Z): today is January 10 locally.
    host.add_events("sign_ins", 1, &["2026-01-07 15:00:00", "2026-01-08 15:00:00", "2026-01-09 15:00:00"]).await;
    host.add_events("sign_ins", 2, &["2026-01-06 15:00:00", "2026-01-07 15:00:00", "2026-01-08 15:00:00"]).await;
    // 3: January 8, 9 and 10 00:10 EST (today, before the instant).
    host.add_events("sign_ins", 3, &["2026-01-08 15:00:00", "2026-01-09 15:00:00", "2026-01-10 05:10:00"]).await;
    // 4: a long old streak, and only yesterday since.
    host.add_events(
        "sign_ins",
        4,
        &["2026-01-01 15:00:00", "2026-01-02 15:00:00", "2026-01-03 15:00:00", "2026-01-09 15:00:00"],
    )
    .await;
    let badges = formula_badge("on-a-roll", "current_streak_days(logins) >= 3")
        + &formula_badge("longest", "streak_days(logins) >= 3");
    let plan = plan_in(&host, NEW_YORK, &badges);

    host.run(&plan, at("2026-01-10T05:30:00Z")).await;

    assert_eq!(
        host.awards().await,
        pairs(&[("longest", 1), ("longest", 2), ("longest", 3), ("longest", 4), ("on-a-roll", 1), ("on-a-roll", 3),])
    );
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn active_days_and_the_best_day_split_days_at_local_midnight(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=2, "2025-01-01 00:00:00").await;
    // 1: 23:30 and 23:45 EST on February 1, 00:15 EST on February 2: in UTC all on February 2.
    host.add_events("posts", 1, &["2026-02-02 04:30:00", "2026-02-02 04:45:00", "2026-02-02 05:15:00"]).await;
    // 2: three posts on one local day.
    host.add_events("posts", 2, &["2026-02-02 06:00:00", "2026-02-02 12:00:00", "2026-02-03 04:59:59"]).await;
    let badges = formula_badge("two-days", "active_days(posts) >= 2")
        + &formula_badge("busy-day", "best_day(posts) >= 3")
        + &formula_badge("busy-month", "best_month(posts) >= 3");
    let plan = plan_in(&host, NEW_YORK, &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("busy-day", 2), ("busy-month", 1), ("busy-month", 2), ("two-days", 1)]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn first_and_last_compare_a_members_first_and_last_row_and_never_hold_without_rows(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_videos(3).await;
    add_views(&host, &["1, '2025-12-31 23:59:59', 'a', 1, 1", "1, '2026-03-01 00:00:00', 'b', 2, 1"]).await;
    add_views(&host, &["2, '2026-01-01 00:00:00', 'a', 1, 1", "2, '2026-02-28 23:59:59', 'a', 2, 1"]).await;
    let badges = formula_badge("early", "first(videos) < '2026-01-01'")
        + &formula_badge("lately", "last(videos) >= '2026-03-01'")
        + &formula_badge("lately-a", "last(videos, kind = 'a') >= '2026-03-01'")
        + &formula_badge("not-lately", "NOT last(videos) >= '2026-03-01'");
    let plan = plan_with_videos(&host, "UTC", &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("early", 1), ("lately", 1), ("not-lately", 2), ("not-lately", 3)]));
}

// ---------------------------------------------------------------------------------------
// user.NAME and numeric settings
// ---------------------------------------------------------------------------------------

/// A host whose users have a trust level, a locale, an active flag and an approval time.
async fn host_with_attributes() -> TestHost {
    let host = TestHost::for_formulas().await;
    host.exec("ALTER TABLE users ADD trust_level INTEGER").await;
    host.exec("ALTER TABLE users ADD locale TEXT").await;
    host.exec("ALTER TABLE users ADD active BOOLEAN").await;
    host.exec("ALTER TABLE users ADD approved_at TEXT").await;
    host.insert(
        "users",
        "user_id, created_at, blocked, trust_level, locale, active, approved_at",
        &[
            "1, '2025-01-01 00:00:00', FALSE, 2, 'en', TRUE, '2025-12-31 23:59:59'",
            "2, '2025-01-01 00:00:00', FALSE, 1, 'de', FALSE, '2026-01-01 00:00:00'",
            "3, '2025-01-01 00:00:00', TRUE, 4, 'fr', TRUE, NULL",
            "4, '2025-01-01 00:00:00', FALSE, NULL, NULL, NULL, NULL",
        ],
    )
    .await;
    host
}

fn attribute_sources(host: &TestHost) -> String {
    host.formula_sources().replace(
        "SELECT user_id, created_at, blocked, avatar_changed FROM users",
        "SELECT user_id, created_at, blocked, avatar_changed, trust_level, locale, active, approved_at FROM users",
    )
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn user_attributes_compare_numbers_text_booleans_and_timestamps_and_null_meets_nothing(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_attributes().await;
    let badges = formula_badge("member", "user.trust_level >= 2")
        + &formula_badge("exactly-one", "user.trust_level = 1")
        + &formula_badge("english", "user.locale = 'en'")
        + &formula_badge("not-english", "user.locale != 'en'")
        + &formula_badge("european", "user.locale in ['de', 'fr']")
        + &formula_badge("active", "user.active = true")
        + &formula_badge("inactive", "user.active != true")
        + &formula_badge("approved-early", "user.approved_at < '2026-01-01'")
        + &formula_badge("unblocked", "user.blocked = false AND user.user_id >= 3");
    let plan = host.plan(&host.config_waiting("UTC", &badges, &attribute_sources(&host)));

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(
        host.awards().await,
        pairs(&[
            ("active", 1),
            ("active", 3),
            ("approved-early", 1),
            ("english", 1),
            ("european", 2),
            ("european", 3),
            ("exactly-one", 2),
            ("inactive", 2),
            ("member", 1),
            ("member", 3),
            ("not-english", 2),
            ("not-english", 3),
            ("unblocked", 4),
        ])
    );
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_users_column_the_query_does_not_return_fails_the_badge_in_run_and_check_naming_both(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_attributes().await;
    let badges = formula_badge("leader", "user.trust_level >= 4") + &formula_badge("anyone", "user.locale = 'en'");
    // The users query returns the locale but not the trust level.
    let sources = attribute_sources(&host).replace(", trust_level,", ",");
    let config = host.config_waiting("UTC", &badges, &sources);
    let plan = host.plan(&config);

    let report = host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(status(&report, "leader"), "failed");
    let message = report.badges.iter().find(|b| b.badge_id == "leader").and_then(|b| b.message.clone());
    assert!(message.as_deref().is_some_and(|m| m.contains("'trust_level'")), "{message:?}");
    assert_eq!(status(&report, "anyone"), "evaluated");
    assert_eq!(host.awards().await, pairs(&[("anyone", 1)]));

    let checked = check::report(&host.write_config("accolade.toml", &config)).await;
    let named = checked.problems.iter().filter(|p| p.contains("badge 'leader'") && p.contains("user.trust_level"));
    assert_eq!(named.count(), 1, "{:?}", checked.problems);
    assert!(!checked.problems.iter().any(|p| p.contains("anyone")), "{:?}", checked.problems);
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_setting_compared_with_a_number_reads_it_as_a_number_and_other_values_do_not_qualify(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=5, "2025-01-01 00:00:00").await;
    host.insert(
        "profile_settings",
        "user_id, setting_key, setting_value",
        &["1, 'level', '10'", "2, 'level', '9'", "3, 'level', 'ten'", "4, 'level', ''", "5, 'other', '50'"],
    )
    .await;
    let badges = formula_badge("high", "setting.level >= 9.5")
        + &formula_badge("below-100", "setting.level < 100")
        + &formula_badge("text-ten", "setting.level = '10'");
    let plan = plan_in(&host, "UTC", &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(host.awards().await, pairs(&[("below-100", 1), ("below-100", 2), ("high", 1), ("text-ten", 1)]));
}

// ---------------------------------------------------------------------------------------
// explain and config errors
// ---------------------------------------------------------------------------------------

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn explain_shows_each_aggregate_with_its_best_period_streak_dates_and_window(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members(1..=1, "2025-01-01 00:00:00").await;
    host.add_events("posts", 1, &["2026-06-01 15:00:00", "2026-06-02 15:00:00", "2026-06-03 15:00:00"]).await;
    host.add_events("posts", 1, &["2026-06-10 15:00:00"]).await;
    let badges = formula_badge("streak", "streak_days(posts) >= 3")
        + &formula_badge("best", "best_week(posts) >= 3")
        + &formula_badge("recent", "count(posts, within = '7 days') >= 2");
    let plan = plan_in(&host, NEW_YORK, &badges);

    let explained = host.explain(&plan, 1, at("2026-06-15T16:00:00Z")).await.expect("1 is a member");

    let values = |badge_id: &str| -> Vec<(String, String)> {
        let badge = explained.iter().find(|b| b.badge_id == badge_id).expect("every badge is explained");
        badge.checks().iter().flat_map(|c| c.values.clone()).collect()
    };
    let owned = |items: &[(&str, &str)]| -> Vec<(String, String)> {
        items.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    };
    assert_eq!(values("streak"), owned(&[("longest streak", "3 days (2026-06-01 to 2026-06-03)")]));
    assert_eq!(values("best"), owned(&[("best week", "3 posts (week of 2026-06-01)")]));
    assert_eq!(
        values("recent"),
        owned(&[
            ("count(posts, within = '7 days')", "1"),
            ("counted", "2026-06-08 12:00:00 EDT to 2026-06-15 12:00:00 EDT"),
        ])
    );
    let qualifies = |id: &str| explained.iter().any(|b| b.badge_id == id && b.qualifies);
    assert!(qualifies("streak") && qualifies("best") && !qualifies("recent"), "{explained:#?}");
}

#[test]
fn an_aggregate_over_an_unknown_source_is_a_config_error_naming_the_badge_and_its_position() {
    let config = r#"
[database]
url = "sqlite::memory:"

[sources]
users = "SELECT user_id, created_at, blocked FROM users"

[sources.events]
likes = "SELECT user_id, created_at FROM likes"
Bad-Name = "SELECT user_id, created_at FROM x"

[[badges]]
id = "liked"
name = "Liked"
formula = "count(likes) >= 1 AND count(likez) >= 1 AND count(trainings) >= 1"

[[badges]]
id = "window"
name = "Window"
formula = "count(likes, within = 'a fortnight') >= 1"
"#;
    let raw = accolade::config::parse(config).expect("TOML");
    let errors = accolade::config::plan::compile(raw).expect_err("the config has errors").to_string();
    assert!(errors.contains("[sources.events] 'Bad-Name'"), "{errors}");
    assert!(errors.contains("column 29") && errors.contains("'likez' is not a source"), "{errors}");
    assert!(errors.contains("'trainings' is not an event source"), "{errors}");
    assert!(errors.contains("configured: Bad-Name, likes"), "{errors}");
    assert!(errors.contains("'a fortnight' is not a span"), "{errors}");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_data_reads_event_sources_and_reports_their_bad_values_and_kinds_nobody_has() {
    let host = host_with_videos(2).await;
    add_views(&host, &["1, '2026-02-01 10:00:00', 'intro', 1, 1", "2, 'soon', 'intro', 1, 1"]).await;
    let badges = formula_badge("series", "count(videos, kind in ['intro', 'lectora-101']) >= 1");
    let config = host.write_config("accolade.toml", &host.config(&badges, &sources_with_videos(&host)));
    let path = config.to_str().expect("UTF-8 path");

    let plain = crate::support::accolade_binary(&["--config", path, "check"]);
    let data = crate::support::accolade_binary(&["--config", path, "check", "--data"]);

    assert_eq!(plain.code, 0, "plain check prepares the queries only: {}", plain.describe());
    assert_eq!(data.code, 1, "{}", data.describe());
    for fragment in [
        "source 'videos', column 'created_at'",
        "row 2: cannot read 'soon' as a timestamp",
        "badge 'series': kind 'lectora-101' has no row in source 'videos'",
    ] {
        assert!(data.stdout.contains(fragment), "{fragment}: {}", data.describe());
    }
    assert!(!data.stdout.contains("kind 'intro'"), "{}", data.describe());
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_users_column_is_named_as_the_host_names_it(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.exec("ALTER TABLE users ADD score TEXT").await;
    host.insert(
        "users",
        "user_id, created_at, blocked, score",
        &["1, '2025-01-01 00:00:00', FALSE, '3'", "2, '2025-01-01 00:00:00', FALSE, 'lots'"],
    )
    .await;
    let sources = host.formula_sources().replace(
        "SELECT user_id, created_at, blocked, avatar_changed FROM users",
        "SELECT user_id, created_at, blocked, avatar_changed, score FROM users",
    );
    let plan = host.plan(&host.config_waiting("UTC", &formula_badge("scorer", "user.score >= 1"), &sources));

    let report = host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(status(&report, "scorer"), "failed");
    let message = report.badges.iter().find(|b| b.badge_id == "scorer").and_then(|b| b.message.clone());
    assert!(
        message.as_deref().is_some_and(|m| m.contains("column 'score', row 2") && m.contains("'lots'")),
        "{message:?}"
    );
}
