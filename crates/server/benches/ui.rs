//! Web UI benchmark: pages rendered on the server by a running `cadre serve` (a separate
//! process, started here) for a signed-in admin, over loopback.
//!
//! Run with `cargo xtask bench ui [--database-url postgres://…] [--rate R] [--seconds S]`,
//! which builds the release binary and passes it in `BENCH_CADRE_BIN`. The database gets an
//! admin with a password (signed in once: every request carries the session cookie) and
//! `BENCH_SUBSCRIPTIONS` (default 100,000) active user groups. Each page runs open-loop at
//! `BENCH_RATE` requests per second (default 200) for `BENCH_SECONDS` (default 10), latency
//! counted from the scheduled send; `GET /api/health` first, the baseline. A redirect (to the
//! sign-in page) counts as a failure.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::sync::Arc;

use cadre_accounts::AccountSettings;
use cadre_domain::{Clock, Role, SystemClock};
use cadre_migrations::demo::{USER_GROUP_PRODUCT_ID, USER_INTERNAL_PRODUCT_ID};
use cadre_registration::Passwords;
use serde_json::json;
use support::Server;
use support::load::{
    MakeRequest, closed_loop, completed, made, open_loop, row, seed, setting, settle,
};

const PASSWORD: &str = "correct horse battery staple";

#[tokio::main]
async fn main() {
    let binary = std::env::var("BENCH_CADRE_BIN").expect("run through `cargo xtask bench ui`");
    // Removed when the benchmark ends.
    let database = cadre_store::testing::scratch_database().await;
    let database_url = database.url().to_owned();
    let subscriptions = setting("BENCH_SUBSCRIPTIONS", 100_000);
    let rate = setting("BENCH_RATE", 200);
    let seconds = setting("BENCH_SECONDS", 10);

    // The admin first (the user form lists every group), then the groups.
    let engine = cadre_server::Cadre::new()
        .open(&database_url)
        .await
        .unwrap();
    let staff = made(
        &completed(
            &engine,
            "create_user_group",
            vec![
                json!({"product": USER_GROUP_PRODUCT_ID}),
                json!({"user_group_id": "staff", "user_group_name": "Staff"}),
            ],
        )
        .await,
    );
    let created = completed(
        &engine,
        "create_user",
        vec![
            json!({"product": USER_INTERNAL_PRODUCT_ID}),
            json!({"user_id": "ada", "username": "ada", "email": "ada@example.org",
                   "user_group_ids": [staff]}),
        ],
    )
    .await;
    let ada = made(&created).parse().unwrap();
    let store = Arc::clone(engine.store());
    let passwords = Passwords::new(AccountSettings::default().argon2, 1).unwrap();
    store
        .store_credentials(
            ada,
            &passwords.hash(PASSWORD).await.unwrap(),
            SystemClock.now(),
        )
        .await
        .unwrap();
    store.set_roles(ada, &[Role::Admin]).await.unwrap();
    seed(store.as_ref(), subscriptions).await;
    drop(engine);
    settle(&database_url).await;

    let server = Server::start(&binary, &database_url, &[]);
    cadre_registration::delivery::use_ring_for_tls();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    server.wait_until_ready(&client).await;
    let signed_in = client
        .post(format!("{}/api/auth/login", server.base))
        .json(&json!({"username": "ada", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(signed_in.status().is_success(), "{}", signed_in.status());
    let cookie = signed_in
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("cadre_session="))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let base = Arc::new(server.base.clone());
    let cookie = Arc::new(cookie);

    let get = |path: Arc<dyn Fn(u64) -> String + Send + Sync>| -> MakeRequest {
        let base = Arc::clone(&base);
        let cookie = Arc::clone(&cookie);
        Arc::new(move |client: &reqwest::Client, n| {
            client
                .get(format!("{base}{}", path(n)))
                .header(reqwest::header::COOKIE, cookie.as_str())
        })
    };
    let health = get(Arc::new(|_| "/api/health".to_owned()));
    let all = get(Arc::new(|n| {
        format!("/admin/subscriptions?offset={}", (n % 40) * 25)
    }));
    let filtered = get(Arc::new(|n| {
        format!(
            "/admin/subscriptions?product_type=UserGroup&status=active&offset={}",
            (n % 40) * 25
        )
    }));
    let process = {
        let id = created.id;
        get(Arc::new(move |_| format!("/admin/processes/{id}")))
    };
    let dashboard = get(Arc::new(|_| "/admin".to_owned()));

    // Warm up connections and caches.
    closed_loop(&client, Arc::clone(&health), 16, 1).await;
    closed_loop(&client, Arc::clone(&all), 16, 2).await;
    closed_loop(&client, Arc::clone(&process), 16, 1).await;

    println!(
        "\n{} subscriptions; open loop at {rate} requests/s for {seconds} s; latency in ms from the scheduled send\n",
        subscriptions + 2
    );
    println!("| page | mode | requests/s | p50 | p99 | p99 ÷ health p99 | failed |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let baseline = open_loop(&client, Arc::clone(&health), rate, seconds).await;
    row("GET /api/health (baseline)", "open", &baseline, None);
    for (name, make) in [
        ("GET /admin/subscriptions, page of 25 of all", &all),
        (
            "GET /admin/subscriptions?product_type&status, page of 25",
            &filtered,
        ),
        ("GET /admin/processes/{id} (create_user, 8 steps)", &process),
        ("GET /admin (the dashboard)", &dashboard),
    ] {
        let figures = open_loop(&client, Arc::clone(make), rate, seconds).await;
        row(name, "open", &figures, Some(&baseline));
    }
    println!(
        "\nserver peak resident memory: {:.1} MiB",
        server.peak_rss() as f64 / f64::from(1 << 20)
    );
    drop(server);
}
