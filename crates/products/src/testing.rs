//! Test support (feature `testing`): the built-in workflows with one-page forms, and built-in
//! subscriptions made through the typed models as the workflows make them, for the tests and
//! benches of the layers above.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use cadre_domain::models::{self, DomainModel};
use cadre_domain::{
    BlockRef, DomainError, Email, ExternalId, Lifecycle, Name, NewSubscription, ProductType,
    Repositories, Result, SubscriptionRecord,
};
use std::sync::Arc;

use cadre_engine::standard::DEFAULT_CUSTOMER;
use cadre_engine::testing::OnePage;
use cadre_engine::{DefinitionError, Registry};

use crate::models::{
    User, UserGroup, UserGroupInactive, UserInactive, user_description, user_group_description,
};

/// An active, in-sync user group with subscription id `id`, external id `group_id`, name
/// `name` and `parents`, of the catalogue's first UserGroup product and the default customer,
/// activated at `now`.
pub async fn active_group(
    repositories: &(impl Repositories + ?Sized),
    id: Uuid,
    group_id: &str,
    name: &str,
    parents: &[BlockRef],
    now: DateTime<Utc>,
) -> Result<UserGroup> {
    let name = Name::parse(name)?;
    let description = user_group_description(&name);
    let record = new_subscription(repositories, ProductType::user_group(), id, description).await?;
    let mut group = UserGroupInactive::from_record(record)?;
    group.user_group.user_group_id = Some(ExternalId::parse(group_id)?);
    group.user_group.name = Some(name);
    group.user_group.parent_groups = parents.to_vec();
    let mut group = models::save(repositories, group.into_provisioning(now)?).await?;
    group
        .subscription
        .change_lifecycle(Lifecycle::Active, now)?;
    group.subscription.insync = true;
    models::save(repositories, group).await
}

/// An active, in-sync user with subscription id `id`, external id `user_id`, user name
/// `username` and `email`, in `groups`, of the catalogue's first User product and the default
/// customer, activated at `now`.
pub async fn active_user(
    repositories: &(impl Repositories + ?Sized),
    id: Uuid,
    user_id: &str,
    username: &str,
    email: &str,
    groups: &[&UserGroup],
    now: DateTime<Utc>,
) -> Result<User> {
    let username = Name::parse(username)?;
    let names: Vec<&Name> = groups.iter().map(|group| &group.user_group.name).collect();
    let record = new_subscription(repositories, ProductType::user(), id, String::new()).await?;
    let mut user = UserInactive::from_record(record)?;
    user.subscription.description = user_description(&username, &names, user.affiliation);
    user.user.user_id = Some(ExternalId::parse(user_id)?);
    user.user.username = Some(username);
    user.user.email = Some(Email::parse(email)?);
    user.user.groups = groups
        .iter()
        .map(|group| group.user_group.reference(group.subscription.id))
        .collect();
    let mut user = models::save(repositories, user.into_provisioning(now)?).await?;
    user.subscription.change_lifecycle(Lifecycle::Active, now)?;
    user.subscription.insync = true;
    models::save(repositories, user).await
}

/// A new `initial` subscription `id` of the catalogue's first product of `product_type`, for
/// the default customer.
async fn new_subscription(
    repositories: &(impl Repositories + ?Sized),
    product_type: ProductType,
    id: Uuid,
    description: String,
) -> Result<SubscriptionRecord> {
    let product = repositories
        .list_products()
        .await?
        .into_iter()
        .find(|product| product.product_type == product_type)
        .ok_or_else(|| DomainError::NotFound {
            kind: "product",
            id: product_type.to_string(),
        })?;
    let customer = repositories
        .customer_by_name(&Name::parse(DEFAULT_CUSTOMER)?)
        .await?;
    repositories
        .create_subscription(NewSubscription {
            id,
            product_id: product.id,
            customer_id: customer.id,
            description,
        })
        .await
}

/// Every built-in workflow, each taking its whole input as one page (`OnePage`): for tests and
/// benches of the steps, whose forms are tested on their own.
pub fn registry_with_one_page_forms() -> std::result::Result<Registry, DefinitionError> {
    let mut registry = Registry::new();
    for mut workflow in crate::workflows() {
        workflow.initial_form = Arc::new(OnePage { required: None });
        registry.register(workflow)?;
    }
    Ok(registry)
}
