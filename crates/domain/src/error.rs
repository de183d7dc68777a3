//! The domain's typed errors, shared by every layer that meets at the domain ports.

use thiserror::Error;
use uuid::Uuid;

use crate::lifecycle::LifecycleError;

/// A result whose error is a [`DomainError`].
pub type Result<T, E = DomainError> = std::result::Result<T, E>;

/// What went wrong, in terms a caller can act on.
///
/// Storage adapters translate their own failures into these variants; no raw database error
/// crosses a port.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DomainError {
    /// The named thing does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// What was looked for, e.g. "subscription".
        kind: &'static str,
        /// The identifier that was looked up.
        id: String,
    },
    /// The change collides with existing state (a duplicate identifier, a concurrent edit).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A worker's claim on a process is gone: the lease expired and another worker claimed the
    /// process, or an operator acted on it. Only the lease fencing of a step commit reports
    /// it; the worker stops and its transaction rolls back.
    #[error(
        "process {process} is no longer held by worker {owner}: its lease expired or an operator acted on it"
    )]
    LeaseLost {
        /// The process.
        process: Uuid,
        /// The worker whose lease it was.
        owner: String,
    },
    /// The input is malformed or breaks a rule.
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// The field or argument at fault.
        field: String,
        /// Why it was refused.
        reason: String,
    },
    /// The caller may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The thing existed but has expired.
    #[error("gone: {0}")]
    Gone(String),
    /// A subscription lifecycle change that the state machine refuses.
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// The storage backend failed for a reason unrelated to the request (connection lost, disk
    /// full). The message is for operators' logs, not for end users.
    #[error("storage unavailable: {0}")]
    Storage(String),
    /// This program failed for a reason unrelated to the request and to storage (no randomness,
    /// a hashing or encoding failure). The message is for operators' logs, not for end users.
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    /// A [`DomainError::NotFound`] for a thing identified by a UUID.
    pub fn not_found(kind: &'static str, id: Uuid) -> Self {
        Self::NotFound {
            kind,
            id: id.to_string(),
        }
    }

    /// A [`DomainError::InvalidArgument`] for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
