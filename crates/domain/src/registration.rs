//! Self-registration: pending users, the single-use tokens emailed to prove things (an email
//! address, an admin's decision, accepted group terms), and the outbox of mails and webhook
//! calls that state changes leave behind.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{DomainError, Result};
use crate::ids::Email;

/// A self-chosen user name, by Magpie's rule: lowercase letters and digits in runs joined by
/// single `_`, `-` or `.`, at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserName(String);

impl UserName {
    /// The longest user name.
    pub const MAX_LEN: usize = 64;

    /// Validates `value` as a user name (no normalisation: a name is typed as it is kept).
    pub fn parse(value: &str) -> Result<Self> {
        let invalid = |reason: &str| DomainError::invalid("user_name", reason.to_owned());
        if value.is_empty() {
            return Err(invalid("is required"));
        }
        if value.len() > Self::MAX_LEN {
            return Err(invalid("must be at most 64 characters"));
        }
        let separator = |c: char| matches!(c, '_' | '-' | '.');
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || separator(c);
        if !value.chars().all(allowed) {
            return Err(invalid(
                "may hold only lowercase letters a-z, digits, and '_', '-' or '.' between them",
            ));
        }
        let runs_ok = value.split(separator).all(|run| !run.is_empty());
        if !runs_ok {
            return Err(invalid(
                "must start and end with a letter or digit, with one separator at a time",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for UserName {
    type Error = DomainError;

    fn try_from(value: String) -> Result<Self> {
        Self::parse(&value)
    }
}

impl From<UserName> for String {
    fn from(name: UserName) -> Self {
        name.0
    }
}

/// A person who signed up and is not a user yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingUser {
    /// Internal id.
    pub id: Uuid,
    /// The chosen user name.
    pub user_name: UserName,
    /// The address the confirmation goes to (normalised, so unique ignoring case).
    pub email: Email,
    /// The argon2id hash of the chosen password (never the password).
    pub password_hash: String,
    /// When they signed up.
    pub registered_at: DateTime<Utc>,
    /// When they proved the address, if they did.
    pub email_confirmed_at: Option<DateTime<Utc>>,
    /// The `complete_registration` process that using a link started, once one did: from
    /// then on the registration is the process's to remove, and the purge leaves it alone.
    pub completion_process_id: Option<Uuid>,
}

/// What a registration token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenOperation {
    /// Prove the email address of a pending user.
    ConfirmEmail,
    /// Approve a pending user (admins).
    ApproveRegistration,
    /// Decline a pending user (admins).
    DeclineRegistration,
    /// Accept a group's terms, which makes the pending membership real.
    AcceptGroupTerms,
    /// Prove a user's new email address, which then replaces the old one.
    ConfirmEmailChange,
}

impl TokenOperation {
    /// Every operation.
    pub const ALL: [TokenOperation; 5] = [
        TokenOperation::ConfirmEmail,
        TokenOperation::ApproveRegistration,
        TokenOperation::DeclineRegistration,
        TokenOperation::AcceptGroupTerms,
        TokenOperation::ConfirmEmailChange,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenOperation::ConfirmEmail => "confirm-email",
            TokenOperation::ApproveRegistration => "approve-registration",
            TokenOperation::DeclineRegistration => "decline-registration",
            TokenOperation::AcceptGroupTerms => "accept-group-terms",
            TokenOperation::ConfirmEmailChange => "confirm-email-change",
        }
    }

    /// Whether only an admin may use the token.
    pub fn needs_admin(self) -> bool {
        matches!(
            self,
            TokenOperation::ApproveRegistration | TokenOperation::DeclineRegistration
        )
    }
}

impl fmt::Display for TokenOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TokenOperation {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|operation| operation.as_str() == s)
            .ok_or_else(|| DomainError::Storage(format!("unknown token operation {s:?}")))
    }
}

