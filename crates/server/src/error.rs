//! API errors: every failure becomes a status code and a JSON body a client can act on.
//!
//! Form errors keep pydantic-forms' bodies (510 "form not complete", 400 "form not valid");
//! everything else is a problem body `{title, status, code, detail}`: orchestrator-core's
//! `{title, status, detail}` with a stable [`ErrorCode`] that clients can branch on, from which
//! the status follows. Storage failures (503) and internal failures (500) are logged and
//! answered without internals.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cadre_accounts::AccountError;
use cadre_domain::DomainError;
use cadre_domain::{FormNotComplete, FormValidationError};
use cadre_engine::{EngineError, FormError};
use cadre_groups::GroupError;
use cadre_provisioning::{InputErrors, ProvisionError};
use cadre_registration::RegistrationError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What kind of failure a problem body reports: a stable snake_case code that clients can
/// branch on (the `detail` is for people and may change). Codes may be added: treat an unknown
/// one by its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: the body is not JSON, or could not be read.
    InvalidJson,
    /// 400: a path parameter does not parse (a malformed id).
    InvalidPath,
    /// 400: a query parameter does not parse or is out of range.
    InvalidQuery,
    /// 400: an upload is not a multipart body with a `file` part, or broke off.
    InvalidUpload,
    /// 400: a field of a registration is invalid; the detail names it.
    InvalidRegistration,
    /// 401: no valid API token or session.
    Unauthorized,
    /// 401: the sign-in was refused (unknown user, wrong password, inactive or locked account:
    /// which one is not told).
    InvalidCredentials,
    /// 403: the caller may not do this.
    Forbidden,
    /// 403: a request authenticated by the session cookie lacks the session's CSRF token
    /// (`X-CSRF-Token`).
    CsrfTokenMissing,
    /// 404: no such thing (or path).
    NotFound,
    /// 404: no workflow of this name.
    UnknownWorkflow,
    /// 409: the change collides with existing state (a duplicate, a concurrent change, a
    /// process not in a state the action needs).
    Conflict,
    /// 409: the subscription's lifecycle does not allow the change.
    Lifecycle,
    /// 409: the caller already belongs to the group.
    AlreadyMember,
    /// 410: the thing existed but has expired.
    Gone,
    /// 412: the workflow cannot start on this subscription now.
    NotStartable,
    /// 413: the body is larger than the limit.
    PayloadTooLarge,
    /// 415: the body's `Content-Type` is missing or not one the endpoint reads.
    UnsupportedMediaType,
    /// 422: the body is JSON of the wrong shape.
    InvalidBody,
    /// 422: a value breaks a rule; the detail names it.
    InvalidArgument,
    /// 422: more form pages than the form has.
    FormPages,
    /// 422: rows of a load's input are invalid; `errors` lists every one.
    InvalidInput,
    /// 429: too many requests from this address.
    RateLimited,
    /// 500: the server failed; the detail says no more, the log has it.
    Internal,
    /// 503: the database is unavailable.
    StorageUnavailable,
    /// 503: the file storage of workflow groups is unavailable.
    FileStorageUnavailable,
    /// 507: the file storage of workflow groups has no room for the upload.
    InsufficientStorage,
}

impl ErrorCode {
    /// The HTTP status a problem with this code is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidJson
            | Self::InvalidPath
            | Self::InvalidQuery
            | Self::InvalidUpload
            | Self::InvalidRegistration => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::CsrfTokenMissing => StatusCode::FORBIDDEN,
            Self::NotFound | Self::UnknownWorkflow => StatusCode::NOT_FOUND,
            Self::Conflict | Self::Lifecycle | Self::AlreadyMember => StatusCode::CONFLICT,
            Self::Gone => StatusCode::GONE,
            Self::NotStartable => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::InvalidBody | Self::InvalidArgument | Self::FormPages | Self::InvalidInput => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::StorageUnavailable | Self::FileStorageUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
        }
    }
}

/// An RFC 7807-style problem body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Problem {
    /// The status code's reason phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What kind of failure it is.
    pub code: ErrorCode,
    /// What went wrong, for a person.
    pub detail: String,
}

/// One bad input row of a load, as [`InvalidInput`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RowProblem {
    /// The row: its line in CSV (header = 1) and JSON Lines, its position in a JSON array.
    pub row: u64,
    /// The column at fault, if one is.
    pub column: Option<String>,
    /// What is wrong.
    pub reason: String,
}

