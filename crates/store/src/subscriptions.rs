//! Subscriptions: created, loaded and saved whole, listed with filters and pages.
//!
//! A subscription owns block instances; each instance has values (one row per list element,
//! stored as text) and relations to other instances, possibly owned by other subscriptions.
//! Saving rewrites the values and relations of the instances it owns inside one transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cadre_domain::SubscriptionSnapshot;
use cadre_domain::{
    BlockInstance, BlockRef, BlockRelation, DomainError, IdSource, Lifecycle, NewSubscription,
    Page, Result, SortOrder, Subscription, SubscriptionQuery, SubscriptionRecord,
    SubscriptionRepository, SubscriptionSort, SubscriptionSummary,
};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, LikeExpr, Query};
use sea_orm::{
    ActiveValue::{NotSet, Set, Unchanged},
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, JoinType, Order,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select, Statement, TransactionSession,
};
use uuid::Uuid;

use crate::catalogue::Catalogue;
use crate::entities::{
    subscription_instance_relations as relations, subscription_instance_values as values,
    subscription_instances as instances, subscriptions,
};
use crate::pages::{SortKey, read_page};
use crate::totals::{Counted, Remembered, TotalKey};
use crate::{Conn, Repo, storage_error};

/// Records read or written inside one transaction, by subscription id.
pub(crate) type RecordCache = Arc<Mutex<HashMap<Uuid, SubscriptionRecord>>>;

/// The most subscriptions a transaction remembers (a load followed by a save then reads once).
const MAX_REMEMBERED: usize = 10_000;

/// Rows per multi-row insert, well below every backend's bound-parameter limit.
pub(crate) const INSERT_CHUNK: usize = 500;

pub(crate) fn parse_lifecycle(status: &str) -> Result<Lifecycle> {
    status
        .parse()
        .map_err(|error: cadre_domain::lifecycle::UnknownLifecycle| {
            DomainError::Storage(format!("stored subscription has {error}"))
        })
}

fn to_subscription(row: subscriptions::Model) -> Result<Subscription> {
    Ok(Subscription {
        lifecycle: parse_lifecycle(&row.status)?,
        id: row.id,
        product_id: row.product_id,
        customer_id: row.customer_id,
        description: row.description,
        insync: row.insync,
        start_date: row.start_date.map(|date| date.to_utc()),
        end_date: row.end_date.map(|date| date.to_utc()),
        note: row.note,
        version: row.version,
    })
}

/// One row of the join that loads a subscription: the subscription, one of its instances, and
/// one value and one relation (with the owner of its target) of that instance.
#[derive(Debug, FromQueryResult)]
struct FlatRow {
    id: Uuid,
    product_id: Uuid,
    customer_id: Uuid,
    description: String,
    status: String,
    insync: bool,
    start_date: Option<chrono::DateTime<chrono::FixedOffset>>,
    end_date: Option<chrono::DateTime<chrono::FixedOffset>>,
    note: Option<String>,
    version: i64,
    instance_id: Option<Uuid>,
    product_block_id: Option<Uuid>,
    label: Option<String>,
    resource_type_id: Option<Uuid>,
    value_position: Option<i64>,
    value: Option<String>,
    depends_on_id: Option<Uuid>,
    domain_model_attr: Option<String>,
    relation_position: Option<i64>,
    owner_subscription_id: Option<Uuid>,
}

/// Reads subscription `id` with every instance it owns in one query.
async fn read_record(
    conn: &impl ConnectionTrait,
    catalogue: &Catalogue,
    id: Uuid,
) -> Result<SubscriptionRecord> {
    read_records(conn, catalogue, &[id])
        .await?
        .pop()
        .ok_or_else(|| DomainError::not_found("subscription", id))
}

