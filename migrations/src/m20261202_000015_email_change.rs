//! A user's change of email address, confirmed from the new address (issue #18): a mailed link
//! is a registration token of the operation `confirm_email_change`, and `registration_tokens`
//! gains `email`, the address the link proves (`NULL` for every other operation).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RegistrationTokens {
    Table,
    Email,
}

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
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
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
