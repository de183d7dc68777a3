//! The SCIM 2.0 service provider at `/scim/v2` (RFC 7643, RFC 7644; `docs/scim.md`): identity
//! providers create, read, change and delete cadre's users and groups as SCIM Users and Groups.
//! Every write runs cadre's own workflows and answers once they completed, so a user made over
//! SCIM is the same object as one made by a form, a load or a registration.
//!
//! SCIM is its own protocol with its own discovery (`/ServiceProviderConfig`, `/ResourceTypes`,
//! `/Schemas`), so these routes are served beside the API and left out of its OpenAPI document.
//! Callers are tokens (or sessions) with the `scim` or the `admin` role.

mod discovery;
mod groups;
mod listing;
pub mod schema;
mod users;
mod writes;

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cadre_domain::{Process, ProcessStatus, Role};
use cadre_scim::{ScimError, ScimType};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ClientAddr;
use crate::state::AppState;
use listing::{Groups, Users};

/// The media type of SCIM's bodies.
pub const SCIM_JSON: &str = "application/scim+json";

/// The most resources a listing returns at once (`count` above it is cut to it).
pub const MAX_RESULTS: usize = 1000;

/// How long a write waits for its workflows before it answers 503 (they go on).
const WORKFLOW_WAIT: Duration = Duration::from_secs(20);

/// A write a request (or a bulk operation) asks for: the body, and the id it names.
#[derive(Debug, Clone, Copy)]
pub enum Write<'a> {
    /// `POST`: a new resource.
    Create(&'a Value),
    /// `PUT`: the resource made what the body says.
    Replace(&'a str, &'a Value),
    /// `PATCH`: the body's operations applied.
    Patch(&'a str, &'a Value),
    /// `DELETE`.
    Delete(&'a str),
}

/// The routes under `/scim/v2`, with SCIM's 404 for any other path there.
pub fn routes() -> Router<AppState> {
    let scim = Router::new()
        .route(
            "/ServiceProviderConfig",
            get(discovery::service_provider_config),
        )
        .route("/ResourceTypes", get(discovery::resource_types))
        .route("/ResourceTypes/{name}", get(discovery::resource_type_named))
        .route("/Schemas", get(discovery::schemas))
        .route("/Schemas/{id}", get(discovery::schema))
        .route(
            "/Users",
            get(listing::list::<Users>).post(writes::create::<Users>),
        )
        .route("/Users/.search", post(listing::search::<Users>))
        .route(
            "/Users/{id}",
            get(users::get_one)
                .put(writes::replace::<Users>)
                .patch(writes::patch::<Users>)
                .delete(writes::delete::<Users>),
        )
        .route("/Me", get(users::me))
        .route(
            "/Groups",
            get(listing::list::<Groups>).post(writes::create::<Groups>),
        )
        .route("/Groups/.search", post(listing::search::<Groups>))
        .route(
            "/Groups/{id}",
            get(groups::get_one)
                .put(writes::replace::<Groups>)
                .patch(writes::patch::<Groups>)
                .delete(writes::delete::<Groups>),
        )
        .route("/.search", post(listing::search_all))
        .route(
            "/Bulk",
            post(writes::bulk).layer(DefaultBodyLimit::max(writes::MAX_BULK_PAYLOAD)),
        )
        .fallback(|| async {
            Failure(ScimError {
                status: 404,
                scim_type: None,
                detail: "no such SCIM endpoint".to_owned(),
            })
        });
    Router::new().nest("/scim/v2", scim)
}

/// A SCIM client: a token (or session) whose role includes `scim`.
pub struct ScimCaller(pub Client);

/// Who calls, and from where (for the audit log).
pub struct Client {
    /// The credential.
    pub caller: Caller,
    /// The client's address.
    pub addr: Option<std::net::IpAddr>,
}

impl FromRequestParts<AppState> for ScimCaller {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Failure> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if !caller.role().includes(Role::Scim) {
            return Err(ApiError::new(
                crate::error::ErrorCode::Forbidden,
                "SCIM needs a token with the scim or the admin role",
            )
            .into());
        }
        let Ok(ClientAddr(addr)) = ClientAddr::from_request_parts(parts, state).await;
        Ok(ScimCaller(Client { caller, addr }))
    }
}

/// A failed SCIM request: SCIM's error body, as `application/scim+json`.
#[derive(Debug, Clone)]
pub struct Failure(pub ScimError);

