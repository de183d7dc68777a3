//! Planning: the diff between a load's input and the stored subscriptions, as batches of
//! changes and the rows that need no write.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use cadre_domain::SubscriptionSnapshot;
use cadre_domain::{
    BlockInstance, BlockRef, DomainError, Email, ExternalId, Lifecycle, Name, ProductType,
    Repositories, SubscriptionQuery,
};
use cadre_products::models::Employment;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::input::{Mode, UserGroupRow, UserRow};
use crate::report::{Outcome, RowReport};
use crate::settings::LoadSettings;

/// One planned write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Change {
    /// The input row, `None` for removals of unlisted objects and groups a user load adds.
    pub row: Option<u64>,
    /// The external id of the user or group.
    pub id: String,
    /// The subscription written (new ones get their id at planning).
    pub subscription_id: Uuid,
    /// What to write.
    pub action: Action,
}

impl Change {
    /// The report row the change would have if applied.
    pub fn planned(&self) -> RowReport {
        RowReport::new(self.row, self.id.clone(), self.action.outcome())
    }
}

/// What a change writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub(crate) enum Action {
    /// A new user.
    CreateUser(UserFields),
    /// An existing user, set to these fields.
    UpdateUser(UserFields),
    /// A new group whose block instance gets `instance_id` (others refer to it).
    CreateGroup {
        /// The group's block instance id.
        instance_id: Uuid,
        /// The group's fields.
        fields: GroupFields,
    },
    /// An existing group, set to these fields.
    UpdateGroup(GroupFields),
    /// Terminate the subscription.
    Remove,
}

impl Action {
    /// The outcome of applying the action.
    pub fn outcome(&self) -> Outcome {
        match self {
            Action::CreateUser(_) | Action::CreateGroup { .. } => Outcome::Created,
            Action::UpdateUser(_) | Action::UpdateGroup(_) => Outcome::Updated,
            Action::Remove => Outcome::Removed,
        }
    }
}

/// A user's fields as a load writes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct UserFields {
    pub user_id: ExternalId,
    /// The user name of a new user, when it is not the id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<Name>,
    /// Where the user works, when the row says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employment: Option<Employment>,
    /// Whether a new user is created disabled.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    pub firstname: Option<Name>,
    pub lastname: Option<Name>,
    pub email: Email,
    pub auth_id: Option<String>,
    /// The groups, in the order of their external ids.
    pub groups: Vec<BlockRef>,
    /// Their names, for the description.
    pub group_names: Vec<Name>,
}

/// A group's fields as a load writes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct GroupFields {
    pub user_group_id: ExternalId,
    pub name: Name,
    /// The parents, in the order of their external ids.
    pub parents: Vec<BlockRef>,
}

/// A load's plan.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// The writes, in the order they must happen, cut into batches.
    pub batches: Vec<Vec<Change>>,
    /// The rows that need no write: unchanged, skipped, or failed before writing.
    pub settled: Vec<RowReport>,
    /// How many live subscriptions the load manages before it runs (full loads).
    pub managed: usize,
    /// How many subscriptions it removes.
    pub removals: usize,
}

/// Why a load cannot be planned.
pub(crate) type PlanError = DomainError;

/// A live group as stored.
#[derive(Debug, Clone)]
struct StoredGroup {
    subscription_id: Uuid,
    reference: BlockRef,
    name: Name,
    parents: BTreeSet<String>,
    lifecycle: Lifecycle,
    insync: bool,
}

/// The block of the user and group products, and the fields a load compares.
const USER_BLOCK: &str = "UserBlock";
const GROUP_BLOCK: &str = "UserGroupBlock";

/// The instance of `block` a snapshot owns, refusing a subscription without one (as the domain
/// models do).
fn owned_block<'a>(
    snapshot: &'a SubscriptionSnapshot,
    block: &str,
) -> Result<&'a BlockInstance, PlanError> {
    snapshot.block(block).ok_or_else(|| {
        DomainError::invalid("subscription", format!("{} has no {block}", snapshot.id))
    })
}

