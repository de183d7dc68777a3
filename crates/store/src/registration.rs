//! Registration: pending users, registration tokens, credentials and the outbox.

use async_trait::async_trait;
use cadre_domain::{
    DomainError, Email, OutboxBacklog, OutboxMessage, PURGED_PAYLOAD, PendingUser, ProcessStatus,
    RegistrationRepository, RegistrationToken, Result, TokenOperation, UserName,
};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionSession,
};
use uuid::Uuid;

use crate::entities::{
    outbox, pending_users, processes, registration_notices as notices,
    registration_tokens as tokens, user_credentials,
};
use crate::{Conn, Repo, storage_error};

fn to_pending(row: pending_users::Model) -> Result<PendingUser> {
    Ok(PendingUser {
        id: row.id,
        user_name: UserName::parse(&row.user_name)?,
        email: Email::parse(&row.email)?,
        password_hash: row.password_hash,
        registered_at: row.registered_at.to_utc(),
        email_confirmed_at: row.email_confirmed_at.map(|at| at.to_utc()),
        completion_process_id: row.completion_process_id,
    })
}

fn to_token(row: tokens::Model) -> Result<RegistrationToken> {
    Ok(RegistrationToken {
        id: row.id,
        secret_hash: row.secret_hash,
        operation: row.operation.parse()?,
        pending_user_id: row.pending_user_id,
        user_id: row.user_id,
        group_id: row.group_id,
        email: row.email.as_deref().map(Email::parse).transpose()?,
        created_at: row.created_at.to_utc(),
        expires_at: row.expires_at.to_utc(),
    })
}

fn to_message(row: outbox::Model) -> Result<OutboxMessage> {
    Ok(OutboxMessage {
        id: row.id,
        kind: row.kind.parse()?,
        payload: serde_json::from_str(&row.payload).map_err(|error| {
            DomainError::Storage(format!("an outbox payload is not JSON: {error}"))
        })?,
        created_at: row.created_at.to_utc(),
        attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
        next_attempt_at: row.next_attempt_at.map(|at| at.to_utc()),
        delivered_at: row.delivered_at.map(|at| at.to_utc()),
        last_error: row.last_error,
    })
}

fn pending_not_found(what: impl ToString) -> DomainError {
    DomainError::NotFound {
        kind: "pending user",
        id: what.to_string(),
    }
}

