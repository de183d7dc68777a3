//! What a load last wrote to each subscription it manages: the subscription's version after the
//! write, the object's external id and a digest of the fields loads compare. While a
//! subscription stays at that version, a later load compares digests instead of reading it.
//! Marks from before this migration have none of them and are read as before.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ProvisionedSubscriptions {
    Table,
    Version,
    ExternalId,
    Fingerprint,
}

/// The new columns, each its own statement (SQLite alters one column at a time).
fn columns() -> [ColumnDef; 3] {
    [
        big_integer_null(ProvisionedSubscriptions::Version),
        string_len_null(ProvisionedSubscriptions::ExternalId, 255),
        string_len_null(ProvisionedSubscriptions::Fingerprint, 64),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for mut column in columns() {
            manager
                .alter_table(
                    Table::alter()
                        .table(ProvisionedSubscriptions::Table)
                        .add_column(&mut column)
                        .take(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in columns() {
            manager
                .alter_table(
                    Table::alter()
                        .table(ProvisionedSubscriptions::Table)
                        .drop_column(column.get_column_name())
                        .take(),
                )
                .await?;
        }
        Ok(())
    }
}
