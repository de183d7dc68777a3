//! The batch path: subscriptions inserted whole in few statements, loaded many at once, and
//! found by their unique values; the provisioning marks and load chunks.

use cadre_domain::models::DomainModel;
use cadre_domain::{
    BlockRef, ChunkPart, DomainError, Email, ExternalId, Lifecycle, LoadChunk, Name,
    NewSubscription, ProductType, ProvisionedMark, ProvisionedSubscription, ProvisioningRepository,
    SubscriptionRecord, SubscriptionRepository, UuidV7Source, Written,
};
use cadre_migrations::demo::{DEFAULT_CUSTOMER_ID, USER_INTERNAL_PRODUCT_ID};
use cadre_products::models::{User, UserInactive};
use cadre_store::SeaStore;
use cadre_store::testing::scratch_store;
use serde_json::json;
use uuid::Uuid;

use crate::fixtures::{active_group, now, provisioned_user};

/// A complete, active user record that is not stored yet.
async fn new_user(store: &SeaStore, user_id: &str, groups: &[BlockRef]) -> SubscriptionRecord {
    let product = cadre_domain::CatalogueRepository::product(store, USER_INTERNAL_PRODUCT_ID)
        .await
        .unwrap();
    let record = SubscriptionRecord::initial(
        NewSubscription {
            id: Uuid::now_v7(),
            product_id: product.id,
            customer_id: DEFAULT_CUSTOMER_ID,
            description: format!("User {user_id}"),
        },
        product,
        &UuidV7Source,
    );
    let mut user = UserInactive::from_record(record).unwrap();
    user.user.user_id = Some(ExternalId::parse(user_id).unwrap());
    user.user.username = Some(Name::parse(user_id).unwrap());
    user.user.email = Some(Email::parse(&format!("{user_id}@example.com")).unwrap());
    user.user.groups = groups.to_vec();
    let mut user = user.into_provisioning(now()).unwrap();
    user.subscription
        .change_lifecycle(Lifecycle::Active, now())
        .unwrap();
    user.subscription.insync = true;
    user.into_record()
}

#[tokio::test]
async fn inserted_subscriptions_load_back_as_they_were_saved() {
    let store = scratch_store().await;
    let group = active_group(&store, "g1", "G1", &[]).await;
    let reference = group.user_group.reference(group.subscription.id);
    let mut records = Vec::new();
    for n in 0..3 {
        records.push(new_user(&store, &format!("u{n}"), &[reference]).await);
    }
    store.insert_subscriptions(&records).await.unwrap();

    let mut ids: Vec<Uuid> = records.iter().map(|r| r.subscription.id).collect();
    ids.push(Uuid::now_v7());
    let loaded = store.load_subscriptions(&ids).await.unwrap();
    assert_eq!(loaded.len(), 3, "a missing id is left out");
    for (loaded, inserted) in loaded.iter().zip(&records) {
        assert_eq!(loaded, inserted);
        let user = User::from_record(loaded.clone()).unwrap();
        assert_eq!(user.user.groups, [reference]);
    }
    let users = store
        .subscriptions_using(group.user_group.instance_id)
        .await
        .unwrap();
    assert_eq!(users.len(), 3);
}

