//! Test workflows, forms and a manual clock.

use std::sync::Arc;

use cadre_domain::{
    Clock, Lifecycle, NewSubscription, ProcessStep, Store, SubscriptionRecord,
    SubscriptionRepository, Target,
};
pub use cadre_engine::testing::{ManualClock, OnePage, Touch, TouchThenFail};
use cadre_engine::{Engine, EngineConfig, Registry, Workflow, done, init, step};
use cadre_migrations::demo::{DEFAULT_CUSTOMER_ID, USER_GROUP_PRODUCT_ID};
use cadre_store::SeaStore;
use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

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

pub fn engine(store: &SeaStore, workflows: Vec<Workflow>, clock: Arc<dyn Clock>) -> Engine {
    let mut registry = Registry::new();
    for workflow in workflows {
        registry.register(workflow).unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(store.clone());
    Engine::new(store, registry, clock, EngineConfig::default())
}

/// An active subscription (of the demo catalogue's user group product; the engine knows no
/// product, so its values stay empty) for test workflows to work on.
pub async fn active_group(store: &SeaStore, group_id: &str) -> SubscriptionRecord {
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
