//! Awards over several runs: exactly once, disabled and refused badges, presentation
//! changes, manual awards and dry runs.

use crate::support::{Backend, CANONICAL_SOURCES, TestHost, at, badge, manual_badge, pairs, status, use_backend};

const POSTER: &str = r#"{ type = "posts_sent", min = 1 }"#;

/// A host with members 1..=3; 1 and 2 have one post each, 3 none.
async fn host_with_two_posters() -> TestHost {
    let host = TestHost::canonical().await;
    host.add_members(1..=3, "2026-01-01 00:00:00").await;
    host.add_events("posts", 1, &["2026-02-01 00:00:00"]).await;
    host.add_events("posts", 2, &["2026-02-01 00:00:00"]).await;
    host
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_at_the_same_instant_inserts_nothing_and_keeps_awarded_at(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_two_posters().await;
    let plan = host.plan(&host.config(&badge("poster", POSTER), CANONICAL_SOURCES));
    let as_of = at("2026-06-15T12:00:00Z");

    let first = host.run(&plan, as_of).await;
    let after_first = host.stored_awards().await;
    let second = host.run(&plan, as_of).await;

    assert_eq!(first.new_awards("poster"), 2);
    assert_eq!(second.new_awards("poster"), 0);
    assert_eq!(status(&second, "poster"), "evaluated");
    assert_eq!(host.stored_awards().await, after_first);
    assert_eq!(host.awards().await, pairs(&[("poster", 1), ("poster", 2)]));
    for award in &after_first {
        assert_eq!(award.awarded_at, "2026-06-15T12:00:00Z");
        // The badge's first evaluation since it was published is its backfill.
        assert_eq!(award.source, "backfill");
    }
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_later_run_keeps_the_first_awarded_at_and_awards_only_newcomers(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_two_posters().await;
    let plan = host.plan(&host.config(&badge("poster", POSTER), CANONICAL_SOURCES));
    host.run(&plan, at("2026-06-15T12:00:00Z")).await;
    host.add_events("posts", 3, &["2026-06-20 00:00:00"]).await;

    let later = host.run(&plan, at("2026-07-01T00:00:00Z")).await;

    assert_eq!(later.new_awards("poster"), 1);
    let awards: Vec<(String, i64, String)> =
        host.stored_awards().await.into_iter().map(|a| (a.badge_id, a.user_id, a.awarded_at)).collect();
    assert_eq!(
        awards,
        vec![
            ("poster".to_string(), 1, "2026-06-15T12:00:00Z".to_string()),
            ("poster".to_string(), 2, "2026-06-15T12:00:00Z".to_string()),
            ("poster".to_string(), 3, "2026-07-01T00:00:00Z".to_string()),
        ]
    );
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_badge_keeps_its_awards_and_gives_no_new_ones(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_two_posters().await;
    let published = host.plan(&host.config(&badge("poster", POSTER), CANONICAL_SOURCES));
    host.run(&published, at("2026-06-15T12:00:00Z")).await;
    let before = host.stored_awards().await;
    host.add_events("posts", 3, &["2026-06-20 00:00:00"]).await;
    let disabled = host.plan(&host.config(
        &format!("[[badges]]\nid = \"poster\"\nname = \"poster\"\nstatus = \"disabled\"\nrule = {POSTER}\n"),
        CANONICAL_SOURCES,
    ));

    let report = host.run(&disabled, at("2026-07-01T00:00:00Z")).await;

    assert_eq!(status(&report, "poster"), "disabled");
    assert_eq!(report.new_awards("poster"), 0);
    assert!(!report.refused());
    assert_eq!(host.stored_awards().await, before);
    let stored = host.stored_badges().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].status, "disabled");
    assert_eq!(stored[0].recipients, Some(2));

    // Published again with the same rule, it is not refused and catches up.
    let again = host.run(&published, at("2026-07-02T00:00:00Z")).await;
    assert_eq!(status(&again, "poster"), "evaluated");
    assert_eq!(host.awards().await, pairs(&[("poster", 1), ("poster", 2), ("poster", 3)]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn changing_the_rule_of_a_published_badge_is_refused_while_other_badges_still_run(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members(1..=4, "2026-01-01 00:00:00").await;
    host.add_events("posts", 1, &["2026-02-01 00:00:00", "2026-02-02 00:00:00"]).await;
    host.add_events("posts", 2, &["2026-02-01 00:00:00"]).await;
    let talker_v1 = badge("talker", r#"{ type = "posts_sent", min = 2 }"#);
    let talker_v2 = badge("talker", r#"{ type = "posts_sent", min = 1 }"#);
    let poster = badge("poster", POSTER);
    let v1 = host.plan(&host.config(&(talker_v1 + &poster), CANONICAL_SOURCES));
    host.run(&v1, at("2026-06-15T12:00:00Z")).await;
    assert_eq!(host.awards().await, pairs(&[("poster", 1), ("poster", 2), ("talker", 1)]));
    let talker_before = host
        .stored_badges()
        .await
        .into_iter()
        .find(|b| b.badge_id == "talker")
        .expect("talker is recorded after the first run");
    host.add_events("posts", 3, &["2026-06-20 00:00:00"]).await;
    let v2 = host.plan(&host.config(&(talker_v2 + &poster), CANONICAL_SOURCES));

    let report = host.run(&v2, at("2026-07-01T00:00:00Z")).await;

    assert!(report.refused());
    assert_eq!(status(&report, "talker"), "refused");
    let message = report
        .badges
        .iter()
        .find(|b| b.badge_id == "talker")
        .and_then(|b| b.message.clone())
        .expect("a refused badge carries a message");
    assert!(message.contains("talker"), "{message}");
    assert_eq!(report.new_awards("talker"), 0);
    assert_eq!(status(&report, "poster"), "evaluated");
    assert_eq!(report.new_awards("poster"), 1);
    // Under the new rule 2 and 3 would qualify; the refused badge did not move.
    assert_eq!(host.awards().await, pairs(&[("poster", 1), ("poster", 2), ("poster", 3), ("talker", 1)]));
    let talker_after =
        host.stored_badges().await.into_iter().find(|b| b.badge_id == "talker").expect("talker is still recorded");
    assert_eq!(talker_after, talker_before);
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn changing_name_points_and_image_of_a_published_badge_is_accepted(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_two_posters().await;
    let v1 = host.plan(&host.config(
        &format!("[[badges]]\nid = \"poster\"\nname = \"Poster\"\npoints = 10\nrule = {POSTER}\n"),
        CANONICAL_SOURCES,
    ));
    host.run(&v1, at("2026-06-15T12:00:00Z")).await;
    host.add_events("posts", 3, &["2026-06-20 00:00:00"]).await;
    let v2 = host.plan(&host.config(
        &format!(
            "[[badges]]\nid = \"poster\"\nname = \"Prolific Poster\"\npoints = 25\nimage = \"poster.png\"\nhidden_until_earned = true\nrule = {POSTER}\n"
        ),
        CANONICAL_SOURCES,
    ));

    let report = host.run(&v2, at("2026-07-01T00:00:00Z")).await;

    assert!(!report.refused());
    assert_eq!(status(&report, "poster"), "evaluated");
    assert_eq!(report.new_awards("poster"), 1);
    let stored = host.stored_badges().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].name, "Prolific Poster");
    assert_eq!(stored[0].recipients, Some(3));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn manual_awards_report_awarded_already_held_and_unknown_members(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members(1..=3, "2026-01-01 00:00:00").await;
    let plan = host.plan(&host.config(&manual_badge("speaker"), CANONICAL_SOURCES));

    let first = host.award(&plan, "speaker", &[2, 1, 999]).await.expect("the first manual award succeeds");
    assert_eq!(first.awarded, vec![1, 2]);
    assert_eq!(first.already_held, Vec::<i64>::new());
    assert_eq!(first.unknown, vec![999]);
    let after_first = host.stored_awards().await;

    let second = host.award(&plan, "speaker", &[2, 3, 3]).await.expect("the second manual award succeeds");
    assert_eq!(second.awarded, vec![3]);
    assert_eq!(second.already_held, vec![2]);
    assert_eq!(second.unknown, Vec::<i64>::new());

    let awards = host.stored_awards().await;
    assert_eq!(host.awards().await, pairs(&[("speaker", 1), ("speaker", 2), ("speaker", 3)]));
    assert!(awards.iter().all(|a| a.source == "manual"));
    // The repeat left member 2's award as it was.
    assert_eq!(awards[1], after_first[1]);
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_rule_run_never_touches_manual_awards(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_two_posters().await;
    let plan = host.plan(&host.config(&(manual_badge("speaker") + &badge("poster", POSTER)), CANONICAL_SOURCES));
    host.award(&plan, "speaker", &[3]).await.expect("awarding the manual badge");
    // A rule badge may be awarded by hand too: 2 qualifies anyway, 3 does not.
    host.award(&plan, "poster", &[2, 3]).await.expect("awarding the rule badge by hand");
    let manual_before = host.stored_awards().await;

    let report = host.run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert_eq!(status(&report, "speaker"), "manual");
    assert_eq!(report.new_awards("speaker"), 0);
    assert_eq!(report.new_awards("poster"), 1);
    let after = host.stored_awards().await;
    assert_eq!(host.awards().await, pairs(&[("poster", 1), ("poster", 2), ("poster", 3), ("speaker", 3)]));
    for manual in &manual_before {
        assert!(after.contains(manual), "manual award {manual:?} changed: {after:?}");
    }
    // The run is the poster badge's first evaluation, so its award is a backfill.
    let by_rule: Vec<_> = after.iter().filter(|a| a.source == "backfill").collect();
    assert_eq!(by_rule.len(), 1);
    assert_eq!((by_rule[0].badge_id.as_str(), by_rule[0].user_id), ("poster", 1));
    assert_eq!(by_rule[0].awarded_at, "2026-06-15T12:00:00Z");
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_badge_cannot_be_awarded_by_hand(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members(1..=2, "2026-01-01 00:00:00").await;
    let plan = host.plan(&host.config(
        "[[badges]]\nid = \"speaker\"\nname = \"Speaker\"\nstatus = \"disabled\"\nmanual = true\n",
        CANONICAL_SOURCES,
    ));

    let error = host.award(&plan, "speaker", &[1]).await.expect_err("a disabled badge cannot be awarded");

    assert!(format!("{error:#}").contains("speaker"), "{error:#}");
    assert_eq!(host.awards().await, pairs(&[]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_on_a_fresh_database_writes_nothing_but_reports_counts(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_two_posters().await;
    let plan = host.plan(&host.config(&(badge("poster", POSTER) + &manual_badge("speaker")), CANONICAL_SOURCES));

    let report = host.dry_run(&plan, at("2026-06-15T12:00:00Z")).await;

    assert!(report.dry_run);
    assert_eq!(report.run_id, None);
    assert_eq!(report.new_awards("poster"), 2);
    assert_eq!(status(&report, "speaker"), "manual");
    assert!(!host.is_migrated().await, "a dry run creates no tables");
    assert_eq!(host.awards().await, pairs(&[]));
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_after_a_real_run_counts_only_new_awards_and_writes_none(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_two_posters().await;
    let plan = host.plan(&host.config(&badge("poster", POSTER), CANONICAL_SOURCES));
    host.run(&plan, at("2026-06-15T12:00:00Z")).await;
    let awards_before = host.stored_awards().await;
    let badges_before = host.stored_badges().await;
    host.add_events("posts", 3, &["2026-06-20 00:00:00"]).await;
    let renamed = host.plan(
        &host.config(&format!("[[badges]]\nid = \"poster\"\nname = \"Renamed\"\nrule = {POSTER}\n"), CANONICAL_SOURCES),
    );

    let report = host.dry_run(&renamed, at("2026-07-01T00:00:00Z")).await;

    assert_eq!(report.new_awards("poster"), 1);
    assert_eq!(host.stored_awards().await, awards_before);
    assert_eq!(host.stored_badges().await, badges_before);
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn manual_awards_are_stamped_in_whole_seconds_like_rule_awards(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members([1], "2026-01-01 00:00:00").await;
    let plan = host.plan(&host.config(&manual_badge("speaker"), CANONICAL_SOURCES));

    host.award(&plan, "speaker", &[1]).await.expect("awarding the manual badge");

    let awards = host.stored_awards().await;
    assert_eq!(awards.len(), 1);
    let stamp = &awards[0].awarded_at;
    assert!(chrono::DateTime::parse_from_rfc3339(stamp).is_ok(), "{stamp} is RFC 3339");
    assert!(
        stamp.len() == "2026-06-15T12:00:00Z".len() && stamp.ends_with('Z'),
        "{stamp} is whole seconds in UTC, like 2026-06-15T12:00:00Z"
    );
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn rewriting_a_numeric_training_id_as_text_is_not_a_rule_change(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = TestHost::canonical().await;
    host.add_members([1], "2026-01-01 00:00:00").await;
    let as_number = host
        .plan(&host.config(&badge("certified", r#"{ type = "training_passed", training = 101 }"#), CANONICAL_SOURCES));
    let as_text = host.plan(
        &host.config(&badge("certified", r#"{ type = "training_passed", training = "101" }"#), CANONICAL_SOURCES),
    );
    host.run(&as_number, at("2026-06-15T12:00:00Z")).await;

    // Training ids are compared as text: 101 and "101" select the same members.
    let report = host.run(&as_text, at("2026-06-16T12:00:00Z")).await;

    assert!(!report.refused(), "{:?}", report.badges);
    assert_eq!(status(&report, "certified"), "evaluated");
}

#[rstest::rstest]
#[tokio::test(flavor = "multi_thread")]
async fn a_badge_that_was_never_published_may_change_its_rule(
    #[values(Backend::Sqlite, Backend::Postgres, Backend::MySql)] backend: Backend,
) {
    let Some(_backend) = use_backend(backend) else { return };
    let host = host_with_two_posters().await;
    let draft = host.plan(&host.config(
        "[[badges]]\nid = \"talker\"\nname = \"Talker\"\nstatus = \"disabled\"\nrule = { type = \"posts_sent\", min = 5 }\n",
        CANONICAL_SOURCES,
    ));
    host.run(&draft, at("2026-06-15T12:00:00Z")).await;
    let published = host.plan(&host.config(&badge("talker", POSTER), CANONICAL_SOURCES));

    let report = host.run(&published, at("2026-06-16T12:00:00Z")).await;

    assert!(!report.refused(), "{:?}", report.badges);
    assert_eq!(host.awards().await, pairs(&[("talker", 1), ("talker", 2)]));
}