/// The single value of `field` parsed with `parse`, naming the field on error (as the domain
/// models do).
fn parsed<T>(
    block: &BlockInstance,
    field: &str,
    parse: impl FnOnce(&str) -> Result<T, DomainError>,
) -> Result<Option<T>, PlanError> {
    block
        .value(field)
        .map(|raw| {
            parse(raw).map_err(|error| {
                DomainError::invalid(format!("{}.{field}", block.block), error.to_string())
            })
        })
        .transpose()
}

/// Every live group that has an external id, by id.
async fn stored_groups(repo: &dyn Repositories) -> Result<HashMap<String, StoredGroup>, PlanError> {
    let listed = repo
        .list_subscriptions(&SubscriptionQuery {
            product_type: Some(ProductType::user_group()),
            ..SubscriptionQuery::default()
        })
        .await?;
    let ids: Vec<Uuid> = listed
        .items
        .iter()
        .filter(|summary| summary.subscription.lifecycle != Lifecycle::Terminated)
        .map(|summary| summary.subscription.id)
        .collect();
    let snapshots = repo.load_snapshots(&ids).await?;
    let mut groups = Vec::with_capacity(snapshots.len());
    for snapshot in &snapshots {
        let block = owned_block(snapshot, GROUP_BLOCK)?;
        let id = parsed(block, "user_group_id", ExternalId::parse)?;
        let name = parsed(block, "user_group_name", Name::parse)?;
        groups.push((snapshot, block, id, name));
    }
    let id_of: HashMap<Uuid, &str> = groups
        .iter()
        .filter_map(|(_, block, id, _)| Some((block.id, id.as_ref()?.as_str())))
        .collect();
    Ok(groups
        .iter()
        .filter_map(|(snapshot, block, id, name)| {
            let id = id.as_ref()?.as_str().to_owned();
            let name = name.clone()?;
            let parents = block
                .references("parent_groups")
                .iter()
                .filter_map(|parent| id_of.get(&parent.instance_id).map(|id| (*id).to_owned()))
                .collect();
            let stored = StoredGroup {
                subscription_id: snapshot.id,
                reference: BlockRef {
                    instance_id: block.id,
                    owner_subscription_id: snapshot.id,
                },
                name,
                parents,
                lifecycle: snapshot.lifecycle,
                insync: snapshot.insync,
            };
            Some((id, stored))
        })
        .collect())
}

/// A live user as stored, with the digest of what a load compares.
#[derive(Debug, Clone)]
struct StoredUser {
    subscription_id: Uuid,
    fingerprint: String,
    lifecycle: Lifecycle,
    insync: bool,
}

/// The digest of the fields a user load compares: the names, the email, the auth id and the
/// set of group instances. A load records it with each user it writes, so that the next load
/// can tell an unchanged user without reading it.
fn user_fingerprint(
    firstname: Option<&Name>,
    lastname: Option<&Name>,
    email: Option<&Email>,
    auth_id: Option<&str>,
    groups: impl IntoIterator<Item = Uuid>,
) -> String {
    // An unambiguous encoding: options tagged, strings length-prefixed, then the sorted ids.
    let mut hasher = Sha256::new();
    for field in [
        firstname.map(Name::as_str),
        lastname.map(Name::as_str),
        email.map(Email::as_str),
        auth_id,
    ] {
        match field {
            Some(text) => {
                hasher.update([1]);
                hasher.update((text.len() as u64).to_le_bytes());
                hasher.update(text.as_bytes());
            }
            None => hasher.update([0]),
        }
    }
    for group in groups.into_iter().collect::<BTreeSet<Uuid>>() {
        hasher.update(group.as_bytes());
    }
    hex::encode(hasher.finalize())
}

