//! [`Pusher`]: the [`Outbound`] port over real targets. It pushes each change to every enabled
//! target through that target's [`Connector`], and records what it pushed as a [`PushState`].
//!
//! A push is idempotent. What a target already has (the same fingerprint) is not sent again;
//! an object cadre has no remote id for is looked for by its external id before it is
//! created, so a push whose commit was lost (a worker killed after the push) replaces the
//! object it made instead of making a second one; a remote id that no longer answers (someone
//! deleted the object in the target) is looked for again, and the object made anew.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cadre_domain::outbound::{
    Change, Connection, Deprovision, GroupSnapshot, Outbound, OutboundTarget, PushError, PushState,
    ReconcileOptions, ReconcileReport, TargetMode, UserSnapshot,
};
use cadre_domain::ports::Clock;
use cadre_domain::{Lifecycle, Store, StoreTransaction};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::SealingKey;
use crate::connector::{Connector, ConnectorError, GroupEntry, UserEntry, connect};
use crate::reconcile::by_external_id;

/// From how many users new to a target a push lists the target's users once instead of looking
/// each up.
const LIST_FROM: usize = 20;

/// Pushes to the configured targets.
pub struct Pusher {
    key: Option<SealingKey>,
    /// Where failures are recorded: outside the step's transaction, which rolls back.
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// A connector per target, kept while the target is unchanged (an LDAP bind is costly).
    connectors: Mutex<HashMap<Uuid, Cached>>,
}

/// A connector, and the version (`updated_at`) of the target it was made for.
type Cached = (DateTime<Utc>, Arc<dyn Connector>);

