//! A store, an engine with the built-in and provisioning workflows, and views of what is stored.

// Each test binary uses its own part of the support.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use cadre_domain::models::DomainModel;
use cadre_domain::{
    Lifecycle, ProductType, SubscriptionQuery, SubscriptionRecord, SubscriptionRepository,
    SystemClock,
};
use cadre_engine::{Engine, EngineConfig};
use cadre_migrations::demo::{USER_GROUP_PRODUCT_ID, USER_INTERNAL_PRODUCT_ID};
use cadre_products::models::{UserGroupInactive, UserInactive};
use cadre_provisioning::input::{Format, read_user_groups, read_users};
use cadre_provisioning::{
    LoadReport, LoadSettings, Mode, Provisioner, Rows, UserGroupRow, UserRow, workflows,
};
use cadre_store::testing::{ScratchStore, scratch_store};
use serde_json::json;
use uuid::Uuid;

/// User rows from CSV text.
pub fn users_csv(text: &str, mode: Mode) -> Vec<UserRow> {
    read_users(text.as_bytes(), Format::Csv, mode).unwrap()
}

/// Group rows from CSV text.
pub fn groups_csv(text: &str, mode: Mode) -> Vec<UserGroupRow> {
    read_user_groups(text.as_bytes(), Format::Csv, mode).unwrap()
}

/// Settings that allow any share of removals.
pub trait Forced {
    fn forced(self) -> Self;
}

impl Forced for LoadSettings {
    fn forced(mut self) -> Self {
        self.force = true;
        self
    }
}

/// A live user as stored, by what loads compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUser {
    pub subscription_id: Uuid,
    pub firstname: Option<String>,
    pub lastname: Option<String>,
    pub email: Option<String>,
    pub auth_id: Option<String>,
    pub groups: Vec<String>,
}

/// A live group as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGroup {
    pub name: String,
    pub parents: Vec<String>,
}

pub struct Harness {
    pub engine: Engine,
    pub provisioner: Provisioner,
    /// Last: the scratch database is removed after everything that uses it.
    pub store: ScratchStore,
}

impl Harness {
    pub async fn new() -> Self {
        let store = scratch_store().await;
        let mut registry = cadre_products::registry().unwrap();
        for workflow in workflows() {
            registry.register(workflow).unwrap();
        }
        let engine = Engine::new(
            Arc::new(store.clone()),
            registry,
            Arc::new(SystemClock),
            EngineConfig::default(),
        );
        let provisioner = Provisioner::new(engine.clone());
        Self {
            engine,
            provisioner,
            store,
        }
    }

    async fn load(&self, rows: Rows, settings: LoadSettings) -> LoadReport {
        let process = self
            .provisioner
            .start(&rows, settings, "tester")
            .await
            .unwrap();
        self.engine.run_until_idle().await.unwrap();
        self.provisioner.report(process.id).await.unwrap()
    }

    pub async fn load_users(&self, rows: &[UserRow], settings: LoadSettings) -> LoadReport {
        self.load(Rows::Users(rows.to_vec()), settings).await
    }

    pub async fn load_groups(&self, rows: &[UserGroupRow], settings: LoadSettings) -> LoadReport {
        self.load(Rows::UserGroups(rows.to_vec()), settings).await
    }

    async fn live(&self, product_type: ProductType) -> Vec<SubscriptionRecord> {
        let page = self
            .store
            .list_subscriptions(&SubscriptionQuery {
                product_type: Some(product_type),
                ..SubscriptionQuery::default()
            })
            .await
            .unwrap();
        let ids: Vec<Uuid> = page
            .items
            .iter()
            .filter(|summary| summary.subscription.lifecycle != Lifecycle::Terminated)
            .map(|summary| summary.subscription.id)
            .collect();
        self.store.load_subscriptions(&ids).await.unwrap()
    }

