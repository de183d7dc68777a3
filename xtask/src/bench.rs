//! `cargo xtask bench <target>`: runs a benchmark binary in release mode with its settings.
//!
//! - `engine`: `crates/engine/benches/engine.rs`, on a fresh SQLite file and, with
//!   `--database-url postgres://…` (or `DATABASE_URL`), also on fresh databases on that server.

use std::process::Command;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

#[derive(Args)]
pub struct BenchArgs {
    /// What to measure.
    target: Target,
    /// A PostgreSQL server to measure on as well (each run creates its own database there).
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Processes per run.
    #[arg(long, default_value_t = 1000)]
    processes: u32,
    /// Worker counts to measure on PostgreSQL, comma-separated (SQLite always uses one).
    #[arg(long, default_value = "1,2,4,8")]
    workers: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum Target {
    /// The workflow engine: create-User processes against raw commits.
    Engine,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.target {
        Target::Engine => {
            engine(None, args.processes, "1")?;
            if let Some(url) = args
                .database_url
                .as_deref()
                .filter(|url| url.starts_with("postgres"))
            {
                engine(Some(url), args.processes, &args.workers)?;
            }
            Ok(())
        }
    }
}

fn engine(database_url: Option<&str>, processes: u32, workers: &str) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args([
            "bench",
            "--quiet",
            "-p",
            "cadre-engine",
            "--bench",
            "engine",
        ])
        .env("BENCH_DATABASE_URL", database_url.unwrap_or_default())
        .env("BENCH_PROCESSES", processes.to_string())
        .env("BENCH_WORKERS", workers)
        .status()
        .context("cannot run cargo bench")?;
    if !status.success() {
        bail!("the engine benchmark failed");
    }
    Ok(())
}
