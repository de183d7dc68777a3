//! What the workflows push to the targets, and what cadre remembers of each push.
//!
//! A step that changes a user or a group hands the [`Outbound`] port a [`Change`]: the object
//! as it is now. The edge's implementation pushes it to every enabled target and records, per
//! target and subscription, a [`PushState`]: the remote id, a fingerprint of what was pushed
//! and the last error.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use super::TargetMode;
use crate::error::Result;
use crate::lifecycle::Lifecycle;
use crate::ports::StoreTransaction;

/// A user as the targets get it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSnapshot {
    /// The User subscription.
    pub subscription_id: Uuid,
    /// Its lifecycle: active users are pushed active, disabled ones inactive, terminated ones
    /// deprovisioned as each target says.
    pub lifecycle: Lifecycle,
    /// Its fields by name ([`super::USER_FIELDS`]); a field without a value is absent.
    pub fields: BTreeMap<String, String>,
}

/// A group as the targets get it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSnapshot {
    /// The UserGroup subscription.
    pub subscription_id: Uuid,
    /// Its lifecycle: a terminated group is removed from the targets.
    pub lifecycle: Lifecycle,
    /// Its external id (`user_group_id`): what a target finds it by.
    pub external_id: String,
    /// Its name.
    pub name: String,
    /// Its active members' User subscriptions, sorted.
    pub members: Vec<Uuid>,
}

/// One object to bring the targets up to date with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A user.
    User(UserSnapshot),
    /// A group.
    Group(GroupSnapshot),
}

impl Change {
    /// The subscription it is about.
    pub fn subscription_id(&self) -> Uuid {
        match self {
            Change::User(user) => user.subscription_id,
            Change::Group(group) => group.subscription_id,
        }
    }
}

/// Why a push did not reach every target.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PushError {
    /// A target could not be reached or was unavailable: worth trying again later.
    #[error("{target}: {detail}")]
    Unavailable {
        /// The target's name.
        target: String,
        /// What happened.
        detail: String,
    },
    /// A target refused, or cadre could not use it (its credential does not open): an
    /// operator must look.
    #[error("{target}: {detail}")]
    Refused {
        /// The target's name.
        target: String,
        /// What happened.
        detail: String,
    },
    /// cadre's own store failed.
    #[error(transparent)]
    Store(#[from] crate::DomainError),
}

/// Brings the targets up to date with changed users and groups.
#[async_trait]
pub trait Outbound: Send + Sync {
    /// Pushes `changes`, in order, to every enabled target, recording each target's
    /// [`PushState`] in `txn`: nothing is pushed again that a target already has, and a target
    /// that has an object cadre has no record of (a push whose commit was lost) gets it
    /// replaced, not a second one.
    async fn push(
        &self,
        txn: &dyn StoreTransaction,
        changes: &[Change],
    ) -> std::result::Result<(), PushError>;

    /// Brings the target `target_id` to `desired` (every user and group cadre has, as
    /// [`Outbound::push`] takes them) with gooddata's full-load semantics: what the target
    /// lacks is created, what differs is replaced, and what cadre made there but no longer has
    /// is removed — never an object cadre did not make. Runs whether or not the target is
    /// paused, recording the states in `txn`. A change that fails is reported in its row; a
    /// target that cannot be reached fails the whole run.
    async fn reconcile(
        &self,
        txn: &dyn StoreTransaction,
        target_id: Uuid,
        desired: &[Change],
        options: ReconcileOptions,
    ) -> std::result::Result<ReconcileReport, PushError>;
}

/// How a reconcile runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileOptions {
    /// Plan only: change nothing on the target, record nothing.
    pub dry_run: bool,
    /// The removal guard: a run that would remove more objects than this removes none and
    /// fails, saying how many it would have removed.
    pub max_removals: usize,
}

impl Default for ReconcileOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            max_removals: 10,
        }
    }
}

/// What a reconcile does to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconcileAction {
    /// The target lacks it: create it.
    Create,
    /// The target has it otherwise: replace it with what cadre has.
    Update,
    /// cadre made it and no longer has it: remove it.
    Remove,
}

