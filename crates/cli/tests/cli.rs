//! The `cadre` binary as an operator uses it: real processes over a scratch database (SQLite,
//! or PostgreSQL with `DATABASE_URL`), checking output and exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::{Command, Output};

use cadre_migrations::demo::{USER_GROUP_PRODUCT_ID, USER_INTERNAL_PRODUCT_ID};
use serde_json::{Value, json};

struct Cadre {
    database: cadre_store::testing::ScratchDatabase,
    files: tempfile::TempDir,
}

impl Cadre {
    async fn new() -> Self {
        Self {
            database: cadre_store::testing::scratch_database().await,
            files: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cadre"))
            .args(args)
            .arg("--database-url")
            .arg(self.database.url())
            .env_remove("DATABASE_URL")
            .env_remove("CADRE_CONFIG")
            .env("CADRE_FILES_DIR", self.files.path().join("volume"))
            .output()
            .expect("cadre runs")
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "cadre {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs a command that must fail; returns its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert_eq!(output.status.code(), Some(1), "cadre {args:?} should fail");
        String::from_utf8(output.stderr).unwrap()
    }

    /// `cadre serve` on `port` over this database and volume, with the settings `env`.
    fn serve(&self, port: u16, env: &[(&str, &str)]) -> std::process::Child {
        Command::new(env!("CARGO_BIN_EXE_cadre"))
            .args(["serve", "--port", &port.to_string(), "--database-url"])
            .arg(self.database.url())
            .env_remove("DATABASE_URL")
            .env_remove("CADRE_CONFIG")
            .env("CADRE_FILES_DIR", self.files.path().join("volume"))
            .env("CADRE_MAIL_DIR", self.files.path().join("mail"))
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Polls process `id` (every 100 ms, `tries` times at most) until a worker completed it.
    async fn until_completed(&self, id: &str, tries: u32) {
        let mut status = Value::Null;
        for _ in 0..tries {
            status = self.json(&["process", "show", id])["last_status"].clone();
            if status == "completed" {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("process {id} is {status}, not completed");
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).unwrap()
    }
}

fn group_pages(group_id: &str) -> [String; 2] {
    [
        json!({"product": USER_GROUP_PRODUCT_ID}).to_string(),
        json!({"user_group_id": group_id, "user_group_name": group_id}).to_string(),
    ]
}

#[tokio::test]
async fn a_token_is_shown_once_and_listed_without_its_secret() {
    let cadre = Cadre::new().await;
    let created = cadre.json(&["token", "create", "--name", "ops", "--role", "admin"]);
    let plain = created["token"].as_str().unwrap();
    assert!(plain.starts_with("cadre_"), "{plain}");

    let listed = cadre.json(&["token", "list"]);
    assert_eq!(listed[0]["name"], "ops");
    assert_eq!(listed[0]["role"], "admin");
    let text = listed.to_string();
    assert!(
        !text.contains(&plain["cadre_".len() + 33..]),
        "secret leaked"
    );
    assert!(listed[0].get("secret_hash").is_none());

    let id = created["id"].as_str().unwrap();
    cadre.ok(&["token", "revoke", id]);
    assert_ne!(cadre.json(&["token", "list"])[0]["revoked_at"], Value::Null);

    let error = cadre.fails(&["token", "create", "--name", "x", "--role", "root"]);
    assert!(
        error.contains("\"root\" is not one of admin, user, scim"),
        "{error}"
    );
}

#[tokio::test]
async fn a_workflow_is_started_listed_shown_and_aborted() {
    let cadre = Cadre::new().await;
    let [product, group] = group_pages("staff");
    let started = cadre.json(&["workflow", "start", "create_user_group", &product, &group]);
    let id = started["id"].as_str().unwrap().to_owned();

    let listed = cadre.json(&["process", "list", "--status", "created"]);
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["process_id"], id.as_str());
    assert!(
        listed["items"][0]["created_by"]
            .as_str()
            .unwrap()
            .starts_with("cli:")
    );

    let table = cadre.ok(&["process", "show", &id]);
    assert!(table.contains("create_user_group"), "{table}");
    assert!(table.contains("pending"), "{table}");

    let error = cadre.fails(&["process", "skip", &id]);
    assert!(
        error.contains("is created"),
        "nothing failed to skip: {error}"
    );
    cadre.ok(&["process", "abort", &id]);
    let shown = cadre.json(&["process", "show", &id]);
    assert_eq!(shown["last_status"], "aborted");
    let error = cadre.fails(&["process", "abort", &id]);
    assert!(error.contains("is aborted"), "{error}");
}

#[tokio::test]
async fn bad_input_is_explained_with_a_non_zero_exit() {
    let cadre = Cadre::new().await;
    let product = json!({"product": USER_GROUP_PRODUCT_ID}).to_string();
    let error = cadre.fails(&[
        "workflow",
        "start",
        "create_user_group",
        &product,
        r#"{"user_group_id": ".x", "user_group_name": "X"}"#,
    ]);
    assert!(error.contains("page 1 is not valid"), "{error}");
    assert!(error.contains("user_group_id"), "{error}");

    let error = cadre.fails(&["workflow", "start", "create_user_group", &product]);
    assert!(error.contains("the form needs another page"), "{error}");

    let error = cadre.fails(&["workflow", "start", "create_user_group", "{not json"]);
    assert!(error.contains("page 0 is not valid JSON"), "{error}");

    let error = cadre.fails(&["workflow", "start", "no_such_workflow"]);
    assert!(error.contains("does not exist"), "{error}");

    let error = cadre.fails(&["subscription", "show", &uuid_nil()]);
    assert!(error.contains("not found"), "{error}");

    let error = cadre.fails(&["process", "list", "--status", "sleeping"]);
    assert!(error.contains("unknown process status"), "{error}");

    let usage = cadre.run(&["process", "frobnicate"]);
    assert_eq!(usage.status.code(), Some(2), "clap's usage errors exit 2");
}

fn uuid_nil() -> String {
    "00000000-0000-0000-0000-000000000000".to_owned()
}

#[tokio::test]
async fn tables_are_the_default_output() {
    let cadre = Cadre::new().await;
    let workflows = cadre.ok(&["workflow", "list"]);
    assert!(workflows.contains("create_user_group"), "{workflows}");
    assert!(workflows.contains("TERMINATE"), "{workflows}");
    let subscriptions = cadre.ok(&["subscription", "list"]);
    assert!(subscriptions.contains("0 of 0 shown"), "{subscriptions}");
}

#[tokio::test]
async fn workers_only_runs_processes_without_listening_and_stops_on_sigterm() {
    let cadre = Cadre::new().await;
    let [product, group] = group_pages("staff");
    let started = cadre.json(&["workflow", "start", "create_user_group", &product, &group]);
    let id = started["id"].as_str().unwrap().to_owned();

    let mut server = Command::new(env!("CARGO_BIN_EXE_cadre"))
        .args(["serve", "--workers-only", "--port", "1", "--database-url"])
        .arg(cadre.database.url())
        .env_remove("DATABASE_URL")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    cadre.until_completed(&id, 100).await;

    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = server.wait().unwrap();
    assert!(exit.success(), "a graceful shutdown exits 0: {exit:?}");
}

/// An active user made through the engine on the same database; returns its subscription id.
async fn active_user(database_url: &str) -> String {
    let engine = cadre_server::Cadre::new().open(database_url).await.unwrap();
    let run = |workflow: &'static str, pages: Vec<Value>| {
        let engine = engine.clone();
        async move {
            let process = engine.start(workflow, &pages, "test").await.unwrap();
            engine.run_until_idle().await.unwrap();
            let process = engine.store().process(process.id).await.unwrap();
            process.state["subscription_id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let staff = run(
        "create_user_group",
        vec![
            json!({"product": USER_GROUP_PRODUCT_ID}),
            json!({"user_group_id": "staff", "user_group_name": "Staff"}),
        ],
    )
    .await;
    run(
        "create_user",
        vec![
            json!({"product": USER_INTERNAL_PRODUCT_ID}),
            json!({"user_id": "ada", "username": "ada", "email": "ada@example.org",
                   "user_group_ids": [staff]}),
        ],
    )
    .await
}

#[tokio::test]
async fn workflow_groups_and_their_files_from_the_command_line() {
    let cadre = Cadre::new().await;
    let ada = active_user(cadre.database.url()).await;
    let group = cadre.json(&[
        "workflow-group",
        "create",
        "--workflow",
        "create_user",
        "--name",
        "Team",
        "--owner",
        &ada,
        "--identifier",
        "team",
    ]);
    assert_eq!(group["id"], "team");
    assert_eq!(group["members"], json!([ada]));
    let stderr = cadre.fails(&[
        "workflow-group",
        "create",
        "--workflow",
        "create_user",
        "--name",
        " team ",
        "--owner",
        &ada,
    ]);
    assert!(
        stderr.contains("already exists in this workflow"),
        "{stderr}"
    );

    let local = cadre.files.path().join("rows.csv");
    std::fs::write(&local, "a,b\n1,2\n").unwrap();
    let uploaded = cadre.json(&["workflow-group", "upload", "team", local.to_str().unwrap()]);
    let file = &uploaded["items"][0];
    assert_eq!(file["name"], "rows.csv");
    assert_eq!(file["size"], 8);
    let listed = cadre.json(&["workflow-group", "files", "team"]);
    assert_eq!(listed["items"][0]["id"], file["id"]);

    let copy = cadre.files.path().join("copy.csv");
    cadre.ok(&[
        "workflow-group",
        "download",
        "team",
        file["id"].as_str().unwrap(),
        "--output",
        copy.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), "a,b\n1,2\n");

    cadre.ok(&["workflow-group", "delete", "team"]);
    let stderr = cadre.fails(&["workflow-group", "show", "team"]);
    assert!(stderr.contains("workflow group team not found"), "{stderr}");
    let created = cadre.json(&["token", "create", "--role", "user", "--user", &ada]);
    assert_eq!(created["name"], "user", "the name defaults to the role");
    assert_eq!(created["user_id"], json!(ada));
    let stderr = cadre.fails(&["token", "create", "--user", &uuid::Uuid::nil().to_string()]);
    assert!(
        stderr.contains("is not an active User subscription"),
        "{stderr}"
    );
}

#[tokio::test]
async fn provision_loads_a_file_reports_every_row_and_refuses_bad_input_whole() {
    let cadre = Cadre::new().await;
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.csv");
    std::fs::write(
        &users,
        "user_id,firstname,lastname,email,auth_id,user_groups\n\
         u1,Ann,One,u1@example.com,,staff|ops\n\
         u2,Bob,Two,u2@example.com,sso-2,staff\n",
    )
    .unwrap();
    let file = users.to_str().unwrap();

    let planned = cadre.json(&["provision", "users", "--full", "--dry-run", file]);
    assert_eq!(planned["dry_run"], true);
    assert_eq!(planned["counts"]["created"], 4, "{planned}");
    assert_eq!(
        cadre.json(&["subscription", "list"])["total"],
        0,
        "a dry run writes nothing"
    );

    let report = cadre.json(&["provision", "users", "--full", file]);
    assert_eq!(report["status"], "completed");
    let mut outcomes: Vec<(String, String)> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["id"].as_str().unwrap().to_owned(),
                row["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    outcomes.sort();
    assert_eq!(
        outcomes,
        [
            ("ops".to_owned(), "created".to_owned()),
            ("staff".to_owned(), "created".to_owned()),
            ("u1".to_owned(), "created".to_owned()),
            ("u2".to_owned(), "created".to_owned()),
        ]
    );
    let table = cadre.ok(&["provision", "users", "--full", file]);
    assert!(
        table.contains("0 created, 0 updated, 2 unchanged"),
        "the same file again changes nothing: {table}"
    );

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"user_id\": \"u3\", \"firstname\": null, \"lastname\": null, \"email\": \"x\", \"auth_id\": null, \"is_active\": \"maybe\"}\n\
         {\"user_id\": \".u4\", \"firstname\": null, \"lastname\": null, \"email\": \"u4@example.com\", \"auth_id\": null, \"is_active\": true}\n",
    )
    .unwrap();
    let error = cadre.fails(&["provision", "users", "--incremental", bad.to_str().unwrap()]);
    assert!(error.contains("row 1, column is_active"), "{error}");
    assert!(error.contains("row 1, column email"), "{error}");
    assert!(error.contains("row 2, column user_id"), "{error}");
    assert!(error.contains("nothing was loaded"), "{error}");
    assert_eq!(cadre.json(&["subscription", "list"])["total"], 4);
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_stamped_in_utc() {
    let cadre = Cadre::new().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_cadre"))
        .args(["serve", "--port", &port.to_string(), "--database-url"])
        .arg(cadre.database.url())
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .env("CADRE_LOG_FORMAT", "json")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(server.stderr.take().unwrap()));
    let listening = lines
        .by_ref()
        .map(|line| line.unwrap())
        .map(|line| {
            serde_json::from_str::<Value>(&line).unwrap_or_else(|_| panic!("not JSON: {line}"))
        })
        .inspect(|event| {
            let at = event["timestamp"].as_str().unwrap();
            assert!(at.ends_with('Z'), "UTC: {at}");
            assert!(
                event["level"].is_string() && event["target"].is_string(),
                "{event}"
            );
        })
        .find(|event| {
            event["fields"]["message"]
                .as_str()
                .is_some_and(|message| message.starts_with("listening on"))
        });
    assert!(listening.is_some(), "the server said where it listens");
    // The shutdown signal is watched from the server's first poll on, just after that line.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(server.wait().unwrap().success());
}

#[tokio::test]
async fn the_first_admin_is_made_with_a_password_read_from_standard_input() {
    use std::io::Write;
    let cadre = Cadre::new().await;
    let create = |password: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cadre"))
            .args([
                "admin",
                "create",
                "--username",
                "ada",
                "--email",
                "ada@example.org",
                "--database-url",
            ])
            .arg(cadre.database.url())
            .env_remove("DATABASE_URL")
            .env_remove("CADRE_CONFIG")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    };
    let weak = create("ada12345");
    assert!(!weak.status.success());
    assert!(
        String::from_utf8_lossy(&weak.stderr).contains("the password must be at least"),
        "{}",
        String::from_utf8_lossy(&weak.stderr)
    );
    let guessable = create("ada@example.org ada");
    assert!(
        !guessable.status.success(),
        "a password made of the user's own name is refused"
    );

    let made = create("correct horse battery staple");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    assert!(String::from_utf8_lossy(&made.stdout).contains("ada is an admin"));
    let users = cadre.json(&["subscription", "list", "--product-type", "User"]);
    let ada: uuid::Uuid = users["items"][0]["subscription_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let groups = cadre.json(&["subscription", "list", "--product-type", "UserGroup"]);
    assert!(
        groups["items"][0]["description"]
            .as_str()
            .unwrap()
            .contains("Admins"),
        "{groups}"
    );
    let engine = cadre_server::Cadre::new()
        .open(cadre.database.url())
        .await
        .unwrap();
    let store = engine.store();
    assert_eq!(
        store.roles(ada).await.unwrap(),
        vec![cadre_domain::Role::Admin]
    );
    let hash = store.credentials(ada).await.unwrap().expect("a password");
    let passwords =
        cadre_registration::Passwords::new(cadre_accounts::AccountSettings::default().argon2, 1)
            .unwrap();
    assert!(
        passwords
            .verify("correct horse battery staple", &hash)
            .await
            .is_ok_and(|verified| matches!(
                verified,
                cadre_registration::password::Verified::Match { .. }
            )),
        "the password is stored as its argon2id hash"
    );
    let again = create("correct horse battery staple");
    assert!(!again.status.success(), "the user name is taken");
}

/// Sends one HTTP/1.1 request with a JSON body to `127.0.0.1:port`; returns the whole answer.
fn http(port: u16, method: &str, path: &str, token: &str, body: &str) -> String {
    http_as(port, method, path, token, "application/json", body)
}

#[tokio::test]
async fn the_form_protocol_is_no_error_in_the_log() {
    let cadre = Cadre::new().await;
    let token = cadre.ok(&["token", "create", "--role", "admin"]);
    let token = token.trim();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_cadre"))
        .args(["serve", "--port", &port.to_string(), "--database-url"])
        .arg(cadre.database.url())
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .env("CADRE_LOG_FORMAT", "json")
        .env("CADRE_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = server.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    lines
        .by_ref()
        .map(|line| line.unwrap())
        .find(|line| line.contains("listening on"))
        .expect("the server listens");

    // The form's first page (510), a page that does not validate (400), and an unknown path.
    let next_page = http(
        port,
        "POST",
        "/api/processes/create_user_group",
        token,
        "[]",
    );
    assert!(next_page.starts_with("HTTP/1.1 510"), "{next_page}");
    let invalid = http(
        port,
        "POST",
        "/api/processes/create_user_group",
        token,
        r#"[{"product": "not a product"}]"#,
    );
    assert!(invalid.starts_with("HTTP/1.1 400"), "{invalid}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(server.wait().unwrap().success());
    let errors: Vec<String> = lines
        .map(|line| line.unwrap())
        .filter(|line| {
            serde_json::from_str::<Value>(line).is_ok_and(|event| event["level"] == "ERROR")
        })
        .collect();
    assert!(errors.is_empty(), "logged as errors: {errors:#?}");
}

#[tokio::test]
async fn what_cadre_creates_is_for_its_own_user_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("fresh.db");
    let output = Command::new(env!("CARGO_BIN_EXE_cadre"))
        .args(["migrate", "--database-url"])
        .arg(format!("sqlite://{}?mode=rwc", database.display()))
        .env_remove("DATABASE_URL")
        .env_remove("CADRE_CONFIG")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mode = std::fs::metadata(&database).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the database is {mode:o}");
}

#[tokio::test]
async fn metrics_address_serves_metrics_to_anyone_there_even_without_the_api() {
    let cadre = Cadre::new().await;
    let [product, group] = group_pages("metrics");
    let started = cadre.json(&["workflow", "start", "create_user_group", &product, &group]);
    let id = started["id"].as_str().unwrap().to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_cadre"))
        .args(["serve", "--workers-only", "--port", "1", "--database-url"])
        .arg(cadre.database.url())
        .env_remove("DATABASE_URL")
        .env("CADRE_METRICS_ADDRESS", format!("127.0.0.1:{port}"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    cadre.until_completed(&id, 100).await;

    let answer = http(port, "GET", "/metrics", "", "");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("cadre_processes{status=\"completed\"} 1\n"),
        "{answer}"
    );
    assert!(
        answer.contains(
            "cadre_step_duration_seconds_count{workflow=\"create_user_group\",step=\"create_subscription\",status=\"success\"} 1\n"
        ),
        "the workers of this process told their steps: {answer}"
    );
    let api = http(port, "GET", "/api/health", "", "");
    assert!(
        api.starts_with("HTTP/1.1 404"),
        "only /metrics there: {api}"
    );

    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(server.wait().unwrap().success());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `cadre serve` answers on `port`.
async fn until_serving(port: u16) {
    for _ in 0..300 {
        // A bound socket takes connections before the server has finished starting (it
        // recovers interrupted uploads first): only an answer says that it has.
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && http(port, "GET", "/api/health", "", "").starts_with("HTTP/1.1 200")
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("cadre serve never answered on {port}");
}

/// The regular files under `folder` (none when it does not exist).
fn files_under(folder: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![folder.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// `cadre serve` killed with SIGKILL in the middle of an upload leaves partial content and an
/// `uploading` row; once no request could still be writing it (the request timeout), the next
/// start removes both.
#[tokio::test]
async fn a_server_killed_during_an_upload_leaves_nothing_once_started_again() {
    use std::io::Write;
    let cadre = Cadre::new().await;
    let ada = active_user(cadre.database.url()).await;
    cadre.json(&[
        "workflow-group",
        "create",
        "--workflow",
        "create_user",
        "--name",
        "Team",
        "--owner",
        &ada,
        "--identifier",
        "team",
    ]);
    let token = cadre.json(&["token", "create", "--role", "user", "--user", &ada])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let settings = [("CADRE_REQUEST_TIMEOUT_SECONDS", "2")];
    let port = free_port();
    let mut server = cadre.serve(port, &settings);
    until_serving(port).await;

    // Headers announcing 10 MB, and the first 256 KiB of the file.
    let boundary = "cadre-boundary";
    let mut upload = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        upload,
        "POST /api/workflow-groups/team/files HTTP/1.1\r\nHost: localhost\r\n\
         Authorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: 10000000\r\n\r\n--{boundary}\r\n\
         Content-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\r\n"
    )
    .unwrap();
    upload.write_all(&vec![b'x'; 256 * 1024]).unwrap();
    let volume = cadre.files.path().join("volume");
    for _ in 0..200 {
        if !files_under(&volume).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        files_under(&volume).len(),
        1,
        "the partial content is written"
    );
    server.kill().unwrap();
    server.wait().unwrap();
    drop(upload);
    assert_eq!(files_under(&volume).len(), 1, "and left behind by the kill");

    // Past the request timeout, a new start finishes the abandoned upload off.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let mut server = cadre.serve(port, &settings);
    until_serving(port).await;
    assert_eq!(files_under(&volume), Vec::<std::path::PathBuf>::new());
    let store = cadre_store::testing::store_at(cadre.database.url()).await;
    let group = cadre_domain::GroupId::parse("team").unwrap();
    let rows = cadre_domain::WorkflowGroupRepository::group_files(&store, &group, None)
        .await
        .unwrap();
    assert!(rows.is_empty(), "{rows:?}");
    server.kill().unwrap();
    server.wait().unwrap();
}

/// `cadre serve` killed with SIGKILL while its workers run a bulk load: started again, it
/// takes the load up where its last committed batch left it, and each user is created once.
#[tokio::test]
async fn a_server_killed_during_a_bulk_load_finishes_it_once_started_again() {
    let cadre = Cadre::new().await;
    let token = cadre.ok(&["token", "create", "--role", "admin"]);
    let token = token.trim().to_owned();
    let settings = [("CADRE_LEASE_SECONDS", "1"), ("CADRE_WORKERS", "1")];
    let port = free_port();
    let mut server = cadre.serve(port, &settings);
    until_serving(port).await;

    let users = 2000;
    let mut rows = String::from("user_id,firstname,lastname,email,auth_id,user_groups\n");
    for n in 0..users {
        rows.push_str(&format!("u{n},,,u{n}@example.com,,everyone\n"));
    }
    let answer = http_as(
        port,
        "POST",
        "/api/provisioning/users?mode=full",
        &token,
        "text/csv",
        &rows,
    );
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    let started: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let load = started["process_id"].as_str().unwrap().to_owned();

    // Kill it once some batches are in, before the last.
    let store = cadre_store::testing::store_at(cadre.database.url()).await;
    let id: uuid::Uuid = load.parse().unwrap();
    let mut applied = 0;
    for _ in 0..1000 {
        let process = cadre_domain::ProcessRepository::process(&store, id)
            .await
            .unwrap();
        applied = process
            .state
            .get("applied")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if applied >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let process = cadre_domain::ProcessRepository::process(&store, id)
        .await
        .unwrap();
    assert_ne!(
        process.status,
        cadre_domain::ProcessStatus::Completed,
        "killed mid-load (after batch {applied})"
    );

    let mut server = cadre.serve(port, &settings);
    cadre.until_completed(&load, 600).await;
    server.kill().unwrap();
    server.wait().unwrap();
    let steps = cadre_domain::ProcessRepository::process_steps(&store, id)
        .await
        .unwrap();
    let batches: Vec<&str> = steps
        .iter()
        .filter(|step| step.step_key == "apply_batch")
        .map(|step| step.name.as_str())
        .collect();
    let distinct: std::collections::BTreeSet<&str> = batches.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        batches.len(),
        "a batch applied twice: {batches:?}"
    );
    let listed = cadre.json(&[
        "subscription",
        "list",
        "--product-type",
        "User",
        "--limit",
        "1",
    ]);
    assert_eq!(listed["total"], users, "each user created once");
}

/// Sends one HTTP/1.1 request with a body of `content_type`; returns the whole answer.
fn http_as(
    port: u16,
    method: &str,
    path: &str,
    token: &str,
    content_type: &str,
    body: &str,
) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[tokio::test]
async fn targets_are_configured_from_a_secret_file_listed_paused_and_removed() {
    let cadre = Cadre::new().await;
    let secret = cadre.files.path().join("token.txt");
    std::fs::write(&secret, "app-bearer-token\n").unwrap();
    let secret = secret.to_str().unwrap();
    let args = |more: &[&'static str]| {
        let mut args = vec![
            "target",
            "add-scim",
            "--name",
            "App",
            "--url",
            "https://app.example.org/scim/v2",
        ];
        args.extend_from_slice(more);
        args
    };
    // Without a key, nothing is configured, and the error says what to set.
    let refused = cadre.fails(&[args(&["--secret-file"]).as_slice(), &[secret]].concat());
    assert!(refused.contains("outbound_key"), "{refused}");

    let key = "ab".repeat(32);
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cadre"))
            .args(extra)
            .args(["--json", "--database-url", cadre.database.url()])
            .env_remove("DATABASE_URL")
            .env_remove("CADRE_CONFIG")
            .env("CADRE_OUTBOUND_KEY", &key)
            .output()
            .unwrap()
    };
    let added = run(&[args(&["--bulk", "--secret-file"]).as_slice(), &[secret]].concat());
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let added: Value = serde_json::from_slice(&added.stdout).unwrap();
    let id = added[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(added[0]["connection"]["bulk"], true);
    let paused: Value = serde_json::from_slice(&run(&["target", "pause", &id]).stdout).unwrap();
    assert_eq!(paused[0]["mode"], "paused");
    let listed = cadre.json(&["target", "list"]);
    assert_eq!(listed[0]["name"], "App");
    assert_eq!(listed[0]["mode"], "paused");
    assert!(!listed.to_string().contains("app-bearer-token"), "{listed}");
    cadre.ok(&["target", "remove", &id]);
    assert_eq!(cadre.json(&["target", "list"]), serde_json::json!([]));
}
