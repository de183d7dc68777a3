//! Processes: start a workflow through its form, list and inspect runs, resume and abort them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use cadre_domain::{Process, ProcessQuery, ProcessStatus, ProcessStep};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use cadre_engine::Engine;

use super::audit::instant;
use super::{epoch, one_of, page_limit, page_offset};
use crate::auth::{Admin, Caller};
use crate::error::{ApiError, ErrorCode, Problem};
use crate::extract::{ClientAddr, JsonBody, Path, Query};
use crate::state::AppState;
use crate::visibility::require_visible_process;

/// A process as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessSchema {
    /// Process id.
    pub process_id: Uuid,
    /// The workflow it runs.
    pub workflow_name: String,
    /// The workflow version it started with.
    pub workflow_version: i64,
    /// `CREATE`, `MODIFY`, `TERMINATE`, `VALIDATE` or `SYSTEM`.
    pub workflow_target: String,
    /// Whether it runs a task.
    pub is_task: bool,
    /// Who started it.
    pub created_by: String,
    /// `created`, `running`, `suspended`, `waiting`, `failed`, `aborted`, `completed`,
    /// `resumed`, `api_unavailable` or `inconsistent_data`.
    pub last_status: String,
    /// The last logged step.
    pub last_step: Option<String>,
    /// Why the last step failed.
    pub failed_reason: Option<String>,
    /// Detail of the last failure.
    pub traceback: Option<String>,
    /// When it started (seconds since the epoch).
    pub started_at: f64,
    /// When it last changed.
    pub last_modified_at: f64,
}

impl From<Process> for ProcessSchema {
    fn from(process: Process) -> Self {
        Self {
            process_id: process.id,
            workflow_name: process.workflow_name,
            workflow_version: process.workflow_version,
            workflow_target: process.target.to_string(),
            is_task: process.is_task,
            created_by: process.created_by,
            last_status: process.status.to_string(),
            last_step: process.last_step,
            failed_reason: process.failed_reason,
            traceback: process.traceback,
            started_at: epoch(process.started_at),
            last_modified_at: epoch(process.last_modified_at),
        }
    }
}

/// One step of a process: a logged one, or (`status: pending`) one still to run.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepSchema {
    /// Log entry id; absent for pending steps.
    pub step_id: Option<Uuid>,
    /// Display name.
    pub name: String,
    /// `success`, `skipped`, `suspend`, `waiting`, `failed`, `abort`, `complete` or `pending`.
    pub status: String,
    /// Who it ran for.
    pub created_by: Option<String>,
    /// When it started (seconds since the epoch).
    pub started: Option<f64>,
    /// When it finished.
    pub completed: Option<f64>,
    /// The state after it.
    #[schema(value_type = Option<Object>)]
    pub state: Option<Value>,
    /// The error of a failed or waiting step.
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

impl From<ProcessStep> for StepSchema {
    fn from(step: ProcessStep) -> Self {
        Self {
            step_id: Some(step.id),
            name: step.name,
            status: step.status.to_string(),
            created_by: Some(step.created_by),
            started: Some(epoch(step.started_at)),
            completed: Some(epoch(step.completed_at)),
            state: Some(Value::Object(step.state)),
            error: step.error,
        }
    }
}

/// A process with its state, its steps and, when suspended, the form it waits for.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessDetail {
    /// The process row.
    #[serde(flatten)]
    pub process: ProcessSchema,
    /// The subscriptions it touches.
    pub subscriptions: Vec<Uuid>,
    /// The state after the last committed step.
    #[schema(value_type = Object)]
    pub current_state: Value,
    /// The step log, then the steps still to run.
    pub steps: Vec<StepSchema>,
    /// The JSON Schema of the page a suspended process waits for; null otherwise.
    #[schema(value_type = Option<Object>)]
    pub form: Option<Value>,
}

/// One page of processes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessPage {
    /// The processes of this page, newest first.
    pub items: Vec<ProcessSchema>,
    /// How many match the filters in all.
    pub total: u64,
}

/// The answer to a successful start.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessCreated {
    /// The new process's id.
    pub id: Uuid,
}

/// Filters and paging of the process list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProcessFilter {
    /// Only processes of this workflow.
    pub workflow_name: Option<String>,
    /// Only processes in this status, e.g. `failed`.
    #[param(schema_with = process_statuses)]
    pub status: Option<String>,
    /// Only processes that touched this subscription.
    pub subscription_id: Option<Uuid>,
    /// Only processes started by this actor (exactly, as `created_by` shows it).
    pub created_by: Option<String>,
    /// Only processes started at or after this instant (seconds since the epoch).
    #[param(minimum = -62135596800.0, maximum = 253402300799.0)]
    pub since: Option<f64>,
    /// Only processes started before this instant (seconds since the epoch).
    #[param(minimum = -62135596800.0, maximum = 253402300799.0)]
    pub until: Option<f64>,
    /// Rows to skip (default 0).
    #[param(maximum = 9223372036854775807_u64)]
    pub offset: Option<u64>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
}