/// One object a reconcile changes (or, in a dry run, would change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileRow {
    /// `user` or `group`.
    pub kind: String,
    /// Its external id.
    pub external_id: String,
    /// What is done.
    pub action: ReconcileAction,
    /// Why doing it failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a reconcile of one target found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileReport {
    /// Whether it only planned.
    pub dry_run: bool,
    /// Objects the target has as cadre has them.
    pub unchanged: u64,
    /// Objects created (planned, in a dry run).
    pub created: u64,
    /// Objects replaced (planned, in a dry run).
    pub updated: u64,
    /// Objects removed (planned, in a dry run).
    pub removed: u64,
    /// Objects whose change failed.
    pub failed: u64,
    /// Objects on the target that cadre did not make and does not have: left alone.
    pub foreign: u64,
    /// Each object changed, or to change.
    pub rows: Vec<ReconcileRow>,
}

impl ReconcileReport {
    /// Counts `action` on one object (as failed when there is an `error`) and adds its row.
    pub fn record(
        &mut self,
        kind: &str,
        external_id: &str,
        action: ReconcileAction,
        error: Option<String>,
    ) {
        let count = match (&error, action) {
            (Some(_), _) => &mut self.failed,
            (None, ReconcileAction::Create) => &mut self.created,
            (None, ReconcileAction::Update) => &mut self.updated,
            (None, ReconcileAction::Remove) => &mut self.removed,
        };
        *count += 1;
        self.rows.push(ReconcileRow {
            kind: kind.to_owned(),
            external_id: external_id.to_owned(),
            action,
            error,
        });
    }
}

/// The [`Outbound`] of an engine given none: with no enabled target there is nothing to do;
/// an enabled target is refused, since nothing here could reach it.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoOutbound;

#[async_trait]
impl Outbound for NoOutbound {
    async fn push(
        &self,
        txn: &dyn StoreTransaction,
        _: &[Change],
    ) -> std::result::Result<(), PushError> {
        match txn
            .list_targets()
            .await?
            .into_iter()
            .find(|target| target.mode == TargetMode::Enabled)
        {
            Some(target) => Err(PushError::Refused {
                target: target.name.to_string(),
                detail: "this engine has no outbound provisioning; set `outbound_key` and \
                         run it in cadre serve"
                    .to_owned(),
            }),
            None => Ok(()),
        }
    }

    async fn reconcile(
        &self,
        _: &dyn StoreTransaction,
        target_id: Uuid,
        _: &[Change],
        _: ReconcileOptions,
    ) -> std::result::Result<ReconcileReport, PushError> {
        Err(PushError::Refused {
            target: target_id.to_string(),
            detail: "this engine has no outbound provisioning".to_owned(),
        })
    }
}

/// What cadre knows of one subscription on one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushState {
    /// The target.
    pub target_id: Uuid,
    /// The subscription (a user or a group).
    pub subscription_id: Uuid,
    /// The target's id of the object, once pushed (a SCIM id, an LDAP DN).
    pub remote_id: Option<String>,
    /// A fingerprint of what was last pushed: a change is pushed only when it differs.
    pub fingerprint: Option<String>,
    /// When it was last pushed.
    pub pushed_at: Option<DateTime<Utc>>,
    /// Why the last push failed; cleared by the next that succeeds.
    pub last_error: Option<String>,
    /// When the last push failed.
    pub failed_at: Option<DateTime<Utc>>,
}

/// The states of pushes.
#[async_trait]
pub trait PushStateRepository: Send + Sync {
    /// The states of `subscription_id` on every target.
    async fn push_states_of(&self, subscription_id: Uuid) -> Result<Vec<PushState>>;
    /// The states of `subscription_ids` on `target_id` (those it has), in no particular order.
    async fn push_states_on(
        &self,
        target_id: Uuid,
        subscription_ids: &[Uuid],
    ) -> Result<Vec<PushState>>;
    /// Every state on `target_id`: what cadre manages there.
    async fn target_push_states(&self, target_id: Uuid) -> Result<Vec<PushState>>;
    /// Stores `state`, replacing the one of its target and subscription.
    async fn save_push_state(&self, state: &PushState) -> Result<()>;
    /// Stores `states` as [`PushStateRepository::save_push_state`] does each, in as few
    /// statements as the store allows.
    async fn save_push_states(&self, states: &[PushState]) -> Result<()>;
    /// Records that pushing `subscription_ids` to `target_id` failed at `at` with `error`,
    /// changing nothing else a state holds (a state that did not exist is made).
    async fn record_push_failure(
        &self,
        target_id: Uuid,
        subscription_ids: &[Uuid],
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<()>;
    /// Forgets the state of `subscription_id` on `target_id` (its remote object is gone).
    async fn delete_push_state(&self, target_id: Uuid, subscription_id: Uuid) -> Result<()>;
}
