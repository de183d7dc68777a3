//! Subscriptions in memory, created, loaded and saved whole with the checks of the real store
//! (`cadre-store`'s `subscriptions/write.rs`), in the order it makes them, and listed with its
//! filters, sort keys and pages.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::error::{DomainError, Result};
use crate::ids::identity_key;
use crate::lifecycle::Lifecycle;
use crate::ports::{
    Page, SortOrder, SubscriptionQuery, SubscriptionRepository, SubscriptionSnapshot,
    SubscriptionSort,
};
use crate::subscription::{
    BlockInstance, BlockRef, BlockRelation, NewSubscription, Subscription, SubscriptionRecord,
    SubscriptionSummary,
};

use super::catalogue::Catalogue;
use super::{Access, DUPLICATE, MISSING_REFERENCE, Tables};

/// The message of an identifying value another live subscription holds.
const IDENTIFYING_TAKEN: &str = "a live subscription already holds one of these identifying values";

/// A subscription row with the block instances it owns.
#[derive(Debug, Clone)]
struct Stored {
    subscription: Subscription,
    /// In instance id order, each as [`stored_block`] keeps it.
    blocks: Vec<BlockInstance>,
}

/// The subscriptions, by id (ids are time-ordered: creation order), and who owns each block
/// instance.
#[derive(Debug, Clone, Default)]
pub(super) struct Subscriptions {
    rows: BTreeMap<Uuid, Stored>,
    owners: HashMap<Uuid, Uuid>,
}

/// A block as the real store keeps it: a value list without values is no rows, and relations
/// are read back by field and position (one per slot).
fn stored_block(block: &BlockInstance) -> BlockInstance {
    let mut block = block.clone();
    block.values.retain(|_, values| !values.is_empty());
    let slots: BTreeMap<(String, i64), BlockRef> = block
        .relations
        .iter()
        .map(|relation| ((relation.attr.clone(), relation.position), relation.target))
        .collect();
    block.relations = slots
        .into_iter()
        .map(|((attr, position), target)| BlockRelation {
            attr,
            position,
            target,
        })
        .collect();
    block
}

/// `blocks` as stored, in instance id order.
fn stored_blocks(blocks: &[BlockInstance]) -> Vec<BlockInstance> {
    let mut blocks: Vec<BlockInstance> = blocks.iter().map(stored_block).collect();
    blocks.sort_by_key(|block| block.id);
    blocks
}

fn is_live(subscription: &Subscription) -> bool {
    subscription.lifecycle != Lifecycle::Terminated
}

impl Subscriptions {
    /// Whether subscription `id` exists.
    pub(super) fn contains(&self, id: Uuid) -> bool {
        self.rows.contains_key(&id)
    }

    /// The row of subscription `id`.
    pub(super) fn subscription(&self, id: Uuid) -> Option<&Subscription> {
        self.rows.get(&id).map(|stored| &stored.subscription)
    }

    /// Every subscription row, in id order.
    pub(super) fn all(&self) -> impl Iterator<Item = &Subscription> {
        self.rows.values().map(|stored| &stored.subscription)
    }

    /// Stores `stored` in place of what was stored under its id.
    fn put(&mut self, stored: Stored) {
        let id = stored.subscription.id;
        if let Some(old) = self.rows.get(&id) {
            for block in &old.blocks {
                self.owners.remove(&block.id);
            }
        }
        for block in &stored.blocks {
            self.owners.insert(block.id, id);
        }
        self.rows.insert(id, stored);
    }

    /// The owner and block name of block instance `id`.
    fn home(&self, id: Uuid) -> Option<(Uuid, String)> {
        let owner = *self.owners.get(&id)?;
        let block = self
            .rows
            .get(&owner)?
            .blocks
            .iter()
            .find(|block| block.id == id)?;
        Some((owner, block.block.clone()))
    }

    /// Whether a relation of an instance not in `targets` points at one of `targets`.
    fn referenced(&self, targets: &HashSet<Uuid>) -> bool {
        self.rows
            .values()
            .flat_map(|stored| &stored.blocks)
            .filter(|block| !targets.contains(&block.id))
            .flat_map(|block| &block.relations)
            .any(|relation| targets.contains(&relation.target.instance_id))
    }

