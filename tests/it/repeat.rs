//! Badges earned more than once, badges with levels, and badges that follow their criterion,
//! each at its boundaries, on SQLite, PostgreSQL and MariaDB: week grants split at Monday 00:00
//! local time and across a DST change, month and year grants at their local edges, a period
//! whose fifth post arrives later, the backfill of past periods, grants per item with NULL
//! items, `max_grants`, levels skipped in one run, revocation and restoration by
//! `revoke_when_unmet` across several runs (manual awards untouched, dry runs harmless, runs of
//! some badges), the config errors of each, and `award --grant` with the CSV export's `grant`
//! column from the binary.
//!
//! Timestamps are UTC text; the evaluation timezone is America/New_York unless a test says
//! otherwise, and the comment next to an instant gives its local reading (EST is UTC-5 until
//! 2026-03-08 02:00, EDT UTC-4 after).

use crate::support::{Backend, TestHost, accolade_binary, at, formula_badge, manual_badge, status, use_backend};
use accolade::commands::run::{BadgeReport, RunOptions, RunReport};
use accolade::config::plan::Plan;

const NEW_YORK: &str = "America/New_York";

/// A published badge with a formula that repeats per `repeat`, with further TOML lines
/// (`extra`, each ending in a newline) before its formula.
fn repeating(id: &str, repeat: &str, formula: &str, extra: &str) -> String {
    formula_badge(id, formula).replacen("formula =", &format!("repeat = \"{repeat}\"\n{extra}formula ="), 1)
}

/// A published badge with a formula whose awards follow it (`revoke_when_unmet = true`),
/// worth `points`.
fn following(id: &str, formula: &str, points: i64) -> String {
    let keys = format!("points = {points}\nrevoke_when_unmet = true\nformula =");
    formula_badge(id, formula).replacen("formula =", &keys, 1)
}

/// The `commenter` badge of the issue: three levels on the member's comments.
const COMMENTER: &str = r#"
[[badges]]
id = "commenter"
name = "Commenter"
measure = "count(posts, kind = 'comment')"
levels = [
  { id = "bronze", name = "Bronze Commenter", min = 10, points = 10 },
  { id = "silver", name = "Silver Commenter", min = 50, points = 25 },
  { id = "gold", name = "Gold Commenter", min = 250, points = 100 },
]
"#;

fn plan_in(host: &TestHost, timezone: &str, badges: &str) -> Plan {
    host.plan(&host.config_waiting(timezone, badges, &host.formula_sources()))
}

/// A formula host with members 1..=`members` created on 2025-01-01.
async fn host_with_members(members: i64) -> TestHost {
    let host = TestHost::for_formulas().await;
    host.add_members(1..=members, "2025-01-01 00:00:00").await;
    host
}

/// `(user_id, grant)` of every award of one badge (revoked ones too), sorted.
async fn grants(host: &TestHost, badge_id: &str) -> Vec<(i64, String)> {
    let mut grants: Vec<(i64, String)> = host
        .stored_awards()
        .await
        .into_iter()
        .filter(|a| a.badge_id == badge_id)
        .map(|a| (a.user_id, a.grant))
        .collect();
    grants.sort();
    grants
}

/// `(user_id, grant)` pairs, for comparing with [`grants`].
fn owned(items: &[(i64, &str)]) -> Vec<(i64, String)> {
    items.iter().map(|(u, g)| (*u, g.to_string())).collect()
}

/// The sources (`rule`, `backfill`, `manual`) of one badge's awards, deduplicated and sorted.
async fn sources_of(host: &TestHost, badge_id: &str) -> Vec<String> {
    let mut sources: Vec<String> =
        host.stored_awards().await.into_iter().filter(|a| a.badge_id == badge_id).map(|a| a.source).collect();
    sources.sort();
    sources.dedup();
    sources
}

/// What a run report says of one badge.
fn report_of<'a>(report: &'a RunReport, badge_id: &str) -> &'a BadgeReport {
    report
        .badges
        .iter()
        .find(|b| b.badge_id == badge_id)
        .unwrap_or_else(|| panic!("the report has no badge '{badge_id}'"))
}

/// Inserts `n` posts of `kind` (no thread) by `user` on `day`, one a minute from midnight UTC.
async fn add_posts_of_kind(host: &TestHost, user: i64, kind: &str, n: usize, day: &str) {
    let rows: Vec<String> =
        (0..n).map(|i| format!("{user}, '{day} {:02}:{:02}:00', '{kind}', NULL", i / 60, i % 60)).collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    host.insert("posts", "user_id, created_at, kind, thread_id", &rows).await;
}

/// The number of revoked awards of one badge.
async fn revoked(host: &TestHost, badge_id: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM accolade_awards WHERE revoked_at IS NOT NULL AND badge_id = '{badge_id}'");
    host.count(&sql).await
}

