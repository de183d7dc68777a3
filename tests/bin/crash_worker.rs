//! A worker process for the durability test: runs the `crash_test` workflow on the database named
//! by `CADRE_CRASH_DB` until it is killed. The short lease lets the next worker take over soon.

#![allow(clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use cadre_domain::SystemClock;
use cadre_engine::{Engine, EngineConfig};
use cadre_store::SeaStore;
use chrono::TimeDelta;

#[tokio::main]
async fn main() {
    let url = std::env::var("CADRE_CRASH_DB").expect("CADRE_CRASH_DB names the database");
    let conn = cadre_store::connect(&url).await.expect("connect");
    let engine = Engine::new(
        Arc::new(SeaStore::new(conn)),
        cadre_tests::registry(),
        Arc::new(SystemClock),
        EngineConfig {
            worker_id: format!("crash-worker-{}", std::process::id()),
            lease: TimeDelta::milliseconds(250),
            poll_interval: Duration::from_millis(10),
            ..EngineConfig::default()
        },
    );
    engine.run_worker(std::future::pending()).await;
}
