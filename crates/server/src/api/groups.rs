//! Workflow groups and their files.
//!
//! A caller acts as the User subscription its token is issued for (`cadre token create --user`);
//! admins act on every group. Uploads are `multipart/form-data` with one `file` part, streamed
//! to the file volume; downloads stream back with the stored media type, as attachments.

use std::io;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cadre_domain::{ByteStream, GroupFile, WorkflowGroup};
use cadre_groups::{GroupChanges, NewGroup};
use futures_util::TryStreamExt;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::epoch;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorCode, Problem};
use crate::extract::{JsonBody, Path, Query};
use crate::state::AppState;

/// A workflow group.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupSchema {
    /// The group's identifier.
    pub id: String,
    /// The workflow it belongs to.
    pub workflow: String,
    /// Its name, unique within the workflow.
    pub name: String,
    /// The User subscription that owns it.
    pub owner: Uuid,
    /// The User subscriptions that are members, owner included.
    pub members: Vec<Uuid>,
    /// Group-specific parameters (a form schema).
    #[schema(value_type = Object)]
    pub parameters: Value,
    /// The workflow's spec when the group was created.
    #[schema(value_type = Object)]
    pub workflow_spec: Value,
    /// Engine settings for the group's runs.
    #[schema(value_type = Option<Object>)]
    pub engine_config: Option<Value>,
    /// When it was created (seconds since the Unix epoch).
    pub created_at: f64,
}

impl From<WorkflowGroup> for GroupSchema {
    fn from(group: WorkflowGroup) -> Self {
        Self {
            id: group.id.to_string(),
            workflow: group.workflow,
            name: group.name.to_string(),
            owner: group.owner,
            members: group.members.into_iter().collect(),
            parameters: group.parameters,
            workflow_spec: group.workflow_spec,
            engine_config: group.engine_config,
            created_at: epoch(group.created_at),
        }
    }
}

/// Groups, in creation order.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupList {
    /// The groups.
    pub items: Vec<GroupSchema>,
}

/// A file of a group.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileSchema {
    /// The file's id.
    pub id: Uuid,
    /// The name it was uploaded with.
    pub name: String,
    /// Its media type, if known.
    pub mime_type: Option<String>,
    /// Its size in bytes.
    pub size: u64,
    /// When it was uploaded (seconds since the Unix epoch).
    pub created_at: f64,
}

impl From<GroupFile> for FileSchema {
    fn from(file: GroupFile) -> Self {
        Self {
            id: file.id,
            name: file.name.to_string(),
            mime_type: file.mime_type,
            size: file.size,
            created_at: epoch(file.created_at),
        }
    }
}

/// A group's files, in upload order.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileList {
    /// The files.
    pub items: Vec<FileSchema>,
}

/// A group to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupCreate {
    /// The workflow the group belongs to.
    pub workflow: String,
    /// The group's name.
    pub name: String,
    /// An identifier (1 to 32 of `[A-Za-z0-9_]`) instead of a generated one.
    pub identifier: Option<String>,
    /// The owner; by default the caller's user (only admins may name another).
    pub owner: Option<Uuid>,
    /// Members besides the owner.
    #[serde(default)]
    pub members: Vec<Uuid>,
    /// Group-specific parameters; by default the first page of the workflow's form.
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Map<String, Value>>,
    /// Engine settings for the group's runs.
    #[schema(value_type = Option<Object>)]
    pub engine_config: Option<Map<String, Value>>,
}

/// Changes to a group; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupUpdate {
    /// A new name.
    pub name: Option<String>,
    /// The exact new member set; it must include the owner.
    pub members: Option<Vec<Uuid>>,
}

/// Which groups to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GroupFilter {
    /// Only groups of this workflow.
    pub workflow: Option<String>,
    /// Only groups with this User subscription among the members.
    pub member: Option<Uuid>,
}

/// The body of an upload.
#[derive(Debug, ToSchema)]
#[allow(
    dead_code,
    reason = "it describes the multipart body in the OpenAPI document only"
)]
pub struct FileUpload {
    /// The content, with its file name in the part's `Content-Disposition`.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// Creates a group owned by the caller's user (or, for admins, by `owner`).
#[utoipa::path(post, path = "/api/workflow-groups", tag = "workflow-groups",
    security(("bearer" = [])),
    request_body = GroupCreate,
    responses(
        (status = 201, description = "The group was created", body = GroupSchema),
        (status = 400, description = "The body is not JSON", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Only admins may create a group for another user", body = Problem),
        (status = 404, description = "No such workflow", body = Problem),
        (status = 409, description = "The workflow has a group of this name, or the identifier is taken", body = Problem),
        (status = 415, description = "The body is not declared as JSON", body = Problem),
        (status = 422, description = "An invalid identifier, name, owner or member", body = Problem),
    ))]
pub async fn create_group(
    caller: Caller,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<GroupCreate>,
) -> Result<(StatusCode, Json<GroupSchema>), ApiError> {
    let group = state
        .groups
        .create(
            &caller.actor(),
            NewGroup {
                workflow: body.workflow,
                name: body.name,
                identifier: body.identifier,
                owner: body.owner,
                members: body.members,
                parameters: body.parameters.map(Value::Object),
                engine_config: body.engine_config.map(Value::Object),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(group.into())))
}

