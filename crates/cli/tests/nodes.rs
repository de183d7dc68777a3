//! Several `cadre serve` nodes on one PostgreSQL, and the database failing under them: a node
//! killed with SIGKILL, the database restarted, and a failover to a synchronous standby. In each,
//! clients keep starting processes through the nodes' API, and every process the API accepted
//! (201) completes, each of its steps logged once.
//!
//! These run on the PostgreSQL pass: with `DATABASE_URL=postgres://…`, and for the restart and
//! the failover also PostgreSQL's server programs (`initdb`, `pg_ctl`, `pg_basebackup`; Debian's
//! `postgresql` package, found under `/usr/lib/postgresql/*/bin` or in `PG_BIN`), with which the
//! tests make clusters of their own. Without them they say what they skipped; with
//! `REQUIRE_CLUSTER_TESTS=1` (which `.ci/run` sets for its PostgreSQL pass) a missing program
//! fails them instead.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cadre_domain::{Clock, ProcessQuery, ProcessStatus, Role, SystemClock};
use cadre_migrations::demo::USER_GROUP_PRODUCT_ID;
use serde_json::json;
use uuid::Uuid;

/// The PostgreSQL server of `DATABASE_URL`, or `None` (said) on the SQLite pass.
fn postgres_server(test: &str) -> Option<String> {
    let url = cadre_store::testing::postgres_url();
    if url.is_none() {
        eprintln!(
            "SKIPPED {test}: it runs on PostgreSQL only; set DATABASE_URL=postgres://… (as \
             .ci/run does) to run it."
        );
    }
    url
}

