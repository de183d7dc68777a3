//! API tokens in memory: listed oldest first, revoked once.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::auth::{ApiToken, TokenRepository};
use crate::error::{DomainError, Result};

use super::{Access, DUPLICATE};

/// The tokens, by id.
#[derive(Debug, Clone, Default)]
pub(super) struct Tokens {
    rows: BTreeMap<Uuid, ApiToken>,
}

#[async_trait]
impl<T: Access> TokenRepository for T {
    async fn create_token(&self, token: &ApiToken) -> Result<()> {
        let token = token.clone();
        self.write(move |tables, _| {
            let tokens = Arc::make_mut(&mut tables.tokens);
            if tokens.rows.contains_key(&token.id) {
                return Err(DomainError::Conflict(DUPLICATE.to_owned()));
            }
            tokens.rows.insert(token.id, token.clone());
            Ok(())
        })
    }

    async fn token(&self, id: Uuid) -> Result<ApiToken> {
        self.read(|tables, _| tables.tokens.rows.get(&id).cloned())
            .ok_or_else(|| DomainError::not_found("token", id))
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        let mut tokens: Vec<ApiToken> =
            self.read(|tables, _| tables.tokens.rows.values().cloned().collect());
        tokens.sort_by_key(|token| (token.created_at, token.id));
        Ok(tokens)
    }

    async fn tokens_of(&self, user_id: Uuid) -> Result<Vec<ApiToken>> {
        let mut tokens = self.list_tokens().await?;
        tokens.retain(|token| token.user_id == Some(user_id));
        Ok(tokens)
    }

    async fn revoke_token(&self, id: Uuid, now: DateTime<Utc>) -> Result<()> {
        self.write(move |tables, _| {
            let tokens = Arc::make_mut(&mut tables.tokens);
            let token = tokens
                .rows
                .get_mut(&id)
                .ok_or_else(|| DomainError::not_found("token", id))?;
            if token.revoked_at.is_none() {
                token.revoked_at = Some(now);
            }
            Ok(())
        })
    }
}
