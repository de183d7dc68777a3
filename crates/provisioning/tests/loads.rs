//! Loads end to end through the engine, on the database `DATABASE_URL` names (SQLite by
//! default): the gooddata-pipelines behaviours cadre keeps, and its hardening.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use cadre_domain::{ProcessRepository, ProcessStatus, SubscriptionRepository};
use cadre_provisioning::{Counts, LoadSettings, Mode, Outcome, RowReport};

use support::{Forced, Harness, groups_csv, users_csv};

const HEADER: &str = "user_id,firstname,lastname,email,auth_id,user_groups";

fn outcomes(rows: &[RowReport]) -> Vec<(String, Outcome)> {
    let mut outcomes: Vec<(String, Outcome)> = rows
        .iter()
        .map(|row| (row.id.clone(), row.outcome))
        .collect();
    outcomes.sort();
    outcomes
}

fn pairs(list: &[(&str, Outcome)]) -> Vec<(String, Outcome)> {
    let mut pairs: Vec<(String, Outcome)> = list
        .iter()
        .map(|(id, outcome)| ((*id).to_owned(), *outcome))
        .collect();
    pairs.sort();
    pairs
}

#[tokio::test]
async fn a_full_load_creates_missing_updates_changed_leaves_equal_and_removes_the_rest() {
    let harness = Harness::new().await;
    let first = users_csv(
        &format!(
            "{HEADER}\n\
             u2,Ann,Two,u2@example.com,,g1|g2\n\
             u3,Bob,Three,u3@example.com,sso-3,g1\n\
             u4,Cy,Four,u4@example.com,,\n"
        ),
        Mode::Full,
    );
    let report = harness
        .load_users(&first, LoadSettings::new(Mode::Full))
        .await;
    assert_eq!(report.status, ProcessStatus::Completed);
    assert_eq!(
        report.counts.created, 5,
        "three users and the two groups they name"
    );

    // Groups in another order and "" for null are equal; u3 changes its name and groups.
    let second = users_csv(
        &format!(
            "{HEADER}\n\
             u1,Dee,One,u1@example.com,,\n\
             u2,Ann,Two,u2@example.com,,g2|g1\n\
             u3,Bob,Thrice,u3@example.com,sso-3,g2\n"
        ),
        Mode::Full,
    );
    let versions_before = harness.versions().await;
    let report = harness
        .load_users(&second, LoadSettings::new(Mode::Full).forced())
        .await;
    assert_eq!(report.status, ProcessStatus::Completed, "{report:?}");
    assert_eq!(
        outcomes(&report.rows),
        pairs(&[
            ("u1", Outcome::Created),
            ("u2", Outcome::Unchanged),
            ("u3", Outcome::Updated),
            ("u4", Outcome::Removed),
        ])
    );
    let users = harness.live_users().await;
    assert_eq!(users.keys().collect::<Vec<_>>(), ["u1", "u2", "u3"]);
    assert_eq!(users["u3"].lastname.as_deref(), Some("Thrice"));
    assert_eq!(users["u3"].groups, ["g2"]);
    assert_eq!(
        harness.versions().await["u2"],
        versions_before["u2"],
        "an equal row writes nothing"
    );

    // The same load again writes nothing at all.
    let before = harness.versions().await;
    let report = harness
        .load_users(&second, LoadSettings::new(Mode::Full))
        .await;
    assert_eq!(
        report.counts,
        Counts {
            unchanged: 3,
            ..Counts::default()
        }
    );
    assert_eq!(harness.versions().await, before);
}

