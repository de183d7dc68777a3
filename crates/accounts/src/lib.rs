//! Accounts: people sign in with the password they registered (or reset), and act through a
//! server-side session.
//!
//! - **Sign-in** takes a user name or an email address and a password, verified with argon2id
//!   on a bounded pool ([`cadre_registration::Passwords`]). An unknown user, a wrong password,
//!   a user who is not active and a locked account all fail alike ([`AccountError::InvalidCredentials`]),
//!   and take as long (a decoy hash is checked when there is nothing to check).
//! - **Throttling:** each attempt counts as a failure until its password proved right; past
//!   `free_failures` in a row each failure locks sign-in for a doubling delay (up to `max_lock`),
//!   and after `max_failures` (at most 100) sign-in stays refused until a password reset.
//! - **Sessions** are `<id>.<secret>` like mailed links: the store keeps a hash of the secret;
//!   they end after an idle and an absolute lifetime, at sign-out, and when the user stops being
//!   active. Each has a CSRF token derived from its secret.
//! - **Passwords** change with the current one (ending the user's other sessions) or through a
//!   mailed single-use, expiring reset link (ending all of them).

mod passwords;
mod sessions;
mod settings;
mod sign_in;

use std::net::IpAddr;
use std::sync::Arc;

use cadre_domain::{AuditAction, AuditEvent, DomainError, Role, Store, StoreTransaction};
use cadre_registration::Passwords;
use cadre_registration::RegistrationSettings;
use cadre_registration::mail::{MailError, Templates};
use cadre_registration::password::password_problem;
use chrono::{DateTime, TimeDelta, Utc};
use thiserror::Error;
use uuid::Uuid;

pub use sessions::{SessionUser, csrf_token};
pub use settings::AccountSettings;
pub use sign_in::SignedIn;

/// Why an account operation was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AccountError {
    /// The name, the password or the account's state does not allow a sign-in; which one is not
    /// told.
    #[error("the user name or password is wrong")]
    InvalidCredentials,
    /// A field of the request is unusable.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
    /// The reset link is not of a link's shape.
    #[error("this link is malformed")]
    MalformedLink,
    /// The reset link is unknown, used or replaced.
    #[error("this link is unknown or was used")]
    UnknownLink,
    /// The reset link expired.
    #[error("this link expired")]
    ExpiredLink,
    /// No session of the caller's has this id.
    #[error("you have no session with this id")]
    UnknownSession,
    /// A mail could not be rendered.
    #[error(transparent)]
    Mail(#[from] MailError),
    /// The store refused or failed.
    #[error(transparent)]
    Domain(#[from] DomainError),
}

impl AccountError {
    fn invalid(field: &str, reason: impl Into<String>) -> Self {
        AccountError::Invalid {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

/// A signed-in user as the rest of cadre sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountUser {
    /// The User subscription.
    pub user_id: Uuid,
    /// The login name.
    pub user_name: String,
    /// The email address.
    pub email: String,
    /// Every role the user holds (`user`, and `admin` for admins).
    pub roles: Vec<Role>,
}

impl AccountUser {
    /// The strongest role the user holds.
    pub fn role(&self) -> Role {
        if self.roles.contains(&Role::Admin) {
            Role::Admin
        } else {
            Role::User
        }
    }
}

/// Sign-in, sessions and passwords over a store.
#[derive(Clone)]
pub struct Accounts {
    store: Arc<dyn Store>,
    clock: Arc<dyn cadre_domain::Clock>,
    passwords: Passwords,
    templates: Arc<Templates>,
    settings: Arc<AccountSettings>,
    registration: Arc<RegistrationSettings>,
}

impl Accounts {
    /// Accounts over `store`, hashing with `passwords`, mailing reset links with `templates` to
    /// the public address and site name of `registration`.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn cadre_domain::Clock>,
        passwords: Passwords,
        templates: Arc<Templates>,
        settings: Arc<AccountSettings>,
        registration: Arc<RegistrationSettings>,
    ) -> Self {
        Self {
            store,
            clock,
            passwords,
            templates,
            settings,
            registration,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &AccountSettings {
        &self.settings
    }

    /// Whether the session cookie is `Secure`: as configured, else when the public address is
    /// `https://`.
    pub fn secure_cookie(&self) -> bool {
        self.settings
            .secure_cookie
            .unwrap_or_else(|| self.registration.base_url.starts_with("https://"))
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// An event of `action` by `actor` from `addr`, now.
    fn event(&self, action: AuditAction, actor: &str, addr: Option<IpAddr>) -> AuditEvent {
        AuditEvent::new(Uuid::now_v7(), self.now(), action, actor).from_addr(addr)
    }

    /// Appends `event` to the audit log, in `txn` when given.
    async fn audit(
        &self,
        txn: Option<&dyn StoreTransaction>,
        event: AuditEvent,
    ) -> Result<(), AccountError> {
        match txn {
            Some(txn) => txn.record_audit(&event).await?,
            None => self.store.record_audit(&event).await?,
        }
        Ok(())
    }

    fn ttl(duration: std::time::Duration) -> TimeDelta {
        TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
    }

    /// Refuses `password` as the new password of `user` as registration refuses it: too short,
    /// too long, or easy to guess from common passwords and what is known of the user.
    fn check_new_password(&self, password: &str, user: &AccountUser) -> Result<(), AccountError> {
        let context = [
            user.user_name.as_str(),
            user.email.as_str(),
            self.registration.site_name.as_str(),
        ];
        match password_problem(password, self.registration.password_min_length, &context) {
            Some(reason) => Err(AccountError::invalid("new_password", reason)),
            None => Ok(()),
        }
    }
}

pub use cadre_registration::password::MAX_PASSWORD_CHARS;
