//! Signing in and out, the caller's own account, and passwords over HTTP.
//!
//! `POST /api/auth/login` opens a session and sets the `cadre_session` cookie (HttpOnly,
//! SameSite=Lax, Secure when configured or served from an `https://` address); requests then
//! authenticate with the cookie, and their unsafe ones send the session's CSRF token (from the
//! sign-in answer or `GET /api/auth/me`) in `X-CSRF-Token`. Sign-in and the reset endpoints are
//! rate-limited per client address; every refused sign-in gets the same 401.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cadre_accounts::{AccountUser, SignedIn};
use cadre_domain::{ApiToken, AuditAction, AuditEvent, DomainError, Origin, Role};
use cadre_registration::RegistrationError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{
    Admin, Caller, Credential, issue_own_token, revoke_own_token, session_cookie, session_cookie_in,
};
use crate::error::{ApiError, ErrorCode, Problem};
use crate::extract::{ClientAddr, JsonBody, Path};
use crate::limit::client_addr;
use crate::state::AppState;

/// A sign-in.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The user name, or the email address.
    pub username: String,
    /// The password.
    pub password: String,
}

/// Who the caller is.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The User subscription the caller acts for (`null` for a service token).
    pub user_id: Option<Uuid>,
    /// The user name, or the token's name.
    pub name: String,
    /// The user's email address, when signed in.
    pub email: Option<String>,
    /// The roles: `user`, and `admin` for admins.
    pub roles: Vec<String>,
    /// `session` or `token`.
    pub via: String,
    /// What unsafe requests of this session send in `X-CSRF-Token` (sessions only).
    pub csrf_token: Option<String>,
    /// When the session ends at the latest (seconds since the epoch; sessions only).
    pub expires_at: Option<f64>,
}

fn user_roles(user: &AccountUser) -> Vec<String> {
    user.roles
        .iter()
        .map(|role| role.as_str().to_owned())
        .collect()
}

fn me(caller: &Caller) -> Me {
    match &caller.0 {
        Credential::Session(session) => Me {
            user_id: Some(session.user.user_id),
            name: session.user.user_name.clone(),
            email: Some(session.user.email.clone()),
            roles: user_roles(&session.user),
            via: "session".to_owned(),
            csrf_token: Some(session.csrf_token.clone()),
            expires_at: Some(super::epoch(session.session.expires_at)),
        },
        Credential::Token(token) => Me {
            user_id: token.user_id,
            name: token.name.clone(),
            email: None,
            roles: vec![token.role.as_str().to_owned()],
            via: "token".to_owned(),
            csrf_token: None,
            expires_at: None,
        },
    }
}

/// Signs in with a user name or email address and a password, and opens a session: its cookie
/// is set, and the answer carries the session's CSRF token. An unknown user, a wrong password,
/// an inactive user and a locked account all get the same 401. A session the request came with
/// ends.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth",
    request_body = Login,
    responses(
        (status = 200, description = "Signed in; `Set-Cookie` carries the session", body = Me),
        (status = 400, description = "The body is not JSON", body = Problem),
        (status = 401, description = "The user name or password is wrong", body = Problem),
        (status = 415, description = "The body is not declared as JSON", body = Problem),
        (status = 422, description = "The body is not a sign-in", body = Problem),
        (status = 429, description = "Too many sign-ins from this address", body = Problem),
    ))]
pub async fn login(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    JsonBody(login): JsonBody<Login>,
) -> Result<Response, ApiError> {
    state.sign_in_limiter.check(&extensions)?;
    let SignedIn {
        session,
        cookie,
        csrf_token,
        user,
    } = state
        .sign_in(&login.username, &login.password, client_addr(&extensions))
        .await?;
    if let Some(old) = session_cookie_in(&headers)
        && let Some(old) = state.accounts.session(&old).await?
    {
        state
            .accounts
            .sign_out(&old, false, client_addr(&extensions))
            .await?;
    }
    let body = Me {
        user_id: Some(user.user_id),
        name: user.user_name.clone(),
        email: Some(user.email.clone()),
        roles: user_roles(&user),
        via: "session".to_owned(),
        csrf_token: Some(csrf_token),
        expires_at: Some(super::epoch(session.expires_at)),
    };
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, session_cookie(&state, Some(&cookie))?);
    Ok(response)
}

