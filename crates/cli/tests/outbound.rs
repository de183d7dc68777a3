//! Outbound provisioning with a real `cadre serve` and a real SCIM service provider
//! (scim2-server, see `cadre_outbound::testing`), over a scratch database (SQLite, or
//! PostgreSQL with `DATABASE_URL`).
//!
//! Without scim2-server the tests say what they skipped (`SCIM2_SERVER` names the program);
//! `REQUIRE_OUTBOUND_TESTS=1` makes a missing one fail them instead.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cadre_migrations::demo::USER_INTERNAL_PRODUCT_ID;
use cadre_outbound::testing::ScimServer;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long any one thing the tests wait for may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The request lines of a SCIM user create, the base URL's path prefix or not.
const USER_CREATES: [&[u8]; 2] = [b"POST /v2/Users HTTP/", b"POST /Users HTTP/"];

/// A scratch database, a folder for files and logs, and the outbound key, shared by every
/// `cadre` run of a test.
struct Cadre {
    database: cadre_store::testing::ScratchDatabase,
    files: tempfile::TempDir,
    key: String,
}

impl Cadre {
    async fn new() -> Self {
        Self {
            database: cadre_store::testing::scratch_database().await,
            files: tempfile::tempdir().unwrap(),
            key: "5e".repeat(32),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cadre"));
        command
            .args(args)
            .arg("--database-url")
            .arg(self.database.url())
            .env_remove("DATABASE_URL")
            .env_remove("CADRE_CONFIG")
            .env_remove("RUST_LOG")
            .env("CADRE_OUTBOUND_KEY", &self.key)
            .env("CADRE_FILES_DIR", self.files.path().join("volume"))
            .env("CADRE_MAIL_DIR", self.files.path().join("mail"));
        command
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.command(args).output().expect("cadre runs");
        assert!(
            output.status.success(),
            "cadre {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    /// Where the `cadre serve` called `name` logs.
    fn log(&self, name: &str) -> PathBuf {
        self.files.path().join(format!("{name}.log"))
    }

    /// `cadre serve` on `port` with one worker and a two-second lease, logging to
    /// [`Cadre::log`] of `name`.
    fn serve(&self, port: u16, name: &str) -> Child {
        let log = File::create(self.log(name)).unwrap();
        self.command(&["serve", "--port", &port.to_string()])
            .env("CADRE_WORKERS", "1")
            .env("CADRE_LEASE_SECONDS", "2")
            .env("CADRE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// What the `cadre serve` called `name` logged, for a failure message.
    fn log_text(&self, name: &str) -> String {
        std::fs::read_to_string(self.log(name)).unwrap_or_else(|error| format!("(no log: {error})"))
    }
}

/// A `cadre serve` child, killed when dropped.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the proxy shares with its connections: the `cadre serve` to kill (taken by the kill,
/// so there is one) and how it ended.
#[derive(Default)]
struct Victim {
    child: Mutex<Option<Child>>,
    killed: Mutex<Option<ExitStatus>>,
}

impl Victim {
    /// Kills the child with SIGKILL and reaps it, once; nothing when there is none (any more).
    fn kill(&self) {
        let Some(mut child) = self.child.lock().unwrap().take() else {
            return;
        };
        child.kill().unwrap();
        let status = child.wait().unwrap();
        *self.killed.lock().unwrap() = Some(status);
    }
}

/// A TCP proxy on 127.0.0.1 in front of a SCIM service provider. The first time the service
/// provider answers a user create (`POST …/Users`), the proxy kills its victim before it
/// relays the answer: the user exists remotely, and cadre never learns of it. Otherwise it
/// only relays.
struct Proxy {
    port: u16,
    victim: Arc<Victim>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let victim = Arc::new(Victim::default());
        let shared = Arc::clone(&victim);
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let victim = Arc::clone(&shared);
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await {
                        relay(client, server, &victim).await;
                    }
                });
            }
        });
        Self {
            port,
            victim,
            accepting,
        }
    }

    /// The child to kill at the first user create.
    fn aim_at(&self, child: Child) {
        *self.victim.child.lock().unwrap() = Some(child);
    }

    /// How the victim ended, once the proxy killed it.
    async fn killed(&self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = *self.victim.killed.lock().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no user create passed the proxy within {TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
        if let Some(mut child) = self.victim.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Copies bytes both ways between `client` and `server` until either side closes. A request
/// line of [`USER_CREATES`] from the client makes the next bytes from the server (its
/// answer: HTTP/1.1 clients do not pipeline) wait for the victim's kill.
async fn relay(client: TcpStream, server: TcpStream, victim: &Victim) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let created = AtomicBool::new(false);
    let upstream = async {
        let mut buffer = vec![0u8; 16 * 1024];
        // The end of the previous read, for a request line split between two reads.
        let mut tail: Vec<u8> = Vec::new();
        loop {
            let read = client_read.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            let mut window = std::mem::take(&mut tail);
            let carried = window.len();
            window.extend_from_slice(&buffer[..read]);
            if USER_CREATES
                .iter()
                .any(|line| ends_after(&window, carried, line))
            {
                // Before the request goes on, so that the answer cannot come first.
                created.store(true, Ordering::SeqCst);
            }
            tail = window[window.len().saturating_sub(32)..].to_vec();
            server_write.write_all(&buffer[..read]).await?;
        }
        server_write.shutdown().await
    };
    let downstream = async {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let read = server_read.read(&mut buffer).await?;
            if read == 0 {
                break;
            }
            if created.swap(false, Ordering::SeqCst) {
                victim.kill();
            }
            client_write.write_all(&buffer[..read]).await?;
        }
        client_write.shutdown().await
    };
    // A side that fails (the victim gone) ends the connection.
    let _: std::io::Result<((), ())> = tokio::try_join!(upstream, downstream);
}