    /// Refuses identifying values of the live subscriptions `changed` that another live
    /// subscription, or another of their own values, holds.
    fn check_unique(&self, catalogue: &Catalogue, changed: &[Uuid]) -> Result<()> {
        let claims = |stored: &Stored| {
            let mut claims = Vec::new();
            if !is_live(&stored.subscription) {
                return claims;
            }
            for block in &stored.blocks {
                let Ok(definition) = catalogue.block(&block.block) else {
                    continue;
                };
                for (field, values) in &block.values {
                    if let Some(resource_type) = definition.resource_type(field)
                        && resource_type.unique
                    {
                        claims.extend(
                            values
                                .iter()
                                .map(|value| (resource_type.id, identity_key(value))),
                        );
                    }
                }
            }
            claims
        };
        let mut taken = HashSet::new();
        for stored in changed.iter().filter_map(|id| self.rows.get(id)) {
            for claim in claims(stored) {
                if !taken.insert(claim) {
                    return Err(DomainError::Conflict(IDENTIFYING_TAKEN.to_owned()));
                }
            }
        }
        if taken.is_empty() {
            return Ok(());
        }
        let changed: HashSet<&Uuid> = changed.iter().collect();
        for (id, stored) in &self.rows {
            if changed.contains(id) {
                continue;
            }
            if claims(stored).iter().any(|claim| taken.contains(claim)) {
                return Err(DomainError::Conflict(IDENTIFYING_TAKEN.to_owned()));
            }
        }
        Ok(())
    }

    fn record(&self, catalogue: &Catalogue, id: Uuid) -> Result<SubscriptionRecord> {
        let stored = self
            .rows
            .get(&id)
            .ok_or_else(|| DomainError::not_found("subscription", id))?;
        Ok(SubscriptionRecord {
            subscription: stored.subscription.clone(),
            product: catalogue.product(stored.subscription.product_id)?.clone(),
            blocks: stored.blocks.clone(),
        })
    }

    fn snapshot(&self, id: Uuid) -> Option<SubscriptionSnapshot> {
        self.rows.get(&id).map(|stored| SubscriptionSnapshot {
            id,
            product_id: stored.subscription.product_id,
            lifecycle: stored.subscription.lifecycle,
            insync: stored.subscription.insync,
            version: stored.subscription.version,
            blocks: stored.blocks.clone(),
        })
    }
}

/// The row of a listing: the subscription with its product's name and type.
fn summary(catalogue: &Catalogue, subscription: &Subscription) -> Result<SubscriptionSummary> {
    let product = catalogue.product(subscription.product_id)?;
    Ok(SubscriptionSummary {
        subscription: subscription.clone(),
        product_name: product.name.clone(),
        product_type: product.product_type.clone(),
    })
}

/// Refuses a value field `block`'s definition does not have.
fn check_field(catalogue: &Catalogue, block: &BlockInstance, field: &str) -> Result<()> {
    if catalogue
        .block(&block.block)?
        .resource_type(field)
        .is_none()
    {
        return Err(DomainError::invalid(
            format!("{}.{field}", block.block),
            format!("is not a field of {}", block.block),
        ));
    }
    Ok(())
}

/// Checks every reference of `block`: its target exists (`home` gives a target's owner and
/// block), is owned by the subscription the reference names, and is of a block the referring
/// block may use.
fn check_relations(
    catalogue: &Catalogue,
    block: &BlockInstance,
    home: impl Fn(Uuid) -> Option<(Uuid, String)>,
) -> Result<()> {
    let definition = catalogue.block(&block.block)?;
    for relation in &block.relations {
        let field = format!("{}.{}", block.block, relation.attr);
        let target_id = relation.target.instance_id;
        let (owner, target_block) = home(target_id).ok_or_else(|| {
            DomainError::invalid(
                &field,
                format!("refers to block instance {target_id}, which does not exist"),
            )
        })?;
        if owner != relation.target.owner_subscription_id {
            return Err(DomainError::invalid(
                &field,
                format!(
                    "block instance {target_id} belongs to subscription {owner}, not {}",
                    relation.target.owner_subscription_id
                ),
            ));
        }
        if !definition.depends_on.contains(&target_block) {
            return Err(DomainError::invalid(
                &field,
                format!("{} cannot refer to a {target_block}", block.block),
            ));
        }
    }
    Ok(())
}

