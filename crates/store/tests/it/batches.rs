//! The batch path: subscriptions inserted whole in few statements, loaded many at once, and
//! found by their unique values; the provisioning marks and load chunks.

use cadre_domain::models::{DomainModel, User, UserInactive};
use cadre_domain::{
    BlockRef, ChunkPart, DomainError, Email, ExternalId, Lifecycle, LoadChunk, Name,
    NewSubscription, ProductType, ProvisioningRepository, SubscriptionRecord,
    SubscriptionRepository, UuidV7Source,
};
use cadre_migrations::demo::{DEFAULT_CUSTOMER_ID, USER_INTERNAL_PRODUCT_ID};
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

#[tokio::test]
async fn provisioned_marks_list_live_subscriptions_of_a_product_type() {
    let store = scratch_store().await;
    let group = active_group(&store, "g1", "G1", &[]).await;
    let user = provisioned_user(&store, "u1", "u1", "u1@example.com", &[])
        .await
        .unwrap();
    let ids = [user.subscription.id, group.subscription.id];
    store.mark_provisioned(&ids, now()).await.unwrap();
    store.mark_provisioned(&ids, now()).await.unwrap();
    assert_eq!(
        store
            .provisioned_subscriptions(&ProductType::user())
            .await
            .unwrap(),
        [user.subscription.id]
    );
    let mut record = user.into_record();
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
