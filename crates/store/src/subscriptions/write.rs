//! Writing subscriptions whole: a save writes only the rows that changed; new subscriptions are
//! inserted with multi-row inserts after the checks a save makes.

use super::*;

/// Writes `record` over the stored subscription inside `txn`, touching only the rows that
/// differ from what is stored (`cached`, when the transaction already read it at the same
/// version), and returns the record as stored (with its new version).
pub(super) async fn write_record(
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
            let unique_value = |value: &String| {
                (resource_type.unique && !terminating).then(|| identity_key(value))
            };
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
pub(super) struct InstanceHome {
    pub(super) owner: Uuid,
    pub(super) block: String,
}

/// Validates every reference of `blocks` (target exists, is owned by the subscription the
/// reference names, and is of a block the referring block may use) and returns the rows.
/// Targets in `known` (instances the transaction has already read) need no query.
pub(super) async fn check_relations(
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
pub(super) async fn insert_new(
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
    .map_err(|error| {
        // A taken id stays a conflict; a broken reference is the customer's, since the product
        // was checked against the catalogue.
        let taken = matches!(
            error.sql_err(),
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
        );
        match storage_error(error) {
            DomainError::Conflict(_) if !taken => {
                DomainError::not_found("customer", subscription.customer_id)
            }
            other => other,
        }
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
pub(super) async fn insert_records(
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
                            (resource_type.unique && !terminated).then(|| identity_key(value))
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