impl From<ScimError> for Failure {
    fn from(error: ScimError) -> Self {
        Self(error)
    }
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        let (status, scim_type, detail) = match error {
            ApiError::Problem(code, detail) => {
                let status = code.status().as_u16();
                let scim_type = match status {
                    400 | 422 => Some(ScimType::InvalidValue),
                    _ => None,
                };
                // A form's 422 and 412 are a bad value and a busy subscription to SCIM.
                let status = match status {
                    422 => 400,
                    412 => 409,
                    other => other,
                };
                (status, scim_type, detail)
            }
            ApiError::Unauthenticated => (
                401,
                None,
                "send `Authorization: Bearer <token>` with a token of the scim or admin role"
                    .to_owned(),
            ),
            ApiError::FormInvalid(body) => {
                let reasons: Vec<String> = body
                    .validation_errors
                    .iter()
                    .map(|error| {
                        let place: Vec<String> = error
                            .loc
                            .iter()
                            .map(|part| match part {
                                Value::String(name) => name.clone(),
                                other => other.to_string(),
                            })
                            .collect();
                        format!("{}: {}", place.join("."), error.msg)
                    })
                    .collect();
                (400, Some(ScimType::InvalidValue), reasons.join("; "))
            }
            ApiError::RateLimited(_) => (429, None, error.to_string()),
            other => {
                tracing::error!(error = %other, "a SCIM write met a form it could not fill in");
                (
                    500,
                    None,
                    "the server failed; the failure is logged".to_owned(),
                )
            }
        };
        Self(ScimError {
            status,
            scim_type,
            detail,
        })
    }
}

impl From<cadre_domain::DomainError> for Failure {
    fn from(error: cadre_domain::DomainError) -> Self {
        ApiError::from(error).into()
    }
}

impl From<cadre_provisioning::ProvisionError> for Failure {
    fn from(error: cadre_provisioning::ProvisionError) -> Self {
        ApiError::from(error).into()
    }
}

impl From<cadre_engine::EngineError> for Failure {
    fn from(error: cadre_engine::EngineError) -> Self {
        ApiError::from(error).into()
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = (status, scim_json(&self.0.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"cadre\""),
            );
        }
        response
    }
}

/// A `400` of kind `scim_type`.
fn bad(scim_type: ScimType, detail: impl Into<String>) -> Failure {
    ScimError::bad_request(scim_type, detail).into()
}

/// A `409 uniqueness`: another resource holds a value that must be unique.
fn conflict(detail: impl Into<String>) -> Failure {
    Failure(ScimError {
        status: 409,
        scim_type: Some(ScimType::Uniqueness),
        detail: detail.into(),
    })
}

/// A `404` for the resource `id`.
fn not_found(kind: &str, id: &str) -> Failure {
    Failure(ScimError {
        status: 404,
        scim_type: None,
        detail: format!("no {kind} {id}"),
    })
}

/// `body` as an `application/scim+json` body.
fn scim_json(body: &Value) -> impl IntoResponse + use<> {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON))],
        body.to_string(),
    )
}

/// A resource answered with its `ETag` (and, when created, `Location`).
fn resource_response(status: StatusCode, resource: &Value) -> Response {
    let mut response = (status, scim_json(resource)).into_response();
    let headers = response.headers_mut();
    if let Some(version) = resource["meta"]["version"].as_str()
        && let Ok(value) = HeaderValue::from_str(version)
    {
        headers.insert(header::ETAG, value);
    }
    if status == StatusCode::CREATED
        && let Some(location) = resource["meta"]["location"].as_str()
        && let Ok(value) = HeaderValue::from_str(location)
    {
        headers.insert(header::LOCATION, value);
    }
    response
}

/// A request body: a JSON object sent as `application/scim+json` or `application/json`, read
/// up to the route's body limit (axum's 2 MiB, or what a `DefaultBodyLimit` layer sets); a
/// larger one is SCIM's `413`.
pub struct ScimJson(pub Value);

impl<S: Send + Sync> FromRequest<S> for ScimJson {
    type Rejection = Failure;

    async fn from_request(request: Request, state: &S) -> Result<Self, Failure> {
        let essence = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if essence != SCIM_JSON && essence != "application/json" {
            return Err(Failure(ScimError {
                status: 415,
                scim_type: None,
                detail: format!("send {SCIM_JSON} or application/json"),
            }));
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                Failure(ScimError {
                    status: rejection.status().as_u16(),
                    scim_type: None,
                    detail: rejection.body_text(),
                })
            })?;
        let value: Value = serde_json::from_slice(&body)
            .map_err(|error| bad(ScimType::InvalidSyntax, format!("not JSON: {error}")))?;
        if !value.is_object() {
            return Err(bad(ScimType::InvalidSyntax, "the body is a JSON object"));
        }
        Ok(ScimJson(value))
    }
}

/// The resource's version: a digest of what it holds, so that it changes with anything a
/// client can see (a group's members included), as a weak `ETag`.
fn version_of(resource: &Value) -> String {
    let digest = Sha256::digest(resource.to_string().as_bytes());
    format!("W/\"{}\"", hex::encode(&digest[..12]))
}

/// Refuses a change the client made against another version of the resource (`If-Match`, or a
/// bulk operation's `version`).
fn check_if_match(wanted: Option<&str>, current: &Value) -> Result<(), Failure> {
    let Some(wanted) = wanted else {
        return Ok(());
    };
    let version = current["meta"]["version"].as_str().unwrap_or_default();
    let matching = wanted
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || weakly_equal(tag, version));
    if matching {
        Ok(())
    } else {
        Err(Failure(ScimError {
            status: 412,
            scim_type: None,
            detail: format!("the resource is at version {version}, not {wanted}"),
        }))
    }
}

