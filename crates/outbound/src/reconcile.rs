//! Reconciling one target with cadre, with gooddata's full-load semantics: the target's users
//! and groups are listed once and compared field for field with what cadre has; what is
//! missing is created (a SCIM target's `/Bulk` where it has one), what differs replaced, and
//! what cadre made there (it has a [`PushState`] for it) but no longer has removed. Objects cadre
//! did not make are counted and left alone.
//!
//! States are written in the step's transaction: a run cut short keeps none, and the next finds
//! the objects it made by their external ids.

use std::collections::{HashMap, HashSet};

use cadre_domain::outbound::{
    Change, Deprovision, OutboundTarget, PushError, PushState, ReconcileAction, ReconcileOptions,
    ReconcileReport,
};
use cadre_domain::{Lifecycle, StoreTransaction};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::connector::{ConnectorError, GroupEntry, Remote, UserEntry};
use crate::push::{Pusher, failure, fingerprint, user_entry};

/// Why a reconcile leaves objects alone that share an external id.
const AMBIGUOUS: &str = "more than one object on the target has this external id: which is \
                         cadre's is not known, so none is changed";

/// `remotes` by external id, each id with every object that has it.
pub(crate) fn by_external_id<T>(
    remotes: &[Remote<T>],
    external_id: impl Fn(&T) -> &String,
) -> HashMap<&str, Vec<&Remote<T>>> {
    let mut found: HashMap<&str, Vec<&Remote<T>>> = HashMap::new();
    for remote in remotes {
        found
            .entry(external_id(&remote.entry).as_str())
            .or_default()
            .push(remote);
    }
    found
}

/// One planned change to a user.
struct UserPlan {
    subscription: Uuid,
    entry: UserEntry,
    action: ReconcileAction,
    remote_id: Option<String>,
}

