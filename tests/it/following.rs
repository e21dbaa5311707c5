//! Awards that follow their criterion (`revoke_when_unmet`) beyond the basics: notifications of
//! revocations and restorations with `on_revoke = "all"`, runs of one shard, and `explain` of
//! each grant of a repeating badge. On SQLite, PostgreSQL and MariaDB.

use crate::support::{Backend, TestHost, at, formula_badge, use_backend};
use accolade::commands::run::RunOptions;
use accolade::sources::Shard;

/// A sponsor badge that follows the role, over members 1..=4 who all hold it at first.
fn sponsor_badges() -> String {
    format!("{}revoke_when_unmet = true\n", formula_badge("sponsor", "roles in ['Sponsor']"))
}

async fn sponsors(members: i64) -> TestHost {
    let host = TestHost::for_formulas().await;
    host.add_members(1..=members, "2025-01-01 00:00:00").await;
    let rows: Vec<String> = (1..=members).map(|u| format!("{u}, 'Sponsor'")).collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    host.insert("member_roles", "user_id, role", &rows).await;
    host
}

/// `(user_id, event, state)` of one badge's outbox rows, sorted.
async fn outbox(host: &TestHost, badge: &str) -> Vec<(i64, String, String)> {
    let mut rows: Vec<(i64, String, String)> = host
        .store()
        .outbox()
        .await
        .expect("the outbox")
        .into_iter()
        .filter(|r| r.badge_id == badge)
        .map(|r| (r.user_id, r.event, r.state))
        .collect();
    rows.sort();
    rows
}

/// With `on_revoke = "all"` a revocation and a restoration each queue one notification (and a
/// second revocation of the same award queues its row again); without it they queue nothing.
#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn on_revoke_all_announces_revocations_and_restorations_and_the_default_announces_none(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_guard) = use_backend(backend) else { return };
    let host = sponsors(2).await;
    let quiet = host.plan(&host.config(&sponsor_badges(), &host.formula_sources()));
    let loud_text = host.config(&sponsor_badges(), &host.formula_sources()).replacen(
        "[sources]",
        "[notifications]\non_revoke = \"all\"\n\n[sources]",
        1,
    );
    let loud = host.plan(&loud_text);
    host.run(&quiet, at("2026-06-01T00:00:00Z")).await; // the backfill: announced to nobody
    host.exec("DELETE FROM member_roles WHERE user_id = 1").await;
    let report = host.run(&quiet, at("2026-06-02T00:00:00Z")).await;
    assert_eq!(report.badges[0].revoked, 1);
    assert_eq!(outbox(&host, "sponsor").await, vec![], "the default announces no revocation");

    host.exec("INSERT INTO member_roles (user_id, role) VALUES (1, 'Sponsor')").await;
    host.exec("DELETE FROM member_roles WHERE user_id = 2").await;
    let report = host.run(&loud, at("2026-06-03T00:00:00Z")).await;
    assert_eq!((report.badges[0].revoked, report.badges[0].restored), (1, 1));
    let pending = |user: i64, event: &str| (user, event.to_string(), "pending".to_string());
    assert_eq!(outbox(&host, "sponsor").await, vec![pending(1, "restored"), pending(2, "revoked")]);

    host.exec("UPDATE accolade_outbox SET state = 'sent'").await;
    host.exec("INSERT INTO member_roles (user_id, role) VALUES (2, 'Sponsor')").await;
    host.run(&loud, at("2026-06-04T00:00:00Z")).await;
    host.exec("DELETE FROM member_roles WHERE user_id = 2").await;
    host.run(&loud, at("2026-06-05T00:00:00Z")).await;
    let sent = |user: i64, event: &str| (user, event.to_string(), "sent".to_string());
    assert_eq!(
        outbox(&host, "sponsor").await,
        vec![sent(1, "restored"), pending(2, "restored"), pending(2, "revoked")],
        "member 2's second revocation queues its row again"
    );
    assert_eq!(host.count("SELECT COUNT(*) FROM accolade_awards WHERE badge_id = 'sponsor'").await, 2, "one row each");
}

/// A run of shard 0/2 compares only its own members (even ids) with the criterion: member 3,
/// who lost the role too, keeps the award until shard 1/2 runs.
#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_run_of_one_shard_revokes_only_the_awards_of_that_shards_members(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_guard) = use_backend(backend) else { return };
    let host = sponsors(4).await;
    let plan = host.plan(&host.config(&sponsor_badges(), &host.formula_sources()));
    host.run(&plan, at("2026-06-01T00:00:00Z")).await;
    host.exec("DELETE FROM member_roles WHERE user_id IN (2, 3)").await;
    let shard = |index| RunOptions {
        as_of: Some(at("2026-06-02T00:00:00Z")),
        shard: Some(Shard { index, count: 2 }),
        ..RunOptions::default()
    };
    let even = host.run_with(&plan, &shard(0)).await;
    assert_eq!(even.badges[0].revoked, 1);
    let revoked = "SELECT COUNT(*) FROM accolade_awards WHERE revoked_at IS NOT NULL";
    assert_eq!(host.count(revoked).await, 1);
    let who = "SELECT COUNT(*) FROM accolade_awards WHERE revoked_at IS NOT NULL AND user_id = 2";
    assert_eq!(host.count(who).await, 1, "member 2 only: member 3 is shard 1's");
    let odd = host.run_with(&plan, &shard(1)).await;
    assert_eq!(odd.badges[0].revoked, 1);
    let by_rule = "SELECT COUNT(*) FROM accolade_awards WHERE revoked_by = 'rule' AND user_id IN (2, 3)";
    assert_eq!(host.count(by_rule).await, 2);
}

