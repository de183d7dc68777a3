//! Bulk loads from the console: a file of user or group rows uploaded (every bad row shown,
//! nothing written), a dry run's plan as a table (creates, updates, removals, unchanged; the
//! removal guard's refusal), the plan applied or planned again past the guard, the progress
//! followed while it runs, and the per-row report downloaded as CSV.

use axum::body::Body;
use axum::extract::{Form, Path, Request, State};
use axum::http::StatusCode;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Redirect, Response};
use cadre_accounts::SessionUser;
use cadre_domain::ProcessStatus;
use cadre_provisioning::input::{read_user_groups, read_users};
use cadre_provisioning::{Format, InputErrors, LoadReport, LoadSettings, Mode, Rows};
use cadre_server::api;
use cadre_server::api::processes::ProcessFilter;
use cadre_server::api::provisioning::MAX_LOAD_BYTES;
use cadre_server::multipart::{Multipart, PartError};
use cadre_server::{ApiError, AppState, ErrorCode};
use minijinja::context;
use serde::Deserialize;
use uuid::Uuid;

use crate::admin::process_rows;
use crate::page::{Admin, forged, me, refused, render, session_form_ok};

/// The workflows that run loads.
const LOAD_WORKFLOWS: [&str; 2] = ["provision_users", "provision_user_groups"];

/// At most this many rows of a report, or bad rows of an input, are shown on a page; the
/// report's CSV has them all.
const SHOWN_ROWS: usize = 500;

/// The upload form, and the latest loads.
pub(crate) async fn loads(State(state): State<AppState>, Admin(session): Admin) -> Response {
    upload_page(&state, &session, StatusCode::OK, None, &[]).await
}

async fn upload_page(
    state: &AppState,
    session: &SessionUser,
    status: StatusCode,
    problem: Option<&str>,
    bad_rows: &[cadre_provisioning::RowError],
) -> Response {
    let mut latest = Vec::new();
    for workflow in LOAD_WORKFLOWS {
        let filter = ProcessFilter {
            workflow_name: Some(workflow.to_owned()),
            limit: Some(10),
            ..ProcessFilter::default()
        };
        match api::processes::list(&state.engine, filter).await {
            Ok(page) => latest.extend(page.items),
            Err(error) => return refused(Some(session), error),
        }
    }
    latest.sort_by(|a, b| b.started_at.total_cmp(&a.started_at));
    latest.truncate(10);
    let bad: Vec<minijinja::Value> = bad_rows
        .iter()
        .take(SHOWN_ROWS)
        .map(|error| context! { row => error.row, column => error.column, reason => error.reason })
        .collect();
    render(
        status,
        "loads.html",
        context! {
            me => me(Some(session)),
            loads => process_rows(&latest),
            problem,
            bad,
            more_bad => bad_rows.len().saturating_sub(SHOWN_ROWS),
        },
    )
}

/// What the upload form sends besides the file.
#[derive(Debug, Default)]
struct Upload {
    csrf_token: String,
    kind: String,
    mode: String,
    dry_run: bool,
    force: bool,
    file_name: String,
    content: Vec<u8>,
}

/// Reads the upload form: its fields, and the file (at most [`MAX_LOAD_BYTES`]).
async fn read_upload(request: Request) -> Result<Upload, ApiError> {
    let invalid = |detail: String| ApiError::new(ErrorCode::InvalidUpload, detail);
    let boundary = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| multer::parse_boundary(value).ok())
        .ok_or_else(|| invalid("Send the form as multipart/form-data.".to_owned()))?;
    let constraints = multer::Constraints::new()
        .allowed_fields(vec![
            "csrf_token",
            "kind",
            "mode",
            "dry_run",
            "force",
            "file",
        ])
        .size_limit(
            multer::SizeLimit::new()
                .whole_stream(MAX_LOAD_BYTES as u64 + 64 * 1024)
                .per_field(1024)
                .for_field("file", MAX_LOAD_BYTES as u64),
        );
    let mut multipart = Multipart::new(request.into_body(), boundary, constraints);
    let mut upload = Upload::default();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(PartError::Malformed(
                multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. },
            )) => {
                return Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    "The file is larger than 256 MiB; split it into several loads.",
                ));
            }
            Err(error) => return Err(invalid(format!("The form broke off: {error}"))),
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            upload.file_name = field.file_name().unwrap_or_default().to_owned();
        }
        let bytes = field.bytes().await.map_err(|error| match error {
            multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    "The file is larger than 256 MiB; split it into several loads.",
                )
            }
            other => invalid(format!("The form broke off: {other}")),
        })?;
        let text = || String::from_utf8_lossy(&bytes).into_owned();
        match name.as_str() {
            "csrf_token" => upload.csrf_token = text(),
            "kind" => upload.kind = text(),
            "mode" => upload.mode = text(),
            "dry_run" => upload.dry_run = bytes.as_ref() == b"true",
            "force" => upload.force = bytes.as_ref() == b"true",
            _ => upload.content = bytes.to_vec(),
        }
    }
    Ok(upload)
}

