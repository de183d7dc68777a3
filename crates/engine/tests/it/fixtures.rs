//! Test workflows, forms and a manual clock.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cadre_domain::models::{self, DomainModel, UserGroup, UserGroupInactive};
use cadre_domain::{
    Clock, ExternalId, Lifecycle, Name, NewSubscription, ProcessStep, Repositories, State, Store,
    SubscriptionRepository, Target,
};
use cadre_engine::{
    Engine, EngineConfig, FormError, InputForm, Patch, Registry, StepContext, StepError, StepFn,
    Workflow, done, init, step,
};
use cadre_migrations::demo::{DEFAULT_CUSTOMER_ID, USER_GROUP_PRODUCT_ID};
use cadre_store::SeaStore;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

/// A clock the test moves by hand.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(
            Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap(),
        )))
    }

    pub fn advance(&self, by: TimeDelta) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// A form of one page whose object is taken as the input, optionally requiring a string field.
pub struct OnePage {
    pub required: Option<&'static str>,
}

#[async_trait]
impl InputForm for OnePage {
    async fn submit(
        &self,
        _: &dyn Repositories,
        _: &State,
        pages: &[Value],
    ) -> Result<State, FormError> {
        let schema = json!({"type": "object", "properties": {}, "title": "unknown"});
        match pages {
            [] => Err(FormError::NotComplete {
                form: schema,
                meta: None,
            }),
            [Value::Object(page)] => match self.required {
                Some(field) if !page.get(field).is_some_and(Value::is_string) => {
                    Err(FormError::Invalid {
                        page: 0,
                        errors: vec![
                            json!({"type": "missing", "loc": [field], "msg": "Field required"}),
                        ],
                    })
                }
                _ => Ok(page.clone()),
            },
            _ => Err(FormError::TooManyPages {
                expected: 1,
                submitted: pages.len(),
            }),
        }
    }
}

/// Saves the state's subscription once, appending `tag` to its note: the subscription's
/// version counts how often a step's writes were committed.
pub struct Touch(pub &'static str);

#[async_trait]
impl StepFn for Touch {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let id: Uuid = ctx.get("subscription_id")?;
        let mut record = ctx.store.load_subscription(id).await?;
        let note = record.subscription.note.take().unwrap_or_default();
        record.subscription.note = Some(format!("{note}{}", self.0));
        ctx.store.save_subscription(&record).await?;
        let mut patch = Patch::new();
        patch.insert(format!("touched_{}", self.0), json!(true));
        Ok(patch)
    }
}

/// Like [`Touch`], then fails while `failures` is above zero (counting down): the failed
/// attempt's save must roll back.
pub struct TouchThenFail {
    pub tag: &'static str,
    pub failures: Arc<AtomicU32>,
}

#[async_trait]
impl StepFn for TouchThenFail {
    async fn run(&self, ctx: &StepContext<'_>) -> Result<Patch, StepError> {
        let patch = Touch(self.tag).run(ctx).await?;
        let remaining = self.failures.load(Ordering::SeqCst);
        if remaining > 0 {
            self.failures.store(remaining - 1, Ordering::SeqCst);
            return Err(StepError::new("external system unavailable"));
        }
        Ok(patch)
    }
}

/// A system workflow over the subscription named in its form.
pub fn workflow(name: &str, steps: cadre_engine::StepList) -> Workflow {
    Workflow {
        name: name.to_owned(),
        description: format!("test workflow {name}"),
        target: Target::System,
        product_types: Vec::new(),
        usable_when: Vec::new(),
        version: 1,
        initial_form: Arc::new(OnePage { required: None }),
        steps,
    }
}

/// `init >> touch a >> touch b >> done`.
pub fn touch_twice() -> Workflow {
    workflow(
        "touch_twice",
        init()
            >> step("touch_a", "Touch A", Touch("a"))
            >> step("touch_b", "Touch B", Touch("b"))
            >> done(),
    )
}

pub fn engine(store: &SeaStore, workflows: Vec<Workflow>, clock: Arc<dyn Clock>) -> Engine {
    let mut registry = Registry::new();
    for workflow in workflows {
        registry.register(workflow).unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(store.clone());
    Engine::new(store, registry, clock, EngineConfig::default())
}

/// An active user group subscription, created through the domain models.
pub async fn active_group(store: &SeaStore, group_id: &str) -> UserGroup {
    let record = store
        .create_subscription(NewSubscription {
            id: Uuid::now_v7(),
            product_id: USER_GROUP_PRODUCT_ID,
            customer_id: DEFAULT_CUSTOMER_ID,
            description: format!("User Group {group_id}"),
        })
        .await
        .unwrap();
    let mut group = UserGroupInactive::from_record(record).unwrap();
    group.user_group.user_group_id = Some(ExternalId::parse(group_id).unwrap());
    group.user_group.name = Some(Name::parse(group_id).unwrap());
    let now = Utc::now();
    let mut group = models::save(store, group.into_provisioning(now).unwrap())
        .await
        .unwrap();
    group
        .subscription
        .change_lifecycle(Lifecycle::Active, now)
        .unwrap();
    group.subscription.insync = true;
    models::save(store, group).await.unwrap()
}

pub fn page(subscription_id: Uuid) -> Vec<Value> {
    vec![json!({ "subscription_id": subscription_id })]
}

/// `(name, status)` of every logged step.
pub fn log(steps: &[ProcessStep]) -> Vec<(String, String)> {
    steps
        .iter()
        .map(|step| (step.name.clone(), step.status.as_str().to_owned()))
        .collect()
}

pub fn expected(rows: &[(&str, &str)]) -> Vec<(String, String)> {
    rows.iter()
        .map(|(name, status)| ((*name).to_owned(), (*status).to_owned()))
        .collect()
}
