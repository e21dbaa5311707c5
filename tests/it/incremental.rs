//! Incremental runs (`run --incremental`) give exactly the awards of a full run. Two awards
//! databases over the same host data: after each step of a randomized history (events
//! appended, some late and some dated ahead; roles, settings, metrics, trainings and blocked
//! flags changed in place; time advanced across day, week, month and account-age edges;
//! badges published and disabled; awards given and revoked by hand), an incremental run on
//! one and a full run on the other must leave identical awards, outbox and leaderboard. Plus
//! the cases where stored state is not trusted and the pass is full, saying why. On SQLite,
//! PostgreSQL and MariaDB.

use crate::support::{Backend, FORMULA_SCHEMA, TestHost, at, badge, formula_badge, manual_badge, status, use_backend};
use accolade::commands::run::{RunOptions, RunReport, execute_with};
use accolade::config::plan::Plan;
use accolade::db::Db;
use accolade::store::Store;
use chrono::{DateTime, Duration, Utc};
use sqlx::Row;

/// A small deterministic generator (xorshift64*): the history is random but repeatable.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const MEMBERS: i64 = 40;

/// Posts and sign-ins keep native timestamps (the exact pushed-down bound on PostgreSQL);
/// the other tables keep text, as [`FORMULA_SCHEMA`] does (the loosened bound).
async fn host() -> TestHost {
    let host = TestHost::new().await;
    let native = host.native_timestamp_type();
    let schema = FORMULA_SCHEMA
        .replace(
            "CREATE TABLE posts (user_id INTEGER NOT NULL, created_at TEXT NOT NULL",
            &format!("CREATE TABLE posts (user_id INTEGER NOT NULL, created_at {native} NOT NULL"),
        )
        .replace(
            "CREATE TABLE sign_ins (user_id INTEGER NOT NULL, created_at TEXT NOT NULL",
            &format!("CREATE TABLE sign_ins (user_id INTEGER NOT NULL, created_at {native} NOT NULL"),
        );
    host.exec(&schema).await;
    host
}