impl UserFields {
    /// The digest of the fields, as [`user_fingerprint`].
    pub fn fingerprint(&self) -> String {
        user_fingerprint(
            self.firstname.as_ref(),
            self.lastname.as_ref(),
            Some(&self.email),
            self.auth_id.as_deref(),
            self.groups.iter().map(|group| group.instance_id),
        )
    }
}

/// Loads the users `ids` by user id, from their snapshots; references to groups that are not
/// live (not in `live_groups`) are left out of the digest.
async fn stored_users(
    repo: &dyn Repositories,
    ids: &[Uuid],
    live_groups: &HashSet<Uuid>,
    into: &mut HashMap<String, StoredUser>,
) -> Result<(), PlanError> {
    for snapshot in repo.load_snapshots(ids).await? {
        let block = owned_block(&snapshot, USER_BLOCK)?;
        let Some(user_id) = parsed(block, "user_id", ExternalId::parse)? else {
            continue;
        };
        let fingerprint = user_fingerprint(
            parsed(block, "firstname", Name::parse)?.as_ref(),
            parsed(block, "lastname", Name::parse)?.as_ref(),
            parsed(block, "email", Email::parse)?.as_ref(),
            block.value("auth_id"),
            block
                .references("groups")
                .iter()
                .map(|group| group.instance_id)
                .filter(|instance| live_groups.contains(instance)),
        );
        let stored = StoredUser {
            subscription_id: snapshot.id,
            fingerprint,
            lifecycle: snapshot.lifecycle,
            insync: snapshot.insync,
        };
        into.insert(user_id.as_str().to_owned(), stored);
    }
    Ok(())
}

/// Why a stored subscription cannot be changed now, if it cannot.
fn busy(lifecycle: Lifecycle, insync: bool) -> Option<String> {
    if lifecycle != Lifecycle::Active {
        return Some(format!("the subscription is {lifecycle}, not active"));
    }
    (!insync).then(|| "another process is working on the subscription".to_owned())
}

/// Refuses a full load that removes more than the settings allow.
fn guard(plan: &Plan, settings: &LoadSettings) -> Result<(), PlanError> {
    let limit = u128::from(settings.max_removal_percent) * plan.managed as u128;
    if settings.mode == Mode::Full && !settings.force && plan.removals as u128 * 100 > limit {
        return Err(DomainError::Conflict(format!(
            "the load would remove {} of the {} subscriptions it manages, more than {}%; \
             check the input, or force the load",
            plan.removals, plan.managed, settings.max_removal_percent
        )));
    }
    Ok(())
}

/// Cuts `changes` into batches of at most `size`.
fn batches(changes: Vec<Change>, size: usize) -> Vec<Vec<Change>> {
    let size = size.max(1);
    let mut batches = Vec::with_capacity(changes.len().div_ceil(size));
    let mut changes = changes.into_iter().peekable();
    while changes.peek().is_some() {
        batches.push(changes.by_ref().take(size).collect());
    }
    batches
}

/// The live subscriptions holding each of `values` for the unique resource type.
async fn holders(
    repo: &dyn Repositories,
    resource_type: &str,
    values: Vec<String>,
) -> Result<HashMap<String, Uuid>, PlanError> {
    Ok(repo
        .find_by_unique_values(resource_type, &values)
        .await?
        .into_iter()
        .collect())
}