/// A problem body for input with bad rows: every bad row, at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct InvalidInput {
    /// The status code's reason phrase.
    pub title: String,
    /// The HTTP status code (422).
    pub status: u16,
    /// Always `invalid_input`.
    pub code: ErrorCode,
    /// A summary.
    pub detail: String,
    /// Every bad row, in input order.
    pub errors: Vec<RowProblem>,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// A problem of a kind, with a message; the status follows from the kind.
    #[error("{1}")]
    Problem(ErrorCode, String),
    /// No valid API token or session (401, with `WWW-Authenticate`).
    #[error("a valid API token or session is required")]
    Unauthenticated,
    /// More form pages are needed (510).
    #[error("the form needs more pages")]
    FormNotComplete(Box<FormNotComplete>),
    /// A form page did not validate (400).
    #[error("page {} of the form is not valid", .0.page)]
    FormInvalid(Box<FormValidationError>),
    /// Rows of a load's input are invalid (422, every bad row listed).
    #[error("{} input rows are invalid", .0.0.len())]
    InvalidRows(InputErrors),
    /// The client's budget of requests is spent (429, with `Retry-After` in whole seconds).
    #[error("too many requests from your address; try again after the seconds `Retry-After` says")]
    RateLimited(u64),
}

impl ApiError {
    /// A problem of kind `code` with `detail`.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::Problem(code, detail.into())
    }

    /// A failure of the server itself, or an error of a kind it does not know yet: logged, and
    /// answered 500 without its message.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal failure");
        Self::new(
            ErrorCode::Internal,
            "the server failed to complete the request; the failure is logged",
        )
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        let code = match &error {
            DomainError::NotFound { .. } => ErrorCode::NotFound,
            DomainError::Conflict(_) | DomainError::LeaseLost { .. } => ErrorCode::Conflict,
            DomainError::Lifecycle(_) => ErrorCode::Lifecycle,
            DomainError::InvalidArgument { .. } => ErrorCode::InvalidArgument,
            DomainError::Forbidden(_) => ErrorCode::Forbidden,
            DomainError::Gone(_) => ErrorCode::Gone,
            DomainError::Storage(_) => {
                tracing::error!(%error, "storage failure");
                return Self::new(
                    ErrorCode::StorageUnavailable,
                    "the database is unavailable; try again later",
                );
            }
            DomainError::Internal(_) => return Self::internal(error),
            // A kind this server does not know yet.
            _ => return Self::internal(error),
        };
        Self::new(code, error.to_string())
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::UnknownWorkflow(_) => {
                Self::new(ErrorCode::UnknownWorkflow, error.to_string())
            }
            EngineError::NotStartable(_) => Self::new(ErrorCode::NotStartable, error.to_string()),
            EngineError::Form(FormError::NotComplete(body)) => Self::FormNotComplete(body),
            EngineError::Form(FormError::Invalid(body)) => Self::FormInvalid(body),
            EngineError::Form(FormError::Domain(error)) | EngineError::Domain(error) => {
                error.into()
            }
            // Too many pages, or what a later form protocol adds: the pages do not fit the form.
            EngineError::Form(_) => Self::new(ErrorCode::FormPages, error.to_string()),
            other => Self::internal(other),
        }
    }
}

impl From<GroupError> for ApiError {
    fn from(error: GroupError) -> Self {
        match error {
            GroupError::Domain(error) => error.into(),
            GroupError::TooLarge { .. } => Self::new(ErrorCode::PayloadTooLarge, error.to_string()),
            GroupError::Interrupted(_) => Self::new(ErrorCode::InvalidUpload, error.to_string()),
            GroupError::Volume(_) => {
                tracing::error!(%error, "file volume failure");
                Self::new(
                    ErrorCode::FileStorageUnavailable,
                    "file storage is unavailable; try again later",
                )
            }
            GroupError::VolumeFull => Self::new(
                ErrorCode::InsufficientStorage,
                "the file storage has no room for this file; nothing was stored",
            ),
            other => Self::internal(other),
        }
    }
}

impl From<ProvisionError> for ApiError {
    fn from(error: ProvisionError) -> Self {
        match error {
            ProvisionError::Engine(error) => error.into(),
            ProvisionError::Domain(error) => error.into(),
            ProvisionError::NotALoad(_) => Self::new(ErrorCode::NotFound, error.to_string()),
            other => Self::internal(other),
        }
    }
}

