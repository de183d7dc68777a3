//! API tokens: who may call the server, with which role.
//!
//! A token is shown once when created; only a SHA-256 hash of its secret part is stored.
//! Revoking keeps the row (for audit) and sets `revoked_at`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    Name,
    Role,
    SecretHash,
    CreatedBy,
    CreatedAt,
    RevokedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ApiTokens::Table)
                    .col(pk_uuid(ApiTokens::Id))
                    .col(string_len(ApiTokens::Name, 255))
                    .col(string_len(ApiTokens::Role, 32))
                    .col(string_len(ApiTokens::SecretHash, 64))
                    .col(string_len(ApiTokens::CreatedBy, 255))
                    .col(timestamp_with_time_zone(ApiTokens::CreatedAt))
                    .col(timestamp_with_time_zone_null(ApiTokens::RevokedAt))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ApiTokens::Table).take())
            .await
    }
}
