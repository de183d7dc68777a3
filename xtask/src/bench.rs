//! `cargo xtask bench <target>`: runs a benchmark binary in release mode with its settings.
//!
//! - `engine`: `crates/engine/benches/engine.rs`, on a fresh SQLite file and, with
//!   `--database-url postgres://…` (or `DATABASE_URL`), also on fresh databases on that server.
//! - `api`: `crates/server/benches/api.rs` against the release `cadre` binary, on a fresh
//!   SQLite file, or with `--database-url postgres://…` on a fresh database on that server.
//! - `upload`: `crates/server/benches/upload.rs`: a streamed upload of `--upload-mib` MiB to the
//!   release `cadre` binary, with the server's peak memory.
//! - `provisioning`: `crates/provisioning/benches/loads.rs`: full loads of `--users` users in
//!   `--groups` groups against a raw bulk insert of the same rows, and an incremental load of
//!   `--incremental` rows on `--base-users` users, on fresh SQLite files, or with
//!   `--database-url postgres://…` on fresh databases on that server.
//! - `auth`: `crates/server/benches/auth.rs`: sign-ins per second over HTTP against raw argon2id
//!   verifications with the same parameters, and the health check's latency meanwhile, for
//!   `--seconds` each, against the release `cadre` binary on a fresh SQLite file.
//! - `ui`: `crates/server/benches/ui.rs`: the web UI's pages for a signed-in admin over
//!   `--subscriptions` groups, open-loop at `--rate` (200) per second, against the release
//!   `cadre` binary, on a fresh SQLite file or with `--database-url postgres://…` on a fresh
//!   database on that server.
//! - `load`: `crates/server/benches/load.rs`: `--clients` clients (200) against the release
//!   `cadre` binary for `--seconds` per run, well-behaved, then with one request in ten hostile,
//!   over `--subscriptions` groups; on a fresh SQLite file or with `--database-url postgres://…`.
//! - `scim`: `crates/server/benches/scim.rs`: over `--subscriptions` users, `filter=userName eq`
//!   open-loop at `--rate` (500) against the health check, a cursor walk over every user, and a
//!   `/Bulk` of 1,000 creates against a bulk load of 1,000 rows, against the release `cadre`
//!   binary; on a fresh SQLite file or with `--database-url postgres://…`.
//! - `outbound`: `crates/server/benches/outbound.rs`: a bulk load of `--users` (10,000) users
//!   pushed by the release `cadre` binary to a fresh scim2-server (bulk on, `$SCIM2_SERVER`)
//!   and a fresh slapd, against the same users written to them directly (SCIM `POST /Users` and
//!   `/Bulk`, `ldapadd`), then a reconcile of the unchanged users against the push; on a fresh
//!   SQLite file or with `--database-url postgres://…`.

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
    #[arg(long, default_value = "1,2,4,8,16")]
    workers: String,
    /// API: subscriptions in the database.
    #[arg(long, default_value_t = 100_000)]
    subscriptions: u64,
    /// Load: concurrent clients.
    #[arg(long, default_value_t = 200)]
    clients: u64,
    /// API and UI: requests per second of the open-loop runs (API 1,000, UI 200).
    #[arg(long)]
    rate: Option<u64>,
    /// API: seconds per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Upload: the size of the large upload, in MiB.
    #[arg(long, default_value_t = 1024)]
    upload_mib: u64,
    /// Provisioning: users in the full loads (100,000); outbound: users pushed (10,000).
    #[arg(long)]
    users: Option<u64>,
    /// Provisioning: groups the users of every load are spread over (round-robin).
    #[arg(long, default_value_t = 1_000)]
    groups: u64,
    /// Provisioning: users in the database the incremental load runs on.
    #[arg(long, default_value_t = 1_000_000)]
    base_users: u64,
    /// Provisioning: rows of the incremental load (half updates, 40% new users, 10% removals).
    #[arg(long, default_value_t = 1_000)]
    incremental: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum Target {
    /// The workflow engine: create-User processes against raw commits.
    Engine,
    /// The REST API: latency and throughput of a running `cadre serve`.
    Api,
    /// Workflow group uploads: the server's memory while it streams a large file.
    Upload,
    /// Bulk provisioning: full and incremental user loads against raw bulk inserts.
    Provisioning,
    /// Sign-ins: per second against raw argon2id, and the health check meanwhile.
    Auth,
    /// The web UI: latency of its pages rendered by a running `cadre serve`.
    Ui,
    /// Many clients, well-behaved and then one request in ten hostile, against `cadre serve`.
    Load,
    /// SCIM: a filter by user name, a cursor walk, and a Bulk of creates, against `cadre serve`.
    Scim,
    /// Outbound: a bulk load pushed to scim2-server and slapd against raw writes, and a reconcile.
    Outbound,
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
        Target::Api => http(&args, "api", 1_000),
        Target::Ui => http(&args, "ui", 200),
        Target::Upload => upload(args.upload_mib),
        Target::Provisioning => provisioning(&args),
        Target::Auth => auth(args.seconds),
        Target::Load => http(&args, "load", 0),
        Target::Scim => http(&args, "scim", 500),
        Target::Outbound => http(&args, "outbound", 0),
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

/// Builds the release `cadre` binary and returns its path.
pub(crate) fn release_binary() -> anyhow::Result<std::path::PathBuf> {
    let built = cargo()
        .args(["build", "--release", "--quiet", "-p", "cadre"])
        .status()
        .context("cannot run cargo build")?;
    if !built.success() {
        bail!("building the cadre binary failed");
    }
    // Cargo puts it under `CARGO_TARGET_DIR` when that is set (relative: to the workspace).
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|dir| !dir.is_empty())
        .map_or_else(
            || std::path::PathBuf::from("target"),
            std::path::PathBuf::from,
        );
    Ok(crate::project_root().join(target).join("release/cadre"))
}