impl Pusher {
    /// [`cadre_domain::outbound::Outbound::reconcile`] for `target`.
    pub(crate) async fn reconcile_target(
        &self,
        txn: &dyn StoreTransaction,
        target: &OutboundTarget,
        desired: &[Change],
        options: ReconcileOptions,
    ) -> Result<ReconcileReport, PushError> {
        let connector = self.connector(target)?;
        let refused = |error: ConnectorError| failure(target, error);
        // What cadre made there, by remote id, users and groups apart: a target may number
        // each kind on its own, so that a user and a group share an id.
        let kind_of: HashMap<Uuid, bool> = desired
            .iter()
            .map(|change| (change.subscription_id(), matches!(change, Change::User(_))))
            .collect();
        let (mut managed_users, mut managed_groups) = (HashMap::new(), HashMap::new());
        for state in txn.target_push_states(target.id).await? {
            let (Some(remote_id), Some(is_user)) =
                (state.remote_id, kind_of.get(&state.subscription_id))
            else {
                continue;
            };
            let managed = if *is_user {
                &mut managed_users
            } else {
                &mut managed_groups
            };
            managed.insert(remote_id, state.subscription_id);
        }
        let remote_users = connector.list_users().await.map_err(refused)?;
        let remote_groups = connector.list_groups().await.map_err(refused)?;
        let mut report = ReconcileReport {
            dry_run: options.dry_run,
            ..ReconcileReport::default()
        };
        let mut states = States::default();

        // Users: plan every change before making any, so that the removal guard sees them all.
        // Objects that share an external id are left alone: which is cadre's is not known.
        let by_external = by_external_id(&remote_users, |entry| &entry.external_id);
        let mut seen: HashSet<&str> = HashSet::new();
        let mut plans = Vec::new();
        for change in desired {
            let Change::User(user) = change else { continue };
            let entry = connector.written(&user_entry(target, user));
            let existing = match by_external.get(entry.external_id.as_str()) {
                Some(found) if found.len() > 1 => {
                    seen.extend(found.iter().map(|remote| remote.id.as_str()));
                    report.record(
                        "user",
                        &entry.external_id,
                        ReconcileAction::Update,
                        Some(AMBIGUOUS.to_owned()),
                    );
                    continue;
                }
                Some(found) => found.first().copied(),
                None => None,
            };
            if let Some(remote) = existing {
                seen.insert(remote.id.as_str());
            }
            let terminated = user.lifecycle == Lifecycle::Terminated;
            let removed = terminated && target.deprovision == Deprovision::Delete;
            let action = match existing {
                Some(remote) if removed && managed_users.contains_key(&remote.id) => {
                    Some(ReconcileAction::Remove)
                }
                Some(_) if removed => {
                    report.foreign += 1;
                    continue;
                }
                // Ended before the target had it (or gone): not made there to be disabled.
                None if terminated => None,
                None => Some(ReconcileAction::Create),
                Some(remote) if remote.entry != entry => Some(ReconcileAction::Update),
                Some(remote) => {
                    states.keep(target.id, user.subscription_id, &remote.id, &entry);
                    None
                }
            };
            match action {
                Some(action) => plans.push(UserPlan {
                    subscription: user.subscription_id,
                    entry,
                    action,
                    remote_id: existing.map(|remote| remote.id.clone()),
                }),
                None => report.unchanged += 1,
            }
        }
        for remote in &remote_users {
            if seen.contains(remote.id.as_str()) {
                continue;
            }
            match managed_users.get(&remote.id) {
                Some(subscription) => plans.push(UserPlan {
                    subscription: *subscription,
                    entry: remote.entry.clone(),
                    action: ReconcileAction::Remove,
                    remote_id: Some(remote.id.clone()),
                }),
                None => report.foreign += 1,
            }
        }

        // Groups: which exist and which go, before their members are known.
        let groups: Vec<_> = desired
            .iter()
            .filter_map(|change| match change {
                Change::Group(group) => Some(group),
                Change::User(_) => None,
            })
            .collect();
        let wanted_groups: HashSet<&str> = groups
            .iter()
            .filter(|group| group.lifecycle != Lifecycle::Terminated)
            .map(|group| group.external_id.as_str())
            .collect();
        let group_removals: Vec<&Remote<GroupEntry>> = remote_groups
            .iter()
            .filter(|remote| !wanted_groups.contains(remote.entry.external_id.as_str()))
            .filter(|remote| managed_groups.contains_key(&remote.id))
            .collect();
        report.foreign += (remote_groups.len()
            - group_removals.len()
            - remote_groups
                .iter()
                .filter(|remote| wanted_groups.contains(remote.entry.external_id.as_str()))
                .count()) as u64;

        let removals = plans
            .iter()
            .filter(|plan| plan.action == ReconcileAction::Remove)
            .count()
            + group_removals.len();
        if removals > options.max_removals && !options.dry_run {
            return Err(PushError::Refused {
                target: target.name.to_string(),
                detail: format!(
                    "the removal guard stopped the run: it plans to remove {removals} (at most {} \
                     allowed); check them with a dry run, then allow them (max_removals)",
                    options.max_removals
                ),
            });
        }

        // Users, applied.
        let creates: Vec<&UserPlan> = plans
            .iter()
            .filter(|plan| plan.action == ReconcileAction::Create)
            .collect();
        if !options.dry_run && !creates.is_empty() {
            let entries: Vec<UserEntry> = creates.iter().map(|plan| plan.entry.clone()).collect();
            let created = connector.create_users(&entries).await.map_err(refused)?;
            for (plan, outcome) in creates.iter().zip(created) {
                let outcome =
                    outcome.map(|id| states.keep(target.id, plan.subscription, &id, &plan.entry));
                row(
                    &mut report,
                    ("user", &plan.entry.external_id),
                    plan.action,
                    outcome,
                    target,
                )?;
            }
        }
        for plan in &plans {
            let outcome = match (plan.action, &plan.remote_id) {
                _ if options.dry_run => Ok(()),
                (ReconcileAction::Create, _) => continue,
                (ReconcileAction::Update, Some(id)) => {
                    let replaced = connector.replace_user(id, &plan.entry).await;
                    replaced.map(|id| states.keep(target.id, plan.subscription, &id, &plan.entry))
                }
                (ReconcileAction::Remove, Some(id)) => {
                    let deleted = connector.delete_user(id).await;
                    deleted.map(|()| states.forget(plan.subscription))
                }
                (_, None) => continue,
            };
            row(
                &mut report,
                ("user", &plan.entry.external_id),
                plan.action,
                outcome,
                target,
            )?;
        }
        if !options.dry_run {
            states.write(txn, target.id, self.now()).await?;
        }

        // Groups, with their members' remote ids as they are now.
        let member_ids: HashMap<Uuid, String> = txn
            .target_push_states(target.id)
            .await?
            .into_iter()
            .filter_map(|state| Some((state.subscription_id, state.remote_id?)))
            .collect();
        let remote_by_external = by_external_id(&remote_groups, |entry| &entry.external_id);
        for group in groups {
            if group.lifecycle == Lifecycle::Terminated {
                continue;
            }
            let mut members: Vec<String> = group
                .members
                .iter()
                .filter_map(|member| member_ids.get(member).cloned())
                .collect();
            members.sort();
            let entry = GroupEntry {
                external_id: group.external_id.clone(),
                name: group.name.clone(),
                members,
            };
            let existing = match remote_by_external.get(entry.external_id.as_str()) {
                Some(found) if found.len() > 1 => {
                    let error = Some(AMBIGUOUS.to_owned());
                    report.record("group", &entry.external_id, ReconcileAction::Update, error);
                    continue;
                }
                Some(found) => found.first().copied(),
                None => None,
            };
            let (action, outcome) = match existing {
                Some(remote) if remote.entry == entry => {
                    states.keep(target.id, group.subscription_id, &remote.id, &entry);
                    report.unchanged += 1;
                    continue;
                }
                _ if options.dry_run => (
                    existing.map_or(ReconcileAction::Create, |_| ReconcileAction::Update),
                    Ok(String::new()),
                ),
                Some(remote) => (
                    ReconcileAction::Update,
                    connector.replace_group(&remote.id, &entry).await,
                ),
                None => (
                    ReconcileAction::Create,
                    connector.create_group(&entry).await,
                ),
            };
            let outcome = outcome.map(|id| {
                if !options.dry_run {
                    states.keep(target.id, group.subscription_id, &id, &entry);
                }
            });
            row(
                &mut report,
                ("group", &entry.external_id),
                action,
                outcome,
                target,
            )?;
        }
        for remote in group_removals {
            let outcome = if options.dry_run {
                Ok(())
            } else {
                connector.delete_group(&remote.id).await.map(|()| {
                    if let Some(subscription) = managed_groups.get(&remote.id) {
                        states.forget(*subscription);
                    }
                })
            };
            row(
                &mut report,
                ("group", &remote.entry.external_id),
                ReconcileAction::Remove,
                outcome,
                target,
            )?;
        }
        if !options.dry_run {
            states.write(txn, target.id, self.now()).await?;
        }
        Ok(report)
    }
}

