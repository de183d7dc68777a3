//! Files of a group: flowserv's behaviours 11 and 12, and cadre's file-name, size and media
//! type rules.

use cadre_domain::{DomainError, FileStatus};
use cadre_groups::{Actor, GroupError};
use uuid::Uuid;

use crate::fixtures::{World, collect, content};

/// 11: an upload records the name, size, time and media type, returns a fresh id, and its
/// content reads back; files list in upload order.
#[tokio::test]
async fn uploads_record_their_metadata_and_read_back() {
    let world = World::new().await;
    let alice = world.user("alice").await;
    let bob = world.user("bob").await;
    let g = world.group(alice, "G", &[bob]).await;
    let before = chrono::Utc::now();
    let json = world
        .groups
        .upload(
            &Actor::user(bob),
            &g,
            " data.json ",
            content(br#"{"a": 1}"#, 2),
        )
        .await
        .unwrap();
    assert_eq!(json.name.as_str(), "data.json");
    assert_eq!(json.size, 8);
    assert_eq!(json.mime_type.as_deref(), Some("application/json"));
    assert_eq!(json.status, FileStatus::Stored);
    assert!(json.created_at >= before - chrono::TimeDelta::seconds(1));
    assert!(
        !json.key.contains("data"),
        "the key is opaque: {}",
        json.key
    );

    let csv = world
        .groups
        .upload(
            &Actor::user(alice),
            &g,
            "rows.csv",
            content(b"a,b\n1,2\n", 4),
        )
        .await
        .unwrap();
    assert_ne!(csv.id, json.id);
    let listed = world.groups.files(&Actor::user(alice), &g).await.unwrap();
    assert_eq!(listed, vec![json.clone(), csv]);

    let (file, stream) = world
        .groups
        .read_file(&Actor::user(alice), &g, json.id)
        .await
        .unwrap();
    assert_eq!(file, json);
    assert_eq!(collect(stream).await, br#"{"a": 1}"#);
}

/// 12: a file id of another group, or an unknown one, is an unknown file, to read and to
/// delete; a deleted file is gone and deleting it again is unknown.
#[tokio::test]
async fn files_of_other_groups_are_unknown() {
    let world = World::new().await;
    let alice = world.user("alice").await;
    let actor = Actor::user(alice);
    let g1 = world.group(alice, "G1", &[]).await;
    let g2 = world.group(alice, "G2", &[]).await;
    let f1 = world
        .groups
        .upload(&actor, &g1, "a.txt", content(b"a", 1))
        .await
        .unwrap();
    let f2 = world
        .groups
        .upload(&actor, &g2, "b.txt", content(b"b", 1))
        .await
        .unwrap();

    let unknown_file = |result: Result<_, GroupError>| {
        matches!(
            result,
            Err(GroupError::Domain(DomainError::NotFound {
                kind: "file",
                ..
            }))
        )
    };
    assert!(unknown_file(
        world.groups.read_file(&actor, &g1, f2.id).await.map(|_| ())
    ));
    assert!(unknown_file(
        world
            .groups
            .read_file(&actor, &g1, Uuid::now_v7())
            .await
            .map(|_| ())
    ));
    assert!(unknown_file(
        world.groups.delete_file(&actor, &g1, f2.id).await
    ));

    world.groups.delete_file(&actor, &g1, f1.id).await.unwrap();
    assert!(unknown_file(
        world.groups.read_file(&actor, &g1, f1.id).await.map(|_| ())
    ));
    assert!(unknown_file(
        world.groups.delete_file(&actor, &g1, f1.id).await
    ));
    assert!(world.groups.files(&actor, &g1).await.unwrap().is_empty());
    assert_eq!(
        world.groups.files(&actor, &g2).await.unwrap(),
        vec![f2.clone()]
    );
    assert_eq!(world.volume.keys(), vec![f2.key]);
}

/// Hardening: blank names, path separators and control characters are refused before any
/// content is written.
#[tokio::test]
async fn bad_file_names_are_refused_before_writing() {
    let world = World::new().await;
    let alice = world.user("alice").await;
    let g = world.group(alice, "G", &[]).await;
    for name in [
        " ",
        "../../etc/passwd",
        "a/b.csv",
        "a\\b",
        "tab\there",
        "..",
        &"f".repeat(256),
    ] {
        let result = world
            .groups
            .upload(&Actor::user(alice), &g, name, content(b"x", 1))
            .await;
        assert!(
            matches!(
                result,
                Err(GroupError::Domain(DomainError::InvalidArgument { ref field, .. })) if field == "file name"
            ),
            "{name:?}: {result:?}"
        );
    }
    assert_eq!(
        world
            .volume
            .writes
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert!(
        world
            .groups
            .files(&Actor::user(alice), &g)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Hardening: content beyond the size limit is refused and leaves nothing behind; content of
/// exactly the limit is accepted.
#[tokio::test]
async fn uploads_over_the_limit_are_refused() {
    let world = World::with_limit(10).await;
    let alice = world.user("alice").await;
    let actor = Actor::user(alice);
    let g = world.group(alice, "G", &[]).await;
    let result = world
        .groups
        .upload(&actor, &g, "big.bin", content(&[7; 11], 4))
        .await;
    assert!(
        matches!(result, Err(GroupError::TooLarge { limit: 10 })),
        "{result:?}"
    );
    assert!(world.volume.keys().is_empty());
    assert!(world.groups.files(&actor, &g).await.unwrap().is_empty());
    let recovery = world
        .groups
        .recover(chrono::TimeDelta::zero())
        .await
        .unwrap();
    assert_eq!(
        recovery,
        cadre_groups::Recovery::default(),
        "no row was left behind"
    );

    let exact = world
        .groups
        .upload(&actor, &g, "ok.bin", content(&[7; 10], 4))
        .await
        .unwrap();
    assert_eq!(exact.size, 10);
}

/// Hardening: the media type comes from the name, unless the content's signature says
/// otherwise.
#[tokio::test]
async fn media_types_come_from_the_name_and_a_content_sniff() {
    let world = World::new().await;
    let alice = world.user("alice").await;
    let actor = Actor::user(alice);
    let g = world.group(alice, "G", &[]).await;
    let png: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRrest-of-image";
    let cases: [(&str, &[u8], Option<&str>); 4] = [
        ("report.csv", b"a,b", Some("text/csv")),
        ("photo.PNG", png, Some("image/png")),
        ("disguised.json", png, Some("image/png")),
        ("notes", b"plain words", None),
    ];
    for (name, bytes, expected) in cases {
        let file = world
            .groups
            .upload(&actor, &g, name, content(bytes, 5))
            .await
            .unwrap();
        assert_eq!(file.mime_type.as_deref(), expected, "{name}");
    }
}
