//! Self-registration: pending users, their single-use tokens (only a hash of each secret), the
//! password hashes of registered users, and the outbox of mails and webhook calls.
//!
//! Pending user names and emails are unique in the schema; tokens go with the pending user,
//! user or group they concern.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PendingUsers {
    Table,
    Id,
    UserName,
    Email,
    PasswordHash,
    RegisteredAt,
    EmailConfirmedAt,
}

#[derive(DeriveIden)]
enum RegistrationTokens {
    Table,
    Id,
    SecretHash,
    Operation,
    PendingUserId,
    UserId,
    GroupId,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum UserCredentials {
    Table,
    SubscriptionId,
    PasswordHash,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    Kind,
    Payload,
    CreatedAt,
    Attempts,
    NextAttemptAt,
    DeliveredAt,
    LastError,
}

#[derive(DeriveIden)]
enum Subscriptions {
    Table,
    Id,
}

fn cascade(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(ForeignKeyAction::Cascade)
        .on_update(ForeignKeyAction::NoAction)
        .take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PendingUsers::Table)
                    .col(pk_uuid(PendingUsers::Id))
                    .col(string_len_uniq(PendingUsers::UserName, 64))
                    .col(string_len_uniq(PendingUsers::Email, 254))
                    .col(text(PendingUsers::PasswordHash))
                    .col(timestamp_with_time_zone(PendingUsers::RegisteredAt))
                    .col(timestamp_with_time_zone_null(
                        PendingUsers::EmailConfirmedAt,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RegistrationTokens::Table)
                    .col(pk_uuid(RegistrationTokens::Id))
                    .col(string_len(RegistrationTokens::SecretHash, 64))
                    .col(string_len(RegistrationTokens::Operation, 32))
                    .col(uuid_null(RegistrationTokens::PendingUserId))
                    .col(uuid_null(RegistrationTokens::UserId))
                    .col(uuid_null(RegistrationTokens::GroupId))
                    .col(timestamp_with_time_zone(RegistrationTokens::CreatedAt))
                    .col(timestamp_with_time_zone(RegistrationTokens::ExpiresAt))
                    .foreign_key(&mut cascade(
                        "fk_registration_tokens_pending_user_id",
                        (RegistrationTokens::Table, RegistrationTokens::PendingUserId),
                        (PendingUsers::Table, PendingUsers::Id),
                    ))
                    .foreign_key(&mut cascade(
                        "fk_registration_tokens_user_id",
                        (RegistrationTokens::Table, RegistrationTokens::UserId),
                        (Subscriptions::Table, Subscriptions::Id),
                    ))
                    .foreign_key(&mut cascade(
                        "fk_registration_tokens_group_id",
                        (RegistrationTokens::Table, RegistrationTokens::GroupId),
                        (Subscriptions::Table, Subscriptions::Id),
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_registration_tokens_expires_at")
                    .table(RegistrationTokens::Table)
                    .col(RegistrationTokens::ExpiresAt)
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UserCredentials::Table)
                    .col(pk_uuid(UserCredentials::SubscriptionId))
                    .col(text(UserCredentials::PasswordHash))
                    .col(timestamp_with_time_zone(UserCredentials::CreatedAt))
                    .foreign_key(&mut cascade(
                        "fk_user_credentials_subscription_id",
                        (UserCredentials::Table, UserCredentials::SubscriptionId),
                        (Subscriptions::Table, Subscriptions::Id),
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(pk_uuid(Outbox::Id))
                    .col(string_len(Outbox::Kind, 16))
                    .col(text(Outbox::Payload))
                    .col(timestamp_with_time_zone(Outbox::CreatedAt))
                    .col(big_integer(Outbox::Attempts))
                    .col(timestamp_with_time_zone_null(Outbox::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(Outbox::DeliveredAt))
                    .col(text_null(Outbox::LastError))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_outbox_next_attempt_at")
                    .table(Outbox::Table)
                    .col(Outbox::NextAttemptAt)
                    .take(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Outbox::Table.into_iden(),
            UserCredentials::Table.into_iden(),
            RegistrationTokens::Table.into_iden(),
            PendingUsers::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).take())
                .await?;
        }
        Ok(())
    }
}
