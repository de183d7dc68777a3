//! Accounts: sessions, sign-in failures, password reset links and user roles.

use async_trait::async_trait;
use cadre_domain::{
    AccountRepository, DomainError, LoginFailures, PasswordReset, Result, Role, Session,
};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::entities::{login_failures, password_resets, sessions, user_roles};
use crate::{Conn, Repo, storage_error};

fn session(row: sessions::Model) -> Session {
    Session {
        id: row.id,
        secret_hash: row.secret_hash,
        user_id: row.user_id,
        created_at: row.created_at.to_utc(),
        last_seen_at: row.last_seen_at.to_utc(),
        expires_at: row.expires_at.to_utc(),
    }
}

#[async_trait]
impl<C: Conn> AccountRepository for Repo<C> {
    async fn create_session(&self, session: &Session) -> Result<()> {
        sessions::Entity::insert(sessions::ActiveModel {
            id: Set(session.id),
            secret_hash: Set(session.secret_hash.clone()),
            user_id: Set(session.user_id),
            created_at: Set(session.created_at.fixed_offset()),
            last_seen_at: Set(session.last_seen_at.fixed_offset()),
            expires_at: Set(session.expires_at.fixed_offset()),
        })
        .exec_without_returning(&self.conn)
        .await
        .map_err(storage_error)?;
        Ok(())
    }

    async fn session(&self, id: Uuid) -> Result<Session> {
        sessions::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .map_err(storage_error)?
            .map(session)
            .ok_or_else(|| DomainError::not_found("session", id))
    }

    async fn touch_session(&self, id: Uuid, at: DateTime<Utc>) -> Result<()> {
        sessions::Entity::update_many()
            .col_expr(sessions::Column::LastSeenAt, Expr::value(at.fixed_offset()))
            .filter(sessions::Column::Id.eq(id))
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        Ok(())
    }

    async fn delete_session(&self, id: Uuid) -> Result<()> {
        sessions::Entity::delete_by_id(id)
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        Ok(())
    }

    async fn sessions_of(&self, user_id: Uuid) -> Result<Vec<Session>> {
        Ok(sessions::Entity::find()
            .filter(sessions::Column::UserId.eq(user_id))
            .order_by_asc(sessions::Column::CreatedAt)
            .order_by_asc(sessions::Column::Id)
            .all(&self.conn)
            .await
            .map_err(storage_error)?
            .into_iter()
            .map(session)
            .collect())
    }

    async fn delete_all_sessions(&self) -> Result<u64> {
        Ok(sessions::Entity::delete_many()
            .exec(&self.conn)
            .await
            .map_err(storage_error)?
            .rows_affected)
    }

    async fn delete_sessions_of(&self, user_id: Uuid, except: Option<Uuid>) -> Result<u64> {
        let mut delete =
            sessions::Entity::delete_many().filter(sessions::Column::UserId.eq(user_id));
        if let Some(except) = except {
            delete = delete.filter(sessions::Column::Id.ne(except));
        }
        Ok(delete
            .exec(&self.conn)
            .await
            .map_err(storage_error)?
            .rows_affected)
    }

    async fn delete_expired_sessions(
        &self,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> Result<u64> {
        Ok(sessions::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(sessions::Column::ExpiresAt.lte(now.fixed_offset()))
                    .add(sessions::Column::LastSeenAt.lt(idle_since.fixed_offset())),
            )
            .exec(&self.conn)
            .await
            .map_err(storage_error)?
            .rows_affected)
    }

    async fn login_failures(&self, user_id: Uuid) -> Result<Option<LoginFailures>> {
        login_failures::Entity::find_by_id(user_id)
            .one(&self.conn)
            .await
            .map_err(storage_error)?
            .map(|row| {
                Ok(LoginFailures {
                    failures: u32::try_from(row.failures)
                        .map_err(|_| DomainError::Storage(format!("{} failures", row.failures)))?,
                    last_failure_at: row.last_failure_at.to_utc(),
                    locked_until: row.locked_until.map(|at| at.to_utc()),
                })
            })
            .transpose()
    }

