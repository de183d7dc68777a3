//! What the tests share: an active user group, a step log.

use cadre_domain::ProcessStep;
use cadre_products::models::UserGroup;
use cadre_store::SeaStore;
use chrono::Utc;
use uuid::Uuid;

/// An active user group with subscription id `id`, external id `name` lowercased and name
/// `name`.
pub async fn active_group_with_id(store: &SeaStore, id: Uuid, name: &str) -> UserGroup {
    cadre_products::testing::active_group(store, id, &name.to_lowercase(), name, &[], Utc::now())
        .await
        .unwrap()
}

/// An active user group named `name`.
pub async fn active_group(store: &SeaStore, name: &str) -> UserGroup {
    active_group_with_id(store, Uuid::now_v7(), name).await
}

/// `(name, status)` of every logged step.
pub fn log(steps: &[ProcessStep]) -> Vec<(String, String)> {
    steps
        .iter()
        .map(|step| (step.name.clone(), step.status.as_str().to_owned()))
        .collect()
}
