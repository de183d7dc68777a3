//! A person's own pages: signing in and out, the forgotten password, the profile, the password
//! and the API tokens.

use axum::extract::{Form, Path, State};
use axum::http::header::SET_COOKIE;
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use cadre_accounts::{AccountError, SessionUser};
use cadre_domain::ApiToken;
use cadre_domain::models::DomainModel;
use cadre_products::models::{User, UserGroup};
use cadre_server::auth::{issue_own_token, revoke_own_token, session_cookie};
use cadre_server::{ApiError, AppState, client_addr};
use chrono::{DateTime, Utc};
use minijinja::context;
use serde::Deserialize;
use uuid::Uuid;

use crate::page::{
    Person, anonymous_form_ok, forged, form_token, me, message, refused, render, session_form_ok,
    to_sign_in, visitor, with_cookie,
};

/// The profile when signed in, else the sign-in page.
pub(crate) async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match visitor(&state, &headers).await {
        Ok(Some(_)) => Redirect::to("/me").into_response(),
        Ok(None) => to_sign_in(),
        Err(error) => refused(None, error),
    }
}

/// The sign-in form (and the form cookie its CSRF token lives in).
pub(crate) async fn sign_in_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match visitor(&state, &headers).await {
        Ok(Some(_)) => return Redirect::to("/me").into_response(),
        Ok(None) => {}
        Err(error) => return refused(None, error),
    }
    sign_in_form(&headers, StatusCode::OK, "", None)
}

fn sign_in_form(
    headers: &HeaderMap,
    status: StatusCode,
    username: &str,
    error: Option<&str>,
) -> Response {
    match form_token(headers) {
        Ok((csrf_token, cookie)) => with_cookie(
            render(
                status,
                "sign_in.html",
                context! { me => me(None), csrf_token, username, error },
            ),
            cookie,
        ),
        Err(error) => refused(None, error),
    }
}

/// What the sign-in form sends.
#[derive(Debug, Deserialize)]
pub(crate) struct SignInForm {
    username: String,
    password: String,
    csrf_token: String,
}

/// Signs in: a session cookie and on to the profile, or the form again with why not.
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Form(form): Form<SignInForm>,
) -> Response {
    if !anonymous_form_ok(&headers, &form.csrf_token) {
        return forged(None);
    }
    if let Err(error) = state.sign_in_limiter.check(&extensions) {
        return refused(None, error);
    }
    let addr = client_addr(&extensions);
    match state.sign_in(&form.username, &form.password, addr).await {
        Ok(signed_in) => {
            // A session the browser still had ends: one person, one session per browser.
            if let Ok(Some(old)) = visitor(&state, &headers).await {
                let _ = state.accounts.sign_out(&old, false, addr).await;
            }
            match session_cookie(&state, Some(&signed_in.cookie)) {
                Ok(cookie) => {
                    let mut response = Redirect::to("/me").into_response();
                    response.headers_mut().insert(SET_COOKIE, cookie);
                    response
                }
                Err(error) => refused(None, error),
            }
        }
        Err(AccountError::InvalidCredentials) => sign_in_form(
            &headers,
            StatusCode::UNAUTHORIZED,
            &form.username,
            Some("The user name or password is wrong, or the account cannot sign in now."),
        ),
        Err(error) => refused(None, error.into()),
    }
}

/// What every signed-in form sends.
#[derive(Debug, Deserialize)]
pub(crate) struct Csrf {
    csrf_token: String,
}

/// Signs out of this session and back to the sign-in page.
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    Person(session): Person,
    extensions: Extensions,
    Form(form): Form<Csrf>,
) -> Response {
    if !session_form_ok(&session, &form.csrf_token) {
        return forged(Some(&session));
    }
    if let Err(error) = state
        .accounts
        .sign_out(&session, false, client_addr(&extensions))
        .await
    {
        return refused(Some(&session), error.into());
    }
    let mut response = to_sign_in();
    if let Ok(cookie) = session_cookie(&state, None) {
        response.headers_mut().insert(SET_COOKIE, cookie);
    }
    response
}

/// The form that asks for a reset link.
pub(crate) async fn reset_request_page(headers: HeaderMap) -> Response {
    reset_request_form(&headers)
}

fn reset_request_form(headers: &HeaderMap) -> Response {
    match form_token(headers) {
        Ok((csrf_token, cookie)) => with_cookie(
            render(
                StatusCode::OK,
                "reset_request.html",
                context! { me => me(None), csrf_token },
            ),
            cookie,
        ),
        Err(error) => refused(None, error),
    }
}

