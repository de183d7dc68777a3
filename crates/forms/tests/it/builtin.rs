//! Snapshots of the built-in forms and of their error bodies, on the demo catalogue.

use cadre_domain::models::{self, DomainModel, UserGroupInactive};
use cadre_domain::{ExternalId, Lifecycle, Name, NewSubscription, SubscriptionRepository};
use cadre_forms::{SubmitError, builtin};
use cadre_migrations::demo::{
    DEFAULT_CUSTOMER_ID, USER_GROUP_PRODUCT_ID, USER_INTERNAL_PRODUCT_ID,
};
use cadre_store::SeaStore;
use cadre_store::testing::scratch_store;
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// An active group with a fixed id, so that snapshots are stable.
async fn group(store: &SeaStore, id: u128, name: &str) -> Uuid {
    let id = Uuid::from_u128(id);
    let record = store
        .create_subscription(NewSubscription {
            id,
            product_id: USER_GROUP_PRODUCT_ID,
            customer_id: DEFAULT_CUSTOMER_ID,
            description: format!("User Group {name}"),
        })
        .await
        .unwrap();
    let mut group = UserGroupInactive::from_record(record).unwrap();
    group.user_group.user_group_id = Some(ExternalId::parse(&name.to_lowercase()).unwrap());
    group.user_group.name = Some(Name::parse(name).unwrap());
    let now = chrono::Utc::now();
    let mut group = models::save(store, group.into_provisioning(now).unwrap())
        .await
        .unwrap();
    group
        .subscription
        .change_lifecycle(Lifecycle::Active, now)
        .unwrap();
    models::save(store, group).await.unwrap();
    id
}

/// The schema of every page of `form`, submitting `answers` one by one.
async fn pages(store: &SeaStore, form: &str, answers: &[Value]) -> Vec<Value> {
    let form = builtin::form(form).unwrap();
    let mut schemas = Vec::new();
    for count in 0..=answers.len() {
        match form.submit(store, &Map::new(), &answers[..count]).await {
            Err(SubmitError::NotComplete(body)) => schemas.push(body.form),
            Ok(_) => break,
            Err(other) => panic!("{other}"),
        }
    }
    schemas
}

#[tokio::test]
async fn built_in_form_schemas() {
    let store = scratch_store().await;
    let staff = group(&store, 0x51, "Staff").await;
    group(&store, 0x52, "Admins").await;
    let subscription = json!({"subscription_id": staff});
    insta::assert_json_snapshot!(
        "create_user",
        pages(
            &store,
            "create_user",
            &[json!({"product": USER_INTERNAL_PRODUCT_ID})]
        )
        .await
    );
    insta::assert_json_snapshot!(
        "create_user_group",
        pages(
            &store,
            "create_user_group",
            &[json!({"product": USER_GROUP_PRODUCT_ID})]
        )
        .await
    );
    insta::assert_json_snapshot!(
        "modify_user_group",
        pages(
            &store,
            "modify_user_group",
            std::slice::from_ref(&subscription)
        )
        .await
    );
    insta::assert_json_snapshot!(
        "modify_user",
        pages(&store, "modify_user", std::slice::from_ref(&subscription)).await
    );
    insta::assert_json_snapshot!(
        "terminate_user",
        pages(
            &store,
            "terminate_user",
            std::slice::from_ref(&subscription)
        )
        .await
    );
    insta::assert_json_snapshot!(
        "terminate_user_group",
        pages(
            &store,
            "terminate_user_group",
            std::slice::from_ref(&subscription)
        )
        .await
    );
    insta::assert_json_snapshot!("validate_user", pages(&store, "validate_user", &[]).await);
    assert!(builtin::form("no_such_workflow").is_none());
    for name in builtin::NAMES {
        assert!(builtin::form(name).is_some(), "{name}");
    }
}

#[tokio::test]
async fn error_bodies() {
    let store = scratch_store().await;
    let staff = group(&store, 0x51, "Staff").await;
    let form = builtin::form("create_user").unwrap();
    let answers = [
        json!({"product": USER_INTERNAL_PRODUCT_ID}),
        json!({"user_id": ".x", "username": "  ", "email": "nope", "user_group_ids": [staff, staff], "age": 3}),
    ];
    let Err(SubmitError::Invalid(body)) = form.submit(&*store, &Map::new(), &answers).await else {
        panic!("invalid");
    };
    insta::assert_json_snapshot!("create_user_invalid", body);
    let Err(SubmitError::NotComplete(body)) =
        form.submit(&*store, &Map::new(), &answers[..0]).await
    else {
        panic!("not complete");
    };
    insta::assert_json_snapshot!("create_user_not_complete", body);
    let too_many = form
        .submit(
            &*store,
            &Map::new(),
            &[answers[0].clone(), answers[1].clone(), json!({})],
        )
        .await
        .unwrap_err();
    assert_eq!(
        too_many,
        SubmitError::TooManyPages {
            expected: 2,
            submitted: 3
        }
    );
}

/// The group choices of a page's schema.
async fn offered_groups(form: &cadre_forms::Form, store: &SeaStore) -> Value {
    let answers = [json!({"product": USER_INTERNAL_PRODUCT_ID})];
    let Err(SubmitError::NotComplete(body)) = form.submit(store, &Map::new(), &answers).await
    else {
        panic!("the user page");
    };
    body.form["$defs"]["UserGroupEnum"]["enum"].clone()
}

#[tokio::test]
async fn group_choices_are_reused_for_a_second_at_most() {
    let store = scratch_store().await;
    let staff = group(&store, 0x51, "Staff").await;
    let form = builtin::form("create_user").unwrap();
    assert_eq!(offered_groups(&form, &store).await, json!([staff]));

    let admins = group(&store, 0x52, "Admins").await;
    assert_eq!(
        offered_groups(&form, &store).await,
        json!([staff]),
        "reused within the second"
    );
    let fresh = builtin::form("create_user").unwrap();
    assert_eq!(offered_groups(&fresh, &store).await, json!([staff, admins]));
    tokio::time::sleep(builtin::CHOICES_TTL + std::time::Duration::from_millis(100)).await;
    assert_eq!(
        offered_groups(&form, &store).await,
        json!([staff, admins]),
        "looked up again"
    );
}