// ---------------------------------------------------------------------------------------
// Weeks, months, years
// ---------------------------------------------------------------------------------------

/// ISO weeks start on Monday 00:00 local time (not UTC), a grant counts only its week's posts,
/// the week of the March DST change counts every post to its Sunday 23:59:59 EDT, and the grant
/// key is the ISO week-year with a zero-padded week (2025-12-29 is in 2026-W01).
#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn week_grants_split_at_monday_midnight_local_time_and_count_a_whole_week_across_dst(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_members(6).await;
    // 1: Sunday 2026-05-31 23:59:59 EDT (2026-W22) and Monday 2026-06-01 00:00:00 EDT (W23):
    // one post in each week, though both are on June 1 in UTC.
    host.add_events("posts", 1, &["2026-06-01 03:59:59", "2026-06-01 04:00:00"]).await;
    // 2: Sunday 10:00 and 23:59:59 EDT (W22); Monday 00:00:00 and Tuesday 12:00 EDT (W23).
    host.add_events("posts", 2, &["2026-05-31 14:00:00", "2026-06-01 03:59:59", "2026-06-01 04:00:00"]).await;
    host.add_events("posts", 2, &["2026-06-02 16:00:00"]).await;
    // 3: Monday 2026-06-01 00:00:00 EDT and Sunday 2026-06-07 23:59:59 EDT: both in W23.
    host.add_events("posts", 3, &["2026-06-01 04:00:00", "2026-06-08 03:59:59"]).await;
    // 4: Sunday 2026-03-01 23:59:59 EST (W09); then the week of the DST change (W10): Monday
    // 2026-03-02 00:00:00 EST, Sunday 2026-03-08 03:30 EDT and Sunday 23:59:59 EDT.
    host.add_events(
        "posts",
        4,
        &["2026-03-02 04:59:59", "2026-03-02 05:00:00", "2026-03-08 07:30:00", "2026-03-09 03:59:59"],
    )
    .await;
    // 5: Monday 2026-03-02 and Saturday 2026-03-07 12:00 EST (W10); Monday 2026-03-09 00:00:00
    // EDT (W11), which an EST week end (05:00Z) would count in W10.
    host.add_events("posts", 5, &["2026-03-02 17:00:00", "2026-03-07 17:00:00", "2026-03-09 04:00:00"]).await;
    // 6: Sunday 2025-12-28 23:59:59 EST (2025-W52); Monday 2025-12-29 00:00:00 and Wednesday
    // 2025-12-31 12:00 EST (2026-W01).
    host.add_events("posts", 6, &["2025-12-29 04:59:59", "2025-12-29 05:00:00", "2025-12-31 17:00:00"]).await;
    let badges = repeating("two-a-week", "week", "count(posts) >= 2", "")
        + &repeating("three-a-week", "week", "count(posts) >= 3", "");
    let plan = plan_in(&host, NEW_YORK, &badges);

    host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(
        grants(&host, "two-a-week").await,
        owned(&[(2, "2026-W22"), (2, "2026-W23"), (3, "2026-W23"), (4, "2026-W10"), (5, "2026-W10"), (6, "2026-W01"),])
    );
    assert_eq!(grants(&host, "three-a-week").await, owned(&[(4, "2026-W10")]));
}

/// A period with no events of the source the criterion reads earns nothing, even when its
/// criterion would hold at zero; a role is read at the evaluation instant for every period.
#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_period_without_events_earns_nothing_and_roles_hold_for_every_period(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_members(3).await;
    host.insert("member_roles", "user_id, role", &["1, 'Sponsor'", "3, 'Sponsor'"]).await;
    // 1: one post in W21, three in W22, none in W23.
    host.add_events("posts", 1, &["2026-05-20 16:00:00"]).await;
    host.add_events("posts", 1, &["2026-05-26 16:00:00", "2026-05-27 16:00:00", "2026-05-28 16:00:00"]).await;
    // 2: one post in W21 but not a sponsor; 3: a sponsor with no posts.
    host.add_events("posts", 2, &["2026-05-20 16:00:00"]).await;
    let plan =
        plan_in(&host, NEW_YORK, &repeating("quiet-sponsor", "week", "count(posts) < 3 AND roles in ['Sponsor']", ""));

    host.run(&plan, at("2026-06-10T16:00:00Z")).await;

    assert_eq!(grants(&host, "quiet-sponsor").await, owned(&[(1, "2026-W21")]));
}

