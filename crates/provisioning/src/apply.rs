//! Applying one batch of planned changes through the domain models, inside the transaction of
//! the step that applies it.

use cadre_domain::models::DomainModel;
use cadre_domain::{
    DomainError, Lifecycle, NewSubscription, Product, ProductType, ProvisionedMark, Repositories,
    SubscriptionRecord, UuidV7Source, Written,
};
use cadre_products::models::{
    User, UserGroup, UserGroupInactive, UserInactive, user_description, user_group_description,
};
use chrono::{DateTime, Utc};

use uuid::Uuid;

use crate::plan::{Action, Change, GroupFields, UserFields};
use crate::report::{Outcome, RowReport};

/// Where new subscriptions go.
pub(crate) struct Placement<'a> {
    /// The product of new users.
    pub user_product: &'a Product,
    /// The product of new groups.
    pub group_product: &'a Product,
    /// The owning customer.
    pub customer_id: Uuid,
    /// Whether what is created becomes the loads' to manage (marked as provisioned).
    pub managed: bool,
}

/// Sets a user's fields as a load writes them.
fn set_user(user: &mut UserInactive, fields: &UserFields) {
    user.user.user_id = Some(fields.user_id.clone());
    if user.user.username.is_none() {
        user.user.username = Some(
            fields
                .username
                .clone()
                .unwrap_or_else(|| fields.user_id.to_name()),
        );
    }
    user.user.firstname = fields.firstname.clone();
    user.user.lastname = fields.lastname.clone();
    user.user.email = Some(fields.email.clone());
    user.user.auth_id = fields.auth_id.clone();
    user.user.groups = fields.groups.clone();
    if let Some(employment) = &fields.employment {
        user.user.employment = employment.clone();
    }
    let names: Vec<&cadre_domain::Name> = fields.group_names.iter().collect();
    if let Some(username) = &user.user.username {
        user.subscription.description = user_description(username, &names, user.affiliation);
    }
}

/// Sets a group's fields as a load writes them.
fn set_group(group: &mut UserGroupInactive, fields: &GroupFields) {
    group.user_group.user_group_id = Some(fields.user_group_id.clone());
    group.subscription.description = user_group_description(&fields.name);
    group.user_group.name = Some(fields.name.clone());
    group.user_group.parent_groups = fields.parents.clone();
}

/// The mark of a subscription `change` leaves as `record`: users carry what was written, so that
/// the next load can compare it instead of reading the user.
fn mark(change: &Change, record: &SubscriptionRecord) -> ProvisionedMark {
    let written = match &change.action {
        Action::CreateUser(fields) | Action::UpdateUser(fields) => Some(Written {
            external_id: change.id.clone(),
            fingerprint: fields.fingerprint(),
        }),
        _ => None,
    };
    ProvisionedMark {
        subscription_id: record.subscription.id,
        version: record.subscription.version,
        written,
    }
}

fn new_record(product: &Product, customer_id: Uuid, id: Uuid) -> SubscriptionRecord {
    SubscriptionRecord::initial(
        NewSubscription {
            id,
            product_id: product.id,
            customer_id,
            description: String::new(),
        },
        product.clone(),
        &UuidV7Source,
    )
}

