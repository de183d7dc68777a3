//! Subscriptions: created, loaded and saved whole, listed with filters and pages.
//!
//! A subscription owns block instances; each instance has values (one row per list element,
//! stored as text) and relations to other instances, possibly owned by other subscriptions.
//! Saving rewrites the values and relations of the instances it owns inside one transaction.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use cadre_domain::{
    BlockInstance, BlockRef, BlockRelation, CustomerRepository, DomainError, IdSource, Lifecycle,
    NewSubscription, Page, Result, SortOrder, Subscription, SubscriptionQuery, SubscriptionRecord,
    SubscriptionRepository, SubscriptionSort, SubscriptionSummary,
};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, NullOrdering, Query};
use sea_orm::{
    ActiveValue::{NotSet, Set, Unchanged},
    ColumnTrait, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionSession,
};
use uuid::Uuid;

use crate::catalogue::Catalogue;
use crate::entities::{
    subscription_instance_relations as relations, subscription_instance_values as values,
    subscription_instances as instances, subscriptions,
};
use crate::{Conn, Repo, storage_error};

/// Rows per multi-row insert, well below every backend's bound-parameter limit.
const INSERT_CHUNK: usize = 500;

fn parse_lifecycle(status: &str) -> Result<Lifecycle> {
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

/// Reads subscription `id` with every instance it owns.
async fn read_record(
    conn: &impl Conn,
    catalogue: &Catalogue,
    id: Uuid,
) -> Result<SubscriptionRecord> {
    let row = subscriptions::Entity::find_by_id(id)
        .one(conn)
        .await
        .map_err(storage_error)?
        .ok_or_else(|| DomainError::not_found("subscription", id))?;
    let subscription = to_subscription(row)?;
    let product = catalogue.product(subscription.product_id)?.clone();

    let instance_rows = instances::Entity::find()
        .filter(instances::Column::SubscriptionId.eq(id))
        .order_by_asc(instances::Column::Id)
        .all(conn)
        .await
        .map_err(storage_error)?;
    let instance_ids: Vec<Uuid> = instance_rows.iter().map(|row| row.id).collect();
    let value_rows = values::Entity::find()
        .filter(values::Column::SubscriptionInstanceId.is_in(instance_ids.clone()))
        .order_by_asc(values::Column::Position)
        .all(conn)
        .await
        .map_err(storage_error)?;
    let relation_rows = relations::Entity::find()
        .filter(relations::Column::InUseById.is_in(instance_ids))
        .all(conn)
        .await
        .map_err(storage_error)?;
    let target_ids: HashSet<Uuid> = relation_rows.iter().map(|row| row.depends_on_id).collect();
    let owners: HashMap<Uuid, Uuid> = instances::Entity::find()
        .filter(instances::Column::Id.is_in(target_ids))
        .all(conn)
        .await
        .map_err(storage_error)?
        .into_iter()
        .map(|row| (row.id, row.subscription_id))
        .collect();

    let mut blocks = Vec::with_capacity(instance_rows.len());
    for row in instance_rows {
        let mut block = BlockInstance::new(row.id, catalogue.block_name(row.product_block_id)?);
        block.label = row.label;
        let mut block_values: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for value in value_rows
            .iter()
            .filter(|value| value.subscription_instance_id == row.id)
        {
            block_values
                .entry(
                    catalogue
                        .resource_type_name(value.resource_type_id)?
                        .to_owned(),
                )
                .or_default()
                .push(value.value.clone());
        }
        block.values = block_values;
        for relation in relation_rows
            .iter()
            .filter(|relation| relation.in_use_by_id == row.id)
        {
            let owner_subscription_id = owners
                .get(&relation.depends_on_id)
                .copied()
                .ok_or_else(|| DomainError::not_found("block instance", relation.depends_on_id))?;
            block.relations.push(BlockRelation {
                attr: relation.domain_model_attr.clone(),
                position: relation.position,
                target: BlockRef {
                    instance_id: relation.depends_on_id,
                    owner_subscription_id,
                },
            });
        }
        block
            .relations
            .sort_by(|a, b| (a.attr.as_str(), a.position).cmp(&(b.attr.as_str(), b.position)));
        blocks.push(block);
    }
    Ok(SubscriptionRecord {
        subscription,
        product,
        blocks,
    })
}

/// Writes `record` over the stored subscription; the caller provides the transaction.
async fn write_record(
    txn: &impl Conn,
    catalogue: &Catalogue,
    ids: &dyn IdSource,
    record: &SubscriptionRecord,
) -> Result<()> {
    let subscription = &record.subscription;
    let current = subscriptions::Entity::find_by_id(subscription.id)
        .one(txn)
        .await
        .map_err(storage_error)?
        .ok_or_else(|| DomainError::not_found("subscription", subscription.id))?;
    if current.product_id != subscription.product_id {
        return Err(DomainError::invalid(
            "product_id",
            "a subscription's product cannot change on save",
        ));
    }
    let current_lifecycle = parse_lifecycle(&current.status)?;
    if current_lifecycle != subscription.lifecycle {
        current_lifecycle.transition(subscription.lifecycle)?;
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

    let existing: HashMap<Uuid, instances::Model> = instances::Entity::find()
        .filter(instances::Column::SubscriptionId.eq(subscription.id))
        .all(txn)
        .await
        .map_err(storage_error)?
        .into_iter()
        .map(|row| (row.id, row))
        .collect();
    let kept: HashSet<Uuid> = record.blocks.iter().map(|block| block.id).collect();
    let removed: Vec<Uuid> = existing
        .keys()
        .filter(|id| !kept.contains(id))
        .copied()
        .collect();
    let rewritten: Vec<Uuid> = existing
        .keys()
        .filter(|id| kept.contains(id))
        .copied()
        .collect();
    values::Entity::delete_many()
        .filter(values::Column::SubscriptionInstanceId.is_in(rewritten.clone()))
        .exec(txn)
        .await
        .map_err(storage_error)?;
    relations::Entity::delete_many()
        .filter(relations::Column::InUseById.is_in(rewritten))
        .exec(txn)
        .await
        .map_err(storage_error)?;
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

    let keeps_unique_values = subscription.lifecycle != Lifecycle::Terminated;
    let mut new_values = Vec::new();
    for block in &record.blocks {
        let definition = catalogue.block(&block.block)?;
        match existing.get(&block.id) {
            Some(row) if row.label == block.label && row.product_block_id == definition.id => {}
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
        for (field, field_values) in &block.values {
            let resource_type = definition.resource_type(field).ok_or_else(|| {
                DomainError::invalid(
                    format!("{}.{field}", block.block),
                    format!("is not a field of {}", block.block),
                )
            })?;
            for (position, value) in (0..).zip(field_values) {
                new_values.push(values::ActiveModel {
                    id: Set(ids.new_id()),
                    subscription_instance_id: Set(block.id),
                    resource_type_id: Set(resource_type.id),
                    position: Set(position),
                    value: Set(value.clone()),
                    unique_value: Set(
                        (resource_type.unique && keeps_unique_values).then(|| value.clone())
                    ),
                });
            }
        }
    }
    for chunk in new_values.chunks(INSERT_CHUNK) {
        values::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await
            .map_err(storage_error)?;
    }

    let new_relations = check_relations(txn, catalogue, record).await?;
    for chunk in new_relations.chunks(INSERT_CHUNK) {
        relations::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await
            .map_err(storage_error)?;
    }
    Ok(())
}

/// Validates every reference of `record` (target exists, is owned by the subscription the
/// reference names, and is of a block the referring block may use) and returns the rows.
async fn check_relations(
    txn: &impl Conn,
    catalogue: &Catalogue,
    record: &SubscriptionRecord,
) -> Result<Vec<relations::ActiveModel>> {
    let target_ids: HashSet<Uuid> = record
        .blocks
        .iter()
        .flat_map(|block| {
            block
                .relations
                .iter()
                .map(|relation| relation.target.instance_id)
        })
        .collect();
    if target_ids.is_empty() {
        return Ok(Vec::new());
    }
    let targets: HashMap<Uuid, instances::Model> = instances::Entity::find()
        .filter(instances::Column::Id.is_in(target_ids))
        .all(txn)
        .await
        .map_err(storage_error)?
        .into_iter()
        .map(|row| (row.id, row))
        .collect();
    let mut rows = Vec::new();
    for block in &record.blocks {
        let definition = catalogue.block(&block.block)?;
        for relation in &block.relations {
            let field = format!("{}.{}", block.block, relation.attr);
            let target = targets.get(&relation.target.instance_id).ok_or_else(|| {
                DomainError::invalid(
                    &field,
                    format!(
                        "refers to block instance {}, which does not exist",
                        relation.target.instance_id
                    ),
                )
            })?;
            if target.subscription_id != relation.target.owner_subscription_id {
                return Err(DomainError::invalid(
                    &field,
                    format!(
                        "block instance {} belongs to subscription {}, not {}",
                        target.id, target.subscription_id, relation.target.owner_subscription_id
                    ),
                ));
            }
            let target_block = catalogue.block_name(target.product_block_id)?;
            if !definition
                .depends_on
                .iter()
                .any(|name| name == target_block)
            {
                return Err(DomainError::invalid(
                    &field,
                    format!("{} cannot refer to a {target_block}", block.block),
                ));
            }
            rows.push(relations::ActiveModel {
                in_use_by_id: Set(block.id),
                depends_on_id: Set(target.id),
                domain_model_attr: Set(relation.attr.clone()),
                position: Set(relation.position),
            });
        }
    }
    Ok(rows)
}

#[async_trait]
impl<C: Conn> SubscriptionRepository for Repo<C> {
    async fn create_subscription(&self, new: NewSubscription) -> Result<SubscriptionRecord> {
        let catalogue = self.catalogue().await?;
        let product = catalogue.product(new.product_id)?;
        self.customer(new.customer_id).await?;
        let txn = self.conn.begin().await.map_err(storage_error)?;
        subscriptions::Entity::insert(subscriptions::ActiveModel {
            id: Set(new.id),
            product_id: Set(new.product_id),
            customer_id: Set(new.customer_id),
            description: Set(new.description),
            status: Set(Lifecycle::Initial.as_str().to_owned()),
            insync: Set(false),
            start_date: Set(None),
            end_date: Set(None),
            note: Set(None),
            version: Set(1),
        })
        .exec_without_returning(&txn)
        .await
        .map_err(storage_error)?;
        for block in &product.blocks {
            instances::Entity::insert(instances::ActiveModel {
                id: Set(self.ids.new_id()),
                subscription_id: Set(new.id),
                product_block_id: Set(block.id),
                label: Set(None),
            })
            .exec_without_returning(&txn)
            .await
            .map_err(storage_error)?;
        }
        let record = read_record(&txn, &catalogue, new.id).await?;
        txn.commit().await.map_err(storage_error)?;
        Ok(record)
    }

    async fn load_subscription(&self, id: Uuid) -> Result<SubscriptionRecord> {
        let catalogue = self.catalogue().await?;
        read_record(&self.conn, &catalogue, id).await
    }

    async fn save_subscription(&self, record: &SubscriptionRecord) -> Result<SubscriptionRecord> {
        let catalogue = self.catalogue().await?;
        let txn = self.conn.begin().await.map_err(storage_error)?;
        write_record(&txn, &catalogue, self.ids.as_ref(), record).await?;
        let stored = read_record(&txn, &catalogue, record.subscription.id).await?;
        txn.commit().await.map_err(storage_error)?;
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
            let pattern = format!("%{}%", escape_like(&text.to_ascii_lowercase()));
            select = select.filter(
                Expr::expr(Func::lower(Expr::col(subscriptions::Column::Description)))
                    .like(LikeExpr::new(pattern).escape('\\')),
            );
        }
        let total = select
            .clone()
            .count(&self.conn)
            .await
            .map_err(storage_error)?;

        let order = match query.order {
            SortOrder::Asc => Order::Asc,
            SortOrder::Desc => Order::Desc,
        };
        select = match query.sort {
            SubscriptionSort::Created => select,
            SubscriptionSort::Description => {
                select.order_by(subscriptions::Column::Description, order.clone())
            }
            SubscriptionSort::StartDate => select.order_by_with_nulls(
                subscriptions::Column::StartDate,
                order.clone(),
                NullOrdering::Last,
            ),
        };
        // SQLite accepts OFFSET only after a LIMIT, so "no limit" is the largest one.
        let limit = query.limit.unwrap_or(i64::MAX as u64);
        select = select
            .order_by(subscriptions::Column::Id, order)
            .limit(limit)
            .offset(query.offset);
        let rows = select.all(&self.conn).await.map_err(storage_error)?;
        let items = rows
            .into_iter()
            .map(|row| summary(&catalogue, row))
            .collect::<Result<Vec<_>>>()?;
        Ok(Page { items, total })
    }
}

fn summary(catalogue: &Catalogue, row: subscriptions::Model) -> Result<SubscriptionSummary> {
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