/// Which sessions a sign-out ends.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SignOut {
    /// End every session of the user, not just this one.
    #[serde(default)]
    pub everywhere: bool,
}

/// Signs out: ends this session (or every session of the user) and removes the cookie.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    security(("session" = [])),
    params(SignOut),
    responses(
        (status = 204, description = "Signed out; `Set-Cookie` removes the cookie"),
        (status = 400, description = "A query parameter does not parse", body = Problem),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "No CSRF token, or another session's; or an API token, which has no session", body = Problem),
    ))]
pub async fn logout(
    caller: Caller,
    ClientAddr(addr): ClientAddr,
    State(state): State<AppState>,
    query: Result<Query<SignOut>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let session = caller.session().ok_or(ApiError::new(
        ErrorCode::Forbidden,
        "signing out needs a session; an API token is revoked instead",
    ))?;
    state
        .accounts
        .sign_out(session, query.everywhere, addr)
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, session_cookie(&state, None)?);
    Ok(response)
}

/// Who the caller is: the signed-in user (with the session's CSRF token), or the token.
#[utoipa::path(get, path = "/api/auth/me", tag = "auth",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, description = "No valid session or token", body = Problem),
    ))]
pub async fn get_me(caller: Caller) -> Json<Me> {
    Json(me(&caller))
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The password now.
    pub current_password: String,
    /// The new password: at least the configured length (12 by default).
    pub new_password: String,
}

/// Changes the signed-in user's password (which takes the current one) and ends their other
/// sessions.
#[utoipa::path(post, path = "/api/auth/password", tag = "auth",
    security(("session" = [])),
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed; the user's other sessions ended"),
        (status = 400, description = "The body is not JSON", body = Problem),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "No CSRF token, or another session's; or an API token, which has no session", body = Problem),
        (status = 415, description = "The body is not declared as JSON", body = Problem),
        (status = 422, description = "The current password is wrong, or the new one too short or long", body = Problem),
    ))]
pub async fn change_password(
    caller: Caller,
    ClientAddr(addr): ClientAddr,
    State(state): State<AppState>,
    JsonBody(change): JsonBody<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    let session = caller.session().ok_or(ApiError::new(
        ErrorCode::Forbidden,
        "changing a password needs a session: sign in",
    ))?;
    state
        .accounts
        .change_password(
            session,
            &change.current_password,
            &change.new_password,
            addr,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A change of the signed-in user's email address.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailChange {
    /// The password now: changing the address that recovers the account takes it.
    pub current_password: String,
    /// The address to use from now on, once it is confirmed.
    pub new_email: String,
}

/// Asks to change the signed-in user's email address (which takes the current password): the
/// new address gets a link that makes the change once opened, and the current address is told.
/// Answers the same whether or not the new address is taken (its owner is told instead).
#[utoipa::path(post, path = "/api/auth/email", tag = "auth",
    security(("session" = [])),
    request_body = EmailChange,
    responses(
        (status = 202, description = "A confirmation link is on its way to the new address", body = Accepted),
        (status = 400, description = "The body is not JSON", body = Problem),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "No CSRF token, or another session's; or an API token, which has no session", body = Problem),
        (status = 415, description = "The body is not declared as JSON", body = Problem),
        (status = 422, description = "The current password is wrong, or the new address unusable or the current one", body = Problem),
        (status = 429, description = "Too many requests from this address", body = Problem),
    ))]
pub async fn change_email(
    caller: Caller,
    State(state): State<AppState>,
    extensions: Extensions,
    JsonBody(change): JsonBody<EmailChange>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    state.sign_in_limiter.check(&extensions)?;
    let session = caller.session().ok_or(ApiError::new(
        ErrorCode::Forbidden,
        "changing the email address needs a session: sign in",
    ))?;
    let addr = client_addr(&extensions);
    let user_id = session.user.user_id;
    state
        .accounts
        .reauthenticate(
            session,
            &change.current_password,
            AuditAction::EmailChangeRequested,
            addr,
        )
        .await?;
    state
        .registration
        .request_email_change(user_id, &change.new_email)
        .await
        .map_err(|error| match error {
            RegistrationError::Invalid { field, reason } => {
                ApiError::new(ErrorCode::InvalidArgument, format!("{field}: {reason}"))
            }
            other => other.into(),
        })?;
    state
        .engine
        .store()
        .record_audit(
            &AuditEvent::new(
                Uuid::now_v7(),
                state.engine.clock().now(),
                AuditAction::EmailChangeRequested,
                &session.user.user_name,
            )
            .origin(&caller.origin(addr))
            .on(user_id)
            .detail("the new address was mailed"),
        )
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            detail: "a link that confirms the new address is on its way to it; until it is opened, the current address stays".to_owned(),
        }),
    ))
}