/// The grant of a week is given as soon as it holds, mid-week: 4 posts earn nothing, the 5th
/// (added later the same week) earns that week's grant at the next run, announced once, and a
/// third run that week adds nothing.
#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_weeks_grant_comes_at_the_run_after_its_fifth_post_and_only_once(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_members(2).await;
    // Monday 2026-06-01 to Wednesday 2026-06-03 (EDT), in 2026-W23.
    host.add_events(
        "posts",
        1,
        &["2026-06-01 04:00:00", "2026-06-01 14:00:00", "2026-06-02 14:00:00", "2026-06-03 14:00:00"],
    )
    .await;
    let plan = plan_in(&host, NEW_YORK, &repeating("active-week", "week", "count(posts) >= 5", ""));

    // Wednesday 12:00 EDT: four posts.
    let first = host.run(&plan, at("2026-06-03T16:00:00Z")).await;
    assert_eq!(first.new_awards("active-week"), 0);
    assert_eq!(grants(&host, "active-week").await, owned(&[]));

    // Thursday 10:00 EDT: the fifth post; the run at 12:00 EDT the same day.
    host.add_events("posts", 1, &["2026-06-04 14:00:00"]).await;
    let second = host.run(&plan, at("2026-06-04T16:00:00Z")).await;
    assert_eq!(second.new_awards("active-week"), 1);
    assert_eq!(grants(&host, "active-week").await, owned(&[(1, "2026-W23")]));
    let after_second = host.stored_awards().await;
    assert_eq!(after_second[0].awarded_at, "2026-06-04T16:00:00Z");
    assert_eq!(after_second[0].source, "rule", "the first run was the badge's (empty) backfill");
    assert_eq!(host.count("SELECT COUNT(*) FROM accolade_outbox").await, 1);
    let announced = host.text("SELECT grant_key FROM accolade_outbox WHERE badge_id = 'active-week'").await;
    assert_eq!(announced.as_deref(), Some("2026-W23"));

    // Friday: a sixth post and another run the same week.
    host.add_events("posts", 1, &["2026-06-05 14:00:00"]).await;
    let third = host.run(&plan, at("2026-06-05T16:00:00Z")).await;
    assert_eq!(third.new_awards("active-week"), 0);
    assert_eq!(host.stored_awards().await, after_second);
    assert_eq!(host.count("SELECT COUNT(*) FROM accolade_outbox").await, 1, "announced once");
}

/// Months and years end at local midnight (31 December 23:59:59 EST is 2025, 1 January 00:00:00
/// EST is 2026; 31 March 23:59:59 EDT is March); the first run backfills every past period
/// silently, and a later period's grant is a rule award announced with its grant key.
#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn month_and_year_grants_split_at_local_midnight_and_past_periods_are_backfilled_silently(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_members(3).await;
    // 1: 2025-12-31 23:59:59 EST and 2026-01-01 00:00:00 EST (both on January 1 in UTC).
    host.add_events("posts", 1, &["2026-01-01 04:59:59", "2026-01-01 05:00:00"]).await;
    // 2: 2025-06-15 and 2025-12-31 23:59:59 EST.
    host.add_events("posts", 2, &["2025-06-15 16:00:00", "2026-01-01 04:59:59"]).await;
    // 3: 2026-03-31 23:59:59 EDT and 2026-04-01 00:00:00 EDT.
    host.add_events("posts", 3, &["2026-04-01 03:59:59", "2026-04-01 04:00:00"]).await;
    let badges =
        repeating("monthly", "month", "count(posts) >= 1", "") + &repeating("yearly", "year", "count(posts) >= 2", "");
    let plan = plan_in(&host, NEW_YORK, &badges);

    let first = host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert!(report_of(&first, "monthly").backfill && report_of(&first, "yearly").backfill);
    assert_eq!(first.new_awards("monthly"), 6);
    assert_eq!(
        grants(&host, "monthly").await,
        owned(&[(1, "2025-12"), (1, "2026-01"), (2, "2025-06"), (2, "2025-12"), (3, "2026-03"), (3, "2026-04")])
    );
    assert_eq!(grants(&host, "yearly").await, owned(&[(2, "2025"), (3, "2026")]));
    assert!(host.stored_awards().await.iter().all(|a| a.source == "backfill"));
    assert_eq!(host.count("SELECT COUNT(*) FROM accolade_outbox").await, 0, "a backfill is not announced");

    // 2026-07-01 00:00:00 EDT: member 1's first post of July, and second of 2026.
    host.add_events("posts", 1, &["2026-07-01 04:00:00"]).await;
    let second = host.run(&plan, at("2026-07-01T12:00:00Z")).await;

    assert!(!report_of(&second, "monthly").backfill);
    assert_eq!((second.new_awards("monthly"), second.new_awards("yearly")), (1, 1));
    let rule_awards: Vec<(String, i64, String)> = host
        .stored_awards()
        .await
        .into_iter()
        .filter(|a| a.source == "rule")
        .map(|a| (a.badge_id, a.user_id, a.grant))
        .collect();
    assert_eq!(
        rule_awards,
        vec![("monthly".to_string(), 1, "2026-07".to_string()), ("yearly".to_string(), 1, "2026".to_string())]
    );
    assert_eq!(host.count("SELECT COUNT(*) FROM accolade_outbox").await, 2, "one notification per grant");
    let queued = |badge: &str, grant: &str| {
        format!(
            "SELECT COUNT(*) FROM accolade_outbox WHERE badge_id = '{badge}' AND user_id = 1 AND grant_key = '{grant}'"
        )
    };
    assert_eq!(host.count(&queued("monthly", "2026-07")).await, 1);
    assert_eq!(host.count(&queued("yearly", "2026")).await, 1);
}

