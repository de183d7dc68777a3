//! The registration procedure (Magpie's six steps, hardened) and discoverable groups.

use std::sync::Arc;

use cadre_domain::models::DomainModel;
use cadre_domain::{
    DomainError, Email, ExternalId, Lifecycle, OutboxMessage, PendingUser, ProductType,
    RegistrationToken, Store, SubscriptionQuery, TokenOperation, UserName,
};
use cadre_engine::{Engine, EngineError};
use cadre_products::models::{User, UserGroup};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::json;
use thiserror::Error;
use uuid::Uuid;

use crate::delivery::mail_message;
use crate::mail::{MailError, TemplateName, Templates};
use crate::password::{Passwords, password_problem};
use crate::settings::RegistrationSettings;
use crate::tokens::{self, TokenSubject};
use crate::workflows::{COMPLETE_REGISTRATION, CompletionInput, JOIN_USER_GROUP, LEAVE_USER_GROUP};

mod discovery;
mod email_change;
mod links;
mod sign_up;

/// Why a registration request was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RegistrationError {
    /// A field is invalid (400, naming the field).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field at fault.
        field: String,
        /// Why.
        reason: String,
    },
    /// The registration's completion started: its account is being created, and only the
    /// completing process removes it (409).
    #[error("this registration is being completed; its account is being created")]
    Completing,
    /// The token is not of a token's shape (422).
    #[error("the link is malformed")]
    MalformedToken,
    /// No such token, or it was used already (404).
    #[error("the link is unknown or was already used")]
    UnknownToken,
    /// The token expired (410).
    #[error("the link has expired")]
    ExpiredToken,
    /// The operation needs an admin, and no one signed in (401).
    #[error("this needs an admin's API token")]
    Unauthenticated,
    /// The operation needs an admin, and the caller is not one (403).
    #[error("only an admin may do this")]
    Forbidden,
    /// No such pending user or discoverable group (404; the same for a hidden group).
    #[error("not found")]
    NotFound,
    /// The caller already belongs to the group (409).
    #[error("you already belong to this group")]
    AlreadyMember,
    /// The caller's token acts for no active user (403).
    #[error("this needs a token that acts for an active user")]
    NoUser,
    /// A mail could not be rendered.
    #[error(transparent)]
    Mail(#[from] MailError),
    /// A workflow could not start.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The store refused or failed.
    #[error(transparent)]
    Domain(#[from] DomainError),
}

impl RegistrationError {
    fn invalid(error: DomainError, field: &str) -> Self {
        match error {
            DomainError::InvalidArgument { reason, .. } => Self::Invalid {
                field: field.to_owned(),
                reason,
            },
            other => Self::Domain(other),
        }
    }
}

/// A registration as its submitter and admins see it: never a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingView {
    /// The chosen user name.
    pub user_name: String,
    /// The address.
    pub email: String,
    /// `pending`, `confirmed` once the address was proven (and an admin decides), or
    /// `completing` once its account is being created.
    pub status: &'static str,
    /// When they signed up.
    pub registered_at: DateTime<Utc>,
    /// Outstanding links by operation, with when each expires.
    pub links: Vec<(TokenOperation, DateTime<Utc>)>,
}

/// What a token's landing page shows before its button is pressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenView {
    /// What pressing the button does.
    pub operation: TokenOperation,
    /// Whose registration or membership it is.
    pub user_name: String,
    /// The group, for group terms.
    pub group_name: Option<String>,
    /// The group's terms, for group terms.
    pub terms: Option<String>,
    /// The new address, for an email change.
    pub email: Option<String>,
}

/// What a used token did, for the result page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Redeemed {
    /// The operation.
    pub operation: TokenOperation,
    /// A sentence for the person.
    pub message: String,
    /// The user (or the pending registration) the token was about.
    pub user_name: String,
}

/// A discoverable group as anyone signed in sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicGroup {
    /// The group's id.
    pub user_group_id: String,
    /// Its name.
    pub name: String,
    /// The terms a joiner accepts, if any (readable before asking to join).
    pub terms: Option<String>,
}

/// What joining did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// The membership is being added by this process.
    Member(Uuid),
    /// The group has terms: a link to accept them was mailed; the membership waits for it.
    TermsSent,
}

/// Who uses a token: an admin or not, or nobody signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visitor {
    /// No API token came with the request.
    Anonymous,
    /// A valid token; `admin` when it has the admin role.
    SignedIn {
        /// Whether the token is an admin's.
        admin: bool,
    },
}

/// Self-registration and discoverable groups over an engine whose registry holds
/// [`crate::workflows`].
#[derive(Clone)]
pub struct Registration {
    engine: Engine,
    templates: Arc<Templates>,
    settings: Arc<RegistrationSettings>,
    passwords: Passwords,
}

impl Registration {
    /// Registration over `engine`, mailing with `templates` as `settings` say, hashing
    /// passwords with `passwords`.
    pub fn new(
        engine: Engine,
        templates: Arc<Templates>,
        settings: Arc<RegistrationSettings>,
        passwords: Passwords,
    ) -> Self {
        Self {
            engine,
            templates,
            settings,
            passwords,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &RegistrationSettings {
        &self.settings
    }

    fn store(&self) -> &Arc<dyn Store> {
        self.engine.store()
    }

    fn now(&self) -> DateTime<Utc> {
        self.engine.clock().now()
    }

    fn ttl(duration: std::time::Duration) -> TimeDelta {
        TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
    }

    fn link(&self, plain: &str) -> String {
        format!(
            "{}/tokens/{plain}",
            self.settings.base_url.trim_end_matches('/')
        )
    }

    fn context(&self, pending: &PendingUser) -> serde_json::Value {
        json!({
            "user_name": pending.user_name.as_str(),
            "email": pending.email.as_str(),
            "site_name": self.settings.site_name,
            "approval_required": self.settings.approval_required,
        })
    }

    /// What the group mails of `user` and `group` are rendered with.
    fn membership_context(&self, user: &User, group: &UserGroup) -> serde_json::Value {
        json!({
            "user_name": user.user.username.as_str(),
            "email": user.user.email.as_str(),
            "site_name": self.settings.site_name,
            "group_name": group.user_group.name.as_str(),
        })
    }
}

/// What a submission's user name and email collide with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    /// Neither is held.
    Nothing,
    /// The email is held by a user or a registration (whatever the name).
    Email,
    /// The email is free but the user name is held.
    Name,
}

/// A token that is gone when it is used was used by someone else meanwhile.
fn used(result: Result<(), DomainError>) -> Result<(), RegistrationError> {
    match result {
        Err(DomainError::NotFound { .. }) => Err(RegistrationError::UnknownToken),
        other => Ok(other?),
    }
}
