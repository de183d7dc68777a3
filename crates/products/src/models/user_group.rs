//! The UserGroup product: a group of people, possibly nested in parent groups.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use cadre_domain::catalogue::{Product, ProductType};
use cadre_domain::error::{DomainError, Result};
use cadre_domain::ids::{ExternalId, Name};
use cadre_domain::lifecycle::Lifecycle;
use cadre_domain::models::{AFTER_INITIAL, DomainModel, parse_value, required, take_block};
use cadre_domain::subscription::{BlockInstance, BlockRef, Subscription, SubscriptionRecord};

/// The name of the UserGroup root block.
pub const BLOCK: &str = "UserGroupBlock";
const USER_GROUP_ID: &str = "user_group_id";
const USER_GROUP_NAME: &str = "user_group_name";
const DISCOVERABLE: &str = "discoverable";
const TERMS: &str = "terms";
const EXTERNAL_ID: &str = "external_id";
const PARENT_GROUPS: &str = "parent_groups";

/// A UserGroup subscription's description: "User Group <name>".
pub fn user_group_description(name: &Name) -> String {
    format!("User Group {name}")
}

/// The UserGroup block with every field optional (lifecycle `initial`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserGroupBlockInactive {
    /// The block instance id; other subscriptions reference the group through it.
    pub instance_id: Uuid,
    /// The external group id.
    pub user_group_id: Option<ExternalId>,
    /// The group's name.
    pub name: Option<Name>,
    /// Groups this group is nested in.
    pub parent_groups: Vec<BlockRef>,
    /// Whether users may find and join the group themselves.
    pub discoverable: bool,
    /// Terms a joiner must accept, if any.
    pub terms: Option<String>,
    /// The group's id at the identity provider that feeds cadre (SCIM's `externalId`).
    pub external_id: Option<String>,
}

/// The UserGroup block of a provisioned group: id and name are required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserGroupBlock {
    /// The block instance id; other subscriptions reference the group through it.
    pub instance_id: Uuid,
    /// The external group id.
    pub user_group_id: ExternalId,
    /// The group's name.
    pub name: Name,
    /// Groups this group is nested in.
    pub parent_groups: Vec<BlockRef>,
    /// Whether users may find and join the group themselves.
    pub discoverable: bool,
    /// Terms a joiner must accept, if any.
    pub terms: Option<String>,
    /// The group's id at the identity provider that feeds cadre (SCIM's `externalId`).
    pub external_id: Option<String>,
}

/// A UserGroup subscription in any lifecycle, fields possibly empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserGroupInactive {
    /// The subscription row.
    pub subscription: Subscription,
    /// The product.
    pub product: Product,
    /// The group block.
    pub user_group: UserGroupBlockInactive,
}

/// A UserGroup subscription after `initial`: the group is identified and named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserGroup {
    /// The subscription row.
    pub subscription: Subscription,
    /// The product.
    pub product: Product,
    /// The group block.
    pub user_group: UserGroupBlock,
}

impl UserGroupBlock {
    /// A reference to this block, owned by `owner`, for use in other blocks.
    pub fn reference(&self, owner: Uuid) -> BlockRef {
        BlockRef {
            instance_id: self.instance_id,
            owner_subscription_id: owner,
        }
    }
}

impl UserGroupInactive {
    /// Validates the required fields and moves the subscription to `provisioning`.
    pub fn into_provisioning(self, now: DateTime<Utc>) -> Result<UserGroup> {
        let mut group = UserGroup::try_from(self)?;
        group
            .subscription
            .change_lifecycle(Lifecycle::Provisioning, now)?;
        Ok(group)
    }
}

impl TryFrom<UserGroupInactive> for UserGroup {
    type Error = DomainError;

    fn try_from(inactive: UserGroupInactive) -> Result<Self> {
        let block = inactive.user_group;
        Ok(UserGroup {
            subscription: inactive.subscription,
            product: inactive.product,
            user_group: UserGroupBlock {
                instance_id: block.instance_id,
                user_group_id: required(block.user_group_id, BLOCK, USER_GROUP_ID)?,
                name: required(block.name, BLOCK, USER_GROUP_NAME)?,
                parent_groups: block.parent_groups,
                discoverable: block.discoverable,
                terms: block.terms,
                external_id: block.external_id,
            },
        })
    }
}

impl From<UserGroup> for UserGroupInactive {
    fn from(group: UserGroup) -> Self {
        let block = group.user_group;
        UserGroupInactive {
            subscription: group.subscription,
            product: group.product,
            user_group: UserGroupBlockInactive {
                instance_id: block.instance_id,
                user_group_id: Some(block.user_group_id),
                name: Some(block.name),
                parent_groups: block.parent_groups,
                discoverable: block.discoverable,
                terms: block.terms,
                external_id: block.external_id,
            },
        }
    }
}

impl DomainModel for UserGroupInactive {
    const PRODUCT_TYPE: &'static str = ProductType::USER_GROUP;
    const LIFECYCLES: &'static [Lifecycle] = &Lifecycle::ALL;

    fn from_record(mut record: SubscriptionRecord) -> Result<Self> {
        let instance = take_block(&mut record, BLOCK)?;
        let discoverable = parse_value(&instance, DISCOVERABLE, |raw| {
            raw.parse::<bool>()
                .map_err(|_| DomainError::invalid(DISCOVERABLE, "must be true or false"))
        })?;
        Ok(UserGroupInactive {
            subscription: record.subscription,
            product: record.product,
            user_group: UserGroupBlockInactive {
                instance_id: instance.id,
                user_group_id: parse_value(&instance, USER_GROUP_ID, ExternalId::parse)?,
                name: parse_value(&instance, USER_GROUP_NAME, Name::parse)?,
                parent_groups: instance.references(PARENT_GROUPS),
                discoverable: discoverable.unwrap_or(false),
                terms: instance.value(TERMS).map(str::to_owned),
                external_id: instance.value(EXTERNAL_ID).map(str::to_owned),
            },
        })
    }

    fn into_record(self) -> SubscriptionRecord {
        let block = self.user_group;
        let mut instance = BlockInstance::new(block.instance_id, BLOCK);
        instance.set_value(
            USER_GROUP_ID,
            block.user_group_id.as_ref().map(ExternalId::as_str),
        );
        instance.set_value(USER_GROUP_NAME, block.name.as_ref().map(Name::as_str));
        instance.set_value(
            DISCOVERABLE,
            Some(if block.discoverable { "true" } else { "false" }),
        );
        instance.set_value(TERMS, block.terms.as_deref());
        instance.set_value(EXTERNAL_ID, block.external_id.as_deref());
        instance.set_references(PARENT_GROUPS, &block.parent_groups);
        SubscriptionRecord {
            subscription: self.subscription,
            product: self.product,
            blocks: vec![instance],
        }
    }
}

impl DomainModel for UserGroup {
    const PRODUCT_TYPE: &'static str = ProductType::USER_GROUP;
    const LIFECYCLES: &'static [Lifecycle] = AFTER_INITIAL;

    fn from_record(record: SubscriptionRecord) -> Result<Self> {
        UserGroupInactive::from_record(record)?.try_into()
    }

    fn into_record(self) -> SubscriptionRecord {
        UserGroupInactive::from(self).into_record()
    }
}
