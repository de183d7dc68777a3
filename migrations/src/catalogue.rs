//! Products as data, and the migration steps that install and remove them: what the demo
//! catalogue's migration does, and what a downstream crate's migration does for its own
//! products (`examples/mailbox`).
//!
//! A catalogue's ids are fixed by its crate, so that it is identical on every database and
//! after `down`/`up`. A block may reference blocks of another catalogue that is already
//! installed (the Mailbox block references cadre's `UserBlock`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::prelude::{DateTimeWithTimeZone, Uuid};

/// A resource type: name, description, whether its values identify a subscription.
pub struct ResourceTypeSpec {
    /// Fixed id.
    pub id: Uuid,
    /// Field name.
    pub name: &'static str,
    /// What it holds.
    pub description: &'static str,
    /// Unique among live subscriptions.
    pub unique: bool,
}

/// A product block with its resource types and the blocks it may reference.
pub struct BlockSpec {
    /// Fixed id.
    pub id: Uuid,
    /// Block name.
    pub name: &'static str,
    /// What it represents.
    pub description: &'static str,
    /// Short tag.
    pub tag: &'static str,
    /// Its fields.
    pub resource_types: &'static [ResourceTypeSpec],
    /// Ids of the blocks it may reference.
    pub depends_on: &'static [Uuid],
}

/// A product with its fixed inputs and root blocks.
pub struct ProductSpec {
    /// Fixed id.
    pub id: Uuid,
    /// Product name.
    pub name: &'static str,
    /// What it is.
    pub description: &'static str,
    /// Domain-model family.
    pub product_type: &'static str,
    /// Short tag.
    pub tag: &'static str,
    /// `(id, name, value)` of each fixed input.
    pub fixed_inputs: &'static [(Uuid, &'static str, &'static str)],
    /// Ids of the root blocks.
    pub blocks: &'static [Uuid],
}

/// Products and the blocks they are made of.
pub struct Catalogue {
    /// The blocks, before the products that use them.
    pub blocks: &'static [BlockSpec],
    /// The products.
    pub products: &'static [ProductSpec],
}

/// `created_at` (RFC 3339) as a timestamp.
pub fn timestamp(created_at: &str) -> Result<DateTimeWithTimeZone, DbErr> {
    DateTimeWithTimeZone::parse_from_rfc3339(created_at)
        .map_err(|error| DbErr::Migration(format!("catalogue timestamp {created_at:?}: {error}")))
}

/// An insert of one row of `values` into `columns` of `table`.
pub(crate) fn insert(table: &str, columns: &[&str], values: Vec<SimpleExpr>) -> InsertStatement {
    Query::insert()
        .into_table(Alias::new(table))
        .columns(columns.iter().map(|column| Alias::new(*column)))
        .values_panic(values)
        .take()
}

/// A delete of the rows of `table` whose `column` is one of `ids`.
pub(crate) fn delete_ids(
    table: &str,
    column: &str,
    ids: impl IntoIterator<Item = Uuid>,
) -> DeleteStatement {
    Query::delete()
        .from_table(Alias::new(table))
        .and_where(Expr::col(Alias::new(column)).is_in(ids))
        .take()
}

impl Catalogue {
    /// Inserts every block (with its resource types and references) and every product (with
    /// its fixed inputs and blocks), created at `created_at`.
    pub async fn install(
        &self,
        manager: &SchemaManager<'_>,
        created_at: DateTimeWithTimeZone,
    ) -> Result<(), DbErr> {
        for block in self.blocks {
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
        for block in self.blocks {
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
        for product in self.products {
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

    /// Deletes exactly the rows [`Catalogue::install`] inserted.
    pub async fn remove(&self, manager: &SchemaManager<'_>) -> Result<(), DbErr> {
        let product_ids = || self.products.iter().map(|product| product.id);
        let block_ids = || self.blocks.iter().map(|block| block.id);
        let resource_type_ids = self.blocks.iter().flat_map(|block| {
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
        ];
        for statement in statements {
            manager.exec_stmt(statement).await?;
        }
        Ok(())
    }
}
