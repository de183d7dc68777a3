//! Properties of full loads, whatever the starting state: afterwards the users loads manage
//! are exactly the input, and the same load again writes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use cadre_domain::{Email, ExternalId, Name};
use cadre_provisioning::{LoadSettings, Mode, Outcome, UserRow};
use proptest::prelude::*;

use support::{Forced, Harness, StoredUser};

/// A generated row: user number, first name number, email variant, group numbers, whether
/// it has an auth id.
type Spec = (u8, Option<u8>, u8, Vec<u8>, bool);

/// What a full load must leave for each user: first name, email, auth id, groups.
type Users = BTreeMap<String, (Option<String>, String, Option<String>, Vec<String>)>;

/// A user row over a small universe of ids and groups, so that loads overlap.
fn user_row() -> impl Strategy<Value = Spec> {
    (
        0u8..8,
        proptest::option::of(0u8..3),
        0u8..3,
        proptest::collection::vec(0u8..4, 0..3),
        any::<bool>(),
    )
}

fn rows(specs: &[Spec]) -> Vec<UserRow> {
    let mut seen = std::collections::BTreeSet::new();
    specs
        .iter()
        .filter(|(id, ..)| seen.insert(*id))
        .zip(2..)
        .map(|((id, first, mail, groups, sso), row)| {
            let user_id = format!("u{id}");
            let mut user_groups: Vec<ExternalId> = groups
                .iter()
                .map(|group| ExternalId::parse(&format!("g{group}")).unwrap())
                .collect();
            user_groups.sort();
            user_groups.dedup();
            UserRow {
                row,
                firstname: first.map(|n| Name::parse(&format!("First{n}")).unwrap()),
                lastname: None,
                email: Some(Email::parse(&format!("{user_id}.{mail}@example.com")).unwrap()),
                auth_id: sso.then(|| format!("sso-{user_id}")),
                user_groups,
                user_id: ExternalId::parse(&user_id).unwrap(),
                active: true,
                username: None,
                employment: None,
                disabled: false,
            }
        })
        .collect()
}

fn expected(rows: &[UserRow]) -> Users {
    rows.iter()
        .map(|row| {
            (
                row.user_id.as_str().to_owned(),
                (
                    row.firstname.as_ref().map(|n| n.as_str().to_owned()),
                    row.email.as_ref().unwrap().as_str().to_owned(),
                    row.auth_id.clone(),
                    row.user_groups
                        .iter()
                        .map(|g| g.as_str().to_owned())
                        .collect(),
                ),
            )
        })
        .collect()
}

fn actual(users: &BTreeMap<String, StoredUser>) -> Users {
    users
        .iter()
        .filter(|(id, _)| id.starts_with('u'))
        .map(|(id, user)| {
            (
                id.clone(),
                (
                    user.firstname.clone(),
                    user.email.clone().unwrap(),
                    user.auth_id.clone(),
                    user.groups.clone(),
                ),
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn after_a_full_load_the_managed_users_are_the_input_and_a_reload_writes_nothing(
        before in proptest::collection::vec(user_row(), 0..8),
        after in proptest::collection::vec(user_row(), 0..8),
        hand_made in any::<bool>(),
    ) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let harness = Harness::new().await;
            if hand_made {
                // A user the workflow made: not managed by loads, so never removed by one.
                harness.user_by_workflow("w1", "g0").await;
            }
            let settings = LoadSettings::new(Mode::Full).forced();
            harness.load_users(&rows(&before), settings.clone()).await;

            let target = rows(&after);
            let report = harness.load_users(&target, settings.clone()).await;
            assert!(report.failed_reason.is_none(), "{report:?}");
            let users = harness.live_users().await;
            assert_eq!(actual(&users), expected(&target));
            assert_eq!(users.contains_key("w1"), hand_made);

            let versions = harness.versions().await;
            let again = harness.load_users(&target, settings).await;
            assert!(again.rows.iter().all(|row| row.outcome == Outcome::Unchanged), "{again:?}");
            assert_eq!(harness.versions().await, versions, "the reload wrote something");
        });
    }
}