/// Processes matching the filters, newest first, one page.
#[utoipa::path(get, path = "/api/processes", tag = "processes", security(("bearer" = [])),
    params(ProcessFilter),
    responses(
        (status = 200, description = "One page of processes", body = ProcessPage),
        (status = 401, description = "No valid token", body = Problem),
        (status = 400, description = "A filter is malformed", body = Problem),
    ))]
pub async fn list_processes(
    caller: Caller,
    State(state): State<AppState>,
    Query(mut filter): Query<ProcessFilter>,
) -> Result<Json<ProcessPage>, ApiError> {
    if !caller.is_admin() {
        // A non-admin sees the processes of their own user, and nothing without one.
        match caller.user_id() {
            Some(own) if filter.subscription_id.is_none_or(|asked| asked == own) => {
                filter.subscription_id = Some(own);
            }
            _ => {
                return Ok(Json(ProcessPage {
                    items: Vec::new(),
                    total: 0,
                }));
            }
        }
    }
    Ok(Json(list(&state.engine, filter).await?))
}

/// The processes matching `filter`, newest first, one page.
pub async fn list(engine: &Engine, filter: ProcessFilter) -> Result<ProcessPage, ApiError> {
    let query = ProcessQuery {
        workflow_name: filter.workflow_name.filter(|name| !name.is_empty()),
        status: filter.status.as_deref().map(parse_status).transpose()?,
        subscription_id: filter.subscription_id,
        created_by: filter.created_by.filter(|actor| !actor.is_empty()),
        started_since: filter.since.map(|at| instant("since", at)).transpose()?,
        started_before: filter.until.map(|at| instant("until", at)).transpose()?,
        offset: page_offset(filter.offset)?,
        limit: Some(page_limit(filter.limit)?),
    };
    let page = engine.store().list_processes(&query).await?;
    Ok(ProcessPage {
        items: page.items.into_iter().map(Into::into).collect(),
        total: page.total,
    })
}

fn process_statuses() -> utoipa::openapi::Object {
    one_of(ProcessStatus::ALL.iter().map(|status| status.as_str()))
}

fn parse_status(status: &str) -> Result<ProcessStatus, ApiError> {
    status.parse().map_err(|_| {
        let known: Vec<&str> = ProcessStatus::ALL.iter().map(|s| s.as_str()).collect();
        ApiError::new(
            ErrorCode::InvalidQuery,
            format!(
                "unknown process status {status:?}; expected one of {}",
                known.join(", ")
            ),
        )
    })
}

/// Starts a workflow. The body lists the answers to the form's pages so far: with too few the
/// answer is 510 with the next page, with an invalid page 400 with every error of that page,
/// with all pages valid 201 and the new process's id. Starting a workflow is an admin's: people
/// change their own account through `/api/auth`, and join or leave discoverable groups through
/// `/api/register/groups`.
#[utoipa::path(post, path = "/api/processes/{id}", tag = "processes",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The name of the workflow to start")),
    request_body(content = Vec<Object>, description = "The answers to the form's pages so far"),
    responses(
        (status = 201, description = "The process was created", body = ProcessCreated),
        (status = 400, description = "A page did not validate (pydantic-forms `FormValidationError`), or the body is not JSON", body = Object),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such workflow", body = Problem),
        (status = 412, description = "The workflow cannot start on this subscription now", body = Problem),
        (status = 415, description = "The body is not declared as JSON", body = Problem),
        (status = 422, description = "The body is not a list of pages, or has too many", body = Problem),
        (status = 510, description = "More pages are needed (pydantic-forms `FormNotCompleteError`)", body = Object),
    ))]
pub async fn start_process(
    Admin(caller): Admin,
    ClientAddr(addr): ClientAddr,
    State(state): State<AppState>,
    Path(workflow_name): Path<String>,
    JsonBody(pages): JsonBody<Vec<Value>>,
) -> Result<(StatusCode, Json<ProcessCreated>), ApiError> {
    let process = state
        .engine
        .with_origin(caller.origin(addr))
        .start(&workflow_name, &pages, caller.name())
        .await?;
    Ok((StatusCode::CREATED, Json(ProcessCreated { id: process.id })))
}

