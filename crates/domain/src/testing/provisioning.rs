//! Provisioning in memory: the marks of subscriptions loads manage, with what the last load
//! wrote while the subscription stays at the version it left, and the stored chunks of loads.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::catalogue::ProductType;
use crate::error::{DomainError, Result};
use crate::lifecycle::Lifecycle;
use crate::provisioning::{
    ChunkPart, LoadChunk, ProvisionedMark, ProvisionedSubscription, ProvisioningRepository, Written,
};

use super::{Access, DUPLICATE, MISSING_REFERENCE};

/// A subscription's mark: the version a load left it at and what it wrote.
#[derive(Debug, Clone)]
struct Mark {
    version: i64,
    written: Option<Written>,
}

/// The marks by subscription, and the chunks by load, part and position.
#[derive(Debug, Clone, Default)]
pub(super) struct Provisioning {
    marks: BTreeMap<Uuid, Mark>,
    chunks: BTreeMap<(Uuid, &'static str, i64), LoadChunk>,
}

#[async_trait]
impl<T: Access> ProvisioningRepository for T {
    async fn add_load_chunks(
        &self,
        load_id: Uuid,
        part: ChunkPart,
        chunks: &[LoadChunk],
        _now: DateTime<Utc>,
    ) -> Result<()> {
        let chunks = chunks.to_vec();
        self.write(move |tables, _| {
            let provisioning = Arc::make_mut(&mut tables.provisioning);
            for chunk in &chunks {
                let key = (load_id, part.as_str(), chunk.seq);
                if provisioning.chunks.contains_key(&key) {
                    return Err(DomainError::Conflict(DUPLICATE.to_owned()));
                }
                provisioning.chunks.insert(key, chunk.clone());
            }
            Ok(())
        })
    }

    async fn load_chunks(&self, load_id: Uuid, part: ChunkPart) -> Result<Vec<LoadChunk>> {
        Ok(self.read(|tables, _| {
            tables
                .provisioning
                .chunks
                .range((load_id, part.as_str(), i64::MIN)..=(load_id, part.as_str(), i64::MAX))
                .map(|(_, chunk)| chunk.clone())
                .collect()
        }))
    }

    async fn next_unreported_chunk(
        &self,
        load_id: Uuid,
        part: ChunkPart,
    ) -> Result<Option<LoadChunk>> {
        Ok(self.read(|tables, _| {
            tables
                .provisioning
                .chunks
                .range((load_id, part.as_str(), i64::MIN)..=(load_id, part.as_str(), i64::MAX))
                .map(|(_, chunk)| chunk)
                .find(|chunk| chunk.report.is_none())
                .cloned()
        }))
    }

    async fn report_chunk(
        &self,
        load_id: Uuid,
        part: ChunkPart,
        seq: i64,
        report: &Value,
    ) -> Result<()> {
        let report = report.clone();
        self.write(move |tables, _| {
            let chunk = Arc::make_mut(&mut tables.provisioning)
                .chunks
                .get_mut(&(load_id, part.as_str(), seq))
                .ok_or_else(|| DomainError::NotFound {
                    kind: "load chunk",
                    id: format!("{load_id}/{}/{seq}", part.as_str()),
                })?;
            chunk.report = Some(report.clone());
            Ok(())
        })
    }

    async fn provisioned_subscriptions(
        &self,
        product_type: &ProductType,
    ) -> Result<Vec<ProvisionedSubscription>> {
        Ok(self.read(|tables, catalogue| {
            let products = catalogue.products_of_type(product_type);
            tables
                .provisioning
                .marks
                .iter()
                .filter_map(|(id, mark)| {
                    let subscription = tables.subscriptions.subscription(*id)?;
                    let managed = products.contains(&subscription.product_id)
                        && subscription.lifecycle != Lifecycle::Terminated;
                    managed.then(|| ProvisionedSubscription {
                        subscription_id: *id,
                        lifecycle: subscription.lifecycle,
                        insync: subscription.insync,
                        written: mark
                            .written
                            .clone()
                            .filter(|_| mark.version == subscription.version),
                    })
                })
                .collect()
        }))
    }

    async fn mark_provisioned(&self, marks: &[ProvisionedMark], _now: DateTime<Utc>) -> Result<()> {
        let marks = marks.to_vec();
        self.write(move |tables, _| {
            if marks
                .iter()
                .any(|mark| !tables.subscriptions.contains(mark.subscription_id))
            {
                return Err(DomainError::Conflict(MISSING_REFERENCE.to_owned()));
            }
            let provisioning = Arc::make_mut(&mut tables.provisioning);
            for mark in &marks {
                provisioning.marks.insert(
                    mark.subscription_id,
                    Mark {
                        version: mark.version,
                        written: mark.written.clone(),
                    },
                );
            }
            Ok(())
        })
    }
}