/// `explain` of a repeating badge gives one entry per grant the member has activity for, each
/// with whether it is held and whether it qualifies.
#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn explain_of_a_repeating_badge_explains_each_grant(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_guard) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members([1], "2025-01-01 00:00:00").await;
    // Two posts in June, one in July (UTC).
    host.add_events("posts", 1, &["2026-06-01 10:00:00", "2026-06-02 10:00:00", "2026-07-01 10:00:00"]).await;
    let badges = format!("{}repeat = \"month\"\n", formula_badge("monthly", "count(posts) >= 2"));
    let plan = host.plan(&host.config(&badges, &host.formula_sources()));
    host.run(&plan, at("2026-07-15T00:00:00Z")).await;
    let explained = host.explain(&plan, 1, at("2026-07-15T00:00:00Z")).await.expect("a member");
    let grants: Vec<(String, bool)> = explained.iter().map(|b| (b.grant.clone(), b.qualifies)).collect();
    assert_eq!(grants, vec![("2026-06".to_string(), true), ("2026-07".to_string(), false)]);
    let value = &explained[1].checks()[0].values[0].1;
    assert_eq!(value, "1", "July counts only July's post");
}

/// Each repeating badge's grants are the periods of its own aggregates' rows: a week in which
/// the member only made connections is no grant of a posts badge, even one whose criterion
/// holds with no posts.
#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn repeating_badges_of_one_kind_do_not_share_their_periods(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_guard) = use_backend(backend) else { return };
    let host = TestHost::for_formulas().await;
    host.add_members([1], "2025-01-01 00:00:00").await;
    host.add_events("posts", 1, &["2026-06-01 10:00:00"]).await; // week 2026-W23
    host.add_events("connections", 1, &["2026-06-08 10:00:00"]).await; // week 2026-W24
    let weekly = |id: &str, formula: &str| format!("{}repeat = \"week\"\n", formula_badge(id, formula));
    let badges =
        format!("{}{}", weekly("quiet-week", "count(posts) < 5"), weekly("networker", "count(connections) >= 1"));
    let plan = host.plan(&host.config(&badges, &host.formula_sources()));
    host.run(&plan, at("2026-06-20T00:00:00Z")).await;
    let grants: Vec<(String, String)> = host.stored_awards().await.into_iter().map(|a| (a.badge_id, a.grant)).collect();
    let pair = |b: &str, g: &str| (b.to_string(), g.to_string());
    assert_eq!(grants, vec![pair("networker", "2026-W24"), pair("quiet-week", "2026-W23")]);
}

/// An award its rule revoked and then an admin revoked by hand stays revoked when the member
/// qualifies again; a run as of an instant before the last run's withdraws nothing.
#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_hand_revocation_outranks_the_rule_and_a_replay_of_the_past_revokes_nothing(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_guard) = use_backend(backend) else { return };
    let host = sponsors(2).await;
    let plan = host.plan(&host.config(&sponsor_badges(), &host.formula_sources()));
    host.run(&plan, at("2026-06-01T00:00:00Z")).await;
    host.exec("DELETE FROM member_roles").await;
    let replay = host.run(&plan, at("2026-05-20T00:00:00Z")).await;
    assert_eq!(replay.badges[0].revoked, 0, "a replay of an earlier instant withdraws nothing");
    let report = host.run(&plan, at("2026-06-02T00:00:00Z")).await;
    assert_eq!(report.badges[0].revoked, 2);

    let by_hand = host.store().set_revoked("sponsor", "", &[1], Some("abuse"), at("2026-06-03T00:00:00Z")).await;
    assert_eq!(by_hand.expect("the revocation").changed, vec![1]);
    host.exec("INSERT INTO member_roles (user_id, role) VALUES (1, 'Sponsor'), (2, 'Sponsor')").await;
    let report = host.run(&plan, at("2026-06-04T00:00:00Z")).await;
    assert_eq!(report.badges[0].restored, 1, "member 2 only");
    let reason = host.text("SELECT revocation_reason FROM accolade_awards WHERE user_id = 1").await;
    assert_eq!(reason.as_deref(), Some("abuse"));
    let who = host.text("SELECT revoked_by FROM accolade_awards WHERE user_id = 1").await;
    assert_eq!(who.as_deref(), Some("manual"));
}
