//! Outbound targets: connection and mapping as JSON text, the credential as the sealed bytes
//! the server hands over; and the states of pushes to them.

use async_trait::async_trait;
use cadre_domain::outbound::PushState;
use cadre_domain::{
    DomainError, Name, OutboundTarget, PushStateRepository, Result, TargetRepository, identity_key,
};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use crate::entities::{outbound_targets, push_states};
use crate::{Conn, Repo, storage_error};

/// A value as its JSON text.
fn to_text(value: &impl Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|error| DomainError::Storage(error.to_string()))
}

/// A value from its JSON text, or from a bare wire string (`mode`, `deprovision`).
fn from_text<T: DeserializeOwned>(text: &str, bare: bool) -> Result<T> {
    let parsed = if bare {
        serde_json::from_value(Value::String(text.to_owned()))
    } else {
        serde_json::from_str(text)
    };
    parsed.map_err(|error| DomainError::Storage(format!("a stored target is invalid: {error}")))
}

/// A wire string of a unit enum (`"paused"`).
fn bare(value: &impl Serialize) -> Result<String> {
    match serde_json::to_value(value) {
        Ok(Value::String(text)) => Ok(text),
        _ => Err(DomainError::Storage("not a wire string".to_owned())),
    }
}

fn to_domain(row: outbound_targets::Model) -> Result<OutboundTarget> {
    Ok(OutboundTarget {
        id: row.id,
        name: Name::parse(&row.name)?,
        connection: from_text(&row.connection, false)?,
        mapping: from_text(&row.mapping, false)?,
        mode: from_text(&row.mode, true)?,
        deprovision: from_text(&row.deprovision, true)?,
        sealed_secret: row.sealed_secret,
        created_by: row.created_by,
        created_at: row.created_at.to_utc(),
        updated_at: row.updated_at.to_utc(),
    })
}

fn to_row(target: &OutboundTarget) -> Result<outbound_targets::ActiveModel> {
    Ok(outbound_targets::ActiveModel {
        id: Set(target.id),
        name: Set(target.name.to_string()),
        name_key: Set(identity_key(target.name.as_str())),
        connection: Set(to_text(&target.connection)?),
        mapping: Set(to_text(&target.mapping)?),
        mode: Set(bare(&target.mode)?),
        deprovision: Set(bare(&target.deprovision)?),
        sealed_secret: Set(target.sealed_secret.clone()),
        created_by: Set(target.created_by.clone()),
        created_at: Set(target.created_at.fixed_offset()),
        updated_at: Set(target.updated_at.fixed_offset()),
    })
}

#[async_trait]
impl<C: Conn> TargetRepository for Repo<C> {
    async fn create_target(&self, target: &OutboundTarget) -> Result<()> {
        outbound_targets::Entity::insert(to_row(target)?)
            .exec_without_returning(&self.conn)
            .await
            .map_err(storage_error)?;
        Ok(())
    }

    async fn target(&self, id: Uuid) -> Result<OutboundTarget> {
        outbound_targets::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .map_err(storage_error)?
            .ok_or_else(|| DomainError::not_found("target", id))
            .and_then(to_domain)
    }