/// Reads subscriptions `ids` with every instance they own, in id order, in one query: the
/// subscriptions left-joined with their instances, their values, and their relations with the
/// owners of their targets. Ids that do not exist are left out.
async fn read_records(
    conn: &impl ConnectionTrait,
    catalogue: &Catalogue,
    ids: &[Uuid],
) -> Result<Vec<SubscriptionRecord>> {
    let target = Alias::new("target");
    let query = Query::select()
        .columns([
            (subscriptions::Entity, subscriptions::Column::Id),
            (subscriptions::Entity, subscriptions::Column::ProductId),
            (subscriptions::Entity, subscriptions::Column::CustomerId),
            (subscriptions::Entity, subscriptions::Column::Description),
            (subscriptions::Entity, subscriptions::Column::Status),
            (subscriptions::Entity, subscriptions::Column::Insync),
            (subscriptions::Entity, subscriptions::Column::StartDate),
            (subscriptions::Entity, subscriptions::Column::EndDate),
            (subscriptions::Entity, subscriptions::Column::Note),
            (subscriptions::Entity, subscriptions::Column::Version),
        ])
        .expr_as(
            Expr::col((instances::Entity, instances::Column::Id)),
            "instance_id",
        )
        .column((instances::Entity, instances::Column::ProductBlockId))
        .column((instances::Entity, instances::Column::Label))
        .column((values::Entity, values::Column::ResourceTypeId))
        .expr_as(
            Expr::col((values::Entity, values::Column::Position)),
            "value_position",
        )
        .column((values::Entity, values::Column::Value))
        .column((relations::Entity, relations::Column::DependsOnId))
        .column((relations::Entity, relations::Column::DomainModelAttr))
        .expr_as(
            Expr::col((relations::Entity, relations::Column::Position)),
            "relation_position",
        )
        .expr_as(
            Expr::col((target.clone(), instances::Column::SubscriptionId)),
            "owner_subscription_id",
        )
        .from(subscriptions::Entity)
        .left_join(
            instances::Entity,
            Expr::col((instances::Entity, instances::Column::SubscriptionId))
                .equals((subscriptions::Entity, subscriptions::Column::Id)),
        )
        .left_join(
            values::Entity,
            Expr::col((values::Entity, values::Column::SubscriptionInstanceId))
                .equals((instances::Entity, instances::Column::Id)),
        )
        .left_join(
            relations::Entity,
            Expr::col((relations::Entity, relations::Column::InUseById))
                .equals((instances::Entity, instances::Column::Id)),
        )
        .join_as(
            JoinType::LeftJoin,
            instances::Entity,
            target.clone(),
            Expr::col((target, instances::Column::Id))
                .equals((relations::Entity, relations::Column::DependsOnId)),
        )
        .and_where(
            Expr::col((subscriptions::Entity, subscriptions::Column::Id))
                .is_in(ids.iter().copied()),
        )
        .order_by(
            (subscriptions::Entity, subscriptions::Column::Id),
            Order::Asc,
        )
        .order_by((instances::Entity, instances::Column::Id), Order::Asc)
        .take();
    let rows = FlatRow::find_by_statement(conn.get_database_backend().build(&query))
        .all(conn)
        .await
        .map_err(storage_error)?;
    rows.chunk_by(|a, b| a.id == b.id)
        .map(|rows| assemble(catalogue, rows))
        .collect()
}

/// Builds one subscription's record from its rows of the loading join (at least one).
fn assemble(catalogue: &Catalogue, rows: &[FlatRow]) -> Result<SubscriptionRecord> {
    let first = rows
        .first()
        .ok_or_else(|| DomainError::Storage("a subscription without rows".to_owned()))?;
    let subscription = Subscription {
        id: first.id,
        product_id: first.product_id,
        customer_id: first.customer_id,
        description: first.description.clone(),
        lifecycle: parse_lifecycle(&first.status)?,
        insync: first.insync,
        start_date: first.start_date.map(|date| date.to_utc()),
        end_date: first.end_date.map(|date| date.to_utc()),
        note: first.note.clone(),
        version: first.version,
    };
    let product = catalogue.product(subscription.product_id)?.clone();

    // The join repeats each value once per relation and each relation once per value: collect
    // them by their slots, which are unique, then order them.
    let mut blocks: Vec<BlockInstance> = Vec::new();
    let mut values_by_slot: BTreeMap<(Uuid, String, i64), String> = BTreeMap::new();
    let mut relations_by_slot: BTreeMap<(Uuid, String, i64), BlockRef> = BTreeMap::new();
    for row in rows {
        let (Some(instance_id), Some(block_id)) = (row.instance_id, row.product_block_id) else {
            continue;
        };
        if blocks.last().is_none_or(|block| block.id != instance_id) {
            let mut block = BlockInstance::new(instance_id, catalogue.block_name(block_id)?);
            block.label = row.label.clone();
            blocks.push(block);
        }
        if let (Some(resource_type), Some(position), Some(value)) =
            (row.resource_type_id, row.value_position, &row.value)
        {
            let field = catalogue.resource_type_name(resource_type)?.to_owned();
            values_by_slot.insert((instance_id, field, position), value.clone());
        }
        if let (Some(depends_on), Some(attr), Some(position), Some(owner)) = (
            row.depends_on_id,
            &row.domain_model_attr,
            row.relation_position,
            row.owner_subscription_id,
        ) {
            relations_by_slot.insert(
                (instance_id, attr.clone(), position),
                BlockRef {
                    instance_id: depends_on,
                    owner_subscription_id: owner,
                },
            );
        }
    }
    for block in &mut blocks {
        for ((instance, field, _), value) in &values_by_slot {
            if *instance == block.id {
                block
                    .values
                    .entry(field.clone())
                    .or_default()
                    .push(value.clone());
            }
        }
        for ((instance, attr, position), target) in &relations_by_slot {
            if *instance == block.id {
                block.relations.push(BlockRelation {
                    attr: attr.clone(),
                    position: *position,
                    target: *target,
                });
            }
        }
    }
    Ok(SubscriptionRecord {
        subscription,
        product,
        blocks,
    })
}

