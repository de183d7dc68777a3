//! `cadre`: serve the API and workers, or act on the database directly as an operator.
//!
//! Every command reads the same configuration as `cadre serve` (defaults, `--config` TOML
//! file, `CADRE_*` and `DATABASE_URL` environment variables, flags), so an operator command
//! acts on the database the server uses. Output is a table for people, or JSON with `--json`
//! (the API's wire shapes). Errors go to stderr with a non-zero exit code.

mod output;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use cadre_domain::{Clock, Role, SystemClock};
use cadre_engine::Engine;
use cadre_groups::{Actor, GroupChanges, NewGroup, WorkflowGroups};
use cadre_provisioning::input::{read_user_groups, read_users};
use cadre_provisioning::{Format, LoadSettings, Mode as LoadMode, Provisioner, Rows};
use cadre_server::api::groups::{FileSchema, GroupSchema};
use cadre_server::api::{processes, subscriptions, workflows};
use cadre_server::{ApiError, Config, Mode};
use clap::{Args, Parser, Subcommand};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::output::Output;

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
}

/// What a load provisions.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ProvisionKind {
    /// Users: `user_id, firstname, lastname, email, auth_id, user_groups[, is_active]`.
    Users,
    /// User groups: `user_group_id, user_group_name, parent_user_groups[, is_active]`.
    Groups,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["full", "incremental"])))]