impl From<RegistrationError> for ApiError {
    fn from(error: RegistrationError) -> Self {
        let code = match error {
            RegistrationError::Engine(error) => return error.into(),
            RegistrationError::Domain(error) => return error.into(),
            RegistrationError::Unauthenticated => return Self::Unauthenticated,
            RegistrationError::Mail(ref mail) => {
                tracing::error!(%mail, "a mail could not be prepared");
                return Self::new(
                    ErrorCode::Internal,
                    "a mail could not be prepared; the operator has been told",
                );
            }
            RegistrationError::Invalid { .. } => ErrorCode::InvalidRegistration,
            RegistrationError::Completing => ErrorCode::Conflict,
            RegistrationError::AlreadyMember => ErrorCode::AlreadyMember,
            RegistrationError::MalformedToken => ErrorCode::InvalidArgument,
            RegistrationError::UnknownToken | RegistrationError::NotFound => ErrorCode::NotFound,
            RegistrationError::ExpiredToken => ErrorCode::Gone,
            RegistrationError::Forbidden | RegistrationError::NoUser => ErrorCode::Forbidden,
            other => return Self::internal(other),
        };
        Self::new(code, error.to_string())
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        let code = match error {
            AccountError::Domain(error) => return error.into(),
            AccountError::Mail(ref mail) => {
                tracing::error!(%mail, "a mail could not be prepared");
                return Self::new(
                    ErrorCode::Internal,
                    "a mail could not be prepared; the operator has been told",
                );
            }
            AccountError::InvalidCredentials => ErrorCode::InvalidCredentials,
            AccountError::Invalid { .. } | AccountError::MalformedLink => {
                ErrorCode::InvalidArgument
            }
            AccountError::UnknownLink | AccountError::UnknownSession => ErrorCode::NotFound,
            AccountError::ExpiredLink => ErrorCode::Gone,
            other => return Self::internal(other),
        };
        Self::new(code, error.to_string())
    }
}

