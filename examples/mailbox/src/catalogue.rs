//! The Mailbox product as data, with ids fixed by this crate, and the migration that installs
//! it into cadre's catalogue.

use cadre_migrations::catalogue::{BlockSpec, Catalogue, ProductSpec, ResourceTypeSpec, timestamp};
use cadre_migrations::demo::USER_BLOCK_ID;
use cadre_migrations::sea_orm::prelude::Uuid;
use cadre_migrations::{
    Alias, DbErr, DynIden, IntoIden, MigrationName, MigrationTrait, MigratorTrait, SchemaManager,
};

/// The product type of mailboxes: it selects the [`crate::Mailbox`] model.
pub const PRODUCT_TYPE: &str = "Mailbox";
/// The `MailboxBlock` id.
pub const MAILBOX_BLOCK_ID: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0100);
/// The `Mailbox` product id.
pub const MAILBOX_PRODUCT_ID: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0200);

const fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0000 | n)
}

/// The Mailbox block (an address, a quota, aliases; it references its owner's `UserBlock`) and
/// the Mailbox product.
pub const CATALOGUE: Catalogue = Catalogue {
    blocks: &[BlockSpec {
        id: MAILBOX_BLOCK_ID,
        name: "MailboxBlock",
        description: "A mailbox owned by a user",
        tag: "MB",
        resource_types: &[
            ResourceTypeSpec {
                id: id(0x300),
                name: "address",
                description: "The mailbox's email address",
                unique: true,
            },
            ResourceTypeSpec {
                id: id(0x301),
                name: "quota_mb",
                description: "Storage quota in MiB",
                unique: false,
            },
            ResourceTypeSpec {
                id: id(0x302),
                name: "aliases",
                description: "Further addresses delivered to the mailbox",
                unique: false,
            },
        ],
        depends_on: &[USER_BLOCK_ID],
    }],
    products: &[ProductSpec {
        id: MAILBOX_PRODUCT_ID,
        name: "Mailbox",
        description: "mailbox administration",
        product_type: PRODUCT_TYPE,
        tag: "MAILBOX",
        fixed_inputs: &[],
        blocks: &[MAILBOX_BLOCK_ID],
    }],
};

/// This crate's migrations, with a history table of their own (cadre's stays its own).
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(InstallCatalogue)]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("mailbox_migrations").into_iden()
    }
}

/// Installs [`CATALOGUE`]; `down` removes exactly its rows.
struct InstallCatalogue;

impl MigrationName for InstallCatalogue {
    fn name(&self) -> &str {
        "m20261202_000001_mailbox_catalogue"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for InstallCatalogue {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        CATALOGUE
            .install(manager, timestamp("2026-12-02T00:00:00Z")?)
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        CATALOGUE.remove(manager).await
    }
}
