//! API tokens: issuing them, and authenticating callers by token or session.
//!
//! A token reads `cadre_<id>_<secret>`: the id (a UUID in simple form) finds the stored row, and
//! the secret (256 bits from the operating system's CSPRNG, hex) is checked against the stored
//! SHA-256 hash in constant time. Only the hash is stored; the token is shown once.
//! An unknown id, a wrong secret, a revoked token and a malformed header all get the same 401.
//! A server keeps the token rows it reads for [`TOKEN_CACHE_TTL`] ([`TokenCache`]).
//!
//! Without an `Authorization` header, a caller may come with the session cookie of a
//! signed-in user ([`SESSION_COOKIE`], `cadre_accounts`); its unsafe requests must then carry
//! the session's CSRF token in [`CSRF_HEADER`].

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use cadre_accounts::{AccountUser, Accounts, SessionUser};
use cadre_domain::{
    ApiToken, AuditAction, AuditEvent, DomainError, Origin, Repositories, Role, TokenRepository,
};
use cadre_groups::Actor;
use cadre_products::models::is_active_user;
use chrono::{DateTime, Utc};
use cookie::{Cookie, SameSite};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

const PREFIX: &str = "cadre_";

/// A token just issued: the stored row and the one-time plain text.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The stored token (hash only).
    pub token: ApiToken,
    /// The full token string to hand to its holder; it cannot be recovered later.
    pub plain: String,
}

/// What a new token is: its name and role, the User subscription it acts for (an active User;
/// `None` for a service's token), and when it expires (`None`: never, an admin's choice).
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    /// A name for people.
    pub name: &'a str,
    /// What it may do (for a user's token: at most what the user may).
    pub role: Role,
    /// The user it acts for.
    pub user: Option<Uuid>,
    /// When it stops working.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Creates and stores the token `new`, recording `created_by` as its creator; audited as
/// `token_created` by `created_by` (never the secret).
pub async fn issue_token(
    repositories: &dyn Repositories,
    new: NewToken<'_>,
    created_by: &str,
    now: DateTime<Utc>,
) -> Result<IssuedToken, DomainError> {
    let NewToken {
        name,
        role,
        user,
        expires_at,
    } = new;
    let name = name.trim();
    if name.is_empty() || name.len() > 255 {
        return Err(DomainError::invalid(
            "name",
            "a token name needs 1 to 255 characters",
        ));
    }
    if let Some(user) = user
        && !is_active_user(repositories, user).await?
    {
        return Err(DomainError::invalid(
            "user",
            format!("{user} is not an active User subscription"),
        ));
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|error| DomainError::Internal(format!("no randomness available: {error}")))?;
    let secret = hex::encode(secret);
    let token = ApiToken {
        id: Uuid::now_v7(),
        name: name.to_owned(),
        role,
        user_id: user,
        secret_hash: hash_secret(&secret),
        created_by: created_by.to_owned(),
        created_at: now,
        revoked_at: None,
        expires_at,
    };
    repositories.create_token(&token).await?;
    repositories
        .record_audit(
            &AuditEvent::new(Uuid::now_v7(), now, AuditAction::TokenCreated, created_by)
                .on(token.id)
                .detail(format!("{:?} with role {role}", token.name)),
        )
        .await?;
    let plain = format!("{PREFIX}{}_{secret}", token.id.simple());
    Ok(IssuedToken { token, plain })
}

/// Revokes token `id` (revoking a revoked one changes nothing); audited as `token_revoked` by
/// `revoked_by`.
pub async fn revoke_token(
    repositories: &dyn Repositories,
    id: Uuid,
    revoked_by: &str,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let token = repositories.token(id).await?;
    repositories.revoke_token(id, now).await?;
    repositories
        .record_audit(
            &AuditEvent::new(Uuid::now_v7(), now, AuditAction::TokenRevoked, revoked_by)
                .on(id)
                .detail(format!("{:?}", token.name)),
        )
        .await
}

