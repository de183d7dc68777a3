//! The audit log over HTTP (admins only): `GET /api/audit`, newest first, filtered, paged by a
//! cursor; and the retention purge the server runs.

use axum::Json;
use axum::extract::State;
use cadre_domain::{AuditAction, AuditEvent, AuditQuery, Clock, DomainError, Repositories};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{epoch, one_of, page_limit};
use crate::auth::Admin;
use crate::error::{ApiError, ErrorCode, Problem};
use crate::extract::Query;
use crate::state::AppState;

/// One event of the audit log. Never a secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventSchema {
    /// The event's id (a UUID v7; ids order events by time).
    pub id: Uuid,
    /// When it happened (seconds since the epoch).
    pub at: f64,
    /// Who: a user name, a token's name, `cli:<login>`, `registration` or `anonymous`; for a
    /// refused sign-in, the name it tried.
    pub actor: String,
    /// The User subscription the actor is, when known.
    pub actor_user_id: Option<Uuid>,
    /// The client's address, when it came over the network.
    pub client_addr: Option<String>,
    /// What happened, e.g. `sign_in`, `process_started` (see `docs/api.md`).
    pub action: String,
    /// What it happened to: a process id, a user id, a token id, a user name.
    pub target: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    /// Why it failed, or a note on what was done.
    pub detail: Option<String>,
}

impl From<AuditEvent> for AuditEventSchema {
    fn from(event: AuditEvent) -> Self {
        Self {
            id: event.id,
            at: epoch(event.at),
            actor: event.actor,
            actor_user_id: event.actor_user_id,
            client_addr: event.client_addr,
            action: event.action.as_str().to_owned(),
            target: event.target,
            outcome: event.outcome.as_str().to_owned(),
            detail: event.detail,
        }
    }
}

/// One page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPageSchema {
    /// The events, newest first.
    pub items: Vec<AuditEventSchema>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next: Option<Uuid>,
}

/// Filters and paging of the audit log.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Only events of this action.
    #[param(schema_with = audit_actions)]
    pub action: Option<String>,
    /// Only events of this actor (exactly).
    pub actor: Option<String>,
    /// Only events on this target (exactly).
    pub target: Option<String>,
    /// Only events at or after this instant (seconds since the epoch).
    #[param(minimum = -62135596800.0, maximum = 253402300799.0)]
    pub since: Option<f64>,
    /// Only events before this instant (seconds since the epoch).
    #[param(minimum = -62135596800.0, maximum = 253402300799.0)]
    pub until: Option<f64>,
    /// The cursor: the `next` of the page before.
    pub after: Option<Uuid>,
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
}

fn audit_actions() -> utoipa::openapi::Object {
    one_of(AuditAction::ALL.iter().map(|action| action.as_str()))
}

/// The audit log, newest first: sign-ins, passwords, tokens, registration decisions and process
/// starts, resumes, skips and aborts, each with its actor, time, client address, target and
/// outcome.
#[utoipa::path(get, path = "/api/audit", tag = "audit", security(("bearer" = []), ("session" = [])),
    params(AuditFilter),
    responses(
        (status = 200, description = "One page of events", body = AuditPageSchema),
        (status = 400, description = "A filter is malformed", body = Problem),
        (status = 401, description = "No valid token or session", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
    ))]
pub async fn list_audit(
    _admin: Admin,
    State(state): State<AppState>,
    Query(filter): Query<AuditFilter>,
) -> Result<Json<AuditPageSchema>, ApiError> {
    Ok(Json(list(state.engine.store().as_ref(), filter).await?))
}

/// The events matching `filter`, newest first, one page.
pub async fn list(
    repositories: &dyn Repositories,
    filter: AuditFilter,
) -> Result<AuditPageSchema, ApiError> {
    let action = match filter.action.as_deref() {
        None => None,
        Some(action) => Some(action.parse::<AuditAction>().map_err(|_| {
            let known: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
            ApiError::new(
                ErrorCode::InvalidQuery,
                format!(
                    "unknown audit action {action:?}; expected one of {}",
                    known.join(", ")
                ),
            )
        })?),
    };
    let query = AuditQuery {
        action,
        actor: filter.actor,
        target: filter.target,
        since: filter.since.map(|at| instant("since", at)).transpose()?,
        until: filter.until.map(|at| instant("until", at)).transpose()?,
        after: filter.after,
        limit: page_limit(filter.limit)?,
    };
    let page = repositories.list_audit(&query).await?;
    Ok(AuditPageSchema {
        items: page.items.into_iter().map(Into::into).collect(),
        next: page.next,
    })
}

/// The earliest instant a query may name: 0001-01-01T00:00:00Z, in seconds since the epoch.
const EARLIEST: f64 = -62_135_596_800.0;
/// The latest instant a query may name: 9999-12-31T23:59:59Z, in seconds since the epoch.
const LATEST: f64 = 253_402_300_799.0;

/// The instant `seconds` after the epoch, for the query parameter `name`: within years 1 to
/// 9999, the range the OpenAPI document states and both databases store (PostgreSQL refuses
/// instants before 4713 BC, which chrono would pass on).
pub(crate) fn instant(name: &str, seconds: f64) -> Result<DateTime<Utc>, ApiError> {
    let at = (EARLIEST..=LATEST)
        .contains(&seconds)
        .then(|| DateTime::from_timestamp_millis((seconds * 1000.0).round() as i64))
        .flatten();
    at.ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidQuery,
            format!("{name} must be a time in seconds since the epoch, in years 1 to 9999"),
        )
    })
}

/// Removes the events older than `retention_days` (none when it is 0); returns how many.
pub async fn purge(
    repositories: &dyn Repositories,
    clock: &dyn Clock,
    retention_days: u32,
) -> Result<u64, DomainError> {
    if retention_days == 0 {
        return Ok(0);
    }
    let cutoff = clock.now() - TimeDelta::days(i64::from(retention_days));
    repositories.purge_audit_before(cutoff).await
}
