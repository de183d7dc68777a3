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
    SubscriptionRepository, SubscriptionSort, SubscriptionSummary, identity_key,
};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, LikeExpr, Query};
use sea_orm::{
    ActiveValue::{NotSet, Set, Unchanged},
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, JoinType, Order,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select, TransactionSession,
};
use uuid::Uuid;

use crate::catalogue::Catalogue;
use crate::entities::{
    subscription_instance_relations as relations, subscription_instance_values as values,
    subscription_instances as instances, subscriptions,
};
use crate::totals::{Counted, Remembered, TotalKey};
use crate::{Conn, Repo, storage_error};
use listing_page::{SortKey, read_page};

/// Records read or written inside one transaction, by subscription id.
pub(crate) type RecordCache = Arc<Mutex<HashMap<Uuid, SubscriptionRecord>>>;

/// The most subscriptions a transaction remembers (a load followed by a save then reads once).
const MAX_REMEMBERED: usize = 10_000;

/// Rows per multi-row insert, well below every backend's bound-parameter limit.
pub(crate) const INSERT_CHUNK: usize = 500;

mod listing;
mod listing_page;
mod read;
mod write;

pub(crate) use listing::summary;
use listing::{count_matching, current_snapshot, escape_like};
pub(crate) use read::parse_lifecycle;
use read::*;
use write::*;

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
        if let Some(ids) = &query.ids {
            select = select.filter(subscriptions::Column::Id.is_in(ids.iter().copied()));
        }
        // A cursor walk reads the primary key in order and filters as it goes, so that a page
        // costs about its own rows: on SQLite, `+column` keeps the planner off the product and
        // status index, whose ranges it would otherwise merge by sorting every row past the
        // cursor (a walk over a million users slowed to a third, page by page).
        let walk = query.after.is_some() && self.conn.get_database_backend() == DbBackend::Sqlite;
        let column = |column: subscriptions::Column| {
            if walk {
                Expr::expr(Expr::cust_with_expr("+?", Expr::col(column)))
            } else {
                Expr::col(column)
            }
        };
        if let Some(product_type) = &query.product_type {
            let product_ids: Vec<Uuid> = catalogue
                .products
                .iter()
                .filter(|product| &product.product_type == product_type)
                .map(|product| product.id)
                .collect();
            select = select.filter(column(subscriptions::Column::ProductId).is_in(product_ids));
        }
        if let Some(lifecycle) = query.lifecycle {
            select = select.filter(column(subscriptions::Column::Status).eq(lifecycle.as_str()));
        }
        if query.established {
            select = select.filter(
                column(subscriptions::Column::Status)
                    .is_not_in([Lifecycle::Initial.as_str(), Lifecycle::Terminated.as_str()]),
            );
        }
        if let Some(text) = query.text.as_deref().filter(|text| !text.is_empty()) {
            let pattern = format!("%{}%", escape_like(text));
            // Case-insensitive on both sides: SQLite's LIKE itself ignores the case of ASCII
            // letters, the letters its `lower` folds, so no description is copied to lower it;
            // PostgreSQL lowers description and pattern alike, as the trigram index over
            // `lower(description)` expects. sea-query's LIKE takes a pattern value only, not an
            // expression such as `lower($1)`: the operator is a custom expression of its operands.
            select = select.filter(match self.conn.get_database_backend() {
                DbBackend::Postgres => Expr::cust_with_exprs(
                    r"$1 LIKE $2 ESCAPE '\'",
                    [
                        Func::lower(Expr::col(subscriptions::Column::Description)).into(),
                        Func::lower(Expr::val(pattern)).into(),
                    ],
                ),
                _ => Expr::col(subscriptions::Column::Description)
                    .like(LikeExpr::new(pattern).escape('\\')),
            });
        }
        // Without paging, the rows themselves are the count. Outside transactions, a total
        // counted moments ago for the same filter is reused (see `totals`).
        let unpaged = query.offset == 0 && query.limit.is_none() && query.after.is_none();
        let key = (
            query.product_type.clone(),
            query.lifecycle,
            query.established,
            query.text.as_deref().map(str::to_ascii_lowercase),
        );
        let total = if unpaged {
            None
        } else if C::IN_TRANSACTION || query.ids.is_some() {
            // A caller's own few subscriptions are counted, not remembered.
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
        // The cursor narrows the page, not the total.
        if let Some(after) = query.after {
            select = select.filter(subscriptions::Column::Id.gt(after));
        }
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
        // Identifying values are claimed by their key: each wanted value finds the holder of
        // its key (so `Zed` finds the holder of `zed`), and is answered as it was asked.
        let mut asked: HashMap<String, Vec<&String>> = HashMap::new();
        for value in wanted {
            asked.entry(identity_key(value)).or_default().push(value);
        }
        let keys: Vec<String> = asked.keys().cloned().collect();
        let mut found = Vec::new();
        for chunk in keys.chunks(INSERT_CHUNK) {
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
            for row in rows {
                for value in asked.get(&row.unique_value).into_iter().flatten() {
                    found.push(((*value).clone(), row.subscription_id));
                }
            }
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
