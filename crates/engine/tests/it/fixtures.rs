//! Test workflows, forms, a manual clock, and the store they run on: a `MemoryStore` with the
//! one product the tests need (the engine knows no product; the real store's rules are the
//! domain's `MemoryStore`'s, checked against it by `cadre-store`'s contract tests).

use std::sync::Arc;

use cadre_domain::testing::MemoryStore;
use cadre_domain::{
    Clock, Customer, CustomerRepository, Lifecycle, Name, NewSubscription, ProcessStep, Product,
    ProductBlock, ProductStatus, ProductType, ResourceType, Store, SubscriptionRecord,
    SubscriptionRepository, Target,
};
pub use cadre_engine::testing::{ManualClock, OnePage, Touch, TouchThenFail};
use cadre_engine::{Engine, EngineConfig, Registry, Workflow, done, init, step};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

/// The user group product of the test catalogue.
pub const USER_GROUP_PRODUCT_ID: Uuid = Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0200);
/// The default customer, whom new subscriptions belong to.
pub const DEFAULT_CUSTOMER_ID: Uuid = Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0001);

fn catalogue_created_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap()
}

/// A store holding a catalogue of one product, `User Group` (a `UserGroupBlock` with a unique
/// `user_group_id`), and the default customer.
pub async fn store() -> MemoryStore {
    let block = ProductBlock {
        id: Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0100),
        name: "UserGroupBlock".to_owned(),
        description: "A group of users".to_owned(),
        tag: "UGB".to_owned(),
        status: ProductStatus::Active,
        resource_types: vec![ResourceType {
            id: Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0300),
            resource_type: "user_group_id".to_owned(),
            description: "External id of the group".to_owned(),
            unique: true,
        }],
        depends_on: vec!["UserGroupBlock".to_owned()],
        created_at: catalogue_created_at(),
    };
    let product = Product {
        id: USER_GROUP_PRODUCT_ID,
        name: "User Group".to_owned(),
        description: "user group administration".to_owned(),
        product_type: ProductType::user_group(),
        tag: "GROUP".to_owned(),
        status: ProductStatus::Active,
        fixed_inputs: Vec::new(),
        blocks: vec![block],
        created_at: catalogue_created_at(),
        end_date: None,
    };
    let store = MemoryStore::new(vec![product], Vec::new());
    store
        .create_customer(&Customer {
            id: DEFAULT_CUSTOMER_ID,
            name: Name::parse(cadre_engine::standard::DEFAULT_CUSTOMER).unwrap(),
            created_at: catalogue_created_at(),
        })
        .await
        .unwrap();
    store
}

/// A system workflow over the subscription named in its form.
pub fn workflow(name: &str, steps: cadre_engine::StepList) -> Workflow {
    Workflow {
        name: name.to_owned(),
        description: format!("test workflow {name}"),
        target: Target::System,
        product_types: Vec::new(),
        usable_when: Vec::new(),
        version: 1,
        initial_form: Arc::new(OnePage { required: None }),
        steps,
    }
}

/// `init >> touch a >> touch b >> done`.
pub fn touch_twice() -> Workflow {
    workflow(
        "touch_twice",
        init()
            >> step("touch_a", "Touch A", Touch("a"))
            >> step("touch_b", "Touch B", Touch("b"))
            >> done(),
    )
}

pub fn engine(store: &MemoryStore, workflows: Vec<Workflow>, clock: Arc<dyn Clock>) -> Engine {
    let mut registry = Registry::new();
    for workflow in workflows {
        registry.register(workflow).unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(store.clone());
    Engine::new(store, registry, clock, EngineConfig::default())
}

/// An active subscription (of the test catalogue's user group product; the engine knows no
/// product, so its values stay empty) for test workflows to work on.
pub async fn active_group(store: &MemoryStore, group_id: &str) -> SubscriptionRecord {
    let mut record = store
        .create_subscription(NewSubscription {
            id: Uuid::now_v7(),
            product_id: USER_GROUP_PRODUCT_ID,
            customer_id: DEFAULT_CUSTOMER_ID,
            description: format!("User Group {group_id}"),
        })
        .await
        .unwrap();
    let now = Utc::now();
    for lifecycle in [Lifecycle::Provisioning, Lifecycle::Active] {
        record
            .subscription
            .change_lifecycle(lifecycle, now)
            .unwrap();
        record.subscription.insync = true;
        record = store.save_subscription(&record).await.unwrap();
    }
    record
}

pub fn page(subscription_id: Uuid) -> Vec<Value> {
    vec![json!({ "subscription_id": subscription_id })]
}

/// `(name, status)` of every logged step.
pub fn log(steps: &[ProcessStep]) -> Vec<(String, String)> {
    steps
        .iter()
        .map(|step| (step.name.clone(), step.status.as_str().to_owned()))
        .collect()
}

pub fn expected(rows: &[(&str, &str)]) -> Vec<(String, String)> {
    rows.iter()
        .map(|(name, status)| ((*name).to_owned(), (*status).to_owned()))
        .collect()
}
