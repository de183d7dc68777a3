//! Registration in memory: pending users (names and emails unique), their single-use tokens,
//! kept credentials and the outbox, as the real store's `registration.rs` and schema keep them.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{DomainError, Result};
use crate::ids::Email;
use crate::process::ProcessStatus;
use crate::registration::{
    OutboxBacklog, OutboxMessage, PURGED_PAYLOAD, PendingUser, RegistrationRepository,
    RegistrationToken, TokenOperation, UserName,
};

use super::{Access, DUPLICATE, MISSING_REFERENCE, Tables};

/// Pending users, tokens, credentials by User subscription, and outbox messages, each by id;
/// the resends counted per pending user and the notices per address, each with when its
/// window started.
#[derive(Debug, Clone, Default)]
pub(super) struct Registration {
    pending: BTreeMap<Uuid, PendingUser>,
    tokens: BTreeMap<Uuid, RegistrationToken>,
    credentials: BTreeMap<Uuid, String>,
    outbox: BTreeMap<Uuid, OutboxMessage>,
    resends: BTreeMap<Uuid, (u32, DateTime<Utc>)>,
    notices: BTreeMap<String, (u32, DateTime<Utc>)>,
}

/// Counts one more in `counter` at `now` if fewer than `limit` were counted since
/// `window_start` (an older window starts again at `now`); answers whether it counted.
fn count_within(
    counter: Option<&mut (u32, DateTime<Utc>)>,
    now: DateTime<Utc>,
    window_start: DateTime<Utc>,
    limit: u32,
) -> (bool, Option<(u32, DateTime<Utc>)>) {
    match counter {
        Some((count, since)) if *since >= window_start => {
            if *count < limit {
                *count += 1;
                (true, None)
            } else {
                (false, None)
            }
        }
        Some(stale) => {
            *stale = (1, now);
            (true, None)
        }
        None => (true, Some((1, now))),
    }
}

fn pending_not_found(what: impl ToString) -> DomainError {
    DomainError::NotFound {
        kind: "pending user",
        id: what.to_string(),
    }
}

/// `tokens` oldest first (then by id).
fn oldest_first(mut tokens: Vec<RegistrationToken>) -> Vec<RegistrationToken> {
    tokens.sort_by_key(|token| (token.created_at, token.id));
    tokens
}

fn create_token(tables: &mut Tables, token: &RegistrationToken) -> Result<()> {
    if tables.registration.tokens.contains_key(&token.id) {
        return Err(DomainError::Conflict(DUPLICATE.to_owned()));
    }
    let pending_exists = token
        .pending_user_id
        .is_none_or(|id| tables.registration.pending.contains_key(&id));
    let subscriptions_exist = [token.user_id, token.group_id]
        .into_iter()
        .flatten()
        .all(|id| tables.subscriptions.contains(id));
    if !pending_exists || !subscriptions_exist {
        return Err(DomainError::Conflict(MISSING_REFERENCE.to_owned()));
    }
    Arc::make_mut(&mut tables.registration)
        .tokens
        .insert(token.id, token.clone());
    Ok(())
}

#[async_trait]
impl<T: Access> RegistrationRepository for T {
    async fn create_pending_user(&self, user: &PendingUser) -> Result<()> {
        let user = user.clone();
        self.write(move |tables, _| {
            let registration = Arc::make_mut(&mut tables.registration);
            let taken = registration.pending.contains_key(&user.id)
                || registration
                    .pending
                    .values()
                    .any(|other| other.user_name == user.user_name || other.email == user.email);
            if taken {
                return Err(DomainError::Conflict(DUPLICATE.to_owned()));
            }
            registration.pending.insert(user.id, user.clone());
            Ok(())
        })
    }

    async fn pending_user(&self, id: Uuid) -> Result<PendingUser> {
        self.read(|tables, _| tables.registration.pending.get(&id).cloned())
            .ok_or_else(|| pending_not_found(id))
    }

    async fn pending_user_by_name(&self, name: &UserName) -> Result<PendingUser> {
        self.read(|tables, _| {
            tables
                .registration
                .pending
                .values()
                .find(|user| &user.user_name == name)
                .cloned()
        })
        .ok_or_else(|| pending_not_found(name))
    }

    async fn pending_user_by_email(&self, email: &Email) -> Result<PendingUser> {
        self.read(|tables, _| {
            tables
                .registration
                .pending
                .values()
                .find(|user| &user.email == email)
                .cloned()
        })
        .ok_or_else(|| pending_not_found(email))
    }

    async fn begin_completion(&self, id: Uuid, process_id: Uuid) -> Result<()> {
        self.write(move |tables, _| {
            let pending = Arc::make_mut(&mut tables.registration)
                .pending
                .get_mut(&id)
                .ok_or_else(|| pending_not_found(id))?;
            pending.completion_process_id = Some(process_id);
            Ok(())
        })
    }