impl Pusher {
    /// A pusher opening credentials with `key` (none: every enabled target is refused),
    /// recording failures in `store`, timed by `clock`.
    pub fn new(key: Option<SealingKey>, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            key,
            store,
            clock,
            connectors: Mutex::new(HashMap::new()),
        }
    }

    /// The connector of `target`, made with its opened credential.
    pub fn connector(&self, target: &OutboundTarget) -> Result<Arc<dyn Connector>, PushError> {
        let refused = |detail: String| PushError::Refused {
            target: target.name.to_string(),
            detail,
        };
        let mut connectors = self
            .connectors
            .lock()
            .map_err(|_| refused("the connector cache is poisoned".to_owned()))?;
        if let Some((version, connector)) = connectors.get(&target.id)
            && *version == target.updated_at
        {
            return Ok(Arc::clone(connector));
        }
        let key = self.key.as_ref().ok_or_else(|| {
            refused(
                "no `outbound_key` in the configuration: the credential cannot be opened".into(),
            )
        })?;
        let secret = key
            .open(target.id, &target.sealed_secret)
            .map_err(|error| refused(error.to_string()))?;
        let secret = String::from_utf8(secret)
            .map_err(|_| refused("the credential is not text".to_owned()))?;
        let connector: Arc<dyn Connector> =
            Arc::from(connect(target, &secret).map_err(|error| failure(target, error))?);
        connectors.insert(target.id, (target.updated_at, Arc::clone(&connector)));
        Ok(connector)
    }

    /// Drops the connectors of targets no longer among `targets`, and what they remember.
    fn forget_removed(&self, targets: &[OutboundTarget]) {
        if let Ok(mut connectors) = self.connectors.lock() {
            connectors.retain(|id, _| targets.iter().any(|target| target.id == *id));
        }
    }

    /// The time now, by the pusher's clock.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Pushes `changes` to `target`; the states to record.
    async fn push_to(
        &self,
        txn: &dyn StoreTransaction,
        target: &OutboundTarget,
        changes: &[Change],
    ) -> Result<Vec<StateChange>, PushError> {
        let connector = self.connector(target)?;
        let mut pushed = Pushed::default();
        self.push_new_users(txn, target, connector.as_ref(), changes, &mut pushed)
            .await
            .map_err(|error| error.of(target))?;
        for change in changes {
            let result = match change {
                Change::User(user) => {
                    self.push_user(txn, target, connector.as_ref(), user, &mut pushed)
                        .await
                }
                Change::Group(group) => {
                    self.push_group(txn, target, connector.as_ref(), group, &mut pushed)
                        .await
                }
            };
            result.map_err(|error| error.of(target))?;
        }
        Ok(pushed.changes)
    }

    /// When many of `changes` are users new to `target` (a bulk load), pushes them first with
    /// one listing of the target's users instead of a lookup each, and their creates in one
    /// batch (a SCIM target's `/Bulk`). Fewer go one by one.
    async fn push_new_users(
        &self,
        txn: &dyn StoreTransaction,
        target: &OutboundTarget,
        connector: &dyn Connector,
        changes: &[Change],
        pushed: &mut Pushed,
    ) -> Result<(), Failure> {
        let users: Vec<&UserSnapshot> = changes
            .iter()
            .filter_map(|change| match change {
                Change::User(user) if user.lifecycle != Lifecycle::Terminated => Some(user),
                _ => None,
            })
            .collect();
        if users.len() < LIST_FROM {
            return Ok(());
        }
        let ids: Vec<Uuid> = users.iter().map(|user| user.subscription_id).collect();
        let known: HashSet<Uuid> = txn
            .push_states_on(target.id, &ids)
            .await?
            .into_iter()
            .filter(|state| state.remote_id.is_some())
            .map(|state| state.subscription_id)
            .collect();
        let fresh: Vec<&UserSnapshot> = users
            .into_iter()
            .filter(|user| !known.contains(&user.subscription_id))
            .collect();
        if fresh.len() < LIST_FROM {
            return Ok(());
        }
        let listed = connector.list_users().await?;
        let listed = by_external_id(&listed, |entry| &entry.external_id);
        let mut creates = Vec::new();
        for user in fresh {
            let entry = connector.written(&user_entry(target, user));
            match listed.get(entry.external_id.as_str()).map(Vec::as_slice) {
                // Several share it: left to the one-by-one push, which refuses the ambiguity.
                Some([_, _, ..]) => {}
                Some([remote]) => {
                    let id = if remote.entry == entry {
                        remote.id.clone()
                    } else {
                        connector.replace_user(&remote.id, &entry).await?
                    };
                    let fingerprint = fingerprint(&entry);
                    pushed.record(target.id, user.subscription_id, id, fingerprint, self.now());
                }
                Some([]) | None => creates.push((user.subscription_id, entry)),
            }
        }
        let entries: Vec<UserEntry> = creates.iter().map(|(_, entry)| entry.clone()).collect();
        let created = connector.create_users(&entries).await?;
        for ((subscription, entry), outcome) in creates.into_iter().zip(created) {
            let fingerprint = fingerprint(&entry);
            pushed.record(target.id, subscription, outcome?, fingerprint, self.now());
        }
        Ok(())
    }

    async fn push_user(
        &self,
        txn: &dyn StoreTransaction,
        target: &OutboundTarget,
        connector: &dyn Connector,
        user: &UserSnapshot,
        pushed: &mut Pushed,
    ) -> Result<(), Failure> {
        let state = pushed.state(txn, target.id, user.subscription_id).await?;
        let entry = connector.written(&user_entry(target, user));
        let terminated = user.lifecycle == Lifecycle::Terminated;
        let object = Object {
            target: target.id,
            subscription: user.subscription_id,
            state,
            remove: terminated && target.deprovision == Deprovision::Delete,
            // A user ended before the target had it is not made there to be disabled.
            create: !terminated,
        };
        self.bring(&Users(connector), object, &entry, pushed).await
    }

    async fn push_group(
        &self,
        txn: &dyn StoreTransaction,
        target: &OutboundTarget,
        connector: &dyn Connector,
        group: &GroupSnapshot,
        pushed: &mut Pushed,
    ) -> Result<(), Failure> {
        let state = pushed.state(txn, target.id, group.subscription_id).await?;
        let remove = group.lifecycle == Lifecycle::Terminated;
        let members = if remove {
            Vec::new()
        } else {
            pushed.remote_ids(txn, target.id, &group.members).await?
        };
        let entry = GroupEntry {
            external_id: group.external_id.clone(),
            name: group.name.clone(),
            members,
        };
        let object = Object {
            target: target.id,
            subscription: group.subscription_id,
            state,
            remove,
            create: true,
        };
        self.bring(&Groups(connector), object, &entry, pushed).await
    }

    /// Brings one object of the target to `entry`, or removes it: what it has already (the
    /// same fingerprint) is not sent again; a known remote id that no longer answers, or none,
    /// is looked up by the external id before anything is created. Only an object cadre has a
    /// remote id for is removed: one it finds by external id alone may not be its own.
    async fn bring<Entry: serde::Serialize + Sync>(
        &self,
        objects: &dyn Objects<Entry>,
        object: Object,
        entry: &Entry,
        pushed: &mut Pushed,
    ) -> Result<(), Failure> {
        let known = object
            .state
            .as_ref()
            .and_then(|state| state.remote_id.clone());
        if object.remove {
            if let Some(id) = known {
                objects.delete(&id).await?;
            }
            pushed.forget(object.target, object.subscription);
            return Ok(());
        }
        let fingerprint = fingerprint(entry);
        if let Some(PushState {
            remote_id: Some(id),
            fingerprint: Some(last),
            last_error,
            ..
        }) = &object.state
            && *last == fingerprint
        {
            if last_error.is_some() {
                // The target has it already; only the error of an earlier attempt goes.
                let now = self.clock.now();
                pushed.record(
                    object.target,
                    object.subscription,
                    id.clone(),
                    fingerprint,
                    now,
                );
            }
            return Ok(());
        }
        let replaced = match known {
            Some(id) => match objects.replace(&id, entry).await {
                Err(ConnectorError::Refused(_)) => None, // gone, or changed under it: look again
                outcome => Some(outcome?),
            },
            None => None,
        };
        let id = match replaced {
            Some(id) => id,
            None => match objects.find(entry).await? {
                Some(id) => objects.replace(&id, entry).await?,
                None if object.create => objects.create(entry).await?,
                None => return Ok(()),
            },
        };
        let now = self.clock.now();
        pushed.record(object.target, object.subscription, id, fingerprint, now);
        Ok(())
    }

    /// Records that pushing `subscriptions` to `target` failed with `error`, changing nothing
    /// else of their states: in a task of its own, once the step's transaction is over (a SQLite
    /// store has one connection, which the step holds). Best effort: a failure to record is
    /// logged.
    fn record_failure(&self, target: &OutboundTarget, subscriptions: Vec<Uuid>, error: &PushError) {
        let store = Arc::clone(&self.store);
        let (target, now) = (target.id, self.clock.now());
        let error: String = error.to_string().chars().take(1000).collect();
        tokio::spawn(async move {
            let recorded = store.record_push_failure(target, &subscriptions, &error, now);
            if let Err(failed) = recorded.await {
                tracing::warn!(error = %failed, "could not record a failed push");
            }
        });
    }
}

