//! The steps that push users and groups to the outbound targets (`StepContext::outbound`), as
//! retry steps: a target that is down makes the process wait, and a retry finishes it once the
//! target is back.
//!
//! A user is pushed with the groups it is in (and, after a change of groups, the ones it left),
//! each group with its members as they are now: active users only, so a disabled or terminated
//! user leaves every group on every target.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use cadre_domain::models::DomainModel;
use std::sync::Arc;

use cadre_domain::outbound::{Change, GroupSnapshot, PushError, ReconcileOptions, UserSnapshot};
use cadre_domain::{Lifecycle, ProductType, Repositories, SubscriptionQuery, Target};
use cadre_engine::{
    Patch, RetryPolicy, Step, StepContext, StepError, StepFn, Workflow, done, init, retry_step,
    step,
};
use cadre_forms::{Field, Form, FormPage};
use serde_json::json;
use uuid::Uuid;

use crate::models::{UserGroupInactive, UserInactive};

/// How a push retries: from 1 s, doubling, at most 5 min apart, 20 attempts (about an hour).
pub const PUSH_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 20,
    initial: Duration::from_secs(1),
    factor: 2.0,
    max_delay: Duration::from_secs(300),
};

/// The state key under which a modify step records the groups a user was in before.
pub const PREVIOUS_GROUPS: &str = "previous_user_group_ids";

/// The retry step `push_user`: [`PushUser`] as the user is stored.
pub fn push_user() -> Step {
    retry_step("push_user", "Push user", PUSH_RETRY, PushUser(None))
}

/// Pushes the state's user (`subscription_id`) with its groups and those in
/// [`PREVIOUS_GROUPS`]: as the lifecycle it is about to have (`Some`: a step before the change
/// of lifecycle, such as creating or terminating it), or as stored (`None`: a disabled user
/// stays inactive whatever else changes).
pub struct PushUser(pub Option<Lifecycle>);

#[async_trait]
impl StepFn for PushUser {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let user_id: Uuid = ctx.get("subscription_id")?;
        let previous: Vec<Uuid> = ctx.get_optional(PREVIOUS_GROUPS)?.unwrap_or_default();
        let changes = user_changes(ctx, user_id, self.0, &previous).await?;
        push(ctx, &changes).await
    }
}

/// Pushes the state's group (`subscription_id`) as `lifecycle`.
pub struct PushGroup(pub Lifecycle);

#[async_trait]
impl StepFn for PushGroup {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let group_id: Uuid = ctx.get("subscription_id")?;
        let group = UserGroupInactive::from_record(ctx.store.load_subscription(group_id).await?)?;
        let change = Change::Group(group_snapshot(ctx.store, &group, self.0, None).await?);
        push(ctx, &[change]).await
    }
}

/// The changes that bring the targets up to date with the user `user_id` as `lifecycle` (as
/// stored when `None`): the user, then each active group it is in or was in (`previous`).
pub async fn user_changes(
    ctx: &StepContext<'_>,
    user_id: Uuid,
    lifecycle: Option<Lifecycle>,
    previous: &[Uuid],
) -> Result<Vec<Change>, StepError> {
    let user = UserInactive::from_record(ctx.store.load_subscription(user_id).await?)?;
    let lifecycle = lifecycle.unwrap_or(user.subscription.lifecycle);
    let in_groups: BTreeSet<Uuid> = user
        .user
        .groups
        .iter()
        .map(|group| group.owner_subscription_id)
        .collect();
    let mut changes = vec![Change::User(user_snapshot(&user, lifecycle))];
    for group_id in in_groups.iter().chain(previous).collect::<BTreeSet<_>>() {
        let record = ctx.store.load_subscription(*group_id).await?;
        if record.product.product_type != ProductType::user_group()
            || record.subscription.lifecycle != Lifecycle::Active
        {
            continue;
        }
        let group = UserGroupInactive::from_record(record)?;
        let member = lifecycle == Lifecycle::Active && in_groups.contains(group_id);
        let snapshot = group_snapshot(
            ctx.store,
            &group,
            Lifecycle::Active,
            Some((user_id, member)),
        );
        changes.push(Change::Group(snapshot.await?));
    }
    Ok(changes)
}