#[tokio::test]
async fn protected_users_are_never_created_changed_or_removed() {
    let harness = Harness::new().await;
    let mut settings = LoadSettings::new(Mode::Full);
    let rows = users_csv(
        &format!("{HEADER}\nboss,B,Oss,boss@example.com,,\nu1,U,One,u1@example.com,,\n"),
        Mode::Full,
    );
    harness.load_users(&rows, settings.clone()).await;

    // `boss` is now the caller: absent from the input, it stays; `admin` in the input is skipped.
    settings.protected.insert("boss".to_owned());
    let rows = users_csv(
        &format!("{HEADER}\nadmin,A,Dmin,admin@example.com,,\nu1,U,One,u1@example.com,,\n"),
        Mode::Full,
    );
    let report = harness.load_users(&rows, settings.clone().forced()).await;
    assert_eq!(
        outcomes(&report.rows),
        pairs(&[("admin", Outcome::Skipped), ("u1", Outcome::Unchanged)])
    );
    let users = harness.live_users().await;
    assert_eq!(users.keys().collect::<Vec<_>>(), ["boss", "u1"]);

    // An incremental removal of a protected user is skipped too.
    let rows = users_csv(
        &format!("{HEADER},is_active\nboss,,,,,,false\n"),
        Mode::Incremental,
    );
    settings.mode = Mode::Incremental;
    let report = harness.load_users(&rows, settings).await;
    assert_eq!(outcomes(&report.rows), pairs(&[("boss", Outcome::Skipped)]));
    assert!(harness.live_users().await.contains_key("boss"));
}

#[tokio::test]
async fn an_incremental_load_upserts_active_rows_removes_inactive_ones_and_ignores_the_rest() {
    let harness = Harness::new().await;
    let rows = users_csv(
        &format!(
            "{HEADER}\nu2,A,Two,u2@example.com,,\nu3,B,Three,u3@example.com,,\nu4,C,Four,u4@example.com,,\n"
        ),
        Mode::Full,
    );
    harness
        .load_users(&rows, LoadSettings::new(Mode::Full))
        .await;
    let rows = users_csv(
        &format!(
            "{HEADER},is_active\n\
             u1,D,One,u1@example.com,,,yes\n\
             u3,B,Thrice,u3@example.com,,,true\n\
             u4,,,,,,false\n\
             u9,,,,,,0\n"
        ),
        Mode::Incremental,
    );
    let report = harness
        .load_users(&rows, LoadSettings::new(Mode::Incremental))
        .await;
    assert_eq!(
        outcomes(&report.rows),
        pairs(&[
            ("u1", Outcome::Created),
            ("u3", Outcome::Updated),
            ("u4", Outcome::Removed),
            ("u9", Outcome::Unchanged),
        ])
    );
    let users = harness.live_users().await;
    assert_eq!(
        users.keys().collect::<Vec<_>>(),
        ["u1", "u2", "u3"],
        "u2 is untouched"
    );
}

#[tokio::test]
async fn groups_a_user_load_names_are_created_first_and_left_to_group_loads_that_list_them() {
    let harness = Harness::new().await;
    let rows = users_csv(
        &format!("{HEADER}\nu1,A,One,u1@example.com,,sales|ops\n"),
        Mode::Full,
    );
    let report = harness
        .load_users(&rows, LoadSettings::new(Mode::Full))
        .await;
    assert_eq!(
        report.counts.created, 3,
        "two groups, then the user: {report:?}"
    );
    let groups = harness.live_groups().await;
    assert_eq!(groups.keys().collect::<Vec<_>>(), ["ops", "sales"]);
    assert_eq!(groups["ops"].name, "ops", "named after their id");
    assert_eq!(harness.live_users().await["u1"].groups, ["ops", "sales"]);

    // A group full load that does not list them leaves them: the user load made them.
    let rows = groups_csv(
        "user_group_id,user_group_name,parent_user_groups\nhr,HR,\n",
        Mode::Full,
    );
    let report = harness
        .load_groups(&rows, LoadSettings::new(Mode::Full))
        .await;
    assert_eq!(outcomes(&report.rows), pairs(&[("hr", Outcome::Created)]));
    assert_eq!(harness.live_groups().await.len(), 3);
}