/// Plans a user load: groups the rows name that do not exist first, then creates and updates
/// in input order, then removals.
pub(crate) async fn plan_users(
    repo: &dyn Repositories,
    rows: &[UserRow],
    settings: &LoadSettings,
) -> Result<Plan, PlanError> {
    let product = repo.product_by_name(&settings.user_product).await?;
    if product.product_type != ProductType::user() {
        return Err(DomainError::invalid(
            "user_product",
            format!("{} is not a User product", product.name),
        ));
    }
    let mut groups = stored_groups(repo).await?;
    let live_groups: HashSet<Uuid> = groups
        .values()
        .map(|group| group.reference.instance_id)
        .collect();

    // Managed users a load wrote and nobody changed since are known by their marks; the rest
    // are read.
    let mut stored = HashMap::new();
    let mut unread = Vec::new();
    if settings.mode == Mode::Full {
        for mark in repo.provisioned_subscriptions(&ProductType::user()).await? {
            match mark.written {
                Some(written) => {
                    let user = StoredUser {
                        subscription_id: mark.subscription_id,
                        fingerprint: written.fingerprint,
                        lifecycle: mark.lifecycle,
                        insync: mark.insync,
                    };
                    stored.insert(written.external_id, user);
                }
                None => unread.push(mark.subscription_id),
            }
        }
    }
    stored_users(repo, &unread, &live_groups, &mut stored).await?;
    let managed_ids: HashSet<String> = stored.keys().cloned().collect();
    let unknown: Vec<String> = rows
        .iter()
        .map(|row| row.user_id.as_str().to_owned())
        .filter(|id| !stored.contains_key(id))
        .collect();
    let others: Vec<Uuid> = holders(repo, "user_id", unknown)
        .await?
        .into_values()
        .collect();
    stored_users(repo, &others, &live_groups, &mut stored).await?;

    let mut plan = Plan {
        managed: managed_ids.len(),
        ..Plan::default()
    };
    let mut group_changes = Vec::new();
    let mut user_changes = Vec::new();
    for row in rows {
        let id = row.user_id.as_str();
        let report = |outcome, reason: &str| RowReport::because(Some(row.row), id, outcome, reason);
        if settings.protected.contains(id) {
            plan.settled.push(report(
                Outcome::Skipped,
                "a protected user: loads never change it",
            ));
            continue;
        }
        let existing = stored.get(id);
        if settings.create_only && existing.is_some() {
            plan.settled
                .push(report(Outcome::Failed, "a user with this id exists"));
            continue;
        }
        if let Some(reason) = existing.and_then(|user| busy(user.lifecycle, user.insync)) {
            plan.settled.push(report(Outcome::Skipped, &reason));
            continue;
        }
        if !row.active {
            match existing {
                Some(user) => user_changes.push(Change {
                    row: Some(row.row),
                    id: id.to_owned(),
                    subscription_id: user.subscription_id,
                    action: Action::Remove,
                }),
                None => plan
                    .settled
                    .push(RowReport::new(Some(row.row), id, Outcome::Unchanged)),
            }
            continue;
        }
        let Some(email) = row.email.clone() else {
            plan.settled
                .push(report(Outcome::Failed, "email is required"));
            continue;
        };
        let mut references = Vec::with_capacity(row.user_groups.len());
        let mut group_names = Vec::with_capacity(row.user_groups.len());
        for group_id in &row.user_groups {
            let group = groups
                .entry(group_id.as_str().to_owned())
                .or_insert_with(|| {
                    let subscription_id = Uuid::now_v7();
                    let instance_id = Uuid::now_v7();
                    group_changes.push(Change {
                        row: None,
                        id: group_id.as_str().to_owned(),
                        subscription_id,
                        action: Action::CreateGroup {
                            instance_id,
                            fields: GroupFields {
                                user_group_id: group_id.clone(),
                                name: group_id.to_name(),
                                parents: Vec::new(),
                            },
                        },
                    });
                    StoredGroup {
                        subscription_id,
                        reference: BlockRef {
                            instance_id,
                            owner_subscription_id: subscription_id,
                        },
                        name: group_id.to_name(),
                        parents: BTreeSet::new(),
                        lifecycle: Lifecycle::Active,
                        insync: true,
                    }
                });
            references.push(group.reference);
            group_names.push(group.name.clone());
        }
        let fields = UserFields {
            user_id: row.user_id.clone(),
            username: row.username.clone(),
            employment: row.employment.clone(),
            disabled: row.disabled,
            firstname: row.firstname.clone(),
            lastname: row.lastname.clone(),
            email,
            auth_id: row.auth_id.clone(),
            groups: references,
            group_names,
        };
        match existing {
            Some(user) => {
                let same = user.fingerprint == fields.fingerprint();
                if same {
                    plan.settled
                        .push(RowReport::new(Some(row.row), id, Outcome::Unchanged));
                } else {
                    user_changes.push(Change {
                        row: Some(row.row),
                        id: id.to_owned(),
                        subscription_id: user.subscription_id,
                        action: Action::UpdateUser(fields),
                    });
                }
            }
            None => user_changes.push(Change {
                row: Some(row.row),
                id: id.to_owned(),
                subscription_id: Uuid::now_v7(),
                action: Action::CreateUser(fields),
            }),
        }
    }
    let user_changes = refuse_taken_user_values(repo, user_changes, &mut plan.settled).await?;
    let listed: HashSet<&str> = rows.iter().map(|row| row.user_id.as_str()).collect();
    let mut removals: Vec<Change> = user_changes
        .iter()
        .filter(|change| matches!(change.action, Action::Remove))
        .cloned()
        .collect();
    let mut writes: Vec<Change> = user_changes
        .into_iter()
        .filter(|change| !matches!(change.action, Action::Remove))
        .collect();
    if settings.mode == Mode::Full {
        let mut unlisted: Vec<(&String, &StoredUser)> = stored
            .iter()
            .filter(|(id, _)| managed_ids.contains(*id) && !listed.contains(id.as_str()))
            .filter(|(id, _)| !settings.protected.contains(*id))
            .collect();
        unlisted.sort_by_key(|(id, _)| *id);
        for (id, user) in unlisted {
            match busy(user.lifecycle, user.insync) {
                Some(reason) => plan.settled.push(RowReport::because(
                    None,
                    id.as_str(),
                    Outcome::Skipped,
                    reason,
                )),
                None => removals.push(Change {
                    row: None,
                    id: id.clone(),
                    subscription_id: user.subscription_id,
                    action: Action::Remove,
                }),
            }
        }
    }
    plan.removals = removals.len();
    guard(&plan, settings)?;
    let mut changes = group_changes;
    changes.append(&mut writes);
    changes.append(&mut removals);
    plan.batches = batches(changes, settings.batch_size);
    Ok(plan)
}