/// The changes that bring the targets up to date with the subscriptions `ids` (users and
/// groups; others are left out), each as the store holds it now, with the groups the users are
/// in; users first. For pushes of many subscriptions at once (a bulk load, a reconcile).
/// Subscriptions not yet established (being created) are left out.
pub async fn changes_of(repo: &dyn Repositories, ids: &[Uuid]) -> Result<Vec<Change>, StepError> {
    let mut changes = Vec::with_capacity(ids.len());
    let mut groups: BTreeSet<Uuid> = BTreeSet::new();
    for chunk in ids.chunks(1000) {
        for record in repo.load_subscriptions(chunk).await? {
            if !established(record.subscription.lifecycle) {
                continue;
            }
            if record.product.product_type == ProductType::user_group() {
                groups.insert(record.subscription.id);
            } else if record.product.product_type == ProductType::user() {
                let user = UserInactive::from_record(record)?;
                groups.extend(
                    user.user
                        .groups
                        .iter()
                        .map(|group| group.owner_subscription_id),
                );
                changes.push(Change::User(user_snapshot(
                    &user,
                    user.subscription.lifecycle,
                )));
            }
        }
    }
    let groups: Vec<Uuid> = groups.into_iter().collect();
    for chunk in groups.chunks(1000) {
        for record in repo.load_subscriptions(chunk).await? {
            if !established(record.subscription.lifecycle)
                || record.product.product_type != ProductType::user_group()
            {
                continue;
            }
            let lifecycle = record.subscription.lifecycle;
            let group = UserGroupInactive::from_record(record)?;
            let snapshot = group_snapshot(repo, &group, lifecycle, None).await?;
            changes.push(Change::Group(snapshot));
        }
    }
    Ok(changes)
}

/// Whether a subscription in `lifecycle` is one the targets have (or had).
fn established(lifecycle: Lifecycle) -> bool {
    !matches!(lifecycle, Lifecycle::Initial | Lifecycle::Provisioning)
}

/// `user` as the targets get it, as `lifecycle`.
pub fn user_snapshot(user: &UserInactive, lifecycle: Lifecycle) -> UserSnapshot {
    let block = &user.user;
    let mut fields: Vec<(&str, Option<String>)> = vec![
        ("user_id", block.user_id.as_ref().map(ToString::to_string)),
        ("username", block.username.as_ref().map(ToString::to_string)),
        (
            "firstname",
            block.firstname.as_ref().map(ToString::to_string),
        ),
        ("lastname", block.lastname.as_ref().map(ToString::to_string)),
        ("email", block.email.as_ref().map(ToString::to_string)),
        ("auth_id", block.auth_id.clone()),
    ];
    fields.extend(
        block
            .employment
            .parts()
            .map(|(name, value)| (name, value.map(str::to_owned))),
    );
    UserSnapshot {
        subscription_id: user.subscription.id,
        lifecycle,
        fields: fields
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_owned(), value?)))
            .collect(),
    }
}

/// `group` as the targets get it, as `lifecycle`, with its active members; `changing` is a
/// user whose membership is about to be what it says, whatever the store holds now.
pub async fn group_snapshot(
    repo: &dyn Repositories,
    group: &UserGroupInactive,
    lifecycle: Lifecycle,
    changing: Option<(Uuid, bool)>,
) -> Result<GroupSnapshot, StepError> {
    let mut members: BTreeSet<Uuid> = repo
        .subscriptions_using(group.user_group.instance_id)
        .await?
        .into_iter()
        .filter(|using| {
            using.product_type == ProductType::user()
                && using.subscription.lifecycle == Lifecycle::Active
        })
        .map(|using| using.subscription.id)
        .collect();
    if let Some((user, member)) = changing {
        if member {
            members.insert(user);
        } else {
            members.remove(&user);
        }
    }
    let text = |value: Option<String>, what: &str| {
        value.ok_or_else(|| {
            StepError::new(format!(
                "group {} has no {what} to push",
                group.subscription.id
            ))
        })
    };
    Ok(GroupSnapshot {
        subscription_id: group.subscription.id,
        lifecycle,
        external_id: text(
            group
                .user_group
                .user_group_id
                .as_ref()
                .map(ToString::to_string),
            "user_group_id",
        )?,
        name: text(
            group.user_group.name.as_ref().map(ToString::to_string),
            "name",
        )?,
        members: members.into_iter().collect(),
    })
}