/// Stores the new subscription `record` (of [`SubscriptionRecord::initial`]).
fn create(tables: &mut Tables, record: &SubscriptionRecord) -> Result<SubscriptionRecord> {
    let subscription = &record.subscription;
    if !tables.customers.contains(subscription.customer_id) {
        return Err(DomainError::not_found("customer", subscription.customer_id));
    }
    if tables.subscriptions.contains(subscription.id) {
        return Err(DomainError::Conflict(
            "a subscription with this id already exists".to_owned(),
        ));
    }
    if record
        .blocks
        .iter()
        .any(|block| tables.subscriptions.owners.contains_key(&block.id))
    {
        return Err(DomainError::Conflict(DUPLICATE.to_owned()));
    }
    Arc::make_mut(&mut tables.subscriptions).put(Stored {
        subscription: subscription.clone(),
        blocks: stored_blocks(&record.blocks),
    });
    Ok(record.clone())
}

/// Saves `record` over the stored subscription, with the checks of the real store in its order.
fn save(
    tables: &mut Tables,
    catalogue: &Catalogue,
    record: &SubscriptionRecord,
) -> Result<SubscriptionRecord> {
    let subscription = &record.subscription;
    let id = subscription.id;
    let stored = tables
        .subscriptions
        .rows
        .get(&id)
        .cloned()
        .ok_or_else(|| DomainError::not_found("subscription", id))?;
    if stored.subscription.product_id != subscription.product_id {
        return Err(DomainError::invalid(
            "product_id",
            "a subscription's product cannot change on save",
        ));
    }
    let stored_lifecycle = stored.subscription.lifecycle;
    if stored_lifecycle != subscription.lifecycle {
        stored_lifecycle.transition(subscription.lifecycle)?;
    }
    if stored.subscription.version != subscription.version {
        return Err(DomainError::Conflict(format!(
            "subscription {id} was changed by someone else since version {}; reload it and try again",
            subscription.version
        )));
    }
    if !tables.customers.contains(subscription.customer_id) {
        return Err(DomainError::Conflict(MISSING_REFERENCE.to_owned()));
    }

    let kept: HashSet<Uuid> = record.blocks.iter().map(|block| block.id).collect();
    let removed: HashSet<Uuid> = stored
        .blocks
        .iter()
        .map(|block| block.id)
        .filter(|block| !kept.contains(block))
        .collect();
    if !removed.is_empty() && tables.subscriptions.referenced(&removed) {
        return Err(DomainError::Conflict(format!(
            "subscription {id} cannot drop a block that other subscriptions use"
        )));
    }
    let mut changed_relations = Vec::new();
    for block in &record.blocks {
        catalogue.block(&block.block)?;
        let before = stored.blocks.iter().find(|stored| stored.id == block.id);
        if before.is_none()
            && tables
                .subscriptions
                .owners
                .get(&block.id)
                .is_some_and(|owner| *owner != id)
        {
            return Err(DomainError::Conflict(format!(
                "block instance {} belongs to another subscription",
                block.id
            )));
        }
        let before_fields = before.into_iter().flat_map(|before| before.values.keys());
        let fields: BTreeSet<&String> = block.values.keys().chain(before_fields).collect();
        for field in fields {
            check_field(catalogue, block, field)?;
        }
        let before_relations = before
            .map(|before| before.relations.as_slice())
            .unwrap_or_default();
        if before_relations != block.relations.as_slice() {
            changed_relations.push(block);
        }
    }

    let mut saved_row = subscription.clone();
    saved_row.version += 1;
    let subscriptions = Arc::make_mut(&mut tables.subscriptions);
    subscriptions.put(Stored {
        subscription: saved_row,
        blocks: stored_blocks(&record.blocks),
    });
    subscriptions.check_unique(catalogue, &[id])?;
    for block in changed_relations {
        check_relations(catalogue, block, |target| subscriptions.home(target))?;
    }

    let mut saved = record.clone();
    saved.subscription.version += 1;
    saved.product = catalogue.product(stored.subscription.product_id)?.clone();
    saved.blocks.sort_by_key(|block| block.id);
    Ok(saved)
}