/// Writes `record` over the stored subscription inside `txn`, touching only the rows that
/// differ from what is stored (`cached`, when the transaction already read it at the same
/// version), and returns the record as stored (with its new version).
async fn write_record(
    txn: &impl ConnectionTrait,
    catalogue: &Catalogue,
    ids: &dyn IdSource,
    record: &SubscriptionRecord,
    cached: Option<SubscriptionRecord>,
    known: impl FnOnce() -> HashMap<Uuid, InstanceHome>,
) -> Result<SubscriptionRecord> {
    let subscription = &record.subscription;
    let stored = match cached {
        Some(stored) => stored,
        None => read_record(txn, catalogue, subscription.id).await?,
    };
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
    // Compare-and-set on the version: a concurrent save makes this update match no row.
    let updated = subscriptions::Entity::update_many()
        .set(subscriptions::ActiveModel {
            id: NotSet,
            product_id: NotSet,
            customer_id: Set(subscription.customer_id),
            description: Set(subscription.description.clone()),
            status: Set(subscription.lifecycle.as_str().to_owned()),
            insync: Set(subscription.insync),
            start_date: Set(subscription.start_date.map(|date| date.fixed_offset())),
            end_date: Set(subscription.end_date.map(|date| date.fixed_offset())),
            note: Set(subscription.note.clone()),
            version: Set(subscription.version + 1),
        })
        .filter(subscriptions::Column::Id.eq(subscription.id))
        .filter(subscriptions::Column::Version.eq(subscription.version))
        .exec(txn)
        .await
        .map_err(storage_error)?;
    if updated.rows_affected != 1 {
        return Err(DomainError::Conflict(format!(
            "subscription {} was changed by someone else since version {}; reload it and try again",
            subscription.id, subscription.version
        )));
    }

    let kept: HashSet<Uuid> = record.blocks.iter().map(|block| block.id).collect();
    let removed: Vec<Uuid> = stored
        .blocks
        .iter()
        .map(|block| block.id)
        .filter(|id| !kept.contains(id))
        .collect();
    if !removed.is_empty() {
        instances::Entity::delete_many()
            .filter(instances::Column::Id.is_in(removed))
            .exec(txn)
            .await
            .map_err(|error| match storage_error(error) {
                DomainError::Conflict(_) => DomainError::Conflict(format!(
                    "subscription {} cannot drop a block that other subscriptions use",
                    subscription.id
                )),
                other => other,
            })?;
    }

    let terminating = subscription.lifecycle == Lifecycle::Terminated;
    let releases_identifiers = terminating && stored_lifecycle != Lifecycle::Terminated;
    let mut new_values = Vec::new();
    let mut changed_relations = Vec::new();
    for block in &record.blocks {
        let definition = catalogue.block(&block.block)?;
        let before = stored.blocks.iter().find(|stored| stored.id == block.id);
        match before {
            Some(before) if before.block == block.block && before.label == block.label => {}
            Some(_) => {
                instances::Entity::update(instances::ActiveModel {
                    id: Unchanged(block.id),
                    subscription_id: Unchanged(subscription.id),
                    product_block_id: Set(definition.id),
                    label: Set(block.label.clone()),
                })
                .exec(txn)
                .await
                .map_err(storage_error)?;
            }
            None => {
                instances::Entity::insert(instances::ActiveModel {
                    id: Set(block.id),
                    subscription_id: Set(subscription.id),
                    product_block_id: Set(definition.id),
                    label: Set(block.label.clone()),
                })
                .exec_without_returning(txn)
                .await
                .map_err(|error| match storage_error(error) {
                    DomainError::Conflict(_) => DomainError::Conflict(format!(
                        "block instance {} belongs to another subscription",
                        block.id
                    )),
                    other => other,
                })?;
            }
        }
        let no_values = BTreeMap::new();
        let before_values = before.map_or(&no_values, |before| &before.values);
        let fields: BTreeSet<&String> = block.values.keys().chain(before_values.keys()).collect();
        // Unchanged identifying fields a termination releases.
        let mut released = Vec::new();
        for field in fields {
            let resource_type = definition.resource_type(field).ok_or_else(|| {
                DomainError::invalid(
                    format!("{}.{field}", block.block),
                    format!("is not a field of {}", block.block),
                )
            })?;
            let after = block.values.get(field);
            let before_field = before_values.get(field);
            // Terminating releases identifying values: their rows keep the value, not the claim.
            let releases = releases_identifiers && resource_type.unique;
            if after == before_field && !releases {
                continue;
            }
            let unique_value =
                |value: &String| (resource_type.unique && !terminating).then(|| value.clone());
            if after == before_field {
                released.push(resource_type.id);
                continue;
            }
            // As many values as before (a changed single value, most often): rewritten in place.
            // Identifying values are not: the unique index checks each statement, so moving a
            // value between positions or blocks must delete all before it inserts.
            if let (Some(after), Some(before)) = (after, before_field)
                && after.len() == before.len()
                && !resource_type.unique
            {
                for ((position, value), old) in (0..).zip(after).zip(before) {
                    if value == old {
                        continue;
                    }
                    let updated = values::Entity::update_many()
                        .col_expr(values::Column::Value, Expr::value(value.clone()))
                        .filter(values::Column::SubscriptionInstanceId.eq(block.id))
                        .filter(values::Column::ResourceTypeId.eq(resource_type.id))
                        .filter(values::Column::Position.eq(position))
                        .exec(txn)
                        .await
                        .map_err(storage_error)?;
                    if updated.rows_affected != 1 {
                        return Err(DomainError::Storage(format!(
                            "value {position} of {}.{field} of block instance {} is not stored",
                            block.block, block.id
                        )));
                    }
                }
                continue;
            }
            if before_values.contains_key(field) {
                values::Entity::delete_many()
                    .filter(values::Column::SubscriptionInstanceId.eq(block.id))
                    .filter(values::Column::ResourceTypeId.eq(resource_type.id))
                    .exec(txn)
                    .await
                    .map_err(storage_error)?;
            }
            for (position, value) in (0..).zip(after.into_iter().flatten()) {
                new_values.push(values::ActiveModel {
                    id: Set(ids.new_id()),
                    subscription_instance_id: Set(block.id),
                    resource_type_id: Set(resource_type.id),
                    position: Set(position),
                    value: Set(value.clone()),
                    unique_value: Set(unique_value(value)),
                });
            }
        }
        if !released.is_empty() {
            values::Entity::update_many()
                .col_expr(
                    values::Column::UniqueValue,
                    Expr::value(Option::<String>::None),
                )
                .filter(values::Column::SubscriptionInstanceId.eq(block.id))
                .filter(values::Column::ResourceTypeId.is_in(released))
                .exec(txn)
                .await
                .map_err(storage_error)?;
        }
        let before_relations = before
            .map(|before| before.relations.as_slice())
            .unwrap_or_default();
        if before_relations != block.relations.as_slice() {
            if !before_relations.is_empty() {
                relations::Entity::delete_many()
                    .filter(relations::Column::InUseById.eq(block.id))
                    .exec(txn)
                    .await
                    .map_err(storage_error)?;
            }
            changed_relations.push(block);
        }
    }
    for chunk in new_values.chunks(INSERT_CHUNK) {
        values::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await
            .map_err(storage_error)?;
    }
    // The instances the transaction knows are gathered only when references changed.
    let new_relations = if changed_relations.is_empty() {
        Vec::new()
    } else {
        check_relations(txn, catalogue, &changed_relations, known()).await?
    };
    for chunk in new_relations.chunks(INSERT_CHUNK) {
        relations::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await
            .map_err(storage_error)?;
    }

    let mut saved = record.clone();
    saved.subscription.version += 1;
    saved.product = stored.product;
    saved.blocks.sort_by_key(|block| block.id);
    Ok(saved)
}

