//! Snapshots: the lean, bulk read of what subscriptions hold, for comparing many of them.
//!
//! One query per chunk of ids, one row per block instance: the subscription's few columns the
//! snapshot needs, the instance, and its values and relations aggregated into JSON arrays.
//! Unlike the join that loads records whole, no row repeats the subscription's columns and no
//! value is repeated per relation; the row count, which dominates a bulk read, is the number
//! of instances.

use std::collections::BTreeMap;

use cadre_domain::SubscriptionSnapshot;
use cadre_domain::{BlockInstance, BlockRef, BlockRelation, DomainError, Result};
use sea_orm::sea_query::{Expr, ExprTrait, Func, JoinType, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult};
use uuid::Uuid;

use crate::catalogue::Catalogue;
use crate::entities::{
    resource_types, subscription_instance_relations as relations,
    subscription_instance_values as values, subscription_instances as instances, subscriptions,
};
use crate::storage_error;
use crate::subscriptions::parse_lifecycle;

/// Ids per query: far below every backend's bound-parameter limit.
pub(crate) const SNAPSHOT_CHUNK: usize = 5000;

/// A subscription row with one of its instances (none for a subscription without any), the
/// instance's values as `[[resource type, position, value], …]` and its relations as
/// `[[attr, position, target instance, target owner], …]`.
#[derive(Debug, FromQueryResult)]
struct SnapshotRow {
    id: Uuid,
    product_id: Uuid,
    status: String,
    insync: bool,
    version: i64,
    instance_id: Option<Uuid>,
    product_block_id: Option<Uuid>,
    label: Option<String>,
    instance_values: Option<String>,
    instance_relations: Option<String>,
}

/// The functions that aggregate rows into a JSON array and build one array of values, and
/// whether the aggregate must be cast to text (PostgreSQL's is `json`, which sea-orm does not
/// read as a string; SQLite's is text already).
pub(crate) struct JsonFunctions {
    aggregate: &'static str,
    array: &'static str,
    postgres: bool,
}

impl JsonFunctions {
    /// The backend's JSON functions.
    pub(crate) fn of(backend: DbBackend) -> Self {
        let postgres = backend == DbBackend::Postgres;
        if postgres {
            Self {
                aggregate: "json_agg",
                array: "json_build_array",
                postgres,
            }
        } else {
            Self {
                aggregate: "json_group_array",
                array: "json_array",
                postgres,
            }
        }
    }

    /// The aggregate, as text, of JSON arrays of `items`.
    pub(crate) fn aggregate_arrays(&self, items: impl IntoIterator<Item = Expr>) -> Expr {
        let aggregate: Expr = Func::cust(self.aggregate)
            .arg(Func::cust(self.array).args(items))
            .into();
        if self.postgres {
            aggregate.cast_as("text")
        } else {
            aggregate
        }
    }

    /// An id column as text in JSON: SQLite stores ids as blobs (`hex`), PostgreSQL as `uuid`.
    pub(crate) fn id_text(&self, column: Expr) -> Expr {
        if self.postgres {
            column.cast_as("text")
        } else {
            Func::cust("hex").arg(column).into()
        }
    }
}

/// The query for the snapshots of `ids`: one row per subscription and instance, the
/// instance's values and relations each aggregated by a correlated subquery.
fn snapshot_query(backend: DbBackend, ids: &[Uuid]) -> SelectStatement {
    let json = JsonFunctions::of(backend);
    let (s, i, v, rt, r, t) = ("s", "i", "v", "rt", "r", "t");
    let instance_values = Query::select()
        .expr(json.aggregate_arrays([
            Expr::col((rt, resource_types::Column::ResourceType)),
            Expr::col((v, values::Column::Position)),
            Expr::col((v, values::Column::Value)),
        ]))
        .from_as(values::Entity, v)
        .join_as(
            JoinType::Join,
            resource_types::Entity,
            rt,
            Expr::col((rt, resource_types::Column::Id)).equals((v, values::Column::ResourceTypeId)),
        )
        .and_where(
            Expr::col((v, values::Column::SubscriptionInstanceId))
                .equals((i, instances::Column::Id)),
        )
        .take();
    let instance_relations = Query::select()
        .expr(json.aggregate_arrays([
            Expr::col((r, relations::Column::DomainModelAttr)),
            Expr::col((r, relations::Column::Position)),
            json.id_text(Expr::col((r, relations::Column::DependsOnId))),
            json.id_text(Expr::col((t, instances::Column::SubscriptionId))),
        ]))
        .from_as(relations::Entity, r)
        .join_as(
            JoinType::Join,
            instances::Entity,
            t,
            Expr::col((t, instances::Column::Id)).equals((r, relations::Column::DependsOnId)),
        )
        .and_where(Expr::col((r, relations::Column::InUseById)).equals((i, instances::Column::Id)))
        .take();
    Query::select()
        .columns([
            (s, subscriptions::Column::Id),
            (s, subscriptions::Column::ProductId),
            (s, subscriptions::Column::Status),
            (s, subscriptions::Column::Insync),
            (s, subscriptions::Column::Version),
        ])
        .expr_as(Expr::col((i, instances::Column::Id)), "instance_id")
        .column((i, instances::Column::ProductBlockId))
        .column((i, instances::Column::Label))
        .expr_as(
            Expr::SubQuery(None, Box::new(instance_values.into())),
            "instance_values",
        )
        .expr_as(
            Expr::SubQuery(None, Box::new(instance_relations.into())),
            "instance_relations",
        )
        .from_as(subscriptions::Entity, s)
        .join_as(
            JoinType::LeftJoin,
            instances::Entity,
            i,
            Expr::col((i, instances::Column::SubscriptionId))
                .equals((s, subscriptions::Column::Id)),
        )
        .and_where(Expr::col((s, subscriptions::Column::Id)).is_in(ids.iter().copied()))
        .take()
}