fn upload(mib: u64) -> anyhow::Result<()> {
    let binary = release_binary()?;
    let status = cargo()
        .args([
            "bench",
            "--quiet",
            "-p",
            "cadre-server",
            "--bench",
            "upload",
        ])
        .env("BENCH_CADRE_BIN", &binary)
        .env("BENCH_UPLOAD_MIB", mib.to_string())
        .env_remove("DATABASE_URL")
        .status()
        .context("cannot run cargo bench")?;
    if !status.success() {
        bail!("the upload benchmark failed");
    }
    Ok(())
}

fn auth(seconds: u64) -> anyhow::Result<()> {
    let binary = release_binary()?;
    let status = cargo()
        .args(["bench", "--quiet", "-p", "cadre-server", "--bench", "auth"])
        .env("BENCH_CADRE_BIN", &binary)
        .env("BENCH_SECONDS", seconds.to_string())
        .env_remove("DATABASE_URL")
        .status()
        .context("cannot run cargo bench")?;
    if !status.success() {
        bail!("the sign-in benchmark failed");
    }
    Ok(())
}

fn provisioning(args: &BenchArgs) -> anyhow::Result<()> {
    let database_url = args
        .database_url
        .as_deref()
        .filter(|url| url.starts_with("postgres"));
    let status = cargo()
        .args([
            "bench",
            "--quiet",
            "-p",
            "cadre-provisioning",
            "--bench",
            "loads",
        ])
        .env("BENCH_DATABASE_URL", database_url.unwrap_or_default())
        .env("BENCH_USERS", args.users.unwrap_or(100_000).to_string())
        .env("BENCH_GROUPS", args.groups.to_string())
        .env("BENCH_BASE_USERS", args.base_users.to_string())
        .env("BENCH_INCREMENTAL", args.incremental.to_string())
        .status()
        .context("cannot run cargo bench")?;
    if !status.success() {
        bail!("the provisioning benchmark failed");
    }
    Ok(())
}

/// Runs the HTTP benchmark `name` of cadre-server (`api`, `ui`, `load`, `scim` or `outbound`)
/// at `--rate`, by default `default_rate` requests per second (`load` has clients instead,
/// `--clients`; `outbound` users, `--users`).
fn http(args: &BenchArgs, name: &str, default_rate: u64) -> anyhow::Result<()> {
    let binary = release_binary()?;
    let mut bench = cargo();
    bench
        .args(["bench", "--quiet", "-p", "cadre-server", "--bench", name])
        .env("BENCH_CADRE_BIN", &binary)
        .env("BENCH_SUBSCRIPTIONS", args.subscriptions.to_string())
        .env("BENCH_RATE", args.rate.unwrap_or(default_rate).to_string())
        .env("BENCH_SECONDS", args.seconds.to_string())
        .env("BENCH_CLIENTS", args.clients.to_string())
        .env("BENCH_USERS", args.users.unwrap_or(10_000).to_string());
    match args
        .database_url
        .as_deref()
        .filter(|url| url.starts_with("postgres"))
    {
        Some(url) => bench.env("DATABASE_URL", url),
        None => bench.env_remove("DATABASE_URL"),
    };
    if !bench.status().context("cannot run cargo bench")?.success() {
        bail!("the {name} benchmark failed");
    }
    Ok(())
}

fn engine(database_url: Option<&str>, processes: u32, workers: &str) -> anyhow::Result<()> {
    let status = cargo()
        .args([
            "bench",
            "--quiet",
            "-p",
            "cadre-products",
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
