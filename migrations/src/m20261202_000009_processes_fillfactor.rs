//! Room for in-place updates of process rows on PostgreSQL: every step commit rewrites its
//! process row, and a new row version can stay on the page (a HOT update, with no index
//! entries to add) only while the page has free space. SQLite has no such setting.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::only_on;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        only_on(
            manager,
            DbBackend::Postgres,
            "ALTER TABLE processes SET (fillfactor = 70)",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        only_on(
            manager,
            DbBackend::Postgres,
            "ALTER TABLE processes RESET (fillfactor)",
        )
        .await
    }
}