/// Applies `changes` in order and reports each. Creates are inserted together; a change whose
/// subscription has moved on since planning (no longer active, or held by a process) is
/// skipped, and a group still in use is not removed.
pub(crate) async fn apply_batch(
    repo: &dyn Repositories,
    changes: &[Change],
    placement: &Placement<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<RowReport>, DomainError> {
    let mut creates = Vec::new();
    // Groups a user load adds for its users (changes without a row) are not the load's to
    // manage: a group load that does not list them leaves them alone.
    let mut marks = Vec::new();
    for change in changes {
        match &change.action {
            Action::CreateUser(fields) => {
                let record = new_record(
                    placement.user_product,
                    placement.customer_id,
                    change.subscription_id,
                );
                let mut user = UserInactive::from_record(record)?;
                set_user(&mut user, fields);
                // As the create workflow leaves it: through provisioning to active, in sync;
                // then disabled, as `disable_user` leaves it, when the row asks.
                let mut user = user.into_provisioning(now)?;
                user.subscription.change_lifecycle(Lifecycle::Active, now)?;
                if fields.disabled {
                    user.subscription
                        .change_lifecycle(Lifecycle::Disabled, now)?;
                }
                user.subscription.insync = true;
                creates.push((change, user.into_record()));
            }
            Action::CreateGroup {
                instance_id,
                fields,
            } => {
                let record = new_record(
                    placement.group_product,
                    placement.customer_id,
                    change.subscription_id,
                );
                let mut group = UserGroupInactive::from_record(record)?;
                group.user_group.instance_id = *instance_id;
                set_group(&mut group, fields);
                let mut group = group.into_provisioning(now)?;
                group
                    .subscription
                    .change_lifecycle(Lifecycle::Active, now)?;
                group.subscription.insync = true;
                creates.push((change, group.into_record()));
            }
            _ => {}
        }
    }
    // Creates first: later changes of the batch may refer to the groups among them.
    marks.extend(
        creates
            .iter()
            .filter(|(change, _)| placement.managed && change.row.is_some())
            .map(|(change, record)| mark(change, record)),
    );
    let creates: Vec<SubscriptionRecord> = creates.into_iter().map(|(_, record)| record).collect();
    repo.insert_subscriptions(&creates).await?;

    let existing: Vec<Uuid> = changes
        .iter()
        .filter(|change| {
            !matches!(
                change.action,
                Action::CreateUser(_) | Action::CreateGroup { .. }
            )
        })
        .map(|change| change.subscription_id)
        .collect();
    let mut records: std::collections::HashMap<Uuid, SubscriptionRecord> = repo
        .load_subscriptions(&existing)
        .await?
        .into_iter()
        .map(|record| (record.subscription.id, record))
        .collect();
    let mut reports = Vec::with_capacity(changes.len());
    for change in changes {
        let report = |outcome| RowReport::new(change.row, change.id.clone(), outcome);
        let refuse = |reason: String| {
            RowReport::because(change.row, change.id.clone(), Outcome::Skipped, reason)
        };
        if matches!(
            change.action,
            Action::CreateUser(_) | Action::CreateGroup { .. }
        ) {
            reports.push(report(Outcome::Created));
            continue;
        }
        let Some(record) = records.remove(&change.subscription_id) else {
            reports.push(refuse("the subscription no longer exists".to_owned()));
            continue;
        };
        let subscription = &record.subscription;
        if subscription.lifecycle != Lifecycle::Active || !subscription.insync {
            reports.push(refuse(format!(
                "the subscription is {}{} since the load was planned",
                subscription.lifecycle,
                if subscription.insync {
                    ""
                } else {
                    " and held by a process"
                }
            )));
            continue;
        }
        let saved = match &change.action {
            Action::UpdateUser(fields) => {
                let mut user = UserInactive::from(User::from_record(record)?);
                set_user(&mut user, fields);
                User::try_from(user)?.into_record()
            }
            Action::UpdateGroup(fields) => {
                let mut group = UserGroupInactive::from(UserGroup::from_record(record)?);
                set_group(&mut group, fields);
                UserGroup::try_from(group)?.into_record()
            }
            Action::Remove => {
                // Only groups are referenced by other subscriptions (users and subgroups).
                let users = match record.blocks.first() {
                    Some(block) if record.product.product_type == ProductType::user_group() => {
                        repo.subscriptions_using(block.id).await?
                    }
                    _ => Vec::new(),
                };
                if !users.is_empty() {
                    let names: Vec<&str> = users
                        .iter()
                        .map(|user| user.subscription.description.as_str())
                        .collect();
                    reports.push(RowReport::because(
                        change.row,
                        change.id.clone(),
                        Outcome::Failed,
                        format!("still used by {}", names.join(", ")),
                    ));
                    continue;
                }
                let mut record = record;
                record
                    .subscription
                    .change_lifecycle(Lifecycle::Terminated, now)?;
                record
            }
            Action::CreateUser(_) | Action::CreateGroup { .. } => continue,
        };
        let saved = repo.save_subscription(&saved).await?;
        if !matches!(change.action, Action::Remove) {
            marks.push(mark(change, &saved));
        }
        reports.push(report(change.action.outcome()));
    }
    repo.mark_provisioned(&marks, now).await?;
    Ok(reports)
}