struct ProvisionArgs {
    /// Users or groups.
    kind: ProvisionKind,
    /// The file: `.csv` (list columns `|`-separated), `.json` (an array) or `.jsonl`.
    file: PathBuf,
    /// The file is the whole truth: create, update, and remove what it does not list.
    #[arg(long)]
    full: bool,
    /// The file lists changes: upsert rows with `is_active` true, remove those with false.
    #[arg(long)]
    incremental: bool,
    /// Only plan: print what would change and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Apply a full load even when it removes more than 20% of what loads manage.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Subcommand)]
enum GroupCommand {
    /// List groups.
    List {
        /// Only groups of this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Only groups with this User subscription as a member.
        #[arg(long)]
        member: Option<Uuid>,
    },
    /// Show one group.
    Show {
        /// Group identifier.
        id: String,
    },
    /// Create a group.
    Create {
        /// The workflow it belongs to.
        #[arg(long)]
        workflow: String,
        /// Its name.
        #[arg(long)]
        name: String,
        /// The owning User subscription.
        #[arg(long)]
        owner: Uuid,
        /// A member besides the owner (repeatable).
        #[arg(long = "member")]
        members: Vec<Uuid>,
        /// An identifier instead of a generated one.
        #[arg(long)]
        identifier: Option<String>,
    },
    /// Rename a group and/or set its exact members.
    Update {
        /// Group identifier.
        id: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// The new member set, owner included (repeatable).
        #[arg(long = "member")]
        members: Option<Vec<Uuid>>,
    },
    /// Delete a group and its files.
    Delete {
        /// Group identifier.
        id: String,
    },
    /// List a group's files.
    Files {
        /// Group identifier.
        id: String,
    },
    /// Upload a file to a group.
    Upload {
        /// Group identifier.
        id: String,
        /// The local file.
        path: PathBuf,
        /// The name to store it under (default: the file's name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Download a file of a group.
    Download {
        /// Group identifier.
        id: String,
        /// File id.
        file_id: Uuid,
        /// Where to write it (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Delete a file of a group.
    DeleteFile {
        /// Group identifier.
        id: String,
        /// File id.
        file_id: Uuid,
    },
    /// Finish uploads and deletions an interrupted server left behind.
    Recover,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (default 127.0.0.1).
    #[arg(long)]
    bind: Option<std::net::IpAddr>,
    /// Port to listen on (default 8080; 0 picks a free one).
    #[arg(long)]
    port: Option<u16>,
    /// Engine workers to run in this process (default 2).
    #[arg(long)]
    workers: Option<usize>,
    /// Serve the API only; workers run elsewhere on the same database.
    #[arg(long, conflicts_with = "workers_only")]
    no_workers: bool,
    /// Run engine workers only, without the API.
    #[arg(long)]
    workers_only: bool,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print it once.
    Create {
        /// Whose or what the token is; processes record it as their creator. Defaults to the
        /// role.
        #[arg(long)]
        name: Option<String>,
        /// `admin` or `user`.
        #[arg(long, default_value = "user")]
        role: String,
        /// The User subscription the token acts for (needed to own and join workflow groups).
        #[arg(long)]
        user: Option<Uuid>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token.
    Revoke {
        /// Token id.
        id: Uuid,
    },
}

#[derive(Debug, Subcommand)]
enum WorkflowCommand {
    /// List workflows.
    List,
    /// Start a workflow with the answers to its form's pages, one JSON object each.
    Start {
        /// Workflow name, e.g. `create_user_group`.
        name: String,
        /// Page answers, e.g. '{"product": "…"}' '{"user_group_id": "g1", …}'.
        pages: Vec<String>,
    },
}

/// Which page of a listing to show.
#[derive(Debug, Args)]
struct Paging {
    /// Rows to skip.
    #[arg(long, default_value_t = 0)]
    offset: u64,
    /// Most rows to show (1 to 1000).
    #[arg(long, default_value_t = 50)]
    limit: u64,
}

#[derive(Debug, Subcommand)]
enum ProcessCommand {
    /// List processes, newest first.
    List {
        /// Only this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Only this status, e.g. `failed`.
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show a process with its steps.
    Show {
        /// Process id.
        id: Uuid,
    },
    /// Resume a suspended process with page answers, or retry a failed one.
    Resume {
        /// Process id.
        id: Uuid,
        /// Answers to the awaited form's pages, one JSON object each.
        pages: Vec<String>,
    },
    /// Abort an unfinished process.
    Abort {
        /// Process id.
        id: Uuid,
    },
}

#[derive(Debug, Subcommand)]
enum SubscriptionCommand {
    /// List subscriptions.
    List {
        /// Only this product type, e.g. `User`.
        #[arg(long)]
        product_type: Option<String>,
        /// Only this lifecycle, e.g. `active`.
        #[arg(long)]
        status: Option<String>,
        /// Only descriptions containing this text.
        #[arg(long)]
        query: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show a subscription with its domain model.
    Show {
        /// Subscription id.
        id: Uuid,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
    init_tracing("warn");
    let engine = cadre_server::Cadre::new()
        .open(&config.database_url)
        .await?;
    let state = cadre_server::app_state(engine.clone(), &config)?;
    match cli.command {
        Command::Serve(_) => unreachable!("handled above"),
        Command::WorkflowGroup(command) => workflow_group(&state.groups, &output, command).await,
        Command::Provision(args) => provision(&state.provisioner, &engine, &output, args).await,
        Command::Migrate => {
            output.message("database is up to date");
            Ok(())
        }
        Command::Token(command) => token(&engine, &output, command).await,
        Command::Workflow(command) => workflow(&engine, &output, command).await,
        Command::Process(command) => process(&engine, &output, command).await,
        Command::Subscription(command) => subscription(&engine, &output, command).await,
    }
}

/// Reads, validates and runs a load, with a progress bar on a terminal and plain lines
/// otherwise, then prints its report. A failed load is an error.
async fn provision(
    provisioner: &Provisioner,
    engine: &Engine,
    output: &Output,
    args: ProvisionArgs,
) -> Result<()> {
    let format = Format::from_path(&args.file).ok_or_else(|| {
        anyhow!(
            "{}: name the file .csv, .json or .jsonl so that its format is known",
            args.file.display()
        )
    })?;
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let reader = std::io::BufReader::new(file);
    let mode = if args.full {
        LoadMode::Full
    } else {
        LoadMode::Incremental
    };
    let rows = match args.kind {
        ProvisionKind::Users => read_users(reader, format, mode).map(Rows::Users),
        ProvisionKind::Groups => read_user_groups(reader, format, mode).map(Rows::UserGroups),
    }
    .map_err(|errors| anyhow!("{}: nothing was loaded:\n{errors}", args.file.display()))?;
    let mut settings = LoadSettings::new(mode);
    settings.dry_run = args.dry_run;
    settings.force = args.force;
    settings.protected = provisioner.protected_users(None).await?;
    let process = provisioner.start(&rows, settings, "cli").await?;

    let runner = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.run_until_idle().await })
    };
    let progress = Progress::new(output.json);
    while !runner.is_finished() {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        progress.show(&engine.store().process(process.id).await?);
    }
    runner.await.context("the load's worker panicked")??;
    let report = provisioner.report(process.id).await?;
    progress.finish(&engine.store().process(process.id).await?);
    let failed = report.failed_reason.clone();
    output.load(&report.into());
    match failed {
        Some(reason) => Err(anyhow!("the load failed: {reason}")),
        None => Ok(()),
    }
}

/// A load's progress: a bar on a terminal, a line per applied batch otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    shown: std::cell::Cell<u64>,
}

impl Progress {
    fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} batches ({eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_message("planning");
            bar
        });
        Self {
            bar,
            shown: std::cell::Cell::new(0),
        }
    }