/// A session as its user sees it: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionSchema {
    /// Its id (the public half of its cookie; useless without the secret half).
    pub id: Uuid,
    /// When its user signed in (seconds since the epoch).
    pub created_at: f64,
    /// When it was last used, to the minute.
    pub last_seen_at: f64,
    /// When it ends at the latest.
    pub expires_at: f64,
    /// Whether this request came with it.
    pub current: bool,
}

/// The caller's own sessions (the signed-in user's, or those of the user a token acts for),
/// oldest first.
#[utoipa::path(get, path = "/api/auth/sessions", tag = "auth",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The sessions", body = Vec<SessionSchema>),
        (status = 401, description = "No valid session or token", body = Problem),
        (status = 403, description = "A token acting for no user", body = Problem),
    ))]
pub async fn list_sessions(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Vec<SessionSchema>>, ApiError> {
    let owner = token_owner(&caller)?;
    let current = caller.session().map(|session| session.session.id);
    let sessions = state.accounts.sessions_of(owner).await?;
    Ok(Json(
        sessions
            .iter()
            .map(|session| SessionSchema {
                id: session.id,
                created_at: super::epoch(session.created_at),
                last_seen_at: super::epoch(session.last_seen_at),
                expires_at: super::epoch(session.expires_at),
                current: Some(session.id) == current,
            })
            .collect(),
    ))
}

/// The current password, which ending a session takes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reauthentication {
    /// The password now.
    pub current_password: String,
}

/// Ends one of the signed-in user's sessions (another device's, say), which takes the current
/// password. Another user's session answers as an unknown one.
#[utoipa::path(delete, path = "/api/auth/sessions/{id}", tag = "auth",
    security(("session" = [])),
    params(("id" = Uuid, Path, description = "Session id")),
    request_body = Reauthentication,
    responses(
        (status = 204, description = "Ended"),
        (status = 400, description = "The id is malformed, or the body is not JSON", body = Problem),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "No CSRF token, or another session's; or an API token, which has no session", body = Problem),
        (status = 404, description = "No such session of yours", body = Problem),
        (status = 415, description = "The body is not declared as JSON", body = Problem),
        (status = 422, description = "The current password is wrong", body = Problem),
    ))]
pub async fn end_session(
    caller: Caller,
    ClientAddr(addr): ClientAddr,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    JsonBody(reauthentication): JsonBody<Reauthentication>,
) -> Result<StatusCode, ApiError> {
    let session = caller.session().ok_or(ApiError::new(
        ErrorCode::Forbidden,
        "ending a session needs a session: sign in",
    ))?;
    state
        .accounts
        .end_own_session(session, id, &reauthentication.current_password, addr)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How many sessions ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsEnded {
    /// The count.
    pub ended: u64,
}

/// Ends every session of every user (admins only; the caller's own too): everyone signs in
/// again. Audited as `sessions_ended`.
#[utoipa::path(delete, path = "/api/auth/sessions", tag = "auth",
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Ended", body = SessionsEnded),
        (status = 401, description = "No valid session or token", body = Problem),
        (status = 403, description = "Not an admin, or no CSRF token", body = Problem),
    ))]
pub async fn end_all_sessions(
    Admin(caller): Admin,
    ClientAddr(addr): ClientAddr,
    State(state): State<AppState>,
) -> Result<Json<SessionsEnded>, ApiError> {
    let ended = state
        .accounts
        .end_sessions(None, caller.name(), &caller.origin(addr))
        .await?;
    Ok(Json(SessionsEnded { ended }))
}

