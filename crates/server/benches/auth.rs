//! Sign-in benchmark: how close `POST /api/auth/login` comes to the raw argon2id verifications
//! the machine can do with the same parameters, and whether hashing starves the server.
//!
//! 1. **Raw argon2id:** one thread per CPU verifies a hash made with the configured parameters
//!    (`accounts.argon2`, the defaults) for `BENCH_SECONDS`: verifications per second.
//! 2. **Sign-ins:** a running `cadre serve` (a separate process) on a fresh SQLite file, with
//!    its default hashing pool, while 50 clients sign in with the right passwords, each as a
//!    user of their own, for the same time: sign-ins per second, and the ratio to (1).
//! 3. **Health:** `/api/health`, one request at a time, during (2) and alone: p50 and p99;
//!    and the server's peak resident memory.
//!
//! Run with `cargo xtask bench auth [--seconds N]`, which builds the release binary and passes
//! it in `BENCH_CADRE_BIN`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use cadre_accounts::AccountSettings;
use cadre_domain::{Clock, SystemClock};
use cadre_migrations::demo::{USER_GROUP_PRODUCT_ID, USER_INTERNAL_PRODUCT_ID};
use cadre_registration::Passwords;
use serde_json::json;
use support::Server;
use support::load::{completed, made, percentile_of, probe_health};

const CLIENTS: usize = 50;
const PASSWORD: &str = "correct horse battery staple";

/// Raw argon2id verifications per second: one thread per CPU, for `duration`.
fn raw_verifications(hash: &str, duration: Duration) -> f64 {
    let settings = AccountSettings::default().argon2;
    let params = Params::new(
        settings.memory_kib,
        settings.iterations,
        settings.parallelism,
        None,
    )
    .unwrap();
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let started = Instant::now();
    let done: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let params = params.clone();
                scope.spawn(move || {
                    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                    let parsed = PasswordHash::new(hash).unwrap();
                    let mut done = 0u64;
                    while started.elapsed() < duration {
                        argon2
                            .verify_password(PASSWORD.as_bytes(), &parsed)
                            .unwrap();
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap())
            .sum()
    });
    done as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let binary = std::env::var("BENCH_CADRE_BIN").expect("run through `cargo xtask bench auth`");
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10);
    let duration = Duration::from_secs(seconds);
    // Removed when the benchmark ends.
    let database = cadre_store::testing::scratch_database().await;
    let database_url = database.url().to_owned();

    // 50 users with the same password, hashed with the configured parameters, written before
    // the server starts.
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
    let passwords = Passwords::new(AccountSettings::default().argon2, 1).unwrap();
    let hash = passwords.hash(PASSWORD).await.unwrap();
    for n in 0..CLIENTS {
        let name = format!("user{n}");
        let user = made(
            &completed(
                &engine,
                "create_user",
                vec![
                    json!({"product": USER_INTERNAL_PRODUCT_ID}),
                    json!({"user_id": name, "username": name, "email": format!("{name}@example.org"),
                           "user_group_ids": [staff]}),
                ],
            )
            .await,
        );
        engine
            .store()
            .store_credentials(user.parse().unwrap(), &hash, SystemClock.now())
            .await
            .unwrap();
    }
    drop(engine);

    println!("\nraw argon2id verifications, one thread per CPU, {seconds} s …");
    let raw = raw_verifications(&hash, duration);

    let server = Server::start(
        &binary,
        &database_url,
        &[("CADRE_ACCOUNTS__SIGN_INS_PER_MINUTE", "1000000")],
    );
    cadre_registration::delivery::use_ring_for_tls();
    let client = reqwest::Client::new();
    server.wait_until_ready(&client).await;

    println!("{CLIENTS} clients signing in, {seconds} s …");
    let stop = Arc::new(AtomicBool::new(false));
    let signed_in = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let client = client.clone();
            let url = format!("{}/api/auth/login", server.base);
            let stop = stop.clone();
            let signed_in = signed_in.clone();
            tokio::spawn(async move {
                let body = json!({"username": format!("user{n}"), "password": PASSWORD});
                while !stop.load(Ordering::Relaxed) {
                    let response = client.post(&url).json(&body).send().await.unwrap();
                    assert_eq!(response.status(), reqwest::StatusCode::OK);
                    signed_in.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let probe = tokio::spawn(probe_health(
        client.clone(),
        server.base.clone(),
        Duration::from_millis(5),
        stop.clone(),
    ));
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut busy = probe.await.unwrap();
    for client in clients {
        client.await.unwrap();
    }
    let sign_ins = signed_in.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();

    println!("health alone, {seconds} s …");
    let stop = Arc::new(AtomicBool::new(false));
    let probe = tokio::spawn(probe_health(
        client.clone(),
        server.base.clone(),
        Duration::from_millis(5),
        stop.clone(),
    ));
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut idle = probe.await.unwrap();
    let peak_rss = server.peak_rss();
    drop(server);

    let settings = AccountSettings::default().argon2;
    println!(
        "\nargon2id m={} KiB, t={}, p={}; {} CPUs\n",
        settings.memory_kib,
        settings.iterations,
        settings.parallelism,
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    println!("| measure | per second | ratio to raw argon2id |");
    println!("| --- | --- | --- |");
    println!("| raw argon2id verifications (baseline) | {raw:.1} | 1.00 |");
    println!(
        "| sign-ins over HTTP ({CLIENTS} clients) | {sign_ins:.1} | {:.2} |",
        sign_ins / raw
    );
    println!("\n| /api/health | requests | p50 (ms) | p99 (ms) |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| alone (baseline) | {} | {:.2} | {:.2} |",
        idle.len(),
        percentile_of(&mut idle, 0.5),
        percentile_of(&mut idle, 0.99)
    );
    println!(
        "| while {CLIENTS} clients sign in | {} | {:.2} | {:.2} |",
        busy.len(),
        percentile_of(&mut busy, 0.5),
        percentile_of(&mut busy, 0.99)
    );
    println!(
        "\nserver peak resident memory: {:.1} MiB",
        peak_rss as f64 / f64::from(1 << 20)
    );
}
