//! The audit log: appended, listed newest first by id (UUID v7, so time order) from a cursor,
//! and purged by age. Nothing here updates an event.

use async_trait::async_trait;
use cadre_domain::{AuditEvent, AuditPage, AuditQuery, AuditRepository, Result};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::entities::audit_events;
use crate::{Conn, Repo, storage_error};

fn to_domain(row: audit_events::Model) -> Result<AuditEvent> {
    Ok(AuditEvent {
        id: row.id,
        at: row.at.to_utc(),
        actor: row.actor,
        actor_user_id: row.actor_user_id,
        client_addr: row.client_addr,
        action: row.action.parse()?,
        target: row.target,
        outcome: row.outcome.parse()?,
        detail: row.detail,
    })
}

#[async_trait]
impl<C: Conn> AuditRepository for Repo<C> {
    async fn record_audit(&self, event: &AuditEvent) -> Result<()> {
        audit_events::Entity::insert(audit_events::ActiveModel {
            id: Set(event.id),
            at: Set(event.at.fixed_offset()),
            actor: Set(event.actor.clone()),
            actor_user_id: Set(event.actor_user_id),
            client_addr: Set(event.client_addr.clone()),
            action: Set(event.action.as_str().to_owned()),
            target: Set(event.target.clone()),
            outcome: Set(event.outcome.as_str().to_owned()),
            detail: Set(event.detail.clone()),
        })
        .exec_without_returning(&self.conn)
        .await
        .map_err(storage_error)?;
        Ok(())
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<AuditPage> {
        let limit = query.limit.max(1);
        let mut select = audit_events::Entity::find();
        if let Some(action) = query.action {
            select = select.filter(audit_events::Column::Action.eq(action.as_str()));
        }
        if let Some(actor) = &query.actor {
            select = select.filter(audit_events::Column::Actor.eq(actor.as_str()));
        }
        if let Some(target) = &query.target {
            select = select.filter(audit_events::Column::Target.eq(target.as_str()));
        }
        if let Some(since) = query.since {
            select = select.filter(audit_events::Column::At.gte(since.fixed_offset()));
        }
        if let Some(until) = query.until {
            select = select.filter(audit_events::Column::At.lt(until.fixed_offset()));
        }
        if let Some(after) = query.after {
            select = select.filter(audit_events::Column::Id.lt(after));
        }
        let rows = select
            .order_by_desc(audit_events::Column::Id)
            .limit(limit.saturating_add(1))
            .all(&self.conn)
            .await
            .map_err(storage_error)?;
        let mut items = rows
            .into_iter()
            .map(to_domain)
            .collect::<Result<Vec<_>>>()?;
        let next = if items.len() as u64 > limit {
            items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            items.last().map(|event| event.id)
        } else {
            None
        };
        Ok(AuditPage { items, next })
    }

    async fn purge_audit_before(&self, at: DateTime<Utc>) -> Result<u64> {
        Ok(audit_events::Entity::delete_many()
            .filter(audit_events::Column::At.lt(at.fixed_offset()))
            .exec(&self.conn)
            .await
            .map_err(storage_error)?
            .rows_affected)
    }
}