    async fn count_resend(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
        limit: u32,
    ) -> Result<bool> {
        self.write(move |tables, _| {
            let registration = Arc::make_mut(&mut tables.registration);
            if !registration.pending.contains_key(&id) {
                return Ok(false);
            }
            if limit == 0 {
                return Ok(false);
            }
            let (counted, first) =
                count_within(registration.resends.get_mut(&id), now, window_start, limit);
            if let Some(first) = first {
                registration.resends.insert(id, first);
            }
            Ok(counted)
        })
    }

    async fn count_notice(
        &self,
        address: &Email,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
        limit: u32,
    ) -> Result<bool> {
        let address = address.as_str().to_owned();
        self.write(move |tables, _| {
            let notices = &mut Arc::make_mut(&mut tables.registration).notices;
            let (counted, first) =
                count_within(notices.get_mut(&address), now, window_start, limit);
            if let Some(first) = first {
                notices.insert(address.clone(), first);
            }
            Ok(counted && limit > 0)
        })
    }

    async fn delete_pending_tokens(&self, id: Uuid, operation: TokenOperation) -> Result<()> {
        self.write(move |tables, _| {
            Arc::make_mut(&mut tables.registration)
                .tokens
                .retain(|_, token| {
                    token.pending_user_id != Some(id) || token.operation != operation
                });
            Ok(())
        })
    }

    async fn delete_pending_user_unless_completing(&self, id: Uuid) -> Result<()> {
        self.write(move |tables, _| {
            let pending = tables
                .registration
                .pending
                .get(&id)
                .ok_or_else(|| pending_not_found(id))?;
            let completing = pending.completion_process_id.is_some_and(|process| {
                tables
                    .processes
                    .status(process)
                    .is_some_and(|status| status != ProcessStatus::Aborted)
            });
            if completing {
                return Err(DomainError::Conflict(
                    "the registration is being completed".to_owned(),
                ));
            }
            let registration = Arc::make_mut(&mut tables.registration);
            registration
                .tokens
                .retain(|_, token| token.pending_user_id != Some(id));
            registration.pending.remove(&id);
            registration.resends.remove(&id);
            Ok(())
        })
    }

    async fn pending_user_holds(&self, name: &UserName, email: &Email) -> Result<bool> {
        Ok(self.read(|tables, _| {
            tables
                .registration
                .pending
                .values()
                .any(|user| &user.user_name == name || &user.email == email)
        }))
    }

    async fn list_pending_users(&self) -> Result<Vec<PendingUser>> {
        let mut users: Vec<PendingUser> =
            self.read(|tables, _| tables.registration.pending.values().cloned().collect());
        users.sort_by(|a, b| a.user_name.cmp(&b.user_name));
        Ok(users)
    }

    async fn confirm_pending_email(&self, id: Uuid, at: DateTime<Utc>) -> Result<()> {
        self.write(move |tables, _| {
            let user = Arc::make_mut(&mut tables.registration)
                .pending
                .get_mut(&id)
                .ok_or_else(|| pending_not_found(id))?;
            user.email_confirmed_at = Some(at);
            Ok(())
        })
    }

    async fn delete_pending_user(&self, id: Uuid) -> Result<()> {
        self.write(move |tables, _| {
            let registration = Arc::make_mut(&mut tables.registration);
            registration
                .tokens
                .retain(|_, token| token.pending_user_id != Some(id));
            registration.resends.remove(&id);
            registration
                .pending
                .remove(&id)
                .map(drop)
                .ok_or_else(|| pending_not_found(id))
        })
    }

    async fn create_registration_token(&self, token: &RegistrationToken) -> Result<()> {
        let token = token.clone();
        self.write(move |tables, _| create_token(tables, &token))
    }

    async fn registration_token(&self, id: Uuid) -> Result<RegistrationToken> {
        self.read(|tables, _| tables.registration.tokens.get(&id).cloned())
            .ok_or_else(|| DomainError::not_found("token", id))
    }

    async fn tokens_of_pending_user(&self, id: Uuid) -> Result<Vec<RegistrationToken>> {
        Ok(oldest_first(self.read(|tables, _| {
            tables
                .registration
                .tokens
                .values()
                .filter(|token| token.pending_user_id == Some(id))
                .cloned()
                .collect()
        })))
    }

    async fn terms_tokens_of_user(&self, user_id: Uuid) -> Result<Vec<RegistrationToken>> {
        Ok(oldest_first(self.read(|tables, _| {
            tables
                .registration
                .tokens
                .values()
                .filter(|token| {
                    token.user_id == Some(user_id)
                        && token.operation == TokenOperation::AcceptGroupTerms
                })
                .cloned()
                .collect()
        })))
    }

    async fn use_registration_token(&self, id: Uuid) -> Result<()> {
        self.write(move |tables, _| {
            if !tables.registration.tokens.contains_key(&id) {
                return Err(DomainError::not_found("token", id));
            }
            Arc::make_mut(&mut tables.registration).tokens.remove(&id);
            Ok(())
        })
    }

    async fn delete_terms_tokens(&self, user_id: Uuid, group_id: Uuid) -> Result<()> {
        self.write(move |tables, _| {
            Arc::make_mut(&mut tables.registration)
                .tokens
                .retain(|_, token| {
                    !(token.user_id == Some(user_id)
                        && token.group_id == Some(group_id)
                        && token.operation == TokenOperation::AcceptGroupTerms)
                });
            Ok(())
        })
    }