/// Whether `needle` occurs in `haystack` ending past its first `carried` bytes (so that a
/// match carried over from the previous read is not counted again).
fn ends_after(haystack: &[u8], carried: usize, needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .enumerate()
        .any(|(at, window)| window == needle && at + needle.len() > carried)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn client() -> reqwest::Client {
    cadre_registration::delivery::use_ring_for_tls();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Waits until `cadre serve` answers its health check on `port`.
async fn until_serving(client: &reqwest::Client, port: u16, cadre: &Cadre, name: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let health = client
            .get(format!("http://127.0.0.1:{port}/api/health"))
            .send()
            .await;
        if health.is_ok_and(|answer| answer.status().is_success()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "cadre serve ({name}) never answered on {port}; its log:\n{}",
            cadre.log_text(name)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The users of the SCIM server `scim` with `externalId` `external_id`, asked directly.
async fn remote_users(
    client: &reqwest::Client,
    scim: &ScimServer,
    external_id: &str,
) -> Vec<Value> {
    assert!(
        external_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-'),
        "no escaping here"
    );
    let answer = client
        .get(format!(
            "{}/Users?filter=externalId%20eq%20%22{external_id}%22",
            scim.base_url()
        ))
        .bearer_auth(scim.token())
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{answer:?}");
    let list: Value = answer.json().await.unwrap();
    let users = list["Resources"].as_array().cloned().unwrap_or_default();
    assert_eq!(list["totalResults"], users.len(), "{list}");
    users
}

/// `cadre serve` is killed with SIGKILL after its push created the user in the SCIM target and
/// before the step committed. Started again, it takes the process over and finishes it: the
/// push finds the remote user by its external id instead of making a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_between_an_outbound_push_and_its_commit_makes_no_second_remote_user() {
    let Some(scim) = ScimServer::start() else {
        return;
    };
    let scim_port: u16 = scim
        .base_url()
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let proxy = Proxy::start(scim_port).await;
    let cadre = Cadre::new().await;
    let token = cadre.ok(&["token", "create", "--role", "admin"]);
    let token = token.trim().to_owned();
    let secret = cadre.files.path().join("scim-token.txt");
    std::fs::write(&secret, format!("{}\n", scim.token())).unwrap();
    let target = cadre.json(&[
        "target",
        "add-scim",
        "--name",
        "App",
        "--url",
        &format!("http://127.0.0.1:{}/v2", proxy.port),
        "--secret-file",
        secret.to_str().unwrap(),
    ]);
    let target_id = target[0]["id"].as_str().unwrap().to_owned();

    // The first server: killed by the proxy once the SCIM server has made the user.
    let client = client();
    let port = free_port();
    proxy.aim_at(cadre.serve(port, "first"));
    until_serving(&client, port, &cadre, "first").await;
    let external_id = "ada-kill";
    let answer = client
        .post(format!("http://127.0.0.1:{port}/api/processes/create_user"))
        .bearer_auth(&token)
        .json(&json!([
            {"product": USER_INTERNAL_PRODUCT_ID},
            {"user_id": external_id, "username": "ada", "email": "ada@example.org",
             "firstname": "Ada", "lastname": "Lovelace"},
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::CREATED);
    let started: Value = answer.json().await.unwrap();
    let process = started["id"].as_str().unwrap().to_owned();

    let status = proxy.killed().await;
    assert_eq!(
        status.signal(),
        Some(9),
        "the server was running until the proxy killed it: {status:?}; its log:\n{}",
        cadre.log_text("first")
    );
    let remote = remote_users(&client, &scim, external_id).await;
    assert_eq!(remote.len(), 1, "the push made the user: {remote:?}");
    let remote_id = remote[0]["id"].as_str().unwrap().to_owned();
    let shown = cadre.json(&["process", "show", &process]);
    assert_ne!(
        shown["last_status"], "completed",
        "killed before its push committed: {shown}"
    );

    // The second server takes the process over once the first one's lease has expired.
    let port = free_port();
    let _second = Serving(cadre.serve(port, "second"));
    until_serving(&client, port, &cadre, "second").await;
    let deadline = Instant::now() + TIMEOUT;
    let detail = loop {
        let detail: Value = client
            .get(format!("http://127.0.0.1:{port}/api/processes/{process}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if detail["last_status"] == "completed" {
            break detail;
        }
        assert!(
            Instant::now() < deadline,
            "process {process} is {} at {} ({}) after {TIMEOUT:?}; the second server's log:\n{}",
            detail["last_status"],
            detail["last_step"],
            detail["failed_reason"],
            cadre.log_text("second")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let remote = remote_users(&client, &scim, external_id).await;
    assert_eq!(
        remote.len(),
        1,
        "one remote user, not a second: {remote:#?}"
    );
    let user = &remote[0];
    assert_eq!(user["id"], remote_id.as_str(), "{user:#}");
    assert_eq!(user["userName"], "ada", "{user:#}");
    assert_eq!(user["externalId"], external_id, "{user:#}");
    let emails: Vec<&str> = user["emails"]
        .as_array()
        .unwrap_or_else(|| panic!("no emails: {user:#}"))
        .iter()
        .filter_map(|email| email["value"].as_str())
        .collect();
    assert_eq!(emails, ["ada@example.org"], "{user:#}");

    let subscription = detail["current_state"]["subscription_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no subscription in {detail:#}"));
    let answer = client
        .get(format!(
            "http://127.0.0.1:{port}/api/subscriptions/{subscription}"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{answer:?}");
    let subscription: Value = answer.json().await.unwrap();
    let targets = subscription["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 1, "{subscription:#}");
    assert_eq!(targets[0]["target_id"], target_id.as_str());
    assert_eq!(targets[0]["remote_id"], remote_id.as_str(), "{targets:#?}");
    assert_eq!(targets[0]["last_error"], Value::Null, "{targets:#?}");
    assert_eq!(subscription["status"], "active", "{subscription:#}");
}

/// `cadre target reconcile`: a dry run prints the plan and changes nothing; the run repairs the
/// target; an unknown target is an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cadre_target_reconcile_plans_then_repairs_an_outbound_target() {
    let Some(scim) = ScimServer::start() else {
        return;
    };
    let cadre = Cadre::new().await;
    let secret = cadre.files.path().join("scim-token.txt");
    std::fs::write(&secret, scim.token()).unwrap();
    let url = scim.base_url();
    let secret = secret.to_str().unwrap();
    let target = cadre.json(&[
        "target",
        "add-scim",
        "--name",
        "App",
        "--url",
        &url,
        "--secret-file",
        secret,
    ]);
    let target_id = target[0]["id"].as_str().unwrap().to_owned();
    let product = json!({"product": USER_INTERNAL_PRODUCT_ID}).to_string();
    let user = json!({"user_id": "bob", "username": "bob", "email": "bob@example.org"});
    cadre.ok(&[
        "workflow",
        "start",
        "create_user",
        &product,
        &user.to_string(),
    ]);

    // The reconcile's worker runs the create first: bob is pushed, and then unchanged.
    let report = cadre.json(&["target", "reconcile", &target_id, "--dry-run"]);
    assert_eq!(
        (report["unchanged"].as_u64(), report["created"].as_u64()),
        (Some(1), Some(0)),
        "{report}"
    );
    let client = client();
    let [bob] = remote_users(&client, &scim, "bob")
        .await
        .try_into()
        .unwrap();

    // Someone deletes bob in the application.
    let deleted = client
        .delete(format!(
            "{}/Users/{}",
            scim.base_url(),
            bob["id"].as_str().unwrap()
        ))
        .bearer_auth(scim.token())
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());
    let plan = cadre.json(&["target", "reconcile", &target_id, "--dry-run"]);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(
        plan["rows"],
        json!([{"kind": "user", "external_id": "bob", "action": "create"}])
    );
    assert!(
        remote_users(&client, &scim, "bob").await.is_empty(),
        "a dry run changes nothing"
    );
    let repair = cadre.json(&["target", "reconcile", &target_id]);
    assert_eq!(repair["created"], 1, "{repair}");
    assert_eq!(
        remote_users(&client, &scim, "bob").await.len(),
        1,
        "made again"
    );

    let unknown = cadre
        .command(&["target", "reconcile", &uuid::Uuid::now_v7().to_string()])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("not found"),
        "{unknown:?}"
    );
}