/// A single-use, expiring token, as stored: a hash of its secret, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationToken {
    /// The public half of the token.
    pub id: Uuid,
    /// SHA-256 of the secret half, hex.
    pub secret_hash: String,
    /// What it is for.
    pub operation: TokenOperation,
    /// The pending user it concerns (registration operations).
    pub pending_user_id: Option<Uuid>,
    /// The User subscription it concerns (group terms).
    pub user_id: Option<Uuid>,
    /// The UserGroup subscription it concerns (group terms).
    pub group_id: Option<Uuid>,
    /// The address it proves (email changes).
    pub email: Option<Email>,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// What an outbox message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxKind {
    /// An email.
    Mail,
    /// A webhook call.
    Webhook,
}

impl OutboxKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::Mail => "mail",
            OutboxKind::Webhook => "webhook",
        }
    }
}

impl FromStr for OutboxKind {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mail" => Ok(OutboxKind::Mail),
            "webhook" => Ok(OutboxKind::Webhook),
            other => Err(DomainError::Storage(format!(
                "unknown outbox kind {other:?}"
            ))),
        }
    }
}

/// A mail or webhook call to deliver, recorded in the transaction of the change that causes it,
/// so that a failed delivery loses nothing and a delivered one is not repeated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// Internal id (also the mail's Message-ID, so a repeat after a crash is recognisable).
    pub id: Uuid,
    /// Mail or webhook.
    pub kind: OutboxKind,
    /// What to deliver: a rendered mail or a webhook request.
    pub payload: Value,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// When the next attempt is due; `None` once delivered or given up.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// What the outbox has not delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutboxBacklog {
    /// Messages still to be attempted.
    pub waiting: u64,
    /// Messages given up on (failed for good).
    pub failed: u64,
}

