//! The User product: a person, member of user groups.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use cadre_domain::catalogue::{Product, ProductType};
use cadre_domain::error::{DomainError, Result};
use cadre_domain::ids::{Email, ExternalId, Name};
use cadre_domain::lifecycle::Lifecycle;
use cadre_domain::models::{AFTER_INITIAL, DomainModel, parse_value, required, take_block};
use cadre_domain::subscription::{BlockInstance, BlockRef, Subscription, SubscriptionRecord};

/// The name of the User root block.
pub const BLOCK: &str = "UserBlock";
const USER_ID: &str = "user_id";
const USERNAME: &str = "username";
const FIRSTNAME: &str = "firstname";
const LASTNAME: &str = "lastname";
const EMAIL: &str = "email";
const AUTH_ID: &str = "auth_id";
const GROUPS: &str = "groups";
const AFFILIATION: &str = "affiliation";
const EMPLOYEE_NUMBER: &str = "employee_number";
const COST_CENTER: &str = "cost_center";
const ORGANIZATION: &str = "organization";
const DIVISION: &str = "division";
const DEPARTMENT: &str = "department";
const MANAGER: &str = "manager";

/// Where a user works: SCIM's enterprise user extension (RFC 7643 §4.3). Each part is optional
/// text of at most [`Employment::MAX_LEN`] characters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Employment {
    /// The number the employer knows the user by.
    pub employee_number: Option<String>,
    /// The cost center.
    pub cost_center: Option<String>,
    /// The organization.
    pub organization: Option<String>,
    /// The division.
    pub division: Option<String>,
    /// The department.
    pub department: Option<String>,
    /// The manager: the id of their User resource as the identity provider gave it, normally
    /// their User subscription's id.
    pub manager: Option<String>,
}

impl Employment {
    /// The longest part, in characters.
    pub const MAX_LEN: usize = 255;

    /// The parts by their field names (also their resource types), in order.
    pub fn parts(&self) -> [(&'static str, Option<&str>); 6] {
        [
            (EMPLOYEE_NUMBER, self.employee_number.as_deref()),
            (COST_CENTER, self.cost_center.as_deref()),
            (ORGANIZATION, self.organization.as_deref()),
            (DIVISION, self.division.as_deref()),
            (DEPARTMENT, self.department.as_deref()),
            (MANAGER, self.manager.as_deref()),
        ]
    }

    /// The part named `name` (a field name of [`Employment::parts`]), to set.
    pub fn part_mut(&mut self, name: &str) -> Option<&mut Option<String>> {
        match name {
            EMPLOYEE_NUMBER => Some(&mut self.employee_number),
            COST_CENTER => Some(&mut self.cost_center),
            ORGANIZATION => Some(&mut self.organization),
            DIVISION => Some(&mut self.division),
            DEPARTMENT => Some(&mut self.department),
            MANAGER => Some(&mut self.manager),
            _ => None,
        }
    }

    /// Refuses a part longer than [`Employment::MAX_LEN`] or with control characters.
    pub fn check(&self) -> Result<()> {
        for (name, part) in self.parts() {
            let Some(part) = part else { continue };
            Self::check_part(name, part)?;
        }
        Ok(())
    }

    /// Refuses the part `name` when `part` is longer than [`Employment::MAX_LEN`] or holds a
    /// control character.
    pub fn check_part(name: &str, part: &str) -> Result<()> {
        if part.chars().count() > Self::MAX_LEN {
            return Err(DomainError::invalid(
                name,
                format!("must be at most {} characters", Self::MAX_LEN),
            ));
        }
        if part.chars().any(char::is_control) {
            return Err(DomainError::invalid(
                name,
                "must not contain control characters",
            ));
        }
        Ok(())
    }

    fn read(instance: &BlockInstance) -> Self {
        let mut employment = Employment::default();
        for (name, _) in Employment::default().parts() {
            if let Some(part) = employment.part_mut(name) {
                *part = instance.value(name).map(str::to_owned);
            }
        }
        employment
    }

    fn write(&self, instance: &mut BlockInstance) {
        for (name, part) in self.parts() {
            instance.set_value(name, part);
        }
    }
}

/// Whether a user belongs to the organisation; a fixed input of the User products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Affiliation {
    /// A member of the organisation (`User internal`).
    Internal,
    /// A guest (`User external`).
    External,
}

impl fmt::Display for Affiliation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Affiliation::Internal => "internal",
            Affiliation::External => "external",
        })
    }
}

impl Affiliation {
    fn of(product: &Product) -> Result<Self> {
        match product.fixed_input(AFFILIATION) {
            Some("internal") => Ok(Affiliation::Internal),
            Some("external") => Ok(Affiliation::External),
            other => Err(DomainError::invalid(
                AFFILIATION,
                format!(
                    "product {:?} has affiliation {other:?}; expected internal or external",
                    product.name
                ),
            )),
        }
    }
}

/// A User subscription's description, as the workshop writes it: "User <username> from group
/// <names> (<affiliation>)", or "User <username> (<affiliation>)" without groups.
pub fn user_description(
    username: &Name,
    group_names: &[&Name],
    affiliation: Affiliation,
) -> String {
    if group_names.is_empty() {
        return format!("User {username} ({affiliation})");
    }
    let names: Vec<&str> = group_names.iter().map(|name| name.as_str()).collect();
    format!(
        "User {username} from group {} ({affiliation})",
        names.join(", ")
    )
}

