//! The audit log: an append-only record of who did what, when, from where, to what, and how it
//! ended — sign-ins and sign-outs, password changes and resets, API tokens, role changes,
//! registration decisions and operator actions on processes.
//!
//! An event never carries a secret (no password, token or link secret); what it names is public
//! (user names, token names, ids). Events are only ever added; the one way they leave is the
//! retention purge ([`AuditRepository::purge_before`]).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{DomainError, Result};

/// The longest text an event keeps in its actor, target or detail (longer text is cut), so a
/// caller cannot fill the log with one request.
pub const MAX_AUDIT_TEXT: usize = 256;

/// The actor of what nobody signed in did (an anonymous request, a mailed link's holder).
pub const ANONYMOUS: &str = "anonymous";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditAction {
    /// Someone signed in.
    SignIn,
    /// A sign-in was refused.
    SignInFailed,
    /// A session (or every session of a user) ended at the user's request.
    SignOut,
    /// A signed-in user changed their password (or tried with a wrong current one).
    PasswordChanged,
    /// Someone asked for a password reset link.
    PasswordResetRequested,
    /// A password was set through a reset link (or a link was refused).
    PasswordReset,
    /// A signed-in user asked to change their email address (the new one gets a link).
    EmailChangeRequested,
    /// Sessions were ended by their user (one, with the password) or by an admin.
    SessionsEnded,
    /// An API token was created.
    TokenCreated,
    /// An API token was revoked.
    TokenRevoked,
    /// The roles a user holds changed.
    RolesChanged,
    /// An admin approved a registration.
    RegistrationApproved,
    /// An admin declined a registration.
    RegistrationDeclined,
    /// A process was started.
    ProcessStarted,
    /// A process was resumed (with input, or as a retry).
    ProcessResumed,
    /// A process was aborted.
    ProcessAborted,
    /// A process's failed or waiting step was skipped.
    ProcessSkipped,
    /// A request was refused for want of a role, an object's permission or a CSRF token (403).
    AccessDenied,
    /// An admin configured an outbound target.
    TargetConfigured,
    /// An admin changed an outbound target.
    TargetChanged,
    /// An admin removed an outbound target.
    TargetRemoved,
}

impl AuditAction {
    /// Every action, in the order of their declaration.
    pub const ALL: [AuditAction; 21] = [
        AuditAction::SignIn,
        AuditAction::SignInFailed,
        AuditAction::SignOut,
        AuditAction::PasswordChanged,
        AuditAction::PasswordResetRequested,
        AuditAction::PasswordReset,
        AuditAction::EmailChangeRequested,
        AuditAction::SessionsEnded,
        AuditAction::TokenCreated,
        AuditAction::TokenRevoked,
        AuditAction::RolesChanged,
        AuditAction::RegistrationApproved,
        AuditAction::RegistrationDeclined,
        AuditAction::ProcessStarted,
        AuditAction::ProcessResumed,
        AuditAction::ProcessAborted,
        AuditAction::ProcessSkipped,
        AuditAction::AccessDenied,
        AuditAction::TargetConfigured,
        AuditAction::TargetChanged,
        AuditAction::TargetRemoved,
    ];

    /// The stable wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::SignIn => "sign_in",
            AuditAction::SignInFailed => "sign_in_failed",
            AuditAction::SignOut => "sign_out",
            AuditAction::PasswordChanged => "password_changed",
            AuditAction::PasswordResetRequested => "password_reset_requested",
            AuditAction::PasswordReset => "password_reset",
            AuditAction::EmailChangeRequested => "email_change_requested",
            AuditAction::SessionsEnded => "sessions_ended",
            AuditAction::TokenCreated => "token_created",
            AuditAction::TokenRevoked => "token_revoked",
            AuditAction::RolesChanged => "roles_changed",
            AuditAction::RegistrationApproved => "registration_approved",
            AuditAction::RegistrationDeclined => "registration_declined",
            AuditAction::ProcessStarted => "process_started",
            AuditAction::ProcessResumed => "process_resumed",
            AuditAction::ProcessAborted => "process_aborted",
            AuditAction::ProcessSkipped => "process_skipped",
            AuditAction::AccessDenied => "access_denied",
            AuditAction::TargetConfigured => "target_configured",
            AuditAction::TargetChanged => "target_changed",
            AuditAction::TargetRemoved => "target_removed",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditAction {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self> {
        AuditAction::ALL
            .into_iter()
            .find(|action| action.as_str() == s)
            .ok_or_else(|| DomainError::invalid("action", format!("{s:?} is not an audit action")))
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// It was done.
    Success,
    /// It was refused or failed.
    Failure,
}

impl AuditOutcome {
    /// The stable wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Success => "success",
            AuditOutcome::Failure => "failure",
        }
    }
}

impl FromStr for AuditOutcome {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "success" => Ok(AuditOutcome::Success),
            "failure" => Ok(AuditOutcome::Failure),
            other => Err(DomainError::invalid(
                "outcome",
                format!("{other:?} is not one of success, failure"),
            )),
        }
    }
}

