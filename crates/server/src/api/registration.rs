//! Self-registration and discoverable groups over HTTP.
//!
//! Anyone may submit a registration (rate-limited per client address); the emailed link opens
//! a page under `/tokens/{token}` whose button posts the action (see `pages.rs`). Admins list,
//! view and delete pending registrations. Anyone signed in lists, views, joins and leaves
//! discoverable groups; a hidden group answers exactly like a missing one.

use axum::Json;
use axum::extract::State;
use axum::http::{Extensions, StatusCode};
use cadre_registration::{Joined, PendingView, PublicGroup};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::{Admin, Caller};
use crate::error::{ApiError, ErrorCode, Problem};
use crate::extract::{JsonBody, Path};
use crate::state::AppState;

/// A registration request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// Lowercase letters and digits, runs joined by single `_`, `-` or `.`; at most 64.
    pub user_name: String,
    /// Where the confirmation link goes.
    pub email: String,
    /// At least the configured length (12 by default).
    pub password: String,
}

/// A request for a new confirmation link.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendRequest {
    /// The address the registration was made with.
    pub email: String,
}

/// A registration as shown: never a link or token.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrationSchema {
    /// The chosen user name.
    pub user_name: String,
    /// The address.
    pub email: String,
    /// `pending` until the address is proven, then `confirmed` (awaiting an admin), then
    /// `completing` while its account is being created.
    pub status: String,
    /// When it was submitted (seconds since the epoch).
    pub registered_at: f64,
    /// The outstanding links: `confirm-email`, `approve-registration`, `decline-registration`,
    /// with when each expires (admins only; empty for the submitter).
    pub links: Vec<LinkSchema>,
}

/// An outstanding link of a registration.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkSchema {
    /// What it does.
    pub operation: String,
    /// When it stops working (seconds since the epoch).
    pub expires_at: f64,
}

/// Pending registrations.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrationList {
    /// By user name.
    pub items: Vec<RegistrationSchema>,
}

/// A message for the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// What happens next.
    pub detail: String,
}

/// A discoverable group as anyone signed in sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicGroupSchema {
    /// The group's id.
    pub user_group_id: String,
    /// Its name.
    pub name: String,
    /// The terms a joiner accepts, if any.
    pub terms: Option<String>,
}

/// Discoverable groups.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicGroupList {
    /// By id.
    pub items: Vec<PublicGroupSchema>,
}

/// The process that changes a membership.
#[derive(Debug, Serialize, ToSchema)]
pub struct MembershipChange {
    /// The process id.
    pub process_id: Uuid,
}

fn schema(view: PendingView, with_links: bool) -> RegistrationSchema {
    RegistrationSchema {
        user_name: view.user_name,
        email: view.email,
        status: view.status.to_owned(),
        registered_at: super::epoch(view.registered_at),
        links: if with_links {
            view.links
                .into_iter()
                .map(|(operation, expires_at)| LinkSchema {
                    operation: operation.to_string(),
                    expires_at: super::epoch(expires_at),
                })
                .collect()
        } else {
            Vec::new()
        },
    }
}

fn group_schema(group: PublicGroup) -> PublicGroupSchema {
    PublicGroupSchema {
        user_group_id: group.user_group_id,
        name: group.name,
        terms: group.terms,
    }
}

/// Registration routes answer like an unknown path while registration is off.
fn enabled(state: &AppState) -> Result<(), ApiError> {
    if state.registration.settings().enabled {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::NotFound, "no such path"))
    }
}

/// Signs up: keeps a pending registration and mails a confirmation link to the address. The
/// answer never contains the link, and never tells whether the user name or the email is taken:
/// a valid submission is always 202 with the same body. If the address belongs to a user or a
/// registration, its owner is mailed that someone tried to register with it; if only the name is
/// taken, the address is mailed that the name cannot be registered.
#[utoipa::path(post, path = "/api/register/users", tag = "registration",
    request_body = Submission,
    responses(
        (status = 202, description = "Accepted: a mail is on its way to the address (a confirmation link, or why there is none)", body = Accepted),
        (status = 400, description = "A field is invalid (the detail names it), or the body is not JSON", body = Problem),
        (status = 404, description = "Registration is off", body = Problem),
        (status = 415, description = "The body is not declared as JSON", body = Problem),
        (status = 422, description = "The body is not a registration", body = Problem),
        (status = 429, description = "Too many requests from this address (see `Retry-After`)", body = Problem),
    ))]
pub async fn submit(
    State(state): State<AppState>,
    extensions: Extensions,
    JsonBody(submission): JsonBody<Submission>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    enabled(&state)?;
    state.limiter.check(&extensions)?;
    state
        .registration
        .submit(
            &submission.user_name,
            &submission.email,
            &submission.password,
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            detail:
                "a mail is on its way to the address: follow its link to confirm the registration"
                    .to_owned(),
        }),
    ))
}

/// Mails a new confirmation link if a registration with this address awaits confirmation, and
/// invalidates its earlier links; at most `resends_per_hour` per registration, beyond which
/// nothing is sent. Answers the same in every case, before the work is done.
#[utoipa::path(post, path = "/api/register/users/resend", tag = "registration",
    request_body = ResendRequest,
    responses(
        (status = 202, description = "If a registration awaits confirmation (and is within its hourly resends), a new link was mailed and the earlier ones no longer work", body = Accepted),
        (status = 400, description = "The body is not JSON", body = Problem),
        (status = 404, description = "Registration is off", body = Problem),
        (status = 415, description = "The body is not declared as JSON", body = Problem),
        (status = 422, description = "The body is not a request", body = Problem),
        (status = 429, description = "Too many requests from this address (see `Retry-After`)", body = Problem),
    ))]