#[tokio::test]
async fn a_group_full_load_writes_parents_before_children_at_any_depth_and_removes_the_rest() {
    let harness = Harness::new().await;
    // Children first in the input; a grandchild must still come after its grandparent.
    let rows = groups_csv(
        "user_group_id,user_group_name,parent_user_groups\n\
         leaf,Leaf,mid\n\
         mid,,root\n\
         root,Root,\n\
         spare,Spare,\n",
        Mode::Full,
    );
    let report = harness
        .load_groups(&rows, LoadSettings::new(Mode::Full))
        .await;
    assert_eq!(report.status, ProcessStatus::Completed, "{report:?}");
    assert_eq!(report.counts.created, 4);
    let groups = harness.live_groups().await;
    assert_eq!(groups["leaf"].parents, ["mid"]);
    assert_eq!(groups["mid"].parents, ["root"]);
    assert_eq!(
        groups["mid"].name, "mid",
        "an empty name falls back to the id"
    );

    // A user in `spare` keeps it from being removed; `root` is renamed; `leaf` moves up.
    let users = users_csv(
        &format!("{HEADER}\nu1,A,One,u1@example.com,,spare\n"),
        Mode::Full,
    );
    harness
        .load_users(&users, LoadSettings::new(Mode::Full))
        .await;
    let rows = groups_csv(
        "user_group_id,user_group_name,parent_user_groups\n\
         root,Root group,\n\
         mid,mid,root\n\
         leaf,Leaf,root\n",
        Mode::Full,
    );
    let report = harness
        .load_groups(&rows, LoadSettings::new(Mode::Full).forced())
        .await;
    assert_eq!(
        outcomes(&report.rows),
        pairs(&[
            ("leaf", Outcome::Updated),
            ("mid", Outcome::Unchanged),
            ("root", Outcome::Updated),
            ("spare", Outcome::Failed),
        ])
    );
    let spare = report.rows.iter().find(|row| row.id == "spare").unwrap();
    assert!(
        spare.reason.as_deref().unwrap().contains("still used by"),
        "{spare:?}"
    );
    let groups = harness.live_groups().await;
    assert_eq!(groups["root"].name, "Root group");
    assert_eq!(groups["leaf"].parents, ["root"]);
    assert!(groups.contains_key("spare"));
}

#[tokio::test]
async fn a_cycle_is_refused_before_anything_is_written() {
    let harness = Harness::new().await;
    let rows = groups_csv(
        "user_group_id,user_group_name,parent_user_groups\na,A,c\nb,B,a\nc,C,b\nd,D,\n",
        Mode::Full,
    );
    let report = harness
        .load_groups(&rows, LoadSettings::new(Mode::Full))
        .await;
    assert_eq!(report.status, ProcessStatus::Failed);
    let reason = report.failed_reason.unwrap();
    assert!(
        reason.contains("cycle") && reason.contains("a -> "),
        "{reason}"
    );
    assert!(harness.live_groups().await.is_empty());
}

#[tokio::test]
async fn a_chain_deeper_than_the_limit_is_refused_and_a_deep_one_is_ordered() {
    let harness = Harness::new().await;
    let chain = |length: usize| {
        let mut csv = "user_group_id,user_group_name,parent_user_groups\ng0,G0,\n".to_owned();
        for n in 1..length {
            csv.push_str(&format!("g{n},G{n},g{}\n", n - 1));
        }
        groups_csv(&csv, Mode::Full)
    };
    // 5,000 deep (once a stack overflow that took the server down, again at every restart).
    let mut settings = LoadSettings::new(Mode::Full);
    settings.dry_run = true;
    let report = harness.load_groups(&chain(5_000), settings).await;
    assert_eq!(report.status, ProcessStatus::Failed);
    let reason = report.failed_reason.unwrap();
    assert!(reason.contains("deeper than 100"), "{reason}");

    // As deep as allowed: planned parents first.
    let mut settings = LoadSettings::new(Mode::Full);
    settings.dry_run = true;
    let report = harness
        .load_groups(&chain(cadre_provisioning::MAX_GROUP_DEPTH + 1), settings)
        .await;
    assert_eq!(
        report.status,
        ProcessStatus::Completed,
        "{:?}",
        report.failed_reason
    );
    assert_eq!(report.counts.created, 101);
}

