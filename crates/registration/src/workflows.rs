//! The workflows registration runs: completing a registration (the create User steps, then
//! moving the password hash and recording the announcements), and joining or leaving a group.

use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use cadre_domain::models::DomainModel;
use cadre_domain::{
    FormLookups, FormNotComplete, FormValidationError, Lifecycle, Name, OutboxMessage, ProductType,
    Repositories, State, Target, ValidationError,
};
use cadre_engine::standard::{
    create_workflow, load_subscription, modify_workflow, subscription_patch,
};
use cadre_engine::{
    FormError, InputForm, Patch, StepContext, StepError, StepFn, StepList, Workflow, step,
};
use cadre_products::create_user_body;
use cadre_products::models::{User, UserGroup, user_description};
use cadre_products::push::{PREVIOUS_GROUPS, push_user};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

/// The workflow that turns a pending user into a User subscription.
pub const COMPLETE_REGISTRATION: &str = "complete_registration";
/// The workflow that adds a user to a group.
pub const JOIN_USER_GROUP: &str = "join_user_group";
/// The workflow that takes a user out of a group.
pub const LEAVE_USER_GROUP: &str = "leave_user_group";

/// The input of [`COMPLETE_REGISTRATION`]: the create User fields, the pending user, and the
/// mails and webhook calls to send once the user exists.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompletionInput {
    /// The User product.
    pub product: Uuid,
    /// The pending user whose registration this completes.
    pub pending_user_id: Uuid,
    /// The external id (the user name).
    pub user_id: String,
    /// The user name.
    pub username: String,
    /// The proven address.
    pub email: String,
    /// What to send when the user exists, recorded with the user in one transaction.
    pub announcements: Vec<OutboxMessage>,
}

/// A one-page form whose page is `T` as JSON: for workflows that only registration starts.
struct TypedForm<T>(&'static str, PhantomData<fn() -> T>);

#[async_trait]
impl<T: DeserializeOwned + Serialize + Send + Sync> InputForm for TypedForm<T> {
    async fn submit(
        &self,
        _: &dyn FormLookups,
        _: &State,
        pages: &[Value],
    ) -> Result<State, FormError> {
        let [page] = pages else {
            if pages.is_empty() {
                return Err(FormError::NotComplete(Box::new(FormNotComplete::new(
                    json!({"title": self.0, "type": "object"}),
                    None,
                ))));
            }
            return Err(FormError::TooManyPages {
                expected: 1,
                submitted: pages.len(),
            });
        };
        let invalid = |message: String| {
            FormError::Invalid(Box::new(FormValidationError::new(
                0,
                vec![ValidationError::new(
                    "value_error",
                    Vec::new(),
                    message,
                    page,
                )],
            )))
        };
        let input: T =
            serde_json::from_value(page.clone()).map_err(|error| invalid(error.to_string()))?;
        match serde_json::to_value(input) {
            Ok(Value::Object(state)) => Ok(state),
            _ => Err(invalid("the page is not an object".to_owned())),
        }
    }
}

/// The page of [`JOIN_USER_GROUP`] and [`LEAVE_USER_GROUP`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipInput {
    /// The User subscription.
    pub subscription_id: Uuid,
    /// The UserGroup subscription.
    pub user_group: Uuid,
}

/// Registration's workflows. They are tasks: only registration (or an admin) starts them.
pub fn workflows() -> Vec<Workflow> {
    let task = |name: &str, description: &'static str, form: Arc<dyn InputForm>, steps| Workflow {
        name: name.to_owned(),
        description: description.to_owned(),
        target: Target::System,
        product_types: vec![ProductType::user()],
        usable_when: Vec::new(),
        version: 1,
        initial_form: form,
        steps,
    };
    let membership = |title| Arc::new(TypedForm::<MembershipInput>(title, PhantomData));
    vec![
        task(
            COMPLETE_REGISTRATION,
            "Complete a registration",
            Arc::new(TypedForm::<CompletionInput>(
                "Complete a registration",
                PhantomData,
            )),
            create_workflow(
                ProductType::user(),
                create_user_body()
                    >> step(
                        "finish_registration",
                        "Finish registration",
                        FinishRegistration,
                    ),
            ),
        ),
        task(
            JOIN_USER_GROUP,
            "Join a user group",
            membership("Join a user group"),
            modify_workflow(
                StepList::from(step(
                    "add_user_group",
                    "Add user group",
                    SetMembership(true),
                )) >> push_user(),
            ),
        ),
        task(
            LEAVE_USER_GROUP,
            "Leave a user group",
            membership("Leave a user group"),
            modify_workflow(
                StepList::from(step(
                    "remove_user_group",
                    "Remove user group",
                    SetMembership(false),
                )) >> push_user(),
            ),
        ),
    ]
}

/// Moves the pending user's password hash to the new user, removes the pending user, and
/// records the announcements, all with the step.
struct FinishRegistration;

#[async_trait]
impl StepFn for FinishRegistration {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let pending_id: Uuid = ctx.get("pending_user_id")?;
        let user_id: Uuid = ctx.get("subscription_id")?;
        let announcements: Vec<OutboxMessage> = ctx.get("announcements")?;
        let pending = ctx.store.pending_user(pending_id).await?;
        ctx.store
            .store_credentials(user_id, &pending.password_hash, ctx.now)
            .await?;
        ctx.store.delete_pending_user(pending_id).await?;
        for message in &announcements {
            ctx.store.enqueue(message).await?;
        }
        Ok(Patch::new())
    }
}

/// The names of the groups `user` belongs to.
async fn group_names(repo: &dyn Repositories, user: &User) -> Result<Vec<Name>, StepError> {
    let ids: Vec<Uuid> = user
        .user
        .groups
        .iter()
        .map(|group| group.owner_subscription_id)
        .collect();
    let mut names = Vec::with_capacity(ids.len());
    for record in repo.load_subscriptions(&ids).await? {
        names.push(UserGroup::from_record(record)?.user_group.name);
    }
    Ok(names)
}

/// Adds (`true`) or removes (`false`) the state's `user_group` in the user's groups, recording
/// it as a group to push ([`PREVIOUS_GROUPS`]) so that a group left is pushed too.
struct SetMembership(bool);

#[async_trait]
impl StepFn for SetMembership {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let mut user = User::from_record(load_subscription(ctx).await?)?;
        let group_id: Uuid = ctx.get("user_group")?;
        let record = ctx.store.load_subscription(group_id).await?;
        if record.subscription.lifecycle != Lifecycle::Active && self.0 {
            return Err(StepError::new(format!(
                "user group {} is {}, not active",
                record.subscription.description, record.subscription.lifecycle
            )));
        }
        let group = UserGroup::from_record(record)?;
        let reference = group.user_group.reference(group.subscription.id);
        user.user.groups.retain(|existing| *existing != reference);
        if self.0 {
            user.user.groups.push(reference);
        }
        let names = group_names(ctx.store, &user).await?;
        let names: Vec<&Name> = names.iter().collect();
        user.subscription.description =
            user_description(&user.user.username, &names, user.affiliation);
        let mut patch =
            subscription_patch(&ctx.store.save_subscription(&user.into_record()).await?)?;
        patch.insert(PREVIOUS_GROUPS.to_owned(), serde_json::json!([group_id]));
        Ok(patch)
    }
}
