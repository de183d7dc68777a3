//! The built-in workflows of the demo products: create, modify, terminate and validate for
//! UserGroup and User, following the orchestrator-core workshop.
//!
//! Steps read their input from the process state under the field names of the initial forms
//! (`user_group_id`, `user_group_name`, `parent_user_groups`, …; `user_id`, `username`, `email`,
//! `user_group_ids`, …) and write through the domain models, so a subscription created here is
//! validated by the same types as one created by any other path. In modify workflows a field
//! that is absent or null leaves the value as it is.

mod user;
mod user_group;

use std::sync::Arc;

use cadre_domain::models::{DomainModel, UserGroup};
use cadre_domain::{Lifecycle, ProductType, Target};
use uuid::Uuid;

use crate::form::InputForm;
use crate::step::{StepContext, StepError, StepList};
use crate::workflow::{DefinitionError, Registry, Workflow};

/// The initial form of each built-in workflow, by workflow name.
pub type FormsByWorkflow<'a> = &'a dyn Fn(&str) -> Arc<dyn InputForm>;

/// A registry with every built-in workflow and its initial form from `cadre_forms::builtin`.
pub fn registry() -> Result<Registry, DefinitionError> {
    builtin(&|name| match cadre_forms::builtin::form(name) {
        Some(form) => Arc::new(form) as Arc<dyn InputForm>,
        None => Arc::new(cadre_forms::Form::new()),
    })
}

/// A registry with every built-in workflow, each with the initial form `forms` gives for its name.
pub fn builtin(forms: FormsByWorkflow<'_>) -> Result<Registry, DefinitionError> {
    let mut registry = Registry::new();
    for (name, description, target, product_type, steps) in definitions() {
        registry.register(Workflow {
            name: name.to_owned(),
            description: description.to_owned(),
            target,
            product_types: vec![product_type],
            usable_when: usable_when(target),
            version: 1,
            initial_form: forms(name),
            steps,
        })?;
    }
    Ok(registry)
}

/// The body of the create User workflow (`initialize_subscription >> provision_user`), for
/// workflows that create a user as `create_user` does and then do more (registration), framed
/// with [`crate::steps::create_workflow`]. It reads the same state keys as `create_user`.
pub fn create_user_body() -> StepList {
    user::create_body()
}

/// The names of the built-in workflows.
pub const NAMES: [&str; 8] = [
    "create_user_group",
    "modify_user_group",
    "terminate_user_group",
    "validate_user_group",
    "create_user",
    "modify_user",
    "terminate_user",
    "validate_user",
];

fn definitions() -> Vec<(&'static str, &'static str, Target, ProductType, StepList)> {
    vec![
        (
            NAMES[0],
            "Create a user group",
            Target::Create,
            ProductType::user_group(),
            user_group::create(),
        ),
        (
            NAMES[1],
            "Modify a user group",
            Target::Modify,
            ProductType::user_group(),
            user_group::modify(),
        ),
        (
            NAMES[2],
            "Terminate a user group",
            Target::Terminate,
            ProductType::user_group(),
            user_group::terminate(),
        ),
        (
            NAMES[3],
            "Validate a user group",
            Target::Validate,
            ProductType::user_group(),
            user_group::validate(),
        ),
        (
            NAMES[4],
            "Create a user",
            Target::Create,
            ProductType::user(),
            user::create(),
        ),
        (
            NAMES[5],
            "Modify a user",
            Target::Modify,
            ProductType::user(),
            user::modify(),
        ),
        (
            NAMES[6],
            "Terminate a user",
            Target::Terminate,
            ProductType::user(),
            user::terminate(),
        ),
        (
            NAMES[7],
            "Validate a user",
            Target::Validate,
            ProductType::user(),
            user::validate(),
        ),
    ]
}

/// The lifecycles a subscription must be in for a workflow of `target` to start on it.
fn usable_when(target: Target) -> Vec<Lifecycle> {
    match target {
        Target::Modify | Target::Validate => vec![Lifecycle::Active],
        Target::Terminate => vec![
            Lifecycle::Active,
            Lifecycle::Provisioning,
            Lifecycle::Disabled,
        ],
        Target::Create | Target::System => Vec::new(),
    }
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
