//! What the tests share: an active user group made through the typed models, a step log.

use cadre_domain::models::{self, DomainModel};
use cadre_domain::{
    ExternalId, Lifecycle, Name, NewSubscription, ProcessStep, SubscriptionRepository,
};
use cadre_migrations::demo::{DEFAULT_CUSTOMER_ID, USER_GROUP_PRODUCT_ID};
use cadre_products::models::{UserGroup, UserGroupInactive};
use cadre_store::SeaStore;
use chrono::Utc;
use uuid::Uuid;

/// An active user group with subscription id `id`, external id `name` lowercased and name
/// `name`, created through the typed models.
pub async fn active_group_with_id(store: &SeaStore, id: Uuid, name: &str) -> UserGroup {
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
    let now = Utc::now();
    let mut group = models::save(store, group.into_provisioning(now).unwrap())
        .await
        .unwrap();
    group
        .subscription
        .change_lifecycle(Lifecycle::Active, now)
        .unwrap();
    group.subscription.insync = true;
    models::save(store, group).await.unwrap()
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
