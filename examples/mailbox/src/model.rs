//! The Mailbox model: a subscription of product type `Mailbox` with one `MailboxBlock`, in the
//! two flavours every cadre product has (see [`cadre_domain::models`]): [`MailboxInactive`] for
//! any lifecycle with every field optional, and [`Mailbox`] once it is provisioned.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use cadre_domain::models::{AFTER_INITIAL, DomainModel, parse_value, required, take_block};
use cadre_domain::{
    BlockInstance, BlockRef, DomainError, Email, Lifecycle, Product, Result, Subscription,
    SubscriptionRecord,
};

use crate::catalogue::PRODUCT_TYPE;

/// The name of the Mailbox root block.
pub const BLOCK: &str = "MailboxBlock";
const ADDRESS: &str = "address";
const QUOTA_MB: &str = "quota_mb";
const ALIASES: &str = "aliases";
const OWNER: &str = "owner";

/// The largest quota, in MiB.
pub const MAX_QUOTA_MB: u32 = 102_400;

/// A Mailbox subscription in any lifecycle, fields possibly empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxInactive {
    /// The subscription row.
    pub subscription: Subscription,
    /// The product.
    pub product: Product,
    /// The block instance id.
    pub instance_id: Uuid,
    /// The mailbox's address.
    pub address: Option<Email>,
    /// Storage quota in MiB.
    pub quota_mb: Option<u32>,
    /// Further addresses delivered to the mailbox.
    pub aliases: Vec<Email>,
    /// The owner's `UserBlock`.
    pub owner: Option<BlockRef>,
}

/// A Mailbox subscription after `initial`: it has an address, a quota and an owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    /// The subscription row.
    pub subscription: Subscription,
    /// The product.
    pub product: Product,
    /// The block instance id.
    pub instance_id: Uuid,
    /// The mailbox's address.
    pub address: Email,
    /// Storage quota in MiB.
    pub quota_mb: u32,
    /// Further addresses delivered to the mailbox.
    pub aliases: Vec<Email>,
    /// The owner's `UserBlock`.
    pub owner: BlockRef,
}

/// A Mailbox subscription's description: "Mailbox <address>".
pub fn mailbox_description(address: &Email) -> String {
    format!("Mailbox {address}")
}

/// Checks the rules of a mailbox's values: a quota of 1 to [`MAX_QUOTA_MB`] MiB, aliases that
/// differ from the address and from each other.
fn check(address: Option<&Email>, quota_mb: Option<u32>, aliases: &[Email]) -> Result<()> {
    if let Some(quota) = quota_mb
        && !(1..=MAX_QUOTA_MB).contains(&quota)
    {
        return Err(DomainError::invalid(
            QUOTA_MB,
            format!("must be between 1 and {MAX_QUOTA_MB} MiB"),
        ));
    }
    for (index, alias) in aliases.iter().enumerate() {
        if Some(alias) == address || aliases[..index].contains(alias) {
            return Err(DomainError::invalid(
                ALIASES,
                format!("{alias} is given twice (the address counts)"),
            ));
        }
    }
    Ok(())
}

impl MailboxInactive {
    /// Validates the required fields and moves the subscription to `provisioning`.
    pub fn into_provisioning(self, now: DateTime<Utc>) -> Result<Mailbox> {
        let mut mailbox = Mailbox::try_from(self)?;
        mailbox
            .subscription
            .change_lifecycle(Lifecycle::Provisioning, now)?;
        Ok(mailbox)
    }
}

impl TryFrom<MailboxInactive> for Mailbox {
    type Error = DomainError;

    fn try_from(inactive: MailboxInactive) -> Result<Self> {
        Ok(Mailbox {
            subscription: inactive.subscription,
            product: inactive.product,
            instance_id: inactive.instance_id,
            address: required(inactive.address, BLOCK, ADDRESS)?,
            quota_mb: required(inactive.quota_mb, BLOCK, QUOTA_MB)?,
            aliases: inactive.aliases,
            owner: required(inactive.owner, BLOCK, OWNER)?,
        })
    }
}

impl From<Mailbox> for MailboxInactive {
    fn from(mailbox: Mailbox) -> Self {
        MailboxInactive {
            subscription: mailbox.subscription,
            product: mailbox.product,
            instance_id: mailbox.instance_id,
            address: Some(mailbox.address),
            quota_mb: Some(mailbox.quota_mb),
            aliases: mailbox.aliases,
            owner: Some(mailbox.owner),
        }
    }
}

impl DomainModel for MailboxInactive {
    const PRODUCT_TYPE: &'static str = PRODUCT_TYPE;
    const LIFECYCLES: &'static [Lifecycle] = &Lifecycle::ALL;

    fn from_record(mut record: SubscriptionRecord) -> Result<Self> {
        let instance = take_block(&mut record, BLOCK)?;
        let quota_mb = parse_value(&instance, QUOTA_MB, |raw| {
            raw.parse::<u32>()
                .map_err(|_| DomainError::invalid(QUOTA_MB, "must be a whole number of MiB"))
        })?;
        let address = parse_value(&instance, ADDRESS, Email::parse)?;
        let aliases: Vec<Email> = instance
            .values
            .get(ALIASES)
            .map(|values| {
                values
                    .iter()
                    .map(|raw| Email::parse(raw))
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?
            .unwrap_or_default();
        check(address.as_ref(), quota_mb, &aliases)?;
        Ok(MailboxInactive {
            subscription: record.subscription,
            product: record.product,
            instance_id: instance.id,
            address,
            quota_mb,
            aliases,
            owner: instance.references(OWNER).into_iter().next(),
        })
    }

    fn into_record(self) -> SubscriptionRecord {
        let mut instance = BlockInstance::new(self.instance_id, BLOCK);
        instance.set_value(ADDRESS, self.address.as_ref().map(Email::as_str));
        instance.set_value(
            QUOTA_MB,
            self.quota_mb.map(|quota| quota.to_string()).as_deref(),
        );
        if !self.aliases.is_empty() {
            instance.values.insert(
                ALIASES.to_owned(),
                self.aliases
                    .iter()
                    .map(|alias| alias.as_str().to_owned())
                    .collect(),
            );
        }
        instance.set_references(OWNER, self.owner.as_slice());
        SubscriptionRecord {
            subscription: self.subscription,
            product: self.product,
            blocks: vec![instance],
        }
    }
}

impl DomainModel for Mailbox {
    const PRODUCT_TYPE: &'static str = PRODUCT_TYPE;
    const LIFECYCLES: &'static [Lifecycle] = AFTER_INITIAL;

    fn from_record(record: SubscriptionRecord) -> Result<Self> {
        MailboxInactive::from_record(record)?.try_into()
    }

    fn into_record(self) -> SubscriptionRecord {
        MailboxInactive::from(self).into_record()
    }
}

impl Mailbox {
    /// Sets the quota and aliases, checking the mailbox's rules.
    pub fn change(&mut self, quota_mb: Option<u32>, aliases: Option<Vec<Email>>) -> Result<()> {
        let quota_mb = quota_mb.unwrap_or(self.quota_mb);
        let aliases = aliases.unwrap_or_else(|| self.aliases.clone());
        check(Some(&self.address), Some(quota_mb), &aliases)?;
        self.quota_mb = quota_mb;
        self.aliases = aliases;
        Ok(())
    }
}
