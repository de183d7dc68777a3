//! The standard steps every product's workflows use: creating a subscription, linking it to
//! the process, lifecycle changes, and the in-sync lock.

use async_trait::async_trait;
use cadre_domain::{
    DomainError, Lifecycle, Name, NewSubscription, ProductType, SubscriptionRecord,
};
use serde_json::json;
use uuid::Uuid;

use crate::step::{Patch, Step, StepContext, StepError, StepFn, StepList, done, init, step};

/// The customer new subscriptions belong to when the state names none.
pub const DEFAULT_CUSTOMER: &str = "Default";

/// The patch that records the stored subscription row under `subscription`.
pub fn subscription_patch(record: &SubscriptionRecord) -> Result<Patch, StepError> {
    let mut patch = Patch::new();
    patch.insert("subscription_id".to_owned(), json!(record.subscription.id));
    patch.insert(
        "subscription".to_owned(),
        serde_json::to_value(&record.subscription)
            .map_err(|error| StepError::new(format!("cannot record the subscription: {error}")))?,
    );
    Ok(patch)
}

/// Loads the subscription the state's `subscription_id` names.
pub async fn load_subscription(ctx: &StepContext<'_>) -> Result<SubscriptionRecord, StepError> {
    let id: Uuid = ctx.get("subscription_id")?;
    Ok(ctx.store.load_subscription(id).await?)
}

struct CreateSubscription {
    product_type: ProductType,
    /// The default customer's id, looked up once.
    default_customer: tokio::sync::OnceCell<Uuid>,
}

#[async_trait]
impl StepFn for CreateSubscription {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let product_id: Uuid = ctx.get("product")?;
        let product = ctx.store.product(product_id).await?;
        if product.product_type != self.product_type {
            return Err(DomainError::invalid(
                "product",
                format!(
                    "{} is a {} product, not a {}",
                    product.name, product.product_type, self.product_type
                ),
            )
            .into());
        }
        let customer_id = match ctx.get_optional::<Uuid>("customer_id")? {
            Some(id) => id,
            None => {
                *self
                    .default_customer
                    .get_or_try_init(|| async {
                        let name = Name::parse(DEFAULT_CUSTOMER)?;
                        Ok::<_, DomainError>(ctx.store.customer_by_name(&name).await?.id)
                    })
                    .await?
            }
        };
        let record = ctx
            .store
            .create_subscription(NewSubscription {
                id: Uuid::now_v7(),
                product_id,
                customer_id,
                description: "Initial subscription".to_owned(),
            })
            .await?;
        let mut patch = subscription_patch(&record)?;
        patch.insert("product_name".to_owned(), json!(product.name));
        patch.insert("customer_id".to_owned(), json!(customer_id));
        Ok(patch)
    }
}

/// "Create subscription": a new `initial` subscription of the state's `product` (which must be of
/// `product_type`), for the state's `customer_id` or the default customer (looked up once per step).
pub fn create_subscription(product_type: ProductType) -> Step {
    step(
        "create_subscription",
        "Create subscription",
        CreateSubscription {
            product_type,
            default_customer: tokio::sync::OnceCell::new(),
        },
    )
}

struct StoreProcessSubscription;

#[async_trait]
impl StepFn for StoreProcessSubscription {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let subscription_id: Uuid = ctx.get("subscription_id")?;
        ctx.store
            .link_subscription(ctx.process_id, subscription_id, ctx.now)
            .await?;
        Ok(Patch::new())
    }
}

/// "Create Process Subscription relation": records that the process touches the state's
/// subscription, so that listings by subscription find it.
pub fn store_process_subscription() -> Step {
    step(
        "store_process_subscription",
        "Create Process Subscription relation",
        StoreProcessSubscription,
    )
}

struct SetStatus(Lifecycle);

#[async_trait]
impl StepFn for SetStatus {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let mut record = load_subscription(ctx).await?;
        record
            .subscription
            .change_lifecycle(self.0, ctx.now)
            .map_err(DomainError::from)?;
        let stored = ctx.store.save_subscription(&record).await?;
        subscription_patch(&stored)
    }
}

/// "Set subscription to '<lifecycle>'": moves the subscription through the lifecycle state
/// machine (refused transitions fail the step).
pub fn set_status(lifecycle: Lifecycle) -> Step {
    step(
        &format!("set_status_{lifecycle}"),
        &format!("Set subscription to '{lifecycle}'"),
        SetStatus(lifecycle),
    )
}

struct SetInsync {
    insync: bool,
    checked: bool,
}

#[async_trait]
impl StepFn for SetInsync {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let mut record = load_subscription(ctx).await?;
        if self.checked && !record.subscription.insync {
            return Err(StepError::new(format!(
                "subscription {} is locked by another process",
                record.subscription.id
            )));
        }
        record.subscription.insync = self.insync;
        let stored = ctx.store.save_subscription(&record).await?;
        subscription_patch(&stored)
    }
}

/// "Lock subscription": marks the subscription out of sync so that no second modify or terminate
/// workflow takes it; fails if another process holds it.
pub fn unsync() -> Step {
    step(
        "unsync",
        "Lock subscription",
        SetInsync {
            insync: false,
            checked: true,
        },
    )
}

/// "Lock subscription" without the check, for validate workflows.
pub fn unsync_unchecked() -> Step {
    step(
        "unsync",
        "Lock subscription",
        SetInsync {
            insync: false,
            checked: false,
        },
    )
}

/// "Unlock subscription": marks the subscription in sync again.
pub fn resync() -> Step {
    step(
        "resync",
        "Unlock subscription",
        SetInsync {
            insync: true,
            checked: false,
        },
    )
}

/// A create workflow's steps, as orchestrator-core's `@create_workflow` frames them:
/// `init >> create_subscription >> store_process_subscription >> body >> set_status(active) >>
/// resync >> done`.
pub fn create_workflow(product_type: ProductType, body: StepList) -> StepList {
    init()
        >> create_subscription(product_type)
        >> store_process_subscription()
        >> body
        >> set_status(Lifecycle::Active)
        >> resync()
        >> done()
}

/// A modify workflow's steps: `init >> store_process_subscription >> unsync >> body >> resync
/// >> done`.
pub fn modify_workflow(body: StepList) -> StepList {
    init() >> store_process_subscription() >> unsync() >> body >> resync() >> done()
}

/// A terminate workflow's steps: `init >> store_process_subscription >> unsync >> body >>
/// set_status(terminated) >> resync >> done`.
pub fn terminate_workflow(body: StepList) -> StepList {
    init()
        >> store_process_subscription()
        >> unsync()
        >> body
        >> set_status(Lifecycle::Terminated)
        >> resync()
        >> done()
}

/// A validate workflow's steps: `init >> store_process_subscription >> unsync_unchecked >>
/// body >> resync >> done`.
pub fn validate_workflow(body: StepList) -> StepList {
    init() >> store_process_subscription() >> unsync_unchecked() >> body >> resync() >> done()
}
