//! API benchmark: drives a running `cadre serve` (a separate process, started here) over
//! loopback, and reports requests per second and latency percentiles.
//!
//! Run with `cargo xtask bench api [--database-url postgres://…]`, which builds the release
//! binary and passes it in `BENCH_CADRE_BIN` (and the server in `DATABASE_URL`). The database gets `BENCH_SUBSCRIPTIONS` (default
//! 100,000) active user groups first, written through the domain models as a workflow would.
//!
//! Each read scenario runs open-loop at `BENCH_RATE` requests per second (default 1,000) for
//! `BENCH_SECONDS` (default 10): requests leave on a fixed schedule whatever the server does, and
//! latency counts from the scheduled send time, so a slow server cannot hide its queueing.
//! `GET /api/health` runs the same way first: the baseline every figure is divided by.
//! A closed-loop run then measures the most requests per second 16 callers get.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cadre_domain::{Clock, Role, Store, SystemClock};
use serde_json::json;
use support::Server;
use tokio::task::JoinSet;
use uuid::Uuid;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Seeds `count` active groups in transactions of 1,000; returns their ids.
async fn seed(store: &dyn Store, count: u64) -> Vec<Uuid> {
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
async fn settle(database_url: &str) {
    use sea_orm::ConnectionTrait;
    if database_url.starts_with("postgres") {
        let conn = cadre_store::connect(database_url).await.unwrap();
        conn.execute_unprepared("VACUUM ANALYZE").await.unwrap();
        conn.close().await.unwrap();
    }
}

/// Builds request number `n`.
type MakeRequest = Arc<dyn Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Send + Sync>;

struct Figures {
    sent: usize,
    failed: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted
            .get(((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    }

    fn rate(&self) -> f64 {
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
async fn open_loop(
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
async fn closed_loop(
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

fn ms(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1000.0)
}

fn row(name: &str, mode: &str, figures: &Figures, baseline: Option<&Figures>) {
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

#[tokio::main]
async fn main() {
    let binary = std::env::var("BENCH_CADRE_BIN").expect("run through `cargo xtask bench api`");
    // A fresh SQLite file, or a fresh database on the PostgreSQL server in `DATABASE_URL`.
    // Removed when the benchmark ends.
    let database = cadre_store::testing::scratch_database().await;
    let database_url = database.url().to_owned();
    let subscriptions = setting("BENCH_SUBSCRIPTIONS", 100_000);
    let rate = setting("BENCH_RATE", 1_000);
    let seconds = setting("BENCH_SECONDS", 10);

    let engine = cadre_server::Cadre::new()
        .open(&database_url)
        .await
        .unwrap();
    let store = Arc::clone(engine.store());
    let ids = Arc::new(seed(store.as_ref(), subscriptions).await);
    let token = cadre_server::auth::issue_token(
        store.as_ref(),
        cadre_server::auth::NewToken {
            name: "bench",
            role: Role::Admin,
            user: None,
            expires_at: None,
        },
        "bench",
        SystemClock.now(),
    )
    .await
    .unwrap()
    .plain;
    drop(engine);
    settle(&database_url).await;

    let server = Server::start(&binary, &database_url, &[]);
    cadre_registration::delivery::use_ring_for_tls();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    server.wait_until_ready(&client).await;
    let base = Arc::new(server.base.clone());
    let token = Arc::new(token);

    let get = |path: Arc<dyn Fn(u64) -> String + Send + Sync>| -> MakeRequest {
        let base = Arc::clone(&base);
        let token = Arc::clone(&token);
        Arc::new(move |client: &reqwest::Client, n| {
            client
                .get(format!("{base}{}", path(n)))
                .bearer_auth(token.as_str())
        })
    };
    let health = get(Arc::new(|_| "/api/health".to_owned()));
    let detail = {
        let ids = Arc::clone(&ids);
        get(Arc::new(move |n| {
            let index = (n.wrapping_mul(2_654_435_761) % ids.len() as u64) as usize;
            format!("/api/subscriptions/{}", ids[index])
        }))
    };
    let listing = get(Arc::new(|n| {
        format!(
            "/api/subscriptions?product_type=UserGroup&status=active&sort=created&order=desc&limit=50&offset={}",
            (n % 20) * 50
        )
    }));
    let search = get(Arc::new(|n| {
        format!(
            "/api/subscriptions?product_type=UserGroup&query=Team%20{}&limit=50",
            n % 1000 + 1000
        )
    }));
    // Process start: validate_user_group on a random group (its form reads the subscription;
    // create_user_group's form would list all 100,000 groups as parent choices).
    let start = {
        let base = Arc::clone(&base);
        let token = Arc::clone(&token);
        let ids = Arc::clone(&ids);
        Arc::new(move |client: &reqwest::Client, n: u64| {
            let index = (n.wrapping_mul(2_654_435_761) % ids.len() as u64) as usize;
            client
                .post(format!("{base}/api/processes/validate_user_group"))
                .bearer_auth(token.as_str())
                .json(&json!([{"subscription_id": ids[index]}]))
        }) as MakeRequest
    };

    // Warm up connections and caches.
    closed_loop(&client, Arc::clone(&health), 16, 1).await;
    closed_loop(&client, Arc::clone(&detail), 16, 1).await;
    closed_loop(&client, Arc::clone(&listing), 16, 3).await;

    println!(
        "\n{subscriptions} subscriptions; open loop at {rate} requests/s for {seconds} s; latency in ms from the scheduled send\n"
    );
    println!("| request | mode | requests/s | p50 | p99 | p99 ÷ health p99 | failed |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let baseline = open_loop(&client, Arc::clone(&health), rate, seconds).await;
    row("GET /api/health (baseline)", "open", &baseline, None);
    for (name, make) in [
        ("GET /api/subscriptions/{id}", &detail),
        (
            "GET /api/subscriptions?product_type&status, page of 50",
            &listing,
        ),
    ] {
        let figures = open_loop(&client, Arc::clone(make), rate, seconds).await;
        row(name, "open", &figures, Some(&baseline));
    }
    // Text search scans the descriptions (no text index yet): measured at a fiftieth of the rate.
    let search_rate = (rate / 50).max(1);
    let figures = open_loop(&client, Arc::clone(&search), search_rate, seconds).await;
    row(
        &format!("GET /api/subscriptions?query=text, page of 50 ({search_rate}/s)"),
        "open",
        &figures,
        Some(&baseline),
    );
    let start_rate = (rate / 5).max(1);
    let figures = open_loop(&client, Arc::clone(&start), start_rate, seconds).await;
    row(
        &format!("POST /api/processes/validate_user_group ({start_rate}/s)"),
        "open",
        &figures,
        Some(&baseline),
    );
    for (name, make) in [
        ("GET /api/health", &health),
        ("GET /api/subscriptions/{id}", &detail),
        (
            "GET /api/subscriptions?product_type&status, page of 50",
            &listing,
        ),
    ] {
        let figures = closed_loop(&client, Arc::clone(make), 16, seconds.min(5)).await;
        row(name, "closed, 16 callers", &figures, Some(&baseline));
    }
    println!(
        "\nserver peak resident memory: {:.1} MiB",
        server.peak_rss() as f64 / f64::from(1 << 20)
    );
    drop(server);
}