/// Ends every session of a user (admins only): they sign in again. Audited as
/// `sessions_ended`.
#[utoipa::path(delete, path = "/api/auth/users/{id}/sessions", tag = "auth",
    security(("bearer" = []), ("session" = [])),
    params(("id" = Uuid, Path, description = "The User subscription")),
    responses(
        (status = 200, description = "Ended", body = SessionsEnded),
        (status = 400, description = "The id is malformed", body = Problem),
        (status = 401, description = "No valid session or token", body = Problem),
        (status = 403, description = "Not an admin, or no CSRF token", body = Problem),
    ))]
pub async fn end_user_sessions(
    Admin(caller): Admin,
    ClientAddr(addr): ClientAddr,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Json<SessionsEnded>, ApiError> {
    let ended = state
        .accounts
        .end_sessions(Some(id), caller.name(), &caller.origin(addr))
        .await?;
    Ok(Json(SessionsEnded { ended }))
}

/// A request for a password reset link.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// The address of the account.
    pub email: String,
}

/// A message for the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// What happens next.
    pub detail: String,
}

/// Mails a password reset link if an active user has this address; answers the same, at once,
/// either way (the mail is prepared after the answer).
#[utoipa::path(post, path = "/api/auth/password-reset", tag = "auth",
    request_body = ResetRequest,
    responses(
        (status = 202, description = "If an active user has this address, a link is on its way", body = Accepted),
        (status = 400, description = "The body is not JSON", body = Problem),
        (status = 415, description = "The body is not declared as JSON", body = Problem),
        (status = 422, description = "The body is not a request", body = Problem),
        (status = 429, description = "Too many requests from this address", body = Problem),
    ))]
pub async fn request_reset(
    State(state): State<AppState>,
    extensions: Extensions,
    JsonBody(request): JsonBody<ResetRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    state.sign_in_limiter.check(&extensions)?;
    let accounts = state.accounts.clone();
    let addr = client_addr(&extensions);
    tokio::spawn(async move {
        if let Err(error) = accounts.request_reset(&request.email, addr).await {
            tracing::warn!(%error, "a password reset request failed");
        }
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            detail: "if an active user has this address, a reset link is on its way".to_owned(),
        }),
    ))
}

/// A new password through a reset link.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    /// The token of the mailed link (`<id>.<secret>`, after `/password-reset/`).
    #[schema(pattern = "^[0-9a-f]{32}\\.[0-9a-f]{64}$")]
    pub token: String,
    /// The new password: at least the configured length (12 by default).
    pub new_password: String,
}

/// Sets a new password through a mailed reset link: the link is used up, and every session of
/// the user ends.
#[utoipa::path(post, path = "/api/auth/password-reset/confirm", tag = "auth",
    request_body = PasswordReset,
    responses(
        (status = 204, description = "The password is set; every session of the user ended"),
        (status = 400, description = "The body is not JSON", body = Problem),
        (status = 404, description = "The link is unknown or was used", body = Problem),
        (status = 410, description = "The link expired", body = Problem),
        (status = 415, description = "The body is not declared as JSON", body = Problem),
        (status = 422, description = "The token is malformed, or the password too short or long", body = Problem),
        (status = 429, description = "Too many requests from this address", body = Problem),
    ))]
pub async fn confirm_reset(
    State(state): State<AppState>,
    extensions: Extensions,
    JsonBody(reset): JsonBody<PasswordReset>,
) -> Result<StatusCode, ApiError> {
    state.sign_in_limiter.check(&extensions)?;
    state
        .accounts
        .reset_password(
            reset.token.trim(),
            &reset.new_password,
            client_addr(&extensions),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A token a signed-in user makes for themselves.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// A name for it (what it is for).
    pub name: String,
    /// `user` (the default), `scim` (a SCIM client's) or `admin`; at most what the user may
    /// do (an admin may make any).
    pub role: Option<String>,
    /// Days until it expires: 1 to the configured maximum (default: the configured default).
    pub expires_in_days: Option<u32>,
}

/// An API token as its owner sees it: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenSchema {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// What it may do (at most what its user may).
    pub role: String,
    /// When it was made (seconds since the epoch).
    pub created_at: f64,
    /// When it expires (seconds since the epoch; `null`: never).
    pub expires_at: Option<f64>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<f64>,
}