/// Lists groups: an admin's pick of all of them, anyone else's own.
#[utoipa::path(get, path = "/api/workflow-groups", tag = "workflow-groups",
    security(("bearer" = [])),
    params(GroupFilter),
    responses(
        (status = 200, description = "The groups", body = GroupList),
        (status = 400, description = "A malformed filter", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Only admins list other users' groups", body = Problem),
        (status = 404, description = "No such workflow", body = Problem),
        (status = 422, description = "The member is not an active user", body = Problem),
    ))]
pub async fn list_groups(
    caller: Caller,
    State(state): State<AppState>,
    Query(filter): Query<GroupFilter>,
) -> Result<Json<GroupList>, ApiError> {
    let groups = state
        .groups
        .list(&caller.actor(), filter.workflow.as_deref(), filter.member)
        .await?;
    Ok(Json(GroupList {
        items: groups.into_iter().map(Into::into).collect(),
    }))
}

/// One group, to its members and admins.
#[utoipa::path(get, path = "/api/workflow-groups/{group_id}", tag = "workflow-groups",
    security(("bearer" = [])),
    params(("group_id" = String, Path, description = "Group identifier")),
    responses(
        (status = 200, description = "The group", body = GroupSchema),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not a member", body = Problem),
        (status = 404, description = "No such group", body = Problem),
    ))]
pub async fn get_group(
    caller: Caller,
    State(state): State<AppState>,
    Path(group_id): Path<String>,
) -> Result<Json<GroupSchema>, ApiError> {
    let group = state.groups.get(&caller.actor(), &group_id).await?;
    Ok(Json(group.into()))
}

/// Renames a group and/or replaces its members exactly (the owner must stay).
#[utoipa::path(patch, path = "/api/workflow-groups/{group_id}", tag = "workflow-groups",
    security(("bearer" = [])),
    params(("group_id" = String, Path, description = "Group identifier")),
    request_body = GroupUpdate,
    responses(
        (status = 200, description = "The group as changed", body = GroupSchema),
        (status = 400, description = "The body is not JSON", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not a member", body = Problem),
        (status = 404, description = "No such group", body = Problem),
        (status = 409, description = "The workflow has another group of this name", body = Problem),
        (status = 415, description = "The body is not declared as JSON", body = Problem),
        (status = 422, description = "An invalid name, a member that is not an active user, or the owner left out", body = Problem),
    ))]
pub async fn update_group(
    caller: Caller,
    State(state): State<AppState>,
    Path(group_id): Path<String>,
    JsonBody(body): JsonBody<GroupUpdate>,
) -> Result<Json<GroupSchema>, ApiError> {
    let group = state
        .groups
        .update(
            &caller.actor(),
            &group_id,
            GroupChanges {
                name: body.name,
                members: body.members,
            },
        )
        .await?;
    Ok(Json(group.into()))
}

/// Deletes a group with its files; only its owner or an admin may.
#[utoipa::path(delete, path = "/api/workflow-groups/{group_id}", tag = "workflow-groups",
    security(("bearer" = [])),
    params(("group_id" = String, Path, description = "Group identifier")),
    responses(
        (status = 204, description = "The group and its files are gone"),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not the owner", body = Problem),
        (status = 404, description = "No such group", body = Problem),
        (status = 503, description = "File storage failed; the group stays, try again", body = Problem),
    ))]
pub async fn delete_group(
    caller: Caller,
    State(state): State<AppState>,
    Path(group_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.groups.delete(&caller.actor(), &group_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Uploads a file to a group: `multipart/form-data` with one part named `file` whose
/// `Content-Disposition` carries the file name. The content is streamed to storage.
#[utoipa::path(post, path = "/api/workflow-groups/{group_id}/files", tag = "workflow-groups",
    security(("bearer" = [])),
    params(("group_id" = String, Path, description = "Group identifier")),
    request_body(content = FileUpload, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The file was stored", body = FileSchema),
        (status = 400, description = "Not a multipart body with a `file` part, or the upload broke off", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not a member", body = Problem),
        (status = 404, description = "No such group", body = Problem),
        (status = 413, description = "The file is larger than the limit", body = Problem),
        (status = 422, description = "An invalid file name", body = Problem),
        (status = 503, description = "File storage failed", body = Problem),
        (status = 507, description = "File storage is full; nothing was stored", body = Problem),
    ))]
pub async fn upload_file(
    caller: Caller,
    State(state): State<AppState>,
    Path(group_id): Path<String>,
    request: Request,
) -> Result<(StatusCode, Json<FileSchema>), ApiError> {
    let bad_request = |detail: String| ApiError::new(ErrorCode::InvalidUpload, detail);
    let boundary = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| multer::parse_boundary(value).ok())
        .ok_or_else(|| bad_request("expected a multipart/form-data body".to_owned()))?;
    let mut multipart =
        crate::multipart::Multipart::new(request.into_body(), boundary, multer::Constraints::new());
    let field = loop {
        let refusal = match multipart.next_field().await {
            Ok(Some(field)) if field.name() == Some("file") => break field,
            Ok(Some(_)) => continue,
            Ok(None) => "the body has no part named `file`".to_owned(),
            Err(error) => format!("malformed multipart body: {error}"),
        };
        multipart.linger();
        return Err(bad_request(refusal));
    };
    let Some(name) = field.file_name().map(str::to_owned) else {
        drop(field);
        multipart.linger();
        return Err(bad_request("the `file` part has no file name".to_owned()));
    };
    let content = Box::pin(field.map_err(io::Error::other));
    let file = state
        .groups
        .upload(&caller.actor(), &group_id, &name, content)
        .await;
    multipart.finish().await;
    Ok((StatusCode::CREATED, Json(file?.into())))
}

/// A group's files, in upload order.
#[utoipa::path(get, path = "/api/workflow-groups/{group_id}/files", tag = "workflow-groups",
    security(("bearer" = [])),
    params(("group_id" = String, Path, description = "Group identifier")),
    responses(
        (status = 200, description = "The files", body = FileList),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not a member", body = Problem),
        (status = 404, description = "No such group", body = Problem),
    ))]