    /// Group external ids by block instance id, of every group ever stored.
    async fn group_ids(&self) -> BTreeMap<Uuid, String> {
        self.live(ProductType::user_group())
            .await
            .into_iter()
            .map(|record| {
                let group = UserGroupInactive::from_record(record).unwrap();
                let id = group.user_group.user_group_id.unwrap().as_str().to_owned();
                (group.user_group.instance_id, id)
            })
            .collect()
    }

    pub async fn live_users(&self) -> BTreeMap<String, StoredUser> {
        let group_ids = self.group_ids().await;
        self.live(ProductType::user())
            .await
            .into_iter()
            .map(|record| {
                let user = UserInactive::from_record(record).unwrap();
                let block = user.user;
                let mut groups: Vec<String> = block
                    .groups
                    .iter()
                    .map(|group| group_ids[&group.instance_id].clone())
                    .collect();
                groups.sort();
                let text = |name: Option<cadre_domain::Name>| name.map(|n| n.as_str().to_owned());
                (
                    block.user_id.unwrap().as_str().to_owned(),
                    StoredUser {
                        subscription_id: user.subscription.id,
                        firstname: text(block.firstname),
                        lastname: text(block.lastname),
                        email: block.email.map(|email| email.as_str().to_owned()),
                        auth_id: block.auth_id,
                        groups,
                    },
                )
            })
            .collect()
    }

    pub async fn live_groups(&self) -> BTreeMap<String, StoredGroup> {
        let group_ids = self.group_ids().await;
        self.live(ProductType::user_group())
            .await
            .into_iter()
            .map(|record| {
                let group = UserGroupInactive::from_record(record).unwrap().user_group;
                let mut parents: Vec<String> = group
                    .parent_groups
                    .iter()
                    .map(|parent| group_ids[&parent.instance_id].clone())
                    .collect();
                parents.sort();
                (
                    group.user_group_id.unwrap().as_str().to_owned(),
                    StoredGroup {
                        name: group.name.unwrap().as_str().to_owned(),
                        parents,
                    },
                )
            })
            .collect()
    }

    /// Every live subscription's version, by its external id.
    pub async fn versions(&self) -> BTreeMap<String, i64> {
        let mut versions = BTreeMap::new();
        for record in self.live(ProductType::user()).await {
            let version = record.subscription.version;
            let user = UserInactive::from_record(record).unwrap();
            versions.insert(user.user.user_id.unwrap().as_str().to_owned(), version);
        }
        versions
    }

    /// A user made by the create_user workflow, in a group made by create_user_group.
    pub async fn user_by_workflow(&self, user_id: &str, group_id: &str) -> Uuid {
        let group = self
            .engine
            .start(
                "create_user_group",
                &[
                    json!({ "product": USER_GROUP_PRODUCT_ID }),
                    json!({ "user_group_id": group_id, "user_group_name": group_id }),
                ],
                "tester",
            )
            .await
            .unwrap();
        self.engine.run_until_idle().await.unwrap();
        let group_subscription = self.store_process_subscription(group.id).await;
        let user = self
            .engine
            .start(
                "create_user",
                &[
                    json!({ "product": USER_INTERNAL_PRODUCT_ID }),
                    json!({
                        "user_id": user_id, "username": user_id,
                        "firstname": "Ann", "lastname": "Lee",
                        "email": format!("{user_id}@example.com"), "auth_id": "sso",
                        "user_group_ids": [group_subscription],
                    }),
                ],
                "tester",
            )
            .await
            .unwrap();
        self.engine.run_until_idle().await.unwrap();
        self.store_process_subscription(user.id).await
    }

    async fn store_process_subscription(&self, process: Uuid) -> Uuid {
        use cadre_domain::ProcessRepository;
        let process = self.store.process(process).await.unwrap();
        assert_eq!(
            process.status,
            cadre_domain::ProcessStatus::Completed,
            "{process:?}"
        );
        serde_json::from_value(process.state["subscription_id"].clone()).unwrap()
    }
}