/// Pushes `changes`; a target that is down or refuses is a step failure naming it (the step
/// is a retry step: the process waits).
async fn push(ctx: &StepContext<'_>, changes: &[Change]) -> Result<Patch, StepError> {
    ctx.outbound
        .push(ctx.store, changes)
        .await
        .map_err(push_failure)?;
    Ok(Patch::new())
}

/// A failed push as a step failure: the store's error as it is, an unreachable target as an
/// unavailable API, a refusal with its class.
pub fn push_failure(error: PushError) -> StepError {
    match error {
        PushError::Store(error) => error.into(),
        error @ PushError::Unavailable { .. } => {
            StepError::api_unavailable(format!("push: {error}"))
        }
        error => StepError {
            detail: Some(json!({ "class": "push_refused" })),
            ..StepError::new(format!("push: {error}"))
        },
    }
}

/// The task that reconciles one target with cadre.
pub const RECONCILE_TARGET: &str = "reconcile_target";

/// [`RECONCILE_TARGET`]: `init >> reconcile >> done`. Its input is the target (`target_id`),
/// whether only to plan (`dry_run`) and the removal guard (`max_removals`, 10 by default); its
/// result the state's `report` ([`cadre_domain::outbound::ReconcileReport`]). A plain step: a guard that stops the run
/// or a target that cannot be reached fails the process, to be retried.
pub fn reconcile_workflow() -> Workflow {
    let form = Form::new().page(
        FormPage::new("Reconcile a target")
            .field(Field::uuid("target_id"))
            .field(Field::boolean("dry_run").default(json!(false)))
            .field(
                Field::integer("max_removals")
                    .ge(0)
                    .default(json!(ReconcileOptions::default().max_removals)),
            ),
    );
    Workflow {
        name: RECONCILE_TARGET.to_owned(),
        description: "Reconcile a target".to_owned(),
        target: Target::System,
        product_types: Vec::new(),
        usable_when: Vec::new(),
        version: 1,
        initial_form: Arc::new(form),
        steps: init() >> step("reconcile", "Reconcile target", Reconcile) >> done(),
    }
}

/// Compares the target with every user and group cadre has (but those being created) and
/// brings it up to date, or in a dry run plans to.
struct Reconcile;

#[async_trait]
impl StepFn for Reconcile {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let target_id: Uuid = ctx.get("target_id")?;
        let options = ReconcileOptions {
            dry_run: ctx.get_optional("dry_run")?.unwrap_or(false),
            max_removals: ctx
                .get_optional("max_removals")?
                .unwrap_or(ReconcileOptions::default().max_removals),
        };
        let mut ids = Vec::new();
        for product_type in [ProductType::user(), ProductType::user_group()] {
            let query = SubscriptionQuery {
                product_type: Some(product_type),
                ..SubscriptionQuery::default()
            };
            let page = ctx.store.list_subscriptions(&query).await?;
            ids.extend(page.items.into_iter().map(|item| item.subscription.id));
        }
        let desired = changes_of(ctx.store, &ids).await?;
        let report = ctx
            .outbound
            .reconcile(ctx.store, target_id, &desired, options)
            .await
            .map_err(push_failure)?;
        let mut patch = Patch::new();
        patch.insert(
            "report".to_owned(),
            serde_json::to_value(&report).map_err(|error| StepError::new(error.to_string()))?,
        );
        Ok(patch)
    }
}
