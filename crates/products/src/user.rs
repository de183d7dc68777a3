//! The User workflows; the create workflow is the seed's:
//! `create_subscription >> store_process_subscription >> initialize_subscription >> provision_user
//! >> set_status(active) >> resync >> done`.
//!
//! `disable_user` and `enable_user` take a user out of service and back (`active ⇄ disabled`),
//! in the modify frame; a disabled user cannot sign in, and disabling ends their sessions.

use crate::models::{Affiliation, Employment, User, UserGroup, UserInactive, user_description};
use async_trait::async_trait;
use cadre_domain::models::DomainModel;
use cadre_domain::{Email, ExternalId, Lifecycle, Name, ProductType, Target};

use crate::forms;

use crate::{active_groups, changed_text};
use cadre_engine::standard::{
    create_workflow, load_subscription, modify_workflow, set_status, subscription_patch,
    terminate_workflow, validate_workflow,
};
use cadre_engine::{Patch, StepContext, StepError, StepFn, StepList, Workflow, retry_step, step};

use crate::push::{PREVIOUS_GROUPS, PUSH_RETRY, PushUser, push_user};

/// The User workflows, each with its form.
pub(crate) fn workflows() -> Vec<Workflow> {
    let user = || vec![ProductType::user()];
    vec![
        Workflow::new(
            "create_user",
            "Create a user",
            Target::Create,
            user(),
            forms::create::<forms::UserPage>(ProductType::user()),
            create(),
        ),
        Workflow::new(
            "modify_user",
            "Modify a user",
            Target::Modify,
            user(),
            forms::modify(forms::modify_user_page),
            modify(),
        ),
        Workflow::new(
            "terminate_user",
            "Terminate a user",
            Target::Terminate,
            user(),
            forms::terminate("user"),
            terminate(),
        ),
        Workflow::new(
            "disable_user",
            "Disable a user",
            Target::Modify,
            user(),
            forms::change_lifecycle("Disable user"),
            disable(),
        ),
        Workflow {
            // A modify workflow starts on active subscriptions; this one on disabled ones.
            usable_when: vec![Lifecycle::Disabled],
            ..Workflow::new(
                "enable_user",
                "Enable a disabled user",
                Target::Modify,
                user(),
                forms::change_lifecycle("Enable user"),
                enable(),
            )
        },
        Workflow::new(
            "validate_user",
            "Validate a user",
            Target::Validate,
            user(),
            forms::validate(),
            validate(),
        ),
    ]
}

fn create() -> StepList {
    create_workflow(ProductType::user(), create_body())
}

/// The steps between the standard frame of `create_user`: `initialize_subscription >>
/// provision_user` (which pushes the user to the outbound targets, a retry step).
pub fn create_body() -> StepList {
    StepList::from(step(
        "initialize_subscription",
        "Initialize subscription",
        Initialize,
    )) >> retry_step("provision_user", "Provision user", PUSH_RETRY, Provision)
}

/// `… >> modify_user_subscription >> push_user >> …`.
fn modify() -> StepList {
    modify_workflow(
        StepList::from(step(
            "modify_user_subscription",
            "Modify subscription",
            Modify,
        )) >> push_user(),
    )
}

/// `… >> deprovision_user >> set_status(terminated) >> …`: each target deletes or disables
/// the user, as it is set to.
fn terminate() -> StepList {
    terminate_workflow(
        retry_step(
            "deprovision_user",
            "Deprovision user",
            PUSH_RETRY,
            PushUser(Some(Lifecycle::Terminated)),
        )
        .into(),
    )
}

/// `init >> store_process_subscription >> unsync >> set_status(disabled) >> end_user_sessions
/// >> push_user >> resync >> done`.
fn disable() -> StepList {
    modify_workflow(
        StepList::from(set_status(Lifecycle::Disabled))
            >> step("end_user_sessions", "End user sessions", EndSessions)
            >> push_user(),
    )
}

/// `init >> store_process_subscription >> unsync >> set_status(active) >> push_user >> resync
/// >> done`.
fn enable() -> StepList {
    modify_workflow(StepList::from(set_status(Lifecycle::Active)) >> push_user())
}

fn validate() -> StepList {
    validate_workflow(step("check_user", "Check user", Check).into())
}

/// The description of a user in `groups`.
fn description(username: &Name, groups: &[UserGroup], affiliation: Affiliation) -> String {
    let names: Vec<&Name> = groups.iter().map(|group| &group.user_group.name).collect();
    user_description(username, &names, affiliation)
}

fn optional_name(ctx: &StepContext<'_>, key: &str) -> Result<Option<Name>, StepError> {
    Ok(changed_name(ctx, key)?.flatten())
}

/// A modify workflow's optional name `key`, as [`changed_text`] reads it.
fn changed_name(ctx: &StepContext<'_>, key: &str) -> Result<Option<Option<Name>>, StepError> {
    changed_text(ctx, key)?
        .map(|value| value.map(|text| Name::parse(&text)).transpose())
        .transpose()
        .map_err(StepError::from)
}