// ---------------------------------------------------------------------------------------
// Items and caps
// ---------------------------------------------------------------------------------------

/// One grant per distinct item (a post's thread) whose own posts meet the criterion; posts with
/// a NULL thread earn nothing however many; a later run grants the new items only.
#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn item_grants_count_each_threads_posts_and_posts_without_a_thread_earn_nothing(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_members(3).await;
    host.insert(
        "posts",
        "user_id, created_at, kind, thread_id",
        &[
            // 1: two posts in thread 7, one in thread 8, three without a thread.
            "1, '2026-05-01 10:00:00', 'post', 7",
            "1, '2026-05-02 10:00:00', 'post', 7",
            "1, '2026-05-03 10:00:00', 'post', 8",
            "1, '2026-05-04 10:00:00', 'post', NULL",
            "1, '2026-05-05 10:00:00', 'post', NULL",
            "1, '2026-05-06 10:00:00', 'post', NULL",
            // 2: five posts without a thread.
            "2, '2026-05-01 10:00:00', 'post', NULL",
            "2, '2026-05-02 10:00:00', 'post', NULL",
            "2, '2026-05-03 10:00:00', 'post', NULL",
            "2, '2026-05-04 10:00:00', 'post', NULL",
            "2, '2026-05-05 10:00:00', 'post', NULL",
            // 3: two posts in thread 7, three in thread 10.
            "3, '2026-05-01 10:00:00', 'post', 7",
            "3, '2026-05-02 10:00:00', 'comment', 7",
            "3, '2026-05-03 10:00:00', 'post', 10",
            "3, '2026-05-04 10:00:00', 'post', 10",
            "3, '2026-05-05 10:00:00', 'post', 10",
        ],
    )
    .await;
    let plan = plan_in(&host, NEW_YORK, &repeating("busy-thread", "item", "count(posts) >= 2", ""));

    let first = host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(first.new_awards("busy-thread"), 3);
    assert_eq!(grants(&host, "busy-thread").await, owned(&[(1, "7"), (3, "10"), (3, "7")]));
    assert_eq!(sources_of(&host, "busy-thread").await, vec!["backfill".to_string()]);

    host.insert(
        "posts",
        "user_id, created_at, kind, thread_id",
        &[
            "1, '2026-06-16 10:00:00', 'post', 8",
            "2, '2026-06-16 10:00:00', 'post', 9",
            "2, '2026-06-17 10:00:00', 'post', 9",
        ],
    )
    .await;
    let second = host.run(&plan, at("2026-06-20T12:00:00Z")).await;

    assert_eq!(second.new_awards("busy-thread"), 2);
    assert_eq!(grants(&host, "busy-thread").await, owned(&[(1, "7"), (1, "8"), (2, "9"), (3, "10"), (3, "7")]));
    let announced = "SELECT COUNT(*) FROM accolade_outbox WHERE badge_id = 'busy-thread' AND \
                     ((user_id = 1 AND grant_key = '8') OR (user_id = 2 AND grant_key = '9'))";
    assert_eq!(host.count(announced).await, 2);
    assert_eq!(host.count("SELECT COUNT(*) FROM accolade_outbox").await, 2);
}

/// `max_grants = 3` keeps a member's 3 earliest qualifying weeks (not the first rows inserted),
/// counts the grants already held in later runs, and the leaderboard counts points per grant.
#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn max_grants_keeps_the_earliest_periods_and_a_later_run_adds_none_past_the_cap(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_members(3).await;
    // 1: one post on each Monday of 2026-W22 back to 2026-W18, latest first.
    host.add_events(
        "posts",
        1,
        &["2026-05-25 16:00:00", "2026-05-18 16:00:00", "2026-05-11 16:00:00", "2026-05-04 16:00:00"],
    )
    .await;
    host.add_events("posts", 1, &["2026-04-27 16:00:00"]).await;
    // 3: W21 and W22.
    host.add_events("posts", 3, &["2026-05-18 16:00:00", "2026-05-25 16:00:00"]).await;
    let weekly = repeating("weekly", "week", "count(posts) >= 1", "points = 2\nmax_grants = 3\n");
    let plan = plan_in(&host, NEW_YORK, &weekly);

    // Wednesday of W22.
    let first = host.run(&plan, at("2026-05-27T16:00:00Z")).await;

    assert_eq!(first.new_awards("weekly"), 5);
    assert_eq!(
        grants(&host, "weekly").await,
        owned(&[(1, "2026-W18"), (1, "2026-W19"), (1, "2026-W20"), (3, "2026-W21"), (3, "2026-W22")])
    );

    // W23 for both, W24 for member 3, who has room for one more grant.
    host.add_events("posts", 1, &["2026-06-01 16:00:00"]).await;
    host.add_events("posts", 3, &["2026-06-01 16:00:00", "2026-06-08 16:00:00"]).await;
    let second = host.run(&plan, at("2026-06-10T16:00:00Z")).await;

    assert_eq!(second.new_awards("weekly"), 1);
    assert_eq!(
        grants(&host, "weekly").await,
        owned(&[(1, "2026-W18"), (1, "2026-W19"), (1, "2026-W20"), (3, "2026-W21"), (3, "2026-W22"), (3, "2026-W23"),])
    );
    for user in [1, 3] {
        let sql = format!("SELECT points FROM accolade_leaderboard WHERE user_id = {user}");
        assert_eq!(host.count(&sql).await, 6, "member {user}: 3 grants of 2 points");
        let sql = format!("SELECT badges FROM accolade_leaderboard WHERE user_id = {user}");
        assert_eq!(host.count(&sql).await, 3, "member {user}");
    }
}

