//! Project automation, in the cargo-xtask style: `cargo xtask <command>`.
//!
//! - `cargo xtask migrate up|down|fresh|status [--database-url URL]` runs cadre's migrations.
//! - `cargo xtask codegen [--check]` regenerates the sea-orm entities of `cadre-store` from a
//!   freshly migrated scratch database, the built-in forms' schemas and the OpenAPI document;
//!   `--check` fails instead when a committed file is stale (a test runs the same check).
//! - `cargo xtask bench engine|api|upload|provisioning|auth|ui` runs a benchmark.
//! - `cargo xtask screenshots` photographs the web UI's main pages into `docs/screenshots/`.

mod bench;
mod codegen;
mod migrate;
mod screenshots;

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
    /// Photographs the web UI's main pages on a demo database (needs chromium-driver).
    Screenshots(screenshots::ScreenshotsArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Migrate(args) => migrate::run(args).await,
        Command::Codegen(args) => codegen::run(args).await,
        Command::Bench(args) => bench::run(args),
        Command::Screenshots(args) => screenshots::run(args).await,
    }
}

/// The workspace root.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
