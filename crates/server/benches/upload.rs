//! Upload benchmark: streams a large file (default 1 GiB) to a running `cadre serve` (a
//! separate process, started here) and reports the server's peak resident memory before and
//! after, beside a small upload in the same run, to show that uploads are streamed, not
//! buffered.
//!
//! Run with `cargo xtask bench upload [--upload-mib N]`, which builds the release binary and
//! passes it in `BENCH_CADRE_BIN`. The server keeps its files in a temporary folder.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::io;
use std::time::Instant;

use bytes::Bytes;
use cadre_domain::{Clock, Role, SystemClock};
use cadre_migrations::demo::{USER_GROUP_PRODUCT_ID, USER_INTERNAL_PRODUCT_ID};
use serde_json::{Value, json};
use support::Server;

const MIB: u64 = 1 << 20;

/// Runs `workflow` with `pages` to completion on `engine`; returns the subscription it made.
async fn subscription_of(
    engine: &cadre_engine::Engine,
    workflow: &str,
    pages: Vec<Value>,
) -> String {
    let process = engine.start(workflow, &pages, "bench").await.unwrap();
    engine.run_until_idle().await.unwrap();
    let process = engine.store().process(process.id).await.unwrap();
    process.state["subscription_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Uploads `mib` MiB of generated content as one streamed multipart part; returns the seconds
/// it took.
async fn upload(client: &reqwest::Client, url: &str, token: &str, mib: u64) -> f64 {
    let chunk = Bytes::from(vec![b'x'; MIB as usize]);
    let chunks =
        futures_util::stream::iter((0..mib).map(move |_| Ok::<_, io::Error>(chunk.clone())));
    let part =
        reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(chunks), mib * MIB)
            .file_name(format!("{mib}MiB.bin"));
    let started = Instant::now();
    let response = client
        .post(url)
        .bearer_auth(token)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    assert_eq!(body["size"], mib * MIB);
    started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let binary = std::env::var("BENCH_CADRE_BIN").expect("run through `cargo xtask bench upload`");
    let large: u64 = std::env::var("BENCH_UPLOAD_MIB")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1024);
    // Removed when the benchmark ends.
    let database = cadre_store::testing::scratch_database().await;
    let database_url = database.url().to_owned();
    let files = tempfile::tempdir().unwrap();

    // A user with a token, and a group of hers, written before the server starts.
    let engine = cadre_server::Cadre::new()
        .open(&database_url)
        .await
        .unwrap();
    let staff = subscription_of(
        &engine,
        "create_user_group",
        vec![
            json!({"product": USER_GROUP_PRODUCT_ID}),
            json!({"user_group_id": "staff", "user_group_name": "Staff"}),
        ],
    )
    .await;
    let ada = subscription_of(
        &engine,
        "create_user",
        vec![
            json!({"product": USER_INTERNAL_PRODUCT_ID}),
            json!({"user_id": "ada", "username": "ada", "email": "ada@example.org",
                   "user_group_ids": [staff]}),
        ],
    )
    .await;
    let token = cadre_server::auth::issue_token(
        engine.store().as_ref(),
        cadre_server::auth::NewToken {
            name: "ada",
            role: Role::User,
            user: Some(ada.parse().unwrap()),
            expires_at: None,
        },
        "bench",
        SystemClock.now(),
    )
    .await
    .unwrap()
    .plain;
    drop(engine);

    let files_dir = files.path().to_str().unwrap().to_owned();
    let limit = ((large + 1) * MIB).to_string();
    let server = Server::start(
        &binary,
        &database_url,
        &[
            ("CADRE_FILES_DIR", &files_dir),
            ("CADRE_MAX_UPLOAD_BYTES", &limit),
        ],
    );
    cadre_registration::delivery::use_ring_for_tls();
    let client = reqwest::Client::new();
    server.wait_until_ready(&client).await;
    let response = client
        .post(format!("{}/api/workflow-groups", server.base))
        .bearer_auth(&token)
        .json(&json!({"workflow": "create_user", "name": "Bench", "identifier": "bench"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    let url = format!("{}/api/workflow-groups/bench/files", server.base);

    let started_rss = server.peak_rss();
    let small_seconds = upload(&client, &url, &token, 1).await;
    let small_rss = server.peak_rss();
    let large_seconds = upload(&client, &url, &token, large).await;
    let large_rss = server.peak_rss();

    let mib = |bytes: u64| bytes as f64 / MIB as f64;
    println!("\nserver peak resident memory (VmHWM), one streamed multipart upload at a time\n");
    println!("| after | peak RSS (MiB) | growth over the 1 MiB upload (MiB) | time (s) | MiB/s |");
    println!("| --- | --- | --- | --- | --- |");
    println!("| start | {:.1} | | | |", mib(started_rss));
    println!(
        "| 1 MiB upload (baseline) | {:.1} | 0 | {small_seconds:.3} | {:.0} |",
        mib(small_rss),
        1.0 / small_seconds
    );
    println!(
        "| {large} MiB upload | {:.1} | {:.1} | {large_seconds:.2} | {:.0} |",
        mib(large_rss),
        mib(large_rss.saturating_sub(small_rss)),
        large as f64 / large_seconds
    );
    println!(
        "\npeak RSS after {large} MiB ÷ after 1 MiB: {:.2} (the file is {:.0}× the baseline upload)",
        large_rss as f64 / small_rss as f64,
        large as f64
    );
    drop(server);
}
