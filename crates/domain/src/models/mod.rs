//! What a typed domain model of a product is, and the helpers such models are built from.
//!
//! A product's crate (the built-in User and UserGroup in `cadre-products`, or a downstream
//! crate's own) declares one type per lifecycle family: an `*Inactive` model that accepts a
//! subscription in any lifecycle and lets every field be empty, and a full model that accepts
//! every lifecycle after `initial` ([`AFTER_INITIAL`]) and requires the identifying fields. Both
//! implement [`DomainModel`], converting to and from [`SubscriptionRecord`], so they load from a
//! subscription id and save back whole through any [`SubscriptionRepository`].

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
pub const AFTER_INITIAL: &[Lifecycle] = &[
    Lifecycle::Provisioning,
    Lifecycle::Active,
    Lifecycle::Disabled,
    Lifecycle::Migrating,
    Lifecycle::Terminated,
];

/// Takes the owned instance of `block` out of `record`, refusing a record without one.
pub fn take_block(record: &mut SubscriptionRecord, block: &str) -> Result<BlockInstance> {
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
pub fn parse_value<T>(
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
pub fn required<T>(value: Option<T>, block: &str, field: &str) -> Result<T> {
    value.ok_or_else(|| DomainError::invalid(format!("{block}.{field}"), "is required"))
}
