//! Load generation and seeding for the HTTP benchmarks (`api`, `ui`): seeded groups, open-
//! and closed-loop runs, and their figures as Markdown table rows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cadre_domain::{Clock, Store, SystemClock};
use serde_json::Value;
use tokio::task::JoinSet;
use uuid::Uuid;

/// A setting of the benchmark from the environment, or `default`.
pub fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Seeds `count` active groups in transactions of 1,000; returns their ids.
pub async fn seed(store: &dyn Store, count: u64) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(count as usize);
    let started = Instant::now();
    for batch in 0..count.div_ceil(1000) {
        let txn = store.begin().await.unwrap();
        for n in batch * 1000..((batch + 1) * 1000).min(count) {
            let group = cadre_products::testing::active_group(
                txn.as_ref(),
                Uuid::now_v7(),
                &format!("team{n}"),
                &format!("Team {n}"),
                &[],
                SystemClock.now(),
            )
            .await
            .unwrap();
            ids.push(group.subscription.id);
        }
        txn.commit().await.unwrap();
    }
    eprintln!(
        "seeded {count} groups in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    ids
}

/// Brings a freshly loaded PostgreSQL database to its steady state (visibility map and
/// statistics, as autovacuum would a little later); SQLite needs nothing.
pub async fn settle(database_url: &str) {
    use sea_orm::ConnectionTrait;
    if database_url.starts_with("postgres") {
        let conn = cadre_store::connect(database_url).await.unwrap();
        conn.execute_unprepared("VACUUM ANALYZE").await.unwrap();
        conn.close().await.unwrap();
    }
}

/// Builds request number `n`.
pub type MakeRequest = Arc<dyn Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Send + Sync>;

/// What a run measured.
pub struct Figures {
    pub sent: usize,
    pub failed: usize,
    pub elapsed: Duration,
    pub latencies: Vec<Duration>,
}

impl Figures {
    pub fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted
            .get(((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    }

    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64()
    }
}

async fn send(client: &reqwest::Client, make: &MakeRequest, n: u64) -> bool {
    match make(client, n).send().await {
        Ok(response) => {
            let ok = response.status().is_success();
            let _ = response.bytes().await;
            ok
        }
        Err(_) => false,
    }
}

/// Requests at `rate` per second for `seconds`, each timed from its scheduled send.
pub async fn open_loop(
    client: &reqwest::Client,
    make: MakeRequest,
    rate: u64,
    seconds: u64,
) -> Figures {
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let total = rate * seconds;
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for n in 0..total {
        let scheduled = started + period * n as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let client = client.clone();
        let make = Arc::clone(&make);
        tasks.spawn(async move {
            let ok = send(&client, &make, n).await;
            (ok, scheduled.elapsed())
        });
    }
    let mut figures = Figures {
        sent: total as usize,
        failed: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::with_capacity(total as usize),
    };
    while let Some(result) = tasks.join_next().await {
        let (ok, latency) = result.unwrap();
        figures.failed += usize::from(!ok);
        figures.latencies.push(latency);
    }
    figures.elapsed = started.elapsed();
    figures
}

/// `callers` callers sending back to back for `seconds`.
pub async fn closed_loop(
    client: &reqwest::Client,
    make: MakeRequest,
    callers: u64,
    seconds: u64,
) -> Figures {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = JoinSet::new();
    for caller in 0..callers {
        let client = client.clone();
        let make = Arc::clone(&make);
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0;
            let mut n = caller;
            while Instant::now() < deadline {
                let sent = Instant::now();
                failed += usize::from(!send(&client, &make, n).await);
                latencies.push(sent.elapsed());
                n += callers;
            }
            (latencies, failed)
        });
    }
    let mut figures = Figures {
        sent: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    while let Some(result) = tasks.join_next().await {
        let (latencies, failed) = result.unwrap();
        figures.sent += latencies.len();
        figures.failed += failed;
        figures.latencies.extend(latencies);
    }
    figures.elapsed = started.elapsed();
    figures
}

pub fn ms(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1000.0)
}

pub fn row(name: &str, mode: &str, figures: &Figures, baseline: Option<&Figures>) {
    let ratio = baseline.map_or("1.0".to_owned(), |baseline| {
        format!(
            "{:.1}",
            figures.percentile(0.99).as_secs_f64() / baseline.percentile(0.99).as_secs_f64()
        )
    });
    println!(
        "| {name} | {mode} | {:.0} | {} | {} | {ratio} | {} |",
        figures.rate(),
        ms(figures.percentile(0.50)),
        ms(figures.percentile(0.99)),
        figures.failed,
    );
}

/// Runs `workflow` with `pages` to completion on `engine`; returns the process.
pub async fn completed(
    engine: &cadre_engine::Engine,
    workflow: &str,
    pages: Vec<Value>,
) -> cadre_domain::Process {
    let process = engine.start(workflow, &pages, "bench").await.unwrap();
    engine.run_until_idle().await.unwrap();
    engine.store().process(process.id).await.unwrap()
}

/// The subscription a completed create process made.
pub fn made(process: &cadre_domain::Process) -> String {
    process.state["subscription_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The latencies of `/api/health` in milliseconds, one request at a time with `pause` between
/// them, until `stop`.
pub async fn probe_health(
    client: reqwest::Client,
    base: String,
    pause: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<f64> {
    let mut latencies = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let started = Instant::now();
        let response = client
            .get(format!("{base}/api/health"))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(pause).await;
    }
    latencies
}

/// The `quantile` of `latencies` (sorted in place).
pub fn percentile_of(latencies: &mut [f64], quantile: f64) -> f64 {
    latencies.sort_by(f64::total_cmp);
    let at = ((latencies.len() as f64 * quantile).ceil() as usize).clamp(1, latencies.len());
    latencies[at - 1]
}

/// An admin API token, issued in `store`.
pub async fn admin_token(store: &dyn Store) -> String {
    cadre_server::auth::issue_token(
        store,
        cadre_server::auth::NewToken {
            name: "bench",
            role: cadre_domain::Role::Admin,
            user: None,
            expires_at: None,
        },
        "bench",
        SystemClock.now(),
    )
    .await
    .unwrap()
    .plain
}
