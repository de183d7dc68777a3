//! Admins over people's access: a user's roles (on the user's subscription page), and every
//! API token, revoked with a button.

use axum::extract::{Form, Path, State};
use axum::http::{Extensions, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use cadre_accounts::SessionUser;
use cadre_domain::{Origin, Role};
use cadre_server::api::auth::set_user_roles;
use cadre_server::auth::revoke_any_token;
use cadre_server::{AppState, client_addr};
use minijinja::context;
use serde::Deserialize;
use uuid::Uuid;

use crate::account::token_row;
use crate::admin::Action;
use crate::page::{Admin, forged, me, refused, render, session_form_ok};

/// What the roles form sends.
#[derive(Debug, Deserialize)]
pub(crate) struct RolesForm {
    csrf_token: String,
    /// `true` when the admin box is ticked.
    #[serde(default)]
    admin: Option<String>,
}

/// Sets whether user `id` is an admin (every user holds `user`); audited as `roles_changed`.
/// Then the user's page.
pub(crate) async fn set_roles(
    State(state): State<AppState>,
    Admin(session): Admin,
    extensions: Extensions,
    Path(id): Path<Uuid>,
    Form(form): Form<RolesForm>,
) -> Response {
    if !session_form_ok(&session, &form.csrf_token) {
        return forged(Some(&session));
    }
    let roles: &[Role] = if form.admin.as_deref() == Some("true") {
        &[Role::Admin]
    } else {
        &[]
    };
    let origin = Origin {
        user_id: Some(session.user.user_id),
        client_addr: client_addr(&extensions),
    };
    match set_user_roles(&state, &origin, &session.user.user_name, id, roles).await {
        Ok(_) => Redirect::to(&format!("/admin/subscriptions/{id}")).into_response(),
        Err(error) => refused(Some(&session), error),
    }
}

/// Every API token, newest first: whose, its role, when it expires, whether it is live.
pub(crate) async fn tokens(State(state): State<AppState>, Admin(session): Admin) -> Response {
    tokens_page(&state, &session).await
}

async fn tokens_page(state: &AppState, session: &SessionUser) -> Response {
    let now = state.engine.clock().now();
    let tokens = match state.engine.store().list_tokens().await {
        Ok(tokens) => tokens,
        Err(error) => return refused(Some(session), error.into()),
    };
    let rows: Vec<minijinja::Value> = tokens
        .iter()
        .rev()
        .map(|token| token_row(token, now))
        .collect();
    render(
        StatusCode::OK,
        "all_tokens.html",
        context! { me => me(Some(session)), tokens => rows },
    )
}

/// Revokes any token; then the list.
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Admin(session): Admin,
    Path(id): Path<Uuid>,
    Form(form): Form<Action>,
) -> Response {
    if !session_form_ok(&session, &form.csrf_token) {
        return forged(Some(&session));
    }
    match revoke_any_token(&state, id, &session.user.user_name).await {
        Ok(()) => Redirect::to("/admin/tokens").into_response(),
        Err(error) => refused(Some(&session), error),
    }
}
