//! API errors: every failure becomes a status code and a JSON body a client can act on.
//!
//! Form errors keep pydantic-forms' bodies (510 "form not complete", 400 "form not valid");
//! everything else is a problem body `{title, status, detail}` as orchestrator-core sends.
//! Storage failures (503) and internal failures (500) are logged and answered without internals.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cadre_domain::DomainError;
use cadre_domain::{FormNotComplete, FormValidationError};
use cadre_engine::{EngineError, FormError};
use cadre_groups::GroupError;
use cadre_provisioning::{InputErrors, ProvisionError};
use cadre_registration::RegistrationError;
use serde::Serialize;
use utoipa::ToSchema;

/// An RFC 7807-style problem body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Problem {
    /// The status code's reason phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
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
    /// A summary.
    pub detail: String,
    /// Every bad row, in input order.
    pub errors: Vec<RowProblem>,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// A problem with a status and a message.
    #[error("{1}")]
    Problem(StatusCode, String),
    /// No valid API token (401, with `WWW-Authenticate`).
    #[error("a valid API token is required")]
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
}

impl ApiError {
    /// A problem with `status` and `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self::Problem(status, detail.into())
    }

    /// A failure of the server itself, or an error of a kind it does not know yet: logged, and
    /// answered 500 without its message.
    fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal failure");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server failed to complete the request; the failure is logged",
        )
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        let status = match &error {
            DomainError::NotFound { .. } => StatusCode::NOT_FOUND,
            DomainError::Conflict(_)
            | DomainError::LeaseLost { .. }
            | DomainError::Lifecycle(_) => StatusCode::CONFLICT,
            DomainError::InvalidArgument { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            DomainError::Forbidden(_) => StatusCode::FORBIDDEN,
            DomainError::Gone(_) => StatusCode::GONE,
            DomainError::Storage(_) => {
                tracing::error!(%error, "storage failure");
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is unavailable; try again later",
                );
            }
            DomainError::Internal(_) => return Self::internal(error),
            // A kind this server does not know yet.
            _ => return Self::internal(error),
        };
        Self::new(status, error.to_string())
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::UnknownWorkflow(_) => Self::new(StatusCode::NOT_FOUND, error.to_string()),
            EngineError::NotStartable(_) => {
                Self::new(StatusCode::PRECONDITION_FAILED, error.to_string())
            }
            EngineError::Form(FormError::NotComplete(body)) => Self::FormNotComplete(body),
            EngineError::Form(FormError::Invalid(body)) => Self::FormInvalid(body),
            EngineError::Form(FormError::Domain(error)) | EngineError::Domain(error) => {
                error.into()
            }
            // Too many pages, or what a later form protocol adds: the pages do not fit the form.
            EngineError::Form(_) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, error.to_string()),
            other => Self::internal(other),
        }
    }
}

impl From<GroupError> for ApiError {
    fn from(error: GroupError) -> Self {
        match error {
            GroupError::Domain(error) => error.into(),
            GroupError::TooLarge { .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, error.to_string())
            }
            GroupError::Interrupted(_) => Self::new(StatusCode::BAD_REQUEST, error.to_string()),
            GroupError::Volume(_) => {
                tracing::error!(%error, "file volume failure");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "file storage is unavailable; try again later",
                )
            }
            other => Self::internal(other),
        }
    }
}

impl From<ProvisionError> for ApiError {
    fn from(error: ProvisionError) -> Self {
        match error {
            ProvisionError::Engine(error) => error.into(),
            ProvisionError::Domain(error) => error.into(),
            ProvisionError::NotALoad(_) => Self::new(StatusCode::NOT_FOUND, error.to_string()),
            other => Self::internal(other),
        }
    }
}

impl From<RegistrationError> for ApiError {
    fn from(error: RegistrationError) -> Self {
        let status = match error {
            RegistrationError::Engine(error) => return error.into(),
            RegistrationError::Domain(error) => return error.into(),
            RegistrationError::Unauthenticated => return Self::Unauthenticated,
            RegistrationError::Mail(ref mail) => {
                tracing::error!(%mail, "a mail could not be prepared");
                return Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "a mail could not be prepared; the operator has been told",
                );
            }
            RegistrationError::Invalid { .. } => StatusCode::BAD_REQUEST,
            RegistrationError::Conflict | RegistrationError::AlreadyMember => StatusCode::CONFLICT,
            RegistrationError::MalformedToken => StatusCode::UNPROCESSABLE_ENTITY,
            RegistrationError::UnknownToken | RegistrationError::NotFound => StatusCode::NOT_FOUND,
            RegistrationError::ExpiredToken => StatusCode::GONE,
            RegistrationError::Forbidden | RegistrationError::NoUser => StatusCode::FORBIDDEN,
            other => return Self::internal(other),
        };
        Self::new(status, error.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::new(rejection.status(), rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::new(rejection.status(), rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(rejection.status(), rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Problem(status, detail) => problem(status, detail),
            ApiError::Unauthenticated => {
                let mut response = problem(
                    StatusCode::UNAUTHORIZED,
                    "a valid API token is required: send `Authorization: Bearer <token>`".into(),
                );
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            ApiError::FormNotComplete(body) => {
                (StatusCode::NOT_EXTENDED, Json(body)).into_response()
            }
            ApiError::FormInvalid(body) => (StatusCode::BAD_REQUEST, Json(body)).into_response(),
            ApiError::InvalidRows(InputErrors(errors)) => {
                let status = StatusCode::UNPROCESSABLE_ENTITY;
                let body = InvalidInput {
                    title: status.canonical_reason().unwrap_or("Error").to_owned(),
                    status: status.as_u16(),
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

fn problem(status: StatusCode, detail: String) -> Response {
    let body = Problem {
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail,
    };
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
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

    #[tokio::test]
    async fn internal_failures_are_500_and_storage_failures_503_neither_with_its_message() {
        let (status, body) = answer(DomainError::Internal(
            "no randomness available: ENOSYS".to_owned(),
        ))
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body["detail"],
            "the server failed to complete the request; the failure is logged"
        );
        let (status, body) = answer(DomainError::Storage("disk full".to_owned())).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body["detail"],
            "the database is unavailable; try again later"
        );
    }
}
