//! Workflows and their initial forms.

use axum::Json;
use axum::extract::State;
use cadre_engine::{Engine, Workflow};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::extract::Path;
use crate::state::AppState;

/// A workflow as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowSchema {
    /// Unique name, the key to start it with.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// `CREATE`, `MODIFY`, `TERMINATE`, `VALIDATE` or `SYSTEM`.
    pub target: String,
    /// The product types it applies to.
    pub product_types: Vec<String>,
    /// The lifecycles a subscription must be in for it to start (empty: any).
    pub usable_when: Vec<String>,
    /// The version of its step list.
    pub version: i64,
}

impl From<&Workflow> for WorkflowSchema {
    fn from(workflow: &Workflow) -> Self {
        Self {
            name: workflow.name.clone(),
            description: workflow.description.clone(),
            target: workflow.target.to_string(),
            product_types: workflow
                .product_types
                .iter()
                .map(ToString::to_string)
                .collect(),
            usable_when: workflow
                .usable_when
                .iter()
                .map(ToString::to_string)
                .collect(),
            version: workflow.version,
        }
    }
}

/// A workflow with its step names and the first page of its initial form.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowDetail {
    /// The workflow.
    #[serde(flatten)]
    pub workflow: WorkflowSchema,
    /// The display names of its steps, in order.
    pub steps: Vec<String>,
    /// The JSON Schema of the first page to post to `POST /api/processes/{name}`.
    #[schema(value_type = Object)]
    pub form: serde_json::Value,
}

/// Every workflow, by name.
#[utoipa::path(get, path = "/api/workflows", tag = "workflows", security(("bearer" = [])),
    responses(
        (status = 200, description = "The workflows", body = Vec<WorkflowSchema>),
        (status = 401, description = "No valid token", body = Problem),
    ))]
pub async fn list_workflows(
    _caller: Caller,
    State(state): State<AppState>,
) -> Json<Vec<WorkflowSchema>> {
    Json(list(&state.engine))
}

/// Every workflow of `engine`, by name.
pub fn list(engine: &Engine) -> Vec<WorkflowSchema> {
    engine
        .registry()
        .iter()
        .map(|workflow| workflow.as_ref().into())
        .collect()
}

/// One workflow with its steps and initial form.
#[utoipa::path(get, path = "/api/workflows/{workflow_name}", tag = "workflows",
    security(("bearer" = [])),
    params(("workflow_name" = String, Path, description = "Workflow name")),
    responses(
        (status = 200, description = "The workflow", body = WorkflowDetail),
        (status = 401, description = "No valid token", body = Problem),
        (status = 404, description = "No such workflow", body = Problem),
    ))]
pub async fn get_workflow(
    _caller: Caller,
    State(state): State<AppState>,
    Path(workflow_name): Path<String>,
) -> Result<Json<WorkflowDetail>, ApiError> {
    let workflow = state
        .engine
        .registry()
        .get(&workflow_name)
        .ok_or_else(|| cadre_engine::EngineError::UnknownWorkflow(workflow_name.clone()))?;
    let form = state.engine.first_page(workflow).await?;
    Ok(Json(WorkflowDetail {
        workflow: workflow.as_ref().into(),
        steps: workflow
            .steps
            .steps()
            .iter()
            .map(|step| step.name.clone())
            .collect(),
        form,
    }))
}