/// Where a block instance lives: the subscription that owns it and the name of its block.
struct InstanceHome {
    owner: Uuid,
    block: String,
}

/// Validates every reference of `blocks` (target exists, is owned by the subscription the
/// reference names, and is of a block the referring block may use) and returns the rows.
/// Targets in `known` (instances the transaction has already read) need no query.
async fn check_relations(
    txn: &impl ConnectionTrait,
    catalogue: &Catalogue,
    blocks: &[&BlockInstance],
    mut known: HashMap<Uuid, InstanceHome>,
) -> Result<Vec<relations::ActiveModel>> {
    let unknown: HashSet<Uuid> = blocks
        .iter()
        .flat_map(|block| {
            block
                .relations
                .iter()
                .map(|relation| relation.target.instance_id)
        })
        .filter(|id| !known.contains_key(id))
        .collect();
    if !unknown.is_empty() {
        let rows = instances::Entity::find()
            .filter(instances::Column::Id.is_in(unknown))
            .all(txn)
            .await
            .map_err(storage_error)?;
        for row in rows {
            let block = catalogue.block_name(row.product_block_id)?.to_owned();
            known.insert(
                row.id,
                InstanceHome {
                    owner: row.subscription_id,
                    block,
                },
            );
        }
    }
    let mut rows = Vec::new();
    for block in blocks {
        let definition = catalogue.block(&block.block)?;
        for relation in &block.relations {
            let field = format!("{}.{}", block.block, relation.attr);
            let target_id = relation.target.instance_id;
            let target = known.get(&target_id).ok_or_else(|| {
                DomainError::invalid(
                    &field,
                    format!("refers to block instance {target_id}, which does not exist"),
                )
            })?;
            if target.owner != relation.target.owner_subscription_id {
                return Err(DomainError::invalid(
                    &field,
                    format!(
                        "block instance {target_id} belongs to subscription {}, not {}",
                        target.owner, relation.target.owner_subscription_id
                    ),
                ));
            }
            if !definition.depends_on.contains(&target.block) {
                return Err(DomainError::invalid(
                    &field,
                    format!("{} cannot refer to a {}", block.block, target.block),
                ));
            }
            rows.push(relations::ActiveModel {
                in_use_by_id: Set(block.id),
                depends_on_id: Set(target_id),
                domain_model_attr: Set(relation.attr.clone()),
                position: Set(relation.position),
            });
        }
    }
    Ok(rows)
}

