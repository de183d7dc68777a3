//! The demo catalogue that `m20261124_000002_demo_catalogue` installs: the User and UserGroup
//! products of the orchestrator-core workshop, extended with the identity fields cadre needs,
//! and a default customer.
//!
//! Ids are fixed so that the catalogue is identical on every database and after `down`/`up`.

use sea_orm_migration::sea_orm::prelude::Uuid;

use crate::catalogue::{BlockSpec, Catalogue, ProductSpec, ResourceTypeSpec};

const fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0000 | n)
}

/// The UserGroup block's `external_id` resource type, added by migration 16 (not part of the
/// catalogue migration 2 installs).
pub const GROUP_EXTERNAL_ID: Uuid = id(0x304);

/// The User block's employment resource types (id, name, description), added by migration 17:
/// SCIM's enterprise user extension.
pub const EMPLOYMENT: [(Uuid, &str, &str); 6] = [
    (
        id(0x316),
        "employee_number",
        "The user's number at their employer",
    ),
    (id(0x317), "cost_center", "The user's cost center"),
    (id(0x318), "organization", "The user's organization"),
    (id(0x319), "division", "The user's division"),
    (id(0x31a), "department", "The user's department"),
    (
        id(0x31b),
        "manager",
        "The user's manager: the id of their User resource, as given",
    ),
];

/// The default customer's id.
pub const DEFAULT_CUSTOMER_ID: Uuid = id(0x1);
/// The default customer's name.
pub const DEFAULT_CUSTOMER_NAME: &str = "Default";
/// The `UserGroupBlock` id.
pub const USER_GROUP_BLOCK_ID: Uuid = id(0x100);
/// The `UserBlock` id.
pub const USER_BLOCK_ID: Uuid = id(0x101);
/// The `User Group` product id.
pub const USER_GROUP_PRODUCT_ID: Uuid = id(0x200);
/// The `User internal` product id.
pub const USER_INTERNAL_PRODUCT_ID: Uuid = id(0x201);
/// The `User external` product id.
pub const USER_EXTERNAL_PRODUCT_ID: Uuid = id(0x202);

/// The catalogue's creation instant, fixed so that reinstalling is byte-identical.
pub const CREATED_AT: &str = "2026-11-24T00:00:00Z";

/// Every demo product block.
const BLOCKS: &[BlockSpec] = &[
    BlockSpec {
        id: USER_GROUP_BLOCK_ID,
        name: "UserGroupBlock",
        description: "A group of users",
        tag: "UGB",
        resource_types: &[
            ResourceTypeSpec {
                id: id(0x300),
                name: "user_group_id",
                description: "External id of the group",
                unique: true,
            },
            ResourceTypeSpec {
                id: id(0x301),
                name: "user_group_name",
                description: "Name of the group",
                unique: true,
            },
            ResourceTypeSpec {
                id: id(0x302),
                name: "discoverable",
                description: "Whether users may find and join the group",
                unique: false,
            },
            ResourceTypeSpec {
                id: id(0x303),
                name: "terms",
                description: "Terms a joiner must accept",
                unique: false,
            },
        ],
        depends_on: &[USER_GROUP_BLOCK_ID],
    },
    BlockSpec {
        id: USER_BLOCK_ID,
        name: "UserBlock",
        description: "A user",
        tag: "UB",
        resource_types: &[
            ResourceTypeSpec {
                id: id(0x310),
                name: "user_id",
                description: "External id of the user",
                unique: true,
            },
            ResourceTypeSpec {
                id: id(0x311),
                name: "username",
                description: "Login name",
                unique: true,
            },
            ResourceTypeSpec {
                id: id(0x312),
                name: "firstname",
                description: "Given name",
                unique: false,
            },
            ResourceTypeSpec {
                id: id(0x313),
                name: "lastname",
                description: "Family name",
                unique: false,
            },
            ResourceTypeSpec {
                id: id(0x314),
                name: "email",
                description: "Email address",
                unique: true,
            },
            ResourceTypeSpec {
                id: id(0x315),
                name: "auth_id",
                description: "Identity at the authentication provider",
                unique: false,
            },
        ],
        depends_on: &[USER_GROUP_BLOCK_ID],
    },
];

/// Every demo product.
const PRODUCTS: &[ProductSpec] = &[
    ProductSpec {
        id: USER_GROUP_PRODUCT_ID,
        name: "User Group",
        description: "user group administration",
        product_type: "UserGroup",
        tag: "GROUP",
        fixed_inputs: &[],
        blocks: &[USER_GROUP_BLOCK_ID],
    },
    ProductSpec {
        id: USER_INTERNAL_PRODUCT_ID,
        name: "User internal",
        description: "user administration - internal",
        product_type: "User",
        tag: "USER_INT",
        fixed_inputs: &[(id(0x400), "affiliation", "internal")],
        blocks: &[USER_BLOCK_ID],
    },
    ProductSpec {
        id: USER_EXTERNAL_PRODUCT_ID,
        name: "User external",
        description: "user administration - external",
        product_type: "User",
        tag: "USER_EXT",
        fixed_inputs: &[(id(0x401), "affiliation", "external")],
        blocks: &[USER_BLOCK_ID],
    },
];

/// The demo catalogue: the UserGroup and User blocks and products.
pub const CATALOGUE: Catalogue = Catalogue {
    blocks: BLOCKS,
    products: PRODUCTS,
};
