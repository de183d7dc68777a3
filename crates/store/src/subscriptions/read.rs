//! Reading subscriptions whole: their rows, block instances, values and relations in one join,
//! assembled into records.

use super::*;

pub(crate) fn parse_lifecycle(status: &str) -> Result<Lifecycle> {
    status
        .parse()
        .map_err(|error: cadre_domain::lifecycle::UnknownLifecycle| {
            DomainError::Storage(format!("stored subscription has {error}"))
        })
}

pub(super) fn to_subscription(row: subscriptions::Model) -> Result<Subscription> {
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
pub(super) struct FlatRow {
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
pub(super) async fn read_record(
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
pub(super) async fn read_records(
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
pub(super) fn assemble(catalogue: &Catalogue, rows: &[FlatRow]) -> Result<SubscriptionRecord> {
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
