//! The product catalogue: products, their fixed inputs, product blocks and resource types.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::DomainError;

/// The family a product belongs to (`User`, `UserGroup`, …); it selects the domain model.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProductType(String);

impl ProductType {
    /// The product type of people.
    pub const USER: &'static str = "User";
    /// The product type of groups of people.
    pub const USER_GROUP: &'static str = "UserGroup";

    /// A product type from its name.
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The `User` product type.
    pub fn user() -> Self {
        Self::new(Self::USER)
    }

    /// The `UserGroup` product type.
    pub fn user_group() -> Self {
        Self::new(Self::USER_GROUP)
    }

    /// The name of the product type.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProductType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a product (or product block) is in its own life. Wire strings are orchestrator-core's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProductStatus {
    /// Orderable.
    #[serde(rename = "active")]
    Active,
    /// Not yet generally available.
    #[serde(rename = "pre production")]
    PreProduction,
    /// No new subscriptions; existing ones keep running.
    #[serde(rename = "phase out")]
    PhaseOut,
    /// Retired.
    #[serde(rename = "end of life")]
    EndOfLife,
}

impl ProductStatus {
    /// Every status, in declaration order.
    pub const ALL: [ProductStatus; 4] = [
        ProductStatus::Active,
        ProductStatus::PreProduction,
        ProductStatus::PhaseOut,
        ProductStatus::EndOfLife,
    ];

    /// The wire string, e.g. `"phase out"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProductStatus::Active => "active",
            ProductStatus::PreProduction => "pre production",
            ProductStatus::PhaseOut => "phase out",
            ProductStatus::EndOfLife => "end of life",
        }
    }
}

impl fmt::Display for ProductStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProductStatus {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProductStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                DomainError::invalid(
                    "status",
                    format!("{s:?} is not one of active, pre production, phase out, end of life"),
                )
            })
    }
}

/// A typed field of a product block, e.g. `username`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceType {
    /// Internal id.
    pub id: Uuid,
    /// The field name, unique across the catalogue.
    pub resource_type: String,
    /// What the field holds.
    pub description: String,
    /// Whether a value of this type identifies its subscription: no two live subscriptions may
    /// hold the same value (enforced by a database index).
    pub unique: bool,
}

/// A building block of products, e.g. `UserBlock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductBlock {
    /// Internal id.
    pub id: Uuid,
    /// Unique name, e.g. `UserBlock`.
    pub name: String,
    /// What the block represents.
    pub description: String,
    /// Short tag, e.g. `UB`.
    pub tag: String,
    /// The block's own status.
    pub status: ProductStatus,
    /// The scalar fields of the block.
    pub resource_types: Vec<ResourceType>,
    /// Names of the blocks this block may reference.
    pub depends_on: Vec<String>,
    /// When the block was added to the catalogue.
    pub created_at: DateTime<Utc>,
}

impl ProductBlock {
    /// The resource type named `name`, if the block has it.
    pub fn resource_type(&self, name: &str) -> Option<&ResourceType> {
        self.resource_types
            .iter()
            .find(|resource_type| resource_type.resource_type == name)
    }
}

/// A product-level constant that appears as a plain field on its subscriptions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedInput {
    /// Internal id.
    pub id: Uuid,
    /// The field name, unique per product.
    pub name: String,
    /// The constant value.
    pub value: String,
}

/// Something a customer can subscribe to, e.g. `User internal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Internal id.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// What the product is.
    pub description: String,
    /// The domain-model family.
    pub product_type: ProductType,
    /// Short tag, e.g. `USER_INT`.
    pub tag: String,
    /// The product's status.
    pub status: ProductStatus,
    /// Product-level constants.
    pub fixed_inputs: Vec<FixedInput>,
    /// The root blocks of the product's subscriptions, with their full definitions.
    pub blocks: Vec<ProductBlock>,
    /// When the product was added to the catalogue.
    pub created_at: DateTime<Utc>,
    /// When the product is retired, if scheduled.
    pub end_date: Option<DateTime<Utc>>,
}

impl Product {
    /// The value of the fixed input `name`, if the product has it.
    pub fn fixed_input(&self, name: &str) -> Option<&str> {
        self.fixed_inputs
            .iter()
            .find(|fixed_input| fixed_input.name == name)
            .map(|fixed_input| fixed_input.value.as_str())
    }

    /// The root block named `name`, if the product has it.
    pub fn block(&self, name: &str) -> Option<&ProductBlock> {
        self.blocks.iter().find(|block| block.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_status_wire_strings_match_orchestrator_core() {
        for status in ProductStatus::ALL {
            let json = serde_json::to_string(&status).expect("serialise");
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(status.as_str().parse::<ProductStatus>(), Ok(status));
        }
        assert_eq!(ProductStatus::PhaseOut.as_str(), "phase out");
        assert!("phase_out".parse::<ProductStatus>().is_err());
    }
}
