//! Bulk provisioning: an admin posts a file of user or group rows; the rows are validated
//! (every bad row answered at once, nothing written) and a load process starts; its report
//! is read back by process id.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use cadre_provisioning::input::{read_user_groups, read_users};
use cadre_provisioning::{Counts, Format, LoadReport, LoadSettings, Mode, Outcome, Rows};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Admin;
use crate::error::{ApiError, ErrorCode, InvalidInput, Problem};
use crate::extract::{Path, Query};
use crate::state::AppState;

/// The largest input file a load accepts: 256 MiB.
pub const MAX_LOAD_BYTES: usize = 256 << 20;

/// How to run a load.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoadParams {
    /// `full` (the input is the whole truth: create, update, remove the rest) or
    /// `incremental` (upsert rows with `is_active` true, remove those with false).
    #[param(inline)]
    pub mode: ModeParam,
    /// `csv`, `json` or `jsonl`; by default taken from the Content-Type (`text/csv`,
    /// `application/json`, `application/x-ndjson`).
    #[param(inline)]
    pub format: Option<FormatParam>,
    /// Plan only: report what would change and write nothing.
    pub dry_run: Option<bool>,
    /// Apply a full load even when it removes more than 20% of what loads manage.
    pub force: Option<bool>,
}

/// A load's mode.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModeParam {
    /// A full load.
    Full,
    /// An incremental load.
    Incremental,
}

/// An input format.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FormatParam {
    /// Comma-separated values with a header row; list columns `|`-separated.
    Csv,
    /// A JSON array of objects.
    Json,
    /// One JSON object per line.
    Jsonl,
}

/// What a load provisions, as its path names it.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum KindParam {
    /// `users`.
    Users,
    /// `user-groups`.
    UserGroups,
}

/// The answer to a started load.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoadStarted {
    /// The load's process; its report is at `/api/provisioning/loads/{process_id}`.
    pub process_id: Uuid,
    /// Valid input rows.
    pub rows: usize,
}

/// One row of a load's report.
#[derive(Debug, Serialize, ToSchema)]
pub struct RowReportSchema {
    /// The input row, or null for a removal of something the input does not list.
    pub row: Option<u64>,
    /// The user or group id.
    pub id: String,
    /// `created`, `updated`, `unchanged`, `removed`, `skipped` or `failed`.
    pub outcome: String,
    /// Why, for skipped and failed rows.
    pub reason: Option<String>,
}

/// How many rows had each outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct CountsSchema {
    /// Created.
    pub created: u64,
    /// Updated.
    pub updated: u64,
    /// Unchanged.
    pub unchanged: u64,
    /// Removed.
    pub removed: u64,
    /// Skipped.
    pub skipped: u64,
    /// Failed.
    pub failed: u64,
}

/// A load's report.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoadReportSchema {
    /// The load's process.
    pub process_id: Uuid,
    /// The process status: `running` while it applies, `completed`, or `failed` (a refused
    /// plan or a failed batch, see `failed_reason`).
    pub status: String,
    /// Why the load failed.
    pub failed_reason: Option<String>,
    /// Whether the load only planned.
    pub dry_run: bool,
    /// Batches planned.
    pub batches: u64,
    /// Batches applied.
    pub applied: u64,
    /// Counts of `rows` by outcome.
    pub counts: CountsSchema,
    /// One row per input row and removal (planned outcomes in a dry run).
    pub rows: Vec<RowReportSchema>,
}

