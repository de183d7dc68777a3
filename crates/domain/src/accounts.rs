//! Accounts: the sessions of people who signed in, their sign-in failures, password reset links,
//! and the roles users hold.
//!
//! Like API tokens, a session and a reset link have a public id and a secret of which storage
//! keeps only a hash; generating secrets and hashing passwords is the edge's business. This
//! module holds the types and the repository port.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Role;
use crate::error::Result;

/// A signed-in person's session, as stored: a hash of its secret, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Public id, part of the cookie.
    pub id: Uuid,
    /// Lowercase hex SHA-256 of the secret part.
    pub secret_hash: String,
    /// The User subscription signed in.
    pub user_id: Uuid,
    /// When the person signed in.
    pub created_at: DateTime<Utc>,
    /// When the session was last used (kept to the minute); it ends after the idle lifetime.
    pub last_seen_at: DateTime<Utc>,
    /// When it ends whatever its use (the absolute lifetime).
    pub expires_at: DateTime<Utc>,
}

/// A user's consecutive failed sign-ins since the last success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginFailures {
    /// How many in a row.
    pub failures: u32,
    /// When the last one was.
    pub last_failure_at: DateTime<Utc>,
    /// Until when sign-in is refused whatever the password; `None` when it is not.
    pub locked_until: Option<DateTime<Utc>>,
}

/// A mailed password reset link, as stored: a hash of its secret, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordReset {
    /// Public id, part of the link.
    pub id: Uuid,
    /// Lowercase hex SHA-256 of the secret part.
    pub secret_hash: String,
    /// The User subscription whose password it resets.
    pub user_id: Uuid,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// Sessions, sign-in failures, reset links and roles.
#[async_trait]
pub trait AccountRepository: Send + Sync {
    /// Stores a new session.
    async fn create_session(&self, session: &Session) -> Result<()>;
    /// One session by id (`NotFound` when it ended).
    async fn session(&self, id: Uuid) -> Result<Session>;
    /// Records that a session was used at `at`.
    async fn touch_session(&self, id: Uuid, at: DateTime<Utc>) -> Result<()>;
    /// Ends one session; ending an ended one changes nothing.
    async fn delete_session(&self, id: Uuid) -> Result<()>;
    /// The sessions of `user_id`, oldest first.
    async fn sessions_of(&self, user_id: Uuid) -> Result<Vec<Session>>;
    /// Ends every session of `user_id` but `except`; returns how many ended.
    async fn delete_sessions_of(&self, user_id: Uuid, except: Option<Uuid>) -> Result<u64>;
    /// Ends every session of every user; returns how many ended.
    async fn delete_all_sessions(&self) -> Result<u64>;
    /// Removes sessions past their absolute end, or unused since `idle_since`; returns how many.
    async fn delete_expired_sessions(
        &self,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> Result<u64>;
    /// The consecutive failed sign-ins of `user_id`, if any.
    async fn login_failures(&self, user_id: Uuid) -> Result<Option<LoginFailures>>;
    /// Counts a sign-in attempt of `user_id` as failed before its password is checked (a success
    /// clears the count), unless sign-in is refused: locked beyond `now`, or `max_failures`
    /// reached. Atomic, so that concurrent attempts never count past `max_failures`. Returns the
    /// count with this attempt, or `None` when sign-in is refused.
    async fn reserve_login_attempt(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
        max_failures: u32,
    ) -> Result<Option<u32>>;
    /// Refuses sign-in for `user_id` until `until`.
    async fn lock_login(&self, user_id: Uuid, until: DateTime<Utc>) -> Result<()>;
    /// Forgets the failed sign-ins of `user_id` (after a success or a reset).
    async fn clear_login_failures(&self, user_id: Uuid) -> Result<()>;
    /// Stores a reset link, removing every earlier link of the same user.
    async fn create_password_reset(&self, reset: &PasswordReset) -> Result<()>;
    /// One reset link by id (`NotFound` when used or replaced).
    async fn password_reset(&self, id: Uuid) -> Result<PasswordReset>;
    /// Uses up a reset link: `NotFound` if another use came first.
    async fn use_password_reset(&self, id: Uuid) -> Result<()>;
    /// The roles `user_id` holds beyond `user` (which every user has).
    async fn roles(&self, user_id: Uuid) -> Result<Vec<Role>>;
    /// Replaces the roles `user_id` holds beyond `user`.
    async fn set_roles(&self, user_id: Uuid, roles: &[Role]) -> Result<()>;
    /// The users who hold `role` (beyond `user`), in id order.
    async fn holders_of(&self, role: Role) -> Result<Vec<Uuid>>;
}