/// Inserts a new subscription row and its empty block instances.
async fn insert_new(
    txn: &impl ConnectionTrait,
    catalogue: &Catalogue,
    subscription: &Subscription,
    blocks: &[BlockInstance],
) -> Result<()> {
    subscriptions::Entity::insert(subscriptions::ActiveModel {
        id: Set(subscription.id),
        product_id: Set(subscription.product_id),
        customer_id: Set(subscription.customer_id),
        description: Set(subscription.description.clone()),
        status: Set(subscription.lifecycle.as_str().to_owned()),
        insync: Set(subscription.insync),
        start_date: Set(None),
        end_date: Set(None),
        note: Set(None),
        version: Set(subscription.version),
    })
    .exec_without_returning(txn)
    .await
    .map_err(|error| match storage_error(error) {
        // The product was checked against the catalogue: the customer is what is missing.
        DomainError::Conflict(_) => DomainError::not_found("customer", subscription.customer_id),
        other => other,
    })?;
    let instance_rows: Vec<instances::ActiveModel> = blocks
        .iter()
        .map(|block| {
            Ok(instances::ActiveModel {
                id: Set(block.id),
                subscription_id: Set(subscription.id),
                product_block_id: Set(catalogue.block(&block.block)?.id),
                label: Set(None),
            })
        })
        .collect::<Result<_>>()?;
    if !instance_rows.is_empty() {
        instances::Entity::insert_many(instance_rows)
            .exec_without_returning(txn)
            .await
            .map_err(storage_error)?;
    }
    Ok(())
}

/// Inserts complete new subscriptions with multi-row inserts: their rows, block instances,
/// values and relations. References may target instances in `records` or in `known`.
async fn insert_records(
    txn: &impl ConnectionTrait,
    catalogue: &Catalogue,
    ids: &dyn IdSource,
    records: &[SubscriptionRecord],
    mut known: HashMap<Uuid, InstanceHome>,
) -> Result<()> {
    let mut subscription_rows = Vec::with_capacity(records.len());
    let mut instance_rows = Vec::with_capacity(records.len());
    let mut value_rows = Vec::new();
    let mut referring = Vec::new();
    for record in records {
        let subscription = &record.subscription;
        catalogue.product(subscription.product_id)?;
        subscription_rows.push(subscriptions::ActiveModel {
            id: Set(subscription.id),
            product_id: Set(subscription.product_id),
            customer_id: Set(subscription.customer_id),
            description: Set(subscription.description.clone()),
            status: Set(subscription.lifecycle.as_str().to_owned()),
            insync: Set(subscription.insync),
            start_date: Set(subscription.start_date.map(|date| date.fixed_offset())),
            end_date: Set(subscription.end_date.map(|date| date.fixed_offset())),
            note: Set(subscription.note.clone()),
            version: Set(subscription.version),
        });
        let terminated = subscription.lifecycle == Lifecycle::Terminated;
        for block in &record.blocks {
            let definition = catalogue.block(&block.block)?;
            known.insert(
                block.id,
                InstanceHome {
                    owner: subscription.id,
                    block: block.block.clone(),
                },
            );
            instance_rows.push(instances::ActiveModel {
                id: Set(block.id),
                subscription_id: Set(subscription.id),
                product_block_id: Set(definition.id),
                label: Set(block.label.clone()),
            });
            for (field, values) in &block.values {
                let resource_type = definition.resource_type(field).ok_or_else(|| {
                    DomainError::invalid(
                        format!("{}.{field}", block.block),
                        format!("is not a field of {}", block.block),
                    )
                })?;
                for (position, value) in (0..).zip(values) {
                    value_rows.push(values::ActiveModel {
                        id: Set(ids.new_id()),
                        subscription_instance_id: Set(block.id),
                        resource_type_id: Set(resource_type.id),
                        position: Set(position),
                        value: Set(value.clone()),
                        unique_value: Set(
                            (resource_type.unique && !terminated).then(|| value.clone())
                        ),
                    });
                }
            }
            if !block.relations.is_empty() {
                referring.push(block);
            }
        }
    }
    let relation_rows = check_relations(txn, catalogue, &referring, known).await?;
    for chunk in subscription_rows.chunks(INSERT_CHUNK) {
        subscriptions::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await
            .map_err(storage_error)?;
    }
    for chunk in instance_rows.chunks(INSERT_CHUNK) {
        instances::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await
            .map_err(storage_error)?;
    }
    for chunk in value_rows.chunks(INSERT_CHUNK) {
        values::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await
            .map_err(storage_error)?;
    }
    for chunk in relation_rows.chunks(INSERT_CHUNK) {
        relations::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await
            .map_err(storage_error)?;
    }
    Ok(())
}