#[tokio::test]
async fn a_full_load_removing_too_much_is_refused_unless_forced() {
    let harness = Harness::new().await;
    let rows = users_csv(
        &format!(
            "{HEADER}\nu1,A,One,u1@example.com,,\nu2,B,Two,u2@example.com,,\n\
             u3,C,Three,u3@example.com,,\nu4,D,Four,u4@example.com,,\nu5,E,Five,u5@example.com,,\n"
        ),
        Mode::Full,
    );
    harness
        .load_users(&rows, LoadSettings::new(Mode::Full))
        .await;
    // Removing 1 of 5 (20%) is allowed; 2 of 4 (50%) is not.
    let four = users_csv(
        &format!(
            "{HEADER}\nu1,A,One,u1@example.com,,\nu2,B,Two,u2@example.com,,\n\
             u3,C,Three,u3@example.com,,\nu4,D,Four,u4@example.com,,\n"
        ),
        Mode::Full,
    );
    let report = harness
        .load_users(&four, LoadSettings::new(Mode::Full))
        .await;
    assert_eq!(report.counts.removed, 1);
    let two = users_csv(
        &format!("{HEADER}\nu1,A,One,u1@example.com,,\nu2,B,Two,u2@example.com,,\n"),
        Mode::Full,
    );
    let report = harness
        .load_users(&two, LoadSettings::new(Mode::Full))
        .await;
    assert_eq!(report.status, ProcessStatus::Failed);
    let reason = report.failed_reason.unwrap();
    assert!(
        reason.contains("remove 2 of the 4") && reason.contains("20%"),
        "{reason}"
    );
    assert_eq!(harness.live_users().await.len(), 4, "nothing was removed");

    let report = harness
        .load_users(&two, LoadSettings::new(Mode::Full).forced())
        .await;
    assert_eq!(report.counts.removed, 2);
    assert_eq!(harness.live_users().await.len(), 2);
}

#[tokio::test]
async fn a_dry_run_reports_the_plan_and_writes_nothing() {
    let harness = Harness::new().await;
    let rows = users_csv(
        &format!("{HEADER}\nu1,A,One,u1@example.com,,g1\n"),
        Mode::Full,
    );
    let mut settings = LoadSettings::new(Mode::Full);
    settings.dry_run = true;
    let report = harness.load_users(&rows, settings).await;
    assert_eq!(report.status, ProcessStatus::Completed);
    assert!(report.dry_run);
    assert_eq!(
        outcomes(&report.rows),
        pairs(&[("g1", Outcome::Created), ("u1", Outcome::Created)])
    );
    assert!(harness.live_users().await.is_empty());
    assert!(harness.live_groups().await.is_empty());

    // Its plan applied: the same stored input, planned again and written.
    let applied = harness
        .provisioner
        .rerun(
            report.process_id,
            false,
            false,
            Default::default(),
            "tester",
        )
        .await
        .unwrap();
    harness.engine.run_until_idle().await.unwrap();
    let applied = harness.provisioner.report(applied.id).await.unwrap();
    assert_eq!(applied.status, ProcessStatus::Completed, "{applied:?}");
    assert!(!applied.dry_run);
    assert_eq!(outcomes(&applied.rows), outcomes(&report.rows));
    assert_eq!(harness.live_users().await.len(), 1);
    let again = harness
        .provisioner
        .rerun(
            applied.process_id,
            false,
            false,
            Default::default(),
            "tester",
        )
        .await;
    assert!(
        matches!(
            again,
            Err(cadre_provisioning::ProvisionError::Domain(
                cadre_domain::DomainError::Conflict(_)
            ))
        ),
        "only a dry run's input is loaded again: {again:?}"
    );
}