    async fn list_targets(&self) -> Result<Vec<OutboundTarget>> {
        outbound_targets::Entity::find()
            .order_by_asc(outbound_targets::Column::NameKey)
            .order_by_asc(outbound_targets::Column::Id)
            .all(&self.conn)
            .await
            .map_err(storage_error)?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    async fn save_target(&self, target: &OutboundTarget) -> Result<()> {
        let updated = outbound_targets::Entity::update(to_row(target)?)
            .exec(&self.conn)
            .await;
        match updated {
            Ok(_) => Ok(()),
            Err(sea_orm::DbErr::RecordNotUpdated) => {
                Err(DomainError::not_found("target", target.id))
            }
            Err(error) => Err(storage_error(error)),
        }
    }

    async fn delete_target(&self, id: Uuid) -> Result<()> {
        let deleted = outbound_targets::Entity::delete_by_id(id)
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        if deleted.rows_affected == 0 {
            return Err(DomainError::not_found("target", id));
        }
        Ok(())
    }
}

fn state_to_domain(row: push_states::Model) -> PushState {
    PushState {
        target_id: row.target_id,
        subscription_id: row.subscription_id,
        remote_id: row.remote_id,
        fingerprint: row.fingerprint,
        pushed_at: row.pushed_at.map(|at| at.to_utc()),
        last_error: row.last_error,
        failed_at: row.failed_at.map(|at| at.to_utc()),
    }
}

fn state_row(state: &PushState) -> push_states::ActiveModel {
    push_states::ActiveModel {
        target_id: Set(state.target_id),
        subscription_id: Set(state.subscription_id),
        remote_id: Set(state.remote_id.clone()),
        fingerprint: Set(state.fingerprint.clone()),
        pushed_at: Set(state.pushed_at.map(|at| at.fixed_offset())),
        last_error: Set(state.last_error.clone()),
        failed_at: Set(state.failed_at.map(|at| at.fixed_offset())),
    }
}

/// The push states `query` selects.
async fn states(
    query: sea_orm::Select<push_states::Entity>,
    conn: &impl Conn,
) -> Result<Vec<PushState>> {
    Ok(query
        .all(conn)
        .await
        .map_err(storage_error)?
        .into_iter()
        .map(state_to_domain)
        .collect())
}

#[async_trait]
impl<C: Conn> PushStateRepository for Repo<C> {
    async fn push_states_of(&self, subscription_id: Uuid) -> Result<Vec<PushState>> {
        let query = push_states::Entity::find()
            .filter(push_states::Column::SubscriptionId.eq(subscription_id))
            .order_by_asc(push_states::Column::TargetId);
        states(query, &self.conn).await
    }

    async fn push_states_on(
        &self,
        target_id: Uuid,
        subscription_ids: &[Uuid],
    ) -> Result<Vec<PushState>> {
        let mut found = Vec::with_capacity(subscription_ids.len());
        // Bounded statements: SQLite takes at most 32,766 parameters.
        for chunk in subscription_ids.chunks(1000) {
            let query = push_states::Entity::find()
                .filter(push_states::Column::TargetId.eq(target_id))
                .filter(push_states::Column::SubscriptionId.is_in(chunk.iter().copied()));
            found.extend(states(query, &self.conn).await?);
        }
        Ok(found)
    }

    async fn target_push_states(&self, target_id: Uuid) -> Result<Vec<PushState>> {
        let query = push_states::Entity::find()
            .filter(push_states::Column::TargetId.eq(target_id))
            .order_by_asc(push_states::Column::SubscriptionId);
        states(query, &self.conn).await
    }

    async fn save_push_state(&self, state: &PushState) -> Result<()> {
        self.save_push_states(std::slice::from_ref(state)).await
    }

    async fn save_push_states(&self, states: &[PushState]) -> Result<()> {
        // Seven values a row: 1,000 rows stay below SQLite's 32,766 parameters.
        for chunk in states.chunks(1000) {
            push_states::Entity::insert_many(chunk.iter().map(state_row))
                .on_conflict(
                    OnConflict::columns([
                        push_states::Column::TargetId,
                        push_states::Column::SubscriptionId,
                    ])
                    .update_columns([
                        push_states::Column::RemoteId,
                        push_states::Column::Fingerprint,
                        push_states::Column::PushedAt,
                        push_states::Column::LastError,
                        push_states::Column::FailedAt,
                    ])
                    .to_owned(),
                )
                .exec_without_returning(&self.conn)
                .await
                .map_err(storage_error)?;
        }
        Ok(())
    }

    async fn record_push_failure(
        &self,
        target_id: Uuid,
        subscription_ids: &[Uuid],
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        for chunk in subscription_ids.chunks(1000) {
            let rows = chunk.iter().map(|subscription_id| {
                state_row(&PushState {
                    target_id,
                    subscription_id: *subscription_id,
                    remote_id: None,
                    fingerprint: None,
                    pushed_at: None,
                    last_error: Some(error.to_owned()),
                    failed_at: Some(at),
                })
            });
            push_states::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::columns([
                        push_states::Column::TargetId,
                        push_states::Column::SubscriptionId,
                    ])
                    .update_columns([
                        push_states::Column::LastError,
                        push_states::Column::FailedAt,
                    ])
                    .to_owned(),
                )
                .exec_without_returning(&self.conn)
                .await
                .map_err(storage_error)?;
        }
        Ok(())
    }

    async fn delete_push_state(&self, target_id: Uuid, subscription_id: Uuid) -> Result<()> {
        push_states::Entity::delete_by_id((target_id, subscription_id))
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        Ok(())
    }
}
