//! Snapshots of the built-in forms and of their error bodies, on the demo catalogue.

use std::sync::Arc;

use cadre_domain::models::DomainModel;
use cadre_domain::{FormError, InputForm, SubscriptionRepository};
use cadre_migrations::demo::{USER_GROUP_PRODUCT_ID, USER_INTERNAL_PRODUCT_ID};
use cadre_products::models::UserGroup;
use cadre_store::SeaStore;
use cadre_store::testing::scratch_store;
use chrono::Utc;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::fixtures::active_group_with_id;

/// An active group with a fixed id, so that snapshots are stable.
async fn group(store: &SeaStore, id: u128, name: &str) -> Uuid {
    let id = Uuid::from_u128(id);
    active_group_with_id(store, id, name).await;
    id
}

/// The initial form of built-in workflow `workflow`.
fn initial_form(workflow: &str) -> Arc<dyn InputForm> {
    let registry = cadre_products::registry().unwrap();
    registry.get(workflow).unwrap().initial_form.clone()
}

/// The schema of every page of `form`, submitting `answers` one by one.
async fn pages(store: &SeaStore, form: &str, answers: &[Value]) -> Vec<Value> {
    let form = initial_form(form);
    let mut schemas = Vec::new();
    for count in 0..=answers.len() {
        match form.submit(store, &Map::new(), &answers[..count]).await {
            Err(FormError::NotComplete(body)) => schemas.push(body.form),
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
    let admins = group(&store, 0x52, "Admins").await;
    let subscription = json!({"subscription_id": staff});
    let admins = UserGroup::from_record(store.load_subscription(admins).await.unwrap()).unwrap();
    let ada = Uuid::from_u128(0x61);
    cadre_products::testing::active_user(
        &*store,
        ada,
        "ada",
        "ada",
        "ada@example.org",
        &[&admins],
        Utc::now(),
    )
    .await
    .unwrap();
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
        pages(&store, "modify_user", &[json!({"subscription_id": ada})]).await
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
    insta::assert_json_snapshot!(
        "disable_user",
        pages(&store, "disable_user", std::slice::from_ref(&subscription)).await
    );
    insta::assert_json_snapshot!(
        "enable_user",
        pages(&store, "enable_user", std::slice::from_ref(&subscription)).await
    );
}

/// orchestrator-core's convention: a create workflow's form starts by asking for the product,
/// every other built-in workflow's for the subscription.
#[tokio::test]
async fn every_workflow_form_starts_with_its_product_or_subscription() {
    let store = scratch_store().await;
    for workflow in cadre_products::workflows() {
        let Err(FormError::NotComplete(body)) = workflow
            .initial_form
            .submit(&*store, &Map::new(), &[])
            .await
        else {
            panic!(
                "{}: an empty submission asks for the first page",
                workflow.name
            );
        };
        let first_field = if workflow.target == cadre_domain::Target::Create {
            "product"
        } else {
            "subscription_id"
        };
        assert!(
            body.form["properties"].get(first_field).is_some(),
            "{}: {}",
            workflow.name,
            body.form
        );
    }
}

#[tokio::test]
async fn error_bodies() {
    let store = scratch_store().await;
    let staff = group(&store, 0x51, "Staff").await;
    let form = initial_form("create_user");
    let answers = [
        json!({"product": USER_INTERNAL_PRODUCT_ID}),
        json!({"user_id": ".x", "username": "  ", "email": "nope", "user_group_ids": [staff, staff], "age": 3}),
    ];
    let Err(FormError::Invalid(body)) = form.submit(&*store, &Map::new(), &answers).await else {
        panic!("invalid");
    };
    insta::assert_json_snapshot!("create_user_invalid", body);
    let Err(FormError::NotComplete(body)) = form.submit(&*store, &Map::new(), &answers[..0]).await
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
        FormError::TooManyPages {
            expected: 2,
            submitted: 3
        }
    );
}

/// The group choices of a page's schema.
async fn offered_groups(form: &Arc<dyn InputForm>, store: &SeaStore) -> Value {
    let answers = [json!({"product": USER_INTERNAL_PRODUCT_ID})];
    let Err(FormError::NotComplete(body)) = form.submit(store, &Map::new(), &answers).await else {
        panic!("the user page");
    };
    body.form["$defs"]["UserGroupEnum"]["enum"].clone()
}

#[tokio::test]
async fn group_choices_are_reused_for_a_second_at_most() {
    let store = scratch_store().await;
    let staff = group(&store, 0x51, "Staff").await;
    let form = initial_form("create_user");
    assert_eq!(offered_groups(&form, &store).await, json!([staff]));

    let admins = group(&store, 0x52, "Admins").await;
    assert_eq!(
        offered_groups(&form, &store).await,
        json!([staff]),
        "reused within the second"
    );
    let fresh = initial_form("create_user");
    assert_eq!(offered_groups(&fresh, &store).await, json!([staff, admins]));
    tokio::time::sleep(cadre_forms::standard::CHOICES_TTL + std::time::Duration::from_millis(100))
        .await;
    assert_eq!(
        offered_groups(&form, &store).await,
        json!([staff, admins]),
        "looked up again"
    );
}