/// A rejection of axum's extractors, by its status; `bad_request` is the code of a 400 (what
/// did not parse). A server error (a route that extracts what it cannot) is internal.
fn rejected(status: StatusCode, detail: String, bad_request: ErrorCode) -> ApiError {
    let code = match status {
        StatusCode::BAD_REQUEST => bad_request,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::InvalidBody,
        _ => return ApiError::internal(detail),
    };
    ApiError::new(code, detail)
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        rejected(
            rejection.status(),
            rejection.body_text(),
            ErrorCode::InvalidJson,
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        rejected(
            rejection.status(),
            rejection.body_text(),
            ErrorCode::InvalidPath,
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        rejected(
            rejection.status(),
            rejection.body_text(),
            ErrorCode::InvalidQuery,
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Problem(code, detail) => problem(code, detail),
            ApiError::Unauthenticated => {
                let mut response = problem(
                    ErrorCode::Unauthorized,
                    "a valid API token or session is required: send `Authorization: Bearer <token>`, or sign in".into(),
                );
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            ApiError::RateLimited(seconds) => {
                let mut response = problem(ErrorCode::RateLimited, self.to_string());
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_str(&seconds.to_string())
                        .unwrap_or(HeaderValue::from_static("60")),
                );
                response
            }
            ApiError::FormNotComplete(body) => {
                (StatusCode::NOT_EXTENDED, Json(body)).into_response()
            }
            ApiError::FormInvalid(body) => (StatusCode::BAD_REQUEST, Json(body)).into_response(),
            ApiError::InvalidRows(InputErrors(errors)) => {
                let code = ErrorCode::InvalidInput;
                let status = code.status();
                let body = InvalidInput {
                    title: status.canonical_reason().unwrap_or("Error").to_owned(),
                    status: status.as_u16(),
                    code,
                    detail: format!(
                        "{} problem(s) in the input; nothing was written",
                        errors.len()
                    ),
                    errors: errors
                        .into_iter()
                        .map(|error| RowProblem {
                            row: error.row,
                            column: error.column,
                            reason: error.reason,
                        })
                        .collect(),
                };
                (status, Json(body)).into_response()
            }
        }
    }
}

fn problem(code: ErrorCode, detail: String) -> Response {
    let status = code.status();
    let body = Problem {
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        code,
        detail,
    };
    let mut response = (status, Json(body)).into_response();
    // For the refusals middleware, which records a 403 with its code.
    response.extensions_mut().insert(code);
    response
}

#[cfg(test)]
mod tests {
    use cadre_domain::{Lifecycle, LifecycleError};
    use cadre_provisioning::RowError;
    use cadre_registration::mail::MailError;
    use uuid::Uuid;

    use super::*;

    /// The status and JSON body `error` is answered with.
    async fn answer(error: impl Into<ApiError>) -> (StatusCode, serde_json::Value) {
        let response = error.into().into_response();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        (status, serde_json::from_slice(&body).unwrap_or_default())
    }

    /// One error of every kind the layers below report, and the server's own problems, with
    /// the body each is answered with: its code, its status, and whether the detail is the
    /// error's message. Rejections of axum's extractors are covered over HTTP
    /// (`tests/it/api.rs`).
    #[tokio::test]
    async fn every_kind_of_failure_answers_with_its_code_and_the_status_of_the_code() {
        let errors: Vec<ApiError> = vec![
            DomainError::not_found("subscription", Uuid::nil()).into(),
            DomainError::Conflict("a live subscription already holds this id".to_owned()).into(),
            DomainError::LeaseLost {
                process: Uuid::nil(),
                owner: "worker-1".to_owned(),
            }
            .into(),
            DomainError::invalid("name", "must not be empty").into(),
            DomainError::Forbidden("not a member".to_owned()).into(),
            DomainError::Gone("the link expired".to_owned()).into(),
            DomainError::Lifecycle(LifecycleError {
                from: Lifecycle::Terminated,
                to: Lifecycle::Active,
            })
            .into(),
            DomainError::Storage("disk full".to_owned()).into(),
            DomainError::Internal("no randomness available: ENOSYS".to_owned()).into(),
            EngineError::UnknownWorkflow("nope".to_owned()).into(),
            EngineError::NotStartable("subscription is terminated".to_owned()).into(),
            EngineError::Form(FormError::TooManyPages {
                expected: 2,
                submitted: 3,
            })
            .into(),
            GroupError::TooLarge { limit: 10 }.into(),
            GroupError::Interrupted("the client went away".to_owned()).into(),
            GroupError::Volume("permission denied: /srv/files".to_owned()).into(),
            GroupError::VolumeFull.into(),
            ProvisionError::NotALoad(Uuid::nil()).into(),
            RegistrationError::Invalid {
                field: "email".to_owned(),
                reason: "has no '@'".to_owned(),
            }
            .into(),
            RegistrationError::Completing.into(),
            RegistrationError::AlreadyMember.into(),
            RegistrationError::MalformedToken.into(),
            RegistrationError::ExpiredToken.into(),
            RegistrationError::NoUser.into(),
            RegistrationError::Mail(MailError::Template("no such template".to_owned())).into(),
            AccountError::InvalidCredentials.into(),
            AccountError::MalformedLink.into(),
            AccountError::UnknownLink.into(),
            AccountError::ExpiredLink.into(),
            AccountError::UnknownSession.into(),
            ApiError::new(ErrorCode::CsrfTokenMissing, "no CSRF token"),
            ApiError::Unauthenticated,
            ApiError::RateLimited(7),
            ApiError::InvalidRows(InputErrors(vec![RowError {
                row: 2,
                column: Some("email".to_owned()),
                reason: "has no '@'".to_owned(),
            }])),
        ];
        let mut bodies = Vec::new();
        for error in errors {
            let (status, body) = answer(error).await;
            assert_eq!(body["status"], status.as_u16(), "{body}");
            bodies.push(body);
        }
        insta::assert_json_snapshot!("problem_bodies", bodies);
    }

    #[test]
    fn docs_api_md_lists_every_code_with_its_status() {
        let docs = include_str!("../../../docs/api.md");
        let openapi =
            serde_json::to_value(crate::api::routes().split_for_parts().1).unwrap_or_default();
        let codes = openapi["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(codes.len() > 20, "{codes:?}");
        for value in codes {
            let code: ErrorCode = serde_json::from_value(value.clone()).unwrap_or_else(|error| {
                panic!("{value} is not an ErrorCode: {error}");
            });
            let row = format!(
                "| `{}` | {} |",
                value.as_str().unwrap_or_default(),
                code.status().as_u16()
            );
            assert!(docs.contains(&row), "docs/api.md has no row {row}");
        }
    }
}
