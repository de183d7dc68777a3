//! Load benchmark: many clients against a running `cadre serve` (a separate process, started
//! here), once with well-behaved clients only and once with one request in ten hostile (the
//! shapes of the attacks #19 fixed), reporting throughput, server errors, the latency of a
//! health probe meanwhile and the server's peak memory.
//!
//! Run with `cargo xtask bench load`, which builds the release binary and passes it in
//! `BENCH_CADRE_BIN`. Settings: `BENCH_CLIENTS` (200) clients, each sending a request, then
//! pausing `BENCH_THINK_MS` (100) before the next, for `BENCH_SECONDS` (60) per run, over
//! `BENCH_SUBSCRIPTIONS` (10,000) seeded groups. Well-behaved requests: a subscription by id
//! (five in ten), a page of the listing (two), the health check (one) and a process start
//! (one, or two without hostile requests). Hostile ones, in turn: a process start whose every
//! group choice is invalid, a dry-run group load nested past the depth limit, a multipart part
//! header of 2 MiB, headers trickled in and never finished, a 60,000-character search, and a
//! body past the size limit.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cadre_migrations::demo::{USER_GROUP_PRODUCT_ID, USER_INTERNAL_PRODUCT_ID};
use serde_json::json;
use support::Server;
use support::load::{admin_token, percentile_of, probe_health, seed, setting, settle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

/// What one run counted.
#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    server_errors: AtomicU64,
    /// Well-behaved requests answered with anything but success (or not answered).
    benign_failures: AtomicU64,
    /// Hostile requests refused with a 4xx, or whose connection the server closed.
    hostile_refused: AtomicU64,
    /// Hostile requests the server accepted (a dry-run load it plans and refuses later).
    hostile_accepted: AtomicU64,
    /// Hostile answers by status (0: the server closed the connection).
    hostile_statuses: std::sync::Mutex<std::collections::BTreeMap<u16, u64>>,
}

impl Counts {
    fn benign(&self, status: u16) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            self.server_errors.fetch_add(1, Ordering::Relaxed);
        }
        if !(200..300).contains(&status) {
            self.benign_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn hostile(&self, status: u16) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            self.server_errors.fetch_add(1, Ordering::Relaxed);
        }
        match status {
            0 | 400..=499 => self.hostile_refused.fetch_add(1, Ordering::Relaxed),
            200..=299 => self.hostile_accepted.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        *self
            .hostile_statuses
            .lock()
            .unwrap()
            .entry(status)
            .or_default() += 1;
    }
}

struct Target {
    base: String,
    address: String,
    token: String,
    ids: Vec<Uuid>,
    started: AtomicU64,
}

/// A well-behaved request of `kind` (0 to 9), request number `n`.
async fn benign(
    client: &reqwest::Client,
    target: &Target,
    kind: u64,
    n: u64,
    hostile: bool,
) -> u16 {
    let base = &target.base;
    let request = match kind {
        0..=4 => client.get(format!(
            "{base}/api/subscriptions/{}",
            target.ids[(n as usize * 7919) % target.ids.len()]
        )),
        5 | 6 => client.get(format!(
            "{base}/api/subscriptions?product_type=UserGroup&status=active&limit=50&offset={}",
            (n * 50) % 5_000
        )),
        7 => client.get(format!("{base}/api/health")),
        // Without hostile requests, their turn is a process start too.
        9 if hostile => unreachable!("the hostile turn"),
        _ => {
            let k = target.started.fetch_add(1, Ordering::Relaxed);
            client
                .post(format!("{base}/api/processes/create_user_group"))
                .json(&json!([{"product": USER_GROUP_PRODUCT_ID},
                              {"user_group_id": format!("load{k}"),
                               "user_group_name": format!("Load {k}")}]))
        }
    };
    answered(request.bearer_auth(&target.token)).await
}

/// A hostile request of `shape` (0 to 5), request number `n`: the status, or 0 when the
/// server closed the connection.
async fn hostile(client: &reqwest::Client, target: &Target, shape: u64, n: u64) -> u16 {
    let base = &target.base;
    let request = match shape {
        0 => {
            let groups: Vec<String> = (0..32).map(|k| format!("not a group {k}")).collect();
            client
                .post(format!("{base}/api/processes/create_user"))
                .json(&json!([{"product": USER_INTERNAL_PRODUCT_ID},
                              {"user_id": "x", "username": "x", "email": "x@example.org",
                               "user_group_ids": groups}]))
        }
        1 => {
            let mut rows = String::from("user_group_id,user_group_name,parent_user_groups\n");
            for depth in 0..150 {
                let parent = if depth == 0 {
                    String::new()
                } else {
                    format!("deep{n}x{}", depth - 1)
                };
                rows.push_str(&format!("deep{n}x{depth},Deep {n} {depth},{parent}\n"));
            }
            client
                .post(format!(
                    "{base}/api/provisioning/user-groups?mode=incremental&dry_run=true"
                ))
                .header("content-type", "text/csv")
                .body(rows)
        }
        2 => {
            let name = "x".repeat(2 << 20);
            client
                .post(format!("{base}/api/workflow-groups/none/files"))
                .header("content-type", "multipart/form-data; boundary=b")
                .body(format!(
                    "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\r\nx\r\n--b--\r\n"
                ))
        }
        3 => return trickled_headers(&target.address).await,
        4 => client.get(format!(
            "{base}/api/subscriptions?query={}",
            "x".repeat(60_000)
        )),
        _ => client
            .post(format!("{base}/api/processes/create_user_group"))
            .header("content-type", "application/json")
            .body(vec![b' '; 3 << 20]),
    };
    answered(request.bearer_auth(&target.token)).await
}