/// Records the outcome of `action` on one object in `report`; a target that cannot be
/// reached ends the run.
fn row(
    report: &mut ReconcileReport,
    (kind, external_id): (&str, &str),
    action: ReconcileAction,
    outcome: Result<(), ConnectorError>,
    target: &OutboundTarget,
) -> Result<(), PushError> {
    let error = match outcome {
        Ok(()) => None,
        Err(error @ ConnectorError::Unavailable(_)) => return Err(failure(target, error)),
        Err(error) => Some(error.to_string()),
    };
    report.record(kind, external_id, action, error);
    Ok(())
}

/// States to write: those that differ from what is stored, and those to forget.
#[derive(Default)]
struct States {
    keep: Vec<PushState>,
    forget: Vec<Uuid>,
}

impl States {
    fn keep(
        &mut self,
        target: Uuid,
        subscription: Uuid,
        remote_id: &str,
        entry: &impl serde::Serialize,
    ) {
        self.keep.push(PushState {
            target_id: target,
            subscription_id: subscription,
            remote_id: Some(remote_id.to_owned()),
            fingerprint: Some(fingerprint(entry)),
            pushed_at: None,
            last_error: None,
            failed_at: None,
        });
    }

    fn forget(&mut self, subscription: Uuid) {
        self.forget.push(subscription);
    }

    /// Writes what differs from the store.
    async fn write(
        &mut self,
        txn: &dyn StoreTransaction,
        target: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), PushError> {
        let stored: HashMap<Uuid, PushState> = txn
            .target_push_states(target)
            .await?
            .into_iter()
            .map(|state| (state.subscription_id, state))
            .collect();
        let changed: Vec<PushState> = std::mem::take(&mut self.keep)
            .into_iter()
            .filter(|state| {
                stored.get(&state.subscription_id).is_none_or(|known| {
                    known.remote_id != state.remote_id
                        || known.fingerprint != state.fingerprint
                        || known.last_error.is_some()
                })
            })
            .map(|state| PushState {
                pushed_at: Some(now),
                ..state
            })
            .collect();
        txn.save_push_states(&changed).await?;
        for subscription in std::mem::take(&mut self.forget) {
            txn.delete_push_state(target, subscription).await?;
        }
        Ok(())
    }
}
