//! Several workers share one database: every process runs once, every step commits once.
//!
//! On the real store rather than with the engine's own tests, which run on the domain's
//! `MemoryStore`: what is tested is claiming under concurrent connections (`SKIP LOCKED` on
//! PostgreSQL, the single writer of SQLite).

use std::sync::Arc;

use cadre_domain::{
    ProcessQuery, ProcessRepository, ProcessStatus, ProductType, Store, SubscriptionQuery,
    SubscriptionRepository, SystemClock,
};
use cadre_engine::standard::create_subscription;
use cadre_engine::testing::{OnePage, Touch};
use cadre_engine::{Engine, EngineConfig, Registry, Workflow, done, init, step};
use cadre_migrations::demo::USER_GROUP_PRODUCT_ID;
use cadre_store::testing::{postgres_url, scratch_database, store_at};
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
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
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
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
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
