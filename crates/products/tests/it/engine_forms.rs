//! Starting the built-in workflows through their real forms: the pydantic-forms page protocol.

use std::sync::Arc;

use cadre_domain::models::DomainModel;
use cadre_domain::{Process, ProcessStatus, Store, SubscriptionRepository, SystemClock};
use cadre_engine::{Engine, EngineConfig, EngineError, FormError};
use cadre_migrations::demo::{USER_GROUP_PRODUCT_ID, USER_INTERNAL_PRODUCT_ID};
use cadre_store::SeaStore;
use cadre_store::testing::scratch_store;
use serde_json::json;

use crate::fixtures::active_group;

/// An engine over `store` with the built-in workflows and their real forms.
fn engine(store: &SeaStore) -> Engine {
    let shared: Arc<dyn Store> = Arc::new(store.clone());
    Engine::new(
        shared,
        cadre_products::registry().unwrap(),
        Arc::new(SystemClock),
        EngineConfig::default(),
    )
}

/// Starts `workflow` with `pages`, runs it, and returns it once it completed.
async fn completed(engine: &Engine, workflow: &str, pages: &[serde_json::Value]) -> Process {
    let process = engine.start(workflow, pages, "alice").await.unwrap();
    engine.run_until_idle().await.unwrap();
    let process = engine.store().process(process.id).await.unwrap();
    assert_eq!(
        process.status,
        ProcessStatus::Completed,
        "{workflow}: {:?}",
        process.failed_reason
    );
    process
}

#[tokio::test]
async fn create_user_walks_the_product_page_then_the_user_page_with_the_group_selector() {
    let store = scratch_store().await;
    let staff = active_group(&store, "staff").await;
    let engine = engine(&store);

    let Err(EngineError::Form(FormError::NotComplete(first))) =
        engine.start("create_user", &[], "alice").await
    else {
        panic!("an empty submission asks for the first page");
    };
    assert_eq!(first.status, 510);
    let products = &first.form["$defs"]["ProductChoice"];
    assert_eq!(
        products["options"][USER_INTERNAL_PRODUCT_ID.to_string()],
        json!("User internal")
    );
    assert!(
        products["options"]
            .get(USER_GROUP_PRODUCT_ID.to_string())
            .is_none(),
        "only User products"
    );
    assert_eq!(
        first.form["properties"]["product"]["format"],
        json!("productId")
    );

    let product = json!({"product": USER_INTERNAL_PRODUCT_ID});
    let Err(EngineError::Form(FormError::NotComplete(second))) = engine
        .start("create_user", std::slice::from_ref(&product), "alice")
        .await
    else {
        panic!("the product page leads to the user page");
    };
    let groups = &second.form["$defs"]["UserGroupEnum"];
    assert_eq!(groups["enum"], json!([staff.subscription.id]));
    assert_eq!(
        groups["options"][staff.subscription.id.to_string()],
        json!("User Group staff")
    );
    // Any number of groups, each once; none for a user that joins groups later.
    let group_ids = &second.form["properties"]["user_group_ids"];
    assert_eq!(group_ids["default"], json!([]));
    assert_eq!(group_ids["uniqueItems"], json!(true));
    assert!(group_ids.get("minItems").is_none(), "{group_ids}");

    let staff_id = staff.subscription.id;
    let bad = json!({"user_id": ".ada", "username": "ada", "email": "not-an-email",
                     "user_group_ids": [staff_id, staff_id], "department": "Sa\u{7}les",
                     "manager": "m".repeat(256), "shoe": 44});
    let Err(EngineError::Form(FormError::Invalid(body))) = engine
        .start("create_user", &[product.clone(), bad], "alice")
        .await
    else {
        panic!("bad input is refused");
    };
    assert_eq!(body.page, 1);
    let kinds: Vec<(&str, &str)> = body
        .validation_errors
        .iter()
        .map(|error| {
            (
                error.loc[0].as_str().unwrap_or_default(),
                error.kind.as_str(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("user_id", "string_pattern_mismatch"),
            ("email", "value_error"),
            ("user_group_ids", "unique_list"),
            ("department", "value_error"),
            ("manager", "string_too_long"),
            ("shoe", "extra_forbidden")
        ]
    );

    let good = json!({"user_id": "ada", "username": "ada", "email": "ada@example.org",
                      "user_group_ids": [staff.subscription.id], "department": "Ops",
                      "manager": "émile"});
    let extra_page = engine
        .start(
            "create_user",
            &[product.clone(), good.clone(), json!({})],
            "alice",
        )
        .await
        .unwrap_err();
    assert_eq!(
        extra_page,
        EngineError::Form(FormError::TooManyPages {
            expected: 2,
            submitted: 3
        })
    );

    let process = completed(&engine, "create_user", &[product, good]).await;
    assert_eq!(
        process.state["user_group_ids"],
        json!([staff.subscription.id])
    );
    let id = process.state["subscription_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let user =
        cadre_products::models::User::from_record(store.load_subscription(id).await.unwrap())
            .unwrap();
    assert_eq!(user.user.employment.department.as_deref(), Some("Ops"));
    assert_eq!(user.user.employment.manager.as_deref(), Some("émile"));
}

/// orchestrator-core's modify forms show what is there: the second page of `modify_user` is
/// filled with the user's values, so that changing one field is sending one field; the user's
/// id is shown read-only and cannot be changed through the form.
#[tokio::test]
async fn modify_user_is_filled_with_the_user_as_it_is_and_changes_only_what_is_sent() {
    let store = scratch_store().await;
    let staff = active_group(&store, "staff").await;
    let ada = cadre_products::testing::active_user(
        &*store,
        uuid::Uuid::now_v7(),
        "ada",
        "ada",
        "ada@example.org",
        &[&staff],
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let engine = engine(&store);
    let chosen = json!({"subscription_id": ada.subscription.id});
    let Err(EngineError::Form(FormError::NotComplete(page))) = engine
        .start("modify_user", std::slice::from_ref(&chosen), "alice")
        .await
    else {
        panic!("the subscription page leads to the modify page");
    };
    let properties = &page.form["properties"];
    assert_eq!(properties["user_id"]["const"], json!("ada"));
    assert_eq!(properties["username"]["default"], json!("ada"));
    assert_eq!(properties["email"]["default"], json!("ada@example.org"));
    assert_eq!(
        properties["user_group_ids"]["default"],
        json!([staff.subscription.id])
    );

    let Err(EngineError::Form(FormError::Invalid(body))) = engine
        .start(
            "modify_user",
            &[chosen.clone(), json!({"user_id": "eve"})],
            "alice",
        )
        .await
    else {
        panic!("a read-only value cannot be changed");
    };
    assert_eq!(body.validation_errors[0].kind, "literal_error");

    completed(
        &engine,
        "modify_user",
        &[chosen, json!({"user_id": "ada", "firstname": "Ada"})],
    )
    .await;
    let user = cadre_products::models::User::from_record(
        store.load_subscription(ada.subscription.id).await.unwrap(),
    )
    .unwrap();
    assert_eq!(user.user.firstname.unwrap().as_str(), "Ada");
    assert_eq!(
        (user.user.username.as_str(), user.user.email.as_str()),
        ("ada", "ada@example.org"),
        "what was not sent stays as it was"
    );
    assert_eq!(user.user.groups, ada.user.groups);
}