#[tokio::test]
async fn rows_whose_email_another_user_holds_fail_alone() {
    let harness = Harness::new().await;
    let rows = users_csv(
        &format!("{HEADER}\nu1,A,One,shared@example.com,,\n"),
        Mode::Full,
    );
    harness
        .load_users(&rows, LoadSettings::new(Mode::Full))
        .await;
    let rows = users_csv(
        &format!(
            "{HEADER},is_active\nu2,B,Two,shared@example.com,,,true\nu3,C,Three,u3@example.com,,,true\n"
        ),
        Mode::Incremental,
    );
    let report = harness
        .load_users(&rows, LoadSettings::new(Mode::Incremental))
        .await;
    assert_eq!(
        outcomes(&report.rows),
        pairs(&[("u2", Outcome::Failed), ("u3", Outcome::Created)])
    );
}

#[tokio::test]
async fn a_load_is_a_task_process_with_one_logged_step_per_batch() {
    let harness = Harness::new().await;
    let body: String = (1..=5)
        .map(|n| format!("u{n},F{n},L{n},u{n}@example.com,,g1\n"))
        .collect();
    let rows = users_csv(&format!("{HEADER}\n{body}"), Mode::Full);
    let mut settings = LoadSettings::new(Mode::Full);
    settings.batch_size = 2;
    let report = harness.load_users(&rows, settings).await;
    assert_eq!((report.batches, report.applied), (3, 3));
    let steps = harness
        .store
        .process_steps(report.process_id)
        .await
        .unwrap();
    let names: Vec<&str> = steps.iter().map(|step| step.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Start",
            "Validate input",
            "Plan changes",
            "Apply batch 1 of 3",
            "Apply batch 2 of 3",
            "Apply batch 3 of 3",
            "Report",
            "Push to targets",
            "Done"
        ]
    );
    let process = harness.store.process(report.process_id).await.unwrap();
    assert!(process.is_task);
    assert_eq!(process.state["report"]["created"], 6);
}

