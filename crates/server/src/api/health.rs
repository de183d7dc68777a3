//! Liveness and readiness.

use axum::Json;
use axum::extract::State;

use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/api/health", tag = "health",
    responses((status = 200, description = "The server is up", body = String, content_type = "application/json", example = json!("OK"))))]
pub async fn health() -> Json<&'static str> {
    Json("OK")
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/api/ready", tag = "health",
    responses(
        (status = 200, description = "The database answers", body = String, content_type = "application/json", example = json!("OK")),
        (status = 503, description = "The database does not answer", body = Problem),
    ))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<&'static str>, ApiError> {
    state.engine.store().ping().await?;
    Ok(Json("OK"))
}
