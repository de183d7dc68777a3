//! Loading and saving subscriptions whole, with lifecycle and version guards.

use cadre_domain::models::{self};
use cadre_domain::{BlockRef, DomainError, Lifecycle, NewSubscription, SubscriptionRepository};
use cadre_migrations::demo::{DEFAULT_CUSTOMER_ID, USER_GROUP_PRODUCT_ID};
use cadre_products::models::{User, UserGroup, UserInactive};
use cadre_store::testing::scratch_store;
use uuid::Uuid;

use crate::fixtures::{activate, active_group, initial_user, now, provisioned_user};

#[tokio::test]
async fn a_user_with_its_group_reference_round_trips_unchanged() {
    let store = scratch_store().await;
    let parent = active_group(&store, "staff", "Staff", &[]).await;
    let parent_ref = parent.user_group.reference(parent.subscription.id);
    let group = active_group(&store, "eng", "Engineering", &[parent_ref]).await;
    let user = provisioned_user(&store, "ada", "ada", "Ada@Example.org", &[&group, &parent])
        .await
        .unwrap();
    let user = activate(&store, user).await;

    let loaded: User = models::from_subscription(&*store, user.subscription.id)
        .await
        .unwrap();
    assert_eq!(loaded, user);
    assert_eq!(loaded.user.email.as_str(), "ada@example.org");
    assert_eq!(
        loaded.user.groups,
        vec![
            group.user_group.reference(group.subscription.id),
            parent.user_group.reference(parent.subscription.id)
        ]
    );
    assert_eq!(loaded.subscription.lifecycle, Lifecycle::Active);
    assert_eq!(loaded.subscription.start_date, Some(now()));
    assert_eq!(loaded.affiliation.to_string(), "internal");

    let loaded_group: UserGroup = models::from_subscription(&*store, group.subscription.id)
        .await
        .unwrap();
    assert_eq!(loaded_group, group);
    assert_eq!(loaded_group.user_group.parent_groups, vec![parent_ref]);

    // The generic record survives a save-load cycle too, apart from the version bump.
    let record = store.load_subscription(user.subscription.id).await.unwrap();
    let saved = store.save_subscription(&record).await.unwrap();
    assert_eq!(saved.subscription.version, record.subscription.version + 1);
    let mut expected = record.clone();
    expected.subscription.version += 1;
    assert_eq!(saved, expected);
}

#[tokio::test]
async fn a_new_subscription_is_initial_out_of_sync_with_empty_root_blocks() {
    let store = scratch_store().await;
    let user = initial_user(&store).await;
    assert_eq!(user.subscription.lifecycle, Lifecycle::Initial);
    assert!(!user.subscription.insync);
    assert_eq!(user.subscription.version, 1);
    assert_eq!(user.user.user_id, None);
    assert!(user.user.groups.is_empty());
    let record = store.load_subscription(user.subscription.id).await.unwrap();
    assert_eq!(record.blocks.len(), 1);
    assert_eq!(record.blocks[0].block, "UserBlock");
    assert!(record.blocks[0].values.is_empty());
}

#[tokio::test]
async fn typed_models_refuse_the_wrong_lifecycle_or_product() {
    let store = scratch_store().await;
    let user = initial_user(&store).await;
    let error = models::from_subscription::<User>(&*store, user.subscription.id)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("is initial"), "{error}");
    let error = models::from_subscription::<UserGroup>(&*store, user.subscription.id)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("not a UserGroup"), "{error}");
    let missing = Uuid::now_v7();
    assert_eq!(
        models::from_subscription::<UserInactive>(&*store, missing)
            .await
            .unwrap_err(),
        DomainError::not_found("subscription", missing)
    );
}

#[tokio::test]
async fn provisioning_requires_the_identifying_fields() {
    let store = scratch_store().await;
    let user = initial_user(&store).await;
    let error = user.into_provisioning(now()).unwrap_err();
    assert_eq!(
        error,
        DomainError::invalid("UserBlock.user_id", "is required")
    );
}