impl From<&ApiToken> for TokenSchema {
    fn from(token: &ApiToken) -> Self {
        Self {
            id: token.id,
            name: token.name.clone(),
            role: token.role.as_str().to_owned(),
            created_at: super::epoch(token.created_at),
            expires_at: token.expires_at.map(super::epoch),
            revoked_at: token.revoked_at.map(super::epoch),
        }
    }
}

/// A token just made: its only plain copy.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The stored token.
    #[serde(flatten)]
    pub stored: TokenSchema,
    /// The token to send as `Authorization: Bearer …`; shown this once.
    pub token: String,
}

/// The signed-in user, or the user a token acts for: whose tokens these endpoints manage.
fn token_owner(caller: &Caller) -> Result<Uuid, ApiError> {
    caller.user_id().ok_or(ApiError::new(
        ErrorCode::Forbidden,
        "only a user has tokens of their own; this token acts for no user",
    ))
}

/// Makes an API token acting for the signed-in user, with at most their role, expiring after
/// `expires_in_days` (at most the configured maximum), while they hold fewer live tokens than
/// the configured most. Needs a session: a token cannot make tokens.
#[utoipa::path(post, path = "/api/auth/tokens", tag = "auth",
    security(("session" = [])),
    request_body = TokenRequest,
    responses(
        (status = 201, description = "The token, shown this once", body = CreatedToken),
        (status = 400, description = "The body is not JSON", body = Problem),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "No CSRF token, or another session's; an API token, which has no session; or a role above the user's", body = Problem),
        (status = 409, description = "The user holds the most live tokens allowed", body = Problem),
        (status = 415, description = "The body is not declared as JSON", body = Problem),
        (status = 422, description = "A bad name, role or lifetime", body = Problem),
    ))]
pub async fn create_token(
    caller: Caller,
    State(state): State<AppState>,
    JsonBody(request): JsonBody<TokenRequest>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let session = caller.session().ok_or(ApiError::new(
        ErrorCode::Forbidden,
        "making a token needs a session: sign in",
    ))?;
    let issued = issue_own_token(
        &state,
        session,
        &request.name,
        request.role.as_deref(),
        request.expires_in_days,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            stored: TokenSchema::from(&issued.token),
            token: issued.plain,
        }),
    ))
}

/// The caller's own API tokens (the signed-in user's, or those of the user a token acts for),
/// oldest first, revoked and expired ones included; never a secret.
#[utoipa::path(get, path = "/api/auth/tokens", tag = "auth",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The tokens", body = Vec<TokenSchema>),
        (status = 401, description = "No valid session or token", body = Problem),
        (status = 403, description = "A token acting for no user", body = Problem),
    ))]
pub async fn list_tokens(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Vec<TokenSchema>>, ApiError> {
    let owner = token_owner(&caller)?;
    let tokens = state.engine.store().tokens_of(owner).await?;
    Ok(Json(tokens.iter().map(TokenSchema::from).collect()))
}

/// Revokes one of the caller's own tokens (at once on this server, within a second on
/// others). Another user's token answers as an unknown one.
#[utoipa::path(delete, path = "/api/auth/tokens/{id}", tag = "auth",
    security(("session" = []), ("bearer" = [])),
    params(("id" = Uuid, Path, description = "Token id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "The id is malformed", body = Problem),
        (status = 401, description = "No valid session or token", body = Problem),
        (status = 403, description = "No CSRF token, or another session's; or a token acting for no user", body = Problem),
        (status = 404, description = "No such token of yours", body = Problem),
    ))]
pub async fn revoke_token(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    let owner = token_owner(&caller)?;
    revoke_own_token(&state, owner, id, caller.name()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A change of the caller's own names.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NamesChange {
    /// The new given name (absent: unchanged).
    pub firstname: Option<String>,
    /// The new family name (absent: unchanged).
    pub lastname: Option<String>,
}

/// The process that changes the caller's account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountChange {
    /// The `modify_user` process.
    pub process_id: Uuid,
}

