//! Outbound benchmark: how fast a running `cadre serve` (a separate process, started here)
//! pushes a bulk load to real targets, against what those targets take when written directly.
//!
//! Run with `cargo xtask bench outbound [--users N] [--database-url postgres://…]`, which
//! builds the release binary and passes it in `BENCH_CADRE_BIN`. For each kind of target, a
//! fresh one for every run so that none starts with what another wrote (the in-memory
//! `scim2-server` 0.8.3 with `bulk` on, from `$SCIM2_SERVER`; OpenLDAP's `slapd`):
//!
//! - the target's raw write rate for `BENCH_USERS` (default 10,000) users with the attributes
//!   cadre sends, one request after another: SCIM `POST /Users` per user, and `/Bulk` requests
//!   of 1,000 creates (what cadre uses, also one after another); LDAP `ldapadd` of one LDIF
//!   file (cadre keeps four adds in flight);
//! - cadre's push: a bulk load (`POST /api/provisioning/users`, incremental) of the same users
//!   on a fresh database with the target configured and enabled; the load's `push` step from
//!   the process's step log in users per second, against the raw rate, and the whole load;
//!   then the target's user count;
//! - two `reconcile_target` tasks over the users just pushed, all unchanged, against the push:
//!   the first after the push, which lists the target in full (nothing is remembered of it
//!   yet), and a second, as a periodic reconcile runs, which asks a SCIM target only for what
//!   changed since the first (LDAP targets are listed in full each time).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use cadre_outbound::testing::{ScimServer, Slapd};
use serde_json::{Value, json};
use support::Server;
use support::load::{admin_token, setting, settle};

/// Operations per raw `/Bulk` request: cadre's most.
const BULK_SIZE: u64 = 1000;

/// How long one raw `/Bulk` request may take.
fn bulk_timeout() -> Duration {
    Duration::from_secs(600)
}

/// User `n` as cadre sends it to a SCIM target with the default mapping.
fn scim_user(n: u64) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "externalId": format!("u{n}"),
        "userName": format!("u{n}"),
        "name": {"givenName": format!("First{n}"), "familyName": format!("Last{n}")},
        "emails": [{"value": format!("u{n}@example.org"), "type": "work", "primary": true}],
        "active": true,
    })
}

/// User `n` as an LDIF entry under `people`, as cadre writes it with the default mapping.
fn ldif_user(n: u64, people: &str) -> String {
    format!(
        "dn: uid=u{n},{people}\nobjectClass: inetOrgPerson\nuid: u{n}\ncn: u{n}\n\
         givenName: First{n}\nsn: Last{n}\nmail: u{n}@example.org\n\n"
    )
}

/// A duration in seconds, two decimals.
fn secs(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64())
}

/// `count` per second over `duration`.
fn per_second(count: u64, duration: Duration) -> f64 {
    count as f64 / duration.as_secs_f64()
}

/// The JSON answer to `request`, which must succeed.
async fn answer(request: reqwest::RequestBuilder) -> Value {
    let response = request.send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{status}: {body}");
    body
}

/// Users per second of `POST /Users`, one after another, on a fresh scim2-server.
async fn raw_scim_posts(client: &reqwest::Client, users: u64) -> Duration {
    let server = ScimServer::start().expect("scim2-server (set SCIM2_SERVER)");
    let url = format!("{}/Users", server.base_url());
    let started = Instant::now();
    for n in 0..users {
        let response = client
            .post(&url)
            .bearer_auth(server.token())
            .header("content-type", "application/scim+json")
            .body(scim_user(n).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }
    let took = started.elapsed();
    assert_eq!(scim_count(client, &server).await, users);
    took
}

/// `/Bulk` requests of [`BULK_SIZE`] creates, one after another, on a fresh scim2-server.
async fn raw_scim_bulk(client: &reqwest::Client, users: u64) -> Duration {
    let server = ScimServer::start().expect("scim2-server (set SCIM2_SERVER)");
    let url = format!("{}/Bulk", server.base_url());
    let started = Instant::now();
    for first in (0..users).step_by(BULK_SIZE as usize) {
        let operations: Vec<Value> = (first..(first + BULK_SIZE).min(users))
            .map(|n| json!({"method": "POST", "path": "/Users", "bulkId": n.to_string(), "data": scim_user(n)}))
            .collect();
        let count = operations.len();
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": operations,
        });
        let bulk = answer(
            client
                .post(&url)
                .bearer_auth(server.token())
                .header("content-type", "application/scim+json")
                .body(body.to_string())
                .timeout(bulk_timeout()),
        )
        .await;
        let created = bulk["Operations"]
            .as_array()
            .map(|operations| operations.iter().filter(|o| o["status"] == "201").count())
            .unwrap_or_default();
        assert_eq!(created, count, "{bulk}");
    }
    let took = started.elapsed();
    assert_eq!(scim_count(client, &server).await, users);
    took
}

