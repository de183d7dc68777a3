//! Engine throughput: N create-User processes end to end, every step persisted, against the raw
//! rate of single-row insert-and-commit transactions on the same database, in the same run.
//!
//! `cargo xtask bench engine` runs it; by hand:
//! `BENCH_DATABASE_URL=postgres://… BENCH_PROCESSES=1000 BENCH_WORKERS=1,2,4 cargo bench -p cadre-products --bench engine`.
//! Without `BENCH_DATABASE_URL` it uses a fresh SQLite file. Each worker count gets a fresh
//! database (on PostgreSQL a new database on that server), removed afterwards unless
//! `BENCH_KEEP_DB=1`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cadre_domain::{
    DomainError, ProcessQuery, ProcessRepository, ProcessStatus, State, Store, StoreTransaction,
    SystemClock,
};
use cadre_engine::{CompletionHook, Engine, EngineConfig, Workflow};
use cadre_migrations::demo::{USER_GROUP_PRODUCT_ID, USER_INTERNAL_PRODUCT_ID};
use cadre_products::models::UserGroup;
use cadre_store::SeaStore;
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use serde_json::json;
use uuid::Uuid;

/// Concurrent callers starting processes, as in the orchestrator-core anchor.
const CALLERS: usize = 5;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Single-row insert-and-commit transactions per second: the ceiling for one commit per step.
async fn raw_commit_rate(conn: &DatabaseConnection, count: usize) -> f64 {
    conn.execute_unprepared(
        "CREATE TABLE bench_commit (id BIGINT PRIMARY KEY, payload TEXT NOT NULL)",
    )
    .await
    .unwrap();
    let backend = conn.get_database_backend();
    let started = Instant::now();
    for id in 0..count {
        let txn = conn.begin().await.unwrap();
        let sql = format!("INSERT INTO bench_commit (id, payload) VALUES ({id}, 'payload {id}')");
        txn.execute_raw(sea_orm::Statement::from_string(backend, sql))
            .await
            .unwrap();
        txn.commit().await.unwrap();
    }
    count as f64 / started.elapsed().as_secs_f64()
}

fn engine(store: &SeaStore, worker: &str) -> Engine {
    let registry = cadre_products::testing::registry_with_one_page_forms().unwrap();
    let store: Arc<dyn Store> = Arc::new(store.clone());
    Engine::new(
        store,
        registry,
        Arc::new(SystemClock),
        EngineConfig {
            worker_id: worker.to_owned(),
            poll_interval: Duration::from_millis(20),
            ..EngineConfig::default()
        },
    )
}

fn user_input(n: usize, group: Uuid) -> serde_json::Value {
    json!({"product": USER_INTERNAL_PRODUCT_ID, "user_id": format!("user{n}"), "username": format!("user{n}"),
           "email": format!("user{n}@example.org"), "user_group_ids": [group]})
}

async fn completed(store: &SeaStore) -> u64 {
    store
        .list_processes(&ProcessQuery {
            status: Some(ProcessStatus::Completed),
            limit: Some(0),
            ..Default::default()
        })
        .await
        .unwrap()
        .total
}

/// Counts the processes the workers complete, so that waiting for them does not poll the
/// database under measurement (the count runs in the completing transaction, just before its
/// commit).
struct Completions(AtomicU64);

#[async_trait::async_trait]
impl CompletionHook for Completions {
    async fn completed(
        &self,
        _txn: &dyn StoreTransaction,
        _workflow: &Workflow,
        _state: &State,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), DomainError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Workers running in the background until stopped.
struct Workers {
    stop: tokio::sync::watch::Sender<bool>,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Workers {
    async fn stop(self) {
        self.stop.send(true).unwrap();
        for handle in self.handles {
            handle.await.unwrap();
        }
    }
}

fn spawn_workers(store: &SeaStore, count: usize, completions: &Arc<Completions>) -> Workers {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let handles = (0..count)
        .map(|n| {
            let engine = engine(store, &format!("w{n}")).with_completion_hook(completions.clone());
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let shutdown = async move {
                    stopped
                        .wait_for(|stop| *stop)
                        .await
                        .map(|_| ())
                        .unwrap_or(())
                };
                engine.run_worker(shutdown).await;
            })
        })
        .collect();
    Workers { stop, handles }
}

/// Starts create-User processes numbered `numbers` from [`CALLERS`] concurrent callers.
async fn start_concurrently(store: &SeaStore, group_id: Uuid, numbers: std::ops::Range<usize>) {
    let mut callers = Vec::new();
    for caller in 0..CALLERS {
        let engine = engine(store, "caller");
        let numbers = numbers.clone();
        callers.push(tokio::spawn(async move {
            for n in numbers.skip(caller).step_by(CALLERS) {
                engine
                    .start("create_user", &[user_input(n, group_id)], "bench")
                    .await
                    .unwrap();
            }
        }));
    }
    for caller in callers {
        caller.await.unwrap();
    }
}

