//! Bulk provisioning: the provisioned-subscription marks and the stored chunks of each load.

use std::collections::HashMap;

use async_trait::async_trait;
use cadre_domain::{
    ChunkPart, DomainError, Lifecycle, LoadChunk, ProductType, ProvisionedMark,
    ProvisionedSubscription, ProvisioningRepository, Result, Written,
};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, JoinType, OnConflict, Query, SelectStatement};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, TransactionSession,
};
use serde_json::Value;
use uuid::Uuid;

use crate::entities::{
    provisioned_subscriptions as provisioned, provisioning_chunks as chunks, subscriptions,
};
use crate::snapshots::JsonFunctions;
use crate::subscriptions::parse_lifecycle;
use crate::{Conn, Repo, storage_error};

fn to_chunk(row: chunks::Model) -> Result<LoadChunk> {
    let parse = |text: &str| {
        serde_json::from_str::<Value>(text).map_err(|error| {
            DomainError::Storage(format!("a stored load chunk is not JSON: {error}"))
        })
    };
    Ok(LoadChunk {
        seq: row.seq,
        content: parse(&row.content)?,
        report: row.report.as_deref().map(parse).transpose()?,
    })
}

async fn insert_chunks(
    conn: &impl ConnectionTrait,
    load_id: Uuid,
    part: ChunkPart,
    rows: &[LoadChunk],
    now: DateTime<Utc>,
) -> Result<()> {
    for chunk in rows {
        chunks::Entity::insert(chunks::ActiveModel {
            load_id: Set(load_id),
            part: Set(part.as_str().to_owned()),
            seq: Set(chunk.seq),
            content: Set(chunk.content.to_string()),
            report: Set(chunk.report.as_ref().map(Value::to_string)),
            created_at: Set(now.fixed_offset()),
        })
        .exec_without_returning(conn)
        .await
        .map_err(storage_error)?;
    }
    Ok(())
}

/// A mark as the marks query aggregates it: subscription id, status, in sync (0 or 1), and the
/// external id and fingerprint while the subscription is at the version the load left.
type MarkRow = (String, String, i64, Option<String>, Option<String>);

/// The marks of the live subscriptions of `products`, aggregated into one JSON array of
/// [`MarkRow`]s: a single row, where 100,000 rows would each cost the driver more than the
/// database takes to find them.
fn marks_query(backend: DbBackend, products: &[Uuid]) -> SelectStatement {
    let json = JsonFunctions::of(backend);
    let (p, s) = ("p", "s");
    let insync = Expr::col((s, subscriptions::Column::Insync));
    let insync = if backend == DbBackend::Postgres {
        insync.cast_as("int")
    } else {
        insync
    };
    // What the load wrote counts only while the subscription is at the version it left.
    let while_unchanged = |column: provisioned::Column| {
        Expr::case(
            Expr::col((p, provisioned::Column::Version))
                .equals((s, subscriptions::Column::Version)),
            Expr::col((p, column)),
        )
    };
    Query::select()
        .expr_as(
            json.aggregate_arrays([
                json.id_text(Expr::col((p, provisioned::Column::SubscriptionId))),
                Expr::col((s, subscriptions::Column::Status)),
                insync,
                while_unchanged(provisioned::Column::ExternalId).into(),
                while_unchanged(provisioned::Column::Fingerprint).into(),
            ]),
            "marks",
        )
        .from_as(provisioned::Entity, p)
        .join_as(
            JoinType::Join,
            subscriptions::Entity,
            s,
            Expr::col((s, subscriptions::Column::Id))
                .equals((p, provisioned::Column::SubscriptionId)),
        )
        .and_where(Expr::col((s, subscriptions::Column::ProductId)).is_in(products.iter().copied()))
        .and_where(
            Expr::col((s, subscriptions::Column::Status))
                .ne(Expr::Constant(Lifecycle::Terminated.as_str().into())),
        )
        .take()
}

#[async_trait]
impl<C: Conn> ProvisioningRepository for Repo<C> {
    async fn add_load_chunks(
        &self,
        load_id: Uuid,
        part: ChunkPart,
        rows: &[LoadChunk],
        now: DateTime<Utc>,
    ) -> Result<()> {
        if C::IN_TRANSACTION {
            insert_chunks(&self.conn, load_id, part, rows, now).await
        } else {
            let txn = self.conn.begin().await.map_err(storage_error)?;
            insert_chunks(&txn, load_id, part, rows, now).await?;
            txn.commit().await.map_err(storage_error)
        }
    }