impl<C> Repo<C> {
    /// The record this transaction last read or wrote, if any.
    fn cached(&self, id: Uuid) -> Option<SubscriptionRecord> {
        let cache = self.records.as_ref()?;
        let records = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        records.get(&id).cloned()
    }

    /// The block instances of every subscription this transaction has read or written.
    fn known_instances(&self) -> HashMap<Uuid, InstanceHome> {
        let Some(cache) = &self.records else {
            return HashMap::new();
        };
        let records = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        records
            .values()
            .flat_map(|record| {
                record.blocks.iter().map(|block| {
                    let home = InstanceHome {
                        owner: record.subscription.id,
                        block: block.block.clone(),
                    };
                    (block.id, home)
                })
            })
            .collect()
    }

    /// Remembers `record` for the rest of this transaction, unless the transaction already
    /// remembers [`MAX_REMEMBERED`] others (a bulk read is not worth holding in memory).
    fn remember(&self, record: &SubscriptionRecord) {
        if let Some(cache) = &self.records {
            let mut records = cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let id = record.subscription.id;
            if records.len() < MAX_REMEMBERED || records.contains_key(&id) {
                records.insert(id, record.clone());
            }
        }
    }
}

/// What a listing does for its total.
enum Lookup {
    /// Use this remembered total.
    Use(u64),
    /// Count: this caller refreshes an expired total (others use it meanwhile).
    Refresh,
    /// Nothing usable is remembered: wait for the turn to count, then look again.
    Missing,
}

impl<C: Conn> Repo<C> {
    /// What a caller arriving at generation `arrived` does for `key`'s total; an expired one
    /// whose snapshot is still current is renewed and used.
    async fn remembered_total(&self, key: &TotalKey, arrived: u64) -> Result<Lookup> {
        Ok(match self.totals.get(key, arrived) {
            Remembered::Total(total) => Lookup::Use(total),
            Remembered::Expired { total, snapshot } => {
                let checked_at = self.totals.generation();
                if current_snapshot(&self.conn).await? == snapshot {
                    self.totals.renew(key, &snapshot, checked_at);
                    Lookup::Use(total)
                } else {
                    Lookup::Refresh
                }
            }
            Remembered::Unknown => Lookup::Missing,
        })
    }

    /// Counts the rows `select` matches and remembers the total for `key`.
    async fn count_total(
        &self,
        key: TotalKey,
        select: &Select<subscriptions::Entity>,
    ) -> Result<u64> {
        let generation = self.totals.generation();
        let counted = count_matching(&self.conn, select).await?;
        let total = counted.total;
        self.totals.put(key, generation, counted);
        Ok(total)
    }
}

#[async_trait]
impl<C: Conn> SubscriptionRepository for Repo<C> {
    async fn create_subscription(&self, new: NewSubscription) -> Result<SubscriptionRecord> {
        let catalogue = self.catalogue().await?;
        let product = catalogue.product(new.product_id)?.clone();
        let record = SubscriptionRecord::initial(new, product, self.ids.as_ref());
        if C::IN_TRANSACTION {
            insert_new(&self.conn, &catalogue, &record.subscription, &record.blocks).await?;
        } else {
            let txn = self.conn.begin().await.map_err(storage_error)?;
            insert_new(&txn, &catalogue, &record.subscription, &record.blocks).await?;
            txn.commit().await.map_err(storage_error)?;
        }
        self.note_subscription_write();
        self.remember(&record);
        Ok(record)
    }

    async fn load_subscription(&self, id: Uuid) -> Result<SubscriptionRecord> {
        if let Some(record) = self.cached(id) {
            return Ok(record);
        }
        let catalogue = self.catalogue().await?;
        let record = read_record(&self.conn, &catalogue, id).await?;
        self.remember(&record);
        Ok(record)
    }

    async fn save_subscription(&self, record: &SubscriptionRecord) -> Result<SubscriptionRecord> {
        let catalogue = self.catalogue().await?;
        let cached = self
            .cached(record.subscription.id)
            .filter(|cached| cached.subscription.version == record.subscription.version);
        let known = || self.known_instances();
        let stored = if C::IN_TRANSACTION {
            write_record(
                &self.conn,
                &catalogue,
                self.ids.as_ref(),
                record,
                cached,
                known,
            )
            .await?
        } else {
            let txn = self.conn.begin().await.map_err(storage_error)?;
            let stored =
                write_record(&txn, &catalogue, self.ids.as_ref(), record, cached, known).await?;
            txn.commit().await.map_err(storage_error)?;
            stored
        };
        self.note_subscription_write();
        self.remember(&stored);
        Ok(stored)
    }

