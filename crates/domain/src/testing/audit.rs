//! The audit log in memory: events by id (ids are UUID v7, so id order is time order), listed
//! newest first from a cursor, never changed, removed only by age.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::{AuditEvent, AuditPage, AuditQuery, AuditRepository};
use crate::error::{DomainError, Result};

use super::{Access, DUPLICATE};

/// The events, by id.
#[derive(Debug, Clone, Default)]
pub(super) struct Audit {
    events: BTreeMap<Uuid, AuditEvent>,
}

#[async_trait]
impl<T: Access> AuditRepository for T {
    async fn record_audit(&self, event: &AuditEvent) -> Result<()> {
        let event = event.clone();
        self.write(move |tables, _| {
            let audit = Arc::make_mut(&mut tables.audit);
            if audit.events.contains_key(&event.id) {
                return Err(DomainError::Conflict(DUPLICATE.to_owned()));
            }
            audit.events.insert(event.id, event.clone());
            Ok(())
        })
    }

    async fn list_audit(&self, query: &AuditQuery) -> Result<AuditPage> {
        let limit = usize::try_from(query.limit.max(1)).unwrap_or(usize::MAX);
        let mut items: Vec<AuditEvent> = self.read(|tables, _| {
            tables
                .audit
                .events
                .values()
                .rev()
                .filter(|event| query.after.is_none_or(|after| event.id < after))
                .filter(|event| query.matches(event))
                .take(limit.saturating_add(1))
                .cloned()
                .collect()
        });
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|event| event.id)
        } else {
            None
        };
        Ok(AuditPage { items, next })
    }

    async fn purge_audit_before(&self, at: DateTime<Utc>) -> Result<u64> {
        self.write(move |tables, _| {
            let events = &mut Arc::make_mut(&mut tables.audit).events;
            let before = events.len();
            events.retain(|_, event| event.at >= at);
            Ok((before - events.len()) as u64)
        })
    }
}
