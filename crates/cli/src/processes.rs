//! `cadre workflow` and `cadre process`: start workflows, inspect, resume and abort processes.

use anyhow::Result;
use cadre_engine::Engine;
use cadre_server::api::{processes, workflows};
use clap::{Args, Subcommand};
use uuid::Uuid;

use crate::output::Output;

use crate::{explain, operator, parse_pages};

#[derive(Debug, Subcommand)]
pub(crate) enum WorkflowCommand {
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
pub(crate) struct Paging {
    /// Rows to skip.
    #[arg(long, default_value_t = 0)]
    pub(crate) offset: u64,
    /// Most rows to show (1 to 1000).
    #[arg(long, default_value_t = 50)]
    pub(crate) limit: u64,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProcessCommand {
    /// List processes, newest first.
    List {
        /// Only this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Only this status, e.g. `failed`.
        #[arg(long)]
        status: Option<String>,
        /// Only processes started by this actor (exactly, as `created_by` shows it).
        #[arg(long)]
        created_by: Option<String>,
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
    /// Skip the failed or waiting step of a process; a worker goes on with the next one.
    Skip {
        /// Process id.
        id: Uuid,
    },
    /// Abort an unfinished process (the subscriptions it locked are released).
    Abort {
        /// Process id.
        id: Uuid,
    },
}

pub(crate) async fn workflow(
    engine: &Engine,
    output: &Output,
    command: WorkflowCommand,
) -> Result<()> {
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

pub(crate) async fn process(
    engine: &Engine,
    output: &Output,
    command: ProcessCommand,
) -> Result<()> {
    match command {
        ProcessCommand::List {
            workflow,
            status,
            created_by,
            paging,
        } => {
            let filter = processes::ProcessFilter {
                workflow_name: workflow,
                status,
                subscription_id: None,
                created_by,
                since: None,
                until: None,
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
        ProcessCommand::Skip { id } => {
            let process = engine
                .skip_step(id, &operator())
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
