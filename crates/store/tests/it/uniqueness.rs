//! Identifying values are unique among live subscriptions, enforced by database indexes.

use cadre_domain::models::DomainModel;
use cadre_domain::models::{self};
use cadre_domain::{DomainError, Lifecycle, SubscriptionRepository};
use cadre_migrations::demo::{DEFAULT_CUSTOMER_NAME, USER_GROUP_PRODUCT_ID};
use cadre_products::models::User;
use cadre_store::testing::scratch_store;
use chrono::Utc;
use sea_orm::sea_query::{Alias, Query};
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use crate::fixtures::{activate, active_group, now, provisioned_user};

fn conflict(error: DomainError) -> String {
    match error {
        DomainError::Conflict(message) => message,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn duplicate_user_ids_usernames_and_emails_are_conflicts() {
    let store = scratch_store().await;
    let group = active_group(&store, "g1", "Group One", &[]).await;
    provisioned_user(&store, "ada", "ada", "ada@example.org", &[&group])
        .await
        .unwrap();

    for (user_id, username, email) in [
        ("ada", "other1", "other1@example.org"),
        ("other2", "ada", "other2@example.org"),
        ("other3", "other3", "ADA@example.org"),
    ] {
        let error = provisioned_user(&store, user_id, username, email, &[&group])
            .await
            .unwrap_err();
        assert_eq!(
            conflict(error),
            "a live subscription already holds one of these identifying values"
        );
    }
    let error = active_group_result(&store, "g1").await;
    assert!(error.is_err(), "duplicate group id refused");
}

#[tokio::test]
async fn identifying_values_are_unique_ignoring_case_and_kept_as_given() {
    let store = scratch_store().await;
    let group = active_group(&store, "g1", "Group One", &[]).await;
    let zed = provisioned_user(&store, "zed", "Zed", "zed@example.org", &[&group])
        .await
        .unwrap();
    for (user_id, username, email) in [
        ("other1", "zed", "other1@example.org"),
        ("other2", "ZED", "other2@example.org"),
        ("other3", "\u{FF3A}ed", "other3@example.org"),
        ("ZED", "other4", "other4@example.org"),
    ] {
        let error = provisioned_user(&store, user_id, username, email, &[&group])
            .await
            .unwrap_err();
        assert_eq!(
            conflict(error),
            "a live subscription already holds one of these identifying values",
            "{username}"
        );
    }
    let error = active_group_result(&store, "G1").await;
    assert!(error.is_err(), "group ids differing in case are one id");
    let stored =
        User::from_record(store.load_subscription(zed.subscription.id).await.unwrap()).unwrap();
    assert_eq!(stored.user.username.as_str(), "Zed", "shown as given");
    assert_eq!(
        store
            .find_by_unique_values("username", &["zED".to_owned(), "nobody".to_owned()])
            .await
            .unwrap(),
        [("zED".to_owned(), zed.subscription.id)]
    );
}

async fn active_group_result(
    store: &cadre_store::SeaStore,
    group_id: &str,
) -> cadre_domain::Result<()> {
    let mut group = crate::fixtures::initial_group(store, "dup").await;
    group.user_group.user_group_id = Some(cadre_domain::ExternalId::parse(group_id)?);
    group.user_group.name = Some(cadre_domain::Name::parse("Another name")?);
    models::save(store, group.into_provisioning(now())?)
        .await
        .map(|_| ())
}

#[tokio::test]
async fn a_terminated_subscription_releases_its_identifiers() {
    let store = scratch_store().await;
    let group = active_group(&store, "g1", "Group One", &[]).await;
    let ada = provisioned_user(&store, "ada", "ada", "ada@example.org", &[&group])
        .await
        .unwrap();
    let mut ada: User = activate(&store, ada).await;
    ada.subscription
        .change_lifecycle(Lifecycle::Terminated, now())
        .unwrap();
    let ada = models::save(&*store, ada).await.unwrap();
    assert_eq!(ada.subscription.end_date, Some(now()));
    assert_eq!(
        ada.user.user_id.as_str(),
        "ada",
        "the terminated record keeps its values"
    );

    provisioned_user(&store, "ada", "ada", "ada@example.org", &[&group])
        .await
        .expect("the id of a terminated user can be reused");
}

/// Inserts a value row straight into the table, around the domain layer.
async fn insert_value(
    conn: &impl ConnectionTrait,
    instance: Uuid,
    resource_type: Uuid,
    value: &str,
    unique_value: Option<&str>,
) -> Result<(), DbErr> {
    let statement = Query::insert()
        .into_table(Alias::new("subscription_instance_values"))
        .columns(
            [
                "id",
                "subscription_instance_id",
                "resource_type_id",
                "position",
                "value",
                "unique_value",
            ]
            .map(Alias::new),
        )
        .values_panic([
            Uuid::now_v7().into(),
            instance.into(),
            resource_type.into(),
            0i64.into(),
            value.into(),
            unique_value.map(str::to_owned).into(),
        ])
        .take();
    conn.execute(&statement).await.map(|_| ())
}

fn is_unique_violation(error: &DbErr) -> bool {
    matches!(
        error.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

#[tokio::test]
async fn the_database_index_holds_when_code_is_bypassed() {
    let store = scratch_store().await;
    let first = crate::fixtures::initial_group(&store, "a").await;
    let second = crate::fixtures::initial_group(&store, "b").await;
    let product = cadre_domain::CatalogueRepository::product(&*store, USER_GROUP_PRODUCT_ID)
        .await
        .unwrap();
    let block = &product.blocks[0];
    let group_id = block.resource_type("user_group_id").unwrap().id;
    let terms = block.resource_type("terms").unwrap().id;
    let conn = store.connection();

    insert_value(
        conn,
        first.user_group.instance_id,
        group_id,
        "same",
        Some("same"),
    )
    .await
    .unwrap();
    let error = insert_value(
        conn,
        second.user_group.instance_id,
        group_id,
        "same",
        Some("same"),
    )
    .await
    .expect_err("unique index on (resource type, unique value)");
    assert!(is_unique_violation(&error), "{error}");

    // Non-identifying values (no unique_value) repeat freely, but each slot holds one value.
    insert_value(
        conn,
        first.user_group.instance_id,
        terms,
        "same terms",
        None,
    )
    .await
    .unwrap();
    insert_value(
        conn,
        second.user_group.instance_id,
        terms,
        "same terms",
        None,
    )
    .await
    .unwrap();
    let error = insert_value(conn, second.user_group.instance_id, terms, "again", None)
        .await
        .expect_err("one value per (instance, resource type, position)");
    assert!(is_unique_violation(&error), "{error}");
}

#[tokio::test]
async fn duplicate_customer_and_product_names_are_refused_by_the_schema() {
    let store = scratch_store().await;
    let conn = store.connection();
    let customer = Query::insert()
        .into_table(Alias::new("customers"))
        .columns(["id", "name", "created_at"].map(Alias::new))
        .values_panic([
            Uuid::now_v7().into(),
            DEFAULT_CUSTOMER_NAME.into(),
            Utc::now().fixed_offset().into(),
        ])
        .take();
    let error = conn.execute(&customer).await.unwrap_err();
    assert!(is_unique_violation(&error), "{error}");

    let product = Query::insert()
        .into_table(Alias::new("products"))
        .columns(
            [
                "id",
                "name",
                "description",
                "product_type",
                "tag",
                "status",
                "created_at",
            ]
            .map(Alias::new),
        )
        .values_panic([
            Uuid::now_v7().into(),
            "User Group".into(),
            "dup".into(),
            "UserGroup".into(),
            "GROUP".into(),
            "active".into(),
            Utc::now().fixed_offset().into(),
        ])
        .take();
    let error = conn.execute(&product).await.unwrap_err();
    assert!(is_unique_violation(&error), "{error}");

    // Through the port, the same collision is a typed conflict.
    let error = cadre_domain::CustomerRepository::create_customer(
        &*store,
        &cadre_domain::Customer {
            id: Uuid::now_v7(),
            name: cadre_domain::Name::parse(" Default ").unwrap(),
            created_at: Utc::now(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(conflict(error), "a customer with this name already exists");
}

#[tokio::test]
async fn a_changed_identifying_value_frees_the_old_one_and_claims_the_new_one() {
    let store = scratch_store().await;
    let group = active_group(&store, "g1", "Group One", &[]).await;
    let mut ada = provisioned_user(&store, "ada", "ada", "ada@example.org", &[&group])
        .await
        .unwrap();
    ada.user.email = cadre_domain::Email::parse("ada.new@example.org").unwrap();
    let ada = models::save(&*store, ada).await.unwrap();
    assert_eq!(ada.user.email.as_str(), "ada.new@example.org");

    provisioned_user(&store, "bob", "bob", "ada@example.org", &[&group])
        .await
        .expect("the old email is free");
    let error = provisioned_user(&store, "cy", "cy", "ada.new@example.org", &[&group])
        .await
        .unwrap_err();
    assert_eq!(
        conflict(error),
        "a live subscription already holds one of these identifying values"
    );
}
