//! The registrations awaiting an admin: listed with where each stands, approved or declined
//! with a button (the same decision the mailed links take, taken once whichever way comes
//! first).

use axum::extract::{Form, Path, State};
use axum::http::{Extensions, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use cadre_accounts::SessionUser;
use cadre_server::{ApiError, AppState, audit_decision, client_addr};
use minijinja::context;

use crate::admin::{Action, at};
use crate::page::{Admin, forged, me, refused, render, session_form_ok};

/// Every registration not yet completed or declined: who, their address, where it stands, and
/// for those whose address is confirmed, approve and decline.
pub(crate) async fn registrations(
    State(state): State<AppState>,
    Admin(session): Admin,
) -> Response {
    list(&state, &session, StatusCode::OK, None).await
}

async fn list(
    state: &AppState,
    session: &SessionUser,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let pending = match state.registration.list_pending().await {
        Ok(pending) => pending,
        Err(error) => return refused(Some(session), error.into()),
    };
    let rows: Vec<minijinja::Value> = pending
        .iter()
        .map(|registration| {
            context! {
                name => registration.user_name,
                email => registration.email,
                status => registration.status,
                registered => at(registration.registered_at),
            }
        })
        .collect();
    render(
        status,
        "registrations.html",
        context! { me => me(Some(session)), rows, error },
    )
}

/// Approves or declines the registration of `name`; then the list again, with the refusal if
/// there was one (decided already, or its address not confirmed yet).
pub(crate) async fn decide(
    State(state): State<AppState>,
    Admin(session): Admin,
    extensions: Extensions,
    Path((name, decision)): Path<(String, String)>,
    Form(form): Form<Action>,
) -> Response {
    if !session_form_ok(&session, &form.csrf_token) {
        return forged(Some(&session));
    }
    let approve = match decision.as_str() {
        "approve" => true,
        "decline" => false,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let done = match state.registration.decide(&name, approve).await {
        Ok(done) => done,
        Err(error) => {
            return match ApiError::from(error) {
                ApiError::Problem(code, _) if !code.status().is_server_error() => {
                    let said = format!(
                        "The registration of {name} awaits no decision: it was decided already, or its address is not confirmed yet."
                    );
                    list(&state, &session, code.status(), Some(&said)).await
                }
                other => refused(Some(&session), other),
            };
        }
    };
    if let Err(error) = audit_decision(
        &state,
        &done,
        &session.user.user_name,
        Some(session.user.user_id),
        client_addr(&extensions),
    )
    .await
    {
        return refused(Some(&session), error.into());
    }
    Redirect::to("/admin/registrations").into_response()
}
