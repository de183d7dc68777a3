//! SCIM's enterprise user extension (issue #21): a User keeps where it works — employee number,
//! cost center, organization, division, department and manager (the id of the manager's User
//! resource, as the identity provider gives it). The User block gains six resource types, none
//! unique.

use sea_orm_migration::prelude::*;

use crate::catalogue::{delete_ids, insert};
use crate::demo::{EMPLOYMENT, USER_BLOCK_ID};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (id, name, description) in EMPLOYMENT {
            manager
                .exec_stmt(insert(
                    "resource_types",
                    &["id", "resource_type", "description", "is_unique"],
                    vec![id.into(), name.into(), description.into(), false.into()],
                ))
                .await?;
            manager
                .exec_stmt(insert(
                    "product_block_resource_types",
                    &["product_block_id", "resource_type_id"],
                    vec![USER_BLOCK_ID.into(), id.into()],
                ))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let ids = EMPLOYMENT.map(|(id, _, _)| id);
        for (table, column) in [
            ("subscription_instance_values", "resource_type_id"),
            ("product_block_resource_types", "resource_type_id"),
            ("resource_types", "id"),
        ] {
            manager.exec_stmt(delete_ids(table, column, ids)).await?;
        }
        Ok(())
    }
}
