//! What every page shares: the templates, the headers a page is sent with, who is visiting,
//! the CSRF tokens of forms, and the assets.

use std::sync::LazyLock;

use axum::extract::{FromRequestParts, Path};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, REFERRER_POLICY, SET_COOKIE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use cadre_accounts::SessionUser;
use cadre_server::auth::session_cookie_in;
use cadre_server::{ApiError, AppState, ErrorCode};
use cookie::{Cookie, SameSite};
use minijinja::{Environment, Value};
use subtle::ConstantTimeEq;

/// Scripts, styles, images and form posts from this site only; no framing, no plugins.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The cookie that carries the CSRF token of the forms shown before sign-in.
const FORM_COOKIE: &str = "cadre_form";

/// The templates, compiled once; HTML-escaped.
static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut environment = Environment::new();
    environment.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    environment.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    for (name, source) in [
        ("layout.html", include_str!("../templates/layout.html")),
        ("message.html", include_str!("../templates/message.html")),
        ("sign_in.html", include_str!("../templates/sign_in.html")),
        (
            "reset_request.html",
            include_str!("../templates/reset_request.html"),
        ),
        ("reset.html", include_str!("../templates/reset.html")),
        ("profile.html", include_str!("../templates/profile.html")),
        ("password.html", include_str!("../templates/password.html")),
        ("tokens.html", include_str!("../templates/tokens.html")),
        (
            "dashboard.html",
            include_str!("../templates/dashboard.html"),
        ),
        ("tree.html", include_str!("../templates/tree.html")),
        (
            "subscriptions.html",
            include_str!("../templates/subscriptions.html"),
        ),
        (
            "subscription.html",
            include_str!("../templates/subscription.html"),
        ),
        (
            "process_rows.html",
            include_str!("../templates/process_rows.html"),
        ),
        (
            "processes.html",
            include_str!("../templates/processes.html"),
        ),
        ("process.html", include_str!("../templates/process.html")),
        ("audit.html", include_str!("../templates/audit.html")),
        ("sign_up.html", include_str!("../templates/sign_up.html")),
        ("groups.html", include_str!("../templates/groups.html")),
        (
            "workflows.html",
            include_str!("../templates/workflows.html"),
        ),
        ("form.html", include_str!("../templates/form.html")),
        ("loads.html", include_str!("../templates/loads.html")),
        (
            "all_tokens.html",
            include_str!("../templates/all_tokens.html"),
        ),
        (
            "workflow_groups.html",
            include_str!("../templates/workflow_groups.html"),
        ),
        (
            "workflow_group.html",
            include_str!("../templates/workflow_group.html"),
        ),
        ("load.html", include_str!("../templates/load.html")),
        ("targets.html", include_str!("../templates/targets.html")),
        ("target.html", include_str!("../templates/target.html")),
        (
            "target_form.html",
            include_str!("../templates/target_form.html"),
        ),
        (
            "registrations.html",
            include_str!("../templates/registrations.html"),
        ),
    ] {
        environment
            .add_template(name, source)
            .unwrap_or_else(|error| panic!("the bundled template {name} is broken: {error}"));
    }
    environment
});

/// A rendered page with `status`, sent with the page headers.
pub(crate) fn render(status: StatusCode, template: &str, context: Value) -> Response {
    let rendered = TEMPLATES
        .get_template(template)
        .and_then(|template| template.render(context));
    match rendered {
        Ok(html) => {
            let mut response = (status, html).into_response();
            let headers = response.headers_mut();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
            response
        }
        Err(error) => {
            tracing::error!(%error, template, "cannot render a page");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A page that says `message` under `title`, with `status`.
pub(crate) fn message(
    status: StatusCode,
    visitor: Option<&SessionUser>,
    title: &str,
    message: &str,
) -> Response {
    render(
        status,
        "message.html",
        minijinja::context! { me => me(visitor), title, message },
    )
}

/// What the layout shows of the signed-in person (`none` for a visitor).
pub(crate) fn me(visitor: Option<&SessionUser>) -> Value {
    match visitor {
        Some(session) => minijinja::context! {
            name => session.user.user_name,
            admin => session.user.role() == cadre_domain::Role::Admin,
            csrf_token => session.csrf_token,
        },
        None => Value::from(()),
    }
}

/// The page a refusal of the API's kind becomes: its status and what it says, and
/// `Retry-After` when a rate limit said when. Failures on the server's side say no more than
/// that (the log has the cause).
pub(crate) fn refused(visitor: Option<&SessionUser>, error: ApiError) -> Response {
    let (status, detail, retry_after) = match error {
        ApiError::RateLimited(seconds) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many attempts from your address: try again in {seconds} seconds."),
            Some(seconds),
        ),
        ApiError::Problem(code, detail) if !code.status().is_server_error() => {
            (code.status(), detail, None)
        }
        ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "Sign in first.".to_owned(), None),
        other => {
            tracing::warn!(error = %other, "a page failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Something went wrong on our side; try again later.".to_owned(),
                None,
            )
        }
    };
    let title = status.canonical_reason().unwrap_or("Error");
    let mut page = message(status, visitor, title, &detail);
    if let Some(seconds) = retry_after
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        page.headers_mut().insert("retry-after", value);
    }
    page
}

