//! cadre's database schema as reversible sea-orm migrations.
//!
//! [`Migrator`] lists them in order. [`catalogue`] installs products given as data, for the
//! demo catalogue and for a downstream crate's own products. `cargo xtask migrate up|down|fresh|status` and
//! `cadre serve` run them; `cargo xtask codegen` regenerates the sea-orm entities of
//! `cadre-store` from a freshly migrated scratch database. A shipped migration never changes
//! what it does: a schema change is a new migration.

pub use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

mod m20261124_000001_catalogue_and_subscriptions;
mod m20261124_000002_demo_catalogue;
mod m20261124_000003_processes;
mod m20261124_000004_api_tokens;
mod m20261201_000005_workflow_groups;
mod m20261201_000006_provisioning;
mod m20261201_000007_registration;
mod m20261201_000008_load_fingerprints;
mod m20261202_000009_processes_fillfactor;
mod m20261202_000010_description_search_index;
mod m20261202_000011_subscription_changes;
mod m20261202_000012_accounts;
mod m20261202_000013_registration_hardening;
mod m20261202_000014_audit;
mod m20261202_000015_email_changes_and_token_owners;
mod m20261204_000016_group_external_ids;
mod m20261204_000017_employment;
mod m20261204_000018_outbound_targets;
mod m20261204_000019_push_states;

pub mod catalogue;
pub mod demo;

/// All of cadre's migrations, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_catalogue_and_subscriptions::Migration),
            Box::new(m20261124_000002_demo_catalogue::Migration),
            Box::new(m20261124_000003_processes::Migration),
            Box::new(m20261124_000004_api_tokens::Migration),
            Box::new(m20261201_000005_workflow_groups::Migration),
            Box::new(m20261201_000006_provisioning::Migration),
            Box::new(m20261201_000007_registration::Migration),
            Box::new(m20261201_000008_load_fingerprints::Migration),
            Box::new(m20261202_000009_processes_fillfactor::Migration),
            Box::new(m20261202_000010_description_search_index::Migration),
            Box::new(m20261202_000011_subscription_changes::Migration),
            Box::new(m20261202_000012_accounts::Migration),
            Box::new(m20261202_000013_registration_hardening::Migration),
            Box::new(m20261202_000014_audit::Migration),
            Box::new(m20261202_000015_email_changes_and_token_owners::Migration),
            Box::new(m20261204_000016_group_external_ids::Migration),
            Box::new(m20261204_000017_employment::Migration),
            Box::new(m20261204_000018_outbound_targets::Migration),
            Box::new(m20261204_000019_push_states::Migration),
        ]
    }
}

/// Runs `sql` (one statement or several) on `backend` only, for what the other backend has no
/// counterpart of.
async fn only_on(manager: &SchemaManager<'_>, backend: DbBackend, sql: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() == backend {
        manager.get_connection().execute_unprepared(sql).await?;
    }
    Ok(())
}