    async fn reserve_login_attempt(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
        max_failures: u32,
    ) -> Result<Option<u32>> {
        login_failures::Entity::insert(login_failures::ActiveModel {
            user_id: Set(user_id),
            failures: Set(0),
            last_failure_at: Set(now.fixed_offset()),
            locked_until: Set(None),
        })
        .on_conflict(
            OnConflict::column(login_failures::Column::UserId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.conn)
        .await
        .map_err(storage_error)?;
        // One statement decides and counts, so concurrent attempts cannot both take the last
        // allowed failure (PostgreSQL re-checks the condition on the row it waited for).
        let counted = login_failures::Entity::update_many()
            .col_expr(
                login_failures::Column::Failures,
                Expr::col(login_failures::Column::Failures).add(1),
            )
            .col_expr(
                login_failures::Column::LastFailureAt,
                Expr::value(now.fixed_offset()),
            )
            .filter(login_failures::Column::UserId.eq(user_id))
            .filter(login_failures::Column::Failures.lt(i64::from(max_failures)))
            .filter(
                Condition::any()
                    .add(login_failures::Column::LockedUntil.is_null())
                    .add(login_failures::Column::LockedUntil.lte(now.fixed_offset())),
            )
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        if counted.rows_affected == 0 {
            return Ok(None);
        }
        Ok(self
            .login_failures(user_id)
            .await?
            .map(|failures| failures.failures))
    }

    async fn lock_login(&self, user_id: Uuid, until: DateTime<Utc>) -> Result<()> {
        login_failures::Entity::update_many()
            .col_expr(
                login_failures::Column::LockedUntil,
                Expr::value(until.fixed_offset()),
            )
            .filter(login_failures::Column::UserId.eq(user_id))
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        Ok(())
    }

    async fn clear_login_failures(&self, user_id: Uuid) -> Result<()> {
        login_failures::Entity::delete_by_id(user_id)
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        Ok(())
    }

    async fn create_password_reset(&self, reset: &PasswordReset) -> Result<()> {
        password_resets::Entity::delete_many()
            .filter(password_resets::Column::UserId.eq(reset.user_id))
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        password_resets::Entity::insert(password_resets::ActiveModel {
            id: Set(reset.id),
            secret_hash: Set(reset.secret_hash.clone()),
            user_id: Set(reset.user_id),
            created_at: Set(reset.created_at.fixed_offset()),
            expires_at: Set(reset.expires_at.fixed_offset()),
        })
        .exec_without_returning(&self.conn)
        .await
        .map_err(storage_error)?;
        Ok(())
    }

    async fn password_reset(&self, id: Uuid) -> Result<PasswordReset> {
        password_resets::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .map_err(storage_error)?
            .map(|row| PasswordReset {
                id: row.id,
                secret_hash: row.secret_hash,
                user_id: row.user_id,
                created_at: row.created_at.to_utc(),
                expires_at: row.expires_at.to_utc(),
            })
            .ok_or_else(|| DomainError::not_found("password reset", id))
    }

    async fn use_password_reset(&self, id: Uuid) -> Result<()> {
        let deleted = password_resets::Entity::delete_by_id(id)
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        if deleted.rows_affected == 0 {
            return Err(DomainError::not_found("password reset", id));
        }
        Ok(())
    }

    async fn roles(&self, user_id: Uuid) -> Result<Vec<Role>> {
        user_roles::Entity::find()
            .filter(user_roles::Column::UserId.eq(user_id))
            .order_by_asc(user_roles::Column::Role)
            .all(&self.conn)
            .await
            .map_err(storage_error)?
            .into_iter()
            .map(|row| row.role.parse())
            .collect()
    }

    async fn holders_of(&self, role: Role) -> Result<Vec<Uuid>> {
        Ok(user_roles::Entity::find()
            .filter(user_roles::Column::Role.eq(role.as_str()))
            .order_by_asc(user_roles::Column::UserId)
            .all(&self.conn)
            .await
            .map_err(storage_error)?
            .into_iter()
            .map(|row| row.user_id)
            .collect())
    }

    async fn set_roles(&self, user_id: Uuid, roles: &[Role]) -> Result<()> {
        user_roles::Entity::delete_many()
            .filter(user_roles::Column::UserId.eq(user_id))
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        let mut rows: Vec<_> = roles
            .iter()
            .filter(|role| **role != Role::User)
            .map(|role| role.as_str())
            .collect();
        rows.sort_unstable();
        rows.dedup();
        if rows.is_empty() {
            return Ok(());
        }
        user_roles::Entity::insert_many(rows.into_iter().map(|role| user_roles::ActiveModel {
            user_id: Set(user_id),
            role: Set(role.to_owned()),
        }))
        .exec_without_returning(&self.conn)
        .await
        .map_err(storage_error)?;
        Ok(())
    }
}
