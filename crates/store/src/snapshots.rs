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
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Statement, Value};
use uuid::Uuid;

use crate::catalogue::Catalogue;
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

/// `count` bound-parameter placeholders for a hand-written statement, comma-separated.
pub(crate) fn placeholders(backend: DbBackend, count: usize) -> String {
    if backend == DbBackend::Postgres {
        let numbered: Vec<String> = (1..=count).map(|n| format!("${n}")).collect();
        numbered.join(", ")
    } else {
        vec!["?"; count].join(", ")
    }
}

/// The query for `count` ids. Ids are text in JSON: SQLite stores them as blobs (`hex`),
/// PostgreSQL as `uuid` (`::text`).
fn snapshot_sql(backend: DbBackend, count: usize) -> String {
    let postgres = backend == DbBackend::Postgres;
    // PostgreSQL's aggregate is `json`; the row reads text.
    let (agg, array, cast) = if postgres {
        ("json_agg", "json_build_array", "::text")
    } else {
        ("json_group_array", "json_array", "")
    };
    let text = |column: &str| {
        if postgres {
            format!("{column}::text")
        } else {
            format!("hex({column})")
        }
    };
    let (depends_on, owner) = (text("r.depends_on_id"), text("t.subscription_id"));
    format!(
        "SELECT s.id, s.product_id, s.status, s.insync, s.version, \
           i.id AS instance_id, i.product_block_id, i.label, \
           (SELECT {agg}({array}(rt.resource_type, v.position, v.value)){cast} \
              FROM subscription_instance_values v \
              JOIN resource_types rt ON rt.id = v.resource_type_id \
             WHERE v.subscription_instance_id = i.id) AS instance_values, \
           (SELECT {agg}({array}(r.domain_model_attr, r.position, {depends_on}, {owner})){cast} \
              FROM subscription_instance_relations r \
              JOIN subscription_instances t ON t.id = r.depends_on_id \
             WHERE r.in_use_by_id = i.id) AS instance_relations \
         FROM subscriptions s \
         LEFT JOIN subscription_instances i ON i.subscription_id = s.id \
         WHERE s.id IN ({})",
        placeholders(backend, count)
    )
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
        let statement = Statement::from_sql_and_values(
            backend,
            snapshot_sql(backend, chunk.len()),
            chunk.iter().map(|id| Value::from(*id)),
        );
        rows.extend(
            SnapshotRow::find_by_statement(statement)
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