#[async_trait]
impl Outbound for Pusher {
    async fn push(&self, txn: &dyn StoreTransaction, changes: &[Change]) -> Result<(), PushError> {
        if changes.is_empty() {
            return Ok(());
        }
        let targets = txn.list_targets().await?;
        self.forget_removed(&targets);
        let mut writes = Vec::new();
        let mut first_error = None;
        // Every target is tried, so that each records its own outcome; nothing is written in
        // the transaction until all succeeded, so that recording a failure (outside it) never
        // waits on it.
        for target in targets
            .iter()
            .filter(|target| target.mode == TargetMode::Enabled)
        {
            match self.push_to(txn, target, changes).await {
                Ok(states) => writes.extend(states),
                Err(error) => {
                    let subscriptions: Vec<Uuid> =
                        changes.iter().map(Change::subscription_id).collect();
                    self.record_failure(target, subscriptions, &error);
                    first_error.get_or_insert(error);
                }
            }
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        let mut saved = Vec::new();
        for write in writes {
            match write {
                StateChange::Save(state) => saved.push(state),
                StateChange::Forget(target, subscription) => {
                    txn.save_push_states(&std::mem::take(&mut saved)).await?;
                    txn.delete_push_state(target, subscription).await?;
                }
            }
        }
        txn.save_push_states(&saved).await?;
        Ok(())
    }

    async fn reconcile(
        &self,
        txn: &dyn StoreTransaction,
        target_id: Uuid,
        desired: &[Change],
        options: ReconcileOptions,
    ) -> Result<ReconcileReport, PushError> {
        let target = txn.target(target_id).await?;
        self.reconcile_target(txn, &target, desired, options).await
    }
}

/// `user` under `target`'s attribute names.
pub fn user_entry(target: &OutboundTarget, user: &UserSnapshot) -> UserEntry {
    let attributes: BTreeMap<String, String> = target
        .mapping
        .iter()
        .filter_map(|(attribute, field)| Some((attribute.clone(), user.fields.get(field)?.clone())))
        .collect();
    UserEntry {
        external_id: user.fields.get("user_id").cloned().unwrap_or_default(),
        attributes,
        // A directory has no such flag: there, an inactive user is in no group.
        active: user.lifecycle == Lifecycle::Active
            || matches!(target.connection, Connection::Ldap { .. }),
    }
}

/// A fingerprint of what is pushed: SHA-256 of its JSON, in hexadecimal.
pub fn fingerprint(entry: &impl serde::Serialize) -> String {
    let json = serde_json::to_vec(entry).unwrap_or_default();
    hex::encode(Sha256::digest(json))
}

fn empty_state(target_id: Uuid, subscription_id: Uuid) -> PushState {
    PushState {
        target_id,
        subscription_id,
        remote_id: None,
        fingerprint: None,
        pushed_at: None,
        last_error: None,
        failed_at: None,
    }
}

/// A connector's error as the push error of `target`.
pub(crate) fn failure(target: &OutboundTarget, error: ConnectorError) -> PushError {
    let name = target.name.to_string();
    match error {
        ConnectorError::Unavailable(_) => PushError::Unavailable {
            target: name,
            detail: error.to_string(),
        },
        _ => PushError::Refused {
            target: name,
            detail: error.to_string(),
        },
    }
}

/// One subscription's object on one target, as a push finds it.
struct Object {
    target: Uuid,
    subscription: Uuid,
    state: Option<PushState>,
    /// Whether it is to go.
    remove: bool,
    /// Whether it is made when the target lacks it.
    create: bool,
}

/// The users or the groups of a target.
#[async_trait]
trait Objects<Entry>: Sync {
    async fn find(&self, entry: &Entry) -> Result<Option<String>, ConnectorError>;
    async fn create(&self, entry: &Entry) -> Result<String, ConnectorError>;
    async fn replace(&self, id: &str, entry: &Entry) -> Result<String, ConnectorError>;
    async fn delete(&self, id: &str) -> Result<(), ConnectorError>;
}

/// A target's users.
struct Users<'a>(&'a dyn Connector);