/// How many users `server` has.
async fn scim_count(client: &reqwest::Client, server: &ScimServer) -> u64 {
    let list = answer(
        client
            .get(format!("{}/Users?count=1", server.base_url()))
            .bearer_auth(server.token()),
    )
    .await;
    list["totalResults"].as_u64().unwrap()
}

/// `ldapadd` of one LDIF file of `users` entries on a fresh slapd.
async fn raw_ldapadd(users: u64) -> Duration {
    let slapd = Slapd::start().await.expect("slapd");
    let people = slapd.people_dn();
    let ldif: String = (0..users).map(|n| ldif_user(n, &people)).collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), ldif).unwrap();
    let started = Instant::now();
    let status = Command::new("ldapadd")
        .args(["-x", "-H", &slapd.url(), "-D", slapd.bind_dn(), "-w"])
        .arg(slapd.password())
        .arg("-f")
        .arg(file.path())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run ldapadd (ldap-utils)");
    let took = started.elapsed();
    assert!(status.success(), "ldapadd failed");
    assert_eq!(ldap_count(&slapd), users);
    took
}

/// How many people `slapd` has, by a paged `ldapsearch`.
fn ldap_count(slapd: &Slapd) -> u64 {
    let output = Command::new("ldapsearch")
        .args([
            "-x",
            "-LLL",
            "-H",
            &slapd.url(),
            "-D",
            slapd.bind_dn(),
            "-w",
        ])
        .arg(slapd.password())
        .args([
            "-b",
            &slapd.people_dn(),
            "-s",
            "one",
            "-E",
            "pr=1000/noprompt",
        ])
        .args(["(objectClass=inetOrgPerson)", "1.1"])
        .output()
        .expect("run ldapsearch (ldap-utils)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.starts_with("dn:"))
        .count() as u64
}

/// What one reconcile task measured (see [`Pushed::reconciles`]).
type Reconciled = Result<(Duration, Duration, Value), String>;

/// What one run of cadre against a target measured.
struct Pushed {
    /// The load, from its request until its process completed.
    load: Duration,
    /// The load's `push` step, from the step log.
    push: Duration,
    /// Each step of the load (name, seconds), in order.
    steps: Vec<(String, f64)>,
    /// The first reconcile task and a second one after it: each from its request until its
    /// process completed; its `reconcile` step from the step log; its report without its rows.
    /// `Err` when it did not complete in time: what was last seen.
    reconciles: [Reconciled; 2],
    /// The server's peak resident memory, in bytes.
    peak_rss: u64,
    /// Polls of the load's and the reconcile's process answered 503 (after 30 s each).
    unavailable: (u64, u64),
}

/// Waits until process `id` completes, at most `patience`; its detail (`Err`: its last
/// status, or the last error answered, when it did not complete in time), and how many polls
/// the server answered with a 503 (its database busy: after 30 s each) meanwhile.
async fn completed(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    id: &str,
    patience: Duration,
) -> (Result<Value, String>, u64) {
    let started = Instant::now();
    let mut unavailable = 0;
    let mut last = String::new();
    loop {
        if started.elapsed() > patience {
            return (Err(last), unavailable);
        }
        let response = client
            .get(format!("{base}/api/processes/{id}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        if response.status() == 503 {
            unavailable += 1;
            last = format!(
                "GET /api/processes/{{id}}: 503 {}",
                response.text().await.unwrap()
            );
            eprintln!("  {last}");
            continue;
        }
        assert!(response.status().is_success(), "{}", response.status());
        let process: Value = response.json().await.unwrap();
        if process["last_status"] == "completed" {
            return (Ok(process), unavailable);
        }
        last = format!(
            "process {}: {}",
            process["last_status"], process["failed_reason"]
        );
        assert!(
            !matches!(
                process["last_status"].as_str(),
                Some("failed" | "aborted" | "api_unavailable" | "inconsistent_data" | "waiting")
            ),
            "{process}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The logged steps of `process`: name and seconds, in order.
fn step_times(process: &Value) -> Vec<(String, f64)> {
    process["steps"]
        .as_array()
        .unwrap()
        .iter()
        // `Done` is logged with the start of the step it was committed with.
        .filter(|step| !matches!(step["status"].as_str(), Some("pending" | "complete")))
        .map(|step| {
            let took = step["completed"].as_f64().unwrap() - step["started"].as_f64().unwrap();
            (step["name"].as_str().unwrap().to_owned(), took)
        })
        .collect()
}

/// The seconds of the one logged step named `name`.
fn step_time(steps: &[(String, f64)], name: &str) -> Duration {
    let mut matching = steps.iter().filter(|(step, _)| step == name);
    let (_, took) = matching.next().unwrap_or_else(|| panic!("no step {name}"));
    assert!(matching.next().is_none(), "step {name} ran more than once");
    Duration::from_secs_f64(*took)
}

/// Starts `cadre serve` on a fresh database with `target` (`POST /api/targets`) configured,
/// loads `users` users, and reconciles the target.
async fn cadre_push(binary: &str, client: &reqwest::Client, target: Value, users: u64) -> Pushed {
    let database = cadre_store::testing::scratch_database().await;
    let database_url = database.url().to_owned();
    let engine = cadre_server::Cadre::new()
        .open(&database_url)
        .await
        .unwrap();
    let token = admin_token(engine.store().as_ref()).await;
    drop(engine);
    settle(&database_url).await;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).unwrap();
    let key = hex::encode(key);
    let server = Server::start(binary, &database_url, &[("CADRE_OUTBOUND_KEY", &key)]);
    server.wait_until_ready(client).await;
    let base = server.base.clone();

    let target = answer(
        client
            .post(format!("{base}/api/targets"))
            .bearer_auth(&token)
            .json(&target),
    )
    .await;
    let target_id = target["id"].as_str().expect("a target id").to_owned();
    assert_eq!(target["mode"], "enabled", "{target}");

    let rows: String = std::iter::once(
        "user_id,firstname,lastname,email,auth_id,user_groups,is_active".to_owned(),
    )
    .chain((0..users).map(|n| format!("u{n},First{n},Last{n},u{n}@example.org,,,true")))
    .collect::<Vec<_>>()
    .join("\n");
    eprintln!("  target configured; loading");
    let started = Instant::now();
    let load = answer(
        client
            .post(format!("{base}/api/provisioning/users?mode=incremental"))
            .bearer_auth(&token)
            .header("content-type", "text/csv")
            .body(rows),
    )
    .await;
    let process = load["process_id"].as_str().expect("a load started");
    let (detail, load_503) = completed(client, &base, &token, process, Duration::MAX).await;
    let detail = detail.unwrap();
    let load = started.elapsed();
    assert_eq!(
        detail["current_state"]["pushed"], users,
        "{}",
        detail["current_state"]
    );
    let steps = step_times(&detail);
    let push = step_time(&steps, "Push to targets");

    eprintln!("  loaded in {:.1} s; reconciling", load.as_secs_f64());
    // On SQLite the reconcile has been seen to stall for good: give up after a while.
    let patience = Duration::from_secs(60).max(load * 10);
    let mut reconcile_503 = 0;
    let mut reconcile = async || {
        let started = Instant::now();
        let task = answer(
            client
                .post(format!("{base}/api/processes/reconcile_target"))
                .bearer_auth(&token)
                .json(&json!([{"target_id": target_id, "dry_run": false, "max_removals": 0}])),
        )
        .await;
        let (detail, unavailable) = completed(
            client,
            &base,
            &token,
            task["id"].as_str().unwrap(),
            patience,
        )
        .await;
        reconcile_503 += unavailable;
        let took = started.elapsed();
        detail.map(|detail| {
            let step = step_time(&step_times(&detail), "Reconcile target");
            let mut report = detail["current_state"]["report"].clone();
            report.as_object_mut().unwrap().remove("rows");
            (took, step, report)
        })
    };
    let reconciles = [reconcile().await, reconcile().await];
    let peak_rss = server.peak_rss();
    drop(server);
    Pushed {
        load,
        push,
        steps,
        reconciles,
        peak_rss,
        unavailable: (load_503, reconcile_503),
    }
}

/// Prints the figures of one target kind.
fn print(kind: &str, users: u64, raw: &[(&str, Duration)], pushed: &Pushed, count: u64) {
    let baseline = raw.last().unwrap().1;
    println!("\n### {kind}: {users} users\n");
    println!("| what | s | users/s | ÷ raw ({}) |", raw.last().unwrap().0);
    println!("| --- | --- | --- | --- |");
    for (name, took) in raw {
        println!(
            "| raw: {name} | {} | {:.0} | {:.2}× |",
            secs(*took),
            per_second(users, *took),
            per_second(users, *took) / per_second(users, baseline)
        );
    }
    println!(
        "| cadre: the load's push step | {} | {:.0} | **{:.2}×** (target ≥ 0.8×) |",
        secs(pushed.push),
        per_second(users, pushed.push),
        per_second(users, pushed.push) / per_second(users, baseline)
    );
    println!(
        "| cadre: the whole load (request to completed) | {} | {:.0} | {:.2}× |",
        secs(pushed.load),
        per_second(users, pushed.load),
        per_second(users, pushed.load) / per_second(users, baseline)
    );
    for (which, reconciled) in ["first", "later"].iter().zip(&pushed.reconciles) {
        match reconciled {
            Ok((took, _, _)) => println!(
                "| cadre: {which} reconcile of {users} unchanged users (request to completed) | {} | {:.0} | reconcile ÷ push: **{:.2}×** (target ≤ 0.2×) |",
                secs(*took),
                per_second(users, *took),
                took.as_secs_f64() / pushed.push.as_secs_f64()
            ),
            Err(_) => println!(
                "| cadre: {which} reconcile of {users} unchanged users | did not complete | – | – |"
            ),
        }
    }
    let steps: Vec<String> = pushed
        .steps
        .iter()
        .map(|(name, took)| format!("{name} {took:.2} s"))
        .collect();
    println!("\nthe load's steps: {}", steps.join(", "));
    for (which, reconciled) in ["first", "later"].iter().zip(&pushed.reconciles) {
        match reconciled {
            Ok((_, step, report)) => {
                println!("{which} reconcile step {} s; report {report}", secs(*step))
            }
            Err(last) => println!("the {which} reconcile did not complete; last seen: {last}"),
        }
    }
    println!("the target has {count} users after the push");
    println!(
        "polls of the process answered 503 (database busy, 30 s each): {} during the load, {} during the reconcile",
        pushed.unavailable.0, pushed.unavailable.1
    );
    println!(
        "server peak resident memory: {:.1} MiB",
        pushed.peak_rss as f64 / f64::from(1 << 20)
    );
}

#[tokio::main]
async fn main() {
    let binary =
        std::env::var("BENCH_CADRE_BIN").expect("run through `cargo xtask bench outbound`");
    let users = setting("BENCH_USERS", 10_000);
    cadre_registration::delivery::use_ring_for_tls();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let database = if std::env::var("DATABASE_URL").is_ok_and(|url| url.starts_with("postgres")) {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "\n{users} users, on {database}; raw writes one request after another (cadre's /Bulk requests go one after another; its LDAP adds four at a time), on a fresh target each"
    );

    // SCIM.
    eprintln!("raw SCIM POST /Users…");
    let posts = raw_scim_posts(&client, users).await;
    eprintln!("raw SCIM /Bulk…");
    let bulk = raw_scim_bulk(&client, users).await;
    eprintln!("cadre to SCIM…");
    let scim = ScimServer::start().expect("scim2-server (set SCIM2_SERVER)");
    let target = json!({
        "name": "SCIM",
        "connection": {"kind": "scim", "base_url": scim.base_url(), "bulk": true},
        "secret": scim.token(),
    });
    let pushed = cadre_push(&binary, &client, target, users).await;
    let count = scim_count(&client, &scim).await;
    print(
        "SCIM (scim2-server 0.8.3, bulk on)",
        users,
        &[("POST /Users", posts), ("/Bulk of 1,000 creates", bulk)],
        &pushed,
        count,
    );
    assert_eq!(count, users);
    drop(scim);

    // LDAP.
    eprintln!("raw ldapadd…");
    let ldapadd = raw_ldapadd(users).await;
    eprintln!("cadre to LDAP…");
    let slapd = Slapd::start().await.expect("slapd");
    let target = json!({
        "name": "LDAP",
        "connection": {"kind": "ldap", "url": slapd.url(), "start_tls": false,
                       "bind_dn": slapd.bind_dn(), "people_dn": slapd.people_dn(),
                       "groups_dn": slapd.groups_dn()},
        "secret": slapd.password(),
    });
    let pushed = cadre_push(&binary, &client, target, users).await;
    let count = ldap_count(&slapd);
    print(
        "LDAP (slapd, mdb)",
        users,
        &[("ldapadd of one LDIF file", ldapadd)],
        &pushed,
        count,
    );
    assert_eq!(count, users);
}
