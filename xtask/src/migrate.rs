//! `cargo xtask migrate`: applies, reverts and reports cadre's migrations.

use anyhow::Context;
use cadre_migrations::{Migrator, MigratorTrait};
use clap::{Args, ValueEnum};
use sea_orm::{ConnectOptions, Database};

/// The default database: the SQLite file `cadre serve` uses, created if absent.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://cadre.db?mode=rwc";

#[derive(Args)]
pub struct MigrateArgs {
    /// What to do.
    action: Action,
    /// The database; PostgreSQL (`postgres://…`) or SQLite (`sqlite://file.db?mode=rwc`).
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
    /// How many migrations `up` applies or `down` reverts (default: all for up, one for down).
    #[arg(long, short = 'n')]
    steps: Option<u32>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Action {
    /// Applies pending migrations.
    Up,
    /// Reverts applied migrations, the last one by default.
    Down,
    /// Drops every table and applies all migrations again.
    Fresh,
    /// Lists migrations and whether each is applied.
    Status,
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let mut options = ConnectOptions::new(args.database_url.clone());
    options.sqlx_logging(false);
    let db = Database::connect(options)
        .await
        .with_context(|| format!("cannot connect to {}", args.database_url))?;
    match args.action {
        Action::Up => Migrator::up(&db, args.steps).await?,
        Action::Down => Migrator::down(&db, Some(args.steps.unwrap_or(1))).await?,
        Action::Fresh => Migrator::fresh(&db).await?,
        Action::Status => {}
    }
    for migration in Migrator::get_migration_with_status(&db).await? {
        println!(
            "{:<10} {}",
            migration.status().to_string(),
            migration.name()
        );
    }
    Ok(())
}
