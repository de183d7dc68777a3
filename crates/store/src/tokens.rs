//! API tokens.

use async_trait::async_trait;
use cadre_domain::{ApiToken, DomainError, Result, TokenRepository};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::entities::api_tokens;
use crate::{Conn, Repo, storage_error};

fn to_domain(row: api_tokens::Model) -> Result<ApiToken> {
    Ok(ApiToken {
        id: row.id,
        name: row.name,
        role: row.role.parse()?,
        user_id: row.user_id,
        secret_hash: row.secret_hash,
        created_by: row.created_by,
        created_at: row.created_at.to_utc(),
        revoked_at: row.revoked_at.map(|at| at.to_utc()),
        expires_at: row.expires_at.map(|at| at.to_utc()),
    })
}

#[async_trait]
impl<C: Conn> TokenRepository for Repo<C> {
    async fn create_token(&self, token: &ApiToken) -> Result<()> {
        api_tokens::Entity::insert(api_tokens::ActiveModel {
            id: Set(token.id),
            name: Set(token.name.clone()),
            role: Set(token.role.as_str().to_owned()),
            user_id: Set(token.user_id),
            secret_hash: Set(token.secret_hash.clone()),
            created_by: Set(token.created_by.clone()),
            created_at: Set(token.created_at.fixed_offset()),
            revoked_at: Set(token.revoked_at.map(|at| at.fixed_offset())),
            expires_at: Set(token.expires_at.map(|at| at.fixed_offset())),
        })
        .exec_without_returning(&self.conn)
        .await
        .map_err(storage_error)?;
        Ok(())
    }

    async fn token(&self, id: Uuid) -> Result<ApiToken> {
        api_tokens::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .map_err(storage_error)?
            .ok_or_else(|| DomainError::not_found("token", id))
            .and_then(to_domain)
    }

    async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        api_tokens::Entity::find()
            .order_by_asc(api_tokens::Column::CreatedAt)
            .order_by_asc(api_tokens::Column::Id)
            .all(&self.conn)
            .await
            .map_err(storage_error)?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    async fn tokens_of(&self, user_id: Uuid) -> Result<Vec<ApiToken>> {
        api_tokens::Entity::find()
            .filter(api_tokens::Column::UserId.eq(user_id))
            .order_by_asc(api_tokens::Column::CreatedAt)
            .order_by_asc(api_tokens::Column::Id)
            .all(&self.conn)
            .await
            .map_err(storage_error)?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    async fn revoke_token(&self, id: Uuid, now: DateTime<Utc>) -> Result<()> {
        self.token(id).await?;
        api_tokens::Entity::update_many()
            .col_expr(
                api_tokens::Column::RevokedAt,
                sea_orm::sea_query::Expr::value(now.fixed_offset()),
            )
            .filter(api_tokens::Column::Id.eq(id))
            .filter(api_tokens::Column::RevokedAt.is_null())
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        Ok(())
    }
}