// ---------------------------------------------------------------------------------------
// Levels
// ---------------------------------------------------------------------------------------

/// A member who jumps from 0 to 300 comments between two runs gets every level at once; one
/// with 60 gets the two lowest; 9 comments and other kinds earn none; each level's points count.
#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_member_who_jumps_past_every_threshold_gets_every_level_in_one_run(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_members(3).await;
    add_posts_of_kind(&host, 2, "comment", 60, "2026-05-01").await;
    add_posts_of_kind(&host, 3, "comment", 9, "2026-05-01").await;
    add_posts_of_kind(&host, 3, "question", 20, "2026-05-02").await;
    let plan = plan_in(&host, NEW_YORK, COMMENTER);
    let levels = ["commenter.bronze", "commenter.gold", "commenter.silver"];

    host.run(&plan, at("2026-06-01T12:00:00Z")).await;
    let holders = |awards: Vec<accolade::store::StoredAward>| -> Vec<(String, i64)> {
        let mut pairs: Vec<(String, i64)> = awards.into_iter().map(|a| (a.badge_id, a.user_id)).collect();
        pairs.sort();
        pairs
    };
    assert_eq!(
        holders(host.stored_awards().await),
        vec![("commenter.bronze".to_string(), 2), ("commenter.silver".to_string(), 2)]
    );

    add_posts_of_kind(&host, 1, "comment", 300, "2026-06-02").await;
    let second = host.run(&plan, at("2026-06-10T12:00:00Z")).await;

    for level in levels {
        assert_eq!(second.new_awards(level), 1, "{level}");
    }
    assert_eq!(
        holders(host.stored_awards().await),
        vec![
            ("commenter.bronze".to_string(), 1),
            ("commenter.bronze".to_string(), 2),
            ("commenter.gold".to_string(), 1),
            ("commenter.silver".to_string(), 1),
            ("commenter.silver".to_string(), 2),
        ]
    );
    assert_eq!(host.count("SELECT points FROM accolade_leaderboard WHERE user_id = 1").await, 135);
    assert_eq!(host.count("SELECT badges FROM accolade_leaderboard WHERE user_id = 1").await, 3);
    assert_eq!(host.count("SELECT points FROM accolade_leaderboard WHERE user_id = 2").await, 35);
    assert_eq!(host.count("SELECT COUNT(*) FROM accolade_leaderboard WHERE user_id = 3").await, 0);
}

/// Level thresholds must increase: a level whose `min` is not above the one before fails to
/// compile, naming the badge; the same levels in increasing order compile.
#[test]
fn levels_whose_thresholds_do_not_increase_are_a_config_error_naming_the_badge() {
    assert_eq!(compile_errors(COMMENTER), None, "the issue's levels compile");
    let decreasing = COMMENTER.replace("min = 50", "min = 5");
    assert_refused(&decreasing, "commenter", &["min"]);
    let equal = COMMENTER.replace("min = 50", "min = 10");
    assert_refused(&equal, "commenter", &["min"]);
}

// ---------------------------------------------------------------------------------------
// revoke_when_unmet
// ---------------------------------------------------------------------------------------

