//! The audit log: one row per event (sign-ins, passwords, tokens, roles, registration decisions,
//! operator actions on processes), appended and never changed, removed only by age.
//!
//! Ids are UUID v7, so the primary key orders events by time and serves the listing's cursor;
//! each filter has an index ending in the id, and `at` one for the retention purge and the
//! time filters. No foreign keys: an event outlives what it names.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    At,
    Actor,
    ActorUserId,
    ClientAddr,
    Action,
    Target,
    Outcome,
    Detail,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(pk_uuid(AuditEvents::Id))
                    .col(timestamp_with_time_zone(AuditEvents::At))
                    .col(text(AuditEvents::Actor))
                    .col(uuid_null(AuditEvents::ActorUserId))
                    .col(text_null(AuditEvents::ClientAddr))
                    .col(string_len(AuditEvents::Action, 64))
                    .col(text_null(AuditEvents::Target))
                    .col(string_len(AuditEvents::Outcome, 16))
                    .col(text_null(AuditEvents::Detail))
                    .take(),
            )
            .await?;
        for (name, column) in [
            ("ix_audit_events_action_id", AuditEvents::Action),
            ("ix_audit_events_actor_id", AuditEvents::Actor),
            ("ix_audit_events_target_id", AuditEvents::Target),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(AuditEvents::Table)
                        .col(column)
                        .col(AuditEvents::Id)
                        .take(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("ix_audit_events_at")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::At)
                    .take(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditEvents::Table).take())
            .await
    }
}