/// What the reset request form sends.
#[derive(Debug, Deserialize)]
pub(crate) struct ResetRequestForm {
    email: String,
    csrf_token: String,
}

/// Mails a reset link if an active user has the address; says the same either way, at once.
pub(crate) async fn request_reset(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Form(form): Form<ResetRequestForm>,
) -> Response {
    if !anonymous_form_ok(&headers, &form.csrf_token) {
        return forged(None);
    }
    if let Err(error) = state.sign_in_limiter.check(&extensions) {
        return refused(None, error);
    }
    let accounts = state.accounts.clone();
    let addr = client_addr(&extensions);
    tokio::spawn(async move {
        if let Err(error) = accounts.request_reset(&form.email, addr).await {
            tracing::warn!(%error, "a password reset request failed");
        }
    });
    message(
        StatusCode::ACCEPTED,
        None,
        "Check your mail",
        "If an active account has this address, a link to set a new password is on its way to it.",
    )
}

/// The page of a mailed reset link: a form for the new password.
pub(crate) async fn reset_page(headers: HeaderMap, Path(token): Path<String>) -> Response {
    reset_form(&headers, StatusCode::OK, &token, None)
}

fn reset_form(
    headers: &HeaderMap,
    status: StatusCode,
    token: &str,
    error: Option<&str>,
) -> Response {
    match form_token(headers) {
        Ok((csrf_token, cookie)) => with_cookie(
            render(
                status,
                "reset.html",
                context! { me => me(None), csrf_token, token, error },
            ),
            cookie,
        ),
        Err(error) => refused(None, error),
    }
}

/// What the reset form sends.
#[derive(Debug, Deserialize)]
pub(crate) struct ResetForm {
    new_password: String,
    csrf_token: String,
}

/// Sets the new password through the link: the link is used up and every session ends.
pub(crate) async fn reset(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Path(token): Path<String>,
    Form(form): Form<ResetForm>,
) -> Response {
    if !anonymous_form_ok(&headers, &form.csrf_token) {
        return forged(None);
    }
    if let Err(error) = state.sign_in_limiter.check(&extensions) {
        return refused(None, error);
    }
    match state
        .accounts
        .reset_password(token.trim(), &form.new_password, client_addr(&extensions))
        .await
    {
        Ok(()) => message(
            StatusCode::OK,
            None,
            "Your password is set",
            "Sign in with your new password. Every session of your account has ended.",
        ),
        Err(AccountError::Invalid { reason, .. }) => reset_form(
            &headers,
            StatusCode::UNPROCESSABLE_ENTITY,
            &token,
            Some(&format!("The new password {reason}.")),
        ),
        Err(error) => refused(None, error.into()),
    }
}

/// The profile: who the person is, and the groups they belong to.
pub(crate) async fn profile(State(state): State<AppState>, Person(session): Person) -> Response {
    let store = state.engine.store();
    let user = match store.load_subscription(session.user.user_id).await {
        Ok(record) => match User::from_record(record) {
            Ok(user) => user,
            Err(error) => return refused(Some(&session), error.into()),
        },
        Err(error) => return refused(Some(&session), error.into()),
    };
    let owners: Vec<Uuid> = user
        .user
        .groups
        .iter()
        .map(|group| group.owner_subscription_id)
        .collect();
    let mut groups: Vec<(String, String)> = match store.load_subscriptions(&owners).await {
        Ok(records) => records
            .into_iter()
            .filter_map(|record| UserGroup::from_record(record).ok())
            .map(|group| {
                (
                    group.user_group.user_group_id.to_string(),
                    group.user_group.name.to_string(),
                )
            })
            .collect(),
        Err(error) => return refused(Some(&session), error.into()),
    };
    groups.sort();
    let roles: Vec<&str> = session
        .user
        .roles
        .iter()
        .map(|role| role.as_str())
        .collect();
    render(
        StatusCode::OK,
        "profile.html",
        context! {
            me => me(Some(&session)),
            user_name => user.user.username.as_str(),
            email => user.user.email.as_str(),
            firstname => user.user.firstname.as_ref().map(|name| name.as_str()),
            lastname => user.user.lastname.as_ref().map(|name| name.as_str()),
            roles,
            groups,
        },
    )
}

/// The password change form.
pub(crate) async fn password_page(Person(session): Person) -> Response {
    password_form(&session, StatusCode::OK, None)
}