/// One entry of the audit log. Never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// A UUID v7: ids order events by the time they were recorded.
    pub id: Uuid,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who: a user name, a token's name, `cli:<login>`, `registration`, or [`ANONYMOUS`]; for a
    /// refused sign-in, the name it tried.
    pub actor: String,
    /// The User subscription the actor is, when known.
    pub actor_user_id: Option<Uuid>,
    /// The client's address, when it came over the network.
    pub client_addr: Option<String>,
    /// What happened.
    pub action: AuditAction,
    /// What it happened to: a process id, a user id, a token id, a user name.
    pub target: Option<String>,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// Why it failed, or a note on what was done.
    pub detail: Option<String>,
}

/// `text` cut to [`MAX_AUDIT_TEXT`] characters.
fn cut(text: &str) -> String {
    text.chars().take(MAX_AUDIT_TEXT).collect()
}

impl AuditEvent {
    /// A successful `action` of `actor` at `at`, with the id `id` (a UUID v7), from nowhere in
    /// particular, on nothing in particular.
    pub fn new(id: Uuid, at: DateTime<Utc>, action: AuditAction, actor: &str) -> Self {
        Self {
            id,
            at,
            actor: cut(actor),
            actor_user_id: None,
            client_addr: None,
            action,
            target: None,
            outcome: AuditOutcome::Success,
            detail: None,
        }
    }

    /// This event with the actor's User subscription.
    pub fn by_user(mut self, user_id: Option<Uuid>) -> Self {
        self.actor_user_id = user_id;
        self
    }

    /// This event with the client's address.
    pub fn from_addr(mut self, addr: Option<IpAddr>) -> Self {
        self.client_addr = addr.map(|addr| addr.to_string());
        self
    }

    /// This event about `target`.
    pub fn on(mut self, target: impl fmt::Display) -> Self {
        self.target = Some(cut(&target.to_string()));
        self
    }

    /// This event with a note.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(cut(&detail.into()));
        self
    }

    /// This event as a failure, for `reason`.
    pub fn failed(mut self, reason: impl Into<String>) -> Self {
        self.outcome = AuditOutcome::Failure;
        self.detail(reason)
    }

    /// This event with the origin's user and address.
    pub fn origin(self, origin: &Origin) -> Self {
        self.by_user(origin.user_id).from_addr(origin.client_addr)
    }
}

/// Where a request came from, beyond the actor's name: what the edge knows and the layers
/// below record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Origin {
    /// The User subscription of the caller, when it is one.
    pub user_id: Option<Uuid>,
    /// The client's network address.
    pub client_addr: Option<IpAddr>,
}

/// Which events to list, newest first, and which page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this action.
    pub action: Option<AuditAction>,
    /// Only this actor (exactly).
    pub actor: Option<String>,
    /// Only this target (exactly).
    pub target: Option<String>,
    /// Only events at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only events before this instant.
    pub until: Option<DateTime<Utc>>,
    /// The cursor: only events listed after this one (older ids).
    pub after: Option<Uuid>,
    /// The most events to return (at least one).
    pub limit: u64,
}

impl Default for AuditQuery {
    fn default() -> Self {
        Self {
            action: None,
            actor: None,
            target: None,
            since: None,
            until: None,
            after: None,
            limit: 50,
        }
    }
}

impl AuditQuery {
    /// Whether `event` passes the filters (not the cursor).
    pub fn matches(&self, event: &AuditEvent) -> bool {
        self.action.is_none_or(|action| event.action == action)
            && self
                .actor
                .as_ref()
                .is_none_or(|actor| &event.actor == actor)
            && self
                .target
                .as_ref()
                .is_none_or(|target| event.target.as_ref() == Some(target))
            && self.since.is_none_or(|since| event.at >= since)
            && self.until.is_none_or(|until| event.at < until)
    }
}

/// One page of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    /// The events, newest first.
    pub items: Vec<AuditEvent>,
    /// The cursor of the next page (the last event's id), when there is one.
    pub next: Option<Uuid>,
}

/// The audit log: append, list, and purge by age. No event is ever changed.
#[async_trait]
pub trait AuditRepository: Send + Sync {
    /// Appends `event`; an id that exists is a conflict.
    async fn record_audit(&self, event: &AuditEvent) -> Result<()>;
    /// Events matching `query`, newest (highest id) first, from its cursor on.
    async fn list_audit(&self, query: &AuditQuery) -> Result<AuditPage>;
    /// Removes the events that happened before `at`; returns how many.
    async fn purge_audit_before(&self, at: DateTime<Utc>) -> Result<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_through_their_wire_strings_which_serde_agrees_with() {
        for action in AuditAction::ALL {
            assert_eq!(action.as_str().parse::<AuditAction>().ok(), Some(action));
            assert_eq!(
                serde_json::to_value(action).ok(),
                Some(serde_json::Value::from(action.as_str()))
            );
        }
        assert!("teleported".parse::<AuditAction>().is_err());
    }

    #[test]
    fn texts_are_cut_and_a_failure_keeps_its_reason() {
        let long = "x".repeat(MAX_AUDIT_TEXT + 10);
        let event = AuditEvent::new(
            Uuid::nil(),
            DateTime::UNIX_EPOCH,
            AuditAction::SignIn,
            &long,
        )
        .on(&long)
        .failed(long.clone());
        assert_eq!(event.actor.chars().count(), MAX_AUDIT_TEXT);
        assert_eq!(event.target.as_deref().map(str::len), Some(MAX_AUDIT_TEXT));
        assert_eq!(event.outcome, AuditOutcome::Failure);
        assert_eq!(event.detail.as_deref().map(str::len), Some(MAX_AUDIT_TEXT));
    }
}
