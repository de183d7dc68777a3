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

use serde_json::json;
use support::Server;
use support::load::{MakeRequest, admin_token, closed_loop, open_loop, row, seed, setting, settle};

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
    let token = admin_token(store.as_ref()).await;
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