/// `employment` as a create or modify workflow's state changes it: each part as
/// [`changed_text`] reads it.
fn changed_employment(
    ctx: &StepContext<'_>,
    mut employment: Employment,
) -> Result<Employment, StepError> {
    for (name, _) in Employment::default().parts() {
        if let (Some(value), Some(part)) = (changed_text(ctx, name)?, employment.part_mut(name)) {
            *part = value;
        }
    }
    employment.check()?;
    Ok(employment)
}

struct Initialize;

#[async_trait]
impl StepFn for Initialize {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let mut user = UserInactive::from_record(load_subscription(ctx).await?)?;
        let username = Name::parse(&ctx.get::<String>("username")?)?;
        let groups = active_groups(ctx, "user_group_ids").await?;
        user.user.user_id = Some(ExternalId::parse(&ctx.get::<String>("user_id")?)?);
        user.user.email = Some(Email::parse(&ctx.get::<String>("email")?)?);
        user.user.firstname = optional_name(ctx, "firstname")?;
        user.user.lastname = optional_name(ctx, "lastname")?;
        user.user.auth_id = ctx.get_optional("auth_id")?;
        user.user.employment = changed_employment(ctx, Employment::default())?;
        user.user.groups = groups
            .iter()
            .map(|group| group.user_group.reference(group.subscription.id))
            .collect();
        user.subscription.description = description(&username, &groups, user.affiliation);
        user.user.username = Some(username);
        let user = user.into_provisioning(ctx.now)?;
        subscription_patch(&ctx.store.save_subscription(&user.into_record()).await?)
    }
}

struct Provision;

#[async_trait]
impl StepFn for Provision {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        // The groups chosen on the form must still be active when the user goes live.
        active_groups(ctx, "user_group_ids").await?;
        PushUser(Some(Lifecycle::Active)).run(ctx).await
    }
}

struct Modify;

#[async_trait]
impl StepFn for Modify {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let mut user = User::from_record(load_subscription(ctx).await?)?;
        let previous: Vec<uuid::Uuid> = user
            .user
            .groups
            .iter()
            .map(|group| group.owner_subscription_id)
            .collect();
        if let Some(username) = ctx.get_optional::<String>("username")? {
            user.user.username = Name::parse(&username)?;
        }
        if let Some(email) = ctx.get_optional::<String>("email")? {
            user.user.email = Email::parse(&email)?;
        }
        if let Some(firstname) = changed_name(ctx, "firstname")? {
            user.user.firstname = firstname;
        }
        if let Some(lastname) = changed_name(ctx, "lastname")? {
            user.user.lastname = lastname;
        }
        if let Some(auth_id) = changed_text(ctx, "auth_id")? {
            user.user.auth_id = auth_id;
        }
        let employment = std::mem::take(&mut user.user.employment);
        user.user.employment = changed_employment(ctx, employment)?;
        let groups = if ctx
            .get_optional::<Vec<uuid::Uuid>>("user_group_ids")?
            .is_some()
        {
            let groups = active_groups(ctx, "user_group_ids").await?;
            user.user.groups = groups
                .iter()
                .map(|group| group.user_group.reference(group.subscription.id))
                .collect();
            groups
        } else {
            let mut groups = Vec::new();
            for group in &user.user.groups {
                let record = ctx
                    .store
                    .load_subscription(group.owner_subscription_id)
                    .await?;
                groups.push(UserGroup::from_record(record)?);
            }
            groups
        };
        user.subscription.description = description(&user.user.username, &groups, user.affiliation);
        let mut patch =
            subscription_patch(&ctx.store.save_subscription(&user.into_record()).await?)?;
        patch.insert(PREVIOUS_GROUPS.to_owned(), serde_json::json!(previous));
        Ok(patch)
    }
}

/// Ends every session of the user (the state's `subscription_id`), recording how many under
/// `sessions_ended`. A disabled user's sessions would be refused anyway; this removes them.
struct EndSessions;

#[async_trait]
impl StepFn for EndSessions {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let user_id: uuid::Uuid = ctx.get("subscription_id")?;
        let ended = ctx.store.delete_sessions_of(user_id, None).await?;
        let mut patch = Patch::new();
        patch.insert("sessions_ended".to_owned(), serde_json::json!(ended));
        Ok(patch)
    }
}

struct Check;

#[async_trait]
impl StepFn for Check {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let user = User::from_record(load_subscription(ctx).await?)?;
        for group in &user.user.groups {
            let record = ctx
                .store
                .load_subscription(group.owner_subscription_id)
                .await?;
            if record.subscription.lifecycle != Lifecycle::Active {
                return Err(StepError::new(format!(
                    "user {} belongs to group {}, which is {}",
                    user.user.username,
                    record.subscription.description,
                    record.subscription.lifecycle
                )));
            }
        }
        Ok(Patch::new())
    }
}
