//! Project automation, in the cargo-xtask style: `cargo xtask <command>`.
//!
//! - `cargo xtask migrate up|down|fresh|status [--database-url URL]` runs cadre's migrations.
//! - `cargo xtask codegen [--check]` regenerates the sea-orm entities of `cadre-store` from a
//!   freshly migrated scratch database, the built-in forms' schemas and the OpenAPI document;
//!   `--check` fails instead when a committed file is stale (a test runs the same check).
//! - `cargo xtask bench engine [--database-url URL]` runs the engine benchmark.

mod bench;
mod codegen;
mod migrate;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "cadre's project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs database migrations.
    Migrate(migrate::MigrateArgs),
    /// Regenerates generated files (sea-orm entities), or checks that they are up to date.
    Codegen(codegen::CodegenArgs),
    /// Runs a benchmark and prints its figures.
    Bench(bench::BenchArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Migrate(args) => migrate::run(args).await,
        Command::Codegen(args) => codegen::run(args).await,
        Command::Bench(args) => bench::run(args),
    }
}

/// The workspace root.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