pub async fn list_files(
    caller: Caller,
    State(state): State<AppState>,
    Path(group_id): Path<String>,
) -> Result<Json<FileList>, ApiError> {
    let files = state.groups.files(&caller.actor(), &group_id).await?;
    Ok(Json(FileList {
        items: files.into_iter().map(Into::into).collect(),
    }))
}

/// Downloads a file: its content streamed with its media type, as an attachment named as
/// uploaded.
#[utoipa::path(get, path = "/api/workflow-groups/{group_id}/files/{file_id}", tag = "workflow-groups",
    security(("bearer" = [])),
    params(
        ("group_id" = String, Path, description = "Group identifier"),
        ("file_id" = Uuid, Path, description = "File id"),
    ),
    responses(
        (status = 200, description = "The content", content_type = "*/*", body = Vec<u8>),
        (status = 400, description = "The file id is malformed", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not a member", body = Problem),
        (status = 404, description = "No such group, or no such file in it", body = Problem),
        (status = 503, description = "File storage failed", body = Problem),
    ))]
pub async fn download_file(
    caller: Caller,
    State(state): State<AppState>,
    Path((group_id, file_id)): Path<(String, Uuid)>,
) -> Result<Response, ApiError> {
    let (file, content) = state
        .groups
        .read_file(&caller.actor(), &group_id, file_id)
        .await?;
    Ok(file_response(&file, content))
}

/// A stored file as a download: its content streamed with its media type, its size, as an
/// attachment named as uploaded, never sniffed, in a sandbox.
pub fn file_response(file: &GroupFile, content: ByteStream) -> Response {
    let mut headers = HeaderMap::new();
    let media_type = file
        .mime_type
        .as_deref()
        .unwrap_or("application/octet-stream");
    if let Ok(value) = HeaderValue::from_str(media_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(file.size));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Opened in a browser anyway, an HTML, SVG or script file runs in a sandbox: no scripts,
    // no access to this site's cookies or storage.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    if let Ok(value) = HeaderValue::from_str(&attachment(file.name.as_str())) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    (headers, Body::from_stream(content)).into_response()
}

/// A `Content-Disposition` for a download named `name`: an ASCII fallback and the exact
/// UTF-8 name (RFC 6266).
fn attachment(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{}",
        utf8_percent_encode(name, NON_ALPHANUMERIC)
    )
}

/// Deletes a file of a group.
#[utoipa::path(delete, path = "/api/workflow-groups/{group_id}/files/{file_id}", tag = "workflow-groups",
    security(("bearer" = [])),
    params(
        ("group_id" = String, Path, description = "Group identifier"),
        ("file_id" = Uuid, Path, description = "File id"),
    ),
    responses(
        (status = 204, description = "The file is gone"),
        (status = 400, description = "The file id is malformed", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not a member", body = Problem),
        (status = 404, description = "No such group, or no such file in it", body = Problem),
        (status = 503, description = "File storage failed; the file is hidden and its removal will be finished", body = Problem),
    ))]
pub async fn delete_file(
    caller: Caller,
    State(state): State<AppState>,
    Path((group_id, file_id)): Path<(String, Uuid)>,
) -> Result<StatusCode, ApiError> {
    state
        .groups
        .delete_file(&caller.actor(), &group_id, file_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::attachment;

    #[test]
    fn download_names_are_quoted_safely() {
        assert_eq!(
            attachment("data.csv"),
            "attachment; filename=\"data.csv\"; filename*=UTF-8''data%2Ecsv"
        );
        assert_eq!(
            attachment("ré\"sumé.pdf"),
            "attachment; filename=\"r__sum_.pdf\"; filename*=UTF-8''r%C3%A9%22sum%C3%A9%2Epdf"
        );
    }
}