/// Makes an API token for the signed-in `session`'s user, as they ask: named `name`, with
/// `role` (`user` by default; at most the user's own), expiring after `days` (the configured
/// default when `None`, at most the configured maximum), while they hold fewer live tokens than
/// the configured most. What `POST /api/auth/tokens` and the web UI do.
pub async fn issue_own_token(
    state: &AppState,
    session: &SessionUser,
    name: &str,
    role: Option<&str>,
    days: Option<u32>,
) -> Result<IssuedToken, ApiError> {
    let role: Role = match role {
        None => Role::User,
        Some(role) => role.parse()?,
    };
    if !session.user.role().includes(role) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("you do not hold the {role} role"),
        ));
    }
    let settings = state.accounts.settings();
    let days = days.unwrap_or(settings.token_days);
    if days == 0 || days > settings.token_max_days {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            format!(
                "expires_in_days must be between 1 and {}",
                settings.token_max_days
            ),
        ));
    }
    let now = state.engine.clock().now();
    let live = state
        .engine
        .store()
        .tokens_of(session.user.user_id)
        .await?
        .iter()
        .filter(|token| token.revoked_at.is_none() && token.expires_at.is_none_or(|at| at > now))
        .count();
    if live >= settings.max_tokens {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "you hold {live} live tokens, the most allowed ({}): revoke one first",
                settings.max_tokens
            ),
        ));
    }
    Ok(issue_token(
        state.engine.store().as_ref(),
        NewToken {
            name,
            role,
            user: Some(session.user.user_id),
            expires_at: Some(now + chrono::TimeDelta::days(i64::from(days))),
        },
        &session.user.user_name,
        now,
    )
    .await?)
}

/// Revokes token `id` of the user `owner` for `actor` (at once on this server, within
/// [`TOKEN_CACHE_TTL`] on others); another user's token is as unknown as a missing one.
pub async fn revoke_own_token(
    state: &AppState,
    owner: Uuid,
    id: Uuid,
    actor: &str,
) -> Result<(), ApiError> {
    revoke_token_of(state, Some(owner), id, actor).await
}

/// Revokes any token (an admin's act, as the console's token list does): at once on this
/// server, within a second on others.
pub async fn revoke_any_token(state: &AppState, id: Uuid, actor: &str) -> Result<(), ApiError> {
    revoke_token_of(state, None, id, actor).await
}

/// Revokes token `id` if `owner` is `None` or owns it; another's answers as an unknown one.
async fn revoke_token_of(
    state: &AppState,
    owner: Option<Uuid>,
    id: Uuid,
    actor: &str,
) -> Result<(), ApiError> {
    let store = state.engine.store();
    match store.token(id).await {
        Ok(token) if owner.is_none() || token.user_id == owner => {}
        Ok(_) | Err(DomainError::NotFound { .. }) => {
            return Err(DomainError::not_found("token", id).into());
        }
        Err(error) => return Err(error.into()),
    }
    revoke_token(store.as_ref(), id, actor, state.engine.clock().now()).await?;
    state.tokens.forget(id);
    Ok(())
}