    async fn subscriptions_using(&self, instance_id: Uuid) -> Result<Vec<SubscriptionSummary>> {
        let catalogue = self.catalogue().await?;
        let referring_instances = Query::select()
            .column(relations::Column::InUseById)
            .from(relations::Entity)
            .and_where(Expr::col(relations::Column::DependsOnId).eq(instance_id))
            .take();
        let owners = Query::select()
            .column(instances::Column::SubscriptionId)
            .from(instances::Entity)
            .and_where(Expr::col(instances::Column::Id).in_subquery(referring_instances))
            .take();
        let rows = subscriptions::Entity::find()
            .filter(subscriptions::Column::Id.in_subquery(owners))
            .filter(subscriptions::Column::Status.ne(Lifecycle::Terminated.as_str()))
            .order_by_asc(subscriptions::Column::Id)
            .all(&self.conn)
            .await
            .map_err(storage_error)?;
        rows.into_iter()
            .map(|row| summary(&catalogue, row))
            .collect()
    }

    async fn list_subscriptions(
        &self,
        query: &SubscriptionQuery,
    ) -> Result<Page<SubscriptionSummary>> {
        let catalogue = self.catalogue().await?;
        let mut select = subscriptions::Entity::find();
        if let Some(product_type) = &query.product_type {
            let product_ids: Vec<Uuid> = catalogue
                .products
                .iter()
                .filter(|product| &product.product_type == product_type)
                .map(|product| product.id)
                .collect();
            select = select.filter(subscriptions::Column::ProductId.is_in(product_ids));
        }
        if let Some(lifecycle) = query.lifecycle {
            select = select.filter(subscriptions::Column::Status.eq(lifecycle.as_str()));
        }
        if let Some(text) = query.text.as_deref().filter(|text| !text.is_empty()) {
            let pattern = format!("%{}%", escape_like(text));
            // Case-insensitive on both sides: SQLite's LIKE itself ignores the case of ASCII
            // letters, the letters its `lower` folds, so no description is copied to lower it;
            // PostgreSQL lowers description and pattern alike, as the trigram index over
            // `lower(description)` expects.
            select = select.filter(match self.conn.get_database_backend() {
                DbBackend::Postgres => Expr::cust_with_values(
                    r#"lower("description") LIKE lower($1) ESCAPE '\'"#,
                    [pattern],
                ),
                _ => Expr::col(subscriptions::Column::Description)
                    .like(LikeExpr::new(pattern).escape('\\')),
            });
        }
        // Without paging, the rows themselves are the count. Outside transactions, a total
        // counted moments ago for the same filter is reused (see `totals`).
        let unpaged = query.offset == 0 && query.limit.is_none();
        let key = (
            query.product_type.clone(),
            query.lifecycle,
            query.text.as_deref().map(str::to_ascii_lowercase),
        );
        let total = if unpaged {
            None
        } else if C::IN_TRANSACTION {
            Some(count_matching(&self.conn, &select).await?.total)
        } else {
            let arrived = self.totals.generation();
            let total = match self.remembered_total(&key, arrived).await? {
                Lookup::Use(total) => total,
                Lookup::Refresh => self.count_total(key, &select).await?,
                Lookup::Missing => {
                    // One count per filter at a time; who waited uses the count made after
                    // it arrived.
                    let _turn = self.totals.counting_turn(&key).await;
                    match self.remembered_total(&key, arrived).await? {
                        Lookup::Use(total) => total,
                        Lookup::Refresh | Lookup::Missing => self.count_total(key, &select).await?,
                    }
                }
            };
            Some(total)
        };

        let order = match query.order {
            SortOrder::Asc => Order::Asc,
            SortOrder::Desc => Order::Desc,
        };
        let key = |column, nulls_last| SortKey {
            column,
            order: order.clone(),
            nulls_last,
        };
        let mut keys = match query.sort {
            SubscriptionSort::Created => vec![],
            SubscriptionSort::Description => vec![key(subscriptions::Column::Description, false)],
            SubscriptionSort::StartDate => vec![key(subscriptions::Column::StartDate, true)],
        };
        keys.push(key(subscriptions::Column::Id, false));
        // SQLite accepts OFFSET only after a LIMIT, so "no limit" is the largest one.
        let limit = query.limit.unwrap_or(i64::MAX as u64);
        let select = select.limit(limit).offset(query.offset);
        let items = read_page(&self.conn, &catalogue, select, &keys).await?;
        let total = total.unwrap_or(items.len() as u64);
        Ok(Page { items, total })
    }

    async fn load_subscriptions(&self, ids: &[Uuid]) -> Result<Vec<SubscriptionRecord>> {
        let catalogue = self.catalogue().await?;
        let mut records = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(INSERT_CHUNK) {
            records.extend(read_records(&self.conn, &catalogue, chunk).await?);
        }
        records.sort_by_key(|record| record.subscription.id);
        for record in &records {
            self.remember(record);
        }
        Ok(records)
    }

