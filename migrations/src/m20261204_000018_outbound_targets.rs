//! Outbound provisioning (issue #22): the applications cadre pushes its users and groups into.
//! A target's connection and attribute mapping are JSON; its credential is sealed by the server
//! with the configured key (never stored in clear). Names are unique by their identity key.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OutboundTargets {
    Table,
    Id,
    Name,
    NameKey,
    Connection,
    Mapping,
    Mode,
    Deprovision,
    SealedSecret,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OutboundTargets::Table)
                    .col(pk_uuid(OutboundTargets::Id))
                    .col(text(OutboundTargets::Name))
                    .col(text(OutboundTargets::NameKey).unique_key())
                    .col(text(OutboundTargets::Connection))
                    .col(text(OutboundTargets::Mapping))
                    .col(string_len(OutboundTargets::Mode, 16))
                    .col(string_len(OutboundTargets::Deprovision, 16))
                    .col(blob(OutboundTargets::SealedSecret))
                    .col(text(OutboundTargets::CreatedBy))
                    .col(timestamp_with_time_zone(OutboundTargets::CreatedAt))
                    .col(timestamp_with_time_zone(OutboundTargets::UpdatedAt))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OutboundTargets::Table).take())
            .await
    }
}