/// Across several runs: a member who loses the role loses the badge (reason `criteria no
/// longer met`, counted in the report, once), a dry run before that changes nothing, the
/// member who regains the role gets the same award row back (same awarded_at, one row), a
/// manual award to a member without the role is never touched, and the leaderboard follows.
#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn an_award_that_follows_a_role_is_revoked_when_the_role_goes_and_restored_when_it_returns(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_members(3).await;
    host.insert("member_roles", "user_id, role", &["1, 'Sponsor'", "2, 'Sponsor'", "3, 'Member'"]).await;
    let plan = plan_in(&host, NEW_YORK, &following("sponsor", "roles in ['Sponsor']", 5));
    let points = |user: i64| format!("SELECT points FROM accolade_leaderboard WHERE user_id = {user}");
    let on_board = |user: i64| format!("SELECT COUNT(*) FROM accolade_leaderboard WHERE user_id = {user}");
    let reason = "SELECT revocation_reason FROM accolade_awards WHERE badge_id = 'sponsor' AND user_id = 1";

    let first = host.run(&plan, at("2026-06-01T12:00:00Z")).await;
    assert_eq!(first.new_awards("sponsor"), 2);
    let award_of_1 = host.stored_awards().await.into_iter().find(|a| a.user_id == 1).expect("member 1's award");
    assert_eq!(award_of_1.awarded_at, "2026-06-01T12:00:00Z");
    host.award(&plan, "sponsor", &[3]).await.expect("the manual award");

    // Nothing changed: nobody is revoked, the manual award to member 3 (no role) included.
    let unchanged = host.run(&plan, at("2026-06-02T12:00:00Z")).await;
    assert_eq!((report_of(&unchanged, "sponsor").revoked, report_of(&unchanged, "sponsor").restored), (0, 0));
    assert_eq!(revoked(&host, "sponsor").await, 0);

    // Member 1 loses the role: a dry run revokes nothing.
    host.exec("DELETE FROM member_roles WHERE user_id = 1").await;
    host.dry_run(&plan, at("2026-06-03T12:00:00Z")).await;
    assert_eq!(revoked(&host, "sponsor").await, 0, "a dry run writes nothing");
    assert_eq!(host.count(&points(1)).await, 5);

    let revoking = host.run(&plan, at("2026-06-04T12:00:00Z")).await;
    assert_eq!(report_of(&revoking, "sponsor").revoked, 1);
    assert_eq!(report_of(&revoking, "sponsor").restored, 0);
    assert_eq!(revoked(&host, "sponsor").await, 1);
    assert_eq!(host.text(reason).await.as_deref(), Some("criteria no longer met"));
    let manual = "SELECT COUNT(*) FROM accolade_awards WHERE badge_id = 'sponsor' AND user_id = 3 AND \
                  revoked_at IS NULL AND source = 'manual'";
    assert_eq!(host.count(manual).await, 1, "a manual award is never revoked by a run");
    assert_eq!(host.count(&on_board(1)).await, 0, "a revoked award leaves the leaderboard");
    assert_eq!(host.count(&points(2)).await, 5);
    assert_eq!(host.count(&points(3)).await, 5);

    // Still without the role: already revoked, nothing more to count.
    let again = host.run(&plan, at("2026-06-05T12:00:00Z")).await;
    assert_eq!((report_of(&again, "sponsor").revoked, report_of(&again, "sponsor").restored), (0, 0));
    assert_eq!(revoked(&host, "sponsor").await, 1);

    // The role comes back: the same row is restored.
    host.insert("member_roles", "user_id, role", &["1, 'Sponsor'"]).await;
    let restoring = host.run(&plan, at("2026-06-06T12:00:00Z")).await;
    assert_eq!(report_of(&restoring, "sponsor").restored, 1);
    assert_eq!(report_of(&restoring, "sponsor").revoked, 0);
    assert_eq!(restoring.new_awards("sponsor"), 0, "a restoration is not a new award");
    assert_eq!(revoked(&host, "sponsor").await, 0);
    let rows = "SELECT COUNT(*) FROM accolade_awards WHERE badge_id = 'sponsor' AND user_id = 1";
    assert_eq!(host.count(rows).await, 1, "one row, restored, not a new one");
    let restored = host.stored_awards().await.into_iter().find(|a| a.user_id == 1).expect("member 1's award");
    assert_eq!(restored, award_of_1, "the same award: same awarded_at and source");
    assert_eq!(host.count(&points(1)).await, 5, "the leaderboard counts it again");
    assert_eq!(host.count(manual).await, 1);
}