/// Sends `request` and reads its answer: the status, or 0 when there was none.
async fn answered(request: reqwest::RequestBuilder) -> u16 {
    match request.send().await {
        Ok(answer) => {
            let status = answer.status().as_u16();
            let _ = answer.bytes().await;
            status
        }
        Err(_) => 0,
    }
}

/// Sends the start of a request's headers, then nothing: the server closes the connection
/// after its header timeout. Returns 0 (closed) or the status it answered.
async fn trickled_headers(address: &str) -> u16 {
    let Ok(mut stream) = tokio::net::TcpStream::connect(address).await else {
        return 0;
    };
    let _ = stream
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer)).await;
    std::str::from_utf8(&answer)
        .ok()
        .and_then(|text| text.split(' ').nth(1))
        .and_then(|status| status.parse().ok())
        .unwrap_or(0)
}

/// One run of `clients` clients for `duration`, hostile one request in ten when `hostile`.
async fn run(
    target: &Arc<Target>,
    server: &Server,
    clients: u64,
    think: Duration,
    duration: Duration,
    hostile_share: bool,
) {
    let counts = Arc::new(Counts::default());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients as usize)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    // Hostile requests come from clients of their own: a connection the server closes after
    // refusing one is not one a well-behaved client reuses.
    let attacker = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let probe = tokio::spawn(probe_health(
        reqwest::Client::new(),
        target.base.clone(),
        Duration::from_millis(10),
        Arc::clone(&stop),
    ));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (client, attacker, target, counts, stop) = (
                client.clone(),
                attacker.clone(),
                Arc::clone(target),
                Arc::clone(&counts),
                Arc::clone(&stop),
            );
            tokio::spawn(async move {
                // Each client goes through every kind of request in turn, from its own start;
                // its hostile turns go out beside it, as another client's would, so that a
                // request the server holds for its header timeout holds no well-behaved one.
                let mut turn = 0;
                let mut attacks = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let n = turn * clients + c;
                    let kind = (c + turn) % 10;
                    if hostile_share && kind == 9 {
                        let (attacker, target, counts) =
                            (attacker.clone(), Arc::clone(&target), Arc::clone(&counts));
                        attacks.push(tokio::spawn(async move {
                            let status = hostile(&attacker, &target, (c + turn / 10) % 6, n).await;
                            counts.hostile(status);
                        }));
                    } else {
                        let status = benign(&client, &target, kind, n, hostile_share).await;
                        counts.benign(status);
                    }
                    turn += 1;
                    tokio::time::sleep(think).await;
                }
                for attack in attacks {
                    attack.await.unwrap();
                }
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for task in tasks {
        task.await.unwrap();
    }
    let mut health = probe.await.unwrap();
    if hostile_share {
        let statuses = counts.hostile_statuses.lock().unwrap().clone();
        eprintln!("hostile answers by status (0: connection closed): {statuses:?}");
    }
    let requests = counts.requests.load(Ordering::Relaxed);
    println!(
        "| {} | {requests} | {:.0} | {} | {} | {} | {} | {:.2} | {:.2} | {:.1} |",
        if hostile_share {
            "1 in 10 hostile"
        } else {
            "well-behaved"
        },
        requests as f64 / elapsed,
        counts.server_errors.load(Ordering::Relaxed),
        counts.benign_failures.load(Ordering::Relaxed),
        counts.hostile_refused.load(Ordering::Relaxed),
        counts.hostile_accepted.load(Ordering::Relaxed),
        percentile_of(&mut health, 0.5),
        percentile_of(&mut health, 0.99),
        server.peak_rss() as f64 / (1024.0 * 1024.0),
    );
}

#[tokio::main]
async fn main() {
    let binary = std::env::var("BENCH_CADRE_BIN").expect("run through `cargo xtask bench load`");
    let clients = setting("BENCH_CLIENTS", 200);
    let think = Duration::from_millis(setting("BENCH_THINK_MS", 100));
    let duration = Duration::from_secs(setting("BENCH_SECONDS", 60));
    let subscriptions = setting("BENCH_SUBSCRIPTIONS", 10_000);
    let database = cadre_store::testing::scratch_database().await;
    let database_url = database.url().to_owned();

    let engine = cadre_server::Cadre::new()
        .open(&database_url)
        .await
        .unwrap();
    let store = Arc::clone(engine.store());
    let ids = seed(store.as_ref(), subscriptions).await;
    let token = admin_token(store.as_ref()).await;
    drop(engine);
    settle(&database_url).await;

    let files = tempfile::tempdir().unwrap();
    let files_dir = files.path().join("files");
    let mail_dir = files.path().join("mail");
    let server = Server::start(
        &binary,
        &database_url,
        &[
            ("CADRE_FILES_DIR", files_dir.to_str().unwrap()),
            ("CADRE_MAIL_DIR", mail_dir.to_str().unwrap()),
        ],
    );
    cadre_registration::delivery::use_ring_for_tls();
    server.wait_until_ready(&reqwest::Client::new()).await;
    let target = Arc::new(Target {
        address: server.base.trim_start_matches("http://").to_owned(),
        base: server.base.clone(),
        token,
        ids,
        started: AtomicU64::new(0),
    });

    println!(
        "\n{clients} clients, {} ms between a client's requests, {} s per run, {subscriptions} \
         groups\n",
        think.as_millis(),
        duration.as_secs()
    );
    println!(
        "| run | requests | per s | 5xx | well-behaved failed | hostile refused | hostile accepted | health p50 (ms) | health p99 (ms) | server peak RSS (MiB) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    run(&target, &server, clients, think, duration, false).await;
    run(&target, &server, clients, think, duration, true).await;
    let mut server = server;
    assert!(server.running(), "the server died under the load");
}
