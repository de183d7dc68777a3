//! The UserGroup workflows.

use std::collections::HashSet;

use crate::models::{UserGroup, UserGroupInactive, user_group_description};
use async_trait::async_trait;
use cadre_domain::models::DomainModel;
use cadre_domain::{BlockRef, DomainError, ExternalId, Lifecycle, Name, ProductType, Target};

use crate::forms;
use uuid::Uuid;

use crate::{active_groups, changed_text};
use cadre_engine::standard::{
    create_workflow, load_subscription, modify_workflow, subscription_patch, terminate_workflow,
    validate_workflow,
};
use cadre_engine::{Patch, StepContext, StepError, StepFn, StepList, Workflow, retry_step, step};

use crate::push::{PUSH_RETRY, PushGroup};

/// The UserGroup workflows, each with its form.
pub(crate) fn workflows() -> Vec<Workflow> {
    let user_group = || vec![ProductType::user_group()];
    vec![
        Workflow::new(
            "create_user_group",
            "Create a user group",
            Target::Create,
            user_group(),
            forms::create::<forms::UserGroupPage>(ProductType::user_group()),
            create(),
        ),
        Workflow::new(
            "modify_user_group",
            "Modify a user group",
            Target::Modify,
            user_group(),
            forms::modify(forms::modify_user_group_page),
            modify(),
        ),
        Workflow::new(
            "terminate_user_group",
            "Terminate a user group",
            Target::Terminate,
            user_group(),
            forms::terminate_user_group(),
            terminate(),
        ),
        Workflow::new(
            "validate_user_group",
            "Validate a user group",
            Target::Validate,
            user_group(),
            forms::validate(),
            validate(),
        ),
    ]
}

fn create() -> StepList {
    create_workflow(
        ProductType::user_group(),
        StepList::from(step(
            "initialize_subscription",
            "Initialize subscription",
            Initialize,
        )) >> retry_step(
            "provision_user_group",
            "Provision user group",
            PUSH_RETRY,
            Provision,
        ),
    )
}

/// The retry step that pushes the group to the outbound targets as `lifecycle`.
fn push_user_group(lifecycle: Lifecycle) -> cadre_engine::Step {
    retry_step(
        "push_user_group",
        "Push user group",
        PUSH_RETRY,
        PushGroup(lifecycle),
    )
}

fn modify() -> StepList {
    modify_workflow(
        StepList::from(step(
            "modify_user_group_subscription",
            "Modify subscription",
            Modify,
        )) >> push_user_group(Lifecycle::Active),
    )
}

fn terminate() -> StepList {
    terminate_workflow(
        StepList::from(step(
            "deprovision_user_group",
            "Deprovision user group",
            Deprovision,
        )) >> push_user_group(Lifecycle::Terminated),
    )
}

fn validate() -> StepList {
    validate_workflow(step("check_user_group", "Check user group", Check).into())
}

/// The parent references for `parents`, refusing any that is `group` itself or descends from it.
async fn parent_references(
    ctx: &StepContext<'_>,
    group: Uuid,
    parents: &[UserGroup],
) -> Result<Vec<BlockRef>, StepError> {
    for parent in parents {
        if ancestors(ctx, parent).await?.contains(&group) {
            return Err(StepError::new(format!(
                "{} cannot be a parent: it is nested in this group, which would make a cycle",
                parent.subscription.description
            )));
        }
    }
    Ok(parents
        .iter()
        .map(|parent| parent.user_group.reference(parent.subscription.id))
        .collect())
}

/// The subscription ids of `group` and every group above it.
async fn ancestors(ctx: &StepContext<'_>, group: &UserGroup) -> Result<HashSet<Uuid>, StepError> {
    let mut seen = HashSet::from([group.subscription.id]);
    let mut frontier: Vec<BlockRef> = group.user_group.parent_groups.clone();
    while let Some(parent) = frontier.pop() {
        if seen.insert(parent.owner_subscription_id) {
            let record = ctx
                .store
                .load_subscription(parent.owner_subscription_id)
                .await?;
            frontier.extend(
                UserGroupInactive::from_record(record)?
                    .user_group
                    .parent_groups,
            );
        }
    }
    Ok(seen)
}

