//! Installs the demo catalogue (User and UserGroup products) and the default customer from
//! [`crate::demo`]; `down` removes exactly those rows.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::prelude::{DateTimeWithTimeZone, Uuid};

use crate::demo::{BLOCKS, CREATED_AT, DEFAULT_CUSTOMER_ID, DEFAULT_CUSTOMER_NAME, PRODUCTS};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn created_at() -> Result<DateTimeWithTimeZone, DbErr> {
    DateTimeWithTimeZone::parse_from_rfc3339(CREATED_AT)
        .map_err(|error| DbErr::Migration(format!("demo catalogue timestamp: {error}")))
}

fn insert(table: &str, columns: &[&str], values: Vec<SimpleExpr>) -> InsertStatement {
    Query::insert()
        .into_table(Alias::new(table))
        .columns(columns.iter().map(|column| Alias::new(*column)))
        .values_panic(values)
        .take()
}

fn delete_ids(table: &str, column: &str, ids: impl IntoIterator<Item = Uuid>) -> DeleteStatement {
    Query::delete()
        .from_table(Alias::new(table))
        .and_where(Expr::col(Alias::new(column)).is_in(ids))
        .take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let created_at = created_at()?;
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
        for block in BLOCKS {
            manager
                .exec_stmt(insert(
                    "product_blocks",
                    &["id", "name", "description", "tag", "status", "created_at"],
                    vec![
                        block.id.into(),
                        block.name.into(),
                        block.description.into(),
                        block.tag.into(),
                        "active".into(),
                        created_at.into(),
                    ],
                ))
                .await?;
            for resource_type in block.resource_types {
                manager
                    .exec_stmt(insert(
                        "resource_types",
                        &["id", "resource_type", "description", "is_unique"],
                        vec![
                            resource_type.id.into(),
                            resource_type.name.into(),
                            resource_type.description.into(),
                            resource_type.unique.into(),
                        ],
                    ))
                    .await?;
                manager
                    .exec_stmt(insert(
                        "product_block_resource_types",
                        &["product_block_id", "resource_type_id"],
                        vec![block.id.into(), resource_type.id.into()],
                    ))
                    .await?;
            }
        }
        for block in BLOCKS {
            for depends_on in block.depends_on {
                manager
                    .exec_stmt(insert(
                        "product_block_relations",
                        &["in_use_by_id", "depends_on_id"],
                        vec![block.id.into(), (*depends_on).into()],
                    ))
                    .await?;
            }
        }
        for product in PRODUCTS {
            manager
                .exec_stmt(insert(
                    "products",
                    &[
                        "id",
                        "name",
                        "description",
                        "product_type",
                        "tag",
                        "status",
                        "created_at",
                    ],
                    vec![
                        product.id.into(),
                        product.name.into(),
                        product.description.into(),
                        product.product_type.into(),
                        product.tag.into(),
                        "active".into(),
                        created_at.into(),
                    ],
                ))
                .await?;
            for (fixed_input_id, name, value) in product.fixed_inputs {
                manager
                    .exec_stmt(insert(
                        "fixed_inputs",
                        &["id", "product_id", "name", "value"],
                        vec![
                            (*fixed_input_id).into(),
                            product.id.into(),
                            (*name).into(),
                            (*value).into(),
                        ],
                    ))
                    .await?;
            }
            for block_id in product.blocks {
                manager
                    .exec_stmt(insert(
                        "product_product_blocks",
                        &["product_id", "product_block_id"],
                        vec![product.id.into(), (*block_id).into()],
                    ))
                    .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let product_ids = || PRODUCTS.iter().map(|product| product.id);
        let block_ids = || BLOCKS.iter().map(|block| block.id);
        let resource_type_ids = BLOCKS.iter().flat_map(|block| {
            block
                .resource_types
                .iter()
                .map(|resource_type| resource_type.id)
        });
        let statements = [
            delete_ids("product_product_blocks", "product_id", product_ids()),
            delete_ids("fixed_inputs", "product_id", product_ids()),
            delete_ids("products", "id", product_ids()),
            delete_ids("product_block_relations", "in_use_by_id", block_ids()),
            delete_ids(
                "product_block_resource_types",
                "product_block_id",
                block_ids(),
            ),
            delete_ids("resource_types", "id", resource_type_ids),
            delete_ids("product_blocks", "id", block_ids()),
            delete_ids("customers", "id", [DEFAULT_CUSTOMER_ID]),
        ];
        for statement in statements {
            manager.exec_stmt(statement).await?;
        }
        Ok(())
    }
}
