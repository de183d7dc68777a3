//! SCIM (issue #21): a UserGroup keeps the id its identity provider gives it (SCIM's
//! `externalId`), beside cadre's own group id. The UserGroup block gains the resource type
//! `external_id`, not unique (a user's counterpart is the existing `auth_id`).

use sea_orm_migration::prelude::*;

use crate::catalogue::{delete_ids, insert};
use crate::demo::{GROUP_EXTERNAL_ID, USER_GROUP_BLOCK_ID};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .exec_stmt(insert(
                "resource_types",
                &["id", "resource_type", "description", "is_unique"],
                vec![
                    GROUP_EXTERNAL_ID.into(),
                    "external_id".into(),
                    "The group's id at the identity provider that feeds cadre".into(),
                    false.into(),
                ],
            ))
            .await?;
        manager
            .exec_stmt(insert(
                "product_block_resource_types",
                &["product_block_id", "resource_type_id"],
                vec![USER_GROUP_BLOCK_ID.into(), GROUP_EXTERNAL_ID.into()],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in [
            ("subscription_instance_values", "resource_type_id"),
            ("product_block_resource_types", "resource_type_id"),
            ("resource_types", "id"),
        ] {
            manager
                .exec_stmt(delete_ids(table, column, [GROUP_EXTERNAL_ID]))
                .await?;
        }
        Ok(())
    }
}