#[tokio::test]
async fn the_store_refuses_an_illegal_lifecycle_change() {
    let store = scratch_store().await;
    let user = initial_user(&store).await;
    let mut record = store.load_subscription(user.subscription.id).await.unwrap();
    record.subscription.lifecycle = Lifecycle::Active;
    let error = store.save_subscription(&record).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "a subscription cannot go from initial to active"
    );
    let stored = store.load_subscription(user.subscription.id).await.unwrap();
    assert_eq!(stored.subscription.lifecycle, Lifecycle::Initial);
    assert_eq!(stored.subscription.version, 1);
}

#[tokio::test]
async fn a_stale_version_is_a_conflict_and_writes_nothing() {
    let store = scratch_store().await;
    let group = active_group(&store, "g1", "Group One", &[]).await;
    let mut first = store
        .load_subscription(group.subscription.id)
        .await
        .unwrap();
    let mut second = first.clone();
    first.subscription.description = "first writer".to_owned();
    store.save_subscription(&first).await.unwrap();
    second.subscription.description = "second writer".to_owned();
    let error = store.save_subscription(&second).await.unwrap_err();
    assert!(
        matches!(error, DomainError::Conflict(ref message) if message.contains("changed by someone else")),
        "{error}"
    );
    let stored = store
        .load_subscription(group.subscription.id)
        .await
        .unwrap();
    assert_eq!(stored.subscription.description, "first writer");
}

#[tokio::test]
async fn references_must_name_an_existing_block_of_an_allowed_kind() {
    let store = scratch_store().await;
    let group = active_group(&store, "g1", "Group One", &[]).await;
    let other_user = provisioned_user(&store, "bob", "bob", "bob@example.org", &[&group])
        .await
        .unwrap();

    let mut user = initial_user(&store).await;
    let missing = Uuid::now_v7();
    user.user.groups = vec![BlockRef {
        instance_id: missing,
        owner_subscription_id: group.subscription.id,
    }];
    let error = models::save(&*store, user.clone()).await.unwrap_err();
    assert_eq!(
        error,
        DomainError::invalid(
            "UserBlock.groups",
            format!("refers to block instance {missing}, which does not exist")
        )
    );

    user.user.groups = [other_user.user.instance_id]
        .iter()
        .map(|id| BlockRef {
            instance_id: *id,
            owner_subscription_id: other_user.subscription.id,
        })
        .collect();
    let error = models::save(&*store, user.clone()).await.unwrap_err();
    assert_eq!(
        error,
        DomainError::invalid("UserBlock.groups", "UserBlock cannot refer to a UserBlock")
    );

    user.user.groups = vec![BlockRef {
        instance_id: group.user_group.instance_id,
        owner_subscription_id: other_user.subscription.id,
    }];
    let error = models::save(&*store, user).await.unwrap_err();
    assert!(
        error.to_string().contains("belongs to subscription"),
        "{error}"
    );
}

#[tokio::test]
async fn a_block_in_use_by_another_subscription_cannot_be_dropped() {
    let store = scratch_store().await;
    let group = active_group(&store, "g1", "Group One", &[]).await;
    provisioned_user(&store, "ann", "ann", "ann@example.org", &[&group])
        .await
        .unwrap();
    let mut record = store
        .load_subscription(group.subscription.id)
        .await
        .unwrap();
    record.blocks.clear();
    let error = store.save_subscription(&record).await.unwrap_err();
    assert!(
        matches!(error, DomainError::Conflict(ref message) if message.contains("other subscriptions use")),
        "{error}"
    );
    let stored = store
        .load_subscription(group.subscription.id)
        .await
        .unwrap();
    assert_eq!(stored.blocks.len(), 1, "the failed save rolled back");
}

