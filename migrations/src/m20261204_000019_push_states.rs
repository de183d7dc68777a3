//! Outbound provisioning (issue #22): what cadre knows of each subscription on each target —
//! the remote id, a fingerprint of what was last pushed, the last error. Gone with its target.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PushStates {
    Table,
    TargetId,
    SubscriptionId,
    RemoteId,
    Fingerprint,
    PushedAt,
    LastError,
    FailedAt,
}

#[derive(DeriveIden)]
enum OutboundTargets {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PushStates::Table)
                    .col(uuid(PushStates::TargetId))
                    .col(uuid(PushStates::SubscriptionId))
                    .col(text_null(PushStates::RemoteId))
                    .col(string_len_null(PushStates::Fingerprint, 64))
                    .col(timestamp_with_time_zone_null(PushStates::PushedAt))
                    .col(text_null(PushStates::LastError))
                    .col(timestamp_with_time_zone_null(PushStates::FailedAt))
                    .primary_key(
                        Index::create()
                            .col(PushStates::TargetId)
                            .col(PushStates::SubscriptionId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_push_states_target_id")
                            .from(PushStates::Table, PushStates::TargetId)
                            .to(OutboundTargets::Table, OutboundTargets::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .on_update(ForeignKeyAction::NoAction),
                    )
                    .take(),
            )
            .await?;
        // The detail of a subscription shows its states on every target.
        manager
            .create_index(
                Index::create()
                    .name("idx_push_states_subscription_id")
                    .table(PushStates::Table)
                    .col(PushStates::SubscriptionId)
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PushStates::Table).take())
            .await
    }
}