#[tokio::test]
async fn a_provisioned_user_is_stored_like_one_the_create_workflow_makes() {
    let harness = Harness::new().await;
    let by_workflow = harness.user_by_workflow("w1", "g1").await;
    let rows = users_csv(
        &format!("{HEADER}\np1,Ann,Lee,p1@example.com,sso,g1\n"),
        Mode::Full,
    );
    harness
        .load_users(&rows, LoadSettings::new(Mode::Full))
        .await;
    let provisioned = harness.live_users().await["p1"].subscription_id;
    let a = harness.store.load_subscription(by_workflow).await.unwrap();
    let b = harness.store.load_subscription(provisioned).await.unwrap();
    assert_eq!(a.subscription.lifecycle, b.subscription.lifecycle);
    assert_eq!(a.subscription.insync, b.subscription.insync);
    assert_eq!(a.product, b.product);
    assert_eq!(
        a.subscription.description.replace("w1", "p1"),
        b.subscription.description
    );
    let shape = |record: &cadre_domain::SubscriptionRecord| {
        record
            .blocks
            .iter()
            .map(|block| {
                let fields: Vec<&String> = block.values.keys().collect();
                (
                    block.block.clone(),
                    format!("{fields:?}"),
                    block.relations.len(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(shape(&a), shape(&b));
}

#[tokio::test]
async fn an_incremental_group_load_upserts_removes_and_fails_rows_it_cannot_write() {
    let harness = Harness::new().await;
    let rows = groups_csv(
        "user_group_id,user_group_name,parent_user_groups\nkeep,Keep,\ngone,Gone,\ntaken,Taken,\n",
        Mode::Full,
    );
    harness
        .load_groups(&rows, LoadSettings::new(Mode::Full))
        .await;
    let rows = groups_csv(
        "user_group_id,user_group_name,parent_user_groups,is_active\n\
         gone,,,false\n\
         orphan,Orphan,nowhere,true\n\
         child,Child,orphan,true\n\
         clash,Taken,,true\n\
         fresh,Fresh,keep,true\n\
         never,,,false\n",
        Mode::Incremental,
    );
    let report = harness
        .load_groups(&rows, LoadSettings::new(Mode::Incremental))
        .await;
    assert_eq!(report.status, ProcessStatus::Completed, "{report:?}");
    assert_eq!(
        outcomes(&report.rows),
        pairs(&[
            ("child", Outcome::Failed),
            ("clash", Outcome::Failed),
            ("fresh", Outcome::Created),
            ("gone", Outcome::Removed),
            ("never", Outcome::Unchanged),
            ("orphan", Outcome::Failed),
        ])
    );
    let reason = |id: &str| {
        report
            .rows
            .iter()
            .find(|row| row.id == id)
            .and_then(|row| row.reason.clone())
            .unwrap()
    };
    assert!(
        reason("orphan").contains("does not exist"),
        "{}",
        reason("orphan")
    );
    assert!(
        reason("child").contains("could not be written"),
        "{}",
        reason("child")
    );
    assert!(
        reason("clash").contains("another group has this name"),
        "{}",
        reason("clash")
    );
    let groups = harness.live_groups().await;
    assert_eq!(
        groups.keys().collect::<Vec<_>>(),
        ["fresh", "keep", "taken"],
        "absent groups are untouched"
    );
    assert_eq!(groups["fresh"].parents, ["keep"]);
}

#[tokio::test]
async fn a_managed_user_changed_since_the_last_load_is_compared_as_stored_and_put_back() {
    let harness = Harness::new().await;
    let rows = users_csv(
        &format!(
            "{HEADER}\n\
             u1,Ann,One,u1@example.com,,g1\n\
             u2,Bob,Two,u2@example.com,sso-2,g1|g2\n\
             u3,Cy,Three,u3@example.com,,\n"
        ),
        Mode::Full,
    );
    harness
        .load_users(&rows, LoadSettings::new(Mode::Full))
        .await;

    // Someone edits u1's name outside loads, and u2's note only: both marks are now stale,
    // so both users are read back and compared as stored.
    let users = harness.live_users().await;
    let mut record = harness
        .store
        .load_subscription(users["u1"].subscription_id)
        .await
        .unwrap();
    record.blocks[0]
        .values
        .insert("firstname".to_owned(), vec!["Eve".to_owned()]);
    harness.store.save_subscription(&record).await.unwrap();
    let mut record = harness
        .store
        .load_subscription(users["u2"].subscription_id)
        .await
        .unwrap();
    record.subscription.note = Some("called on Monday".to_owned());
    harness.store.save_subscription(&record).await.unwrap();

    let report = harness
        .load_users(&rows, LoadSettings::new(Mode::Full))
        .await;
    assert_eq!(
        outcomes(&report.rows),
        pairs(&[
            ("u1", Outcome::Updated),
            ("u2", Outcome::Unchanged),
            ("u3", Outcome::Unchanged),
        ])
    );
    assert_eq!(
        harness.live_users().await["u1"].firstname.as_deref(),
        Some("Ann")
    );
    let before = harness.versions().await;
    let report = harness
        .load_users(&rows, LoadSettings::new(Mode::Full))
        .await;
    assert_eq!(report.counts.unchanged, 3, "{report:?}");
    assert_eq!(harness.versions().await, before);
}

#[tokio::test]
async fn subscriptions_a_process_holds_are_skipped_listed_or_not() {
    let harness = Harness::new().await;
    let rows = users_csv(
        &format!(
            "{HEADER}\n\
             u1,Ann,One,u1@example.com,,\n\
             u2,Bob,Two,u2@example.com,,\n\
             u3,Cy,Three,u3@example.com,,\n"
        ),
        Mode::Full,
    );
    harness
        .load_users(&rows, LoadSettings::new(Mode::Full))
        .await;
    let users = harness.live_users().await;
    for id in ["u1", "u2"] {
        let mut record = harness
            .store
            .load_subscription(users[id].subscription_id)
            .await
            .unwrap();
        record.subscription.insync = false;
        harness.store.save_subscription(&record).await.unwrap();
    }

    // u1 changes and u2 is no longer listed, but a process holds both; u3 changes freely.
    let rows = users_csv(
        &format!("{HEADER}\nu1,Ann,Uno,u1@example.com,,\nu3,Cy,Tres,u3@example.com,,\n"),
        Mode::Full,
    );
    let report = harness
        .load_users(&rows, LoadSettings::new(Mode::Full).forced())
        .await;
    assert_eq!(
        outcomes(&report.rows),
        pairs(&[
            ("u1", Outcome::Skipped),
            ("u2", Outcome::Skipped),
            ("u3", Outcome::Updated),
        ])
    );
    let held = "another process is working on the subscription";
    for row in report.rows.iter().filter(|row| row.id != "u3") {
        assert_eq!(row.reason.as_deref(), Some(held), "{row:?}");
    }
    let users = harness.live_users().await;
    assert_eq!(users["u1"].lastname.as_deref(), Some("One"));
    assert!(users.contains_key("u2"));
}

#[tokio::test]
async fn the_validate_step_refuses_stored_input_of_another_kind_or_missing_rows() {
    use cadre_domain::{ChunkPart, Clock, LoadChunk, ProvisioningRepository, SystemClock};
    use serde_json::json;

    let harness = Harness::new().await;
    let settings = serde_json::to_value(LoadSettings::new(Mode::Full)).unwrap();
    let row = json!({"row": 2, "user_id": "u1", "email": "u1@example.com", "active": true});
    let cases = [
        ("provision_user_groups", 1, "holds users, not user groups"),
        ("provision_users", 2, "should hold 2 rows, and holds 1"),
    ];
    for (workflow, rows, expected) in cases {
        let load_id = uuid::Uuid::now_v7();
        let chunks = [
            LoadChunk {
                seq: 0,
                content: json!({"kind": "users", "settings": settings, "rows": rows}),
                report: None,
            },
            LoadChunk {
                seq: 1,
                content: json!([row]),
                report: None,
            },
        ];
        harness
            .store
            .add_load_chunks(load_id, ChunkPart::Input, &chunks, SystemClock.now())
            .await
            .unwrap();
        let process = harness
            .engine
            .start(workflow, &[json!({ "load_id": load_id })], "tester")
            .await
            .unwrap();
        harness.engine.run_until_idle().await.unwrap();
        let process = harness.store.process(process.id).await.unwrap();
        assert_eq!(
            process.status,
            ProcessStatus::InconsistentData,
            "{workflow}"
        );
        let reason = process.failed_reason.unwrap_or_default();
        assert!(reason.contains(expected), "{reason}");
    }
}

#[tokio::test]
async fn a_load_records_what_it_wrote_for_the_next_load_to_compare() {
    use cadre_domain::{ProductType, ProvisioningRepository};

    let harness = Harness::new().await;
    let rows = users_csv(
        &format!("{HEADER}\nu1,Ann,One,u1@example.com,,g1\nu2,Bob,Two,u2@example.com,,\n"),
        Mode::Full,
    );
    harness
        .load_users(&rows, LoadSettings::new(Mode::Full))
        .await;
    let users = harness.live_users().await;
    let mut written: Vec<(uuid::Uuid, String)> = harness
        .store
        .provisioned_subscriptions(&ProductType::user())
        .await
        .unwrap()
        .into_iter()
        .map(|mark| {
            let written = mark.written.expect("the mark is current after the load");
            (mark.subscription_id, written.external_id)
        })
        .collect();
    written.sort();
    let mut expected: Vec<(uuid::Uuid, String)> = users
        .iter()
        .map(|(id, user)| (user.subscription_id, id.clone()))
        .collect();
    expected.sort();
    assert_eq!(written, expected);
}

#[tokio::test]
async fn a_user_holding_the_admin_role_is_protected_from_loads() {
    let harness = Harness::new().await;
    let rows = users_csv(
        &format!("{HEADER}\nchief,C,Hief,chief@example.com,,\nu1,U,One,u1@example.com,,\n"),
        Mode::Full,
    );
    harness
        .load_users(&rows, LoadSettings::new(Mode::Full))
        .await;
    let chief = harness.live_users().await["chief"].subscription_id;
    assert!(
        !harness
            .provisioner
            .protected_users(None)
            .await
            .unwrap()
            .contains("chief")
    );
    harness
        .engine
        .store()
        .set_roles(chief, &[cadre_domain::Role::Admin])
        .await
        .unwrap();
    let protected = harness.provisioner.protected_users(None).await.unwrap();
    assert!(protected.contains("chief"), "{protected:?}");
    // A full load without them leaves them.
    let mut settings = LoadSettings::new(Mode::Full);
    settings.protected = protected;
    let rows = users_csv(
        &format!("{HEADER}\nu1,U,One,u1@example.com,,\n"),
        Mode::Full,
    );
    harness.load_users(&rows, settings.forced()).await;
    assert!(harness.live_users().await.contains_key("chief"));
}

#[tokio::test]
async fn a_create_only_load_creates_named_users_fails_taken_ids_and_names_and_leaves_them_unmanaged()
 {
    let harness = Harness::new().await;
    let existing = users_csv(
        &format!("{HEADER}\nu1,A,One,u1@example.com,,\n"),
        Mode::Full,
    );
    harness
        .load_users(&existing, LoadSettings::new(Mode::Full))
        .await;
    let mut rows = users_csv(
        &format!(
            "{HEADER},is_active\n\
             u1,A,Again,again@example.com,,,true\n\
             u2,B,Two,u2@example.com,,,true\n\
             u3,C,Three,u3@example.com,,,true\n"
        ),
        Mode::Incremental,
    );
    rows[1].username = Some(cadre_domain::Name::parse("Bea Two").unwrap());
    // u1 is the user name of the existing user: refused like a taken email.
    rows[2].username = Some(cadre_domain::Name::parse("u1").unwrap());
    let mut settings = LoadSettings::new(Mode::Incremental);
    settings.create_only = true;
    let report = harness.load_users(&rows, settings).await;
    assert_eq!(
        outcomes(&report.rows),
        pairs(&[
            ("u1", Outcome::Failed),
            ("u2", Outcome::Created),
            ("u3", Outcome::Failed)
        ])
    );
    let reasons: Vec<Option<&str>> = report
        .rows
        .iter()
        .map(|row| row.reason.as_deref())
        .collect();
    assert!(
        reasons.contains(&Some("a user with this id exists")),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&Some("another user has this user name")),
        "{reasons:?}"
    );
    let users = harness.live_users().await;
    assert_eq!(
        users["u1"].lastname.as_deref(),
        Some("One"),
        "u1 is left as it was"
    );
    let named = harness
        .store
        .find_by_unique_values("username", &["Bea Two".to_owned()])
        .await
        .unwrap();
    assert_eq!(
        named,
        vec![("Bea Two".to_owned(), users["u2"].subscription_id)]
    );

    // Not the loads' to manage: a full load without u2 removes u1 only.
    let report = harness
        .load_users(
            &users_csv(HEADER, Mode::Full),
            LoadSettings::new(Mode::Full).forced(),
        )
        .await;
    assert_eq!(outcomes(&report.rows), pairs(&[("u1", Outcome::Removed)]));
    assert!(harness.live_users().await.contains_key("u2"));
}