struct Initialize;

#[async_trait]
impl StepFn for Initialize {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let mut group = UserGroupInactive::from_record(load_subscription(ctx).await?)?;
        let name = Name::parse(&ctx.get::<String>("user_group_name")?)?;
        group.user_group.user_group_id =
            Some(ExternalId::parse(&ctx.get::<String>("user_group_id")?)?);
        group.subscription.description = user_group_description(&name);
        group.user_group.name = Some(name);
        let parents = active_groups(ctx, "parent_user_groups").await?;
        group.user_group.parent_groups =
            parent_references(ctx, group.subscription.id, &parents).await?;
        group.user_group.discoverable = ctx.get_optional("discoverable")?.unwrap_or(false);
        group.user_group.terms = ctx.get_optional("terms")?;
        group.user_group.external_id = changed_text(ctx, "external_id")?.flatten();
        let group = group.into_provisioning(ctx.now)?;
        subscription_patch(&ctx.store.save_subscription(&group.into_record()).await?)
    }
}

struct Provision;

#[async_trait]
impl StepFn for Provision {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        // Parents chosen on the form must still be active when the group goes live.
        active_groups(ctx, "parent_user_groups").await?;
        PushGroup(Lifecycle::Active).run(ctx).await
    }
}

struct Modify;

#[async_trait]
impl StepFn for Modify {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let mut group = UserGroup::from_record(load_subscription(ctx).await?)?;
        if let Some(name) = ctx.get_optional::<String>("user_group_name")? {
            let name = Name::parse(&name)?;
            group.subscription.description = user_group_description(&name);
            group.user_group.name = name;
        }
        if ctx
            .get_optional::<Vec<Uuid>>("parent_user_groups")?
            .is_some()
        {
            let parents = active_groups(ctx, "parent_user_groups").await?;
            group.user_group.parent_groups =
                parent_references(ctx, group.subscription.id, &parents).await?;
        }
        if let Some(discoverable) = ctx.get_optional("discoverable")? {
            group.user_group.discoverable = discoverable;
        }
        if let Some(terms) = ctx.get_optional("terms")? {
            group.user_group.terms = Some(terms);
        }
        if let Some(external_id) = changed_text(ctx, "external_id")? {
            group.user_group.external_id = external_id;
        }
        subscription_patch(&ctx.store.save_subscription(&group.into_record()).await?)
    }
}

struct Deprovision;

#[async_trait]
impl StepFn for Deprovision {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let group = UserGroupInactive::from_record(load_subscription(ctx).await?)?;
        let users = ctx
            .store
            .subscriptions_using(group.user_group.instance_id)
            .await?;
        if !users.is_empty() {
            let names: Vec<&str> = users
                .iter()
                .map(|user| user.subscription.description.as_str())
                .collect();
            return Err(DomainError::Conflict(format!(
                "this subscription can not be terminated as it is used in other subscriptions: {}",
                names.join(", ")
            ))
            .into());
        }
        Ok(Patch::new())
    }
}

struct Check;

#[async_trait]
impl StepFn for Check {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let group = UserGroup::from_record(load_subscription(ctx).await?)?;
        let mut parents = Vec::with_capacity(group.user_group.parent_groups.len());
        for parent in &group.user_group.parent_groups {
            let record = ctx
                .store
                .load_subscription(parent.owner_subscription_id)
                .await?;
            if record.subscription.lifecycle != Lifecycle::Active {
                return Err(StepError::new(format!(
                    "parent group {} is {}",
                    record.subscription.description, record.subscription.lifecycle
                )));
            }
            parents.push(UserGroup::from_record(record)?);
        }
        parent_references(ctx, group.subscription.id, &parents).await?;
        Ok(Patch::new())
    }
}