/// Fails the user writes whose email, or whose user id as a new user name, another live
/// subscription holds; the rest go on.
async fn refuse_taken_user_values(
    repo: &dyn Repositories,
    changes: Vec<Change>,
    settled: &mut Vec<RowReport>,
) -> Result<Vec<Change>, PlanError> {
    let emails: Vec<String> = changes
        .iter()
        .filter_map(|change| match &change.action {
            Action::CreateUser(fields) | Action::UpdateUser(fields) => {
                Some(fields.email.as_str().to_owned())
            }
            _ => None,
        })
        .collect();
    let new_name = |change: &Change| match &change.action {
        Action::CreateUser(fields) => Some(
            fields
                .username
                .as_ref()
                .map_or_else(|| change.id.clone(), Name::to_string),
        ),
        _ => None,
    };
    let new_names: Vec<String> = changes.iter().filter_map(new_name).collect();
    let emails = holders(repo, "email", emails).await?;
    let names = holders(repo, "username", new_names).await?;
    let mut kept = Vec::with_capacity(changes.len());
    for change in changes {
        let taken = match &change.action {
            Action::CreateUser(fields) | Action::UpdateUser(fields) => {
                let other = |holder: Option<&Uuid>| {
                    holder.is_some_and(|holder| *holder != change.subscription_id)
                };
                if other(emails.get(fields.email.as_str())) {
                    Some("another user has this email address")
                } else if new_name(&change).is_some_and(|name| other(names.get(&name))) {
                    Some("another user has this user name")
                } else {
                    None
                }
            }
            _ => None,
        };
        match taken {
            Some(reason) => settled.push(RowReport::because(
                change.row,
                change.id,
                Outcome::Failed,
                reason,
            )),
            None => kept.push(change),
        }
    }
    Ok(kept)
}