    fn show(&self, process: &cadre_domain::Process) {
        let count = |key: &str| process.state.get(key).and_then(Value::as_u64).unwrap_or(0);
        let (applied, batches) = (count("applied"), count("batches"));
        match &self.bar {
            Some(bar) => {
                bar.set_length(batches);
                bar.set_position(applied);
                if process.state.contains_key("batches") {
                    bar.set_message("applying");
                }
            }
            None if applied > self.shown.get() => {
                eprintln!("applied batch {applied} of {batches}");
            }
            None => {}
        }
        self.shown.set(applied);
    }

    fn finish(&self, process: &cadre_domain::Process) {
        self.show(process);
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(default))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn serve(mut config: Config, args: ServeArgs) -> Result<()> {
    config.bind = args.bind.unwrap_or(config.bind);
    config.port = args.port.unwrap_or(config.port);
    config.workers = args.workers.unwrap_or(config.workers);
    if args.no_workers {
        config.mode = Mode::ApiOnly;
    }
    if args.workers_only {
        config.mode = Mode::WorkersOnly;
    }
    init_tracing(&config.log);
    cadre_server::Cadre::new()
        .serve(&config, shutdown_signal())
        .await?;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested");
}

/// Who the operator is, as processes record it.
fn operator() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "operator".to_owned())
    )
}

fn parse_pages(pages: &[String]) -> Result<Vec<Value>> {
    pages
        .iter()
        .enumerate()
        .map(|(index, page)| {
            serde_json::from_str(page).with_context(|| format!("page {index} is not valid JSON"))
        })
        .collect()
}