/// Inserts complete new subscriptions after the checks of a save: all or none.
fn insert(
    tables: &mut Tables,
    catalogue: &Catalogue,
    records: &[SubscriptionRecord],
) -> Result<()> {
    let mut batch: HashMap<Uuid, (Uuid, String)> = HashMap::new();
    for record in records {
        catalogue.product(record.subscription.product_id)?;
        for block in &record.blocks {
            catalogue.block(&block.block)?;
            batch.insert(block.id, (record.subscription.id, block.block.clone()));
            for field in block.values.keys() {
                check_field(catalogue, block, field)?;
            }
        }
    }
    for block in records.iter().flat_map(|record| &record.blocks) {
        if !block.relations.is_empty() {
            check_relations(catalogue, block, |target| {
                batch
                    .get(&target)
                    .cloned()
                    .or_else(|| tables.subscriptions.home(target))
            })?;
        }
    }
    let mut new_ids = Vec::with_capacity(records.len());
    for record in records {
        let subscription = &record.subscription;
        if tables.subscriptions.contains(subscription.id) || new_ids.contains(&subscription.id) {
            return Err(DomainError::Conflict(
                "a subscription with this id already exists".to_owned(),
            ));
        }
        if !tables.customers.contains(subscription.customer_id) {
            return Err(DomainError::Conflict(MISSING_REFERENCE.to_owned()));
        }
        new_ids.push(subscription.id);
    }
    let mut instances = HashSet::new();
    for block in records.iter().flat_map(|record| &record.blocks) {
        if tables.subscriptions.owners.contains_key(&block.id) || !instances.insert(block.id) {
            return Err(DomainError::Conflict(DUPLICATE.to_owned()));
        }
    }
    let subscriptions = Arc::make_mut(&mut tables.subscriptions);
    for record in records {
        subscriptions.put(Stored {
            subscription: record.subscription.clone(),
            blocks: stored_blocks(&record.blocks),
        });
    }
    subscriptions.check_unique(catalogue, &new_ids)
}

/// Orders two subscriptions by `sort` in `order`, the id last.
fn compare(
    sort: SubscriptionSort,
    order: SortOrder,
    a: &Subscription,
    b: &Subscription,
) -> Ordering {
    let directed = |ordering: Ordering| match order {
        SortOrder::Asc => ordering,
        SortOrder::Desc => ordering.reverse(),
    };
    let first = match sort {
        SubscriptionSort::Created => Ordering::Equal,
        SubscriptionSort::Description => directed(a.description.cmp(&b.description)),
        // Subscriptions that never started come last, whatever the direction.
        SubscriptionSort::StartDate => match (a.start_date, b.start_date) {
            (Some(a), Some(b)) => directed(a.cmp(&b)),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        },
    };
    first.then_with(|| directed(a.id.cmp(&b.id)))
}

fn list(
    tables: &Tables,
    catalogue: &Catalogue,
    query: &SubscriptionQuery,
) -> Result<Page<SubscriptionSummary>> {
    let products = query
        .product_type
        .as_ref()
        .map(|product_type| catalogue.products_of_type(product_type));
    let text = query
        .text
        .as_deref()
        .filter(|text| !text.is_empty())
        .map(str::to_ascii_lowercase);
    let mut matching: Vec<&Subscription> = tables
        .subscriptions
        .all()
        .filter(|subscription| {
            query
                .ids
                .as_ref()
                .is_none_or(|ids| ids.contains(&subscription.id))
                && products
                    .as_ref()
                    .is_none_or(|products| products.contains(&subscription.product_id))
                && query
                    .lifecycle
                    .is_none_or(|lifecycle| subscription.lifecycle == lifecycle)
                && (!query.established
                    || !matches!(
                        subscription.lifecycle,
                        Lifecycle::Initial | Lifecycle::Terminated
                    ))
                && text
                    .as_deref()
                    .is_none_or(|text| subscription.description.to_ascii_lowercase().contains(text))
        })
        .collect();
    matching.sort_by(|a, b| compare(query.sort, query.order, a, b));
    let total = matching.len() as u64;
    if let Some(after) = query.after {
        matching.retain(|subscription| subscription.id > after);
    }
    let offset = usize::try_from(query.offset).unwrap_or(usize::MAX);
    let limit = query.limit.map_or(usize::MAX, |limit| {
        usize::try_from(limit).unwrap_or(usize::MAX)
    });
    let items = matching
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|subscription| summary(catalogue, subscription))
        .collect::<Result<_>>()?;
    Ok(Page { items, total })
}