/// One process with its state, step log, pending steps and awaited form.
#[utoipa::path(get, path = "/api/processes/{id}", tag = "processes",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Process id")),
    responses(
        (status = 200, description = "The process", body = ProcessDetail),
        (status = 400, description = "The id is malformed", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 404, description = "No such process", body = Problem),
    ))]
pub async fn get_process(
    caller: Caller,
    State(state): State<AppState>,
    Path(process_id): Path<Uuid>,
) -> Result<Json<ProcessDetail>, ApiError> {
    require_visible_process(&state, &caller, process_id).await?;
    Ok(Json(detail(&state.engine, process_id).await?))
}

/// Process `id` with its state, step log, pending steps and awaited form.
pub async fn detail(engine: &Engine, id: Uuid) -> Result<ProcessDetail, ApiError> {
    let store = engine.store();
    let process = store.process(id).await?;
    let subscriptions = store.process_subscriptions(id).await?;
    let mut steps: Vec<StepSchema> = store
        .process_steps(id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    steps.extend(pending_steps(engine, &process));
    let form = engine.pending_form(&process).await?;
    Ok(ProcessDetail {
        current_state: Value::Object(process.state.clone()),
        process: process.into(),
        subscriptions,
        steps,
        form,
    })
}

/// The steps an unfinished process has still to run, from its next step on.
fn pending_steps(engine: &Engine, process: &Process) -> Vec<StepSchema> {
    if process.status.is_final() {
        return Vec::new();
    }
    let Some(workflow) = engine.registry().get(&process.workflow_name) else {
        return Vec::new();
    };
    let Some((next, _)) = process
        .next_step
        .as_deref()
        .and_then(|key| workflow.steps.find(key))
    else {
        return Vec::new();
    };
    workflow.steps.steps()[next..]
        .iter()
        .map(|step| StepSchema {
            step_id: None,
            name: step.name.clone(),
            status: "pending".to_owned(),
            created_by: None,
            started: None,
            completed: None,
            state: None,
            error: None,
        })
        .collect()
}

/// Resumes a process: a suspended one with the answers to the form it waits for (same protocol
/// as a start), a failed or waiting one by retrying its step (body `[]`).
#[utoipa::path(put, path = "/api/processes/{id}/resume", tag = "processes",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Process id")),
    request_body(content = Vec<Object>, description = "Answers to the awaited form, or `[]`"),
    responses(
        (status = 204, description = "Resumed; a worker continues it"),
        (status = 400, description = "A page did not validate, the body is not JSON, or the id is malformed", body = Object),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such process", body = Problem),
        (status = 409, description = "The process is not resumable", body = Problem),
        (status = 415, description = "The body is not declared as JSON", body = Problem),
        (status = 422, description = "The body is not a list of pages, or has too many", body = Problem),
        (status = 510, description = "More pages are needed", body = Object),
    ))]
pub async fn resume_process(
    Admin(caller): Admin,
    ClientAddr(addr): ClientAddr,
    State(state): State<AppState>,
    Path(process_id): Path<Uuid>,
    JsonBody(pages): JsonBody<Vec<Value>>,
) -> Result<StatusCode, ApiError> {
    state
        .engine
        .with_origin(caller.origin(addr))
        .resume(process_id, &pages, caller.name())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Skips the failed or waiting step of a process (logged as skipped); a worker continues
/// with the step after it.
#[utoipa::path(put, path = "/api/processes/{id}/skip", tag = "processes",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Process id")),
    responses(
        (status = 204, description = "Skipped; a worker continues it"),
        (status = 400, description = "The id is malformed", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such process", body = Problem),
        (status = 409, description = "The process has no failed or waiting step", body = Problem),
    ))]
pub async fn skip_step(
    Admin(caller): Admin,
    ClientAddr(addr): ClientAddr,
    State(state): State<AppState>,
    Path(process_id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    state
        .engine
        .with_origin(caller.origin(addr))
        .skip_step(process_id, caller.name())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Aborts an unfinished process; the subscriptions it locked are released.
#[utoipa::path(put, path = "/api/processes/{id}/abort", tag = "processes",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Process id")),
    responses(
        (status = 204, description = "Aborted"),
        (status = 400, description = "The id is malformed", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such process", body = Problem),
        (status = 409, description = "The process has already finished", body = Problem),
    ))]
pub async fn abort_process(
    Admin(caller): Admin,
    ClientAddr(addr): ClientAddr,
    State(state): State<AppState>,
    Path(process_id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    state
        .engine
        .with_origin(caller.origin(addr))
        .abort(process_id, caller.name())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