/// The folder of PostgreSQL's server programs, or `None` (said) when there is none.
fn postgres_programs(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PG_BIN").map(PathBuf::from).or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path().join("bin"))
            .filter(|bin| bin.join("initdb").exists())
            .collect();
        versions.sort_by_key(|bin| {
            bin.parent()
                .and_then(|version| version.file_name()?.to_str()?.parse::<u32>().ok())
        });
        versions.pop()
    });
    if found.is_none() {
        let required = std::env::var("REQUIRE_CLUSTER_TESTS").is_ok_and(|value| value == "1");
        assert!(
            !required,
            "REQUIRE_CLUSTER_TESTS=1, but PostgreSQL's server programs are not here"
        );
        eprintln!(
            "SKIPPED {test}: it makes PostgreSQL clusters of its own and needs initdb, pg_ctl \
             and pg_basebackup: install Debian's postgresql package or set PG_BIN."
        );
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `program` as the `postgres` user when the tests run as root (initdb refuses root).
fn as_postgres(program: &Path) -> Command {
    if rustix::process::geteuid().is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn must(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A PostgreSQL cluster of the test's own, in a temporary folder, stopped when dropped.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
}

impl Cluster {
    /// A new cluster in `root/name`, set up to be a primary with a synchronous standby named
    /// `standby` when `replicated`; not started.
    fn init(bin: &Path, root: &Path, name: &str, replicated: bool) -> Self {
        let data = root.join(name);
        must(
            as_postgres(&bin.join("initdb"))
                .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "-D"])
                .arg(&data),
        );
        let mut settings =
            String::from("listen_addresses = '127.0.0.1'\nmax_connections = 200\nfsync = off\n");
        settings.push_str(&format!("unix_socket_directories = '{}'\n", root.display()));
        if replicated {
            settings.push_str(
                "wal_level = replica\nmax_wal_senders = 4\n\
                 synchronous_standby_names = 'standby'\nsynchronous_commit = on\n",
            );
        }
        append(&data.join("postgresql.conf"), &settings);
        Self {
            bin: bin.to_owned(),
            data,
            port: 0,
        }
    }

    /// A standby of `primary` in `root/name`, copied with pg_basebackup; not started.
    fn standby_of(primary: &Cluster, root: &Path, name: &str) -> Self {
        let data = root.join(name);
        must(
            as_postgres(&primary.bin.join("pg_basebackup"))
                .args(["-h", "127.0.0.1", "-U", "postgres", "-X", "stream", "-R"])
                .args(["-p", &primary.port.to_string(), "-D"])
                .arg(&data),
        );
        append(
            &data.join("postgresql.auto.conf"),
            &format!(
                "primary_conninfo = 'host=127.0.0.1 port={} user=postgres application_name=standby'\n",
                primary.port
            ),
        );
        Self {
            bin: primary.bin.clone(),
            data,
            port: 0,
        }
    }

    fn pg_ctl(&self) -> Command {
        let mut command = as_postgres(&self.bin.join("pg_ctl"));
        command.arg("-D").arg(&self.data);
        command
    }

    fn start(&mut self, port: u16) {
        self.port = port;
        must(
            self.pg_ctl()
                .args(["-w", "-l"])
                .arg(self.data.join("log"))
                .args(["-o", &format!("-p {port}"), "start"]),
        );
    }

    /// Stops the cluster: `fast` (clients disconnected, a clean shutdown) or `immediate` (as a
    /// crash).
    fn stop(&self, mode: &str) {
        must(self.pg_ctl().args(["-w", "-m", mode, "stop"]));
    }

    fn promote(&self) {
        must(self.pg_ctl().args(["-w", "promote"]));
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .pg_ctl()
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// A folder the `postgres` user may write in (when the tests run as root), removed when dropped.
fn cluster_root() -> tempfile::TempDir {
    let root = tempfile::Builder::new()
        .prefix("cadre-nodes-")
        .tempdir_in("/tmp")
        .unwrap();
    if rustix::process::geteuid().is_root() {
        must(Command::new("chown").arg("postgres").arg(root.path()));
    }
    root
}

/// A `cadre serve` child process with two workers and a two-second lease, on a free port.
struct Node {
    child: Child,
    base: String,
    _files: tempfile::TempDir,
}

impl Node {
    fn start(database_url: &str) -> Self {
        let port = free_port();
        let files = tempfile::tempdir().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cadre"))
            .args([
                "serve",
                "--port",
                &port.to_string(),
                "--database-url",
                database_url,
            ])
            .env_remove("DATABASE_URL")
            .env_remove("CADRE_CONFIG")
            .env("CADRE_WORKERS", "2")
            .env("CADRE_LEASE_SECONDS", "2")
            .env("CADRE_FILES_DIR", files.path().join("files"))
            .env("CADRE_MAIL_DIR", files.path().join("mail"))
            .env("CADRE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _files: files,
        }
    }

    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Migrates the database at `url` and issues an admin token there.
async fn admin_token(url: &str) -> String {
    let engine = cadre_server::Cadre::new().open(url).await.unwrap();
    cadre_server::auth::issue_token(
        engine.store().as_ref(),
        cadre_server::auth::NewToken {
            name: "nodes",
            role: Role::Admin,
            user: None,
            expires_at: None,
        },
        "test",
        SystemClock.now(),
    )
    .await
    .unwrap()
    .plain
}

fn client() -> reqwest::Client {
    cadre_registration::delivery::use_ring_for_tls();
    reqwest::Client::new()
}

/// Waits until every node answers its health check.
async fn until_ready(client: &reqwest::Client, nodes: &[Node]) {
    for node in nodes {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let health = client.get(format!("{}/api/health", node.base)).send().await;
            if health.is_ok_and(|answer| answer.status().is_success()) {
                break;
            }
            assert!(Instant::now() < deadline, "{} never answered", node.base);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Clients starting `create_user_group` processes through the nodes in turn, until stopped;
/// they keep the ids of the processes the API accepted.
struct Load {
    stop: Arc<AtomicBool>,
    accepted: Arc<std::sync::Mutex<Vec<Uuid>>>,
    refused: Arc<AtomicUsize>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(client: &reqwest::Client, bases: &[String], token: &str, clients: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(std::sync::Mutex::new(Vec::new()));
        let refused = Arc::new(AtomicUsize::new(0));
        let sent = Arc::new(AtomicUsize::new(0));
        let clients = (0..clients)
            .map(|_| {
                let (client, bases, token) = (client.clone(), bases.to_vec(), token.to_owned());
                let (stop, accepted, refused, sent) = (
                    Arc::clone(&stop),
                    Arc::clone(&accepted),
                    Arc::clone(&refused),
                    Arc::clone(&sent),
                );
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let n = sent.fetch_add(1, Ordering::Relaxed);
                        let base = &bases[n % bases.len()];
                        let pages = json!([{"product": USER_GROUP_PRODUCT_ID},
                                           {"user_group_id": format!("g{n}"),
                                            "user_group_name": format!("Group {n}")}]);
                        let answer = client
                            .post(format!("{base}/api/processes/create_user_group"))
                            .bearer_auth(&token)
                            .json(&pages)
                            .timeout(Duration::from_secs(10))
                            .send()
                            .await;
                        match answer {
                            Ok(answer) if answer.status() == reqwest::StatusCode::CREATED => {
                                let body: serde_json::Value = answer.json().await.unwrap();
                                let id = body["id"].as_str().unwrap().parse().unwrap();
                                accepted.lock().unwrap().push(id);
                            }
                            // A node down or the database failing over: not accepted.
                            _ => {
                                refused.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            accepted,
            refused,
            clients,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }

    /// Stops the clients; returns the accepted process ids and how many starts were refused.
    async fn finish(self) -> (Vec<Uuid>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for client in self.clients {
            client.await.unwrap();
        }
        let accepted = self.accepted.lock().unwrap().clone();
        (accepted, self.refused.load(Ordering::Relaxed))
    }
}

/// Waits until every process in the database at `url` has completed, then checks that each
/// accepted one is among them with each step logged once.
async fn every_process_completes_once(url: &str, accepted: &[Uuid]) {
    use cadre_domain::ProcessRepository;
    let store = cadre_store::testing::store_at(url).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let open = store
            .list_processes(&ProcessQuery::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|process| process.status != ProcessStatus::Completed)
            .map(|process| (process.id, process.status, process.failed_reason))
            .collect::<Vec<_>>();
        if open.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "processes not completed: {open:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for id in accepted {
        let process = store.process(*id).await.unwrap();
        assert_eq!(process.status, ProcessStatus::Completed, "{id}");
        let steps = store.process_steps(*id).await.unwrap();
        let keys: Vec<&str> = steps.iter().map(|step| step.step_key.as_str()).collect();
        let distinct: BTreeSet<&str> = keys.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            keys.len(),
            "{id} logged a step twice: {keys:?}"
        );
        assert_eq!(keys.last(), Some(&"done"), "{id}: {keys:?}");
    }
}

/// Three nodes share a database; one is killed with SIGKILL while clients start processes
/// through all three. The other two take over its processes once their leases expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_the_work_and_outlive_one_killed() {
    let test = "three_nodes_share_the_work_and_outlive_one_killed";
    if postgres_server(test).is_none() {
        return;
    }
    let database = cadre_store::testing::scratch_database().await;
    let url = database.url().to_owned();
    let token = admin_token(&url).await;
    let mut nodes: Vec<Node> = (0..3).map(|_| Node::start(&url)).collect();
    let client = client();
    until_ready(&client, &nodes).await;
    let bases: Vec<String> = nodes.iter().map(|node| node.base.clone()).collect();

    let load = Load::start(&client, &bases, &token, 6);
    while load.accepted() < 60 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nodes[1].kill();
    let killed_at = load.accepted();
    while load.accepted() < killed_at + 60 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (accepted, refused) = load.finish().await;
    eprintln!("{} accepted, {refused} refused", accepted.len());
    every_process_completes_once(&url, &accepted).await;
}

/// The database restarts while a node's workers run and clients start processes: the node
/// reconnects (its workers back off meanwhile), and every accepted process completes once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_loses_no_accepted_process() {
    let test = "a_database_restart_loses_no_accepted_process";
    if postgres_server(test).is_none() {
        return;
    }
    let Some(bin) = postgres_programs(test) else {
        return;
    };
    let root = cluster_root();
    let mut cluster = Cluster::init(&bin, root.path(), "data", false);
    cluster.start(free_port());
    let url = cluster.url();
    let token = admin_token(&url).await;
    let nodes = vec![Node::start(&url)];
    let client = client();
    until_ready(&client, &nodes).await;

    let load = Load::start(&client, &[nodes[0].base.clone()], &token, 4);
    while load.accepted() < 40 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.stop("fast");
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.start(cluster.port);
    let restarted_at = load.accepted();
    let deadline = Instant::now() + Duration::from_secs(60);
    while load.accepted() < restarted_at + 40 {
        assert!(
            Instant::now() < deadline,
            "no process was accepted after the restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (accepted, refused) = load.finish().await;
    eprintln!("{} accepted, {refused} refused", accepted.len());
    every_process_completes_once(&url, &accepted).await;
}

/// A failover drill: the primary has a synchronous hot standby; mid-run the primary stops as
/// if it crashed, the standby is promoted and brought up at the primary's address, and the
/// nodes carry on. No process the API accepted is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_to_a_synchronous_standby_loses_no_accepted_process() {
    let test = "a_failover_to_a_synchronous_standby_loses_no_accepted_process";
    if postgres_server(test).is_none() {
        return;
    }
    let Some(bin) = postgres_programs(test) else {
        return;
    };
    let root = cluster_root();
    let mut primary = Cluster::init(&bin, root.path(), "primary", true);
    let address = free_port();
    primary.start(address);
    let mut standby = Cluster::standby_of(&primary, root.path(), "standby");
    standby.start(free_port());
    let url = primary.url();
    // Commits wait for the standby from here on: it must be streaming as the synchronous one.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = Command::new(bin.join("psql"))
            .args([&url, "-Atc", "SELECT sync_state FROM pg_stat_replication"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&state.stdout).trim() == "sync" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the standby never became synchronous"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token = admin_token(&url).await;
    let nodes = vec![Node::start(&url), Node::start(&url)];
    let client = client();
    until_ready(&client, &nodes).await;
    let bases: Vec<String> = nodes.iter().map(|node| node.base.clone()).collect();

    let load = Load::start(&client, &bases, &token, 4);
    while load.accepted() < 40 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    primary.stop("immediate");
    let lost_at = load.accepted();
    standby.promote();
    // The new primary has no standby of its own: commits must not wait for one (what a
    // failover manager such as Patroni or pg_auto_failover does at this point).
    append(
        &standby.data.join("postgresql.auto.conf"),
        "synchronous_standby_names = ''\n",
    );
    standby.stop("fast");
    standby.start(address);
    let deadline = Instant::now() + Duration::from_secs(60);
    while load.accepted() < lost_at + 40 {
        assert!(
            Instant::now() < deadline,
            "no process was accepted after the failover"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (accepted, refused) = load.finish().await;
    eprintln!("{} accepted, {refused} refused", accepted.len());
    every_process_completes_once(&standby.url(), &accepted).await;
}
