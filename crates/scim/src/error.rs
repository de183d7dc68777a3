//! SCIM's error response (RFC 7644 §3.12): the HTTP status, a `scimType` for the 400s and 409s
//! it names, and a human-readable detail.

use serde_json::{Value, json};

/// The URI of SCIM's error message schema.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The `scimType` of an error (RFC 7644 Table 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScimType {
    /// The filter is not valid or not supported.
    InvalidFilter,
    /// The filter yields more results than the server will return.
    TooMany,
    /// A value is not unique.
    Uniqueness,
    /// An attribute cannot be changed.
    Mutability,
    /// The request body is not valid SCIM.
    InvalidSyntax,
    /// The path is not valid.
    InvalidPath,
    /// The path matched nothing.
    NoTarget,
    /// A value is not valid.
    InvalidValue,
    /// The SCIM version is not supported.
    InvalidVers,
    /// Sensitive information was sent in the URL.
    Sensitive,
    /// The cursor is not one the server gave (RFC 9865).
    InvalidCursor,
}

impl ScimType {
    /// The name SCIM gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidFilter => "invalidFilter",
            Self::TooMany => "tooMany",
            Self::Uniqueness => "uniqueness",
            Self::Mutability => "mutability",
            Self::InvalidSyntax => "invalidSyntax",
            Self::InvalidPath => "invalidPath",
            Self::NoTarget => "noTarget",
            Self::InvalidValue => "invalidValue",
            Self::InvalidVers => "invalidVers",
            Self::Sensitive => "sensitive",
            Self::InvalidCursor => "invalidCursor",
        }
    }
}

/// An error as a SCIM client expects it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {detail}")]
pub struct ScimError {
    /// The HTTP status.
    pub status: u16,
    /// What kind of error, for the statuses SCIM names one for.
    pub scim_type: Option<ScimType>,
    /// What went wrong, for a person.
    pub detail: String,
}

impl ScimError {
    /// A `400` of kind `scim_type`.
    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self {
            status: 400,
            scim_type: Some(scim_type),
            detail: detail.into(),
        }
    }

    /// The response body: `schemas`, `status` (a string, as RFC 7644 writes it), `scimType`
    /// when there is one, and `detail`.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(scim_type) = self.scim_type {
            body["scimType"] = json!(scim_type.as_str());
        }
        body
    }
}
