//! Fault injection: a volume that fails mid-write or on delete. Afterwards the database and the
//! volume agree: every listed file has its content, and no content lacks a row.

use std::collections::BTreeSet;

use cadre_domain::{FileStatus, Store};
use cadre_groups::{Actor, GroupError, Recovery};

use crate::fixtures::{World, content};

/// The keys of every file row of `group`, whatever its status, and of the stored ones.
async fn rows(world: &World, group: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let store: &dyn Store = world.engine.store().as_ref();
    let id = cadre_domain::GroupId::parse(group).unwrap();
    let all = store.group_files(&id, None).await.unwrap();
    let stored = all
        .iter()
        .filter(|file| file.status == FileStatus::Stored)
        .map(|file| file.key.clone())
        .collect();
    (all.into_iter().map(|file| file.key).collect(), stored)
}

fn volume_keys(world: &World) -> BTreeSet<String> {
    world.volume.keys().into_iter().collect()
}

#[tokio::test]
async fn a_write_that_fails_midway_leaves_neither_row_nor_content() {
    let world = World::new().await;
    let alice = world.user("alice").await;
    let actor = Actor::user(alice);
    let g = world.group(alice, "G", &[]).await;
    let kept = world
        .groups
        .upload(&actor, &g, "kept.txt", content(b"kept", 2))
        .await
        .unwrap();

    world.volume.fail_write_after(Some(5));
    let result = world
        .groups
        .upload(&actor, &g, "big.txt", content(&[1; 64], 4))
        .await;
    assert!(matches!(result, Err(GroupError::Volume(_))), "{result:?}");
    world.volume.fail_write_after(None);

    let (all, stored) = rows(&world, &g).await;
    assert_eq!(all, BTreeSet::from([kept.key.clone()]));
    assert_eq!(stored, volume_keys(&world));
}

#[tokio::test]
async fn a_failed_write_whose_cleanup_also_fails_is_finished_by_recovery() {
    let world = World::new().await;
    let alice = world.user("alice").await;
    let actor = Actor::user(alice);
    let g = world.group(alice, "G", &[]).await;

    world.volume.fail_write_after(Some(3));
    world.volume.fail_deletes(true);
    let result = world
        .groups
        .upload(&actor, &g, "a.txt", content(&[1; 16], 4))
        .await;
    assert!(matches!(result, Err(GroupError::Volume(_))), "{result:?}");
    world.volume.fail_write_after(None);
    world.volume.fail_deletes(false);

    // The row that could not be removed is not listed, and holds no content.
    assert!(world.groups.files(&actor, &g).await.unwrap().is_empty());
    let (all, stored) = rows(&world, &g).await;
    assert_eq!(all.len(), 1);
    assert!(stored.is_empty());
    assert!(volume_keys(&world).is_empty());

    let recovery = world
        .groups
        .recover(chrono::TimeDelta::zero())
        .await
        .unwrap();
    assert_eq!(
        recovery,
        Recovery {
            abandoned_uploads: 1,
            completed_deletions: 0
        }
    );
    assert!(rows(&world, &g).await.0.is_empty());
}

#[tokio::test]
async fn a_failed_delete_hides_the_file_and_recovery_completes_it() {
    let world = World::new().await;
    let alice = world.user("alice").await;
    let actor = Actor::user(alice);
    let g = world.group(alice, "G", &[]).await;
    let gone = world
        .groups
        .upload(&actor, &g, "gone.txt", content(b"gone", 2))
        .await
        .unwrap();
    let kept = world
        .groups
        .upload(&actor, &g, "kept.txt", content(b"kept", 2))
        .await
        .unwrap();

    world.volume.fail_deletes(true);
    let result = world.groups.delete_file(&actor, &g, gone.id).await;
    assert!(matches!(result, Err(GroupError::Volume(_))), "{result:?}");
    // No longer listed, its content still there under a row that says so.
    assert_eq!(
        world.groups.files(&actor, &g).await.unwrap(),
        vec![kept.clone()]
    );
    let (all, stored) = rows(&world, &g).await;
    assert_eq!(all, volume_keys(&world), "every blob has a row");
    assert_eq!(stored, BTreeSet::from([kept.key.clone()]));

    // Deleting the group fails the same way and keeps the group.
    let result = world.groups.delete(&actor, &g).await;
    assert!(matches!(result, Err(GroupError::Volume(_))), "{result:?}");
    assert!(world.groups.get(&actor, &g).await.is_ok());
    assert!(
        world.groups.files(&actor, &g).await.unwrap().is_empty(),
        "both are being deleted"
    );

    world.volume.fail_deletes(false);
    let recovery = world
        .groups
        .recover(chrono::TimeDelta::hours(1))
        .await
        .unwrap();
    assert_eq!(
        recovery,
        Recovery {
            abandoned_uploads: 0,
            completed_deletions: 2
        }
    );
    assert!(volume_keys(&world).is_empty());
    assert!(rows(&world, &g).await.0.is_empty());
    world.groups.delete(&actor, &g).await.unwrap();
    let store: &dyn Store = world.engine.store().as_ref();
    assert!(store.list_groups(None, None).await.unwrap().is_empty());
}