async fn purge(conn: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64> {
    tokens::Entity::delete_many()
        .filter(tokens::Column::ExpiresAt.lte(now.fixed_offset()))
        .exec(conn)
        .await
        .map_err(storage_error)?;
    let with_tokens = Query::select()
        .column(tokens::Column::PendingUserId)
        .from(tokens::Entity)
        .and_where(tokens::Column::PendingUserId.is_not_null())
        .take();
    let purged = pending_users::Entity::delete_many()
        .filter(pending_users::Column::Id.not_in_subquery(with_tokens))
        .filter(pending_users::Column::CompletionProcessId.is_null())
        .exec(conn)
        .await
        .map_err(storage_error)?;
    Ok(purged.rows_affected)
}

/// Deletes pending user `id` and its tokens if its completion has not started or its
/// completing process is aborted (or gone); a conflict if it is completing, not found if missing.
async fn delete_unless_completing(conn: &impl ConnectionTrait, id: Uuid) -> Result<()> {
    let live_processes = Query::select()
        .column(processes::Column::Id)
        .from(processes::Entity)
        .and_where(processes::Column::Status.ne(ProcessStatus::Aborted.as_str()))
        .take();
    let deletable = || {
        Condition::all().add(pending_users::Column::Id.eq(id)).add(
            Condition::any()
                .add(pending_users::Column::CompletionProcessId.is_null())
                .add(
                    pending_users::Column::CompletionProcessId
                        .not_in_subquery(live_processes.clone()),
                ),
        )
    };
    // Tokens go first: SQLite enforces the cascade only with foreign keys on.
    let deletable_ids = Query::select()
        .column(pending_users::Column::Id)
        .from(pending_users::Entity)
        .cond_where(deletable())
        .take();
    tokens::Entity::delete_many()
        .filter(tokens::Column::PendingUserId.in_subquery(deletable_ids))
        .exec(conn)
        .await
        .map_err(storage_error)?;
    let deleted = pending_users::Entity::delete_many()
        .filter(deletable())
        .exec(conn)
        .await
        .map_err(storage_error)?;
    if deleted.rows_affected == 1 {
        return Ok(());
    }
    match pending_users::Entity::find_by_id(id)
        .one(conn)
        .await
        .map_err(storage_error)?
    {
        Some(_) => Err(DomainError::Conflict(
            "the registration is being completed".to_owned(),
        )),
        None => Err(pending_not_found(id)),
    }
}

#[async_trait]
impl<C: Conn> RegistrationRepository for Repo<C> {
    async fn create_pending_user(&self, user: &PendingUser) -> Result<()> {
        pending_users::Entity::insert(pending_users::ActiveModel {
            id: Set(user.id),
            user_name: Set(user.user_name.as_str().to_owned()),
            email: Set(user.email.as_str().to_owned()),
            password_hash: Set(user.password_hash.clone()),
            registered_at: Set(user.registered_at.fixed_offset()),
            email_confirmed_at: Set(user.email_confirmed_at.map(|at| at.fixed_offset())),
            completion_process_id: Set(user.completion_process_id),
            resends: Set(0),
            resends_since: Set(None),
        })
        .exec_without_returning(&self.conn)
        .await
        .map_err(storage_error)?;
        Ok(())
    }

    async fn pending_user(&self, id: Uuid) -> Result<PendingUser> {
        pending_users::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .map_err(storage_error)?
            .ok_or_else(|| pending_not_found(id))
            .and_then(to_pending)
    }

    async fn pending_user_by_name(&self, name: &UserName) -> Result<PendingUser> {
        pending_users::Entity::find()
            .filter(pending_users::Column::UserName.eq(name.as_str()))
            .one(&self.conn)
            .await
            .map_err(storage_error)?
            .ok_or_else(|| pending_not_found(name))
            .and_then(to_pending)
    }

    async fn pending_user_by_email(&self, email: &Email) -> Result<PendingUser> {
        pending_users::Entity::find()
            .filter(pending_users::Column::Email.eq(email.as_str()))
            .one(&self.conn)
            .await
            .map_err(storage_error)?
            .ok_or_else(|| pending_not_found(email))
            .and_then(to_pending)
    }

    async fn pending_user_holds(&self, name: &UserName, email: &Email) -> Result<bool> {
        let found = pending_users::Entity::find()
            .filter(
                Condition::any()
                    .add(pending_users::Column::UserName.eq(name.as_str()))
                    .add(pending_users::Column::Email.eq(email.as_str())),
            )
            .limit(1)
            .all(&self.conn)
            .await
            .map_err(storage_error)?;
        Ok(!found.is_empty())
    }

    async fn list_pending_users(&self) -> Result<Vec<PendingUser>> {
        pending_users::Entity::find()
            .order_by_asc(pending_users::Column::UserName)
            .all(&self.conn)
            .await
            .map_err(storage_error)?
            .into_iter()
            .map(to_pending)
            .collect()
    }

    async fn confirm_pending_email(&self, id: Uuid, at: DateTime<Utc>) -> Result<()> {
        let updated = pending_users::Entity::update_many()
            .col_expr(
                pending_users::Column::EmailConfirmedAt,
                Expr::value(at.fixed_offset()),
            )
            .filter(pending_users::Column::Id.eq(id))
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        if updated.rows_affected == 0 {
            return Err(pending_not_found(id));
        }
        Ok(())
    }

    async fn begin_completion(&self, id: Uuid, process_id: Uuid) -> Result<()> {
        let updated = pending_users::Entity::update_many()
            .col_expr(
                pending_users::Column::CompletionProcessId,
                Expr::value(process_id),
            )
            .filter(pending_users::Column::Id.eq(id))
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        if updated.rows_affected == 0 {
            return Err(pending_not_found(id));
        }
        Ok(())
    }

    async fn count_resend(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
        limit: u32,
    ) -> Result<bool> {
        let stale = || {
            Condition::any()
                .add(pending_users::Column::ResendsSince.is_null())
                .add(pending_users::Column::ResendsSince.lt(window_start.fixed_offset()))
        };
        let counted = pending_users::Entity::update_many()
            .col_expr(
                pending_users::Column::Resends,
                CaseStatement::new()
                    .case(stale(), Expr::value(1i64))
                    .finally(Expr::col(pending_users::Column::Resends).add(1))
                    .into(),
            )
            .col_expr(
                pending_users::Column::ResendsSince,
                CaseStatement::new()
                    .case(stale(), Expr::value(now.fixed_offset()))
                    .finally(Expr::col(pending_users::Column::ResendsSince))
                    .into(),
            )
            .filter(pending_users::Column::Id.eq(id))
            .filter(stale().add(pending_users::Column::Resends.lt(i64::from(limit))))
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        Ok(counted.rows_affected == 1)
    }

    async fn count_notice(
        &self,
        address: &Email,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
        limit: u32,
    ) -> Result<bool> {
        // Insert the first notice, or count one more on the stored row: restarting its window
        // when the window is over, and not at all (no row changes) when its budget is spent.
        let since = Expr::col((notices::Entity, notices::Column::Since));
        let sent = Expr::col((notices::Entity, notices::Column::Sent));
        let stale = since.clone().lt(window_start.fixed_offset());
        let upsert = OnConflict::column(notices::Column::Address)
            .value(
                notices::Column::Sent,
                CaseStatement::new()
                    .case(stale.clone(), Expr::value(1i64))
                    .finally(sent.clone().add(1)),
            )
            .value(
                notices::Column::Since,
                CaseStatement::new()
                    .case(stale.clone(), Expr::value(now.fixed_offset()))
                    .finally(since),
            )
            .action_and_where(stale.or(sent.lt(i64::from(limit))))
            .to_owned();
        let counted = notices::Entity::insert(notices::ActiveModel {
            address: Set(address.as_str().to_owned()),
            sent: Set(1),
            since: Set(now.fixed_offset()),
        })
        .on_conflict(upsert)
        .exec_without_returning(&self.conn)
        .await
        .map_err(storage_error)?;
        Ok(counted == 1 && limit > 0)
    }

    async fn delete_pending_tokens(&self, id: Uuid, operation: TokenOperation) -> Result<()> {
        tokens::Entity::delete_many()
            .filter(tokens::Column::PendingUserId.eq(id))
            .filter(tokens::Column::Operation.eq(operation.as_str()))
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        Ok(())
    }

    async fn delete_pending_user(&self, id: Uuid) -> Result<()> {
        // Tokens go first: SQLite enforces the cascade only with foreign keys on.
        tokens::Entity::delete_many()
            .filter(tokens::Column::PendingUserId.eq(id))
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        let deleted = pending_users::Entity::delete_by_id(id)
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        if deleted.rows_affected == 0 {
            return Err(pending_not_found(id));
        }
        Ok(())
    }

    async fn delete_pending_user_unless_completing(&self, id: Uuid) -> Result<()> {
        if C::IN_TRANSACTION {
            delete_unless_completing(&self.conn, id).await
        } else {
            let txn = self.conn.begin().await.map_err(storage_error)?;
            delete_unless_completing(&txn, id).await?;
            txn.commit().await.map_err(storage_error)
        }
    }

    async fn create_registration_token(&self, token: &RegistrationToken) -> Result<()> {
        tokens::Entity::insert(tokens::ActiveModel {
            id: Set(token.id),
            secret_hash: Set(token.secret_hash.clone()),
            operation: Set(token.operation.as_str().to_owned()),
            pending_user_id: Set(token.pending_user_id),
            user_id: Set(token.user_id),
            group_id: Set(token.group_id),
            email: Set(token.email.as_ref().map(|email| email.as_str().to_owned())),
            created_at: Set(token.created_at.fixed_offset()),
            expires_at: Set(token.expires_at.fixed_offset()),
        })
        .exec_without_returning(&self.conn)
        .await
        .map_err(storage_error)?;
        Ok(())
    }

    async fn registration_token(&self, id: Uuid) -> Result<RegistrationToken> {
        tokens::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .map_err(storage_error)?
            .ok_or_else(|| DomainError::not_found("token", id))
            .and_then(to_token)
    }

    async fn tokens_of_pending_user(&self, id: Uuid) -> Result<Vec<RegistrationToken>> {
        tokens::Entity::find()
            .filter(tokens::Column::PendingUserId.eq(id))
            .order_by_asc(tokens::Column::CreatedAt)
            .all(&self.conn)
            .await
            .map_err(storage_error)?
            .into_iter()
            .map(to_token)
            .collect()
    }

    async fn terms_tokens_of_user(&self, user_id: Uuid) -> Result<Vec<RegistrationToken>> {
        tokens::Entity::find()
            .filter(tokens::Column::UserId.eq(user_id))
            .filter(tokens::Column::Operation.eq(TokenOperation::AcceptGroupTerms.as_str()))
            .order_by_asc(tokens::Column::CreatedAt)
            .all(&self.conn)
            .await
            .map_err(storage_error)?
            .into_iter()
            .map(to_token)
            .collect()
    }

    async fn use_registration_token(&self, id: Uuid) -> Result<()> {
        let deleted = tokens::Entity::delete_by_id(id)
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        if deleted.rows_affected == 0 {
            return Err(DomainError::not_found("token", id));
        }
        Ok(())
    }

    async fn delete_terms_tokens(&self, user_id: Uuid, group_id: Uuid) -> Result<()> {
        tokens::Entity::delete_many()
            .filter(tokens::Column::UserId.eq(user_id))
            .filter(tokens::Column::GroupId.eq(group_id))
            .filter(tokens::Column::Operation.eq(TokenOperation::AcceptGroupTerms.as_str()))
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        Ok(())
    }

    async fn delete_user_tokens(&self, user_id: Uuid, operation: TokenOperation) -> Result<()> {
        tokens::Entity::delete_many()
            .filter(tokens::Column::UserId.eq(user_id))
            .filter(tokens::Column::Operation.eq(operation.as_str()))
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        Ok(())
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64> {
        if C::IN_TRANSACTION {
            purge(&self.conn, now).await
        } else {
            let txn = self.conn.begin().await.map_err(storage_error)?;
            let purged = purge(&txn, now).await?;
            txn.commit().await.map_err(storage_error)?;
            Ok(purged)
        }
    }

    async fn store_credentials(
        &self,
        user_id: Uuid,
        password_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        user_credentials::Entity::insert(user_credentials::ActiveModel {
            subscription_id: Set(user_id),
            password_hash: Set(password_hash.to_owned()),
            created_at: Set(at.fixed_offset()),
        })
        .on_conflict(
            OnConflict::column(user_credentials::Column::SubscriptionId)
                .update_columns([
                    user_credentials::Column::PasswordHash,
                    user_credentials::Column::CreatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&self.conn)
        .await
        .map_err(storage_error)?;
        Ok(())
    }

    async fn credentials(&self, user_id: Uuid) -> Result<Option<String>> {
        Ok(user_credentials::Entity::find_by_id(user_id)
            .one(&self.conn)
            .await
            .map_err(storage_error)?
            .map(|row| row.password_hash))
    }

    async fn enqueue(&self, message: &OutboxMessage) -> Result<()> {
        outbox::Entity::insert(outbox::ActiveModel {
            id: Set(message.id),
            kind: Set(message.kind.as_str().to_owned()),
            payload: Set(message.payload.to_string()),
            created_at: Set(message.created_at.fixed_offset()),
            attempts: Set(i64::from(message.attempts)),
            next_attempt_at: Set(message.next_attempt_at.map(|at| at.fixed_offset())),
            delivered_at: Set(message.delivered_at.map(|at| at.fixed_offset())),
            last_error: Set(message.last_error.clone()),
        })
        .exec_without_returning(&self.conn)
        .await
        .map_err(storage_error)?;
        Ok(())
    }

    async fn due_messages(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<OutboxMessage>> {
        outbox::Entity::find()
            .filter(outbox::Column::NextAttemptAt.lte(now.fixed_offset()))
            .order_by_asc(outbox::Column::NextAttemptAt)
            .order_by_asc(outbox::Column::Id)
            .limit(limit)
            .all(&self.conn)
            .await
            .map_err(storage_error)?
            .into_iter()
            .map(to_message)
            .collect()
    }

    async fn claim_message(
        &self,
        id: Uuid,
        seen: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let claimed = outbox::Entity::update_many()
            .col_expr(
                outbox::Column::NextAttemptAt,
                Expr::value(until.fixed_offset()),
            )
            .filter(outbox::Column::Id.eq(id))
            .filter(outbox::Column::NextAttemptAt.eq(seen.fixed_offset()))
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        Ok(claimed.rows_affected == 1)
    }

    async fn record_attempt(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        error: Option<&str>,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let delivered = error.is_none().then(|| at.fixed_offset());
        let updated = outbox::Entity::update_many()
            .col_expr(
                outbox::Column::Attempts,
                Expr::col(outbox::Column::Attempts).add(1),
            )
            .col_expr(
                outbox::Column::NextAttemptAt,
                Expr::value(next_attempt_at.map(|at| at.fixed_offset())),
            )
            .col_expr(outbox::Column::DeliveredAt, Expr::value(delivered))
            .col_expr(
                outbox::Column::LastError,
                Expr::value(error.map(str::to_owned)),
            )
            .filter(outbox::Column::Id.eq(id))
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        if updated.rows_affected == 0 {
            return Err(DomainError::not_found("outbox message", id));
        }
        Ok(())
    }

    async fn list_messages(&self) -> Result<Vec<OutboxMessage>> {
        outbox::Entity::find()
            .order_by_asc(outbox::Column::CreatedAt)
            .order_by_asc(outbox::Column::Id)
            .all(&self.conn)
            .await
            .map_err(storage_error)?
            .into_iter()
            .map(to_message)
            .collect()
    }

    async fn forget_done_messages(&self, before: DateTime<Utc>) -> Result<u64> {
        let done = Condition::any()
            .add(outbox::Column::DeliveredAt.is_not_null())
            .add(outbox::Column::NextAttemptAt.is_null());
        let forgotten = outbox::Entity::update_many()
            .col_expr(outbox::Column::Payload, Expr::value(PURGED_PAYLOAD))
            .filter(done)
            .filter(outbox::Column::CreatedAt.lt(before.fixed_offset()))
            .filter(outbox::Column::Payload.ne(PURGED_PAYLOAD))
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        Ok(forgotten.rows_affected)
    }

    async fn outbox_backlog(&self) -> Result<OutboxBacklog> {
        let undelivered = || outbox::Entity::find().filter(outbox::Column::DeliveredAt.is_null());
        let waiting = undelivered()
            .filter(outbox::Column::NextAttemptAt.is_not_null())
            .count(&self.conn)
            .await
            .map_err(storage_error)?;
        let failed = undelivered()
            .filter(outbox::Column::NextAttemptAt.is_null())
            .count(&self.conn)
            .await
            .map_err(storage_error)?;
        Ok(OutboxBacklog { waiting, failed })
    }
}