#[tokio::test]
async fn snapshots_hold_what_the_records_hold() {
    let store = scratch_store().await;
    let g1 = active_group(&store, "g1", "G1", &[]).await;
    let r1 = g1.user_group.reference(g1.subscription.id);
    let g2 = active_group(&store, "g2", "G2", &[r1]).await;
    let r2 = g2.user_group.reference(g2.subscription.id);
    let mut records = vec![
        new_user(&store, "two", &[r2, r1]).await,
        new_user(&store, "none", &[]).await,
    ];
    records[0].blocks[0]
        .values
        .insert("auth_id".to_owned(), vec!["sso|2".to_owned()]);
    store.insert_subscriptions(&records).await.unwrap();
    // An initial subscription: empty blocks, out of sync.
    let initial = crate::fixtures::initial_user(&store).await;

    let mut ids: Vec<Uuid> = records.iter().map(|r| r.subscription.id).collect();
    ids.extend([
        g1.subscription.id,
        g2.subscription.id,
        initial.subscription.id,
        Uuid::now_v7(),
    ]);
    let snapshots = store.load_snapshots(&ids).await.unwrap();
    let loaded = store.load_subscriptions(&ids).await.unwrap();
    assert_eq!(snapshots.len(), 5, "a missing id is left out");
    assert_eq!(snapshots.len(), loaded.len());
    for (snapshot, record) in snapshots.iter().zip(&loaded) {
        assert_eq!(snapshot.id, record.subscription.id);
        assert_eq!(snapshot.product_id, record.subscription.product_id);
        assert_eq!(snapshot.lifecycle, record.subscription.lifecycle);
        assert_eq!(snapshot.insync, record.subscription.insync);
        assert_eq!(snapshot.version, record.subscription.version);
        assert_eq!(snapshot.blocks, record.blocks);
    }
    let two = snapshots
        .iter()
        .find(|snapshot| snapshot.id == records[0].subscription.id)
        .unwrap();
    assert_eq!(
        two.block("UserBlock").unwrap().references("groups"),
        [r2, r1]
    );
    assert!(store.load_snapshots(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_transaction_snapshots_what_it_sees_and_saves_after_loading_whole() {
    let store = scratch_store().await;
    let record = new_user(&store, "u1", &[]).await;
    store
        .insert_subscriptions(std::slice::from_ref(&record))
        .await
        .unwrap();
    let id = record.subscription.id;
    let txn = cadre_domain::Store::begin(&*store).await.unwrap();
    let mut loaded = txn.load_subscription(id).await.unwrap();
    loaded.subscription.note = Some("changed".to_owned());
    let saved = txn.save_subscription(&loaded).await.unwrap();
    let snapshot = txn.load_snapshots(&[id]).await.unwrap().pop().unwrap();
    assert_eq!(
        snapshot.version, saved.subscription.version,
        "sees its own writes"
    );
    let mut again = txn.load_subscription(id).await.unwrap();
    assert_eq!(again, saved);
    again.subscription.note = None;
    txn.save_subscription(&again).await.unwrap();
    txn.commit().await.unwrap();
    let stored = store.load_subscription(id).await.unwrap();
    assert_eq!(stored.subscription.version, record.subscription.version + 2);
    assert_eq!(stored.subscription.note, None);
}

#[tokio::test]
async fn a_batch_insert_is_checked_like_a_save_and_writes_nothing_when_refused() {
    let store = scratch_store().await;
    provisioned_user(&store, "taken", "taken", "taken@example.com", &[])
        .await
        .unwrap();
    let fine = new_user(&store, "fine", &[]).await;
    let duplicate = new_user(&store, "taken", &[]).await;
    let error = store
        .insert_subscriptions(&[fine.clone(), duplicate])
        .await
        .unwrap_err();
    assert!(matches!(error, DomainError::Conflict(_)), "{error}");

    let dangling = new_user(
        &store,
        "dangling",
        &[BlockRef {
            instance_id: Uuid::now_v7(),
            owner_subscription_id: Uuid::now_v7(),
        }],
    )
    .await;
    let error = store.insert_subscriptions(&[dangling]).await.unwrap_err();
    assert!(
        matches!(error, DomainError::InvalidArgument { .. }),
        "{error}"
    );
    assert!(
        store
            .load_subscriptions(&[fine.subscription.id])
            .await
            .unwrap()
            .is_empty(),
        "the refused batch left nothing behind"
    );
}

#[tokio::test]
async fn unique_values_are_found_among_live_subscriptions_only() {
    let store = scratch_store().await;
    let live = provisioned_user(&store, "live", "live", "live@example.com", &[])
        .await
        .unwrap();
    let gone = provisioned_user(&store, "gone", "gone", "gone@example.com", &[])
        .await
        .unwrap();
    let mut record = gone.into_record();
    record
        .subscription
        .change_lifecycle(Lifecycle::Terminated, now())
        .unwrap();
    store.save_subscription(&record).await.unwrap();

    let wanted = ["live", "gone", "never"].map(str::to_owned);
    let found = store
        .find_by_unique_values("user_id", &wanted)
        .await
        .unwrap();
    assert_eq!(found, [("live".to_owned(), live.subscription.id)]);
    let found = store
        .find_by_unique_values("email", &["live@example.com".to_owned()])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let error = store
        .find_by_unique_values("firstname", &wanted)
        .await
        .unwrap_err();
    assert!(matches!(error, DomainError::InvalidArgument { .. }));
}

fn mark(record: &SubscriptionRecord, written: Option<Written>) -> ProvisionedMark {
    ProvisionedMark {
        subscription_id: record.subscription.id,
        version: record.subscription.version,
        written,
    }
}

fn written(external_id: &str, fingerprint: &str) -> Option<Written> {
    Some(Written {
        external_id: external_id.to_owned(),
        fingerprint: fingerprint.to_owned(),
    })
}

#[tokio::test]
async fn provisioned_marks_list_live_subscriptions_of_a_product_type() {
    let store = scratch_store().await;
    let group = active_group(&store, "g1", "G1", &[]).await.into_record();
    let user = provisioned_user(&store, "u1", "u1", "u1@example.com", &[])
        .await
        .unwrap()
        .into_record();
    let marks = [mark(&user, written("u1", "f1")), mark(&group, None)];
    store.mark_provisioned(&marks, now()).await.unwrap();
    store.mark_provisioned(&marks, now()).await.unwrap();
    let listed = store
        .provisioned_subscriptions(&ProductType::user())
        .await
        .unwrap();
    assert_eq!(
        listed,
        [ProvisionedSubscription {
            subscription_id: user.subscription.id,
            lifecycle: user.subscription.lifecycle,
            insync: user.subscription.insync,
            written: written("u1", "f1"),
        }]
    );
    let groups = store
        .provisioned_subscriptions(&ProductType::user_group())
        .await
        .unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].written, None);

    let mut record = user;
    record
        .subscription
        .change_lifecycle(Lifecycle::Terminated, now())
        .unwrap();
    store.save_subscription(&record).await.unwrap();
    assert!(
        store
            .provisioned_subscriptions(&ProductType::user())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn what_a_load_wrote_is_kept_only_while_the_subscription_is_unchanged() {
    let store = scratch_store().await;
    let user = provisioned_user(&store, "u1", "u1", "u1@example.com", &[])
        .await
        .unwrap()
        .into_record();
    store
        .mark_provisioned(&[mark(&user, written("u1", "f1"))], now())
        .await
        .unwrap();
    let written_of = || async {
        store
            .provisioned_subscriptions(&ProductType::user())
            .await
            .unwrap()
            .remove(0)
            .written
    };
    assert_eq!(written_of().await, written("u1", "f1"));

    // Any save moves the version on: the digest is stale.
    let mut changed = user.clone();
    changed.subscription.note = Some("edited by hand".to_owned());
    let changed = store.save_subscription(&changed).await.unwrap();
    assert_eq!(written_of().await, None);

    // Marking again records the new version and digest; of two marks at once, the last wins.
    store
        .mark_provisioned(
            &[
                mark(&changed, written("u1", "f1")),
                mark(&changed, written("u1", "f2")),
            ],
            now(),
        )
        .await
        .unwrap();
    assert_eq!(written_of().await, written("u1", "f2"));
}

#[tokio::test]
async fn load_chunks_keep_their_order_and_their_reports() {
    let store = scratch_store().await;
    let load = Uuid::now_v7();
    let chunks: Vec<LoadChunk> = (0..3)
        .map(|seq| LoadChunk {
            seq,
            content: json!([seq]),
            report: None,
        })
        .collect();
    store
        .add_load_chunks(load, ChunkPart::Batch, &chunks, now())
        .await
        .unwrap();
    assert!(
        store
            .load_chunks(load, ChunkPart::Input)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .next_unreported_chunk(load, ChunkPart::Batch)
            .await
            .unwrap()
            .unwrap()
            .seq,
        0
    );
    store
        .report_chunk(load, ChunkPart::Batch, 0, &json!({"done": true}))
        .await
        .unwrap();
    let next = store
        .next_unreported_chunk(load, ChunkPart::Batch)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((next.seq, next.content), (1, json!([1])));
    let stored = store.load_chunks(load, ChunkPart::Batch).await.unwrap();
    assert_eq!(stored[0].report, Some(json!({"done": true})));
    assert_eq!(stored.len(), 3);
    let error = store
        .add_load_chunks(load, ChunkPart::Batch, &chunks[..1], now())
        .await
        .unwrap_err();
    assert!(matches!(error, DomainError::Conflict(_)), "{error}");
    let error = store
        .report_chunk(load, ChunkPart::Batch, 9, &json!({}))
        .await
        .unwrap_err();
    assert!(matches!(error, DomainError::NotFound { .. }));
}