/// `ids` without repeats, in id order.
fn distinct(ids: &[Uuid]) -> BTreeSet<Uuid> {
    ids.iter().copied().collect()
}

#[async_trait]
impl<T: Access> SubscriptionRepository for T {
    async fn create_subscription(&self, new: NewSubscription) -> Result<SubscriptionRecord> {
        let product = self.core().catalogue.product(new.product_id)?.clone();
        let record = SubscriptionRecord::initial(new, product, self.core().ids.as_ref());
        self.write(move |tables, _| create(tables, &record))
    }

    async fn load_subscription(&self, id: Uuid) -> Result<SubscriptionRecord> {
        self.read(|tables, catalogue| tables.subscriptions.record(catalogue, id))
    }

    async fn save_subscription(&self, record: &SubscriptionRecord) -> Result<SubscriptionRecord> {
        let record = record.clone();
        self.write(move |tables, catalogue| save(tables, catalogue, &record))
    }

    async fn subscriptions_using(&self, instance_id: Uuid) -> Result<Vec<SubscriptionSummary>> {
        self.read(|tables, catalogue| {
            tables
                .subscriptions
                .rows
                .values()
                .filter(|stored| is_live(&stored.subscription))
                .filter(|stored| {
                    stored
                        .blocks
                        .iter()
                        .flat_map(|block| &block.relations)
                        .any(|relation| relation.target.instance_id == instance_id)
                })
                .map(|stored| summary(catalogue, &stored.subscription))
                .collect()
        })
    }

    async fn list_subscriptions(
        &self,
        query: &SubscriptionQuery,
    ) -> Result<Page<SubscriptionSummary>> {
        self.read(|tables, catalogue| list(tables, catalogue, query))
    }

    async fn load_subscriptions(&self, ids: &[Uuid]) -> Result<Vec<SubscriptionRecord>> {
        self.read(|tables, catalogue| {
            distinct(ids)
                .into_iter()
                .filter(|id| tables.subscriptions.contains(*id))
                .map(|id| tables.subscriptions.record(catalogue, id))
                .collect()
        })
    }

    async fn load_snapshots(&self, ids: &[Uuid]) -> Result<Vec<SubscriptionSnapshot>> {
        Ok(self.read(|tables, _| {
            distinct(ids)
                .into_iter()
                .filter_map(|id| tables.subscriptions.snapshot(id))
                .collect()
        }))
    }

    async fn insert_subscriptions(&self, records: &[SubscriptionRecord]) -> Result<()> {
        let records = records.to_vec();
        self.write(move |tables, catalogue| insert(tables, catalogue, &records))
    }

    async fn find_by_unique_values(
        &self,
        resource_type: &str,
        values: &[String],
    ) -> Result<Vec<(String, Uuid)>> {
        self.read(|tables, catalogue| {
            let resource_type_ids: HashSet<Uuid> = catalogue
                .blocks()
                .iter()
                .flat_map(|block| &block.resource_types)
                .filter(|candidate| candidate.resource_type == resource_type && candidate.unique)
                .map(|candidate| candidate.id)
                .collect();
            if resource_type_ids.is_empty() {
                return Err(DomainError::invalid(
                    "resource_type",
                    format!("{resource_type:?} is not a unique resource type"),
                ));
            }
            // Claimed by their key: `Zed` finds the holder of `zed`, answered as asked.
            let mut asked: HashMap<String, Vec<&String>> = HashMap::new();
            for value in values {
                asked.entry(identity_key(value)).or_default().push(value);
            }
            let mut found = Vec::new();
            for stored in tables.subscriptions.rows.values() {
                if !is_live(&stored.subscription) {
                    continue;
                }
                for block in &stored.blocks {
                    let definition = catalogue.block(&block.block)?;
                    for (field, held) in &block.values {
                        let identifying = definition
                            .resource_type(field)
                            .is_some_and(|candidate| resource_type_ids.contains(&candidate.id));
                        if identifying {
                            for held in held {
                                for value in asked.get(&identity_key(held)).into_iter().flatten() {
                                    found.push(((*value).clone(), stored.subscription.id));
                                }
                            }
                        }
                    }
                }
            }
            Ok(found)
        })
    }
}