#[async_trait]
impl Objects<UserEntry> for Users<'_> {
    async fn find(&self, entry: &UserEntry) -> Result<Option<String>, ConnectorError> {
        self.0.find_user(&entry.external_id).await
    }

    async fn create(&self, entry: &UserEntry) -> Result<String, ConnectorError> {
        self.0.create_user(entry).await
    }

    async fn replace(&self, id: &str, entry: &UserEntry) -> Result<String, ConnectorError> {
        self.0.replace_user(id, entry).await
    }

    async fn delete(&self, id: &str) -> Result<(), ConnectorError> {
        self.0.delete_user(id).await
    }
}

/// A target's groups.
struct Groups<'a>(&'a dyn Connector);

#[async_trait]
impl Objects<GroupEntry> for Groups<'_> {
    async fn find(&self, entry: &GroupEntry) -> Result<Option<String>, ConnectorError> {
        self.0.find_group(entry).await
    }

    async fn create(&self, entry: &GroupEntry) -> Result<String, ConnectorError> {
        self.0.create_group(entry).await
    }

    async fn replace(&self, id: &str, entry: &GroupEntry) -> Result<String, ConnectorError> {
        self.0.replace_group(id, entry).await
    }

    async fn delete(&self, id: &str) -> Result<(), ConnectorError> {
        self.0.delete_group(id).await
    }
}

/// Why pushing one change failed.
enum Failure {
    Store(cadre_domain::DomainError),
    Connector(ConnectorError),
}

impl Failure {
    /// The push error of `target` this is.
    fn of(self, target: &OutboundTarget) -> PushError {
        match self {
            Failure::Store(error) => PushError::Store(error),
            Failure::Connector(error) => failure(target, error),
        }
    }
}

impl From<cadre_domain::DomainError> for Failure {
    fn from(error: cadre_domain::DomainError) -> Self {
        Failure::Store(error)
    }
}

impl From<ConnectorError> for Failure {
    fn from(error: ConnectorError) -> Self {
        Failure::Connector(error)
    }
}

/// A state to write once every target took the changes.
enum StateChange {
    Save(PushState),
    Forget(Uuid, Uuid),
}

