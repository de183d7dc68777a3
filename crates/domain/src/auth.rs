//! API tokens and roles: who may call cadre's edges, and what they may do.
//!
//! A token has a public id and a secret; storage keeps only a hash of the secret. Generating and
//! hashing secrets is the edge's business (it needs a CSPRNG); this module holds the types and
//! the repository port.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{DomainError, Result};

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including operator actions (resume, abort) and token management.
    Admin,
    /// Read the catalogue, workflows, and the subscriptions and processes of their own user
    /// (see `docs/security.md`).
    User,
    /// A service that provisions users and groups over SCIM (`/scim/v2`, `docs/scim.md`), and
    /// what a user may do besides.
    Scim,
}

impl Role {
    /// Whether a caller with this role may do what `required` may do.
    pub fn includes(self, required: Role) -> bool {
        self == Role::Admin || required == Role::User || self == required
    }

    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Scim => "scim",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            "scim" => Ok(Role::Scim),
            other => Err(DomainError::invalid(
                "role",
                format!("{other:?} is not one of admin, user, scim"),
            )),
        }
    }
}

/// A stored API token: everything but the secret, of which only a hash is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Public id, part of the token string.
    pub id: Uuid,
    /// A name for people: whose or what the token is. Processes record it as their creator.
    pub name: String,
    /// What the token may do.
    pub role: Role,
    /// The User subscription the token acts for (the owner of what it creates, the member it
    /// acts as in workflow groups); `None` for a token of a service or an operator.
    pub user_id: Option<Uuid>,
    /// Lowercase hex SHA-256 of the secret part.
    pub secret_hash: String,
    /// Who created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked; a revoked token authenticates nobody.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it stops working; `None` for a token an admin made to last.
    pub expires_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    /// Whether the token authenticates at `now`: neither revoked nor expired.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }
}

/// API tokens.
#[async_trait]
pub trait TokenRepository: Send + Sync {
    /// Stores a new token.
    async fn create_token(&self, token: &ApiToken) -> Result<()>;
    /// One token by id, revoked or not.
    async fn token(&self, id: Uuid) -> Result<ApiToken>;
    /// Every token, oldest first.
    async fn list_tokens(&self) -> Result<Vec<ApiToken>>;
    /// The tokens acting for the User subscription `user_id`, oldest first, revoked and expired
    /// ones included.
    async fn tokens_of(&self, user_id: Uuid) -> Result<Vec<ApiToken>>;
    /// Revokes a token at `now`; revoking a revoked token changes nothing.
    async fn revoke_token(&self, id: Uuid, now: DateTime<Utc>) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_includes_every_role_and_every_role_includes_user() {
        assert!(Role::Admin.includes(Role::Admin));
        assert!(Role::Admin.includes(Role::User));
        assert!(Role::User.includes(Role::User));
        assert!(!Role::User.includes(Role::Admin));
        assert!(Role::Admin.includes(Role::Scim));
        assert!(Role::Scim.includes(Role::Scim));
        assert!(Role::Scim.includes(Role::User));
        assert!(!Role::Scim.includes(Role::Admin));
        assert!(!Role::User.includes(Role::Scim));
    }

    #[test]
    fn roles_parse_their_wire_strings_only() {
        for role in [Role::Admin, Role::User, Role::Scim] {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("Admin".parse::<Role>().is_err());
        assert!("".parse::<Role>().is_err());
    }
}