    async fn load_snapshots(&self, ids: &[Uuid]) -> Result<Vec<SubscriptionSnapshot>> {
        let catalogue = self.catalogue().await?;
        // Not remembered: a snapshot is not the whole record a save compares with.
        crate::snapshots::read_snapshots(&self.conn, &catalogue, ids).await
    }

    async fn insert_subscriptions(&self, records: &[SubscriptionRecord]) -> Result<()> {
        let catalogue = self.catalogue().await?;
        let known = self.known_instances();
        if C::IN_TRANSACTION {
            insert_records(&self.conn, &catalogue, self.ids.as_ref(), records, known).await?;
        } else {
            let txn = self.conn.begin().await.map_err(storage_error)?;
            insert_records(&txn, &catalogue, self.ids.as_ref(), records, known).await?;
            txn.commit().await.map_err(storage_error)?;
        }
        self.note_subscription_write();
        for record in records {
            self.remember(record);
        }
        Ok(())
    }

    async fn find_by_unique_values(
        &self,
        resource_type: &str,
        wanted: &[String],
    ) -> Result<Vec<(String, Uuid)>> {
        let catalogue = self.catalogue().await?;
        let resource_type_ids: Vec<Uuid> = catalogue
            .blocks
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
        let mut found = Vec::new();
        for chunk in wanted.chunks(INSERT_CHUNK) {
            let query = Query::select()
                .column((values::Entity, values::Column::UniqueValue))
                .column((instances::Entity, instances::Column::SubscriptionId))
                .from(values::Entity)
                .inner_join(
                    instances::Entity,
                    Expr::col((instances::Entity, instances::Column::Id))
                        .equals((values::Entity, values::Column::SubscriptionInstanceId)),
                )
                .and_where(
                    Expr::col((values::Entity, values::Column::ResourceTypeId))
                        .is_in(resource_type_ids.iter().copied()),
                )
                .and_where(
                    Expr::col((values::Entity, values::Column::UniqueValue))
                        .is_in(chunk.iter().cloned()),
                )
                .take();
            let rows =
                UniqueValueRow::find_by_statement(self.conn.get_database_backend().build(&query))
                    .all(&self.conn)
                    .await
                    .map_err(storage_error)?;
            found.extend(
                rows.into_iter()
                    .map(|row| (row.unique_value, row.subscription_id)),
            );
        }
        Ok(found)
    }
}

/// A unique value and the subscription holding it.
#[derive(Debug, FromQueryResult)]
struct UniqueValueRow {
    unique_value: String,
    subscription_id: Uuid,
}

/// What a count can be checked against later: on PostgreSQL the current MVCC snapshot (equal
/// snapshots see the same committed rows), on SQLite the version of `subscription_changes`
/// (moved by triggers with every write of a subscription row).
fn snapshot_sql(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "pg_current_snapshot()::text",
        _ => "(SELECT CAST(version AS TEXT) FROM subscription_changes)",
    }
}

/// The database's current snapshot, as [`snapshot_sql`] reads it.
async fn current_snapshot(conn: &impl ConnectionTrait) -> Result<String> {
    let backend = conn.get_database_backend();
    let statement = Statement::from_string(
        backend,
        format!("SELECT {} AS snapshot", snapshot_sql(backend)),
    );
    conn.query_one_raw(statement)
        .await
        .map_err(storage_error)?
        .ok_or_else(|| DomainError::Storage("the snapshot query returned no row".to_owned()))?
        .try_get("", "snapshot")
        .map_err(storage_error)
}

/// Counts the rows `select` matches, in the same statement as the snapshot the count saw.
async fn count_matching(
    conn: &impl ConnectionTrait,
    select: &Select<subscriptions::Entity>,
) -> Result<Counted> {
    let backend = conn.get_database_backend();
    let inner = select
        .clone()
        .select_only()
        .column(subscriptions::Column::Id)
        .build(backend);
    let statement = Statement::from_sql_and_values(
        backend,
        format!(
            "SELECT {} AS snapshot, COUNT(*) AS total FROM ({}) AS matching",
            snapshot_sql(backend),
            inner.sql
        ),
        inner.values.map(|values| values.0).unwrap_or_default(),
    );
    let row = conn
        .query_one_raw(statement)
        .await
        .map_err(storage_error)?
        .ok_or_else(|| DomainError::Storage("a count returned no row".to_owned()))?;
    let total: i64 = row.try_get("", "total").map_err(storage_error)?;
    Ok(Counted {
        total: u64::try_from(total).unwrap_or_default(),
        snapshot: row.try_get("", "snapshot").map_err(storage_error)?,
    })
}

pub(crate) fn summary(
    catalogue: &Catalogue,
    row: subscriptions::Model,
) -> Result<SubscriptionSummary> {
    let product = catalogue.product(row.product_id)?;
    Ok(SubscriptionSummary {
        product_name: product.name.clone(),
        product_type: product.product_type.clone(),
        subscription: to_subscription(row)?,
    })
}

/// Escapes `%`, `_` and the escape character itself for a `LIKE … ESCAPE '\'` pattern.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