    async fn delete_user_tokens(&self, user_id: Uuid, operation: TokenOperation) -> Result<()> {
        self.write(move |tables, _| {
            Arc::make_mut(&mut tables.registration)
                .tokens
                .retain(|_, token| token.user_id != Some(user_id) || token.operation != operation);
            Ok(())
        })
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64> {
        self.write(move |tables, _| {
            let registration = Arc::make_mut(&mut tables.registration);
            registration
                .tokens
                .retain(|_, token| token.expires_at > now);
            let before = registration.pending.len();
            let tokens = &registration.tokens;
            registration.pending.retain(|id, pending| {
                pending.completion_process_id.is_some()
                    || tokens
                        .values()
                        .any(|token| token.pending_user_id == Some(*id))
            });
            let pending = &registration.pending;
            registration
                .resends
                .retain(|id, _| pending.contains_key(id));
            Ok((before - registration.pending.len()) as u64)
        })
    }

    async fn store_credentials(
        &self,
        user_id: Uuid,
        password_hash: &str,
        _at: DateTime<Utc>,
    ) -> Result<()> {
        let password_hash = password_hash.to_owned();
        self.write(move |tables, _| {
            if !tables.subscriptions.contains(user_id) {
                return Err(DomainError::Conflict(MISSING_REFERENCE.to_owned()));
            }
            Arc::make_mut(&mut tables.registration)
                .credentials
                .insert(user_id, password_hash.clone());
            Ok(())
        })
    }

    async fn credentials(&self, user_id: Uuid) -> Result<Option<String>> {
        Ok(self.read(|tables, _| tables.registration.credentials.get(&user_id).cloned()))
    }

    async fn enqueue(&self, message: &OutboxMessage) -> Result<()> {
        let message = message.clone();
        self.write(move |tables, _| {
            let registration = Arc::make_mut(&mut tables.registration);
            if registration.outbox.contains_key(&message.id) {
                return Err(DomainError::Conflict(DUPLICATE.to_owned()));
            }
            registration.outbox.insert(message.id, message.clone());
            Ok(())
        })
    }

    async fn due_messages(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<OutboxMessage>> {
        let mut due: Vec<OutboxMessage> = self.read(|tables, _| {
            tables
                .registration
                .outbox
                .values()
                .filter(|message| message.next_attempt_at.is_some_and(|at| at <= now))
                .cloned()
                .collect()
        });
        due.sort_by_key(|message| (message.next_attempt_at, message.id));
        due.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(due)
    }

    async fn claim_message(
        &self,
        id: Uuid,
        seen: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        self.write(move |tables, _| {
            let due = tables
                .registration
                .outbox
                .get(&id)
                .is_some_and(|message| message.next_attempt_at == Some(seen));
            if due
                && let Some(message) = Arc::make_mut(&mut tables.registration).outbox.get_mut(&id)
            {
                message.next_attempt_at = Some(until);
            }
            Ok(due)
        })
    }

    async fn record_attempt(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        error: Option<&str>,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let error = error.map(str::to_owned);
        self.write(move |tables, _| {
            let message = Arc::make_mut(&mut tables.registration)
                .outbox
                .get_mut(&id)
                .ok_or_else(|| DomainError::not_found("outbox message", id))?;
            message.attempts = message.attempts.saturating_add(1);
            message.next_attempt_at = next_attempt_at;
            message.delivered_at = error.is_none().then_some(at);
            message.last_error = error.clone();
            Ok(())
        })
    }

    async fn list_messages(&self) -> Result<Vec<OutboxMessage>> {
        let mut messages: Vec<OutboxMessage> =
            self.read(|tables, _| tables.registration.outbox.values().cloned().collect());
        messages.sort_by_key(|message| (message.created_at, message.id));
        Ok(messages)
    }

    async fn forget_done_messages(&self, before: DateTime<Utc>) -> Result<u64> {
        let purged: serde_json::Value = serde_json::from_str(PURGED_PAYLOAD)
            .map_err(|error| DomainError::Internal(error.to_string()))?;
        self.write(move |tables, _| {
            let mut count = 0;
            for message in Arc::make_mut(&mut tables.registration).outbox.values_mut() {
                let done = message.delivered_at.is_some() || message.next_attempt_at.is_none();
                if done && message.created_at < before && message.payload != purged {
                    message.payload = purged.clone();
                    count += 1;
                }
            }
            Ok(count)
        })
    }

    async fn outbox_backlog(&self) -> Result<OutboxBacklog> {
        Ok(self.read(|tables, _| {
            let undelivered = || {
                tables
                    .registration
                    .outbox
                    .values()
                    .filter(|message| message.delivered_at.is_none())
            };
            OutboxBacklog {
                waiting: undelivered()
                    .filter(|message| message.next_attempt_at.is_some())
                    .count() as u64,
                failed: undelivered()
                    .filter(|message| message.next_attempt_at.is_none())
                    .count() as u64,
            }
        }))
    }
}
