//! The port of bulk provisioning: which subscriptions loads manage (and what each load last
//! wrote to them), and the durable parts of a load (its input and its planned batches), stored
//! as JSON chunks so that an interrupted load resumes where it stopped.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::catalogue::ProductType;
use crate::error::Result;
use crate::lifecycle::Lifecycle;

/// Which part of a load a chunk belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkPart {
    /// The validated input rows, stored before the load's process starts.
    Input,
    /// The planned changes, one chunk per batch, with the report of each applied batch.
    Batch,
}

impl ChunkPart {
    /// The part's stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkPart::Input => "input",
            ChunkPart::Batch => "batch",
        }
    }
}

/// One chunk of a load: its position, its content and, once processed, its report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadChunk {
    /// Position within its part, from 0.
    pub seq: i64,
    /// What the chunk holds (rows or planned changes), as JSON.
    pub content: Value,
    /// What became of it, once processed.
    pub report: Option<Value>,
}

/// What a load wrote to a subscription: the object's external id and a digest of the fields
/// loads compare. While the subscription is unchanged, a later load compares digests instead of
/// reading the subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The external id of the user or group.
    pub external_id: String,
    /// The digest of the compared fields; opaque to the store.
    pub fingerprint: String,
}

/// Marks a subscription as managed by loads, as a load leaves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedMark {
    /// The subscription.
    pub subscription_id: Uuid,
    /// Its version once the load has written it.
    pub version: i64,
    /// What the load wrote, if later loads may compare it instead of the subscription.
    pub written: Option<Written>,
}

/// A live subscription that loads manage, as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedSubscription {
    /// The subscription.
    pub subscription_id: Uuid,
    /// Its lifecycle state.
    pub lifecycle: Lifecycle,
    /// Whether no process holds it.
    pub insync: bool,
    /// What the last load wrote, only while the subscription is still at the version that load
    /// left (any later save makes it `None`).
    pub written: Option<Written>,
}

/// Storage for bulk provisioning loads.
#[async_trait]
pub trait ProvisioningRepository: Send + Sync {
    /// Stores `chunks` of `part` of load `load_id`; a position already taken is a conflict.
    async fn add_load_chunks(
        &self,
        load_id: Uuid,
        part: ChunkPart,
        chunks: &[LoadChunk],
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// The chunks of `part` of load `load_id`, in order.
    async fn load_chunks(&self, load_id: Uuid, part: ChunkPart) -> Result<Vec<LoadChunk>>;
    /// The first chunk of `part` of load `load_id` that has no report yet.
    async fn next_unreported_chunk(
        &self,
        load_id: Uuid,
        part: ChunkPart,
    ) -> Result<Option<LoadChunk>>;
    /// Records the report of chunk `seq`; a missing chunk is not found.
    async fn report_chunk(
        &self,
        load_id: Uuid,
        part: ChunkPart,
        seq: i64,
        report: &Value,
    ) -> Result<()>;
    /// The live (not terminated) subscriptions of `product_type` that loads manage.
    async fn provisioned_subscriptions(
        &self,
        product_type: &ProductType,
    ) -> Result<Vec<ProvisionedSubscription>>;
    /// Marks subscriptions as managed by loads; a subscription marked again takes the new
    /// version and what was written.
    async fn mark_provisioned(&self, marks: &[ProvisionedMark], now: DateTime<Utc>) -> Result<()>;
}
