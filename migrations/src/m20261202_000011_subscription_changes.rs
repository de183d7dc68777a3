//! A change counter for subscriptions on SQLite, so that a remembered listing total can be
//! checked without counting again (as PostgreSQL's MVCC snapshot lets the store do there).
//!
//! Triggers add one to `subscription_changes.version` with every row inserted into, updated in
//! or deleted from `subscriptions`, in the writing transaction, whoever writes (this server,
//! another process, the CLI). A total counted together with the version it saw stands while
//! the version has not moved. SQLite serialises writers anyway, so the single counter row
//! costs no concurrency; PostgreSQL keeps its snapshots instead (a counter row there would
//! serialise every transaction that writes a subscription).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::only_on;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = "
CREATE TABLE subscription_changes (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO subscription_changes (id, version) VALUES (1, 0);
CREATE TRIGGER subscription_changes_on_insert AFTER INSERT ON subscriptions
BEGIN UPDATE subscription_changes SET version = version + 1; END;
CREATE TRIGGER subscription_changes_on_update AFTER UPDATE ON subscriptions
BEGIN UPDATE subscription_changes SET version = version + 1; END;
CREATE TRIGGER subscription_changes_on_delete AFTER DELETE ON subscriptions
BEGIN UPDATE subscription_changes SET version = version + 1; END;
";

const DOWN: &str = "
DROP TRIGGER subscription_changes_on_delete;
DROP TRIGGER subscription_changes_on_update;
DROP TRIGGER subscription_changes_on_insert;
DROP TABLE subscription_changes;
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        only_on(manager, DbBackend::Sqlite, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        only_on(manager, DbBackend::Sqlite, DOWN).await
    }
}
