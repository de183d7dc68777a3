//! The ports: traits the storage, engine and edge layers meet at, and the small value types
//! that cross them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::accounts::AccountRepository;
use crate::audit::AuditRepository;
use crate::auth::TokenRepository;
use crate::catalogue::{Product, ProductBlock, ProductType};
use crate::error::Result;
use crate::forms::FormLookups;
use crate::groups::WorkflowGroupRepository;
use crate::ids::Name;
use crate::lifecycle::Lifecycle;
use crate::outbound::{PushStateRepository, TargetRepository};
use crate::process::ProcessRepository;
use crate::provisioning::ProvisioningRepository;
use crate::registration::RegistrationRepository;
use crate::subscription::{
    BlockInstance, NewSubscription, SubscriptionRecord, SubscriptionSummary,
};

/// The time source. Pass one in instead of reading the system clock deep inside.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The source of new internal ids.
pub trait IdSource: Send + Sync {
    /// A fresh, never used id.
    fn new_id(&self) -> Uuid;
}

/// Time-ordered UUID v7 ids, index-friendly as primary keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7Source;

impl IdSource for UuidV7Source {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// The organisation that owns subscriptions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// Internal id.
    pub id: Uuid,
    /// Unique, normalised name.
    pub name: Name,
    /// When the customer was added.
    pub created_at: DateTime<Utc>,
}

/// Read access to the product catalogue.
#[async_trait]
pub trait CatalogueRepository: Send + Sync {
    /// Every product with its fixed inputs and blocks, ordered by name.
    async fn list_products(&self) -> Result<Vec<Product>>;
    /// One product by id.
    async fn product(&self, id: Uuid) -> Result<Product>;
    /// One product by its unique name.
    async fn product_by_name(&self, name: &str) -> Result<Product>;
    /// Every product block with its resource types, ordered by name.
    async fn list_product_blocks(&self) -> Result<Vec<ProductBlock>>;
}

/// Customers.
#[async_trait]
pub trait CustomerRepository: Send + Sync {
    /// Adds a customer; a taken name is a conflict.
    async fn create_customer(&self, customer: &Customer) -> Result<()>;
    /// One customer by id.
    async fn customer(&self, id: Uuid) -> Result<Customer>;
    /// One customer by name (normalised like on write).
    async fn customer_by_name(&self, name: &Name) -> Result<Customer>;
}

/// The field subscriptions are listed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionSort {
    /// Creation order (ids are time-ordered).
    #[default]
    Created,
    /// Description, then creation order.
    Description,
    /// Start date, then creation order.
    StartDate,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// Which subscriptions to list, in what order, which page.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SubscriptionQuery {
    /// Only these subscriptions (what a caller may see); `None` for all.
    pub ids: Option<Vec<Uuid>>,
    /// Only subscriptions of products of this type.
    pub product_type: Option<ProductType>,
    /// Only subscriptions in this lifecycle.
    pub lifecycle: Option<Lifecycle>,
    /// Only established subscriptions: past `initial` (being created) and not `terminated`.
    pub established: bool,
    /// Only subscriptions created after this one (ids are time-ordered): a cursor for walking
    /// a listing in creation order. The total leaves it out.
    pub after: Option<Uuid>,
    /// Only subscriptions whose description contains this text, ignoring the case of ASCII
    /// letters (on PostgreSQL, of every letter its locale folds).
    pub text: Option<String>,
    /// Sort field.
    pub sort: SubscriptionSort,
    /// Sort direction.
    pub order: SortOrder,
    /// Rows to skip.
    pub offset: u64,
    /// Most rows to return; `None` returns all.
    pub limit: Option<u64>,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// How many rows match the filters across all pages.
    pub total: u64,
}

/// What a subscription holds now, without its product and its descriptive columns: the lean
/// read for comparing many stored subscriptions with what they should be (e.g. a bulk load's
/// plan). Its blocks are as [`SubscriptionRecord::blocks`] would hold them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionSnapshot {
    /// The subscription id.
    pub id: Uuid,
    /// The product it is an instance of.
    pub product_id: Uuid,
    /// Lifecycle state.
    pub lifecycle: Lifecycle,
    /// False while a process is working on the subscription.
    pub insync: bool,
    /// The version a save of the subscription would have to name.
    pub version: i64,
    /// The block instances it owns, in instance id order, with their values and references.
    pub blocks: Vec<BlockInstance>,
}

