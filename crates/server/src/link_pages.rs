//! The pages a person opens from a mailed link: `GET /tokens/{token}` shows what the link does
//! and a button; the button posts to the same address, which does it. A GET never changes
//! anything, so link scanners and pre-fetchers cannot confirm, approve or decline.
//!
//! Approving and declining need an admin: a signed-in admin's session, or, for anyone else, an
//! admin's API token, which the page asks for (or the request carries as a bearer token).

use std::net::IpAddr;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{Extensions, HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use cadre_domain::audit::ANONYMOUS;
use cadre_domain::{AuditAction, AuditEvent, DomainError, Role, TokenOperation};
use cadre_registration::{Redeemed, RegistrationError, TokenView, Visitor};
use minijinja::{Environment, context};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{session_cookie_in, token_holder};
use crate::error::ApiError;
use crate::limit::client_addr;
use crate::state::AppState;
use uuid::Uuid;

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="referrer" content="no-referrer">
<title>{{ title }}</title></head>
<body>
<main>
<h1>{{ title }}</h1>
<p>{{ message }}</p>
{% if terms %}<h2>Terms</h2><pre>{{ terms }}</pre>{% endif %}
{% if button %}
<form method="post">
{% if admin %}<p><label>Your admin API token <input type="password" name="admin_token" autocomplete="off" required></label></p>{% endif %}
<p><button type="submit">{{ button }}</button></p>
</form>
{% endif %}
</main>
</body>
</html>
"#;

/// The form the landing page posts.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct Decision {
    /// An admin's API token, for approve and decline.
    pub admin_token: Option<String>,
}

/// A page with `title` and `message`, and a button labelled `button` if any; the admin token
/// field when the link needs an admin and the visitor is not signed in as one.
fn page(
    status: StatusCode,
    title: &str,
    message: &str,
    view: Option<&TokenView>,
    button: Option<&str>,
    signed_in_admin: bool,
) -> Response {
    let mut environment = Environment::new();
    environment.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    let rendered = environment.template_from_str(PAGE).and_then(|template| {
        template.render(context! {
            title,
            message,
            button,
            admin => !signed_in_admin && view.is_some_and(|view| view.operation.needs_admin()),
            terms => view.and_then(|view| view.terms.clone()),
        })
    });
    match rendered {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            );
            response
        }
        Err(error) => {
            tracing::error!(%error, "cannot render a page");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The page for a refused link.
fn refused(error: RegistrationError) -> Response {
    refused_api(error.into())
}

/// The page for a refused request, with the status the API would answer (and, when the
/// client's budget is spent, its `Retry-After`).
fn refused_api(error: ApiError) -> Response {
    let retry_after = match error {
        ApiError::RateLimited(seconds) => Some(seconds),
        _ => None,
    };
    let (status, detail) = match error {
        ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, error.to_string()),
        ApiError::Problem(code, detail) => (code.status(), detail),
        ApiError::Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            RegistrationError::Unauthenticated.to_string(),
        ),
        other => (StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    };
    let mut response = page(
        status,
        status.canonical_reason().unwrap_or("Error"),
        &detail,
        None,
        None,
        false,
    );
    if let Some(seconds) = retry_after
        && let Ok(value) = header::HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn describe(view: &TokenView) -> (String, String, &'static str) {
    let user = &view.user_name;
    match view.operation {
        TokenOperation::ConfirmEmail => (
            "Confirm your email address".to_owned(),
            format!("Press the button to confirm the email address of the registration of {user}."),
            "Confirm",
        ),
        TokenOperation::ApproveRegistration => (
            "Approve a registration".to_owned(),
            format!("{user} confirmed their address and asks to be registered."),
            "Approve",
        ),
        TokenOperation::DeclineRegistration => (
            "Decline a registration".to_owned(),
            format!(
                "{user} confirmed their address and asks to be registered; declining tells them by email."
            ),
            "Decline",
        ),
        TokenOperation::AcceptGroupTerms => (
            "Accept the terms of a group".to_owned(),
            format!(
                "To join {}, {user} accepts its terms.",
                view.group_name.as_deref().unwrap_or("the group")
            ),
            "Accept the terms",
        ),
        TokenOperation::ConfirmEmailChange => (
            "Confirm your new email address".to_owned(),
            format!(
                "Press the button to make {} the email address of {user}.",
                view.email.as_deref().unwrap_or("this address")
            ),
            "Confirm",
        ),
    }
}

/// The page of a mailed link: what the link does, and a button that posts to the same address.
/// Looking changes nothing. Every answer is an HTML page, refusals too.
#[utoipa::path(get, path = "/tokens/{token}", tag = "registration", operation_id = "link_page",
    params(("token" = String, Path, pattern = r"^[0-9a-f]{32}\.[0-9a-f]{64}$",
        description = "The token of the mailed link: its id and its secret, in hex")),
    responses(
        (status = 200, description = "What the link does, and its button", content_type = "text/html", body = String),
        (status = 404, description = "No such link, or it was used", content_type = "text/html", body = String),
        (status = 410, description = "The link has expired", content_type = "text/html", body = String),
        (status = 422, description = "Not of a token's shape", content_type = "text/html", body = String),
        (status = 429, description = "Too many requests from this address", content_type = "text/html", body = String),
    ))]
