//! Installs the demo catalogue (User and UserGroup products) and the default customer from
//! [`crate::demo`] (through [`crate::catalogue::Catalogue`]); `down` removes exactly those rows.

use sea_orm_migration::prelude::*;

use crate::catalogue::{delete_ids, insert, timestamp};
use crate::demo::{CATALOGUE, CREATED_AT, DEFAULT_CUSTOMER_ID, DEFAULT_CUSTOMER_NAME};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let created_at = timestamp(CREATED_AT)?;
        manager
            .exec_stmt(insert(
                "customers",
                &["id", "name", "created_at"],
                vec![
                    DEFAULT_CUSTOMER_ID.into(),
                    DEFAULT_CUSTOMER_NAME.into(),
                    created_at.into(),
                ],
            ))
            .await?;
        CATALOGUE.install(manager, created_at).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        CATALOGUE.remove(manager).await?;
        manager
            .exec_stmt(delete_ids("customers", "id", [DEFAULT_CUSTOMER_ID]))
            .await?;
        Ok(())
    }
}