/// Starts a load of the uploaded file: its rows checked first (every bad row shown, nothing
/// written), then the load's page.
pub(crate) async fn upload(
    State(state): State<AppState>,
    Admin(session): Admin,
    request: Request,
) -> Response {
    let upload = match read_upload(request).await {
        Ok(upload) => upload,
        Err(error) => return refused(Some(&session), error),
    };
    if !session_form_ok(&session, &upload.csrf_token) {
        return forged(Some(&session));
    }
    let Some(format) = Format::from_path(std::path::Path::new(&upload.file_name)) else {
        let said = "Choose a .csv, .json or .jsonl file.";
        return upload_page(
            &state,
            &session,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some(said),
            &[],
        )
        .await;
    };
    let mode = match upload.mode.as_str() {
        "full" => Mode::Full,
        "incremental" => Mode::Incremental,
        _ => {
            let said = "Choose a full or an incremental load.";
            return upload_page(&state, &session, StatusCode::BAD_REQUEST, Some(said), &[]).await;
        }
    };
    let content = upload.content.as_slice();
    let rows = match upload.kind.as_str() {
        "users" => read_users(content, format, mode).map(Rows::Users),
        "user-groups" => read_user_groups(content, format, mode).map(Rows::UserGroups),
        _ => {
            let said = "Choose users or user groups.";
            return upload_page(&state, &session, StatusCode::BAD_REQUEST, Some(said), &[]).await;
        }
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(InputErrors(errors)) => {
            let said = format!(
                "{} rows of {} are wrong; nothing was loaded.",
                errors.len(),
                upload.file_name
            );
            return upload_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&said),
                &errors,
            )
            .await;
        }
    };
    let mut settings = LoadSettings::new(mode);
    settings.dry_run = upload.dry_run;
    settings.force = upload.force;
    settings.protected = match state
        .provisioner
        .protected_users(Some(session.user.user_id))
        .await
    {
        Ok(protected) => protected,
        Err(error) => return refused(Some(&session), error.into()),
    };
    match state
        .provisioner
        .start(&rows, settings, &session.user.user_name)
        .await
    {
        Ok(process) => Redirect::to(&format!("/admin/loads/{}", process.id)).into_response(),
        Err(error) => {
            upload_page(
                &state,
                &session,
                StatusCode::BAD_REQUEST,
                Some(&ApiError::from(error).to_string()),
                &[],
            )
            .await
        }
    }
}

/// A load's report, as the API has it.
async fn report(state: &AppState, session: &SessionUser, id: Uuid) -> Result<LoadReport, Response> {
    state
        .provisioner
        .report(id)
        .await
        .map_err(|error| refused(Some(session), error.into()))
}

/// A load: its status and counts, its rows (what it did, or in a dry run what it would do),
/// followed live while it runs; a dry run's plan can be applied, or planned again past the
/// removal guard.
pub(crate) async fn load(
    State(state): State<AppState>,
    Admin(session): Admin,
    Path(id): Path<Uuid>,
) -> Response {
    let report = match report(&state, &session, id).await {
        Ok(report) => report,
        Err(response) => return response,
    };
    let rows: Vec<minijinja::Value> = report
        .rows
        .iter()
        .take(SHOWN_ROWS)
        .map(|row| {
            context! { row => row.row, id => row.id, outcome => row.outcome, reason => row.reason }
        })
        .collect();
    let finished = report.status.is_final() || report.status == ProcessStatus::Failed;
    render(
        StatusCode::OK,
        "load.html",
        context! {
            me => me(Some(&session)),
            id => id.to_string(),
            status => report.status.as_str(),
            failed_reason => report.failed_reason,
            dry_run => report.dry_run,
            batches => report.batches,
            applied => report.applied,
            counts => report.counts,
            rows,
            more => report.rows.len().saturating_sub(SHOWN_ROWS),
            live => !finished,
            can_apply => report.dry_run && finished,
        },
    )
}

/// What the apply form sends.
#[derive(Debug, Deserialize)]
pub(crate) struct Again {
    csrf_token: String,
    /// `apply`, or `plan` to plan again.
    then: String,
    /// Past the removal guard.
    #[serde(default)]
    force: Option<String>,
}

/// Loads a dry run's input again: applied, or planned again (forced past the removal guard);
/// then the new load's page.
pub(crate) async fn again(
    State(state): State<AppState>,
    Admin(session): Admin,
    Path(id): Path<Uuid>,
    Form(form): Form<Again>,
) -> Response {
    if !session_form_ok(&session, &form.csrf_token) {
        return forged(Some(&session));
    }
    let dry_run = match form.then.as_str() {
        "apply" => false,
        "plan" => true,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let protected = match state
        .provisioner
        .protected_users(Some(session.user.user_id))
        .await
    {
        Ok(protected) => protected,
        Err(error) => return refused(Some(&session), error.into()),
    };
    let force = form.force.as_deref() == Some("true");
    match state
        .provisioner
        .rerun(id, dry_run, force, protected, &session.user.user_name)
        .await
    {
        Ok(process) => Redirect::to(&format!("/admin/loads/{}", process.id)).into_response(),
        Err(error) => refused(Some(&session), error.into()),
    }
}

/// A load's report as CSV: `row,id,outcome,reason`, one line per input row and removal.
pub(crate) async fn report_csv(
    State(state): State<AppState>,
    Admin(session): Admin,
    Path(id): Path<Uuid>,
) -> Response {
    let report = match report(&state, &session, id).await {
        Ok(report) => report,
        Err(response) => return response,
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    let written: Result<(), csv::Error> = (|| {
        writer.write_record(["row", "id", "outcome", "reason"])?;
        for row in &report.rows {
            let outcome = serde_json::to_value(row.outcome)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default();
            writer.write_record([
                row.row.map(|row| row.to_string()).unwrap_or_default(),
                row.id.clone(),
                outcome,
                row.reason.clone().unwrap_or_default(),
            ])?;
        }
        Ok(())
    })();
    let body = match written.map_err(ApiError::internal).and_then(|()| {
        writer
            .into_inner()
            .map_err(|error| ApiError::internal(error.to_string()))
    }) {
        Ok(body) => body,
        Err(error) => return refused(Some(&session), error),
    };
    (
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"load-{id}.csv\""),
            ),
        ],
        Body::from(body),
    )
        .into_response()
}
