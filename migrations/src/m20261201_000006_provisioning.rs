//! Bulk provisioning: which subscriptions the loads manage, and the durable parts of each load.
//!
//! A full load removes only subscriptions marked in `provisioned_subscriptions`, never ones made
//! by hand. A load's input and its planned batches are stored as JSON chunks under the load's
//! id, so that a load interrupted by a crash resumes at its next unapplied batch.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ProvisionedSubscriptions {
    Table,
    SubscriptionId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ProvisioningChunks {
    Table,
    LoadId,
    Part,
    Seq,
    Content,
    Report,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Subscriptions {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ProvisionedSubscriptions::Table)
                    .col(pk_uuid(ProvisionedSubscriptions::SubscriptionId))
                    .col(timestamp_with_time_zone(
                        ProvisionedSubscriptions::CreatedAt,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_provisioned_subscriptions_subscription_id")
                            .from(
                                ProvisionedSubscriptions::Table,
                                ProvisionedSubscriptions::SubscriptionId,
                            )
                            .to(Subscriptions::Table, Subscriptions::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::NoAction),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ProvisioningChunks::Table)
                    .col(uuid(ProvisioningChunks::LoadId))
                    .col(string_len(ProvisioningChunks::Part, 16))
                    .col(big_integer(ProvisioningChunks::Seq))
                    .col(text(ProvisioningChunks::Content))
                    .col(text_null(ProvisioningChunks::Report))
                    .col(timestamp_with_time_zone(ProvisioningChunks::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(ProvisioningChunks::LoadId)
                            .col(ProvisioningChunks::Part)
                            .col(ProvisioningChunks::Seq),
                    )
                    .take(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ProvisioningChunks::Table.into_iden(),
            ProvisionedSubscriptions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).take())
                .await?;
        }
        Ok(())
    }
}
