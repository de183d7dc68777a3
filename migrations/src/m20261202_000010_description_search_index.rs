//! An index for text search over subscription descriptions on PostgreSQL: a listing's `query=`
//! filter is `lower(description) LIKE '%text%'`, which no B-tree can serve, so without this
//! every search (and its total) scans the whole table. A `pg_trgm` GIN index over
//! `lower(description)` answers such patterns from the trigrams of the text (patterns of three
//! or more characters; shorter ones still scan).
//!
//! `pg_trgm` ships with PostgreSQL's contrib modules and is a trusted extension (13 and later),
//! so a database owner may create it. Where it is not installed, or the role may not create it,
//! the migration leaves the index out with a notice: search then works as before, by scanning.
//! SQLite keeps the scan (its trigram index, FTS5, needs stable row ids, which a table keyed by
//! UUID does not have).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::only_on;

#[derive(DeriveMigrationName)]
pub struct Migration;

const CREATE: &str = r"
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        RAISE NOTICE 'pg_trgm is not installed: text search over descriptions will scan';
        RETURN;
    END IF;
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX ix_subscriptions_description_trgm
        ON subscriptions USING gin (lower(description) gin_trgm_ops);
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'this role may not create pg_trgm: text search over descriptions will scan';
END
$$";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        only_on(manager, DbBackend::Postgres, CREATE).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The extension stays: other schemas or tables may use it.
        only_on(
            manager,
            DbBackend::Postgres,
            "DROP INDEX IF EXISTS ix_subscriptions_description_trgm",
        )
        .await
    }
}