/// The signed-in person, if the request's session cookie names a live session.
pub(crate) async fn visitor(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<SessionUser>, ApiError> {
    match session_cookie_in(headers) {
        Some(cookie) => Ok(state.accounts.session(&cookie).await?),
        None => Ok(None),
    }
}

/// The signed-in person a page is for; a visitor is sent to sign in.
pub(crate) struct Person(pub(crate) SessionUser);

impl FromRequestParts<AppState> for Person {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match visitor(state, &parts.headers).await {
            Ok(Some(session)) => Ok(Person(session)),
            Ok(None) => Err(to_sign_in()),
            Err(error) => Err(refused(None, error)),
        }
    }
}

/// The signed-in admin a console page is for; a visitor is sent to sign in, a person without
/// the role gets a 403 page.
pub(crate) struct Admin(pub(crate) SessionUser);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Person(session) = Person::from_request_parts(parts, state).await?;
        if session.user.role() == cadre_domain::Role::Admin {
            Ok(Admin(session))
        } else {
            Err(refused(
                Some(&session),
                ApiError::new(ErrorCode::Forbidden, "The console is for admins."),
            ))
        }
    }
}

/// Where a page that needs a signed-in person sends a visitor.
pub(crate) fn to_sign_in() -> Response {
    Redirect::to("/sign-in").into_response()
}

/// Whether `sent` is the session's CSRF token.
pub(crate) fn session_form_ok(session: &SessionUser, sent: &str) -> bool {
    session.csrf_matches(sent)
}

/// The CSRF token of the forms shown before sign-in: the form cookie's, or a new one with the
/// `Set-Cookie` that sets it.
pub(crate) fn form_token(headers: &HeaderMap) -> Result<(String, Option<HeaderValue>), ApiError> {
    if let Some(token) = form_cookie_in(headers) {
        return Ok((token, None));
    }
    let (token, _) = cadre_registration::tokens::new_secret()?;
    let cookie = Cookie::build((FORM_COOKIE, token.clone()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .build();
    let value = HeaderValue::from_str(&cookie.to_string()).map_err(ApiError::internal)?;
    Ok((token, Some(value)))
}

/// Whether `sent` is the form cookie's token (compared in constant time).
pub(crate) fn anonymous_form_ok(headers: &HeaderMap, sent: &str) -> bool {
    form_cookie_in(headers).is_some_and(|token| {
        token.len() == 64 && bool::from(token.as_bytes().ct_eq(sent.as_bytes()))
    })
}

fn form_cookie_in(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == FORM_COOKIE)
        .map(|cookie| cookie.value().to_owned())
}

/// `response` with `Set-Cookie: cookie` added, if any.
pub(crate) fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}

/// The page a form without its CSRF token gets.
pub(crate) fn forged(visitor: Option<&SessionUser>) -> Response {
    message(
        StatusCode::FORBIDDEN,
        visitor,
        "This form has expired",
        "The form was not sent from this site's own page, or the page is too old. Go back, reload the page and send it again.",
    )
}

/// The bundled assets: htmx and the style sheet, cached for a day.
pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    let (body, content_type): (&'static str, &'static str) = match name.as_str() {
        "htmx.min.js" => (include_str!("../assets/htmx.min.js"), "text/javascript"),
        "cadre.css" => (include_str!("../assets/cadre.css"), "text/css"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}