/// A run of some badges (`--badge`) evaluates every member for them: it revokes for the badges
/// it runs, and not for the badges it skips.
#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_run_of_some_badges_revokes_for_those_badges_only(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_members(2).await;
    host.insert("member_roles", "user_id, role", &["1, 'Sponsor'", "2, 'Sponsor'"]).await;
    host.add_events("posts", 1, &["2026-05-01 12:00:00"]).await;
    let badges = following("sponsor", "roles in ['Sponsor']", 5) + &formula_badge("poster", "count(posts) >= 1");
    let plan = plan_in(&host, NEW_YORK, &badges);
    host.run(&plan, at("2026-06-01T12:00:00Z")).await;
    host.exec("DELETE FROM member_roles WHERE user_id = 2").await;
    let only = |badge: &str, day: &str| RunOptions {
        as_of: Some(at(&format!("2026-06-{day}T12:00:00Z"))),
        only: vec![badge.to_string()],
        ..RunOptions::default()
    };

    let posters_only = host.run_with(&plan, &only("poster", "02")).await;
    assert_eq!(status(&posters_only, "sponsor"), "skipped");
    assert_eq!(revoked(&host, "sponsor").await, 0, "a run that skips the badge does not revoke it");

    let sponsors_only = host.run_with(&plan, &only("sponsor", "03")).await;

    assert_eq!(status(&sponsors_only, "poster"), "skipped");
    assert_eq!(report_of(&sponsors_only, "sponsor").revoked, 1);
    assert_eq!(revoked(&host, "sponsor").await, 1);
    let holder = "SELECT COUNT(*) FROM accolade_awards WHERE badge_id = 'sponsor' AND user_id = 2 AND \
                  revoked_at IS NOT NULL";
    assert_eq!(host.count(holder).await, 1);
}

// ---------------------------------------------------------------------------------------
// Config errors
// ---------------------------------------------------------------------------------------

/// A config head with every source these formulas read.
const CONFIG_HEAD: &str = r#"
[database]
url = "sqlite::memory:"

[sources]
users = "SELECT user_id, created_at, blocked FROM users"
posts = "SELECT user_id, created_at, kind, thread_id FROM posts"
connections = "SELECT user_id, created_at FROM connections"
logins = "SELECT user_id, created_at FROM sign_ins"
roles = "SELECT user_id, role FROM member_roles"
"#;

/// The errors of a config of `badges`, or `None` if it compiles.
fn compile_errors(badges: &str) -> Option<String> {
    let text = format!("{CONFIG_HEAD}\n{badges}");
    let raw = accolade::config::parse(&text).expect("the config text should parse as TOML");
    accolade::config::plan::compile(raw).err().map(|errors| errors.to_string())
}

/// Asserts that `badges` do not compile, with a problem that names `badge_id` and says every
/// one of `words`.
fn assert_refused(badges: &str, badge_id: &str, words: &[&str]) {
    let errors = compile_errors(badges).unwrap_or_else(|| panic!("the config should not compile:\n{badges}"));
    let named = errors.lines().any(|line| line.contains(badge_id) && words.iter().all(|w| line.contains(w)));
    assert!(named, "a problem should name '{badge_id}' and say {words:?}:\n{errors}");
}

/// Aggregates that span periods (`within`, best periods, streaks) cannot count one period's
/// rows: under `repeat` they are config errors that name the badge and say `repeat`.
#[test]
fn aggregates_that_span_periods_are_config_errors_under_repeat() {
    assert_eq!(compile_errors(&repeating("weekly", "week", "count(posts) >= 1", "")), None, "the base compiles");
    for (id, repeat, formula, word) in [
        ("recent-weeks", "week", "count(posts, within = '7 days') >= 2", "within"),
        ("streaky-weeks", "week", "streak_days(logins) >= 3", "streak"),
        ("best-months", "month", "best_week(posts) >= 2", "best"),
        ("current-years", "year", "current_streak_days(logins) >= 2", "streak"),
        ("streaky-items", "item", "streak_days(posts) >= 2", "streak"),
    ] {
        assert_refused(&repeating(id, repeat, formula, ""), id, &["repeat", word]);
    }
}

/// `revoke_when_unmet` with `repeat` is a config error: a past period's grant stays earned.
#[test]
fn revoke_when_unmet_with_repeat_is_a_config_error() {
    let badge = repeating("weekly-sponsor", "week", "count(posts) >= 1", "revoke_when_unmet = true\n");
    assert_refused(&badge, "weekly-sponsor", &["revoke_when_unmet", "repeat"]);
}

/// Per item, every event aggregate must read one source: two sources are a config error, two
/// aggregates of the same source (with different filters) are not.
#[test]
fn repeat_per_item_over_two_sources_is_a_config_error() {
    let one_source = repeating("answered", "item", "count(posts, kind = 'comment') >= 1 AND count(posts) >= 2", "");
    assert_eq!(compile_errors(&one_source), None, "one source with two filters compiles");
    let two_sources = repeating("two-sources", "item", "count(posts) >= 1 AND count(connections) >= 1", "");
    assert_refused(&two_sources, "two-sources", &["item", "source"]);
}

/// `repeat` takes week, month, year or item: anything else is a config error quoting it.
#[test]
fn an_unknown_repeat_is_a_config_error_quoting_it() {
    let badge = repeating("fortnightly", "week", "count(posts) >= 1", "").replace("\"week\"", "\"fortnight\"");
    assert!(badge.contains("repeat = \"fortnight\""), "{badge}");
    assert_refused(&badge, "fortnightly", &["repeat", "fortnight"]);
}

// ---------------------------------------------------------------------------------------
// The binary
// ---------------------------------------------------------------------------------------