/// How deep groups may nest in a load: a chain of parents longer than this is refused.
pub const MAX_GROUP_DEPTH: usize = 100;

/// Why groups cannot be ordered parents first.
enum Nesting {
    /// The groups on a cycle, the first one again at its end.
    Cycle(Vec<String>),
    /// A group nested deeper than [`MAX_GROUP_DEPTH`].
    TooDeep(String),
}

/// The depth of each group in `parents` (roots are 0), or why there is none: the first cycle
/// found, or a chain deeper than [`MAX_GROUP_DEPTH`]. A walk with a stack of its own, so that
/// no input can exhaust the thread's.
fn depths(parents: &BTreeMap<String, BTreeSet<String>>) -> Result<HashMap<String, usize>, Nesting> {
    /// A group on the walk's path: its parents, the next one to visit, its depth so far.
    struct Frame<'a> {
        id: &'a str,
        parents: Vec<&'a str>,
        next: usize,
        depth: usize,
    }
    fn frame<'a>(parents: &'a BTreeMap<String, BTreeSet<String>>, id: &'a str) -> Frame<'a> {
        Frame {
            id,
            parents: parents
                .get(id)
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect(),
            next: 0,
            depth: 0,
        }
    }
    let mut depths: HashMap<String, usize> = HashMap::new();
    for start in parents.keys() {
        if depths.contains_key(start) {
            continue;
        }
        let mut path = vec![frame(parents, start)];
        let mut on_path: HashSet<&str> = HashSet::from([start.as_str()]);
        while let Some(top) = path.last_mut() {
            if let Some(&parent) = top.parents.get(top.next) {
                top.next += 1;
                if let Some(depth) = depths.get(parent) {
                    top.depth = top.depth.max(depth + 1);
                } else if on_path.contains(parent) {
                    let from = path.iter().position(|seen| seen.id == parent).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        path[from..].iter().map(|seen| seen.id.to_owned()).collect();
                    cycle.push(parent.to_owned());
                    return Err(Nesting::Cycle(cycle));
                } else {
                    on_path.insert(parent);
                    path.push(frame(parents, parent));
                }
                continue;
            }
            let done = path
                .pop()
                .unwrap_or_else(|| unreachable!("the loop saw a frame"));
            if done.depth > MAX_GROUP_DEPTH {
                return Err(Nesting::TooDeep(done.id.to_owned()));
            }
            on_path.remove(done.id);
            depths.insert(done.id.to_owned(), done.depth);
            if let Some(child) = path.last_mut() {
                child.depth = child.depth.max(done.depth + 1);
            }
        }
    }
    Ok(depths)
}

