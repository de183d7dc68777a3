//! Group operations: flowserv's behaviours (numbered as in the reference's A.8 list) and
//! cadre's hardening.

use std::collections::BTreeSet;

use cadre_domain::DomainError;
use cadre_domain::groups::MAX_GROUP_NAME_CHARS;
use cadre_groups::{Actor, GroupChanges, GroupError, NewGroup};
use uuid::Uuid;

use crate::fixtures::{WORKFLOW, World, content};

fn new_group(name: &str) -> NewGroup {
    NewGroup {
        workflow: WORKFLOW.to_owned(),
        name: name.to_owned(),
        ..NewGroup::default()
    }
}

fn invalid_field(result: Result<impl std::fmt::Debug, GroupError>) -> String {
    match result {
        Err(GroupError::Domain(DomainError::InvalidArgument { field, .. })) => field,
        other => panic!("expected an invalid argument, got {other:?}"),
    }
}

fn not_found_kind(result: Result<impl std::fmt::Debug, GroupError>) -> &'static str {
    match result {
        Err(GroupError::Domain(DomainError::NotFound { kind, .. })) => kind,
        other => panic!("expected not found, got {other:?}"),
    }
}

fn is_conflict(result: &Result<impl std::fmt::Debug, GroupError>) -> bool {
    matches!(result, Err(GroupError::Domain(DomainError::Conflict(_))))
}

fn is_forbidden(result: &Result<impl std::fmt::Debug, GroupError>) -> bool {
    matches!(result, Err(GroupError::Domain(DomainError::Forbidden(_))))
}

fn set(ids: &[Uuid]) -> BTreeSet<Uuid> {
    ids.iter().copied().collect()
}

/// 1: a malformed identifier is refused before anything else is looked at.
#[tokio::test]
async fn a_malformed_identifier_is_refused_first() {
    let world = World::new().await;
    let result = world
        .groups
        .create(
            &Actor::operator(),
            NewGroup {
                workflow: "no_such_workflow".to_owned(),
                name: " ".to_owned(),
                identifier: Some("not-valid!".to_owned()),
                ..NewGroup::default()
            },
        )
        .await;
    assert_eq!(invalid_field(result), "identifier");
}

/// 2: missing, blank and over-long names are refused.
#[tokio::test]
async fn blank_and_long_names_are_refused() {
    let world = World::new().await;
    let alice = world.user("alice").await;
    for name in ["", "   ", &"n".repeat(MAX_GROUP_NAME_CHARS + 1)] {
        let result = world
            .groups
            .create(&Actor::user(alice), new_group(name))
            .await;
        assert_eq!(invalid_field(result), "name", "{name:?}");
    }
}

/// 3 and hardening: a name is unique per workflow after normalisation; another workflow may
/// reuse it; the database refuses duplicates (also on rename).
#[tokio::test]
async fn names_are_unique_per_workflow_after_normalisation() {
    let world = World::new().await;
    let alice = world.user("alice").await;
    let actor = Actor::user(alice);
    let first = world
        .groups
        .create(&actor, new_group("Team A"))
        .await
        .unwrap();
    assert_eq!(first.name.as_str(), "Team A");

    for same in ["Team A", " team  a ", "TEAM A"] {
        let result = world.groups.create(&actor, new_group(same)).await;
        assert!(is_conflict(&result), "{same:?}: {result:?}");
    }
    let elsewhere = world
        .groups
        .create(
            &actor,
            NewGroup {
                workflow: "create_user_group".to_owned(),
                ..new_group("team a")
            },
        )
        .await
        .unwrap();
    assert_eq!(elsewhere.workflow, "create_user_group");

    let second = world
        .groups
        .create(&actor, new_group("Team B"))
        .await
        .unwrap();
    let rename = world
        .groups
        .update(
            &actor,
            second.id.as_str(),
            GroupChanges {
                name: Some("team A".to_owned()),
                ..GroupChanges::default()
            },
        )
        .await;
    assert!(is_conflict(&rename), "{rename:?}");
    let unchanged = world.groups.get(&actor, second.id.as_str()).await.unwrap();
    assert_eq!(unchanged.name.as_str(), "Team B");
}

/// 4: a group needs an owner: a caller who acts for no user must name one.
#[tokio::test]
async fn a_group_needs_an_owner() {
    let world = World::new().await;
    let result = world
        .groups
        .create(&Actor::operator(), new_group("G"))
        .await;
    assert_eq!(invalid_field(result), "owner");
    let nobody = Actor {
        user: None,
        admin: false,
    };
    let result = world.groups.create(&nobody, new_group("G")).await;
    assert_eq!(invalid_field(result), "owner");
}