fn text_time(instant: DateTime<Utc>) -> String {
    instant.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The badges of the history; `regular` is published from step 4 on, `weekly-poster` is
/// disabled from step 8 on.
fn badges(step: usize) -> String {
    let following = "revoke_when_unmet = true\n";
    let mut text = String::new();
    text += &badge("veteran", r#"{ type = "account_age", min = "30 days" }"#);
    text += &formula_badge("weekly-poster", "count(posts, within = '7 days') >= 3").replacen(
        "formula =",
        &format!("{following}{}formula =", if step >= 8 { "status = \"disabled\"\n" } else { "" }),
        1,
    );
    text +=
        &formula_badge("quiet", "NOT count(posts, within = '10 days') >= 1 AND time_since_registration >= '14 days'")
            .replacen("formula =", &format!("{following}formula ="), 1);
    text += &formula_badge("on-a-roll", "current_streak_days(logins) >= 2").replacen(
        "formula =",
        &format!("{following}formula ="),
        1,
    );
    text += &formula_badge("expert", "metric.answers >= 3 AND roles in ['Expert']").replacen(
        "formula =",
        &format!("{following}formula ="),
        1,
    );
    text += &formula_badge("leveled", "setting.level >= 5 AND user.blocked = false");
    text += &badge("finisher", r#"{ type = "training_completed", training = "course" }"#);
    text += &formula_badge("weekly", "count(posts) >= 2").replacen("formula =", "repeat = \"week\"\nformula =", 1);
    text += &manual_badge("thanks");
    if step >= 4 {
        text += &formula_badge("regular", "count(logins) >= 3");
    }
    text
}

fn config_text(host: &TestHost, step: usize) -> String {
    host.config_in("America/New_York", &badges(step), &host.formula_sources()).replacen(
        "[sources]",
        "[notifications]\non_revoke = \"all\"\n\n[sources]",
        1,
    )
}

fn plan(host: &TestHost, step: usize) -> Plan {
    host.plan(&config_text(host, step))
}

/// A run over `host`'s data that keeps its awards in `awards`' database.
async fn run_on(host: &TestHost, awards: &TestHost, plan: &Plan, options: &RunOptions) -> RunReport {
    let db = Db::connect(host.url()).await.expect("connecting to the host");
    let store = Store::new(Db::connect(awards.url()).await.expect("connecting to the awards database"));
    let report = execute_with(plan, &db, &store, options).await;
    db.close().await;
    store.db().close().await;
    report.unwrap_or_else(|e| panic!("the run should succeed: {e:#}"))
}

/// Incremental passes digest the per-member sources in frames of this many rows, so that the
/// tests' few members cross frame edges (and the merge every eight frames).
const SCAN_ROWS: usize = 5;

async fn pass(host: &TestHost, awards: &TestHost, plan: &Plan, as_of: DateTime<Utc>, incremental: bool) -> RunReport {
    let options = RunOptions { as_of: Some(as_of), incremental, scan_rows: Some(SCAN_ROWS), ..RunOptions::default() };
    run_on(host, awards, plan, &options).await
}

/// Everything a run leaves that members and hosts see: every award row (with its time,
/// source and revocation), the outbox (without its wall-clock times) and the leaderboard.
async fn outcome(awards: &TestHost) -> (Vec<String>, Vec<String>, Vec<String>) {
    let store = awards.store();
    let mut rows: Vec<String> = store
        .awards(&[])
        .await
        .expect("the awards")
        .into_iter()
        // A manual award is stamped with the wall clock, not the run's instant.
        .map(|a| {
            let when = if a.source == "manual" { "by hand" } else { a.awarded_at.as_str() };
            format!("{} {} {} {when} {}", a.badge_id, a.user_id, a.grant, a.source)
        })
        .collect();
    let revoked = accolade::with_pool!(store.db(), pool => sqlx::query(
        "SELECT badge_id, user_id, grant_key, revoked_by, revocation_reason FROM accolade_awards WHERE revoked_at IS NOT NULL",
    )
    .fetch_all(pool)
    .await
    .expect("the revoked awards")
    .iter()
    .map(|r| {
        format!(
            "revoked {} {} {} {:?} {:?}",
            r.get::<String, _>(0),
            r.get::<i64, _>(1),
            r.get::<String, _>(2),
            r.get::<Option<String>, _>(3),
            r.get::<Option<String>, _>(4)
        )
    })
    .collect::<Vec<_>>());
    rows.extend(revoked);
    rows.sort();
    let mut outbox: Vec<String> = store
        .outbox()
        .await
        .expect("the outbox")
        .into_iter()
        .map(|r| format!("{} {} {} {} {}", r.badge_id, r.user_id, r.grant, r.event, r.state))
        .collect();
    outbox.sort();
    let board = store
        .leaderboard(None, None)
        .await
        .expect("the leaderboard")
        .into_iter()
        .map(|r| format!("{} {} {} {}", r.rank, r.user_id, r.points, r.badges))
        .collect();
    (rows, outbox, board)
}

/// One step of host activity between `before` (the last run's instant) and `now`.
async fn act(host: &TestHost, rng: &mut Random, before: DateTime<Utc>, now: DateTime<Utc>, late: Duration) {
    let span = (now - before).num_seconds().max(1) as u64;
    let native = |t: DateTime<Utc>| host.native_timestamp(&t.to_rfc3339());
    for _ in 0..(8 + rng.below(12)) {
        let member = 1 + rng.below(MEMBERS as u64 + 3) as i64; // a few rows of no member
        // Mostly after the last run; some late (dated before it, within late_rows); a few ahead.
        let created = match rng.below(10) {
            0 => before - Duration::seconds(rng.below(late.num_seconds() as u64 - 1) as i64 + 1),
            1 => now + Duration::hours(rng.below(60) as i64 + 1),
            _ => before + Duration::seconds(rng.below(span) as i64 + 1),
        };
        let table = if rng.chance(60) { "posts" } else { "sign_ins" };
        host.exec(&format!("INSERT INTO {table} (user_id, created_at) VALUES ({member}, {})", native(created))).await;
    }
    for _ in 0..rng.below(4) {
        let member = 1 + rng.below(MEMBERS as u64) as i64;
        match rng.below(7) {
            0 => host.exec(&format!("INSERT INTO member_roles (user_id, role) VALUES ({member}, 'Expert')")).await,
            1 => host.exec(&format!("DELETE FROM member_roles WHERE user_id = {member}")).await,
            2 => {
                host.exec(&format!("DELETE FROM profile_settings WHERE user_id = {member}")).await;
                let level = rng.below(10);
                host.exec(&format!(
                    "INSERT INTO profile_settings (user_id, setting_key, setting_value) VALUES ({member}, 'level', '{level}')"
                ))
                .await;
            }
            3 => {
                host.exec(&format!(
                    "INSERT INTO counters (user_id, counter, amount) VALUES ({member}, 'answers', {})",
                    rng.below(3)
                ))
                .await
            }
            4 => {
                let flag = if rng.chance(50) { "TRUE" } else { "FALSE" };
                host.exec(&format!("UPDATE users SET blocked = {flag} WHERE user_id = {member}")).await
            }
            5 => {
                // An enrolment, sometimes dated ahead of the run; completed or not.
                let enrolled = now + Duration::hours(rng.below(48) as i64) - Duration::hours(24);
                let progress = if rng.chance(50) { 100 } else { 40 };
                host.exec(&format!(
                    "INSERT INTO trainings (user_id, training_id, enrolled_at, progress, passed) \
                     VALUES ({member}, 'course', '{}', {progress}, FALSE)",
                    text_time(enrolled)
                ))
                .await
            }
            _ => host.exec(&format!("UPDATE trainings SET progress = 100 WHERE user_id = {member}")).await,
        }
    }
    if rng.chance(30) {
        // A new member, sometimes created ahead of the run.
        let id = 100 + rng.below(1_000) as i64;
        let created = now - Duration::days(rng.below(40) as i64) + Duration::hours(rng.below(30) as i64);
        host.exec(&format!("DELETE FROM users WHERE user_id = {id}")).await;
        host.exec(&format!(
            "INSERT INTO users (user_id, created_at, blocked) VALUES ({id}, '{}', FALSE)",
            text_time(created)
        ))
        .await;
    }
}

/// The history's members, created up to 45 days before `start`.
async fn add_members(host: &TestHost, rng: &mut Random, start: DateTime<Utc>) {
    let rows: Vec<String> = (1..=MEMBERS)
        .map(|id| {
            let created = start - Duration::days(rng.below(45) as i64) - Duration::hours(rng.below(24) as i64);
            format!("({id}, '{}', FALSE)", text_time(created))
        })
        .collect();
    host.exec(&format!("INSERT INTO users (user_id, created_at, blocked) VALUES {}", rows.join(", "))).await;
}

/// When the histories start: the members are created up to 45 days before.
const START: DateTime<Utc> = DateTime::from_timestamp(1_771_599_600, 0).expect("2026-02-20T15:00:00Z");

/// A host with [`MEMBERS`] members created before [`START`], and two awards databases over it
/// (the first for incremental passes, the second for full ones), with the generator that made
/// the members.
async fn two_databases(seed: u64) -> (TestHost, TestHost, TestHost, Random) {
    let host = host().await;
    let (incremental, full) = (TestHost::new().await, TestHost::new().await);
    let mut rng = Random(seed);
    add_members(&host, &mut rng, START).await;
    (host, incremental, full, rng)
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn an_incremental_run_gives_exactly_the_awards_of_a_full_run_at_every_step_of_a_random_history(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
    #[values(7, 1_234_567)] seed: u64,
) {
    let Some(_guard) = use_backend(backend) else { return };
    let (host, incremental, full, mut rng) = two_databases(seed).await;
    let start = START;
    let late = accolade::config::plan::DEFAULT_LATE_ROWS;
    // Steps across minutes, hours, local midnights, weeks and a month; account ages pass 14 and
    // 30 days, and 7- and 10-day windows slide past earlier rows.
    let steps = [7, 180, 1_445, 9, 4_320, 60, 1_441, 10_080, 30, 2_880, 44_640, 15];
    let mut before = start;
    let mut incremental_passes = 0;
    for (step, minutes) in steps.iter().enumerate() {
        let now = before + Duration::minutes(*minutes);
        if step > 0 {
            act(&host, &mut rng, before, now, late).await;
        }
        let plan = plan(&host, step);
        if step == 6 {
            // By hand, on both databases alike: a manual award, and a revocation of a rule award.
            for awards in [&incremental, &full] {
                let db = Db::connect(host.url()).await.expect("connecting to the host");
                let store = Store::new(Db::connect(awards.url()).await.expect("connecting"));
                accolade::commands::award::award(&plan, &db, &store, "thanks", &[3, 4]).await.expect("a manual award");
                let veteran = awards.holders("veteran").await;
                if let Some(first) = veteran.first() {
                    store.set_revoked("veteran", "", &[*first], Some("by hand"), now).await.expect("a revocation");
                }
            }
        }
        if step == 9 {
            // A run stopped after its first transaction (as SIGTERM stops one) keeps no state:
            // the next pass is full, and catches up.
            let stop = Some(std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)));
            let options = RunOptions { as_of: Some(now), incremental: true, stop, ..RunOptions::default() };
            let stopped = run_on(&host, &incremental, &plan, &options).await;
            assert!(!stopped.pass.kept_state, "a stopped run keeps no state");
        }
        let a = pass(&host, &incremental, &plan, now, true).await;
        let b = pass(&host, &full, &plan, now, false).await;
        if step == 9 {
            let reason = a.pass.full_because.clone().unwrap_or_default();
            assert!(reason.contains("came after"), "the pass after a stopped one is full: {reason}");
        }
        assert!(!b.pass.incremental, "a run without --incremental is a full pass");
        if a.pass.incremental {
            incremental_passes += 1;
        } else {
            let reason = a.pass.full_because.clone().unwrap_or_default();
            // Full only when it must be: the first run, and the runs that publish a badge
            // (its backfill reads every member) or change the badges.
            assert!(matches!(step, 0 | 4 | 8 | 9), "step {step} was a full pass: {reason}");
        }
        assert_eq!(a.total_new_awards(), b.total_new_awards(), "step {step}: new awards");
        assert_eq!(
            (a.total_revoked(), a.total_restored()),
            (b.total_revoked(), b.total_restored()),
            "step {step}: revocations"
        );
        let (left, right) = (outcome(&incremental).await, outcome(&full).await);
        assert_eq!(left.0, right.0, "step {step} ({}): awards differ", now.to_rfc3339());
        assert_eq!(left.1, right.1, "step {step}: outbox differs");
        assert_eq!(left.2, right.2, "step {step}: leaderboard differs");
        before = now;
    }
    assert!(incremental_passes >= 7, "most passes were incremental ({incremental_passes})");
    let awarded = outcome(&full).await.0.len();
    assert!(awarded > 30, "the history awards enough to compare ({awarded} award rows)");
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_pass_evaluates_exactly_the_members_whose_per_member_rows_changed_across_frames(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_guard) = use_backend(backend) else { return };
    let host = host().await;
    let awards = TestHost::new().await;
    let mut rng = Random(5);
    // Members are created on whole hours: no account age is reached in the minutes after `start`.
    add_members(&host, &mut rng, at("2026-02-20T15:00:00Z")).await;
    let start = at("2026-02-20T15:00:30Z");
    // Two roles a member, inserted in two rounds: each member's rows fall in frames far apart.
    for role in ["Member", "Expert"] {
        let rows: Vec<String> = (1..=MEMBERS).map(|id| format!("({id}, '{role}')")).collect();
        host.exec(&format!("INSERT INTO member_roles (user_id, role) VALUES {}", rows.join(", "))).await;
    }
    let plan = plan(&host, 5);
    let first = pass(&host, &awards, &plan, start, true).await;
    assert!(first.pass.kept_state, "the first pass keeps the state");
    // Nothing changed: the digests read in frames equal those the full pass kept.
    let quiet = pass(&host, &awards, &plan, start + Duration::minutes(1), true).await;
    assert!(quiet.pass.incremental, "{:?}", quiet.pass.full_because);
    assert_eq!(quiet.pass.members, Some(0), "no member changed");
    // One member's second role changes in place: only that member is evaluated.
    host.exec("UPDATE member_roles SET role = 'Mentor' WHERE user_id = 7 AND role = 'Expert'").await;
    let changed = pass(&host, &awards, &plan, start + Duration::minutes(2), true).await;
    assert!(changed.pass.incremental, "{:?}", changed.pass.full_because);
    assert_eq!(changed.pass.members, Some(1), "only member 7 changed");
}

/// Each badge's status in a run's report.
fn statuses(report: &RunReport) -> Vec<(String, &'static str)> {
    report.badges.iter().map(|b| (b.badge_id.clone(), b.status)).collect()
}

/// An incremental pass on one awards database and a full pass on the other, as of `now`: the
/// badges' outcomes and everything left must be the same. Returns the incremental pass.
async fn both(host: &TestHost, incremental: &TestHost, full: &TestHost, plan: &Plan, now: DateTime<Utc>) -> RunReport {
    let a = pass(host, incremental, plan, now, true).await;
    let b = pass(host, full, plan, now, false).await;
    assert_eq!(statuses(&a), statuses(&b), "the badges' outcomes as of {now}");
    assert_eq!(outcome(incremental).await, outcome(full).await, "the awards as of {now}");
    a
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_per_member_source_that_cannot_be_read_fails_its_badges_in_an_incremental_pass_as_in_a_full_one(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_guard) = use_backend(backend) else { return };
    let (host, incremental, full, _) = two_databases(3).await;
    let start = START;
    let plan = plan(&host, 5);
    pass(&host, &incremental, &plan, start, true).await;
    pass(&host, &full, &plan, start, false).await;
    // An enrolment whose date cannot be read, after a few frames of good ones: the trainings
    // source fails, and only the badge that reads it.
    for member in 2..14 {
        host.exec(&format!(
            "INSERT INTO trainings (user_id, training_id, enrolled_at, progress, passed) \
             VALUES ({member}, 'course', '{}', 100, FALSE)",
            text_time(start)
        ))
        .await;
    }
    host.exec(
        "INSERT INTO trainings (user_id, training_id, enrolled_at, progress, passed) VALUES (1, 'course', 'someday', 100, FALSE)",
    )
    .await;
    let a = both(&host, &incremental, &full, &plan, start + Duration::hours(1)).await;
    assert!(a.pass.incremental, "the pass was incremental: {:?}", a.pass.full_because);
    assert_eq!(status(&a, "finisher"), "failed");
    assert_eq!(status(&a, "veteran"), "evaluated");
    host.exec("DELETE FROM trainings WHERE enrolled_at = 'someday'").await;
    both(&host, &incremental, &full, &plan, start + Duration::hours(2)).await;
    // A member whose creation cannot be read: the users source fails, and with it every badge.
    host.exec("INSERT INTO users (user_id, created_at, blocked) VALUES (500, 'soon', FALSE)").await;
    let a = both(&host, &incremental, &full, &plan, start + Duration::hours(3)).await;
    assert!(a.pass.incremental, "the pass was incremental: {:?}", a.pass.full_because);
    assert_eq!(a.pass.members, Some(0), "no member is evaluated without the users source");
    for badge in ["veteran", "weekly-poster", "finisher", "regular"] {
        assert_eq!(status(&a, badge), "failed", "badge {badge}");
    }
}

/// `accolade run` through the binary, for the config at `config`.
fn binary_run(config: &std::path::Path, as_of: DateTime<Utc>, incremental: bool) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_accolade"));
    command.arg("--config").arg(config).args(["run", "--as-of", &as_of.to_rfc3339()]);
    if incremental {
        command.arg("--incremental");
    }
    command.env_remove("ACCOLADE_LOG").stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    command
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_at_a_random_point_leaves_the_next_incremental_run_exact(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_guard) = use_backend(backend) else { return };
    let (host, incremental, full, mut rng) = two_databases(99).await;
    let start = START;
    // One set of badges throughout: every pass after the first may be incremental.
    let text = config_text(&host, 5);
    let with_awards = |awards: &TestHost| {
        text.replacen(
            &format!("url = \"{}\"\n", host.url()),
            &format!("url = \"{}\"\nawards_url = \"{}\"\n", host.url(), awards.url()),
            1,
        )
    };
    let (config, full_config) = (
        host.write_config("incremental.toml", &with_awards(&incremental)),
        host.write_config("full.toml", &with_awards(&full)),
    );
    let succeeded = |command: &mut std::process::Command| {
        let status = command.status().expect("running accolade");
        assert!(status.success(), "accolade run failed: {status}");
    };
    // The first pass keeps the state; its length picks the instants to kill the later ones at.
    let clock = std::time::Instant::now();
    succeeded(&mut binary_run(&config, start, true));
    let length_ms = clock.elapsed().as_millis().max(20) as u64;
    succeeded(&mut binary_run(&full_config, start, false));
    let (mut before, mut killed) = (start, 0);
    for (cycle, minutes) in [30, 1_445, 9, 4_320, 61, 10_080].into_iter().enumerate() {
        let now = before + Duration::minutes(minutes);
        act(&host, &mut rng, before, now, accolade::config::plan::DEFAULT_LATE_ROWS).await;
        let mut child = binary_run(&config, now, true).spawn().expect("starting accolade");
        std::thread::sleep(std::time::Duration::from_millis(rng.below(length_ms * 4 / 5)));
        if child.try_wait().expect("polling accolade").is_none() {
            child.kill().expect("killing accolade (SIGKILL)");
            killed += 1;
        }
        child.wait().expect("reaping accolade");
        succeeded(&mut binary_run(&config, now, true));
        succeeded(&mut binary_run(&full_config, now, false));
        let (left, right) = (outcome(&incremental).await, outcome(&full).await);
        assert_eq!(left.0, right.0, "cycle {cycle} ({}): awards differ after a killed run", now.to_rfc3339());
        assert_eq!(left.1, right.1, "cycle {cycle}: outbox differs after a killed run");
        assert_eq!(left.2, right.2, "cycle {cycle}: leaderboard differs after a killed run");
        before = now;
    }
    assert!(killed >= 1, "at least one run was killed before it finished");
    let state = incremental.store().incremental_state("0/1").await.expect("the state").expect("kept state");
    assert_eq!(state.as_of, before, "the last whole run kept the state");
}

/// What a pass asked to be incremental did, and why it was full if it was.
fn full_because(report: &RunReport) -> Option<String> {
    match report.pass.incremental {
        true => None,
        false => Some(report.pass.full_because.clone().unwrap_or_default()),
    }
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_pass_is_full_and_says_why_whenever_the_stored_state_cannot_be_trusted(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_guard) = use_backend(backend) else { return };
    let host = host().await;
    host.add_members(1..=5, "2026-01-01 00:00:00").await;
    let plan = plan(&host, 0);
    let day = |d: u32| at(&format!("2026-03-{d:02}T12:00:00Z"));
    let first = pass(&host, &host, &plan, day(1), true).await;
    assert!(full_because(&first).is_some_and(|r| r.contains("no run of shard 0/1 has kept incremental state")));
    assert!(first.pass.kept_state);
    let next = pass(&host, &host, &plan, day(2), true).await;
    assert_eq!(full_because(&next), None, "the state of a whole run is trusted");
    assert_eq!(next.pass.members, Some(0), "nothing changed, so no member is evaluated");

    // A source query that changed.
    let changed = host.plan(
        &host
            .config_in("America/New_York", &badges(0), &host.formula_sources())
            .replacen("FROM posts'", "FROM posts WHERE 1 = 1'", 1)
            .replacen("[sources]", "[notifications]\non_revoke = \"all\"\n\n[sources]", 1),
    );
    let report = pass(&host, &host, &changed, day(3), true).await;
    assert_eq!(full_because(&report).as_deref(), Some("the query of source 'posts' changed"));
    assert_eq!(full_because(&pass(&host, &host, &changed, day(4), true).await), None);

    // A run that did not keep state since (a plain run of one badge), then a killed run.
    let only = RunOptions { as_of: Some(day(5)), only: vec!["veteran".to_string()], ..RunOptions::default() };
    let limited = run_on(&host, &host, &changed, &only).await;
    let report = pass(&host, &host, &changed, day(6), true).await;
    let reason = full_because(&report).unwrap_or_default();
    assert!(reason.contains(&format!("run {}", limited.run_id.unwrap_or(0))), "{reason}");
    // A run killed before it finished leaves its record 'running'.
    host.exec(
        "INSERT INTO accolade_runs (started_at, as_of, outcome, shard) \
         VALUES ('2026-03-06 13:00:00', '2026-03-06 13:00:00', 'running', '0/1')",
    )
    .await;
    let reason = full_because(&pass(&host, &host, &changed, day(7), true).await).unwrap_or_default();
    assert!(reason.contains("came after run"), "a killed run's state is not trusted: {reason}");

    // --as-of earlier than the last run, --full, and a timezone that changed.
    let earlier = pass(&host, &host, &changed, day(7) - Duration::hours(1), true).await;
    assert!(full_because(&earlier).is_some_and(|r| r.contains("earlier than the last run")));
    let options = RunOptions { as_of: Some(day(8)), incremental: true, full: true, ..RunOptions::default() };
    let forced = run_on(&host, &host, &changed, &options).await;
    assert_eq!(full_because(&forced).as_deref(), Some("--full"));
    assert!(forced.pass.kept_state, "--full keeps the state");
    let elsewhere = host.plan(
        &host
            .config_in("Europe/Paris", &badges(0), &host.formula_sources())
            .replacen("FROM posts'", "FROM posts WHERE 1 = 1'", 1)
            .replacen("[sources]", "[notifications]\non_revoke = \"all\"\n\n[sources]", 1),
    );
    let reason = full_because(&pass(&host, &host, &elsewhere, day(9), true).await).unwrap_or_default();
    assert_eq!(reason, "the timezone changed (America/New_York to Europe/Paris)");
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn incremental_shards_together_award_what_an_unsharded_incremental_run_awards(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_guard) = use_backend(backend) else { return };
    let host = host().await;
    let (sharded, whole) = (TestHost::new().await, TestHost::new().await);
    let mut rng = Random(99);
    host.add_members(1..=MEMBERS, "2026-01-20 00:00:00").await;
    let late = accolade::config::plan::DEFAULT_LATE_ROWS;
    let mut before = at("2026-02-20T15:00:00Z");
    for (step, minutes) in [0, 20, 1_500, 8_000, 45].iter().enumerate() {
        let now = before + Duration::minutes(*minutes);
        if step > 0 {
            act(&host, &mut rng, before, now, late).await;
        }
        let plan = plan(&host, 0);
        for index in 0..3 {
            let shard = Some(accolade::sources::Shard { index, count: 3 });
            let options = RunOptions { as_of: Some(now), incremental: true, shard, ..RunOptions::default() };
            let report = run_on(&host, &sharded, &plan, &options).await;
            assert_eq!(report.pass.incremental, step > 0, "shard {index} keeps its own state");
        }
        pass(&host, &whole, &plan, now, true).await;
        let (left, right) = (outcome(&sharded).await, outcome(&whole).await);
        assert_eq!(left.0, right.0, "step {step}: awards differ");
        assert_eq!(left.1, right.1, "step {step}: outbox differs");
        before = now;
    }
}

/// Eligibility that changes with time alone, member by member: a current streak ended by
/// midnight, a row leaving a `within` window, an account age reached, a row and an enrolment
/// dated ahead of the run, a member created ahead of it. Incremental passes with no new rows
/// must revoke and award exactly as full passes do.
#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn awards_that_change_with_time_alone_change_in_incremental_passes_too(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_guard) = use_backend(backend) else { return };
    let host = host().await;
    let (incremental, full) = (TestHost::new().await, TestHost::new().await);
    let native = |t: &str| host.native_timestamp(t);
    host.add_members(1..=6, "2026-02-01 00:00:00").await;
    // Member 1 signs in two days running: a current streak that midnight ends.
    for t in ["2026-03-01T14:00:00Z", "2026-03-02T14:00:00Z"] {
        host.exec(&format!("INSERT INTO sign_ins (user_id, created_at) VALUES (1, {})", native(t))).await;
    }
    // Member 2 posts three times on one day: a 7-day window that the rows then leave.
    for t in ["2026-02-26T12:00:00Z", "2026-02-26T13:00:00Z", "2026-02-26T14:00:00Z"] {
        host.exec(&format!("INSERT INTO posts (user_id, created_at) VALUES (2, {})", native(t))).await;
    }
    // Member 3 posts twice, the second dated ahead of the first run.
    for t in ["2026-03-02T10:00:00Z", "2026-03-04T10:00:00Z"] {
        host.exec(&format!("INSERT INTO posts (user_id, created_at) VALUES (3, {})", native(t))).await;
    }
    // Member 4 completes a training whose enrolment is dated ahead; member 7 is created ahead;
    // member 5 was created late enough to reach 30 days during the runs.
    host.exec(
        "INSERT INTO trainings (user_id, training_id, enrolled_at, progress, passed) \
         VALUES (4, 'course', '2026-03-03 09:00:00', 100, FALSE)",
    )
    .await;
    host.exec("INSERT INTO users (user_id, created_at, blocked) VALUES (7, '2026-03-03 08:00:00', FALSE)").await;
    host.exec("UPDATE users SET created_at = '2026-02-01 18:00:00' WHERE user_id = 5").await;
    let plan = plan(&host, 0);
    let instants = [
        "2026-03-02T15:00:00Z",
        "2026-03-02T23:00:00Z",
        "2026-03-03T05:30:00Z",
        "2026-03-04T06:00:00Z",
        "2026-03-04T12:00:00Z",
        "2026-03-05T18:00:00Z",
    ];
    for (step, instant) in instants.iter().enumerate() {
        let now = at(instant);
        let a = pass(&host, &incremental, &plan, now, true).await;
        pass(&host, &full, &plan, now, false).await;
        assert_eq!(a.pass.incremental, step > 0, "step {step}: {:?}", a.pass.full_because);
        let (left, right) = (outcome(&incremental).await, outcome(&full).await);
        assert_eq!(left.0, right.0, "step {step} ({instant}): awards differ");
        assert_eq!(left.1, right.1, "step {step}: outbox differs");
    }
    let rows = outcome(&full).await.0;
    for expected in [
        "revoked on-a-roll 1  Some(\"rule\")",
        "revoked weekly-poster 2  Some(\"rule\")",
        // Counted once the run's instant passes the post dated ahead.
        "weekly 3 2026-W10 2026-03-04T12:00:00Z",
        // Enrolled 09:00 New York time on March 3rd: counted from the next run.
        "finisher 4  2026-03-04T06:00:00Z",
        // Created 18:00 New York time on February 1st: 30 days old on March 3rd at 18:00.
        "veteran 5  2026-03-04T06:00:00Z",
        "veteran 6  2026-03-03T05:30:00Z",
    ] {
        assert!(rows.iter().any(|r| r.starts_with(expected)), "the history has {expected}: {rows:#?}");
    }
}
