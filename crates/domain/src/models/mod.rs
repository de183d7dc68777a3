//! Typed domain models of the demo products, one type per lifecycle family.
//!
//! `*Inactive` models accept a subscription in any lifecycle and let every field be empty; the
//! full models (`User`, `UserGroup`) accept every lifecycle after `initial` and require their
//! identifying fields. Both convert to and from [`SubscriptionRecord`], so they load from a
//! subscription id and save back whole through any [`SubscriptionRepository`].

mod user;
mod user_group;

pub use user::{Affiliation, User, UserBlock, UserBlockInactive, UserInactive, user_description};
pub use user_group::{
    UserGroup, UserGroupBlock, UserGroupBlockInactive, UserGroupInactive, user_group_description,
};

use uuid::Uuid;

use crate::catalogue::ProductType;
use crate::error::{DomainError, Result};
use crate::lifecycle::Lifecycle;
use crate::ports::SubscriptionRepository;
use crate::subscription::{BlockInstance, SubscriptionRecord};

/// A typed view of a subscription of one product type.
pub trait DomainModel: Sized {
    /// The product type whose subscriptions this model represents.
    const PRODUCT_TYPE: &'static str;
    /// The lifecycles in which a subscription can be viewed as this model.
    const LIFECYCLES: &'static [Lifecycle];

    /// Builds the model from a stored record, validating every field.
    fn from_record(record: SubscriptionRecord) -> Result<Self>;
    /// The record to store.
    fn into_record(self) -> SubscriptionRecord;
}

/// Loads subscription `id` as model `M`, refusing another product type or a lifecycle `M` does
/// not cover.
pub async fn from_subscription<M: DomainModel>(
    repository: &(impl SubscriptionRepository + ?Sized),
    id: Uuid,
) -> Result<M> {
    let record = repository.load_subscription(id).await?;
    check_fits::<M>(&record)?;
    M::from_record(record)
}

/// The typed domain model of `record` as JSON, as the API shows it: the `*Inactive` model of its
/// product type (which covers every lifecycle), or the generic record for a product type
/// without a typed model.
pub fn to_json(record: SubscriptionRecord) -> Result<serde_json::Value> {
    fn render<M: DomainModel + serde::Serialize>(
        record: SubscriptionRecord,
    ) -> Result<serde_json::Value> {
        let model = M::from_record(record)?;
        serde_json::to_value(model)
            .map_err(|error| DomainError::invalid("subscription", error.to_string()))
    }
    match record.product.product_type.as_str() {
        ProductType::USER => render::<UserInactive>(record),
        ProductType::USER_GROUP => render::<UserGroupInactive>(record),
        _ => serde_json::to_value(record)
            .map_err(|error| DomainError::invalid("subscription", error.to_string())),
    }
}

/// Whether subscription `id` is a User in the `active` lifecycle: the test for a person who may
/// act (hold a token for themselves, belong to a workflow group). A missing id is not one.
pub async fn is_active_user(
    repository: &(impl SubscriptionRepository + ?Sized),
    id: Uuid,
) -> Result<bool> {
    match repository.load_subscription(id).await {
        Ok(record) => Ok(record.product.product_type.as_str() == ProductType::USER
            && record.subscription.lifecycle == Lifecycle::Active),
        Err(DomainError::NotFound { .. }) => Ok(false),
        Err(error) => Err(error),
    }
}

/// Saves `model` whole and returns it as stored.
pub async fn save<M: DomainModel>(
    repository: &(impl SubscriptionRepository + ?Sized),
    model: M,
) -> Result<M> {
    let stored = repository.save_subscription(&model.into_record()).await?;
    M::from_record(stored)
}

fn check_fits<M: DomainModel>(record: &SubscriptionRecord) -> Result<()> {
    let product_type = &record.product.product_type;
    if product_type != &ProductType::new(M::PRODUCT_TYPE) {
        return Err(DomainError::invalid(
            "subscription",
            format!(
                "{} is a {product_type} subscription, not a {}",
                record.subscription.id,
                M::PRODUCT_TYPE
            ),
        ));
    }
    let lifecycle = record.subscription.lifecycle;
    if !M::LIFECYCLES.contains(&lifecycle) {
        return Err(DomainError::invalid(
            "subscription",
            format!(
                "{} is {lifecycle}; this model covers {}",
                record.subscription.id,
                M::LIFECYCLES
                    .iter()
                    .map(|l| l.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(())
}

/// Lifecycles in which the full models apply.
const AFTER_INITIAL: &[Lifecycle] = &[
    Lifecycle::Provisioning,
    Lifecycle::Active,
    Lifecycle::Disabled,
    Lifecycle::Migrating,
    Lifecycle::Terminated,
];

/// Takes the owned instance of `block` out of `record`, refusing a record without one.
fn take_block(record: &mut SubscriptionRecord, block: &str) -> Result<BlockInstance> {
    let index = record
        .blocks
        .iter()
        .position(|instance| instance.block == block)
        .ok_or_else(|| {
            DomainError::invalid(
                "subscription",
                format!("{} has no {block}", record.subscription.id),
            )
        })?;
    Ok(record.blocks.swap_remove(index))
}

/// Parses the optional single value of `resource_type` with `parse`, naming the field on error.
fn parse_value<T>(
    instance: &BlockInstance,
    resource_type: &str,
    parse: impl FnOnce(&str) -> Result<T>,
) -> Result<Option<T>> {
    instance
        .value(resource_type)
        .map(|raw| {
            parse(raw).map_err(|error| {
                DomainError::invalid(
                    format!("{}.{resource_type}", instance.block),
                    error.to_string(),
                )
            })
        })
        .transpose()
}

/// Unwraps a field that the full model requires.
fn required<T>(value: Option<T>, block: &str, field: &str) -> Result<T> {
    value.ok_or_else(|| DomainError::invalid(format!("{block}.{field}"), "is required"))
}