fn outcome_name(outcome: Outcome) -> String {
    serde_json::to_value(outcome)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl From<Counts> for CountsSchema {
    fn from(counts: Counts) -> Self {
        Self {
            created: counts.created,
            updated: counts.updated,
            unchanged: counts.unchanged,
            removed: counts.removed,
            skipped: counts.skipped,
            failed: counts.failed,
        }
    }
}

impl From<LoadReport> for LoadReportSchema {
    fn from(report: LoadReport) -> Self {
        Self {
            process_id: report.process_id,
            status: report.status.to_string(),
            failed_reason: report.failed_reason,
            dry_run: report.dry_run,
            batches: report.batches,
            applied: report.applied,
            counts: report.counts.into(),
            rows: report
                .rows
                .into_iter()
                .map(|row| RowReportSchema {
                    row: row.row,
                    id: row.id,
                    outcome: outcome_name(row.outcome),
                    reason: row.reason,
                })
                .collect(),
        }
    }
}

/// The input format: the `format` parameter, else the Content-Type. A Content-Type that
/// names another of the three formats than `format` does is refused (other types, such as
/// curl's default form encoding, leave the choice to `format`).
fn format(params: &LoadParams, headers: &HeaderMap) -> Result<Format, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let declared = match content_type.as_str() {
        "text/csv" => Some(Format::Csv),
        "application/json" => Some(Format::Json),
        "application/x-ndjson" | "application/jsonl" | "application/jsonlines" => {
            Some(Format::JsonLines)
        }
        _ => None,
    };
    let named = params.format.map(|format| match format {
        FormatParam::Csv => Format::Csv,
        FormatParam::Json => Format::Json,
        FormatParam::Jsonl => Format::JsonLines,
    });
    match (named, declared) {
        (Some(named), Some(declared)) if named != declared => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("the Content-Type is {content_type}, which contradicts ?format="),
        )),
        (Some(format), _) | (None, Some(format)) => Ok(format),
        (None, None) => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send text/csv, application/json or application/x-ndjson, or name the format with ?format=",
        )),
    }
}

/// Validates a file of user or group rows and starts a load of them. Every bad row is
/// answered at once with 422, and nothing is written; otherwise the load's process starts
/// (202) and its report is read from `/api/provisioning/loads/{process_id}`. Loads never touch
/// `admin`, the caller's user, or users behind admin tokens.
#[utoipa::path(post, path = "/api/provisioning/{kind}", tag = "provisioning",
    security(("bearer" = [])),
    params(("kind" = inline(KindParam), Path, description = "`users` or `user-groups`"), LoadParams),
    request_body(content = String, description = "The rows: CSV with a header row, a JSON array, or JSON Lines",
        content_type = "text/csv"),
    responses(
        (status = 202, description = "The input is valid and the load started", body = LoadStarted),
        (status = 400, description = "A malformed parameter", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 413, description = "The file is larger than 256 MiB", body = Problem),
        (status = 415, description = "An unknown input format, or a Content-Type that contradicts `format`", body = Problem),
        (status = 422, description = "Invalid rows (each with row, column and reason)", body = InvalidInput),
    ))]
pub async fn start_load(
    Admin(caller): Admin,
    State(state): State<AppState>,
    Path(kind): Path<KindParam>,
    Query(params): Query<LoadParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<LoadStarted>), ApiError> {
    let format = format(&params, &headers)?;
    let bytes = axum::body::to_bytes(body, MAX_LOAD_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                "the input is larger than 256 MiB, or broke off; split it into several loads",
            )
        })?;
    let mode = match params.mode {
        ModeParam::Full => Mode::Full,
        ModeParam::Incremental => Mode::Incremental,
    };
    let rows = match kind {
        KindParam::Users => {
            Rows::Users(read_users(bytes.as_ref(), format, mode).map_err(ApiError::InvalidRows)?)
        }
        KindParam::UserGroups => Rows::UserGroups(
            read_user_groups(bytes.as_ref(), format, mode).map_err(ApiError::InvalidRows)?,
        ),
    };
    let count = match &rows {
        Rows::Users(rows) => rows.len(),
        Rows::UserGroups(rows) => rows.len(),
    };
    let mut settings = LoadSettings::new(mode);
    settings.dry_run = params.dry_run.unwrap_or(false);
    settings.force = params.force.unwrap_or(false);
    settings.protected = state
        .provisioner
        .protected_users(caller.actor().user)
        .await?;
    let process = state
        .provisioner
        .start(&rows, settings, caller.name())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(LoadStarted {
            process_id: process.id,
            rows: count,
        }),
    ))
}

/// The report of a load: its status, counts and one row per input row and removal.
#[utoipa::path(get, path = "/api/provisioning/loads/{process_id}", tag = "provisioning",
    security(("bearer" = [])),
    params(("process_id" = Uuid, Path, description = "The load's process id")),
    responses(
        (status = 200, description = "The report", body = LoadReportSchema),
        (status = 400, description = "The id is malformed", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such load", body = Problem),
    ))]
pub async fn get_load(
    _admin: Admin,
    State(state): State<AppState>,
    Path(process_id): Path<Uuid>,
) -> Result<Json<LoadReportSchema>, ApiError> {
    Ok(Json(state.provisioner.report(process_id).await?.into()))
}