    async fn load_chunks(&self, load_id: Uuid, part: ChunkPart) -> Result<Vec<LoadChunk>> {
        chunks::Entity::find()
            .filter(chunks::Column::LoadId.eq(load_id))
            .filter(chunks::Column::Part.eq(part.as_str()))
            .order_by_asc(chunks::Column::Seq)
            .all(&self.conn)
            .await
            .map_err(storage_error)?
            .into_iter()
            .map(to_chunk)
            .collect()
    }

    async fn next_unreported_chunk(
        &self,
        load_id: Uuid,
        part: ChunkPart,
    ) -> Result<Option<LoadChunk>> {
        chunks::Entity::find()
            .filter(chunks::Column::LoadId.eq(load_id))
            .filter(chunks::Column::Part.eq(part.as_str()))
            .filter(chunks::Column::Report.is_null())
            .order_by_asc(chunks::Column::Seq)
            .one(&self.conn)
            .await
            .map_err(storage_error)?
            .map(to_chunk)
            .transpose()
    }

    async fn report_chunk(
        &self,
        load_id: Uuid,
        part: ChunkPart,
        seq: i64,
        report: &Value,
    ) -> Result<()> {
        let updated = chunks::Entity::update_many()
            .col_expr(chunks::Column::Report, Expr::value(report.to_string()))
            .filter(chunks::Column::LoadId.eq(load_id))
            .filter(chunks::Column::Part.eq(part.as_str()))
            .filter(chunks::Column::Seq.eq(seq))
            .exec(&self.conn)
            .await
            .map_err(storage_error)?;
        if updated.rows_affected == 0 {
            return Err(DomainError::NotFound {
                kind: "load chunk",
                id: format!("{load_id}/{}/{seq}", part.as_str()),
            });
        }
        Ok(())
    }

    async fn provisioned_subscriptions(
        &self,
        product_type: &ProductType,
    ) -> Result<Vec<ProvisionedSubscription>> {
        let catalogue = self.catalogue().await?;
        let products: Vec<Uuid> = catalogue
            .products
            .iter()
            .filter(|product| &product.product_type == product_type)
            .map(|product| product.id)
            .collect();
        if products.is_empty() {
            return Ok(Vec::new());
        }
        let backend = self.conn.get_database_backend();
        let statement = backend.build(&marks_query(backend, &products));
        let json: Option<String> = self
            .conn
            .query_one_raw(statement)
            .await
            .map_err(storage_error)?
            .map(|row| row.try_get("", "marks"))
            .transpose()
            .map_err(storage_error)?
            .flatten();
        let malformed = |error: &dyn std::fmt::Display| {
            DomainError::Storage(format!("malformed marks: {error}"))
        };
        let rows: Vec<MarkRow> = match json {
            Some(json) => serde_json::from_str(&json).map_err(|error| malformed(&error))?,
            None => Vec::new(),
        };
        rows.into_iter()
            .map(|(id, status, insync, external_id, fingerprint)| {
                let written = match (external_id, fingerprint) {
                    (Some(external_id), Some(fingerprint)) => Some(Written {
                        external_id,
                        fingerprint,
                    }),
                    _ => None,
                };
                Ok(ProvisionedSubscription {
                    subscription_id: Uuid::parse_str(&id).map_err(|error| malformed(&error))?,
                    lifecycle: parse_lifecycle(&status)?,
                    insync: insync != 0,
                    written,
                })
            })
            .collect()
    }

    async fn mark_provisioned(&self, marks: &[ProvisionedMark], now: DateTime<Utc>) -> Result<()> {
        // One row per subscription, the last mark winning: PostgreSQL refuses an upsert that
        // touches a row twice.
        let mut latest: HashMap<Uuid, &ProvisionedMark> = HashMap::with_capacity(marks.len());
        for mark in marks {
            latest.insert(mark.subscription_id, mark);
        }
        let marks: Vec<&ProvisionedMark> = latest.into_values().collect();
        for chunk in marks.chunks(crate::subscriptions::INSERT_CHUNK) {
            let rows = chunk.iter().map(|mark| provisioned::ActiveModel {
                subscription_id: Set(mark.subscription_id),
                created_at: Set(now.fixed_offset()),
                version: Set(Some(mark.version)),
                external_id: Set(mark
                    .written
                    .as_ref()
                    .map(|written| written.external_id.clone())),
                fingerprint: Set(mark
                    .written
                    .as_ref()
                    .map(|written| written.fingerprint.clone())),
            });
            provisioned::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::column(provisioned::Column::SubscriptionId)
                        .update_columns([
                            provisioned::Column::Version,
                            provisioned::Column::ExternalId,
                            provisioned::Column::Fingerprint,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(&self.conn)
                .await
                .map_err(storage_error)?;
        }
        Ok(())
    }
}