/// Plans a group load: creates and updates parents before children at any depth, then
/// removals children first. A cycle in the groups as they would be after the load is refused.
pub(crate) async fn plan_groups(
    repo: &dyn Repositories,
    rows: &[UserGroupRow],
    settings: &LoadSettings,
) -> Result<Plan, PlanError> {
    let stored = stored_groups(repo).await?;
    let managed: HashSet<Uuid> = if settings.mode == Mode::Full {
        repo.provisioned_subscriptions(&ProductType::user_group())
            .await?
            .into_iter()
            .map(|mark| mark.subscription_id)
            .collect()
    } else {
        HashSet::new()
    };
    let listed: HashSet<&str> = rows.iter().map(|row| row.user_group_id.as_str()).collect();
    let active: HashMap<&str, &UserGroupRow> = rows
        .iter()
        .filter(|row| row.active)
        .map(|row| (row.user_group_id.as_str(), row))
        .collect();
    let removed: HashSet<&str> = stored
        .iter()
        .filter(|(id, group)| {
            let unlisted =
                managed.contains(&group.subscription_id) && !listed.contains(id.as_str());
            let inactive = listed.contains(id.as_str()) && !active.contains_key(id.as_str());
            unlisted || inactive
        })
        .map(|(id, _)| id.as_str())
        .collect();

    // The groups as they would be after the load, to order the writes and find cycles.
    let mut after: BTreeMap<String, BTreeSet<String>> = stored
        .iter()
        .filter(|(id, _)| !removed.contains(id.as_str()))
        .map(|(id, group)| (id.clone(), group.parents.clone()))
        .collect();
    for (id, row) in &active {
        let parents = row
            .parent_user_groups
            .iter()
            .map(|parent| parent.as_str().to_owned())
            .collect();
        after.insert((*id).to_owned(), parents);
    }
    let current: BTreeMap<String, BTreeSet<String>> = stored
        .iter()
        .map(|(id, group)| (id.clone(), group.parents.clone()))
        .collect();
    // Stored groups form no cycle (the workflows refuse them); if they did, order removals by id.
    let current_depth = depths(&current).unwrap_or_default();
    let depth = depths(&after).map_err(|nesting| {
        DomainError::invalid(
            "parent_user_groups",
            match nesting {
                Nesting::Cycle(cycle) => {
                    format!("the groups would form a cycle: {}", cycle.join(" -> "))
                }
                Nesting::TooDeep(id) => format!(
                    "group {id} would be nested deeper than {MAX_GROUP_DEPTH} groups, the most a load orders"
                ),
            },
        )
    })?;

    let mut plan = Plan {
        managed: managed.len(),
        ..Plan::default()
    };
    // New groups get their ids first, so that children can refer to them.
    let mut references: HashMap<String, BlockRef> = stored
        .iter()
        .filter(|(id, _)| !removed.contains(id.as_str()))
        .map(|(id, group)| (id.clone(), group.reference))
        .collect();
    for id in active.keys().filter(|id| !stored.contains_key(**id)) {
        let subscription_id = Uuid::now_v7();
        references.insert(
            (*id).to_owned(),
            BlockRef {
                instance_id: Uuid::now_v7(),
                owner_subscription_id: subscription_id,
            },
        );
    }
    let mut ordered: Vec<&UserGroupRow> = rows.iter().collect();
    ordered.sort_by_key(|row| (depth.get(row.user_group_id.as_str()).copied(), row.row));
    let mut failed: HashSet<String> = HashSet::new();
    let mut writes = Vec::new();
    let mut removals = Vec::new();
    for row in ordered {
        let id = row.user_group_id.as_str();
        let existing = stored.get(id);
        if let Some(reason) = existing.and_then(|group| busy(group.lifecycle, group.insync)) {
            plan.settled.push(RowReport::because(
                Some(row.row),
                id,
                Outcome::Skipped,
                reason,
            ));
            failed.insert(id.to_owned());
            continue;
        }
        if !row.active {
            match existing {
                Some(group) => removals.push((
                    current_depth.get(id).copied().unwrap_or(0),
                    Change {
                        row: Some(row.row),
                        id: id.to_owned(),
                        subscription_id: group.subscription_id,
                        action: Action::Remove,
                    },
                )),
                None => plan
                    .settled
                    .push(RowReport::new(Some(row.row), id, Outcome::Unchanged)),
            }
            continue;
        }
        let missing = row.parent_user_groups.iter().find_map(|parent| {
            if failed.contains(parent.as_str()) {
                Some(format!("parent group {parent} could not be written"))
            } else if !references.contains_key(parent.as_str()) {
                Some(format!("parent group {parent} does not exist"))
            } else {
                None
            }
        });
        if let Some(reason) = missing {
            plan.settled.push(RowReport::because(
                Some(row.row),
                id,
                Outcome::Failed,
                reason,
            ));
            failed.insert(id.to_owned());
            continue;
        }
        let fields = GroupFields {
            user_group_id: row.user_group_id.clone(),
            name: row.user_group_name.clone(),
            parents: row
                .parent_user_groups
                .iter()
                .filter_map(|parent| references.get(parent.as_str()).copied())
                .collect(),
        };
        let change = match existing {
            Some(group) => {
                let wanted: BTreeSet<String> = row
                    .parent_user_groups
                    .iter()
                    .map(|parent| parent.as_str().to_owned())
                    .collect();
                if group.name == fields.name && group.parents == wanted {
                    plan.settled
                        .push(RowReport::new(Some(row.row), id, Outcome::Unchanged));
                    continue;
                }
                Change {
                    row: Some(row.row),
                    id: id.to_owned(),
                    subscription_id: group.subscription_id,
                    action: Action::UpdateGroup(fields),
                }
            }
            None => {
                let reference = references[id];
                Change {
                    row: Some(row.row),
                    id: id.to_owned(),
                    subscription_id: reference.owner_subscription_id,
                    action: Action::CreateGroup {
                        instance_id: reference.instance_id,
                        fields,
                    },
                }
            }
        };
        writes.push(change);
    }
    // Names another live group holds fail their row (and the row's children).
    let names: Vec<String> = writes
        .iter()
        .filter_map(|change| match &change.action {
            Action::CreateGroup { fields, .. } | Action::UpdateGroup(fields) => {
                Some(fields.name.as_str().to_owned())
            }
            _ => None,
        })
        .collect();
    let taken = holders(repo, "user_group_name", names).await?;
    let stored_ids: HashSet<Uuid> = stored.values().map(|group| group.subscription_id).collect();
    let mut kept: Vec<Change> = Vec::with_capacity(writes.len());
    let mut kept_ids: HashSet<Uuid> = HashSet::new();
    for change in writes {
        let (name, parents) = match &change.action {
            Action::CreateGroup { fields, .. } | Action::UpdateGroup(fields) => {
                (fields.name.as_str(), &fields.parents)
            }
            _ => continue,
        };
        let reason = if taken
            .get(name)
            .is_some_and(|holder| *holder != change.subscription_id)
        {
            Some("another group has this name".to_owned())
        } else {
            parents
                .iter()
                .any(|parent| {
                    let owner = parent.owner_subscription_id;
                    !kept_ids.contains(&owner) && !stored_ids.contains(&owner)
                })
                .then(|| "a parent group could not be written".to_owned())
        };
        match reason {
            Some(reason) => plan.settled.push(RowReport::because(
                change.row,
                change.id,
                Outcome::Failed,
                reason,
            )),
            None => {
                kept_ids.insert(change.subscription_id);
                kept.push(change);
            }
        }
    }
    if settings.mode == Mode::Full {
        for (id, group) in &stored {
            if managed.contains(&group.subscription_id) && !listed.contains(id.as_str()) {
                match busy(group.lifecycle, group.insync) {
                    Some(reason) => plan.settled.push(RowReport::because(
                        None,
                        id.as_str(),
                        Outcome::Skipped,
                        reason,
                    )),
                    None => removals.push((
                        current_depth.get(id).copied().unwrap_or(0),
                        Change {
                            row: None,
                            id: id.clone(),
                            subscription_id: group.subscription_id,
                            action: Action::Remove,
                        },
                    )),
                }
            }
        }
    }
    // Children go before their parents.
    removals.sort_by(|(a, x), (b, y)| b.cmp(a).then_with(|| x.id.cmp(&y.id)));
    plan.removals = removals.len();
    guard(&plan, settings)?;
    kept.extend(removals.into_iter().map(|(_, change)| change));
    plan.batches = batches(kept, settings.batch_size);
    Ok(plan)
}