/// Waits until the workers have completed `count` processes in all and the database shows
/// them committed.
async fn wait_for_completed(store: &SeaStore, completions: &Completions, count: u64) {
    while completions.0.load(Ordering::Relaxed) < count {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    while completed(store).await < count {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn run(server: Option<&str>, processes: usize, workers: usize) {
    // Declared first, so dropped last: after every connection to it.
    let database = cadre_store::testing::fresh_database_on(server, "cadre_bench").await;
    let conn = cadre_store::connect(database.url()).await.unwrap();
    cadre_store::migrate(&conn).await.unwrap();
    let raw = raw_commit_rate(&conn, if server.is_some() { 3000 } else { 1000 }).await;
    let store = SeaStore::new(conn);

    // Untimed: one group, and ten warm-up users.
    let setup = engine(&store, "setup");
    let group = setup
        .start(
            "create_user_group",
            &[json!({"product": USER_GROUP_PRODUCT_ID, "user_group_id": "bench", "user_group_name": "Bench"})],
            "bench",
        )
        .await
        .unwrap();
    setup.run_until_idle().await.unwrap();
    let group: UserGroup = cadre_domain::models::from_subscription(
        &store,
        serde_json::from_value(
            store.process(group.id).await.unwrap().state["subscription_id"].clone(),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let group_id = group.subscription.id;
    // Warm-up with the same concurrency as the timed runs, so the connection pool is full.
    let warm_up = 10 * (workers + CALLERS);
    // The group's process completed without the hook: `completions` counts the same as the
    // database from here on.
    let completions = Arc::new(Completions(AtomicU64::new(1)));
    let workers_running = spawn_workers(&store, workers, &completions);
    start_concurrently(&store, group_id, 1_000_000..1_000_000 + warm_up).await;
    wait_for_completed(&store, &completions, 1 + warm_up as u64).await;
    workers_running.stop().await;
    let baseline = completed(&store).await;

    // Phase 1, end to end: callers start processes while the workers run them.
    let started = Instant::now();
    let workers_running = spawn_workers(&store, workers, &completions);
    start_concurrently(&store, group_id, 0..processes).await;
    wait_for_completed(&store, &completions, baseline + processes as u64).await;
    let end_to_end = started.elapsed().as_secs_f64();
    workers_running.stop().await;

    // Phase 2, execution only: the processes are stored first, then the workers drain them.
    for n in 0..processes {
        setup
            .start(
                "create_user",
                &[user_input(processes + n, group_id)],
                "bench",
            )
            .await
            .unwrap();
    }
    let started = Instant::now();
    let workers_running = spawn_workers(&store, workers, &completions);
    wait_for_completed(&store, &completions, baseline + 2 * processes as u64).await;
    let execution = started.elapsed().as_secs_f64();
    workers_running.stop().await;

    // Verify: every process completed with its 8 steps, nothing failed.
    let all = store
        .list_processes(&ProcessQuery::default())
        .await
        .unwrap();
    let mut step_rows = 0;
    for process in all
        .items
        .iter()
        .filter(|process| process.workflow_name == "create_user")
    {
        assert_eq!(
            process.status,
            ProcessStatus::Completed,
            "{:?}",
            process.failed_reason
        );
        step_rows += store.process_steps(process.id).await.unwrap().len();
    }
    assert_eq!(step_rows, 8 * (2 * processes + warm_up));
    let steps = (8 * processes) as f64;
    let backend = if server.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    println!(
        "cadre create_user end-to-end: db={backend} workers={workers} N={processes} callers={CALLERS} \
         wall_s={end_to_end:.2} processes_per_s={:.1} steps_per_s={:.0}",
        processes as f64 / end_to_end,
        steps / end_to_end,
    );
    println!(
        "cadre create_user execution: db={backend} workers={workers} N={processes} wall_s={execution:.2} \
         processes_per_s={:.1} steps_per_s={:.0} raw_commits_per_s={raw:.0} steps_vs_raw={:.2}",
        processes as f64 / execution,
        steps / execution,
        steps / execution / raw,
    );
    if std::env::var("BENCH_KEEP_DB").is_ok_and(|keep| keep == "1") {
        eprintln!("kept {}", database.keep());
    }
}

fn main() {
    let server = std::env::var("BENCH_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty());
    let processes: usize = env_or("BENCH_PROCESSES", 1000);
    let workers: String = env_or("BENCH_WORKERS", "1".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for count in workers
        .split(',')
        .filter_map(|count| count.trim().parse().ok())
    {
        runtime.block_on(run(server.as_deref(), processes, count));
    }
}
