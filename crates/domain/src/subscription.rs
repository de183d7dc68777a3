//! Subscriptions: instances of a product, with their block instances and values.
//!
//! [`SubscriptionRecord`] is the generic, product-independent shape that storage loads and saves
//! whole. Typed domain models (see [`crate::models`]) convert to and from it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalogue::{Product, ProductType};
use crate::lifecycle::{Lifecycle, LifecycleError};
use crate::ports::IdSource;

/// The subscription row: who owns it, what it is, where it is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// Internal id (UUID v7).
    pub id: Uuid,
    /// The product it is an instance of.
    pub product_id: Uuid,
    /// The owning customer.
    pub customer_id: Uuid,
    /// Human description, searchable.
    pub description: String,
    /// Lifecycle state.
    pub lifecycle: Lifecycle,
    /// False while a process is working on the subscription.
    pub insync: bool,
    /// When it came into service.
    pub start_date: Option<DateTime<Utc>>,
    /// When it ended.
    pub end_date: Option<DateTime<Utc>>,
    /// Free-form operator note.
    pub note: Option<String>,
    /// Optimistic-concurrency version, incremented by every save.
    pub version: i64,
}

impl Subscription {
    /// Moves the subscription to `to` if the state machine allows it, recording the start date
    /// on first activation and the end date on termination.
    pub fn change_lifecycle(
        &mut self,
        to: Lifecycle,
        now: DateTime<Utc>,
    ) -> Result<(), LifecycleError> {
        self.lifecycle = self.lifecycle.transition(to)?;
        if to == Lifecycle::Active && self.start_date.is_none() {
            self.start_date = Some(now);
        }
        if to == Lifecycle::Terminated {
            self.end_date = Some(now);
        }
        Ok(())
    }
}

/// A reference from a block to another block instance, possibly owned by another subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BlockRef {
    /// The referenced block instance.
    pub instance_id: Uuid,
    /// The subscription that owns the referenced block instance.
    pub owner_subscription_id: Uuid,
}

/// One entry of a block's list-valued reference field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRelation {
    /// The field of the referring block it fills, e.g. `groups`.
    pub attr: String,
    /// Position within that field's list.
    pub position: i64,
    /// The referenced block instance.
    pub target: BlockRef,
}

/// An instance of a product block owned by a subscription: its values and its references.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockInstance {
    /// Internal id.
    pub id: Uuid,
    /// The product block's name, e.g. `UserBlock`.
    pub block: String,
    /// Optional label distinguishing instances of the same block.
    pub label: Option<String>,
    /// Values by resource type; a list-valued field holds several values in order.
    pub values: BTreeMap<String, Vec<String>>,
    /// References to other block instances, ordered by field and position.
    pub relations: Vec<BlockRelation>,
}

impl BlockInstance {
    /// An empty instance of `block`.
    pub fn new(id: Uuid, block: impl Into<String>) -> Self {
        Self {
            id,
            block: block.into(),
            label: None,
            values: BTreeMap::new(),
            relations: Vec::new(),
        }
    }

    /// The single value of `resource_type`, if set.
    pub fn value(&self, resource_type: &str) -> Option<&str> {
        self.values
            .get(resource_type)
            .and_then(|values| values.first())
            .map(String::as_str)
    }

    /// Sets `resource_type` to one value, or clears it for `None`.
    pub fn set_value(&mut self, resource_type: &str, value: Option<&str>) {
        match value {
            Some(value) => {
                self.values
                    .insert(resource_type.to_owned(), vec![value.to_owned()]);
            }
            None => {
                self.values.remove(resource_type);
            }
        }
    }

    /// The references filling `attr`, in order.
    pub fn references(&self, attr: &str) -> Vec<BlockRef> {
        let mut relations: Vec<&BlockRelation> = self
            .relations
            .iter()
            .filter(|relation| relation.attr == attr)
            .collect();
        relations.sort_by_key(|relation| relation.position);
        relations
            .into_iter()
            .map(|relation| relation.target)
            .collect()
    }

    /// Replaces the references filling `attr` with `targets`, in order.
    pub fn set_references(&mut self, attr: &str, targets: &[BlockRef]) {
        self.relations.retain(|relation| relation.attr != attr);
        self.relations.extend(
            targets
                .iter()
                .zip(0..)
                .map(|(target, position)| BlockRelation {
                    attr: attr.to_owned(),
                    position,
                    target: *target,
                }),
        );
        self.relations
            .sort_by(|a, b| (a.attr.as_str(), a.position).cmp(&(b.attr.as_str(), b.position)));
    }
}

/// A subscription with everything it owns, as storage loads and saves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    /// The subscription row.
    pub subscription: Subscription,
    /// The product, with its fixed inputs and blocks.
    pub product: Product,
    /// The block instances the subscription owns.
    pub blocks: Vec<BlockInstance>,
}

impl SubscriptionRecord {
    /// A new `initial`, out-of-sync subscription of `product` (version 1) with one empty
    /// instance of each root block of the product, in instance id order.
    pub fn initial(new: NewSubscription, product: Product, ids: &dyn IdSource) -> Self {
        let mut blocks: Vec<BlockInstance> = product
            .blocks
            .iter()
            .map(|block| BlockInstance::new(ids.new_id(), block.name.clone()))
            .collect();
        blocks.sort_by_key(|block| block.id);
        Self {
            subscription: Subscription {
                id: new.id,
                product_id: new.product_id,
                customer_id: new.customer_id,
                description: new.description,
                lifecycle: Lifecycle::Initial,
                insync: false,
                start_date: None,
                end_date: None,
                note: None,
                version: 1,
            },
            product,
            blocks,
        }
    }

    /// The first owned instance of `block`.
    pub fn block(&self, block: &str) -> Option<&BlockInstance> {
        self.blocks.iter().find(|instance| instance.block == block)
    }
}

/// What is needed to create a subscription: it starts `initial`, out of sync, with one empty
/// instance of each root block of its product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    /// Id to give the subscription.
    pub id: Uuid,
    /// The product to instantiate.
    pub product_id: Uuid,
    /// The owning customer.
    pub customer_id: Uuid,
    /// Initial description.
    pub description: String,
}

/// A subscription as listed: the row plus its product's name and type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionSummary {
    /// The subscription row.
    pub subscription: Subscription,
    /// The product's name.
    pub product_name: String,
    /// The product's type.
    pub product_type: ProductType,
}