#[tokio::test]
async fn unknown_product_and_customer_are_not_found() {
    let store = scratch_store().await;
    let missing = Uuid::now_v7();
    let error = store
        .create_subscription(NewSubscription {
            id: Uuid::now_v7(),
            product_id: missing,
            customer_id: DEFAULT_CUSTOMER_ID,
            description: "x".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(error, DomainError::not_found("product", missing));
    let error = store
        .create_subscription(NewSubscription {
            id: Uuid::now_v7(),
            product_id: USER_GROUP_PRODUCT_ID,
            customer_id: missing,
            description: "x".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(error, DomainError::not_found("customer", missing));
}

#[tokio::test]
async fn changes_inside_a_transaction_are_visible_only_after_commit() {
    use cadre_domain::Store;
    let store = scratch_store().await;
    let group = active_group(&store, "g1", "Group One", &[]).await;
    let txn = store.begin().await.unwrap();
    let mut record = txn.load_subscription(group.subscription.id).await.unwrap();
    record.subscription.description = "renamed".to_owned();
    txn.save_subscription(&record).await.unwrap();
    drop(txn);
    let stored = store
        .load_subscription(group.subscription.id)
        .await
        .unwrap();
    assert_eq!(
        stored.subscription.description, "User Group Group One",
        "dropped = rolled back"
    );

    let txn = store.begin().await.unwrap();
    txn.save_subscription(&record).await.unwrap();
    txn.commit().await.unwrap();
    let stored = store
        .load_subscription(group.subscription.id)
        .await
        .unwrap();
    assert_eq!(stored.subscription.description, "renamed");
}

#[tokio::test]
async fn subscriptions_using_a_block_are_the_live_referrers() {
    let store = scratch_store().await;
    let group = active_group(&store, "g1", "Group One", &[]).await;
    let child = active_group(
        &store,
        "g2",
        "Group Two",
        &[group.user_group.reference(group.subscription.id)],
    )
    .await;
    let ann = provisioned_user(&store, "ann", "ann", "ann@example.org", &[&group])
        .await
        .unwrap();
    let bob = provisioned_user(&store, "bob", "bob", "bob@example.org", &[&group])
        .await
        .unwrap();
    let mut bob = activate(&store, bob).await;
    bob.subscription
        .change_lifecycle(Lifecycle::Terminated, now())
        .unwrap();
    models::save(&*store, bob).await.unwrap();

    let users: Vec<Uuid> = store
        .subscriptions_using(group.user_group.instance_id)
        .await
        .unwrap()
        .iter()
        .map(|summary| summary.subscription.id)
        .collect();
    assert_eq!(
        users,
        [child.subscription.id, ann.subscription.id],
        "terminated bob is not a user"
    );
    assert!(
        store
            .subscriptions_using(child.user_group.instance_id)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn references_to_instances_the_transaction_already_read_are_checked_the_same_way() {
    use cadre_domain::Store;
    let store = scratch_store().await;
    let group = active_group(&store, "g1", "Group One", &[]).await;
    let other = provisioned_user(&store, "bob", "bob", "bob@example.org", &[&group])
        .await
        .unwrap();
    let user = initial_user(&store).await;

    let txn = store.begin().await.unwrap();
    txn.load_subscription(other.subscription.id).await.unwrap();
    txn.load_subscription(group.subscription.id).await.unwrap();
    let mut record = txn.load_subscription(user.subscription.id).await.unwrap();
    let wrong_kind = BlockRef {
        instance_id: other.user.instance_id,
        owner_subscription_id: other.subscription.id,
    };
    record.blocks[0].set_references("groups", &[wrong_kind]);
    let error = txn.save_subscription(&record).await.unwrap_err();
    assert_eq!(
        error,
        DomainError::invalid("UserBlock.groups", "UserBlock cannot refer to a UserBlock")
    );
    drop(txn);

    let txn = store.begin().await.unwrap();
    txn.load_subscription(group.subscription.id).await.unwrap();
    let mut record = txn.load_subscription(user.subscription.id).await.unwrap();
    let wrong_owner = BlockRef {
        instance_id: group.user_group.instance_id,
        owner_subscription_id: other.subscription.id,
    };
    record.blocks[0].set_references("groups", &[wrong_owner]);
    let error = txn.save_subscription(&record).await.unwrap_err();
    assert!(
        error.to_string().contains("belongs to subscription"),
        "{error}"
    );
    drop(txn);

    let txn = store.begin().await.unwrap();
    txn.load_subscription(group.subscription.id).await.unwrap();
    let mut record = txn.load_subscription(user.subscription.id).await.unwrap();
    record.blocks[0].set_references(
        "groups",
        &[group.user_group.reference(group.subscription.id)],
    );
    let saved = txn.save_subscription(&record).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(
        store.load_subscription(user.subscription.id).await.unwrap(),
        saved
    );
}