/// 5 and 7: the owner is always a member, duplicate members collapse, the generated id is 32
/// lowercase hex digits, and the stored group reads back equal.
#[tokio::test]
async fn the_owner_is_a_member_and_duplicates_collapse() {
    let world = World::new().await;
    let alice = world.user("alice").await;
    let bob = world.user("bob").await;
    let group = world
        .groups
        .create(
            &Actor::user(alice),
            NewGroup {
                members: vec![bob, bob, bob],
                engine_config: Some(serde_json::json!({"workers": 2})),
                ..new_group("G1")
            },
        )
        .await
        .unwrap();
    assert_eq!(group.owner, alice);
    assert_eq!(group.members, set(&[alice, bob]));
    assert_eq!(group.id.as_str().len(), 32);
    assert!(
        group
            .id
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(group.engine_config, Some(serde_json::json!({"workers": 2})));
    assert_eq!(group.workflow_spec["name"], WORKFLOW);
    assert!(
        group.parameters["properties"].get("product").is_some(),
        "the parameters default to the workflow's first form page: {}",
        group.parameters
    );
    let read = world
        .groups
        .get(&Actor::user(bob), group.id.as_str())
        .await
        .unwrap();
    assert_eq!(read, group);
}

/// 6: every member and the owner must be an existing, active user.
#[tokio::test]
async fn members_must_be_existing_active_users() {
    let world = World::new().await;
    let alice = world.user("alice").await;
    let carol = world.disabled_user("carol").await;
    let unknown = Uuid::now_v7();
    for member in [carol, unknown, world.user_group_id()] {
        let result = world
            .groups
            .create(
                &Actor::user(alice),
                NewGroup {
                    members: vec![member],
                    ..new_group("G")
                },
            )
            .await;
        let Err(GroupError::Domain(DomainError::InvalidArgument { field, reason })) = result else {
            panic!("{member} was accepted: {result:?}");
        };
        assert_eq!(field, "members");
        assert!(reason.contains(&member.to_string()), "{reason}");
    }
    let result = world
        .groups
        .create(&Actor::user(carol), new_group("G"))
        .await;
    assert_eq!(invalid_field(result), "members", "an inactive owner");
}

/// Parameters and engine settings are JSON objects without NUL characters (which PostgreSQL
/// cannot store), refused before anything is written.
#[tokio::test]
async fn parameters_and_engine_settings_must_be_storable_objects() {
    let world = World::new().await;
    let alice = world.user("alice").await;
    let actor = Actor::user(alice);
    let cases = [
        ("parameters", Some(serde_json::json!([1])), None),
        ("parameters", Some(serde_json::json!({"a": ["x\0"]})), None),
        ("engine_config", None, Some(serde_json::json!("fast"))),
        ("engine_config", None, Some(serde_json::json!({"k\0": 1}))),
    ];
    for (field, parameters, engine_config) in cases {
        let result = world
            .groups
            .create(
                &actor,
                NewGroup {
                    parameters: parameters.clone(),
                    engine_config: engine_config.clone(),
                    ..new_group("G")
                },
            )
            .await;
        assert_eq!(
            invalid_field(result),
            field,
            "{parameters:?} {engine_config:?}"
        );
    }
    assert!(
        world
            .groups
            .list(&actor, None, None)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Explicit identifiers are kept; a taken one is a conflict, not a raw database error.
#[tokio::test]
async fn explicit_identifiers_are_kept_and_unique() {
    let world = World::new().await;
    let alice = world.user("alice").await;
    let actor = Actor::user(alice);
    let group = world
        .groups
        .create(
            &actor,
            NewGroup {
                identifier: Some("team_1".to_owned()),
                ..new_group("One")
            },
        )
        .await
        .unwrap();
    assert_eq!(group.id.as_str(), "team_1");
    let again = world
        .groups
        .create(
            &actor,
            NewGroup {
                identifier: Some("team_1".to_owned()),
                ..new_group("Two")
            },
        )
        .await;
    assert!(is_conflict(&again), "{again:?}");
}

/// 8: every operation on an unknown group says "unknown group".
#[tokio::test]
async fn unknown_groups_are_not_found() {
    let world = World::new().await;
    let admin = Actor::operator();
    let groups = &world.groups;
    for id in ["nope", "not a valid id"] {
        assert_eq!(
            not_found_kind(groups.get(&admin, id).await),
            "workflow group"
        );
        assert_eq!(
            not_found_kind(groups.delete(&admin, id).await),
            "workflow group"
        );
        assert_eq!(
            not_found_kind(groups.files(&admin, id).await),
            "workflow group"
        );
        assert_eq!(
            not_found_kind(groups.update(&admin, id, GroupChanges::default()).await),
            "workflow group"
        );
        // An unknown group is reported even when the file name is invalid too.
        assert_eq!(
            not_found_kind(groups.upload(&admin, id, " ", content(b"x", 1)).await),
            "workflow group"
        );
    }
}

/// 9 and 10: no changes return the group; a member list replaces the members exactly
/// (duplicates collapse), and groups do not leak into each other.
#[tokio::test]
async fn updates_rename_and_replace_members_exactly() {
    let world = World::new().await;
    let alice = world.user("alice").await;
    let bob = world.user("bob").await;
    let dave = world.user("dave").await;
    let actor = Actor::user(alice);
    let g1 = world.group(alice, "G1", &[bob]).await;
    let g2 = world.group(alice, "G2", &[]).await;

    let same = world
        .groups
        .update(&actor, &g1, GroupChanges::default())
        .await
        .unwrap();
    assert_eq!(same, world.groups.get(&actor, &g1).await.unwrap());

    let renamed = world
        .groups
        .update(
            &actor,
            &g1,
            GroupChanges {
                name: Some("Renamed".to_owned()),
                members: Some(vec![alice, dave, dave]),
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name.as_str(), "Renamed");
    assert_eq!(renamed.members, set(&[alice, dave]));
    let stored = world.groups.get(&actor, &g1).await.unwrap();
    assert_eq!(stored, renamed);
    assert_eq!(
        world.groups.get(&actor, &g2).await.unwrap().members,
        set(&[alice])
    );

    // Re-applying identical values changes nothing.
    let again = world
        .groups
        .update(
            &actor,
            &g1,
            GroupChanges {
                name: Some("Renamed".to_owned()),
                members: Some(vec![alice, dave]),
            },
        )
        .await
        .unwrap();
    assert_eq!(again, stored);
}

/// Hardening: the owner cannot be removed, nor the group emptied; new members must be active.
#[tokio::test]
async fn the_owner_cannot_be_removed() {
    let world = World::new().await;
    let alice = world.user("alice").await;
    let bob = world.user("bob").await;
    let carol = world.disabled_user("carol").await;
    let g = world.group(alice, "G", &[bob]).await;
    let actor = Actor::user(bob);
    for members in [vec![bob], vec![], vec![alice, carol]] {
        let result = world
            .groups
            .update(
                &actor,
                &g,
                GroupChanges {
                    members: Some(members.clone()),
                    ..GroupChanges::default()
                },
            )
            .await;
        assert_eq!(invalid_field(result), "members", "{members:?}");
    }
    assert_eq!(
        world.groups.get(&actor, &g).await.unwrap().members,
        set(&[alice, bob])
    );
}

/// 13: deleting a group removes it, its members and its files (rows and content); other groups
/// stay.
#[tokio::test]
async fn deleting_a_group_removes_its_files() {
    let world = World::new().await;
    let alice = world.user("alice").await;
    let actor = Actor::user(alice);
    let g1 = world.group(alice, "G1", &[]).await;
    let g2 = world.group(alice, "G2", &[]).await;
    world
        .groups
        .upload(&actor, &g1, "a.txt", content(b"a", 1))
        .await
        .unwrap();
    world
        .groups
        .upload(&actor, &g1, "b.txt", content(b"b", 1))
        .await
        .unwrap();
    let kept = world
        .groups
        .upload(&actor, &g2, "c.txt", content(b"c", 1))
        .await
        .unwrap();

    world.groups.delete(&actor, &g1).await.unwrap();
    assert_eq!(
        not_found_kind(world.groups.get(&actor, &g1).await),
        "workflow group"
    );
    assert_eq!(world.volume.keys(), vec![kept.key]);
    assert_eq!(world.groups.files(&actor, &g2).await.unwrap().len(), 1);
    let listed = world.groups.list(&actor, None, None).await.unwrap();
    assert_eq!(
        listed.iter().map(|g| g.id.to_string()).collect::<Vec<_>>(),
        vec![g2]
    );
}

/// 14: listing by workflow, by member, by both; unknown workflows and inactive users are
/// errors; a non-admin sees only their own groups.
#[tokio::test]
async fn groups_list_by_workflow_and_member() {
    let world = World::new().await;
    let alice = world.user("alice").await;
    let bob = world.user("bob").await;
    let carol = world.disabled_user("carol").await;
    let g1 = world.group(alice, "G1", &[bob]).await;
    let g2 = world.group(alice, "G2", &[]).await;
    let g3 = world
        .groups
        .create(
            &Actor::user(bob),
            NewGroup {
                workflow: "create_user_group".to_owned(),
                ..new_group("G3")
            },
        )
        .await
        .unwrap()
        .id
        .to_string();
    let admin = Actor::operator();
    let ids = |groups: Vec<cadre_domain::WorkflowGroup>| -> Vec<String> {
        groups
            .into_iter()
            .map(|group| group.id.to_string())
            .collect()
    };

    let all = world.groups.list(&admin, None, None).await.unwrap();
    assert_eq!(ids(all), vec![g1.clone(), g2.clone(), g3.clone()]);
    let by_workflow = world
        .groups
        .list(&admin, Some(WORKFLOW), None)
        .await
        .unwrap();
    assert_eq!(ids(by_workflow), vec![g1.clone(), g2.clone()]);
    let by_member = world.groups.list(&admin, None, Some(bob)).await.unwrap();
    assert_eq!(ids(by_member), vec![g1.clone(), g3.clone()]);
    let both = world
        .groups
        .list(&admin, Some(WORKFLOW), Some(bob))
        .await
        .unwrap();
    assert_eq!(ids(both), vec![g1.clone()]);

    assert_eq!(
        not_found_kind(world.groups.list(&admin, Some("no_such"), None).await),
        "workflow"
    );
    assert_eq!(
        invalid_field(world.groups.list(&admin, None, Some(carol)).await),
        "member"
    );

    // Bob, not an admin, sees his own groups and may not ask for Alice's.
    let own = world
        .groups
        .list(&Actor::user(bob), None, None)
        .await
        .unwrap();
    assert_eq!(ids(own), vec![g1, g3]);
    let theirs = world
        .groups
        .list(&Actor::user(bob), None, Some(alice))
        .await;
    assert!(is_forbidden(&theirs), "{theirs:?}");
}

/// 19 and hardening: only members act on a group; only the owner or an admin deletes it;
/// only an admin creates a group for someone else.
#[tokio::test]
async fn only_members_act_and_only_the_owner_deletes() {
    let world = World::new().await;
    let alice = world.user("alice").await;
    let bob = world.user("bob").await;
    let eve = world.user("eve").await;
    let g = world.group(alice, "G", &[bob]).await;
    let outsider = Actor::user(eve);

    assert!(is_forbidden(&world.groups.get(&outsider, &g).await));
    assert!(is_forbidden(&world.groups.files(&outsider, &g).await));
    assert!(is_forbidden(
        &world
            .groups
            .upload(&outsider, &g, "x.txt", content(b"x", 1))
            .await
    ));
    assert!(is_forbidden(
        &world
            .groups
            .update(
                &outsider,
                &g,
                GroupChanges {
                    name: Some("Mine".to_owned()),
                    ..GroupChanges::default()
                }
            )
            .await
    ));
    assert!(is_forbidden(&world.groups.delete(&outsider, &g).await));
    // A member who is not the owner may not delete.
    assert!(is_forbidden(
        &world.groups.delete(&Actor::user(bob), &g).await
    ));
    assert!(
        world.volume.keys().is_empty(),
        "the refused upload stored nothing"
    );

    let for_someone_else = world
        .groups
        .create(
            &Actor::user(bob),
            NewGroup {
                owner: Some(alice),
                ..new_group("H")
            },
        )
        .await;
    assert!(is_forbidden(&for_someone_else));
    let by_admin = world
        .groups
        .create(
            &Actor::operator(),
            NewGroup {
                owner: Some(bob),
                ..new_group("H")
            },
        )
        .await
        .unwrap();
    assert_eq!(by_admin.owner, bob);

    // The admin and the owner may delete.
    world
        .groups
        .delete(&Actor::operator(), by_admin.id.as_str())
        .await
        .unwrap();
    world.groups.delete(&Actor::user(alice), &g).await.unwrap();
}