pub async fn resend(
    State(state): State<AppState>,
    extensions: Extensions,
    JsonBody(request): JsonBody<ResendRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    enabled(&state)?;
    state.limiter.check(&extensions)?;
    // Answered before the work is done, so that how long the answer takes tells nothing about
    // the address either (a failure is logged; the person may ask again).
    let registration = state.registration.clone();
    tokio::spawn(async move {
        if let Err(error) = registration.resend_confirmation(&request.email).await {
            tracing::error!(%error, "a confirmation link could not be resent");
        }
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            detail:
                "if a registration with this address awaits confirmation, a new link is on its way"
                    .to_owned(),
        }),
    ))
}

/// Pending registrations, by user name.
#[utoipa::path(get, path = "/api/register/users", tag = "registration",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Pending registrations", body = RegistrationList),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "Registration is off", body = Problem),
    ))]
pub async fn list_registrations(
    _admin: Admin,
    State(state): State<AppState>,
) -> Result<Json<RegistrationList>, ApiError> {
    enabled(&state)?;
    let items = state.registration.list_pending().await?;
    Ok(Json(RegistrationList {
        items: items.into_iter().map(|view| schema(view, true)).collect(),
    }))
}

/// One pending registration, with its outstanding links (never their tokens).
#[utoipa::path(get, path = "/api/register/users/{user_name}", tag = "registration",
    security(("bearer" = [])),
    params(("user_name" = String, Path, description = "The chosen user name")),
    responses(
        (status = 200, description = "The registration", body = RegistrationSchema),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such registration, or registration is off", body = Problem),
    ))]
pub async fn get_registration(
    _admin: Admin,
    State(state): State<AppState>,
    Path(user_name): Path<String>,
) -> Result<Json<RegistrationSchema>, ApiError> {
    enabled(&state)?;
    Ok(Json(schema(
        state.registration.pending(&user_name).await?,
        true,
    )))
}

/// Deletes a pending registration and its links, without mail.
#[utoipa::path(delete, path = "/api/register/users/{user_name}", tag = "registration",
    security(("bearer" = [])),
    params(("user_name" = String, Path, description = "The chosen user name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such registration, or registration is off", body = Problem),
        (status = 409, description = "The registration is being completed (its process runs)", body = Problem),
    ))]
pub async fn delete_registration(
    _admin: Admin,
    State(state): State<AppState>,
    Path(user_name): Path<String>,
) -> Result<StatusCode, ApiError> {
    enabled(&state)?;
    state.registration.delete_pending(&user_name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The discoverable groups.
#[utoipa::path(get, path = "/api/register/groups", tag = "registration",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Discoverable groups", body = PublicGroupList),
        (status = 401, description = "No valid token", body = Problem),
    ))]
pub async fn list_groups(
    _caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<PublicGroupList>, ApiError> {
    let groups = state.registration.discoverable_groups().await?;
    Ok(Json(PublicGroupList {
        items: groups.into_iter().map(group_schema).collect(),
    }))
}

/// One discoverable group: its id, name and terms. A hidden group answers like a missing one.
#[utoipa::path(get, path = "/api/register/groups/{user_group_id}", tag = "registration",
    security(("bearer" = [])),
    params(("user_group_id" = String, Path, description = "The group's id")),
    responses(
        (status = 200, description = "The group", body = PublicGroupSchema),
        (status = 401, description = "No valid token", body = Problem),
        (status = 404, description = "No such discoverable group", body = Problem),
    ))]
pub async fn get_group(
    _caller: Caller,
    State(state): State<AppState>,
    Path(group): Path<String>,
) -> Result<Json<PublicGroupSchema>, ApiError> {
    Ok(Json(group_schema(
        state.registration.discoverable_group(&group).await?,
    )))
}

/// Joins the caller's user to a discoverable group: 201 with the process that adds the
/// membership, or 202 when the group has terms (a link to accept them was mailed).
#[utoipa::path(post, path = "/api/register/groups/{user_group_id}", tag = "registration",
    security(("bearer" = [])),
    params(("user_group_id" = String, Path, description = "The group's id")),
    responses(
        (status = 201, description = "The membership is being added", body = MembershipChange),
        (status = 202, description = "The group has terms: a link to accept them was mailed", body = Accepted),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "The token acts for no active user", body = Problem),
        (status = 404, description = "No such discoverable group", body = Problem),
        (status = 409, description = "Already a member", body = Problem),
    ))]
pub async fn join_group(
    caller: Caller,
    State(state): State<AppState>,
    Path(group): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    Ok(
        match state.registration.join(caller.actor().user, &group).await? {
            Joined::Member(process_id) => {
                (StatusCode::CREATED, Json(MembershipChange { process_id })).into_response()
            }
            Joined::TermsSent => (
                StatusCode::ACCEPTED,
                Json(Accepted {
                    detail: "the group has terms: a link to accept them was mailed to you"
                        .to_owned(),
                }),
            )
                .into_response(),
        },
    )
}

/// Takes the caller's user out of a discoverable group.
#[utoipa::path(delete, path = "/api/register/groups/{user_group_id}", tag = "registration",
    security(("bearer" = [])),
    params(("user_group_id" = String, Path, description = "The group's id")),
    responses(
        (status = 202, description = "The membership is being removed", body = MembershipChange),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "The token acts for no active user", body = Problem),
        (status = 404, description = "No such discoverable group", body = Problem),
    ))]
pub async fn leave_group(
    caller: Caller,
    State(state): State<AppState>,
    Path(group): Path<String>,
) -> Result<(StatusCode, Json<MembershipChange>), ApiError> {
    let process_id = state
        .registration
        .leave(caller.actor().user, &group)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(MembershipChange { process_id })))
}
