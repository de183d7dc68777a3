//! `/api/targets`: the applications cadre provisions into, as admins configure them. A
//! target's credential goes in and is never shown again.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use cadre_domain::{Clock, Connection, Deprovision, OutboundTarget, SystemClock, TargetMode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::epoch;
use crate::auth::Admin;
use crate::error::{ApiError, Problem};
use crate::extract::{ClientAddr, JsonBody, Path};
use crate::state::AppState;
use crate::targets::{Actor, TargetSettings, change_target, configure_target, remove_target};

/// A target's settings as an admin sends them (no `Debug`: it holds the secret).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetBody {
    /// A name for people, unique among targets.
    pub name: String,
    /// How cadre reaches it.
    pub connection: Connection,
    /// Target attribute → cadre's user field (`{"mail": "email"}`); absent: the kind's
    /// defaults for a new target, unchanged otherwise.
    #[serde(default)]
    pub mapping: Option<BTreeMap<String, String>>,
    /// Absent: enabled for a new target, unchanged otherwise.
    #[serde(default)]
    pub mode: Option<TargetMode>,
    /// Absent: delete for a new target, unchanged otherwise.
    #[serde(default)]
    pub deprovision: Option<Deprovision>,
    /// The bearer token or password (1 to 4,096 bytes); kept sealed, never shown. Required for
    /// a new target and for one whose kind, address or identity (`username`, `bind_dn`)
    /// changes; absent keeps the one a target has.
    #[serde(default)]
    pub secret: Option<String>,
}

impl From<TargetBody> for TargetSettings {
    fn from(body: TargetBody) -> Self {
        TargetSettings {
            name: body.name,
            connection: body.connection,
            mapping: body.mapping,
            mode: body.mode,
            deprovision: body.deprovision,
            secret: body.secret,
        }
    }
}

/// A target as shown: everything but its credential.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetSchema {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// How cadre reaches it.
    pub connection: Connection,
    /// Target attribute → cadre's user field.
    pub mapping: BTreeMap<String, String>,
    /// Whether it receives pushes.
    pub mode: TargetMode,
    /// What it does with users cadre ends.
    pub deprovision: Deprovision,
    /// Who configured it.
    pub created_by: String,
    /// When it was configured (seconds since the epoch).
    pub created_at: f64,
    /// When it last changed (seconds since the epoch).
    pub updated_at: f64,
}

impl From<OutboundTarget> for TargetSchema {
    fn from(target: OutboundTarget) -> Self {
        TargetSchema {
            id: target.id,
            name: target.name.to_string(),
            connection: target.connection,
            mapping: target.mapping,
            mode: target.mode,
            deprovision: target.deprovision,
            created_by: target.created_by,
            created_at: epoch(target.created_at),
            updated_at: epoch(target.updated_at),
        }
    }
}

/// Every target, by name; never a credential.
#[utoipa::path(get, path = "/api/targets", tag = "targets",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The targets", body = Vec<TargetSchema>),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
    ))]
pub async fn list_targets(
    _admin: Admin,
    State(state): State<AppState>,
) -> Result<Json<Vec<TargetSchema>>, ApiError> {
    let targets = state.engine.store().list_targets().await?;
    Ok(Json(targets.into_iter().map(TargetSchema::from).collect()))
}

/// Configures a target; its credential is sealed with the configured `outbound_key`.
#[utoipa::path(post, path = "/api/targets", tag = "targets",
    security(("bearer" = []), ("session" = [])),
    request_body = TargetBody,
    responses(
        (status = 201, description = "The target", body = TargetSchema),
        (status = 400, description = "The body is not JSON", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 409, description = "Another target has the name, or no `outbound_key` is configured", body = Problem),
        (status = 415, description = "The body is not declared as JSON", body = Problem),
        (status = 422, description = "A setting breaks a rule (the detail names it), or no secret", body = Problem),
    ))]
pub async fn create_target(
    Admin(caller): Admin,
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    JsonBody(body): JsonBody<TargetBody>,
) -> Result<(StatusCode, Json<TargetSchema>), ApiError> {
    let actor = Actor {
        name: caller.name(),
        origin: caller.origin(addr),
    };
    let target = configure_target(
        state.engine.store().as_ref(),
        state.outbound_key.as_ref(),
        body.into(),
        actor,
        SystemClock.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(target.into())))
}

/// One target; never its credential.
#[utoipa::path(get, path = "/api/targets/{id}", tag = "targets",
    security(("bearer" = []), ("session" = [])),
    params(("id" = Uuid, Path, description = "Target id")),
    responses(
        (status = 200, description = "The target", body = TargetSchema),
        (status = 400, description = "The id is malformed", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such target", body = Problem),
    ))]
pub async fn get_target(
    _admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Json<TargetSchema>, ApiError> {
    Ok(Json(state.engine.store().target(id).await?.into()))
}

/// Replaces a target's settings; what the body leaves out (mapping, mode, deprovisioning,
/// secret) stays as it is.
#[utoipa::path(put, path = "/api/targets/{id}", tag = "targets",
    security(("bearer" = []), ("session" = [])),
    params(("id" = Uuid, Path, description = "Target id")),
    request_body = TargetBody,
    responses(
        (status = 200, description = "The target", body = TargetSchema),
        (status = 400, description = "The body is not JSON, or the id is malformed", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such target", body = Problem),
        (status = 409, description = "Another target has the name, or a new secret and no `outbound_key` configured", body = Problem),
        (status = 415, description = "The body is not declared as JSON", body = Problem),
        (status = 422, description = "A setting breaks a rule (the detail names it)", body = Problem),
    ))]
pub async fn replace_target(
    Admin(caller): Admin,
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<Uuid>,
    JsonBody(body): JsonBody<TargetBody>,
) -> Result<Json<TargetSchema>, ApiError> {
    let actor = Actor {
        name: caller.name(),
        origin: caller.origin(addr),
    };
    let target = change_target(
        state.engine.store().as_ref(),
        state.outbound_key.as_ref(),
        id,
        body.into(),
        actor,
        SystemClock.now(),
    )
    .await?;
    Ok(Json(target.into()))
}

/// Removes a target.
#[utoipa::path(delete, path = "/api/targets/{id}", tag = "targets",
    security(("bearer" = []), ("session" = [])),
    params(("id" = Uuid, Path, description = "Target id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "The id is malformed", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such target", body = Problem),
    ))]
pub async fn delete_target(
    Admin(caller): Admin,
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor {
        name: caller.name(),
        origin: caller.origin(addr),
    };
    remove_target(state.engine.store().as_ref(), id, actor, SystemClock.now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
