//! The product catalogue, customers and subscriptions with their block instances, values and
//! relations.
//!
//! Uniqueness and referential integrity live here, not only in code: unique names, one value
//! per (resource type, unique value) among live subscriptions, and foreign keys that cascade
//! from a subscription to what it owns but refuse to delete a block another subscription uses.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Customers {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Products {
    Table,
    Id,
    Name,
    Description,
    ProductType,
    Tag,
    Status,
    CreatedAt,
    EndDate,
}

#[derive(DeriveIden)]
enum FixedInputs {
    Table,
    Id,
    ProductId,
    Name,
    Value,
}

#[derive(DeriveIden)]
enum ProductBlocks {
    Table,
    Id,
    Name,
    Description,
    Tag,
    Status,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ResourceTypes {
    Table,
    Id,
    ResourceType,
    Description,
    IsUnique,
}

#[derive(DeriveIden)]
enum ProductProductBlocks {
    Table,
    ProductId,
    ProductBlockId,
}

#[derive(DeriveIden)]
enum ProductBlockRelations {
    Table,
    InUseById,
    DependsOnId,
}

#[derive(DeriveIden)]
enum ProductBlockResourceTypes {
    Table,
    ProductBlockId,
    ResourceTypeId,
}

#[derive(DeriveIden)]
enum Subscriptions {
    Table,
    Id,
    ProductId,
    CustomerId,
    Description,
    Status,
    Insync,
    StartDate,
    EndDate,
    Note,
    Version,
}

#[derive(DeriveIden)]
enum SubscriptionInstances {
    Table,
    Id,
    SubscriptionId,
    ProductBlockId,
    Label,
}

#[derive(DeriveIden)]
enum SubscriptionInstanceValues {
    Table,
    Id,
    SubscriptionInstanceId,
    ResourceTypeId,
    Position,
    Value,
    UniqueValue,
}

#[derive(DeriveIden)]
enum SubscriptionInstanceRelations {
    Table,
    InUseById,
    DependsOnId,
    DomainModelAttr,
    Position,
}

/// A foreign key named `fk_<from table>_<column>`.
fn foreign_key(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(on_delete)
        .on_update(ForeignKeyAction::NoAction)
        .take()
}

fn index(name: &str, table: impl IntoIden, columns: &[&'static str]) -> IndexCreateStatement {
    let mut index = Index::create().name(name).table(table).take();
    for column in columns {
        index.col(Alias::new(*column));
    }
    index
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Customers::Table)
                    .col(pk_uuid(Customers::Id))
                    .col(string_len(Customers::Name, 255))
                    .col(timestamp_with_time_zone(Customers::CreatedAt))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                index("uq_customers_name", Customers::Table, &["name"])
                    .unique()
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Products::Table)
                    .col(pk_uuid(Products::Id))
                    .col(string_len(Products::Name, 255))
                    .col(text(Products::Description))
                    .col(string_len(Products::ProductType, 255))
                    .col(string_len(Products::Tag, 20))
                    .col(string_len(Products::Status, 32))
                    .col(timestamp_with_time_zone(Products::CreatedAt))
                    .col(timestamp_with_time_zone_null(Products::EndDate))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                index("uq_products_name", Products::Table, &["name"])
                    .unique()
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_products_product_type",
                Products::Table,
                &["product_type"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(FixedInputs::Table)
                    .col(pk_uuid(FixedInputs::Id))
                    .col(uuid(FixedInputs::ProductId))
                    .col(string_len(FixedInputs::Name, 255))
                    .col(string_len(FixedInputs::Value, 255))
                    .foreign_key(&mut foreign_key(
                        "fk_fixed_inputs_product_id",
                        (FixedInputs::Table, FixedInputs::ProductId),
                        (Products::Table, Products::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "uq_fixed_inputs_product_name",
                    FixedInputs::Table,
                    &["product_id", "name"],
                )
                .unique()
                .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ProductBlocks::Table)
                    .col(pk_uuid(ProductBlocks::Id))
                    .col(string_len(ProductBlocks::Name, 255))
                    .col(text(ProductBlocks::Description))
                    .col(string_len(ProductBlocks::Tag, 20))
                    .col(string_len(ProductBlocks::Status, 32))
                    .col(timestamp_with_time_zone(ProductBlocks::CreatedAt))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                index("uq_product_blocks_name", ProductBlocks::Table, &["name"])
                    .unique()
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ResourceTypes::Table)
                    .col(pk_uuid(ResourceTypes::Id))
                    .col(string_len(ResourceTypes::ResourceType, 255))
                    .col(text(ResourceTypes::Description))
                    .col(boolean(ResourceTypes::IsUnique))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "uq_resource_types_resource_type",
                    ResourceTypes::Table,
                    &["resource_type"],
                )
                .unique()
                .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ProductProductBlocks::Table)
                    .col(uuid(ProductProductBlocks::ProductId))
                    .col(uuid(ProductProductBlocks::ProductBlockId))
                    .primary_key(
                        Index::create()
                            .col(ProductProductBlocks::ProductId)
                            .col(ProductProductBlocks::ProductBlockId),
                    )
                    .foreign_key(&mut foreign_key(
                        "fk_product_product_blocks_product_id",
                        (ProductProductBlocks::Table, ProductProductBlocks::ProductId),
                        (Products::Table, Products::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        "fk_product_product_blocks_product_block_id",
                        (
                            ProductProductBlocks::Table,
                            ProductProductBlocks::ProductBlockId,
                        ),
                        (ProductBlocks::Table, ProductBlocks::Id),
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ProductBlockRelations::Table)
                    .col(uuid(ProductBlockRelations::InUseById))
                    .col(uuid(ProductBlockRelations::DependsOnId))
                    .primary_key(
                        Index::create()
                            .col(ProductBlockRelations::InUseById)
                            .col(ProductBlockRelations::DependsOnId),
                    )
                    .foreign_key(&mut foreign_key(
                        "fk_product_block_relations_in_use_by_id",
                        (
                            ProductBlockRelations::Table,
                            ProductBlockRelations::InUseById,
                        ),
                        (ProductBlocks::Table, ProductBlocks::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        "fk_product_block_relations_depends_on_id",
                        (
                            ProductBlockRelations::Table,
                            ProductBlockRelations::DependsOnId,
                        ),
                        (ProductBlocks::Table, ProductBlocks::Id),
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ProductBlockResourceTypes::Table)
                    .col(uuid(ProductBlockResourceTypes::ProductBlockId))
                    .col(uuid(ProductBlockResourceTypes::ResourceTypeId))
                    .primary_key(
                        Index::create()
                            .col(ProductBlockResourceTypes::ProductBlockId)
                            .col(ProductBlockResourceTypes::ResourceTypeId),
                    )
                    .foreign_key(&mut foreign_key(
                        "fk_product_block_resource_types_product_block_id",
                        (
                            ProductBlockResourceTypes::Table,
                            ProductBlockResourceTypes::ProductBlockId,
                        ),
                        (ProductBlocks::Table, ProductBlocks::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        "fk_product_block_resource_types_resource_type_id",
                        (
                            ProductBlockResourceTypes::Table,
                            ProductBlockResourceTypes::ResourceTypeId,
                        ),
                        (ResourceTypes::Table, ResourceTypes::Id),
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Subscriptions::Table)
                    .col(pk_uuid(Subscriptions::Id))
                    .col(uuid(Subscriptions::ProductId))
                    .col(uuid(Subscriptions::CustomerId))
                    .col(string_len(Subscriptions::Description, 2000))
                    .col(string_len(Subscriptions::Status, 32))
                    .col(boolean(Subscriptions::Insync))
                    .col(timestamp_with_time_zone_null(Subscriptions::StartDate))
                    .col(timestamp_with_time_zone_null(Subscriptions::EndDate))
                    .col(text_null(Subscriptions::Note))
                    .col(big_integer(Subscriptions::Version))
                    .foreign_key(&mut foreign_key(
                        "fk_subscriptions_product_id",
                        (Subscriptions::Table, Subscriptions::ProductId),
                        (Products::Table, Products::Id),
                        ForeignKeyAction::Restrict,
                    ))
                    .foreign_key(&mut foreign_key(
                        "fk_subscriptions_customer_id",
                        (Subscriptions::Table, Subscriptions::CustomerId),
                        (Customers::Table, Customers::Id),
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;
        // Listing filters by product (hence type) and lifecycle, and pages in id order.
        manager
            .create_index(index(
                "ix_subscriptions_product_status",
                Subscriptions::Table,
                &["product_id", "status", "id"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_subscriptions_status",
                Subscriptions::Table,
                &["status", "id"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_subscriptions_customer_id",
                Subscriptions::Table,
                &["customer_id"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SubscriptionInstances::Table)
                    .col(pk_uuid(SubscriptionInstances::Id))
                    .col(uuid(SubscriptionInstances::SubscriptionId))
                    .col(uuid(SubscriptionInstances::ProductBlockId))
                    .col(string_len_null(SubscriptionInstances::Label, 255))
                    .foreign_key(&mut foreign_key(
                        "fk_subscription_instances_subscription_id",
                        (
                            SubscriptionInstances::Table,
                            SubscriptionInstances::SubscriptionId,
                        ),
                        (Subscriptions::Table, Subscriptions::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        "fk_subscription_instances_product_block_id",
                        (
                            SubscriptionInstances::Table,
                            SubscriptionInstances::ProductBlockId,
                        ),
                        (ProductBlocks::Table, ProductBlocks::Id),
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_subscription_instances_subscription_id",
                SubscriptionInstances::Table,
                &["subscription_id"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SubscriptionInstanceValues::Table)
                    .col(pk_uuid(SubscriptionInstanceValues::Id))
                    .col(uuid(SubscriptionInstanceValues::SubscriptionInstanceId))
                    .col(uuid(SubscriptionInstanceValues::ResourceTypeId))
                    .col(big_integer(SubscriptionInstanceValues::Position))
                    .col(text(SubscriptionInstanceValues::Value))
                    .col(text_null(SubscriptionInstanceValues::UniqueValue))
                    .foreign_key(&mut foreign_key(
                        "fk_subscription_instance_values_instance_id",
                        (
                            SubscriptionInstanceValues::Table,
                            SubscriptionInstanceValues::SubscriptionInstanceId,
                        ),
                        (SubscriptionInstances::Table, SubscriptionInstances::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        "fk_subscription_instance_values_resource_type_id",
                        (
                            SubscriptionInstanceValues::Table,
                            SubscriptionInstanceValues::ResourceTypeId,
                        ),
                        (ResourceTypes::Table, ResourceTypes::Id),
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "uq_subscription_instance_values_slot",
                    SubscriptionInstanceValues::Table,
                    &["subscription_instance_id", "resource_type_id", "position"],
                )
                .unique()
                .take(),
            )
            .await?;
        // Identifying values (user ids, names, emails) are unique among live subscriptions:
        // `unique_value` is set only for resource types marked unique, and cleared on termination.
        manager
            .create_index(
                index(
                    "uq_subscription_instance_values_unique_value",
                    SubscriptionInstanceValues::Table,
                    &["resource_type_id", "unique_value"],
                )
                .unique()
                .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SubscriptionInstanceRelations::Table)
                    .col(uuid(SubscriptionInstanceRelations::InUseById))
                    .col(uuid(SubscriptionInstanceRelations::DependsOnId))
                    .col(string_len(
                        SubscriptionInstanceRelations::DomainModelAttr,
                        255,
                    ))
                    .col(big_integer(SubscriptionInstanceRelations::Position))
                    .primary_key(
                        Index::create()
                            .col(SubscriptionInstanceRelations::InUseById)
                            .col(SubscriptionInstanceRelations::DomainModelAttr)
                            .col(SubscriptionInstanceRelations::Position),
                    )
                    .foreign_key(&mut foreign_key(
                        "fk_subscription_instance_relations_in_use_by_id",
                        (
                            SubscriptionInstanceRelations::Table,
                            SubscriptionInstanceRelations::InUseById,
                        ),
                        (SubscriptionInstances::Table, SubscriptionInstances::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        "fk_subscription_instance_relations_depends_on_id",
                        (
                            SubscriptionInstanceRelations::Table,
                            SubscriptionInstanceRelations::DependsOnId,
                        ),
                        (SubscriptionInstances::Table, SubscriptionInstances::Id),
                        ForeignKeyAction::Restrict,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_subscription_instance_relations_depends_on_id",
                SubscriptionInstanceRelations::Table,
                &["depends_on_id"],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children before parents, so that foreign keys never dangle.
        let tables: [DynIden; 12] = [
            SubscriptionInstanceRelations::Table.into_iden(),
            SubscriptionInstanceValues::Table.into_iden(),
            SubscriptionInstances::Table.into_iden(),
            Subscriptions::Table.into_iden(),
            ProductBlockResourceTypes::Table.into_iden(),
            ProductBlockRelations::Table.into_iden(),
            ProductProductBlocks::Table.into_iden(),
            ResourceTypes::Table.into_iden(),
            ProductBlocks::Table.into_iden(),
            FixedInputs::Table.into_iden(),
            Products::Table.into_iden(),
            Customers::Table.into_iden(),
        ];
        for table in tables {
            manager
                .drop_table(Table::drop().table(table).take())
                .await?;
        }
        Ok(())
    }
}
