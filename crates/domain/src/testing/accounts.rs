//! Accounts in memory: sessions, sign-in failures, password reset links and roles, each
//! belonging to an existing subscription, as the real store's `accounts.rs` and schema keep
//! them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::accounts::{AccountRepository, LoginFailures, PasswordReset, Session};
use crate::auth::Role;
use crate::error::{DomainError, Result};

use super::{Access, DUPLICATE, MISSING_REFERENCE, Tables};

/// Sessions and reset links by id; failures and roles by user.
#[derive(Debug, Clone, Default)]
pub(super) struct Accounts {
    sessions: BTreeMap<Uuid, Session>,
    failures: BTreeMap<Uuid, LoginFailures>,
    resets: BTreeMap<Uuid, PasswordReset>,
    roles: BTreeMap<Uuid, BTreeSet<&'static str>>,
}

/// Refuses a row for a user that is no subscription, as the schema's foreign key does.
fn require_user(tables: &Tables, user_id: Uuid) -> Result<()> {
    if tables.subscriptions.contains(user_id) {
        Ok(())
    } else {
        Err(DomainError::Conflict(MISSING_REFERENCE.to_owned()))
    }
}

#[async_trait]
impl<T: Access> AccountRepository for T {
    async fn create_session(&self, session: &Session) -> Result<()> {
        let session = session.clone();
        self.write(move |tables, _| {
            require_user(tables, session.user_id)?;
            let accounts = Arc::make_mut(&mut tables.accounts);
            if accounts.sessions.contains_key(&session.id) {
                return Err(DomainError::Conflict(DUPLICATE.to_owned()));
            }
            accounts.sessions.insert(session.id, session.clone());
            Ok(())
        })
    }

    async fn session(&self, id: Uuid) -> Result<Session> {
        self.read(|tables, _| tables.accounts.sessions.get(&id).cloned())
            .ok_or_else(|| DomainError::not_found("session", id))
    }

    async fn touch_session(&self, id: Uuid, at: DateTime<Utc>) -> Result<()> {
        self.write(move |tables, _| {
            if let Some(session) = Arc::make_mut(&mut tables.accounts).sessions.get_mut(&id) {
                session.last_seen_at = at;
            }
            Ok(())
        })
    }

    async fn delete_session(&self, id: Uuid) -> Result<()> {
        self.write(move |tables, _| {
            Arc::make_mut(&mut tables.accounts).sessions.remove(&id);
            Ok(())
        })
    }

    async fn sessions_of(&self, user_id: Uuid) -> Result<Vec<Session>> {
        let mut sessions: Vec<Session> = self.read(|tables, _| {
            tables
                .accounts
                .sessions
                .values()
                .filter(|session| session.user_id == user_id)
                .cloned()
                .collect()
        });
        sessions.sort_by_key(|session| (session.created_at, session.id));
        Ok(sessions)
    }

    async fn delete_all_sessions(&self) -> Result<u64> {
        self.write(move |tables, _| {
            let sessions = &mut Arc::make_mut(&mut tables.accounts).sessions;
            let ended = sessions.len() as u64;
            sessions.clear();
            Ok(ended)
        })
    }

    async fn delete_sessions_of(&self, user_id: Uuid, except: Option<Uuid>) -> Result<u64> {
        self.write(move |tables, _| {
            let sessions = &mut Arc::make_mut(&mut tables.accounts).sessions;
            let before = sessions.len();
            sessions.retain(|id, session| session.user_id != user_id || Some(*id) == except);
            Ok((before - sessions.len()) as u64)
        })
    }

    async fn delete_expired_sessions(
        &self,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> Result<u64> {
        self.write(move |tables, _| {
            let sessions = &mut Arc::make_mut(&mut tables.accounts).sessions;
            let before = sessions.len();
            sessions.retain(|_, session| {
                session.expires_at > now && session.last_seen_at >= idle_since
            });
            Ok((before - sessions.len()) as u64)
        })
    }

    async fn login_failures(&self, user_id: Uuid) -> Result<Option<LoginFailures>> {
        Ok(self.read(|tables, _| tables.accounts.failures.get(&user_id).copied()))
    }

    async fn reserve_login_attempt(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
        max_failures: u32,
    ) -> Result<Option<u32>> {
        self.write(move |tables, _| {
            require_user(tables, user_id)?;
            let failures = Arc::make_mut(&mut tables.accounts)
                .failures
                .entry(user_id)
                .or_insert(LoginFailures {
                    failures: 0,
                    last_failure_at: now,
                    locked_until: None,
                });
            let locked = failures.locked_until.is_some_and(|until| until > now);
            if locked || failures.failures >= max_failures {
                return Ok(None);
            }
            failures.failures += 1;
            failures.last_failure_at = now;
            Ok(Some(failures.failures))
        })
    }

    async fn lock_login(&self, user_id: Uuid, until: DateTime<Utc>) -> Result<()> {
        self.write(move |tables, _| {
            if let Some(failures) = Arc::make_mut(&mut tables.accounts)
                .failures
                .get_mut(&user_id)
            {
                failures.locked_until = Some(until);
            }
            Ok(())
        })
    }

    async fn clear_login_failures(&self, user_id: Uuid) -> Result<()> {
        self.write(move |tables, _| {
            Arc::make_mut(&mut tables.accounts)
                .failures
                .remove(&user_id);
            Ok(())
        })
    }

    async fn create_password_reset(&self, reset: &PasswordReset) -> Result<()> {
        let reset = reset.clone();
        self.write(move |tables, _| {
            require_user(tables, reset.user_id)?;
            let resets = &mut Arc::make_mut(&mut tables.accounts).resets;
            resets.retain(|_, earlier| earlier.user_id != reset.user_id);
            if resets.contains_key(&reset.id) {
                return Err(DomainError::Conflict(DUPLICATE.to_owned()));
            }
            resets.insert(reset.id, reset.clone());
            Ok(())
        })
    }

    async fn password_reset(&self, id: Uuid) -> Result<PasswordReset> {
        self.read(|tables, _| tables.accounts.resets.get(&id).cloned())
            .ok_or_else(|| DomainError::not_found("password reset", id))
    }

    async fn use_password_reset(&self, id: Uuid) -> Result<()> {
        self.write(
            move |tables, _| match Arc::make_mut(&mut tables.accounts).resets.remove(&id) {
                Some(_) => Ok(()),
                None => Err(DomainError::not_found("password reset", id)),
            },
        )
    }

    async fn roles(&self, user_id: Uuid) -> Result<Vec<Role>> {
        self.read(|tables, _| {
            tables
                .accounts
                .roles
                .get(&user_id)
                .into_iter()
                .flatten()
                .map(|role| role.parse())
                .collect()
        })
    }

    async fn holders_of(&self, role: Role) -> Result<Vec<Uuid>> {
        self.read(|tables, _| {
            Ok(tables
                .accounts
                .roles
                .iter()
                .filter(|(_, roles)| roles.contains(role.as_str()))
                .map(|(user, _)| *user)
                .collect())
        })
    }

    async fn set_roles(&self, user_id: Uuid, roles: &[Role]) -> Result<()> {
        let kept: BTreeSet<&'static str> = roles
            .iter()
            .filter(|role| **role != Role::User)
            .map(|role| role.as_str())
            .collect();
        self.write(move |tables, _| {
            if !kept.is_empty() {
                require_user(tables, user_id)?;
            }
            let roles = &mut Arc::make_mut(&mut tables.accounts).roles;
            if kept.is_empty() {
                roles.remove(&user_id);
            } else {
                roles.insert(user_id, kept.clone());
            }
            Ok(())
        })
    }
}
