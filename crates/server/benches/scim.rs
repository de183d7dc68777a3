//! SCIM benchmark: drives a running `cadre serve` (a separate process, started here) over
//! loopback with the requests an identity provider sends.
//!
//! Run with `cargo xtask bench scim [--subscriptions N] [--rate R] [--database-url postgres://…]`,
//! which builds the release binary and passes it in `BENCH_CADRE_BIN`. The database gets
//! `BENCH_SUBSCRIPTIONS` (default 100,000) active users first, written through the domain models
//! as a workflow would. Then, in one session, each against a baseline measured beside it:
//!
//! - `filter=userName eq "…"` open-loop at `BENCH_RATE` (default 500) per second for
//!   `BENCH_SECONDS`, against `GET /api/health` at the same rate;
//! - a cursor walk over every user, pages of 1,000, in users per second;
//! - a `/Bulk` of 1,000 user creates against a bulk load (`POST /api/provisioning/users`,
//!   incremental) of 1,000 other new users, both waited for until done.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cadre_domain::{Clock, SystemClock};
use serde_json::{Value, json};
use support::Server;
use support::load::{MakeRequest, admin_token, closed_loop, open_loop, row, setting, settle};
use uuid::Uuid;

/// Seeds `count` active users in transactions of 1,000.
async fn seed_users(store: &dyn cadre_domain::Store, count: u64) {
    let started = Instant::now();
    for batch in 0..count.div_ceil(1000) {
        let txn = store.begin().await.unwrap();
        for n in batch * 1000..((batch + 1) * 1000).min(count) {
            cadre_products::testing::active_user(
                txn.as_ref(),
                Uuid::now_v7(),
                &format!("user{n}"),
                &format!("user{n}"),
                &format!("user{n}@example.org"),
                &[],
                SystemClock.now(),
            )
            .await
            .unwrap();
        }
        txn.commit().await.unwrap();
    }
    eprintln!(
        "seeded {count} users in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The JSON answer to `request`.
async fn answer(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

#[tokio::main]
async fn main() {
    let binary = std::env::var("BENCH_CADRE_BIN").expect("run through `cargo xtask bench scim`");
    let database = cadre_store::testing::scratch_database().await;
    let database_url = database.url().to_owned();
    let users = setting("BENCH_SUBSCRIPTIONS", 100_000);
    let rate = setting("BENCH_RATE", 500);
    let seconds = setting("BENCH_SECONDS", 10);

    let engine = cadre_server::Cadre::new()
        .open(&database_url)
        .await
        .unwrap();
    let store = Arc::clone(engine.store());
    seed_users(store.as_ref(), users).await;
    let token = Arc::new(admin_token(store.as_ref()).await);
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
    let by_name = get(Arc::new(move |n| {
        let user = n.wrapping_mul(2_654_435_761) % users;
        format!("/scim/v2/Users?filter=userName%20eq%20%22user{user}%22")
    }));
    closed_loop(&client, Arc::clone(&health), 16, 1).await;
    closed_loop(&client, Arc::clone(&by_name), 16, 1).await;

    println!(
        "\n{users} users; open loop at {rate} requests/s for {seconds} s; latency in ms from the scheduled send\n"
    );
    println!("| request | mode | requests/s | p50 | p99 | p99 ÷ health p99 | failed |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let baseline = open_loop(&client, Arc::clone(&health), rate, seconds).await;
    row("GET /api/health (baseline)", "open", &baseline, None);
    let figures = open_loop(&client, Arc::clone(&by_name), rate, seconds).await;
    row(
        "GET /scim/v2/Users?filter=userName eq",
        "open",
        &figures,
        Some(&baseline),
    );

    // A cursor walk over every user.
    let started = Instant::now();
    let mut cursor = String::new();
    let mut walked = 0;
    loop {
        let page = answer(
            client
                .get(format!("{base}/scim/v2/Users?count=1000&cursor={cursor}"))
                .bearer_auth(token.as_str()),
        )
        .await;
        walked += page["Resources"].as_array().unwrap().len();
        match page["nextCursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    let walk = started.elapsed();
    assert_eq!(walked as u64, users);
    println!(
        "\ncursor walk, pages of 1,000: {walked} users in {:.2} s, {:.0} users/s",
        walk.as_secs_f64(),
        walked as f64 / walk.as_secs_f64()
    );

    // A bulk load of 1,000 new users, then a SCIM Bulk of 1,000 other new users.
    let rows: String = std::iter::once(
        "user_id,firstname,lastname,email,auth_id,user_groups,is_active".to_owned(),
    )
    .chain((0..1000).map(|n| format!("load{n},,,load{n}@example.org,,,true")))
    .collect::<Vec<_>>()
    .join("\n");
    let started = Instant::now();
    let load = answer(
        client
            .post(format!("{base}/api/provisioning/users?mode=incremental"))
            .bearer_auth(token.as_str())
            .header("content-type", "text/csv")
            .body(rows),
    )
    .await;
    let process = load["process_id"].as_str().expect("a load started");
    loop {
        let report = answer(
            client
                .get(format!("{base}/api/processes/{process}"))
                .bearer_auth(token.as_str()),
        )
        .await;
        if report["last_status"] == "completed" {
            break;
        }
        assert_ne!(report["last_status"], "failed", "{report}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let loaded = started.elapsed();
    let operations: Vec<Value> = (0..1000)
        .map(|n| {
            json!({"method": "POST", "path": "/Users", "bulkId": format!("b{n}"),
                   "data": {"userName": format!("bulk{n}"),
                            "emails": [{"value": format!("bulk{n}@example.org")}]}})
        })
        .collect();
    let started = Instant::now();
    let bulk = answer(
        client
            .post(format!("{base}/scim/v2/Bulk"))
            .bearer_auth(token.as_str())
            .header("content-type", "application/scim+json")
            .body(json!({"Operations": operations}).to_string())
            .timeout(Duration::from_secs(600)),
    )
    .await;
    let bulked = started.elapsed();
    let created = bulk["Operations"]
        .as_array()
        .map(|operations| operations.iter().filter(|o| o["status"] == "201").count())
        .unwrap_or_default();
    println!(
        "bulk load of 1,000 users: {:.2} s; SCIM /Bulk of 1,000 user creates ({created} created): {:.2} s, {:.1}× the load",
        loaded.as_secs_f64(),
        bulked.as_secs_f64(),
        bulked.as_secs_f64() / loaded.as_secs_f64()
    );
    println!(
        "server peak resident memory: {:.1} MiB",
        server.peak_rss() as f64 / f64::from(1 << 20)
    );
    drop(server);
}