pub async fn show(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    if let Err(error) = state.limiter.check(&extensions) {
        return refused_api(error);
    }
    match state.registration.inspect(&token).await {
        Ok(view) => {
            let (title, message, button) = describe(&view);
            let signed_in_admin = matches!(
                session_decider(&state, &headers).await,
                Ok(Some(Decider { admin: true, .. }))
            );
            page(
                StatusCode::OK,
                &title,
                &message,
                Some(&view),
                Some(button),
                signed_in_admin,
            )
        }
        Err(error) => refused(error),
    }
}

/// Does what a mailed link does, once: confirms an address, approves or declines a
/// registration (an admin's API token in the form or as a bearer token), or accepts a group's
/// terms. Every answer is an HTML page, refusals too.
#[utoipa::path(post, path = "/tokens/{token}", tag = "registration", operation_id = "follow_link",
    params(("token" = String, Path, pattern = r"^[0-9a-f]{32}\.[0-9a-f]{64}$",
        description = "The token of the mailed link: its id and its secret, in hex")),
    request_body(content = Decision, content_type = "application/x-www-form-urlencoded",
        description = "What the page's form posts; only approving and declining need `admin_token`"),
    responses(
        (status = 200, description = "Done, and what happened", content_type = "text/html", body = String),
        (status = 401, description = "Approving or declining needs an admin's API token", content_type = "text/html", body = String),
        (status = 403, description = "The API token is not an admin's", content_type = "text/html", body = String),
        (status = 404, description = "No such link, or it was used", content_type = "text/html", body = String),
        (status = 409, description = "The user name or email was taken in the meantime", content_type = "text/html", body = String),
        (status = 410, description = "The link has expired", content_type = "text/html", body = String),
        (status = 422, description = "Not of a token's shape", content_type = "text/html", body = String),
        (status = 429, description = "Too many requests from this address", content_type = "text/html", body = String),
    ))]
pub async fn act(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    Path(token): Path<String>,
    form: Result<Form<Decision>, FormRejection>,
) -> Response {
    if let Err(error) = state.limiter.check(&extensions) {
        return refused_api(error);
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_owned);
    let offered = form
        .ok()
        .and_then(|Form(decision)| decision.admin_token)
        .filter(|token| !token.is_empty())
        .or(bearer);
    let decider = match offered {
        Some(plain) => match token_holder(&state, plain.trim()).await {
            Ok(holder) => holder.map(|token| Decider {
                admin: token.role.includes(Role::Admin),
                name: token.name,
                user_id: token.user_id,
            }),
            Err(error) => return refused_api(error),
        },
        // Without a token, a signed-in person's session decides: the link's secret is in the
        // address, so no other site can post to it.
        None => match session_decider(&state, &headers).await {
            Ok(decider) => decider,
            Err(error) => return refused_api(error),
        },
    };
    let visitor = match &decider {
        Some(decider) => Visitor::SignedIn {
            admin: decider.admin,
        },
        None => Visitor::Anonymous,
    };
    match state.registration.redeem(&token, visitor).await {
        Ok(done) => {
            let (actor, user_id) = decider.as_ref().map_or((ANONYMOUS, None), |decider| {
                (decider.name.as_str(), decider.user_id)
            });
            if let Err(error) =
                audit_decision(&state, &done, actor, user_id, client_addr(&extensions)).await
            {
                return refused_api(error.into());
            }
            page(StatusCode::OK, "Done", &done.message, None, None, false)
        }
        Err(error) => refused(error),
    }
}

/// Who presses a link's button: an API token's holder, or a signed-in person.
struct Decider {
    name: String,
    user_id: Option<Uuid>,
    admin: bool,
}

/// The signed-in person the request's session cookie names, if any.
async fn session_decider(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Decider>, ApiError> {
    let Some(cookie) = session_cookie_in(headers) else {
        return Ok(None);
    };
    Ok(state
        .accounts
        .session(&cookie)
        .await?
        .map(|session| Decider {
            admin: session.user.role() == Role::Admin,
            name: session.user.user_name,
            user_id: Some(session.user.user_id),
        }))
}

/// Records an admin's approval or decline of a registration in the audit log, on the user name,
/// with who decided (`actor`, their User subscription) and from where. Other uses of links are
/// not recorded here.
pub async fn audit_decision(
    state: &AppState,
    done: &Redeemed,
    actor: &str,
    user_id: Option<Uuid>,
    client_addr: Option<IpAddr>,
) -> Result<(), DomainError> {
    let action = match done.operation {
        TokenOperation::ApproveRegistration => AuditAction::RegistrationApproved,
        TokenOperation::DeclineRegistration => AuditAction::RegistrationDeclined,
        _ => return Ok(()),
    };
    let event = AuditEvent::new(Uuid::now_v7(), state.engine.clock().now(), action, actor)
        .by_user(user_id)
        .from_addr(client_addr)
        .on(&done.user_name);
    state.engine.store().record_audit(&event).await
}