/// `award --grant` awards one named grant by hand, `run` grants a week from the binary, the CSV
/// export keeps its columns and adds a last one, `grant` (empty for a badge earned once), and
/// `revoke --grant` revokes that grant only.
#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn award_and_revoke_name_the_grant_and_the_csv_export_ends_with_it(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_members(2).await;
    // 2: five posts in 2026-W23 (UTC).
    host.add_events(
        "posts",
        2,
        &["2026-06-01 12:00:00", "2026-06-02 12:00:00", "2026-06-03 12:00:00", "2026-06-04 12:00:00"],
    )
    .await;
    host.add_events("posts", 2, &["2026-06-05 12:00:00"]).await;
    let badges = repeating("active-week", "week", "count(posts) >= 5", "") + &manual_badge("speaker");
    let config = host.write_config("accolade.toml", &host.config(&badges, &host.formula_sources()));
    let config = config.to_str().expect("UTF-8 path");

    let grant = ["--config", config, "award", "--badge", "active-week", "--users", "1", "--grant", "2026-W23"];
    let award = accolade_binary(&grant);
    assert_eq!(award.code, 0, "{}", award.describe());
    let single = accolade_binary(&["--config", config, "award", "--badge", "speaker", "--users", "2"]);
    assert_eq!(single.code, 0, "{}", single.describe());
    let run = accolade_binary(&["--config", config, "run", "--as-of", "2026-06-10T12:00:00Z"]);
    assert_eq!(run.code, 0, "{}", run.describe());

    let export = accolade_binary(&["--config", config, "awards", "export", "--format", "csv"]);

    assert_eq!(export.code, 0, "{}", export.describe());
    let mut lines = export.stdout.lines();
    assert_eq!(lines.next(), Some("badge_id,user_id,awarded_at,source,grant"), "{}", export.describe());
    let rows: Vec<(String, i64, String, String)> = lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 5, "{line}");
            let user = fields[1].parse().unwrap_or_else(|_| panic!("user_id is not a number in '{line}'"));
            (fields[0].to_string(), user, fields[3].to_string(), fields[4].to_string())
        })
        .collect();
    let expected: Vec<(String, i64, String, String)> = [
        ("active-week", 1, "manual", "2026-W23"),
        ("active-week", 2, "backfill", "2026-W23"),
        ("speaker", 2, "manual", ""),
    ]
    .into_iter()
    .map(|(b, u, s, g)| (b.to_string(), u, s.to_string(), g.to_string()))
    .collect();
    assert_eq!(rows, expected, "{}", export.describe());

    let revoke = accolade_binary(&[
        "--config",
        config,
        "revoke",
        "--badge",
        "active-week",
        "--users",
        "1",
        "--grant",
        "2026-W23",
        "--reason",
        "entered twice",
    ]);

    assert_eq!(revoke.code, 0, "{}", revoke.describe());
    let revoked_grant = "SELECT COUNT(*) FROM accolade_awards WHERE badge_id = 'active-week' AND user_id = 1 AND \
                         grant_key = '2026-W23' AND revoked_at IS NOT NULL";
    assert_eq!(host.count(revoked_grant).await, 1);
    assert_eq!(revoked(&host, "active-week").await, 1, "member 2's grant of the same week is kept");
}

/// An item id longer than a grant key can be (191 bytes, MySQL's key limit) is left out of the
/// grants with a note on its badge, on every database alike; the other items are granted.
#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn an_item_too_long_to_be_a_grant_key_is_left_out_with_a_note_and_the_rest_are_granted(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_guard) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members([1], "2025-01-01 00:00:00").await;
    host.exec("CREATE TABLE entries (user_id INTEGER NOT NULL, created_at TEXT NOT NULL, contest TEXT)").await;
    let long = "x".repeat(192);
    let rows = ["1, '2026-06-01 10:00:00', '7'".to_string(), format!("1, '2026-06-01 11:00:00', '{long}'")];
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    host.insert("entries", "user_id, created_at, contest", &rows).await;
    let sources = format!(
        "{}\n[sources.events]\nentries = 'SELECT user_id, created_at, contest AS item FROM entries'\n",
        host.formula_sources()
    );
    let plan = host.plan(&host.config(&repeating("per-thread", "item", "count(entries) >= 1", ""), &sources));
    let report = host.run(&plan, at("2026-06-20T00:00:00Z")).await;
    assert_eq!(status(&report, "per-thread"), "evaluated");
    assert_eq!(report.badges[0].new_awards, 1);
    let note = report.badges[0].message.clone().unwrap_or_default();
    assert!(note.contains("1 grant(s) left out") && note.contains("191"), "{note}");
    let grants: Vec<String> = host.stored_awards().await.into_iter().map(|a| a.grant).collect();
    assert_eq!(grants, vec!["7".to_string()]);
}
