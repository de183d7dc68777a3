//! Outbound targets in memory, listed by name, names unique by their identity key; and the
//! states of pushes to them, gone with their target.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{DomainError, Result};
use crate::ids::identity_key;
use crate::outbound::{OutboundTarget, PushState, PushStateRepository, TargetRepository};

use super::Access;

/// The targets, by id, and the push states, by target and subscription.
#[derive(Debug, Clone, Default)]
pub(super) struct Targets {
    rows: BTreeMap<Uuid, OutboundTarget>,
    states: BTreeMap<(Uuid, Uuid), PushState>,
}

impl Targets {
    /// Refuses `target` when another target has its name.
    fn check_name(&self, target: &OutboundTarget) -> Result<()> {
        let key = identity_key(target.name.as_str());
        let taken = self
            .rows
            .values()
            .any(|other| other.id != target.id && identity_key(other.name.as_str()) == key);
        if taken {
            // The real store's message for its unique index.
            return Err(DomainError::Conflict(
                "a target with this name already exists".to_owned(),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl<T: Access> TargetRepository for T {
    async fn create_target(&self, target: &OutboundTarget) -> Result<()> {
        let target = target.clone();
        self.write(move |tables, _| {
            let targets = Arc::make_mut(&mut tables.targets);
            if targets.rows.contains_key(&target.id) {
                return Err(DomainError::Conflict(super::DUPLICATE.to_owned()));
            }
            targets.check_name(&target)?;
            targets.rows.insert(target.id, target.clone());
            Ok(())
        })
    }

    async fn target(&self, id: Uuid) -> Result<OutboundTarget> {
        self.read(|tables, _| tables.targets.rows.get(&id).cloned())
            .ok_or_else(|| DomainError::not_found("target", id))
    }

    async fn list_targets(&self) -> Result<Vec<OutboundTarget>> {
        let mut targets: Vec<OutboundTarget> =
            self.read(|tables, _| tables.targets.rows.values().cloned().collect());
        targets.sort_by_cached_key(|target| (identity_key(target.name.as_str()), target.id));
        Ok(targets)
    }

    async fn save_target(&self, target: &OutboundTarget) -> Result<()> {
        let target = target.clone();
        self.write(move |tables, _| {
            let targets = Arc::make_mut(&mut tables.targets);
            if !targets.rows.contains_key(&target.id) {
                return Err(DomainError::not_found("target", target.id));
            }
            targets.check_name(&target)?;
            targets.rows.insert(target.id, target.clone());
            Ok(())
        })
    }

    async fn delete_target(&self, id: Uuid) -> Result<()> {
        self.write(move |tables, _| {
            let targets = Arc::make_mut(&mut tables.targets);
            targets.states.retain(|(target, _), _| *target != id);
            targets
                .rows
                .remove(&id)
                .map(|_| ())
                .ok_or_else(|| DomainError::not_found("target", id))
        })
    }
}

#[async_trait]
impl<T: Access> PushStateRepository for T {
    async fn push_states_of(&self, subscription_id: Uuid) -> Result<Vec<PushState>> {
        Ok(self.read(|tables, _| {
            tables
                .targets
                .states
                .values()
                .filter(|state| state.subscription_id == subscription_id)
                .cloned()
                .collect()
        }))
    }

    async fn push_states_on(
        &self,
        target_id: Uuid,
        subscription_ids: &[Uuid],
    ) -> Result<Vec<PushState>> {
        Ok(self.read(|tables, _| {
            subscription_ids
                .iter()
                .filter_map(|id| tables.targets.states.get(&(target_id, *id)).cloned())
                .collect()
        }))
    }

    async fn target_push_states(&self, target_id: Uuid) -> Result<Vec<PushState>> {
        Ok(self.read(|tables, _| {
            tables
                .targets
                .states
                .range((target_id, Uuid::nil())..=(target_id, Uuid::max()))
                .map(|(_, state)| state.clone())
                .collect()
        }))
    }

    async fn save_push_state(&self, state: &PushState) -> Result<()> {
        let state = state.clone();
        self.write(move |tables, _| {
            let targets = Arc::make_mut(&mut tables.targets);
            if !targets.rows.contains_key(&state.target_id) {
                return Err(DomainError::Conflict(super::MISSING_REFERENCE.to_owned()));
            }
            targets
                .states
                .insert((state.target_id, state.subscription_id), state.clone());
            Ok(())
        })
    }

    async fn save_push_states(&self, states: &[PushState]) -> Result<()> {
        let states = states.to_vec();
        self.write(move |tables, _| {
            let targets = Arc::make_mut(&mut tables.targets);
            if states
                .iter()
                .any(|state| !targets.rows.contains_key(&state.target_id))
            {
                return Err(DomainError::Conflict(super::MISSING_REFERENCE.to_owned()));
            }
            for state in &states {
                targets
                    .states
                    .insert((state.target_id, state.subscription_id), state.clone());
            }
            Ok(())
        })
    }

    async fn record_push_failure(
        &self,
        target_id: Uuid,
        subscription_ids: &[Uuid],
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let (subscription_ids, error) = (subscription_ids.to_vec(), error.to_owned());
        self.write(move |tables, _| {
            let targets = Arc::make_mut(&mut tables.targets);
            if !targets.rows.contains_key(&target_id) {
                return Err(DomainError::Conflict(super::MISSING_REFERENCE.to_owned()));
            }
            for subscription_id in &subscription_ids {
                let state = targets
                    .states
                    .entry((target_id, *subscription_id))
                    .or_insert_with(|| PushState {
                        target_id,
                        subscription_id: *subscription_id,
                        remote_id: None,
                        fingerprint: None,
                        pushed_at: None,
                        last_error: None,
                        failed_at: None,
                    });
                state.last_error = Some(error.clone());
                state.failed_at = Some(at);
            }
            Ok(())
        })
    }

    async fn delete_push_state(&self, target_id: Uuid, subscription_id: Uuid) -> Result<()> {
        self.write(move |tables, _| {
            Arc::make_mut(&mut tables.targets)
                .states
                .remove(&(target_id, subscription_id));
            Ok(())
        })
    }
}
