//! cadre's pure domain layer.
//!
//! Products and their blocks, subscriptions with their lifecycle state machine, what a typed domain
//! model of a product is, validated identifiers, typed errors, and the
//! ports (async traits) that the storage, engine and edge layers meet at.
//!
//! This crate performs no I/O and knows nothing about databases, HTTP or async runtimes.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod catalogue;
pub mod error;
pub mod forms;
pub mod groups;
pub mod ids;
pub mod lifecycle;
pub mod models;
pub mod outbound;
pub mod ports;
pub mod process;
pub mod provisioning;
pub mod registration;
pub mod subscription;
#[cfg(feature = "testing")]
pub mod testing;

pub use accounts::{AccountRepository, LoginFailures, PasswordReset, Session};
pub use audit::{
    AuditAction, AuditEvent, AuditOutcome, AuditPage, AuditQuery, AuditRepository, Origin,
};
pub use auth::{ApiToken, Role, TokenRepository};
pub use catalogue::{FixedInput, Product, ProductBlock, ProductStatus, ProductType, ResourceType};
pub use error::{DomainError, Result};
pub use forms::{
    FormError, FormLookups, FormNotComplete, FormValidationError, InputForm, ValidationError,
};
pub use groups::{
    ByteStream, FileName, FileStatus, FileVolume, GroupFile, GroupId, GroupName, WorkflowGroup,
    WorkflowGroupRepository,
};
pub use ids::{Email, ExternalId, Name, identity_key, is_invisible};
pub use lifecycle::{Lifecycle, LifecycleError};
pub use outbound::{
    Connection, Deprovision, OutboundTarget, PushStateRepository, TargetMode, TargetRepository,
};
pub use ports::{
    CatalogueRepository, Clock, Customer, CustomerRepository, IdSource, Page, Repositories,
    SortOrder, Store, StoreTransaction, SubscriptionQuery, SubscriptionRepository,
    SubscriptionSnapshot, SubscriptionSort, SystemClock, UuidV7Source,
};
pub use process::{
    Lease, NewProcess, Process, ProcessCounts, ProcessQuery, ProcessRepository, ProcessStatus,
    ProcessStep, ProcessUpdate, State, StepRecord, StepStatus, Target,
};
pub use provisioning::{
    ChunkPart, LoadChunk, ProvisionedMark, ProvisionedSubscription, ProvisioningRepository, Written,
};
pub use registration::{
    OutboxBacklog, OutboxKind, OutboxMessage, PURGED_PAYLOAD, PendingUser, RegistrationRepository,
    RegistrationToken, TokenOperation, UserName,
};
pub use subscription::{
    BlockInstance, BlockRef, BlockRelation, NewSubscription, Subscription, SubscriptionRecord,
    SubscriptionSummary,
};