/// Changes the caller's own given and family names: starts `modify_user` on their own User
/// subscription with nothing else changed (the one workflow a non-admin starts, and only
/// this way). 202 with the process.
#[utoipa::path(patch, path = "/api/auth/me", tag = "auth",
    security(("session" = []), ("bearer" = [])),
    request_body = NamesChange,
    responses(
        (status = 202, description = "The change runs", body = AccountChange),
        (status = 400, description = "A name is invalid (pydantic-forms `FormValidationError`), or the body is not JSON", body = Object),
        (status = 401, description = "No valid session or token", body = Problem),
        (status = 403, description = "No CSRF token, or another session's; or a token acting for no user", body = Problem),
        (status = 412, description = "The user is busy with another process", body = Problem),
        (status = 415, description = "The body is not declared as JSON", body = Problem),
        (status = 422, description = "Neither name is given", body = Problem),
    ))]
pub async fn change_names(
    caller: Caller,
    ClientAddr(addr): ClientAddr,
    State(state): State<AppState>,
    JsonBody(change): JsonBody<NamesChange>,
) -> Result<(StatusCode, Json<AccountChange>), ApiError> {
    let user = caller.user_id().ok_or(ApiError::new(
        ErrorCode::Forbidden,
        "only a user has names to change; this token acts for no user",
    ))?;
    if change.firstname.is_none() && change.lastname.is_none() {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            "give firstname, lastname or both",
        ));
    }
    let pages = [
        serde_json::json!({ "subscription_id": user }),
        serde_json::json!({ "firstname": change.firstname, "lastname": change.lastname }),
    ];
    let process = state
        .engine
        .with_origin(caller.origin(addr))
        .start("modify_user", &pages, caller.name())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(AccountChange {
            process_id: process.id,
        }),
    ))
}

/// The roles a user holds.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    /// `user` (every user holds it) and `admin`.
    pub roles: Vec<String>,
}

/// Sets the roles of a user (admins only): `["admin"]` makes an admin, `[]` or `["user"]` a
/// plain user. Their sessions and tokens follow within a second. Audited as `roles_changed`.
#[utoipa::path(put, path = "/api/auth/users/{id}/roles", tag = "auth",
    security(("bearer" = []), ("session" = [])),
    params(("id" = Uuid, Path, description = "The User subscription")),
    request_body = Roles,
    responses(
        (status = 200, description = "The roles the user holds now", body = Roles),
        (status = 400, description = "The id is malformed, or the body is not JSON", body = Problem),
        (status = 401, description = "No valid session or token", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No active user has this id", body = Problem),
        (status = 415, description = "The body is not declared as JSON", body = Problem),
        (status = 422, description = "An unknown role", body = Problem),
    ))]
pub async fn set_roles(
    Admin(caller): Admin,
    ClientAddr(addr): ClientAddr,
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    JsonBody(request): JsonBody<Roles>,
) -> Result<Json<Roles>, ApiError> {
    let roles = request
        .roles
        .iter()
        .map(|role| role.parse::<Role>())
        .collect::<Result<Vec<_>, _>>()?;
    let roles = set_user_roles(&state, &caller.origin(addr), caller.name(), id, &roles).await?;
    Ok(Json(Roles {
        roles: roles.iter().map(|role| role.as_str().to_owned()).collect(),
    }))
}

/// Sets the roles of active user `id` to `roles` (`user` is always held) and records it as
/// `roles_changed` by `actor` from `origin`, in one transaction; answers the roles held now,
/// `user` first. What `PUT /api/auth/users/{id}/roles` and the console do.
pub async fn set_user_roles(
    state: &AppState,
    origin: &Origin,
    actor: &str,
    id: Uuid,
    roles: &[Role],
) -> Result<Vec<Role>, ApiError> {
    if state.accounts.active_user(id).await?.is_none() {
        return Err(DomainError::NotFound {
            kind: "user",
            id: id.to_string(),
        }
        .into());
    }
    let now = state.engine.clock().now();
    let store = state.engine.store();
    let txn = store.begin().await?;
    txn.set_roles(id, roles).await?;
    let mut held = vec![Role::User];
    held.extend(txn.roles(id).await?);
    let names: Vec<&str> = held.iter().map(|role| role.as_str()).collect();
    txn.record_audit(
        &AuditEvent::new(Uuid::now_v7(), now, AuditAction::RolesChanged, actor)
            .origin(origin)
            .on(id)
            .detail(names.join(", ")),
    )
    .await?;
    txn.commit().await?;
    Ok(held)
}