/// What one push to one target has done so far: later changes (a group after its new member)
/// see the states earlier ones made.
#[derive(Default)]
struct Pushed {
    changes: Vec<StateChange>,
    states: HashMap<Uuid, Option<PushState>>,
}

impl Pushed {
    /// The state of `subscription` on `target`: as this push left it, or as stored.
    async fn state(
        &self,
        txn: &dyn StoreTransaction,
        target: Uuid,
        subscription: Uuid,
    ) -> Result<Option<PushState>, cadre_domain::DomainError> {
        if let Some(state) = self.states.get(&subscription) {
            return Ok(state.clone());
        }
        Ok(txn.push_states_on(target, &[subscription]).await?.pop())
    }

    /// The remote ids of those of `subscriptions` `target` has, sorted.
    async fn remote_ids(
        &self,
        txn: &dyn StoreTransaction,
        target: Uuid,
        subscriptions: &[Uuid],
    ) -> Result<Vec<String>, cadre_domain::DomainError> {
        let stored = txn.push_states_on(target, subscriptions).await?;
        let mut ids: Vec<String> = subscriptions
            .iter()
            .filter_map(|subscription| match self.states.get(subscription) {
                Some(state) => state.as_ref()?.remote_id.clone(),
                None => stored
                    .iter()
                    .find(|state| state.subscription_id == *subscription)?
                    .remote_id
                    .clone(),
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    fn record(
        &mut self,
        target: Uuid,
        subscription: Uuid,
        remote_id: String,
        fingerprint: String,
        now: DateTime<Utc>,
    ) {
        let state = PushState {
            remote_id: Some(remote_id),
            fingerprint: Some(fingerprint),
            pushed_at: Some(now),
            ..empty_state(target, subscription)
        };
        self.states.insert(subscription, Some(state.clone()));
        self.changes.push(StateChange::Save(state));
    }

    fn forget(&mut self, target: Uuid, subscription: Uuid) {
        self.states.insert(subscription, None);
        self.changes.push(StateChange::Forget(target, subscription));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use cadre_domain::outbound::{
        Connection, Deprovision, TargetMode, UserSnapshot, default_mapping,
    };
    use cadre_domain::testing::MemoryStore;
    use cadre_domain::{Lifecycle, Name, SystemClock};

    use super::*;

    const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    /// A paused SCIM target named `name`, its credential sealed with [`KEY`].
    fn target(name: &str) -> OutboundTarget {
        let id = Uuid::now_v7();
        OutboundTarget {
            id,
            name: Name::parse(name).unwrap(),
            connection: Connection::Scim {
                base_url: "http://127.0.0.1:9/scim/v2".to_owned(),
                username: None,
                bulk: false,
            },
            mapping: default_mapping("scim"),
            mode: TargetMode::Paused,
            deprovision: Deprovision::Delete,
            sealed_secret: SealingKey::from_hex(KEY)
                .unwrap()
                .seal(id, b"token")
                .unwrap(),
            created_by: "test".to_owned(),
            created_at: SystemClock.now(),
            updated_at: SystemClock.now(),
        }
    }

    #[tokio::test]
    async fn connectors_of_removed_targets_are_dropped_at_the_next_push() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new(Vec::new(), Vec::new()));
        let pusher = Pusher::new(
            Some(SealingKey::from_hex(KEY).unwrap()),
            Arc::clone(&store),
            Arc::new(SystemClock),
        );
        let (kept, removed) = (target("Kept"), target("Removed"));
        let txn = store.begin().await.unwrap();
        txn.create_target(&kept).await.unwrap();
        txn.create_target(&removed).await.unwrap();
        txn.commit().await.unwrap();
        pusher.connector(&kept).unwrap();
        pusher.connector(&removed).unwrap();
        assert_eq!(pusher.connectors.lock().unwrap().len(), 2);

        let txn = store.begin().await.unwrap();
        txn.delete_target(removed.id).await.unwrap();
        let change = Change::User(UserSnapshot {
            subscription_id: Uuid::now_v7(),
            lifecycle: Lifecycle::Active,
            fields: BTreeMap::new(),
        });
        pusher.push(txn.as_ref(), &[change]).await.unwrap();
        let held: Vec<Uuid> = pusher.connectors.lock().unwrap().keys().copied().collect();
        assert_eq!(held, [kept.id]);
    }
}