fn password_form(session: &SessionUser, status: StatusCode, error: Option<&str>) -> Response {
    render(
        status,
        "password.html",
        context! { me => me(Some(session)), error },
    )
}

/// What the password change form sends.
#[derive(Debug, Deserialize)]
pub(crate) struct PasswordForm {
    current_password: String,
    new_password: String,
    csrf_token: String,
}

/// Changes the password (the current one first) and ends the person's other sessions.
pub(crate) async fn change_password(
    State(state): State<AppState>,
    Person(session): Person,
    extensions: Extensions,
    Form(form): Form<PasswordForm>,
) -> Response {
    if !session_form_ok(&session, &form.csrf_token) {
        return forged(Some(&session));
    }
    match state
        .accounts
        .change_password(
            &session,
            &form.current_password,
            &form.new_password,
            client_addr(&extensions),
        )
        .await
    {
        Ok(()) => message(
            StatusCode::OK,
            Some(&session),
            "Your password is changed",
            "Your other sessions have ended; this one goes on.",
        ),
        Err(AccountError::Invalid { field, reason }) => {
            let field = field.replace('_', " ");
            password_form(
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&format!("The {field} {reason}.")),
            )
        }
        Err(error) => refused(Some(&session), error.into()),
    }
}

/// The person's API tokens and the form that makes one.
pub(crate) async fn tokens_page(
    State(state): State<AppState>,
    Person(session): Person,
) -> Response {
    tokens(&state, &session, StatusCode::OK, None, None).await
}

/// What a token list shows of `token` at `now`: never its secret.
pub(crate) fn token_row(token: &ApiToken, now: DateTime<Utc>) -> minijinja::Value {
    let state = if token.revoked_at.is_some() {
        "revoked"
    } else if token.expires_at.is_some_and(|at| at <= now) {
        "expired"
    } else {
        "live"
    };
    context! {
        id => token.id.to_string(),
        name => token.name,
        role => token.role.as_str(),
        user_id => token.user_id.map(|id| id.to_string()),
        created_by => token.created_by,
        created => token.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        expires => token.expires_at.map(|at| at.format("%Y-%m-%d").to_string()),
        state,
    }
}

/// The tokens page, with a token just made (`created`, its only showing) or an error.
async fn tokens(
    state: &AppState,
    session: &SessionUser,
    status: StatusCode,
    created: Option<&str>,
    error: Option<&str>,
) -> Response {
    let now = state.engine.clock().now();
    let listed = match state.engine.store().tokens_of(session.user.user_id).await {
        Ok(listed) => listed,
        Err(error) => return refused(Some(session), error.into()),
    };
    let listed: Vec<minijinja::Value> = listed
        .iter()
        .rev()
        .map(|token| token_row(token, now))
        .collect();
    let settings = state.accounts.settings();
    render(
        status,
        "tokens.html",
        context! {
            me => me(Some(session)),
            tokens => listed,
            created,
            error,
            default_days => settings.token_days,
            max_days => settings.token_max_days,
        },
    )
}

/// What the token form sends.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenForm {
    name: String,
    expires_in_days: u32,
    csrf_token: String,
}

/// Makes a token and shows it, once.
pub(crate) async fn create_token(
    State(state): State<AppState>,
    Person(session): Person,
    Form(form): Form<TokenForm>,
) -> Response {
    if !session_form_ok(&session, &form.csrf_token) {
        return forged(Some(&session));
    }
    match issue_own_token(
        &state,
        &session,
        &form.name,
        None,
        Some(form.expires_in_days),
    )
    .await
    {
        Ok(issued) => {
            tokens(
                &state,
                &session,
                StatusCode::CREATED,
                Some(&issued.plain),
                None,
            )
            .await
        }
        Err(ApiError::Problem(code, detail)) if !code.status().is_server_error() => {
            tokens(&state, &session, code.status(), None, Some(&detail)).await
        }
        Err(error) => refused(Some(&session), error),
    }
}

/// Revokes one of the person's tokens.
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    Person(session): Person,
    Path(id): Path<Uuid>,
    Form(form): Form<Csrf>,
) -> Response {
    if !session_form_ok(&session, &form.csrf_token) {
        return forged(Some(&session));
    }
    match revoke_own_token(&state, session.user.user_id, id, &session.user.user_name).await {
        Ok(()) => Redirect::to("/me/tokens").into_response(),
        Err(error) => refused(Some(&session), error),
    }
}