/// Turns an API error into a message for the terminal, with the form's own detail.
fn explain(error: ApiError) -> anyhow::Error {
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

async fn token(engine: &Engine, output: &Output, command: TokenCommand) -> Result<()> {
    let store = engine.store().as_ref();
    match command {
        TokenCommand::Create { name, role, user } => {
            let role: Role = role.parse()?;
            let name = name.unwrap_or_else(|| role.to_string());
            let issued = cadre_server::auth::issue_token(
                store,
                &name,
                role,
                user,
                &operator(),
                SystemClock.now(),
            )
            .await?;
            output.token_created(&issued);
        }
        TokenCommand::List => output.tokens(&store.list_tokens().await?),
        TokenCommand::Revoke { id } => {
            store.revoke_token(id, SystemClock.now()).await?;
            output.message(&format!("token {id} revoked"));
        }
    }
    Ok(())
}

async fn workflow_group(
    groups: &WorkflowGroups,
    output: &Output,
    command: GroupCommand,
) -> Result<()> {
    let operator = Actor::operator();
    match command {
        GroupCommand::List { workflow, member } => {
            let list = groups.list(&operator, workflow.as_deref(), member).await?;
            output.groups(&list.into_iter().map(GroupSchema::from).collect::<Vec<_>>());
        }
        GroupCommand::Show { id } => output.group(&groups.get(&operator, &id).await?.into()),
        GroupCommand::Create {
            workflow,
            name,
            owner,
            members,
            identifier,
        } => {
            let new = NewGroup {
                workflow,
                name,
                identifier,
                owner: Some(owner),
                members,
                ..NewGroup::default()
            };
            output.group(&groups.create(&operator, new).await?.into());
        }
        GroupCommand::Update { id, name, members } => {
            let changes = GroupChanges { name, members };
            output.group(&groups.update(&operator, &id, changes).await?.into());
        }
        GroupCommand::Delete { id } => {
            groups.delete(&operator, &id).await?;
            output.message(&format!("workflow group {id} deleted"));
        }
        GroupCommand::Files { id } => {
            let files = groups.files(&operator, &id).await?;
            output.files(&files.into_iter().map(FileSchema::from).collect::<Vec<_>>());
        }
        GroupCommand::Upload { id, path, name } => {
            let name = match name {
                Some(name) => name,
                None => path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .context("the path names no file; pass --name")?,
            };
            let file = tokio::fs::File::open(&path)
                .await
                .with_context(|| format!("cannot open {}", path.display()))?;
            let content = Box::pin(tokio_util::io::ReaderStream::new(file));
            let stored = groups.upload(&operator, &id, &name, content).await?;
            output.files(&[stored.into()]);
        }
        GroupCommand::Download {
            id,
            file_id,
            output: path,
        } => {
            let (_, mut content) = groups.read_file(&operator, &id, file_id).await?;
            let mut sink: Box<dyn tokio::io::AsyncWrite + Unpin> = match &path {
                Some(path) => Box::new(
                    tokio::fs::File::create(path)
                        .await
                        .with_context(|| format!("cannot create {}", path.display()))?,
                ),
                None => Box::new(tokio::io::stdout()),
            };
            while let Some(chunk) = content.next().await {
                sink.write_all(&chunk?).await?;
            }
            sink.flush().await?;
        }
        GroupCommand::DeleteFile { id, file_id } => {
            groups.delete_file(&operator, &id, file_id).await?;
            output.message(&format!("file {file_id} deleted"));
        }
        GroupCommand::Recover => {
            let recovery = groups.recover(chrono::TimeDelta::hours(1)).await?;
            output.message(&format!(
                "{} abandoned uploads removed, {} deletions completed",
                recovery.abandoned_uploads, recovery.completed_deletions
            ));
        }
    }
    Ok(())
}

async fn workflow(engine: &Engine, output: &Output, command: WorkflowCommand) -> Result<()> {
    match command {
        WorkflowCommand::List => output.workflows(&workflows::list(engine)),
        WorkflowCommand::Start { name, pages } => {
            let pages = parse_pages(&pages)?;
            let process = engine
                .start(&name, &pages, &operator())
                .await
                .map_err(|error| explain(error.into()))?;
            output.created(process.id);
        }
    }
    Ok(())
}

async fn process(engine: &Engine, output: &Output, command: ProcessCommand) -> Result<()> {
    match command {
        ProcessCommand::List {
            workflow,
            status,
            paging,
        } => {
            let filter = processes::ProcessFilter {
                workflow_name: workflow,
                status,
                subscription_id: None,
                offset: Some(paging.offset),
                limit: Some(paging.limit),
            };
            output.processes(&processes::list(engine, filter).await.map_err(explain)?);
        }
        ProcessCommand::Show { id } => {
            output.process(&processes::detail(engine, id).await.map_err(explain)?);
        }
        ProcessCommand::Resume { id, pages } => {
            let pages = parse_pages(&pages)?;
            let process = engine
                .resume(id, &pages, &operator())
                .await
                .map_err(|error| explain(error.into()))?;
            output.message(&format!("process {id} is {}", process.status));
        }
        ProcessCommand::Abort { id } => {
            let process = engine
                .abort(id, &operator())
                .await
                .map_err(|error| explain(error.into()))?;
            output.message(&format!("process {id} is {}", process.status));
        }
    }
    Ok(())
}

async fn subscription(
    engine: &Engine,
    output: &Output,
    command: SubscriptionCommand,
) -> Result<()> {
    match command {
        SubscriptionCommand::List {
            product_type,
            status,
            query,
            paging,
        } => {
            let filter = subscriptions::SubscriptionFilter {
                product_type,
                status,
                query,
                offset: Some(paging.offset),
                limit: Some(paging.limit),
                ..Default::default()
            };
            let page = subscriptions::list(engine, &filter)
                .await
                .map_err(explain)?;
            output.subscriptions(&page);
        }
        SubscriptionCommand::Show { id } => {
            let detail = subscriptions::detail(engine, id).await.map_err(explain)?;
            output.subscription(&detail);
        }
    }
    Ok(())
}
