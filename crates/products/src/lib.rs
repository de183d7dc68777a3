//! cadre's built-in products, User and UserGroup, as one piece a server plugs in: their typed
//! models ([`models`]), their workflows (create, modify, terminate, validate; for a user also
//! disable and enable) and the forms that start them, following the orchestrator-core workshop.
//!
//! Each workflow is declared once, with its name, target, product type, form and steps
//! ([`workflows`]); [`registry`] registers them all. A downstream crate adds its own products
//! the same way: its workflows beside these in one registry.
//!
//! Steps read their input from the process state under the field names of the initial forms
//! (`user_group_id`, `user_group_name`, `parent_user_groups`, …; `user_id`, `username`, `email`,
//! `user_group_ids`, …) and write through the typed models, so a subscription created here is
//! validated by the same types as one created by any other path. In modify workflows a field
//! that is absent or null leaves the value as it is; an optional name sent empty is cleared.

pub mod forms;
pub mod models;
pub mod push;
#[cfg(feature = "testing")]
pub mod testing;
mod user;
mod user_group;

use cadre_domain::models::DomainModel;
use cadre_domain::{Lifecycle, ProductType};
use cadre_engine::{DefinitionError, Registry, StepContext, StepError, StepList, Workflow};
use uuid::Uuid;

use crate::models::UserGroup;

/// Every built-in workflow with its form: UserGroup's, then User's. (The task that reconciles
/// an outbound target, [`push::reconcile_workflow`], is a server's to register.)
pub fn workflows() -> Vec<Workflow> {
    let mut all = user_group::workflows();
    all.extend(user::workflows());
    all
}

/// A registry with every built-in workflow.
pub fn registry() -> Result<Registry, DefinitionError> {
    let mut registry = Registry::new();
    for workflow in workflows() {
        registry.register(workflow)?;
    }
    Ok(registry)
}

/// The body of the create User workflow (`initialize_subscription >> provision_user`), for
/// workflows that create a user as `create_user` does and then do more (registration), framed
/// with [`cadre_engine::standard::create_workflow`]. It reads the same state keys as `create_user`.
pub fn create_user_body() -> StepList {
    user::create_body()
}

/// A modify workflow's optional text `key`: `None` when absent or null (unchanged),
/// `Some(None)` when sent empty (cleared), `Some(Some(text))` when given.
fn changed_text(ctx: &StepContext<'_>, key: &str) -> Result<Option<Option<String>>, StepError> {
    Ok(ctx
        .get_optional::<String>(key)?
        .map(|value| (!value.trim().is_empty()).then_some(value)))
}

/// Loads the active groups named by the subscription ids in state key `key` (absent: none).
async fn active_groups(ctx: &StepContext<'_>, key: &str) -> Result<Vec<UserGroup>, StepError> {
    let ids: Vec<Uuid> = ctx.get_optional(key)?.unwrap_or_default();
    let mut groups = Vec::with_capacity(ids.len());
    for id in ids {
        let record = ctx.store.load_subscription(id).await?;
        if record.product.product_type != ProductType::user_group() {
            return Err(StepError::new(format!(
                "{key}: subscription {id} is not a user group"
            )));
        }
        if record.subscription.lifecycle != Lifecycle::Active {
            return Err(StepError::new(format!(
                "{key}: user group {} is {}, not active",
                record.subscription.description, record.subscription.lifecycle
            )));
        }
        groups.push(UserGroup::from_record(record)?);
    }
    Ok(groups)
}