/// The `Set-Cookie` value that sets the session cookie to `value` (or, with `None`, removes
/// it): HttpOnly, SameSite=Lax, for the whole site, Secure when the accounts say so.
pub fn session_cookie(state: &AppState, value: Option<&str>) -> Result<HeaderValue, ApiError> {
    let mut cookie = Cookie::build((SESSION_COOKIE, value.unwrap_or_default().to_owned()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(state.accounts.secure_cookie());
    if value.is_none() {
        cookie = cookie.max_age(cookie::time::Duration::ZERO);
    }
    HeaderValue::from_str(&cookie.build().to_string()).map_err(ApiError::internal)
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// How long a server trusts a token row it read: a token revoked elsewhere (by the CLI, or on
/// another server) stops working within this time.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(1);

/// The most token rows a [`TokenCache`] holds; past it, the expired ones go, or else all.
const TOKEN_CACHE_CAPACITY: usize = 10_000;

/// Token rows read in the last [`TOKEN_CACHE_TTL`], by id, so that most requests need no token
/// read. Only rows are kept, never secrets: every request's secret is still hashed and compared
/// with the row's hash in constant time. Unknown ids are not remembered.
#[derive(Debug, Default)]
pub struct TokenCache {
    rows: Mutex<HashMap<Uuid, (ApiToken, Instant)>>,
    /// The users tokens act for, as read in the last [`TOKEN_CACHE_TTL`] (`None`: not active).
    users: Mutex<HashMap<Uuid, (Option<AccountUser>, Instant)>>,
}

impl TokenCache {
    /// The active user `id` (with their roles), as read within the TTL or read now; `None`
    /// when it is not an active User. A disabled or terminated user's tokens therefore stop
    /// working within the TTL.
    async fn user(&self, accounts: &Accounts, id: Uuid) -> Result<Option<AccountUser>, ApiError> {
        let now = Instant::now();
        let remembered: Option<Option<AccountUser>> = self
            .users()
            .get(&id)
            .filter(|(_, read_at)| now.duration_since(*read_at) < TOKEN_CACHE_TTL)
            .map(|(user, _)| user.clone());
        if let Some(user) = remembered {
            return Ok(user);
        }
        let user = accounts.active_user(id).await?;
        let mut users = self.users();
        if users.len() >= TOKEN_CACHE_CAPACITY {
            users.retain(|_, (_, read_at)| now.duration_since(*read_at) < TOKEN_CACHE_TTL);
            if users.len() >= TOKEN_CACHE_CAPACITY {
                users.clear();
            }
        }
        users.insert(id, (user.clone(), now));
        Ok(user)
    }

    fn users(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (Option<AccountUser>, Instant)>> {
        self.users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn rows(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (ApiToken, Instant)>> {
        self.rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets token `id`'s row, so that a revocation through this server holds at once.
    pub fn forget(&self, id: Uuid) {
        self.rows().remove(&id);
    }

    /// The row of token `id`: remembered if read within the TTL, else read from `tokens`.
    async fn token(
        &self,
        tokens: &dyn TokenRepository,
        id: Uuid,
    ) -> Result<Option<ApiToken>, DomainError> {
        let now = Instant::now();
        if let Some((token, _)) = self
            .rows()
            .get(&id)
            .filter(|(_, read_at)| now.duration_since(*read_at) < TOKEN_CACHE_TTL)
        {
            return Ok(Some(token.clone()));
        }
        let token = match tokens.token(id).await {
            Ok(token) => token,
            Err(DomainError::NotFound { .. }) => return Ok(None),
            Err(other) => return Err(other),
        };
        let mut rows = self.rows();
        if rows.len() >= TOKEN_CACHE_CAPACITY {
            rows.retain(|_, (_, read_at)| now.duration_since(*read_at) < TOKEN_CACHE_TTL);
            if rows.len() >= TOKEN_CACHE_CAPACITY {
                rows.clear();
            }
        }
        rows.insert(id, (token.clone(), now));
        Ok(Some(token))
    }
}

/// The token holder of `plain`, if it is a valid token, live at `now` (neither revoked nor
/// expired); the row comes through `cache` (see [`TokenCache`]).
pub async fn authenticate(
    tokens: &dyn TokenRepository,
    cache: &TokenCache,
    plain: &str,
    now: DateTime<Utc>,
) -> Result<Option<ApiToken>, DomainError> {
    let Some((id, secret)) = plain
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once('_'))
    else {
        return Ok(None);
    };
    let Ok(id) = Uuid::try_parse(id) else {
        return Ok(None);
    };
    let Some(token) = cache.token(tokens, id).await? else {
        return Ok(None);
    };
    let matches: bool = hash_secret(secret)
        .as_bytes()
        .ct_eq(token.secret_hash.as_bytes())
        .into();
    Ok((matches && token.is_live(now)).then_some(token))
}

/// The cookie that carries a session.
pub const SESSION_COOKIE: &str = "cadre_session";

/// The header a cookie-authenticated unsafe request carries its session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How a caller proved who they are.
#[derive(Debug, Clone)]
pub enum Credential {
    /// An API token (`Authorization: Bearer …`).
    Token(ApiToken),
    /// A session cookie of a signed-in user.
    Session(Box<SessionUser>),
}

/// The holder of token `plain` as the server sees it now: a live token (see
/// [`authenticate`]) whose user, if it acts for one, is active; its role is at most the
/// user's.
pub async fn token_holder(state: &AppState, plain: &str) -> Result<Option<ApiToken>, ApiError> {
    let now = state.engine.clock().now();
    let Some(mut token) =
        authenticate(state.engine.store().as_ref(), &state.tokens, plain, now).await?
    else {
        return Ok(None);
    };
    if let Some(user_id) = token.user_id {
        let Some(user) = state.tokens.user(&state.accounts, user_id).await? else {
            return Ok(None);
        };
        if !user.role().includes(token.role) {
            token.role = user.role();
        }
    }
    Ok(Some(token))
}

/// An authenticated caller, of any role: a valid API token, or a session cookie (whose unsafe
/// requests must carry the session's CSRF token). Taking it as an argument makes a handler
/// require one.
#[derive(Debug, Clone)]
pub struct Caller(pub Credential);

impl Caller {
    /// The name processes record as their creator: the token's name, or the user name.
    pub fn name(&self) -> &str {
        match &self.0 {
            Credential::Token(token) => &token.name,
            Credential::Session(session) => &session.user.user_name,
        }
    }

    /// What the caller may do.
    pub fn role(&self) -> Role {
        match &self.0 {
            Credential::Token(token) => token.role,
            Credential::Session(session) => session.user.role(),
        }
    }

    /// The User subscription the caller acts for, if any.
    pub fn user_id(&self) -> Option<Uuid> {
        match &self.0 {
            Credential::Token(token) => token.user_id,
            Credential::Session(session) => Some(session.user.user_id),
        }
    }

    /// Whether the caller holds the admin role.
    pub fn is_admin(&self) -> bool {
        self.role().includes(Role::Admin)
    }

    /// The signed-in session, when the caller came with one.
    pub fn session(&self) -> Option<&SessionUser> {
        match &self.0 {
            Credential::Session(session) => Some(session),
            Credential::Token(_) => None,
        }
    }

    /// Tells the refusals middleware who this request's caller is.
    fn fill_slot(&self, parts: &Parts) {
        if let Some(slot) = parts.extensions.get::<crate::refusals::CallerSlot>() {
            slot.fill(self.name(), self.user_id());
        }
    }

    /// Where the caller's request comes from, for the audit log: its User subscription and the
    /// client's address.
    pub fn origin(&self, addr: Option<IpAddr>) -> Origin {
        Origin {
            user_id: self.user_id(),
            client_addr: addr,
        }
    }

    /// Who the caller is to workflow groups: the user the token acts for, and whether it is an
    /// admin's.
    pub fn actor(&self) -> Actor {
        Actor {
            user: self.user_id(),
            admin: self.is_admin(),
        }
    }
}

/// The value of the session cookie in `headers`, if there is one.
pub fn session_cookie_in(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == SESSION_COOKIE)
        .map(|cookie| cookie.value().to_owned())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(header) = parts.headers.get(AUTHORIZATION) {
            let plain = header
                .to_str()
                .ok()
                .and_then(|value| value.strip_prefix("Bearer "))
                .ok_or(ApiError::Unauthenticated)?;
            let caller = token_holder(state, plain.trim())
                .await?
                .map(|token| Caller(Credential::Token(token)))
                .ok_or(ApiError::Unauthenticated)?;
            caller.fill_slot(parts);
            return Ok(caller);
        }
        let cookie = session_cookie_in(&parts.headers).ok_or(ApiError::Unauthenticated)?;
        let session = state
            .accounts
            .session(&cookie)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        let caller = Caller(Credential::Session(Box::new(session)));
        caller.fill_slot(parts);
        if !parts.method.is_safe()
            && let Credential::Session(session) = &caller.0
        {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default();
            if !session.csrf_matches(sent) {
                return Err(ApiError::new(
                    ErrorCode::CsrfTokenMissing,
                    "a request signed in by cookie must send its session's CSRF token in X-CSRF-Token",
                ));
            }
        }
        Ok(caller)
    }
}

/// An authenticated caller with the `admin` role; any other caller gets 403.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.is_admin() {
            Ok(Admin(caller))
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                "this endpoint needs the admin role",
            ))
        }
    }
}
