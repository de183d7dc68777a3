//! Accounts, continued (issue #18).
//!
//! A user's change of email address is confirmed from the new address: the mailed link is a
//! registration token of the operation `confirm-email-change`, and `registration_tokens` gains
//! `email`, the address the link proves (`NULL` for every other operation).
//!
//! People list and count their own API tokens: `api_tokens` gains an index on `user_id`.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RegistrationTokens {
    Table,
    Email,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    UserId,
}

const TOKEN_OWNER_INDEX: &str = "ix_api_tokens_user_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(RegistrationTokens::Table)
                    .add_column(string_null(RegistrationTokens::Email))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(TOKEN_OWNER_INDEX)
                    .table(ApiTokens::Table)
                    .col(ApiTokens::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(TOKEN_OWNER_INDEX)
                    .table(ApiTokens::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(RegistrationTokens::Table)
                    .drop_column(RegistrationTokens::Email)
                    .to_owned(),
            )
            .await
    }
}