/// Reads the snapshots of the subscriptions `ids`, in id order; missing ids are left out.
pub(crate) async fn read_snapshots(
    conn: &impl ConnectionTrait,
    catalogue: &Catalogue,
    ids: &[Uuid],
) -> Result<Vec<SubscriptionSnapshot>> {
    let backend = conn.get_database_backend();
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(SNAPSHOT_CHUNK) {
        rows.extend(
            SnapshotRow::find_by_statement(backend.build(&snapshot_query(backend, chunk)))
                .all(conn)
                .await
                .map_err(storage_error)?,
        );
    }
    rows.sort_unstable_by_key(|row| (row.id, row.instance_id));
    let mut snapshots: Vec<SubscriptionSnapshot> = Vec::with_capacity(rows.len());
    for row in rows {
        if snapshots.last().is_none_or(|last| last.id != row.id) {
            snapshots.push(SubscriptionSnapshot {
                id: row.id,
                product_id: row.product_id,
                lifecycle: parse_lifecycle(&row.status)?,
                insync: row.insync,
                version: row.version,
                blocks: Vec::new(),
            });
        }
        let (Some(instance_id), Some(block_id)) = (row.instance_id, row.product_block_id) else {
            continue;
        };
        let mut block = BlockInstance::new(instance_id, catalogue.block_name(block_id)?);
        block.label = row.label;
        fill_values(&mut block, row.instance_values.as_deref())?;
        fill_relations(&mut block, row.instance_relations.as_deref())?;
        if let Some(snapshot) = snapshots.last_mut() {
            snapshot.blocks.push(block);
        }
    }
    Ok(snapshots)
}

fn malformed(what: &str, error: impl std::fmt::Display) -> DomainError {
    DomainError::Storage(format!("malformed {what} of a snapshot: {error}"))
}

/// Sets the values of `block` from their JSON aggregate, each field's in position order.
fn fill_values(block: &mut BlockInstance, json: Option<&str>) -> Result<()> {
    let Some(json) = json else {
        return Ok(());
    };
    let mut values: Vec<(String, i64, String)> =
        serde_json::from_str(json).map_err(|error| malformed("values", error))?;
    values.sort_unstable_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    for (field, _, value) in values {
        match block.values.get_mut(&field) {
            Some(list) => list.push(value),
            None => {
                block.values.insert(field, vec![value]);
            }
        }
    }
    Ok(())
}

/// Sets the relations of `block` from their JSON aggregate, ordered by field and position.
fn fill_relations(block: &mut BlockInstance, json: Option<&str>) -> Result<()> {
    let Some(json) = json else {
        return Ok(());
    };
    let rows: Vec<(String, i64, String, String)> =
        serde_json::from_str(json).map_err(|error| malformed("relations", error))?;
    let parse = |id: &str| Uuid::parse_str(id).map_err(|error| malformed("relations", error));
    let mut by_slot: BTreeMap<(String, i64), BlockRef> = BTreeMap::new();
    for (attr, position, target, owner) in rows {
        by_slot.insert(
            (attr, position),
            BlockRef {
                instance_id: parse(&target)?,
                owner_subscription_id: parse(&owner)?,
            },
        );
    }
    block.relations = by_slot
        .into_iter()
        .map(|((attr, position), target)| BlockRelation {
            attr,
            position,
            target,
        })
        .collect();
    Ok(())
}
