//! Several workers share one database: every process runs once, every step commits once.
//!
//! On the real store rather than with the engine's own tests, which run on the domain's
//! `MemoryStore`: what is tested is claiming under concurrent connections (`SKIP LOCKED` on
//! PostgreSQL, the single writer of SQLite).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cadre_domain::{
    ProcessQuery, ProcessRepository, ProcessStatus, ProductType, Store, SubscriptionQuery,
    SubscriptionRepository, SystemClock,
};
use cadre_engine::standard::create_subscription;
use cadre_engine::testing::{OnePage, Touch};
use cadre_engine::{Engine, EngineConfig, Registry, Workflow, done, init, step};
use cadre_migrations::demo::USER_GROUP_PRODUCT_ID;
use cadre_store::testing::{postgres_url, scratch_database, store_at};
use chrono::TimeDelta;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_workers_run_every_step_exactly_once() {
    let database = scratch_database().await;
    let store = store_at(database.url()).await;
    let processes = if postgres_url().is_some() { 300 } else { 100 };
    let workers = 4;
    let flow = Workflow {
        name: "create_and_touch".to_owned(),
        description: "creates a group and touches it twice".to_owned(),
        target: cadre_domain::Target::System,
        product_types: Vec::new(),
        usable_when: Vec::new(),
        version: 1,
        initial_form: Arc::new(OnePage { required: None }),
        steps: init()
            >> create_subscription(ProductType::user_group())
            >> step("touch_a", "Touch A", Touch("a"))
            >> step("touch_b", "Touch B", Touch("b"))
            >> done(),
    };
    let mut registry = Registry::new();
    registry.register(flow).unwrap();
    let shared: Arc<dyn Store> = Arc::new(store.clone());
    let starter = Engine::new(
        shared.clone(),
        registry.clone(),
        Arc::new(SystemClock),
        EngineConfig::default(),
    );
    for _ in 0..processes {
        starter
            .start(
                "create_and_touch",
                &[json!({"product": USER_GROUP_PRODUCT_ID})],
                "load",
            )
            .await
            .unwrap();
    }

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut handles = Vec::new();
    for n in 0..workers {
        let engine = Engine::new(
            shared.clone(),
            registry.clone(),
            Arc::new(SystemClock),
            EngineConfig {
                worker_id: format!("w{n}"),
                ..EngineConfig::default()
            },
        );
        let mut stopped = stopped.clone();
        handles.push(tokio::spawn(async move {
            engine
                .run_worker(async move {
                    stopped
                        .wait_for(|stop| *stop)
                        .await
                        .map(|_| ())
                        .unwrap_or(())
                })
                .await;
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let done = store
            .list_processes(&ProcessQuery {
                status: Some(ProcessStatus::Completed),
                limit: Some(0),
                ..Default::default()
            })
            .await
            .unwrap()
            .total;
        if done == processes {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {done} of {processes} completed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    for handle in handles {
        handle.await.unwrap();
    }

    let all = store
        .list_processes(&ProcessQuery::default())
        .await
        .unwrap();
    assert_eq!(all.total, processes);
    for process in &all.items {
        let steps = store.process_steps(process.id).await.unwrap();
        let keys: Vec<&str> = steps.iter().map(|step| step.step_key.as_str()).collect();
        assert_eq!(
            keys,
            ["init", "create_subscription", "touch_a", "touch_b", "done"],
            "{}",
            process.id
        );
    }
    let groups = store
        .list_subscriptions(&SubscriptionQuery {
            product_type: Some(ProductType::user_group()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(groups.total, processes, "one subscription per process");
    for group in &groups.items {
        assert_eq!(group.subscription.version, 3, "created once, touched twice");
        assert_eq!(group.subscription.note.as_deref(), Some("ab"));
    }
}

/// Counts its runs, then takes `1` to finish.
struct Slow(Arc<AtomicUsize>, Duration);

#[async_trait::async_trait]
impl cadre_engine::StepFn for Slow {
    async fn run(
        &self,
        _ctx: &cadre_engine::StepContext<'_>,
    ) -> Result<cadre_engine::Patch, cadre_engine::StepError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.1).await;
        Ok(cadre_engine::Patch::new())
    }
}

/// A registry of one task, `slow`, whose one step is [`Slow`].
fn slow_registry(runs: &Arc<AtomicUsize>, takes: Duration) -> Registry {
    let mut registry = Registry::new();
    registry
        .register(Workflow {
            name: "slow".to_owned(),
            description: "one long step".to_owned(),
            target: cadre_domain::Target::System,
            product_types: Vec::new(),
            usable_when: Vec::new(),
            version: 1,
            initial_form: Arc::new(OnePage { required: None }),
            steps: init() >> step("long", "Long", Slow(Arc::clone(runs), takes)) >> done(),
        })
        .unwrap();
    registry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_step_running_three_lease_lengths_completes_once_while_a_second_worker_waits() {
    let database = scratch_database().await;
    let store: Arc<dyn Store> = Arc::new(store_at(database.url()).await);
    let runs = Arc::new(AtomicUsize::new(0));
    let lease = TimeDelta::milliseconds(300);
    let registry = slow_registry(&runs, Duration::from_millis(1000));
    let worker = |name: &str| {
        Engine::new(
            Arc::clone(&store),
            registry.clone(),
            Arc::new(SystemClock),
            EngineConfig {
                worker_id: name.to_owned(),
                lease,
                poll_interval: Duration::from_millis(20),
                ..EngineConfig::default()
            },
        )
    };
    let first = worker("first");
    let process = first.start("slow", &[json!({})], "test").await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut handles = Vec::new();
    for engine in [first, worker("second")] {
        let mut stopped = stopped.clone();
        handles.push(tokio::spawn(async move {
            engine
                .run_worker(async move {
                    stopped
                        .wait_for(|stop| *stop)
                        .await
                        .map(|_| ())
                        .unwrap_or(())
                })
                .await;
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store.process(process.id).await.unwrap().status != ProcessStatus::Completed {
        assert!(tokio::time::Instant::now() < deadline, "never completed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    for handle in handles {
        handle.await.unwrap();
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the second worker never took the process from the first"
    );
    let steps = store.process_steps(process.id).await.unwrap();
    let keys: Vec<&str> = steps.iter().map(|step| step.step_key.as_str()).collect();
    assert_eq!(keys, ["init", "long", "done"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_past_the_longest_a_step_may_run_fails_with_that_reason() {
    let database = scratch_database().await;
    let store: Arc<dyn Store> = Arc::new(store_at(database.url()).await);
    let runs = Arc::new(AtomicUsize::new(0));
    let engine = Engine::new(
        Arc::clone(&store),
        slow_registry(&runs, Duration::from_secs(30)),
        Arc::new(SystemClock),
        EngineConfig {
            max_step: Duration::from_millis(200),
            ..EngineConfig::default()
        },
    );
    let process = engine.start("slow", &[json!({})], "test").await.unwrap();
    engine.run_until_idle().await.unwrap();
    let failed = store.process(process.id).await.unwrap();
    assert_eq!(failed.status, ProcessStatus::Failed);
    assert!(
        failed
            .failed_reason
            .as_deref()
            .unwrap()
            .contains("ran longer than 0.2 s"),
        "{:?}",
        failed.failed_reason
    );
}
