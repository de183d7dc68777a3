//! Builders for groups and users through the domain models, as a workflow would create them.

use cadre_domain::models::{self, DomainModel};
use cadre_domain::{
    BlockRef, Email, ExternalId, Lifecycle, Name, NewSubscription, SubscriptionRepository,
};
use cadre_migrations::demo::{
    DEFAULT_CUSTOMER_ID, USER_GROUP_PRODUCT_ID, USER_INTERNAL_PRODUCT_ID,
};
use cadre_products::models::{User, UserGroup, UserGroupInactive, UserInactive};
use cadre_store::SeaStore;
use chrono::{DateTime, TimeZone, Utc};
use std::io::Write;
use uuid::Uuid;

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
}

pub async fn initial_group(store: &SeaStore, description: &str) -> UserGroupInactive {
    let record = store
        .create_subscription(NewSubscription {
            id: Uuid::now_v7(),
            product_id: USER_GROUP_PRODUCT_ID,
            customer_id: DEFAULT_CUSTOMER_ID,
            description: description.to_owned(),
        })
        .await
        .unwrap();
    UserGroupInactive::from_record(record).unwrap()
}

/// An active group with the given external id and name, and optional parents.
pub async fn active_group(
    store: &SeaStore,
    group_id: &str,
    name: &str,
    parents: &[BlockRef],
) -> UserGroup {
    cadre_products::testing::active_group(store, Uuid::now_v7(), group_id, name, parents, now())
        .await
        .unwrap()
}

pub async fn initial_user(store: &SeaStore) -> UserInactive {
    let record = store
        .create_subscription(NewSubscription {
            id: Uuid::now_v7(),
            product_id: USER_INTERNAL_PRODUCT_ID,
            customer_id: DEFAULT_CUSTOMER_ID,
            description: "Initial subscription".to_owned(),
        })
        .await
        .unwrap();
    UserInactive::from_record(record).unwrap()
}

/// A provisioning user in `groups`; `Err` when the store refuses it.
pub async fn provisioned_user(
    store: &SeaStore,
    user_id: &str,
    username: &str,
    email: &str,
    groups: &[&UserGroup],
) -> cadre_domain::Result<User> {
    let mut user = initial_user(store).await;
    user.subscription.description = format!("User {username}");
    user.user.user_id = Some(ExternalId::parse(user_id)?);
    user.user.username = Some(Name::parse(username)?);
    user.user.email = Some(Email::parse(email)?);
    user.user.firstname = Some(Name::parse("Ada")?);
    user.user.auth_id = Some(format!("oidc|{user_id}"));
    user.user.groups = groups
        .iter()
        .map(|group| group.user_group.reference(group.subscription.id))
        .collect();
    models::save(store, user.into_provisioning(now())?).await
}

pub async fn activate<M: DomainModel + HasSubscription>(store: &SeaStore, mut model: M) -> M {
    model
        .subscription_mut()
        .change_lifecycle(Lifecycle::Active, now())
        .unwrap();
    model.subscription_mut().insync = true;
    models::save(store, model).await.unwrap()
}

/// Access to the subscription row of a typed model, for generic fixtures.
pub trait HasSubscription {
    fn subscription_mut(&mut self) -> &mut cadre_domain::Subscription;
}

impl HasSubscription for User {
    fn subscription_mut(&mut self) -> &mut cadre_domain::Subscription {
        &mut self.subscription
    }
}

impl HasSubscription for UserGroup {
    fn subscription_mut(&mut self) -> &mut cadre_domain::Subscription {
        &mut self.subscription
    }
}

/// The PostgreSQL server of `DATABASE_URL`; without one, says plainly that `test` is skipped and
/// how to run it. Written to stderr itself, past the test harness's capture, so that the
/// skip shows in `cargo test`'s output.
pub fn postgres_or_skip(test: &str) -> Option<String> {
    let server = cadre_store::testing::postgres_url();
    if server.is_none() {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: it needs PostgreSQL; run it with DATABASE_URL=postgres://USER@HOST:PORT/postgres (a role with CREATEDB)"
        );
    }
    server
}

/// Whether the tests run on SQLite; if not, says plainly that `test` is skipped and how to run
/// it, the way [`postgres_or_skip`] does.
pub fn sqlite_or_skip(test: &str) -> bool {
    let sqlite = cadre_store::testing::postgres_url().is_none();
    if !sqlite {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: it tests SQLite; run it without DATABASE_URL (or with a sqlite:// one)"
        );
    }
    sqlite
}