/// The User block with every field optional (lifecycle `initial`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserBlockInactive {
    /// The block instance id.
    pub instance_id: Uuid,
    /// The external user id.
    pub user_id: Option<ExternalId>,
    /// The login name.
    pub username: Option<Name>,
    /// Given name.
    pub firstname: Option<Name>,
    /// Family name.
    pub lastname: Option<Name>,
    /// Email address.
    pub email: Option<Email>,
    /// Identity at the authentication provider.
    pub auth_id: Option<String>,
    /// The UserGroup blocks the user belongs to.
    pub groups: Vec<BlockRef>,
    /// Where the user works.
    pub employment: Employment,
}

/// The User block of a provisioned user: id, user name and email are required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserBlock {
    /// The block instance id.
    pub instance_id: Uuid,
    /// The external user id.
    pub user_id: ExternalId,
    /// The login name.
    pub username: Name,
    /// Given name.
    pub firstname: Option<Name>,
    /// Family name.
    pub lastname: Option<Name>,
    /// Email address.
    pub email: Email,
    /// Identity at the authentication provider.
    pub auth_id: Option<String>,
    /// The UserGroup blocks the user belongs to.
    pub groups: Vec<BlockRef>,
    /// Where the user works.
    pub employment: Employment,
}

/// A User subscription in any lifecycle, fields possibly empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInactive {
    /// The subscription row.
    pub subscription: Subscription,
    /// The product.
    pub product: Product,
    /// From the product's fixed input.
    pub affiliation: Affiliation,
    /// The user block.
    pub user: UserBlockInactive,
}

/// A User subscription after `initial`: the user is identified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The subscription row.
    pub subscription: Subscription,
    /// The product.
    pub product: Product,
    /// From the product's fixed input.
    pub affiliation: Affiliation,
    /// The user block.
    pub user: UserBlock,
}

impl UserInactive {
    /// Validates the required fields and moves the subscription to `provisioning`.
    pub fn into_provisioning(self, now: DateTime<Utc>) -> Result<User> {
        let mut user = User::try_from(self)?;
        user.subscription
            .change_lifecycle(Lifecycle::Provisioning, now)?;
        Ok(user)
    }
}

impl TryFrom<UserInactive> for User {
    type Error = DomainError;

    fn try_from(inactive: UserInactive) -> Result<Self> {
        let block = inactive.user;
        Ok(User {
            subscription: inactive.subscription,
            product: inactive.product,
            affiliation: inactive.affiliation,
            user: UserBlock {
                instance_id: block.instance_id,
                user_id: required(block.user_id, BLOCK, USER_ID)?,
                username: required(block.username, BLOCK, USERNAME)?,
                firstname: block.firstname,
                lastname: block.lastname,
                email: required(block.email, BLOCK, EMAIL)?,
                auth_id: block.auth_id,
                groups: block.groups,
                employment: block.employment,
            },
        })
    }
}

impl From<User> for UserInactive {
    fn from(user: User) -> Self {
        let block = user.user;
        UserInactive {
            subscription: user.subscription,
            product: user.product,
            affiliation: user.affiliation,
            user: UserBlockInactive {
                instance_id: block.instance_id,
                user_id: Some(block.user_id),
                username: Some(block.username),
                firstname: block.firstname,
                lastname: block.lastname,
                email: Some(block.email),
                auth_id: block.auth_id,
                groups: block.groups,
                employment: block.employment,
            },
        }
    }
}

impl DomainModel for UserInactive {
    const PRODUCT_TYPE: &'static str = ProductType::USER;
    const LIFECYCLES: &'static [Lifecycle] = &Lifecycle::ALL;

    fn from_record(mut record: SubscriptionRecord) -> Result<Self> {
        let instance = take_block(&mut record, BLOCK)?;
        Ok(UserInactive {
            affiliation: Affiliation::of(&record.product)?,
            subscription: record.subscription,
            product: record.product,
            user: UserBlockInactive {
                instance_id: instance.id,
                user_id: parse_value(&instance, USER_ID, ExternalId::parse)?,
                username: parse_value(&instance, USERNAME, Name::parse)?,
                firstname: parse_value(&instance, FIRSTNAME, Name::parse)?,
                lastname: parse_value(&instance, LASTNAME, Name::parse)?,
                email: parse_value(&instance, EMAIL, Email::parse)?,
                auth_id: instance.value(AUTH_ID).map(str::to_owned),
                groups: instance.references(GROUPS),
                employment: Employment::read(&instance),
            },
        })
    }

    fn into_record(self) -> SubscriptionRecord {
        let block = self.user;
        let mut instance = BlockInstance::new(block.instance_id, BLOCK);
        instance.set_value(USER_ID, block.user_id.as_ref().map(ExternalId::as_str));
        instance.set_value(USERNAME, block.username.as_ref().map(Name::as_str));
        instance.set_value(FIRSTNAME, block.firstname.as_ref().map(Name::as_str));
        instance.set_value(LASTNAME, block.lastname.as_ref().map(Name::as_str));
        instance.set_value(EMAIL, block.email.as_ref().map(Email::as_str));
        instance.set_value(AUTH_ID, block.auth_id.as_deref());
        instance.set_references(GROUPS, &block.groups);
        block.employment.write(&mut instance);
        SubscriptionRecord {
            subscription: self.subscription,
            product: self.product,
            blocks: vec![instance],
        }
    }
}

impl DomainModel for User {
    const PRODUCT_TYPE: &'static str = ProductType::USER;
    const LIFECYCLES: &'static [Lifecycle] = AFTER_INITIAL;

    fn from_record(record: SubscriptionRecord) -> Result<Self> {
        UserInactive::from_record(record)?.try_into()
    }

    fn into_record(self) -> SubscriptionRecord {
        UserInactive::from(self).into_record()
    }
}
