//! `cadre`: serve the API and workers, or act on the database directly as an operator.
//!
//! Every command reads the same configuration as `cadre serve` (defaults, `--config` TOML
//! file, `CADRE_*` and `DATABASE_URL` environment variables, flags), so an operator command
//! acts on the database the server uses. Output is a table for people, or JSON with `--json`
//! (the API's wire shapes). Errors go to stderr with a non-zero exit code.

mod admins;
mod audit;
mod groups;
mod output;
mod processes;
mod provision;
mod serve;
mod subscriptions;
mod targets;
mod tokens;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use cadre_server::{ApiError, Config, LogFormat};
use clap::{Parser, Subcommand};
use serde_json::Value;

use crate::admins::{AdminCommand, admin};
use crate::audit::{AuditCommand, audit};
use crate::groups::{GroupCommand, workflow_group};
use crate::output::Output;
use crate::processes::{ProcessCommand, WorkflowCommand, process, workflow};
use crate::provision::{ProvisionArgs, provision};
use crate::serve::{ServeArgs, serve};
use crate::subscriptions::{SubscriptionCommand, subscription};
use crate::targets::{TargetCommand, target};
use crate::tokens::{TokenCommand, token};

#[derive(Debug, Parser)]
#[command(
    name = "cadre",
    version,
    about = "Users and groups as subscriptions, changed by durable workflows"
)]
struct Cli {
    /// TOML configuration file (see docs/configuration.md).
    #[arg(long, global = true, env = "CADRE_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL: `sqlite://FILE?mode=rwc` or `postgres://…` (default: ./cadre.db).
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Print JSON (the API's shapes) instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the REST API and engine workers.
    Serve(ServeArgs),
    /// Create the database if needed and apply pending migrations.
    Migrate,
    /// Admins who sign in with a password.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Workflows.
    #[command(subcommand)]
    Workflow(WorkflowCommand),
    /// Processes (workflow runs).
    #[command(subcommand)]
    Process(ProcessCommand),
    /// Subscriptions.
    #[command(subcommand)]
    Subscription(SubscriptionCommand),
    /// Workflow groups (teams of users attached to a workflow) and their files, as an admin.
    #[command(subcommand, name = "workflow-group")]
    WorkflowGroup(GroupCommand),
    /// Bulk-load users or user groups from a CSV, JSON or JSON Lines file, running the load here.
    Provision(ProvisionArgs),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The applications cadre provisions into (their credentials sealed with `outbound_key`).
    #[command(subcommand)]
    Target(TargetCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // What cadre creates (the SQLite database, mails, uploaded files) is for its own user only.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let mut config = Config::load(cli.config.as_deref()).map_err(|error| anyhow!("{error}"))?;
    if let Some(url) = cli.database_url {
        config.database_url = url;
    }
    let output = Output { json: cli.json };
    if let Command::Serve(args) = cli.command {
        return serve(config, args).await;
    }
    init_tracing("warn", config.log_format);
    let engine = cadre_server::Cadre::new()
        .open(&config.database_url)
        .await?;
    // The engine as the server wires it: hooks, and pushes to the outbound targets.
    let state = cadre_server::app_state(engine, &config)?;
    let engine = state.engine.clone();
    match cli.command {
        Command::Serve(_) => unreachable!("handled above"),
        Command::WorkflowGroup(command) => workflow_group(&state.groups, &output, command).await,
        Command::Provision(args) => provision(&state.provisioner, &engine, &output, args).await,
        Command::Migrate => {
            output.message("database is up to date");
            Ok(())
        }
        Command::Admin(command) => admin(&engine, &state, &config, &output, command).await,
        Command::Token(command) => token(&engine, &config.accounts, &output, command).await,
        Command::Workflow(command) => workflow(&engine, &output, command).await,
        Command::Process(command) => process(&engine, &output, command).await,
        Command::Subscription(command) => subscription(&engine, &output, command).await,
        Command::Audit(command) => audit(&engine, &output, command).await,
        Command::Target(command) => {
            target(&engine, state.outbound_key.as_ref(), &output, command).await
        }
    }
}

pub(crate) fn init_tracing(default: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(default))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().init(),
    }
}

/// Who the operator is, as processes record it.
pub(crate) fn operator() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "operator".to_owned())
    )
}

pub(crate) fn parse_pages(pages: &[String]) -> Result<Vec<Value>> {
    pages
        .iter()
        .enumerate()
        .map(|(index, page)| {
            serde_json::from_str(page).with_context(|| format!("page {index} is not valid JSON"))
        })
        .collect()
}

/// Turns an API error into a message for the terminal, with the form's own detail.
pub(crate) fn explain(error: ApiError) -> anyhow::Error {
    match error {
        ApiError::FormNotComplete(body) => anyhow!(
            "the form needs another page; its schema:\n{}",
            serde_json::to_string_pretty(&body.form).unwrap_or_default()
        ),
        ApiError::FormInvalid(body) => {
            let errors: Vec<String> = body
                .validation_errors
                .iter()
                .map(|error| {
                    let loc: Vec<String> = error.loc.iter().map(|part| part.to_string()).collect();
                    format!("  {}: {} ({})", loc.join("."), error.msg, error.kind)
                })
                .collect();
            anyhow!("page {} is not valid:\n{}", body.page, errors.join("\n"))
        }
        other => anyhow!(other),
    }
}