impl SubscriptionSnapshot {
    /// The first owned instance of `block`, if any.
    pub fn block(&self, block: &str) -> Option<&BlockInstance> {
        self.blocks.iter().find(|instance| instance.block == block)
    }
}

/// Subscriptions: created, loaded and saved whole, and listed.
#[async_trait]
pub trait SubscriptionRepository: Send + Sync {
    /// Creates an `initial`, out-of-sync subscription with one empty instance of each root block
    /// of its product, and returns it.
    async fn create_subscription(&self, new: NewSubscription) -> Result<SubscriptionRecord>;
    /// Loads a subscription with everything it owns.
    async fn load_subscription(&self, id: Uuid) -> Result<SubscriptionRecord>;
    /// Saves a subscription whole and returns it as stored (with its new version).
    ///
    /// Refuses a stale version (someone saved in between: conflict), a lifecycle change the state
    /// machine forbids, references to block instances that do not exist, and values that
    /// collide with another live subscription's unique values (conflict).
    async fn save_subscription(&self, record: &SubscriptionRecord) -> Result<SubscriptionRecord>;
    /// The live (not terminated) subscriptions other than the owner whose blocks reference the
    /// block instance `instance_id`, e.g. the users of a group.
    async fn subscriptions_using(&self, instance_id: Uuid) -> Result<Vec<SubscriptionSummary>>;
    /// Lists subscriptions matching `query`.
    async fn list_subscriptions(
        &self,
        query: &SubscriptionQuery,
    ) -> Result<Page<SubscriptionSummary>>;
    /// Loads the subscriptions `ids` with everything they own, in id order; ids that do not
    /// exist are left out.
    async fn load_subscriptions(&self, ids: &[Uuid]) -> Result<Vec<SubscriptionRecord>>;
    /// Snapshots of the subscriptions `ids` (lifecycle, sync flag, version, and the values and
    /// references of their blocks), in id order; ids that do not exist are left out.
    ///
    /// The lean read for comparing many subscriptions: a few narrow queries per several
    /// thousand ids, and, inside a transaction, nothing remembered for a later save (that
    /// loads the subscription whole).
    async fn load_snapshots(&self, ids: &[Uuid]) -> Result<Vec<SubscriptionSnapshot>>;
    /// Inserts complete new subscriptions (rows, block instances, values, references) in few
    /// statements: the batch path of a create workflow, checked like a save (known blocks and
    /// fields, existing reference targets, unique values free).
    async fn insert_subscriptions(&self, records: &[SubscriptionRecord]) -> Result<()>;
    /// The live subscriptions holding any of `values` for the unique resource type
    /// `resource_type` (e.g. `user_id`), as `(value, subscription id)` pairs. Values are
    /// compared by their [`crate::identity_key`], as uniqueness is, so `Zed` finds the holder of
    /// `zed`; each pair names the value as it was asked for.
    async fn find_by_unique_values(
        &self,
        resource_type: &str,
        values: &[String],
    ) -> Result<Vec<(String, Uuid)>>;
}

/// Every repository, as one object.
pub trait Repositories:
    FormLookups
    + CatalogueRepository
    + CustomerRepository
    + SubscriptionRepository
    + ProcessRepository
    + TokenRepository
    + WorkflowGroupRepository
    + ProvisioningRepository
    + RegistrationRepository
    + AccountRepository
    + AuditRepository
    + TargetRepository
    + PushStateRepository
{
}

impl<T> Repositories for T where
    T: FormLookups
        + CatalogueRepository
        + CustomerRepository
        + SubscriptionRepository
        + ProcessRepository
        + TokenRepository
        + WorkflowGroupRepository
        + ProvisioningRepository
        + RegistrationRepository
        + AccountRepository
        + AuditRepository
        + TargetRepository
        + PushStateRepository
        + ?Sized
{
}

/// A store: the repositories, and transactions over them.
#[async_trait]
pub trait Store: Repositories {
    /// Checks that the storage answers (a round trip, no cache).
    async fn ping(&self) -> Result<()>;
    /// Starts a transaction; its changes become visible together on commit.
    async fn begin(&self) -> Result<Box<dyn StoreTransaction>>;
}

/// The repositories inside one transaction. Dropping it without commit rolls back.
#[async_trait]
pub trait StoreTransaction: Repositories {
    /// Makes every change of the transaction durable and visible.
    async fn commit(self: Box<Self>) -> Result<()>;
}