/// Whether the client already holds this version (`If-None-Match`): answered 304.
fn not_modified(headers: &HeaderMap, resource: &Value) -> Option<Response> {
    let wanted = headers.get(header::IF_NONE_MATCH)?.to_str().ok()?;
    let version = resource["meta"]["version"].as_str()?;
    wanted
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || weakly_equal(tag, version))
        .then(|| {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            if let Ok(value) = HeaderValue::from_str(version) {
                response.headers_mut().insert(header::ETAG, value);
            }
            response
        })
}

fn weakly_equal(left: &str, right: &str) -> bool {
    left.trim_start_matches("W/") == right.trim_start_matches("W/")
}

/// Parses a resource id from the path (an unknown form is simply not found).
fn resource_id(kind: &str, id: &str) -> Result<Uuid, Failure> {
    id.parse().map_err(|_| not_found(kind, id))
}

/// Starts `workflow` with `pages` for `caller` and waits until it completed; a failed step is
/// the client's error, with its reason.
async fn run_workflow(
    state: &AppState,
    client: &Client,
    workflow: &str,
    pages: &[Value],
) -> Result<Process, Failure> {
    let engine = state.engine.with_origin(client.caller.origin(client.addr));
    let process = engine.start(workflow, pages, client.caller.name()).await?;
    completed(state, &process).await
}

/// `process` once it completed, waiting at most [`WORKFLOW_WAIT`]; a failed step is the
/// client's error, with its reason.
async fn completed(state: &AppState, process: &Process) -> Result<Process, Failure> {
    let workflow = &process.workflow_name;
    let store = state.engine.store();
    let deadline = tokio::time::Instant::now() + WORKFLOW_WAIT;
    let mut pause = Duration::from_millis(2);
    loop {
        let process = store.process(process.id).await?;
        match process.status {
            ProcessStatus::Completed => return Ok(process),
            ProcessStatus::Failed
            | ProcessStatus::Aborted
            | ProcessStatus::ApiUnavailable
            | ProcessStatus::InconsistentData => {
                let reason = process
                    .failed_reason
                    .unwrap_or_else(|| format!("the process ended {}", process.status));
                return Err(Failure(ScimError {
                    status: 409,
                    scim_type: None,
                    detail: format!("{workflow} (process {}) failed: {reason}", process.id),
                }));
            }
            status if tokio::time::Instant::now() >= deadline => {
                return Err(Failure(ScimError {
                    status: 503,
                    scim_type: None,
                    detail: format!(
                        "{workflow} (process {}) is still {status}; it goes on, look again later",
                        process.id
                    ),
                }));
            }
            _ => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
        }
    }
}

/// Refuses a SCIM client's change of a user who administers cadre (who holds the admin role,
/// or for whom an admin token acts): only an admin changes an admin.
async fn guard_user(state: &AppState, client: &Client, user: Uuid) -> Result<(), Failure> {
    if client.caller.is_admin() {
        return Ok(());
    }
    let store = state.engine.store();
    let admin = store.roles(user).await?.contains(&Role::Admin)
        || store
            .tokens_of(user)
            .await?
            .iter()
            .any(|token| token.role == Role::Admin && token.revoked_at.is_none());
    if admin {
        return Err(Failure(ScimError {
            status: 403,
            scim_type: None,
            detail: format!("user {user} is an admin's: only an admin changes it"),
        }));
    }
    Ok(())
}

/// The subscription a completed create workflow made.
fn created(process: &Process) -> Result<Uuid, Failure> {
    process
        .state
        .get("subscription_id")
        .and_then(|id| serde_json::from_value(id.clone()).ok())
        .ok_or_else(|| {
            cadre_domain::DomainError::Internal(format!(
                "{} made no subscription",
                process.workflow_name
            ))
            .into()
        })
}

/// A `400 invalidValue` with the reason.
fn invalid(error: impl std::fmt::Display) -> Failure {
    bad(ScimType::InvalidValue, error.to_string())
}

/// The base of every SCIM URI: the configured public address with `/scim/v2`.
fn base(state: &AppState) -> String {
    format!(
        "{}/scim/v2",
        state.registration.settings().base_url.trim_end_matches('/')
    )
}

/// Reads `true`/`false` in any case as a boolean, as some clients send them.
fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) if text.eq_ignore_ascii_case("true") => Some(true),
        Value::String(text) if text.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// The attribute of `object` named `name` in any case, unless null.
fn field<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    cadre_scim::named(object.as_object()?, name).filter(|value| !value.is_null())
}

/// A string attribute, trimmed; an empty one is absent.
fn text(object: &Value, name: &str) -> Result<Option<String>, Failure> {
    match field(object, name) {
        None => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.trim().to_owned())),
        Some(_) => Err(bad(ScimType::InvalidValue, format!("{name} is a string"))),
    }
}