/// Storage for registration.
#[async_trait]
pub trait RegistrationRepository: Send + Sync {
    /// Adds a pending user; a taken user name or email among pending users is a conflict.
    async fn create_pending_user(&self, user: &PendingUser) -> Result<()>;
    /// One pending user.
    async fn pending_user(&self, id: Uuid) -> Result<PendingUser>;
    /// One pending user by name.
    async fn pending_user_by_name(&self, name: &UserName) -> Result<PendingUser>;
    /// One pending user by email (normalised, so ignoring case).
    async fn pending_user_by_email(&self, email: &Email) -> Result<PendingUser>;
    /// Whether a pending user holds `name` or `email`.
    async fn pending_user_holds(&self, name: &UserName, email: &Email) -> Result<bool>;
    /// Every pending user, by name.
    async fn list_pending_users(&self) -> Result<Vec<PendingUser>>;
    /// Records that the pending user proved the address.
    async fn confirm_pending_email(&self, id: Uuid, at: DateTime<Utc>) -> Result<()>;
    /// Records the process that completes the registration (see
    /// [`PendingUser::completion_process_id`]); a missing pending user is not found.
    async fn begin_completion(&self, id: Uuid, process_id: Uuid) -> Result<()>;
    /// Counts a resent confirmation link of pending user `id` at `now`, if fewer than `limit`
    /// were counted since `window_start` (older counts are forgotten, and the window starts
    /// again at `now`); answers whether this one was counted. One conditional update, so that
    /// concurrent resends cannot both take the last one.
    async fn count_resend(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
        limit: u32,
    ) -> Result<bool>;
    /// Counts a notice to `address` at `now` (a mail a submission sends to an address without
    /// its owner asking: someone tried to register with it, or its name is taken), if fewer than
    /// `limit` were counted for it since `window_start` (older counts are forgotten, and the
    /// window starts again at `now`); answers whether this one was counted. One statement, so
    /// that concurrent submissions cannot both take the last one.
    async fn count_notice(
        &self,
        address: &Email,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
        limit: u32,
    ) -> Result<bool>;
    /// Deletes the tokens of `operation` about pending user `id` (earlier confirmation links
    /// when a new one is sent).
    async fn delete_pending_tokens(&self, id: Uuid, operation: TokenOperation) -> Result<()>;
    /// Removes a pending user and its tokens; a missing one is not found.
    async fn delete_pending_user(&self, id: Uuid) -> Result<()>;
    /// Removes a pending user and its tokens unless its completion started and the completing
    /// process was not aborted (a conflict): one conditional statement, so that a completion
    /// starting meanwhile is never removed under its process. A missing one is not found.
    async fn delete_pending_user_unless_completing(&self, id: Uuid) -> Result<()>;
    /// Stores a token.
    async fn create_registration_token(&self, token: &RegistrationToken) -> Result<()>;
    /// One token by its public id.
    async fn registration_token(&self, id: Uuid) -> Result<RegistrationToken>;
    /// The tokens about a pending user.
    async fn tokens_of_pending_user(&self, id: Uuid) -> Result<Vec<RegistrationToken>>;
    /// The outstanding group-terms tokens of a user.
    async fn terms_tokens_of_user(&self, user_id: Uuid) -> Result<Vec<RegistrationToken>>;
    /// Uses up a token: deletes it, or answers not found when it is gone (used, or never
    /// issued), so that of two concurrent uses only one succeeds.
    async fn use_registration_token(&self, id: Uuid) -> Result<()>;
    /// Deletes the group-terms tokens of `user_id` for `group_id`.
    async fn delete_terms_tokens(&self, user_id: Uuid, group_id: Uuid) -> Result<()>;
    /// Deletes the tokens of `operation` about the User subscription `user_id` (earlier email
    /// change links when a new one is sent).
    async fn delete_user_tokens(&self, user_id: Uuid, operation: TokenOperation) -> Result<()>;
    /// Deletes the tokens expired at `now`, then the pending users left without a token whose
    /// completion has not started (those are their process's to remove); returns how many
    /// pending users went.
    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64>;
    /// Keeps the password hash of User subscription `user_id`.
    async fn store_credentials(
        &self,
        user_id: Uuid,
        password_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// The password hash kept for User subscription `user_id`, if any.
    async fn credentials(&self, user_id: Uuid) -> Result<Option<String>>;
    /// Records a message to deliver.
    async fn enqueue(&self, message: &OutboxMessage) -> Result<()>;
    /// Up to `limit` messages due at `now`, oldest first.
    async fn due_messages(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<OutboxMessage>>;
    /// Claims a due message for one delivery attempt: moves its next attempt from `seen` (what
    /// the caller read) to `until`, and answers whether this caller won it, so that of several
    /// dispatchers only one sends it (another takes it again after `until` if this one dies).
    async fn claim_message(
        &self,
        id: Uuid,
        seen: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool>;
    /// Records an attempt: delivered (`next_attempt_at` and `error` `None`), failed and due
    /// again, or failed for good (`next_attempt_at` `None`, with an error).
    async fn record_attempt(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        error: Option<&str>,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> Result<()>;
    /// Every message, oldest first (for operators and tests).
    async fn list_messages(&self) -> Result<Vec<OutboxMessage>>;
    /// How many messages wait for an attempt, and how many were given up on.
    async fn outbox_backlog(&self) -> Result<OutboxBacklog>;
    /// Replaces the payload of every message recorded before `before` that is done with
    /// (delivered or given up on) by [`PURGED_PAYLOAD`], so that no mail with live links stays
    /// in the database; answers how many.
    async fn forget_done_messages(&self, before: DateTime<Utc>) -> Result<u64>;
}

/// What a done outbox message holds once its retention has passed.
pub const PURGED_PAYLOAD: &str = r#"{"purged":true}"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_follow_magpies_rule() {
        for good in ["ada", "ada.lovelace", "a-1_b.c", "x", &"a".repeat(64)] {
            assert_eq!(UserName::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "Ada",
            "ada lovelace",
            ".ada",
            "ada.",
            "ada..b",
            "ada_-b",
            "adä",
            &"a".repeat(65),
        ] {
            assert!(
                matches!(UserName::parse(bad), Err(DomainError::InvalidArgument { ref field, .. }) if field == "user_name"),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn token_operations_round_trip_their_stored_names() {
        for operation in TokenOperation::ALL {
            assert_eq!(
                operation.as_str().parse::<TokenOperation>().unwrap(),
                operation
            );
        }
        assert!(TokenOperation::ApproveRegistration.needs_admin());
        assert!(!TokenOperation::ConfirmEmail.needs_admin());
        assert!("reset-password".parse::<TokenOperation>().is_err());
    }
}
