//! End to end over HTTP: the real server (API and engine workers) on an ephemeral port, on a
//! scratch SQLite file or PostgreSQL database, driven by an HTTP client as a user would.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cadre_domain::{Clock, Role, SystemClock};
use cadre_migrations::demo::{USER_GROUP_PRODUCT_ID, USER_INTERNAL_PRODUCT_ID};
use cadre_server::auth::{NewToken, issue_token};
use insta::assert_json_snapshot;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

mod accounts;
mod audit;
mod authorization;
mod browser;
mod metrics;
mod outbound;
mod registration;
mod scim;
mod targets;
mod web;

/// A running server and a client with an admin and a user token.
struct Server {
    base: String,
    admin: String,
    user: String,
    client: reqwest::Client,
    engine: cadre_engine::Engine,
    _files: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Last: dropped after everything that connects to it.
    _database: cadre_store::testing::ScratchDatabase,
}

impl Server {
    /// The server with `workers` engine workers.
    async fn start(workers: usize) -> Self {
        Self::start_with(workers, Vec::new(), |_| {}, Arc::new(SystemClock)).await
    }

    /// The server with `workers` engine workers, `extra` workflows besides the built-in ones,
    /// the configuration `configure` leaves, and `clock`.
    async fn start_with(
        workers: usize,
        extra: Vec<cadre_engine::Workflow>,
        configure: impl FnOnce(&mut cadre_server::Config),
        clock: Arc<dyn Clock>,
    ) -> Self {
        let database = cadre_store::testing::scratch_database().await;
        let cadre = cadre_server::Cadre::new()
            .pages(cadre_web::pages())
            .workflows(extra);
        let engine = cadre.open(database.url()).await.unwrap();
        let engine = cadre_engine::Engine::new(
            engine.store().clone(),
            cadre.registry().unwrap(),
            clock,
            cadre_engine::EngineConfig::default(),
        );
        let now = SystemClock.now();
        let store = engine.store().as_ref();
        let admin = issue_token(
            store,
            NewToken {
                name: "alice",
                role: Role::Admin,
                user: None,
                expires_at: None,
            },
            "test",
            now,
        )
        .await
        .unwrap()
        .plain;
        let user = issue_token(
            store,
            NewToken {
                name: "bob",
                role: Role::User,
                user: None,
                expires_at: None,
            },
            "test",
            now,
        )
        .await
        .unwrap()
        .plain;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let files = tempfile::tempdir().unwrap();
        let mut config = cadre_server::Config {
            files_dir: files.path().join("files"),
            mail_dir: files.path().join("mail"),
            ..cadre_server::Config::default()
        };
        configure(&mut config);
        let state = cadre_server::app_state(engine.clone(), &config).unwrap();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            cadre
                .run(state, Some(listener), workers, shutdown)
                .await
                .unwrap();
        });
        Self {
            base,
            admin,
            user,
            client: {
                cadre_registration::delivery::use_ring_for_tls();
                reqwest::Client::new()
            },
            engine,
            _files: files,
            stop: Some(stop),
            task: Some(task),
            _database: database,
        }
    }

    /// Sends a request with `token` (if any) and returns the status and the JSON body (`null`
    /// when empty).
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, body)
    }

    /// Posts `body` as `content_type` with `token`.
    async fn post_text(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        body: &str,
    ) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(&self.admin), None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(&self.admin), Some(body))
            .await
    }

    async fn put(&self, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(&self.admin), body).await
    }

    /// Starts `workflow` with `pages`, expecting 201; returns the process id.
    async fn start_process(&self, workflow: &str, pages: Value) -> String {
        let (status, body) = self
            .post(&format!("/api/processes/{workflow}"), pages)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Polls process `id` until its status is one of `wanted`; returns its detail.
    async fn wait_for(&self, id: &str, wanted: &[&str]) -> Value {
        let mut last = Value::Null;
        for _ in 0..200 {
            let (status, process) = self.get(&format!("/api/processes/{id}")).await;
            assert_eq!(status, StatusCode::OK);
            if wanted.contains(&process["last_status"].as_str().unwrap()) {
                return process;
            }
            last = process;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "process {id} never reached {wanted:?}: {} at {}, {}",
            last["last_status"], last["last_step"], last["failed_reason"]
        );
    }

    /// Creates an active user group through the workflow; returns its subscription id.
    async fn create_group(&self, group_id: &str, name: &str) -> String {
        let id = self
            .start_process(
                "create_user_group",
                json!([{"product": USER_GROUP_PRODUCT_ID},
                       {"user_group_id": group_id, "user_group_name": name}]),
            )
            .await;
        let process = self.wait_for(&id, &["completed"]).await;
        process["current_state"]["subscription_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Starts create_user for `user_id` in `group`; returns the process id.
    async fn start_create_user(&self, user_id: &str, group: &str) -> String {
        // The group choices of a form are cached for up to a second.
        tokio::time::sleep(cadre_forms::standard::CHOICES_TTL).await;
        self.start_process(
            "create_user",
            json!([{"product": USER_INTERNAL_PRODUCT_ID},
                   {"user_id": user_id, "username": user_id, "email": format!("{user_id}@example.org"),
                    "user_group_ids": [group]}]),
        )
        .await
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

/// `detail` with every UUID replaced by `[uuid]`, for snapshots.
fn without_ids(body: Value) -> Value {
    let text = body.to_string();
    let mut redacted = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find(|c: char| c.is_ascii_hexdigit()) {
        let candidate = rest.get(start..start + 36).unwrap_or("");
        if Uuid::try_parse(candidate).is_ok() {
            redacted.push_str(&rest[..start]);
            redacted.push_str("[uuid]");
            rest = &rest[start + 36..];
        } else {
            let next = start + rest[start..].chars().next().map_or(1, char::len_utf8);
            redacted.push_str(&rest[..next]);
            rest = &rest[next..];
        }
    }
    redacted.push_str(rest);
    serde_json::from_str(&redacted).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_then_a_user_in_it_through_the_form_pages() {
    let server = Server::start(1).await;

    let (status, first) = server
        .post("/api/processes/create_user_group", json!([]))
        .await;
    assert_eq!(status, StatusCode::NOT_EXTENDED);
    assert_eq!(first["type"], "FormNotCompleteError");
    assert_eq!(
        first["form"]["properties"]["product"]["$ref"],
        "#/$defs/ProductChoice"
    );
    let (status, second) = server
        .post(
            "/api/processes/create_user_group",
            json!([{"product": USER_GROUP_PRODUCT_ID}]),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_EXTENDED);
    assert_json_snapshot!("group_form_second_page", second);

    let group = server.create_group("staff", "Staff").await;

    let (status, page) = server
        .post(
            "/api/processes/create_user",
            json!([{"product": USER_INTERNAL_PRODUCT_ID}]),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_EXTENDED);
    assert_eq!(
        page["form"]["$defs"]["UserGroupEnum"]["enum"],
        json!([group]),
        "the user form offers the active group"
    );
    let process_id = server.start_create_user("ada", &group).await;
    let process = server.wait_for(&process_id, &["completed"]).await;
    let steps: Vec<(&str, &str)> = process["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| {
            (
                step["name"].as_str().unwrap(),
                step["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(steps.first(), Some(&("Start", "success")));
    assert_eq!(steps.last(), Some(&("Done", "complete")));
    assert!(steps.iter().all(|(_, status)| *status != "pending"));
    assert_eq!(process["created_by"], "alice");

    let user = process["subscriptions"][0].as_str().unwrap();
    let (status, detail) = server.get(&format!("/api/subscriptions/{user}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["status"], "active");
    assert_eq!(detail["insync"], true);
    assert_eq!(detail["product_type"], "User");
    assert_eq!(detail["domain_model"]["user"]["username"], "ada");
    assert_eq!(
        detail["domain_model"]["user"]["groups"][0]["owner_subscription_id"],
        group
    );
    let (status, model) = server
        .get(&format!("/api/subscriptions/domain-model/{user}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(model, detail["domain_model"]);

    let (status, workflows) = server
        .get(&format!("/api/subscriptions/workflows/{user}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = workflows
        .as_array()
        .unwrap()
        .iter()
        .map(|workflow| workflow["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "disable_user",
            "enable_user",
            "modify_user",
            "terminate_user",
            "validate_user"
        ]
    );
    let reasons: Vec<&Value> = workflows
        .as_array()
        .unwrap()
        .iter()
        .map(|workflow| &workflow["reason"])
        .collect();
    assert_eq!(
        reasons,
        [
            &Value::Null,
            &json!(format!(
                "subscription {user} is active; enable_user needs it disabled"
            )),
            &Value::Null,
            &Value::Null,
            &Value::Null
        ],
        "an active user can be disabled, not enabled"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_errors_name_the_page_and_field() {
    let server = Server::start(0).await;
    let (status, body) = server
        .post(
            "/api/processes/create_user_group",
            json!([{"product": USER_GROUP_PRODUCT_ID},
                   {"user_group_id": ".hidden", "user_group_name": 42, "bogus": 1}]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_json_snapshot!("form_not_valid", body);

    let (status, body) = server
        .post(
            "/api/processes/create_user_group",
            json!([{"product": USER_GROUP_PRODUCT_ID}, {"user_group_id": "g", "user_group_name": "G"}, {}]),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_json_snapshot!("too_many_pages", body);

    let (status, body) = server
        .post("/api/processes/no_such_workflow", json!([]))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_json_snapshot!("unknown_workflow", body);

    let (status, body) = server
        .post("/api/processes/create_user_group", json!({"product": "x"}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_json_snapshot!("body_not_a_list_of_pages", body);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_is_resumed_after_the_cause_is_fixed() {
    let server = Server::start(1).await;
    let group = server.create_group("staff", "Staff").await;
    let first = server.start_create_user("ada", &group).await;
    let first = server.wait_for(&first, &["completed"]).await;
    let ada = first["subscriptions"][0].as_str().unwrap().to_owned();

    // A second user with the same id fails at the step that stores it.
    let second = server.start_create_user("ada", &group).await;
    let failed = server.wait_for(&second, &["failed"]).await;
    assert!(
        failed["failed_reason"]
            .as_str()
            .unwrap()
            .contains("already"),
        "{}",
        failed["failed_reason"]
    );
    assert!(
        failed["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|step| step["status"] == "pending")
    );

    // Only an admin may resume.
    let (status, body) = server
        .call(
            Method::PUT,
            &format!("/api/processes/{second}/resume"),
            Some(&server.user),
            Some(json!([])),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_json_snapshot!("resume_as_user", body);

    // Terminating the first user frees the id; the resumed process then completes.
    let terminate = server
        .start_process("terminate_user", json!([{"subscription_id": ada}, {}]))
        .await;
    server.wait_for(&terminate, &["completed"]).await;
    let (status, body) = server
        .put(&format!("/api/processes/{second}/resume"), Some(json!([])))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let resumed = server.wait_for(&second, &["completed"]).await;
    assert_eq!(resumed["failed_reason"], Value::Null);

    // A completed process cannot be resumed again.
    let (status, body) = server
        .put(&format!("/api/processes/{second}/resume"), Some(json!([])))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_json_snapshot!("resume_completed", without_ids(body));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_process_is_aborted_once() {
    // No workers: the process stays `created` until aborted.
    let server = Server::start(0).await;
    let id = server
        .start_process(
            "create_user_group",
            json!([{"product": USER_GROUP_PRODUCT_ID},
                   {"user_group_id": "staff", "user_group_name": "Staff"}]),
        )
        .await;
    let (status, body) = server
        .call(
            Method::PUT,
            &format!("/api/processes/{id}/abort"),
            Some(&server.user),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (status, _) = server
        .put(&format!("/api/processes/{id}/abort"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, process) = server.get(&format!("/api/processes/{id}")).await;
    assert_eq!(process["last_status"], "aborted");
    assert_eq!(process["last_step"], "User Aborted");

    let (status, body) = server
        .put(&format!("/api/processes/{id}/abort"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_json_snapshot!("abort_aborted", without_ids(body));

    let (status, body) = server
        .put(&format!("/api/processes/{}/abort", Uuid::nil()), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_json_snapshot!("abort_unknown", body);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_checks_who_calls_it() {
    let server = accounts::server(None, Arc::new(SystemClock), |_| {}).await;
    // A signed-in user (a session cookie), an expired admin token, and a disabled user's token.
    let group = server.create_group("walkers", "Walkers").await;
    server
        .user_with_password("ada", accounts::PASSWORD, accounts::CHEAP)
        .await;
    let browser = server.browser("ada", accounts::PASSWORD).await;
    let expired = issue_token(
        server.engine.store().as_ref(),
        NewToken {
            name: "expired",
            role: Role::Admin,
            user: None,
            expires_at: Some(SystemClock.now() - chrono::TimeDelta::seconds(1)),
        },
        "test",
        SystemClock.now(),
    )
    .await
    .unwrap()
    .plain;
    let (disabled, disabled_token) = server.create_user("dora", &group).await;
    let process = server
        .start_process("disable_user", json!([{"subscription_id": disabled}, {}]))
        .await;
    server.wait_for(&process, &["completed"]).await;
    let (status, openapi) = server
        .call(Method::GET, "/api/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3.1"));

    let mut secured = 0;
    for (path, operations) in openapi["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let concrete = path
                .replace("{id}", &Uuid::nil().to_string())
                .replace("{group_id}", "no_such_group")
                .replace("{file_id}", &Uuid::nil().to_string())
                .replace("{subscription_id}", &Uuid::nil().to_string())
                .replace("{product_id}", &Uuid::nil().to_string())
                .replace("{product_block_id}", &Uuid::nil().to_string())
                .replace("{product_block_id}", &Uuid::nil().to_string())
                .replace("{workflow_name}", "create_user");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            if path == "/tokens/{token}" {
                // The page of a mailed link: public, HTML, and here the link is unknown.
                let token = format!("{}.{}", Uuid::nil().simple(), "0".repeat(64));
                assert!(
                    operation.get("security").is_none(),
                    "{method} {path} is public"
                );
                let response = server
                    .client
                    .request(method.clone(), format!("{}/tokens/{token}", server.base))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
                let content_type = &response.headers()["content-type"];
                assert!(
                    content_type.to_str().unwrap().starts_with("text/html"),
                    "{method} {path}: {content_type:?}"
                );
                continue;
            }
            let body = (method == Method::POST || method == Method::PUT).then(|| json!([]));
            if operation.get("security").is_none() {
                // Public: health, readiness, and what anyone may post (registration).
                let (status, _) = server.call(method.clone(), &concrete, None, body).await;
                if method == Method::GET {
                    assert_eq!(status, StatusCode::OK, "{path} is public");
                } else {
                    assert_ne!(status, StatusCode::UNAUTHORIZED, "{path} is public");
                }
                continue;
            }
            secured += 1;
            let (status, body_401) = server
                .call(method.clone(), &concrete, None, body.clone())
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            assert_eq!(body_401["status"], 401);
            let (status, _) = server
                .call(
                    method.clone(),
                    &concrete,
                    Some("cadre_not_a_token"),
                    body.clone(),
                )
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            for (token, what) in [
                (&expired, "an expired token"),
                (&disabled_token, "a disabled user's token"),
            ] {
                let (status, _) = server
                    .call(method.clone(), &concrete, Some(token), body.clone())
                    .await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {what}");
            }
            // A session cookie: what changes something needs the session's CSRF token.
            let (status, problem) = server
                .as_browser(&browser, method.clone(), &concrete, false, body.clone())
                .await;
            if method.is_safe() {
                assert_ne!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path}: a session"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{method} {path}: no CSRF token"
                );
                assert_eq!(problem["code"], "csrf_token_missing", "{method} {path}");
            }
            let (status, _) = server
                .call(method.clone(), &concrete, Some(&server.user), body)
                .await;
            // Admin-only operations document their 403 as "Not an admin"; others that document
            // a 403 decide by what the caller asks for (workflow groups: membership).
            let forbidden = &operation["responses"]["403"]["description"];
            if forbidden == "Not an admin" {
                assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
            } else if !forbidden.is_null() {
                assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            } else {
                assert_ne!(status, StatusCode::FORBIDDEN, "{method} {path}");
                assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            }
        }
    }
    assert!(secured >= 23, "only {secured} secured operations");

    let (status, body) = server.call(Method::GET, "/api/products", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_json_snapshot!("anonymous", body);

    // A token with the right id but a wrong secret, and a revoked token, are refused alike.
    let (id, _) = server.admin["cadre_".len()..].split_once('_').unwrap();
    let forged = format!("cadre_{id}_{}", "0".repeat(64));
    let (status, _) = server
        .call(Method::GET, "/api/products", Some(&forged), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

/// Token reads through a store, counted.
struct CountingTokens<'a> {
    store: &'a dyn cadre_domain::Store,
    reads: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl cadre_domain::TokenRepository for CountingTokens<'_> {
    async fn create_token(&self, token: &cadre_domain::ApiToken) -> cadre_domain::Result<()> {
        self.store.create_token(token).await
    }
    async fn token(&self, id: Uuid) -> cadre_domain::Result<cadre_domain::ApiToken> {
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.store.token(id).await
    }
    async fn list_tokens(&self) -> cadre_domain::Result<Vec<cadre_domain::ApiToken>> {
        self.store.list_tokens().await
    }
    async fn tokens_of(&self, user_id: Uuid) -> cadre_domain::Result<Vec<cadre_domain::ApiToken>> {
        self.store.tokens_of(user_id).await
    }
    async fn revoke_token(
        &self,
        id: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> cadre_domain::Result<()> {
        self.store.revoke_token(id, now).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_no_longer_authenticates_once_its_row_is_read_again() {
    use cadre_server::auth::{TOKEN_CACHE_TTL, TokenCache, authenticate};
    let database = cadre_store::testing::scratch_database().await;
    let engine = cadre_server::Cadre::new()
        .open(database.url())
        .await
        .unwrap();
    let tokens = CountingTokens {
        store: engine.store().as_ref(),
        reads: Default::default(),
    };
    let store = engine.store().as_ref();
    let issued = issue_token(
        store,
        NewToken {
            name: "carol",
            role: Role::User,
            user: None,
            expires_at: None,
        },
        "test",
        SystemClock.now(),
    )
    .await
    .unwrap();
    let reads = || tokens.reads.load(std::sync::atomic::Ordering::Relaxed);
    let cache = TokenCache::default();

    let found = authenticate(&tokens, &cache, &issued.plain, SystemClock.now())
        .await
        .unwrap();
    assert_eq!(found.map(|token| token.id), Some(issued.token.id));
    let found = authenticate(&tokens, &cache, &issued.plain, SystemClock.now())
        .await
        .unwrap();
    assert_eq!(found.map(|token| token.id), Some(issued.token.id));
    assert_eq!(
        reads(),
        1,
        "the second request used the row read by the first"
    );
    let (id, _) = issued.plain.rsplit_once('_').unwrap();
    let wrong = format!("{id}_{}", "0".repeat(64));
    assert_eq!(
        authenticate(&tokens, &cache, &wrong, SystemClock.now())
            .await
            .unwrap(),
        None,
        "a remembered row still checks the secret"
    );

    store
        .revoke_token(issued.token.id, SystemClock.now())
        .await
        .unwrap();
    let elsewhere = TokenCache::default();
    assert_eq!(
        authenticate(&tokens, &elsewhere, &issued.plain, SystemClock.now())
            .await
            .unwrap(),
        None,
        "a server reading the row after the revocation refuses the token"
    );
    tokio::time::sleep(TOKEN_CACHE_TTL).await;
    assert_eq!(
        authenticate(&tokens, &cache, &issued.plain, SystemClock.now())
            .await
            .unwrap(),
        None,
        "the server that read it before refuses it once its copy has aged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_filtered_sorted_and_paged() {
    let server = Server::start(1).await;
    for (id, name) in [("b", "Beta"), ("a", "Alpha"), ("c", "Gamma")] {
        server.create_group(id, name).await;
    }

    let (status, page) = server
        .get("/api/subscriptions?product_type=UserGroup&sort=description&order=desc&limit=2")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 3);
    let descriptions: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["description"].as_str().unwrap())
        .collect();
    assert_eq!(descriptions, ["User Group Gamma", "User Group Beta"]);
    let (_, rest) = server
        .get("/api/subscriptions?product_type=UserGroup&sort=description&order=desc&limit=2&offset=2")
        .await;
    assert_eq!(rest["items"][0]["description"], "User Group Alpha");
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);

    let (_, found) = server
        .get("/api/subscriptions?query=alp&status=active")
        .await;
    assert_eq!(found["total"], 1);
    let (_, none) = server.get("/api/subscriptions?product_type=User").await;
    assert_eq!(none["total"], 0);

    let (status, body) = server.get("/api/subscriptions?status=asleep").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_json_snapshot!("unknown_lifecycle", body);
    let (status, body) = server.get("/api/subscriptions?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_json_snapshot!("limit_zero", body);
    let (status, body) = server.get("/api/subscriptions?sort=colour").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_json_snapshot!("unknown_sort", body);
    // A search text of 60,000 characters is refused, not sent to the database.
    let (status, body) = server
        .get(&format!("/api/subscriptions?query={}", "a".repeat(60_000)))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_json_snapshot!("query_too_long", body);
    let (status, _) = server
        .get(&format!("/api/subscriptions?query={}", "a".repeat(200)))
        .await;
    assert_eq!(status, StatusCode::OK, "200 characters are searched");

    let (status, processes) = server
        .get("/api/processes?workflow_name=create_user_group&status=completed&limit=2")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(processes["total"], 3);
    assert_eq!(processes["items"].as_array().unwrap().len(), 2);
    // By who started them and when.
    let actor = processes["items"][0]["created_by"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, mine) = server
        .get(&format!(
            "/api/processes?created_by={actor}&workflow_name=create_user_group"
        ))
        .await;
    assert_eq!(mine["total"], 3, "{mine}");
    let (_, nobody) = server.get("/api/processes?created_by=nobody").await;
    assert_eq!(nobody["total"], 0);
    let started = processes["items"][0]["started_at"].as_f64().unwrap();
    let (_, later) = server
        .get(&format!("/api/processes?since={}", started + 3600.0))
        .await;
    assert_eq!(later["total"], 0);
    let (_, earlier) = server
        .get(&format!(
            "/api/processes?until={}&workflow_name=create_user_group",
            started + 3600.0
        ))
        .await;
    assert_eq!(earlier["total"], 3);
    let (_, before) = server
        .get(&format!("/api/processes?until={}", started - 3600.0))
        .await;
    assert_eq!(before["total"], 0);
    let (status, body) = server.get("/api/processes?status=sleeping").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_json_snapshot!("unknown_process_status", body);

    let (status, body) = server
        .get(&format!("/api/subscriptions/{}", Uuid::nil()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_json_snapshot!("unknown_subscription", body);
    let (status, body) = server.get("/api/subscriptions/not-a-uuid").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_json_snapshot!("malformed_subscription_id", body);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogue_lists_products_and_blocks_with_details() {
    let server = Server::start(0).await;
    let (status, products) = server.get("/api/products").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = products
        .as_array()
        .unwrap()
        .iter()
        .map(|product| product["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["User Group", "User external", "User internal"]);

    let (status, product) = server
        .get(&format!("/api/products/{USER_INTERNAL_PRODUCT_ID}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(product["product_type"], "User");
    assert_eq!(product["fixed_inputs"][0]["name"], "affiliation");
    assert_eq!(product["fixed_inputs"][0]["value"], "internal");
    let block = &product["product_blocks"][0];
    assert_eq!(block["name"], "UserBlock");

    let (status, blocks) = server.get("/api/product_blocks").await;
    assert_eq!(status, StatusCode::OK);
    assert!(blocks.as_array().unwrap().contains(block));
    let (status, detail) = server
        .get(&format!(
            "/api/product_blocks/{}",
            block["product_block_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&detail, block);
    let (status, body) = server
        .get(&format!("/api/product_blocks/{}", Uuid::nil()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_json_snapshot!("unknown_product_block", body);
    server.stop().await;
}

impl Server {
    /// Creates an active user in `group` through the workflow; returns its subscription id
    /// and a `user`-role token acting for it.
    async fn create_user(&self, user_id: &str, group: &str) -> (String, String) {
        let process = self.start_create_user(user_id, group).await;
        let process = self.wait_for(&process, &["completed"]).await;
        let id = process["current_state"]["subscription_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let token = issue_token(
            self.engine.store().as_ref(),
            NewToken {
                name: user_id,
                role: Role::User,
                user: Some(id.parse().unwrap()),
                expires_at: None,
            },
            "test",
            SystemClock.now(),
        )
        .await
        .unwrap()
        .plain;
        (id, token)
    }

    /// Uploads `content` as `name` to group `group` with `token`.
    async fn upload(
        &self,
        token: &str,
        group: &str,
        form: reqwest::multipart::Form,
    ) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}/api/workflow-groups/{group}/files", self.base))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }
}

fn file_part(name: &str, content: &'static [u8]) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(content).file_name(name.to_owned()),
    )
}

/// The head of an admin's process start announcing a body of 1,000 bytes.
fn slow_start_head(server: &Server) -> String {
    format!(
        "POST /api/processes/create_user_group HTTP/1.1\r\nHost: localhost\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: 1000\r\n\r\n",
        server.admin
    )
}

/// Sends `head` and `body` to the server, then waits up to `wait` for an answer; returns what
/// came back (empty if nothing did).
async fn stalled_request(server: &Server, head: String, body: &[u8], wait: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = vec![0; 4096];
    match tokio::time::timeout(wait, stream.read(&mut answer)).await {
        Ok(Ok(read)) => String::from_utf8_lossy(&answer[..read]).into_owned(),
        _ => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_given_up_and_the_server_stays_responsive() {
    let server = Server::start_with(
        1,
        Vec::new(),
        |config| config.body_idle_seconds = 1,
        Arc::new(SystemClock),
    )
    .await;
    // A body announced as 1,000 bytes of which 1 arrives, then nothing.
    let head = slow_start_head(&server);
    let started = Instant::now();
    let answer = stalled_request(&server, head, b"[", Duration::from_secs(10)).await;
    assert!(
        answer.starts_with("HTTP/1.1 4"),
        "answered with a refusal, not held open: {answer:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let (status, _) = server.get("/api/health").await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_trickling_past_their_time_close_the_connection() {
    let server = Server::start_with(
        1,
        Vec::new(),
        |config| config.header_timeout_seconds = 1,
        Arc::new(SystemClock),
    )
    .await;
    // Half a request's headers, then nothing (once held a connection for 45 s and more).
    let started = Instant::now();
    let answer = stalled_request(
        &server,
        "GET /api/health HTTP/1.1\r\nHost: localhost\r\n".to_owned(),
        b"X-Slow: 1",
        Duration::from_secs(10),
    )
    .await;
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "the connection was closed, not held: {waited:?} {answer:?}"
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer:?}"
    );
    let (status, _) = server.get("/api/health").await;
    assert_eq!(status, StatusCode::OK, "whole requests are served");

    // The same clock runs while a kept-alive connection waits for its next request.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut idle = tokio::net::TcpStream::connect(address).await.unwrap();
    idle.write_all(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0; 4096];
    let read = idle.read(&mut answer).await.unwrap();
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"));
    let started = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut answer)).await;
    assert!(
        matches!(closed, Ok(Ok(0) | Err(_))) && started.elapsed() < Duration::from_secs(5),
        "an idle connection is closed after the header timeout: {closed:?} after {:?}",
        started.elapsed()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_concurrency_limit_wait_their_turn() {
    let server = Arc::new(
        Server::start_with(
            1,
            Vec::new(),
            |config| {
                config.max_concurrent_requests = 1;
                config.body_idle_seconds = 2;
            },
            Arc::new(SystemClock),
        )
        .await,
    );
    // One stalled request holds the only slot until its body is given up.
    let head = slow_start_head(&server);
    let stalled = {
        let server = Arc::clone(&server);
        tokio::spawn(
            async move { stalled_request(&server, head, b"[", Duration::from_secs(10)).await },
        )
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = Instant::now();
    let (status, _) = server.get("/api/health").await;
    assert_eq!(status, StatusCode::OK);
    // The slot is free about 2 s after the stalled request began, 1.7 s after this one.
    assert!(
        sent.elapsed() >= Duration::from_secs(1),
        "the second request waited for the slot: {:?}",
        sent.elapsed()
    );
    let answer = stalled.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer:?}");
    let Ok(server) = Arc::try_unwrap(server) else {
        panic!("the stalled request's task holds the server no more");
    };
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_trickling_past_its_time_is_answered_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start_with(
        1,
        Vec::new(),
        |config| {
            config.body_idle_seconds = 2;
            config.request_timeout_seconds = 2;
        },
        Arc::new(SystemClock),
    )
    .await;
    let address = server.base.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(slow_start_head(&server).as_bytes())
        .await
        .unwrap();
    // A byte every half second: never idle long enough for the body timeout.
    let trickle = tokio::spawn(async move {
        for _ in 0..20 {
            if writer.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let started = Instant::now();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(8), reader.read(&mut answer))
        .await
        .expect("an answer before the trickle ends")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    trickle.abort();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_unsniffed_and_unframed_and_active_downloads_run_sandboxed() {
    let server = Server::start(1).await;
    let staff = server.create_group("staff", "Staff").await;
    let (_ada, ada_token) = server.create_user("ada", &staff).await;
    // Answers of every kind: a success, a refusal, an unknown path, a form page of the UI.
    for (path, token) in [
        ("/api/health", None),
        ("/api/subscriptions", None),
        ("/no/such/path", None),
        ("/api/subscriptions", Some(ada_token.as_str())),
    ] {
        let mut request = server.client.get(format!("{}{path}", server.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{path}: {:?}",
            headers["content-security-policy"]
        );
    }
    let page = server
        .client
        .get(format!("{}/sign-in", server.base))
        .send()
        .await
        .unwrap();
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'"),
        "a page keeps its own policy"
    );

    let (status, group) = server
        .call(
            Method::POST,
            "/api/workflow-groups",
            Some(&ada_token),
            Some(json!({"workflow": "create_user", "name": "Web", "identifier": "web"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let (status, file) = server
        .upload(
            &ada_token,
            "web",
            file_part("page.html", b"<script>alert(document.cookie)</script>"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    let response = server
        .client
        .get(format!(
            "{}/api/workflow-groups/web/files/{}",
            server.base,
            file["id"].as_str().unwrap()
        ))
        .bearer_auth(&ada_token)
        .send()
        .await
        .unwrap();
    let headers = response.headers();
    assert_eq!(headers["content-security-policy"], "sandbox");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );

    // A part whose headers are megabytes long is refused before they are parsed, and the
    // client, still sending them, reads the refusal (the server reads the rest of the body
    // while it answers) rather than a reset connection.
    let (status, body) = server
        .upload(
            &ada_token,
            "web",
            file_part(&"a".repeat(8 << 20), b"content"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("headers are larger than"),
        "{body}"
    );

    // A name whose right-to-left override hides its real extension is refused.
    let (status, body) = server
        .upload(
            &ada_token,
            "web",
            file_part("invoice\u{202E}fdp.exe", b"MZ"),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("bidirectional"),
        "{body}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_groups_and_their_files_over_http() {
    let server = Server::start(1).await;
    let staff = server.create_group("staff", "Staff").await;
    let (ada, ada_token) = server.create_user("ada", &staff).await;
    let (bob, bob_token) = server.create_user("bob", &staff).await;
    let (_eve, eve_token) = server.create_user("eve", &staff).await;

    // Ada creates a group with Bob; she owns it and both are members.
    let (status, group) = server
        .call(
            Method::POST,
            "/api/workflow-groups",
            Some(&ada_token),
            Some(
                json!({"workflow": "create_user", "name": "Team A", "identifier": "team_a",
                        "members": [bob]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    assert_eq!(group["owner"], json!(ada));
    let mut members = vec![ada.clone(), bob.clone()];
    members.sort();
    assert_eq!(group["members"], json!(members));
    assert_eq!(group["workflow_spec"]["name"], "create_user");
    let id = group["id"].as_str().unwrap().to_owned();
    assert_eq!(id, "team_a");

    let (status, body) = server
        .call(
            Method::POST,
            "/api/workflow-groups",
            Some(&bob_token),
            Some(json!({"workflow": "create_user", "name": " team  a"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_json_snapshot!("group_name_taken", body);

    // Bob uploads a file; the listing and the download give it back.
    let (status, file) = server
        .upload(&bob_token, &id, file_part("rows.csv", b"a,b\n1,2\n"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    assert_eq!(file["size"], 8);
    assert_eq!(file["mime_type"], "text/csv");
    let (status, files) = server
        .call(
            Method::GET,
            &format!("/api/workflow-groups/{id}/files"),
            Some(&ada_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(files["items"].as_array().unwrap().len(), 1);
    let file_id = file["id"].as_str().unwrap();
    let response = server
        .client
        .get(format!(
            "{}/api/workflow-groups/{id}/files/{file_id}",
            server.base
        ))
        .bearer_auth(&ada_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/csv");
    assert_eq!(headers["content-length"], "8");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"rows.csv\"; filename*=UTF-8''rows%2Ecsv"
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"a,b\n1,2\n");

    // A bad file name, a body without a file part, and an outsider are refused.
    let (status, body) = server
        .upload(&bob_token, &id, file_part("../etc/passwd", b"x"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_json_snapshot!("group_file_bad_name", body);
    let (status, body) = server
        .upload(
            &bob_token,
            &id,
            reqwest::multipart::Form::new().text("note", "no file"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_json_snapshot!("group_upload_without_file", body);
    let (status, body) = server
        .call(
            Method::GET,
            &format!("/api/workflow-groups/{id}"),
            Some(&eve_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_json_snapshot!("group_not_a_member", body);

    // The owner stays; only she deletes the group.
    let (status, body) = server
        .call(
            Method::PATCH,
            &format!("/api/workflow-groups/{id}"),
            Some(&bob_token),
            Some(json!({"members": [bob]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_json_snapshot!("group_owner_removed", body);
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/workflow-groups/{id}"),
            Some(&bob_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/workflow-groups/{id}"),
            Some(&ada_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = server
        .call(
            Method::GET,
            &format!("/api/workflow-groups/{id}/files/{file_id}"),
            Some(&ada_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_json_snapshot!("group_deleted", body);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_loads_over_http_validate_everything_first_and_report_every_row() {
    let server = Server::start(1).await;
    let groups = "user_group_id,user_group_name,parent_user_groups\nstaff,Staff,\nops,Ops,staff\n";
    let (status, started) = server
        .post_text(
            "/api/provisioning/user-groups?mode=full",
            &server.admin,
            "text/csv",
            groups,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["rows"], 2);
    let id = started["process_id"].as_str().unwrap().to_owned();
    server.wait_for(&id, &["completed"]).await;
    let (status, report) = server.get(&format!("/api/provisioning/loads/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["counts"]["created"], 2, "{report}");
    assert_eq!(report["batches"], 1);

    let users = r#"[{"user_id": "u1", "firstname": "Ann", "lastname": null, "email": "u1@example.com", "auth_id": null, "user_groups": ["ops"], "is_active": true},
                    {"user_id": "u2", "firstname": null, "lastname": null, "email": null, "auth_id": null, "user_groups": [], "is_active": false}]"#;
    let (status, started) = server
        .post_text(
            "/api/provisioning/users?mode=incremental&dry_run=true",
            &server.admin,
            "application/json",
            users,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["process_id"].as_str().unwrap().to_owned();
    server.wait_for(&id, &["completed"]).await;
    let (_, report) = server.get(&format!("/api/provisioning/loads/{id}")).await;
    assert_eq!(report["dry_run"], true);
    assert_eq!(
        report["rows"],
        json!([
            {"row": 2, "id": "u2", "outcome": "unchanged", "reason": null},
            {"row": 1, "id": "u1", "outcome": "created", "reason": null},
        ])
    );

    // Every bad row at once, and nothing starts.
    let bad =
        "user_id,firstname,lastname,email,auth_id,user_groups,nickname\n.u1,A,B,not-mail,,,x\n";
    let (status, body) = server
        .post_text(
            "/api/provisioning/users?mode=full",
            &server.admin,
            "text/csv",
            bad,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_json_snapshot!("provisioning_invalid_rows", body);
    let (status, body) = server
        .post_text(
            "/api/provisioning/users?mode=full",
            &server.admin,
            "text/plain",
            "x",
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert_json_snapshot!("provisioning_unknown_format", body);
    let (status, body) = server
        .post_text(
            "/api/provisioning/user-groups?mode=incremental&format=json",
            &server.admin,
            "text/csv",
            "[]",
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert_eq!(
        body["detail"], "the Content-Type is text/csv, which contradicts ?format=",
        "{body}"
    );
    let (status, started) = server
        .post_text(
            "/api/provisioning/user-groups?mode=full&format=csv",
            &server.admin,
            "application/x-www-form-urlencoded",
            groups,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "curl's default type defers to ?format=: {started}"
    );
    let id = started["process_id"].as_str().unwrap().to_owned();
    server.wait_for(&id, &["completed"]).await;

    // A user token may neither load nor start the task workflow directly.
    let (status, _) = server
        .post_text(
            "/api/provisioning/users?mode=full",
            &server.user,
            "text/csv",
            groups,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = server
        .call(
            Method::POST,
            "/api/processes/provision_users",
            Some(&server.user),
            Some(json!([{"load_id": Uuid::nil()}])),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = server
        .get(&format!("/api/provisioning/loads/{}", Uuid::nil()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

/// Records the state's `note` under `recorded`.
struct RecordNote;

#[async_trait::async_trait]
impl cadre_engine::StepFn for RecordNote {
    async fn run(
        &self,
        ctx: &cadre_engine::StepContext<'_>,
    ) -> Result<cadre_engine::Patch, cadre_engine::StepError> {
        let note: String = ctx.get("note")?;
        let mut patch = cadre_engine::Patch::new();
        patch.insert("recorded".to_owned(), json!(note));
        Ok(patch)
    }
}

/// `init >> ask for a note (input step) >> record it >> done`.
pub(super) fn note_workflow() -> cadre_engine::Workflow {
    use cadre_engine::{done, init, input_step, step};
    use cadre_forms::{Field, Form, FormPage};
    let note =
        Form::new().page(FormPage::new("Note").field(Field::string("note").length(Some(3), None)));
    cadre_engine::Workflow {
        name: "take_note".to_owned(),
        description: "Asks an operator for a note".to_owned(),
        target: cadre_domain::Target::Create,
        product_types: Vec::new(),
        usable_when: Vec::new(),
        version: 1,
        initial_form: Arc::new(Form::new()),
        steps: init()
            >> input_step("ask_note", "Ask for a note", note)
            >> step("record_note", "Record the note", RecordNote)
            >> done(),
    }
}

/// Fails, always.
struct Fails;

#[async_trait::async_trait]
impl cadre_engine::StepFn for Fails {
    async fn run(
        &self,
        _ctx: &cadre_engine::StepContext<'_>,
    ) -> Result<cadre_engine::Patch, cadre_engine::StepError> {
        Err(cadre_engine::StepError::new("the application is down"))
    }
}

/// `init >> a step that fails >> done`.
pub(super) fn failing_workflow() -> cadre_engine::Workflow {
    use cadre_engine::{done, init, step};
    cadre_engine::Workflow {
        name: "fail_once".to_owned(),
        description: "Fails at its one step".to_owned(),
        target: cadre_domain::Target::System,
        product_types: Vec::new(),
        usable_when: Vec::new(),
        version: 1,
        initial_form: Arc::new(cadre_forms::Form::new()),
        steps: init() >> step("call_application", "Call the application", Fails) >> done(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_a_group_still_in_use_is_refused_at_start_with_the_reason() {
    let server = Server::start(1).await;
    let staff = server.create_group("staff", "Staff").await;
    let (ada, _) = server.create_user("ada", &staff).await;
    let (status, body) = server
        .post(
            "/api/processes/terminate_user_group",
            json!([{"subscription_id": staff}]),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("used in other subscriptions: User ada"),
        "{body}"
    );
    let (_, processes) = server
        .get("/api/processes?workflow_name=terminate_user_group")
        .await;
    assert_eq!(processes["total"], 0, "nothing started, nothing locked");

    // Once its user is gone, the group is terminated as asked.
    let terminated = server
        .start_process("terminate_user", json!([{"subscription_id": ada}, {}]))
        .await;
    server.wait_for(&terminated, &["completed"]).await;
    let (status, body) = server
        .post(
            "/api/processes/terminate_user_group",
            json!([{"subscription_id": staff}]),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_EXTENDED,
        "the confirmation page: {body}"
    );
    let group = server
        .start_process(
            "terminate_user_group",
            json!([{"subscription_id": staff}, {}]),
        )
        .await;
    server.wait_for(&group, &["completed"]).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_filled_in_at_an_older_version_of_its_subscription_is_a_conflict() {
    let server = Server::start(1).await;
    let staff = server.create_group("staff", "Staff").await;
    let (_, detail) = server.get(&format!("/api/subscriptions/{staff}")).await;
    let version = detail["version"].as_i64().unwrap();
    let (status, body) = server
        .post(
            "/api/processes/modify_user_group",
            json!([{"subscription_id": staff, "version": version}]),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_EXTENDED, "current: {body}");
    let (status, body) = server
        .post(
            "/api/processes/modify_user_group",
            json!([{"subscription_id": staff, "version": version - 1}]),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("it is at version {version}, not {}", version - 1)),
        "{body}"
    );
    let (status, _) = server
        .post(
            "/api/processes/modify_user_group",
            json!([{"subscription_id": staff}]),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_EXTENDED, "no version, no check");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_is_skipped_over_http_by_admins_only() {
    let server =
        Server::start_with(1, vec![failing_workflow()], |_| {}, Arc::new(SystemClock)).await;
    let id = server.start_process("fail_once", json!([{}])).await;
    server.wait_for(&id, &["failed"]).await;
    let skip = format!("/api/processes/{id}/skip");
    let (status, _) = server
        .call(Method::PUT, &skip, Some(&server.user), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = server.put(&skip, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let done = server.wait_for(&id, &["completed"]).await;
    let statuses: Vec<&str> = done["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["status"].as_str().unwrap())
        .collect();
    assert!(statuses.contains(&"skipped"), "{done}");
    let (status, _) = server.put(&skip, None).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a completed process has no step to skip"
    );
    let (status, _) = server
        .put(&format!("/api/processes/{}/skip", Uuid::nil()), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_input_step_is_resumed_over_http_with_input_that_validates() {
    let server = Server::start_with(1, vec![note_workflow()], |_| {}, Arc::new(SystemClock)).await;
    let id = server.start_process("take_note", json!([{}])).await;
    let process = server.wait_for(&id, &["suspended"]).await;
    assert_eq!(
        process["form"]["properties"]["note"]["minLength"], 3,
        "{process}"
    );
    let resume = format!("/api/processes/{id}/resume");

    let (status, body) = server.put(&resume, Some(json!([]))).await;
    assert_eq!(status, StatusCode::NOT_EXTENDED, "{body}");
    assert_eq!(body["form"]["title"], "Note");
    let (status, body) = server.put(&resume, Some(json!([{"note": "no"}]))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["validation_errors"][0]["loc"], json!(["note"]));
    let (status, _) = server
        .call(
            Method::PUT,
            &resume,
            Some(&server.user),
            Some(json!([{"note": "mine"}])),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        server.get(&format!("/api/processes/{id}")).await.1["last_status"],
        "suspended",
        "refused input leaves the process waiting"
    );

    let (status, body) = server
        .put(&resume, Some(json!([{"note": "all good"}])))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let process = server.wait_for(&id, &["completed"]).await;
    assert_eq!(process["current_state"]["recorded"], "all good");
    let names: Vec<&str> = process["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Start",
            "Ask for a note",
            "Ask for a note",
            "Record the note",
            "Done"
        ]
    );
    let (status, _) = server.put(&resume, Some(json!([{"note": "again"}]))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn problem_bodies_carry_the_code_of_their_kind_of_failure() {
    // Workflow groups' files go to a path that is a file: the file storage fails.
    let blocker = tempfile::NamedTempFile::new().unwrap();
    let files_dir = blocker.path().to_owned();
    let server = Server::start_with(
        1,
        Vec::new(),
        move |config| {
            config.files_dir = files_dir;
            config.registration.enabled = true;
            config.registration.requests_per_minute = 2;
        },
        Arc::new(SystemClock),
    )
    .await;
    // A connection of its own for each: the server answers a body that is too large before
    // reading it all, and the connection is then unusable.
    let unpooled = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let post_raw = |content_type: Option<&str>, body: Vec<u8>| {
        let mut request = unpooled
            .post(format!("{}/api/processes/create_user_group", server.base))
            .bearer_auth(&server.admin)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = post_raw(Some("application/json"), b"[{".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_json_snapshot!("body_not_json", body);
    let (status, body) = post_raw(None, b"[]".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_json_snapshot!("body_not_declared_json", body);
    let (status, body) = post_raw(Some("application/json"), vec![b' '; 3 << 20]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_json_snapshot!("body_too_large", body);

    // A discoverable group, and a user in it.
    let process = server
        .start_process(
            "create_user_group",
            json!([{"product": USER_GROUP_PRODUCT_ID},
                   {"user_group_id": "open", "user_group_name": "Open", "discoverable": true}]),
        )
        .await;
    let process = server.wait_for(&process, &["completed"]).await;
    let group = process["current_state"]["subscription_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, token) = server.create_user("ada", &group).await;

    let (status, body) = server
        .post(
            "/api/processes/terminate_user",
            json!([{"subscription_id": group}, {}]),
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert_json_snapshot!("not_startable", without_ids(body));

    let (status, body) = server
        .call(
            Method::POST,
            "/api/register/groups/open",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_json_snapshot!("already_member", body);

    let (status, team) = server
        .call(
            Method::POST,
            "/api/workflow-groups",
            Some(&token),
            Some(json!({"workflow": "create_user", "name": "Team"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    let (status, body) = server
        .upload(
            &token,
            team["id"].as_str().unwrap(),
            file_part("a.txt", b"a"),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_json_snapshot!("file_storage_unavailable", body);

    // Anyone may sign up, a few times a minute.
    let registration =
        json!({"user_name": "bea", "email": "not-mail", "password": "a long enough password"});
    let (status, body) = server
        .call(
            Method::POST,
            "/api/register/users",
            None,
            Some(registration.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_json_snapshot!("registration_invalid_email", body);
    server
        .call(
            Method::POST,
            "/api/register/users",
            None,
            Some(registration.clone()),
        )
        .await;
    let (status, body) = server
        .call(
            Method::POST,
            "/api/register/users",
            None,
            Some(registration),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_json_snapshot!("rate_limited", body);
    server.stop().await;
}

/// A tmpfs of `size` mounted on a fresh folder, unmounted when dropped; `None` (said) where
/// this process may not mount one.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !mounted {
            eprintln!(
                "SKIPPED a full-volume test: it mounts a small tmpfs, which needs root (as \
                 .ci/run has)."
            );
            return None;
        }
        Some(Self(dir))
    }

    fn path(&self) -> &std::path::Path {
        self.0.path()
    }

    /// The regular files under the mount.
    fn files(&self) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        let mut folders = vec![self.path().to_owned()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    folders.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        files
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

/// An upload is answered only once its whole body is read, closing boundary included: a
/// server that answered after the file's bytes and closed the connection would have the
/// client's last write reset it, losing the answer, and could not serve the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_answered_after_its_whole_body_and_keeps_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start(1).await;
    let staff = server.create_group("staff", "Staff").await;
    let (_ada, ada_token) = server.create_user("ada", &staff).await;
    let (status, group) = server
        .call(
            Method::POST,
            "/api/workflow-groups",
            Some(&ada_token),
            Some(json!({"workflow": "create_user", "name": "Web", "identifier": "web"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let part = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
                Content-Type: text/plain\r\n\r\nhello\r\n--XyZ";
    let closing = "--\r\n";
    let head = format!(
        "POST /api/workflow-groups/web/files HTTP/1.1\r\nHost: localhost\r\n\
         Authorization: Bearer {ada_token}\r\n\
         Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n\r\n",
        part.len() + closing.len()
    );
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(format!("{head}{part}").as_bytes())
        .await
        .unwrap();
    let mut answer = vec![0; 4096];
    let early = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut answer)).await;
    assert!(
        early.is_err(),
        "answered before the body ended: {:?}",
        early.map(|read| String::from_utf8_lossy(&answer[..read.unwrap_or(0)]).into_owned())
    );
    stream.write_all(closing.as_bytes()).await.unwrap();
    let read = stream.read(&mut answer).await.unwrap();
    let answer_text = String::from_utf8_lossy(&answer[..read]).into_owned();
    assert!(answer_text.starts_with("HTTP/1.1 201"), "{answer_text}");
    stream
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let read = stream.read(&mut answer).await.unwrap();
    let answer_text = String::from_utf8_lossy(&answer[..read]).into_owned();
    assert!(
        answer_text.starts_with("HTTP/1.1 200"),
        "the connection serves the next request: {answer_text:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upload_still_trickling_is_cut_off_after_the_linger() {
    use cadre_server::multipart::LINGER_TIME;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start(1).await;
    let staff = server.create_group("staff", "Staff").await;
    let (_ada, ada_token) = server.create_user("ada", &staff).await;
    let (status, group) = server
        .call(
            Method::POST,
            "/api/workflow-groups",
            Some(&ada_token),
            Some(json!({"workflow": "create_user", "name": "Web", "identifier": "web"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    // A `file` part without a file name is refused at once; the body announces a gigabyte.
    let head = format!(
        "POST /api/workflow-groups/web/files HTTP/1.1\r\nHost: localhost\r\n\
         Authorization: Bearer {ada_token}\r\n\
         Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\n\r\n\
         --XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n",
        1u64 << 30
    );
    let address = server.base.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut reading, mut writing) = stream.into_split();
    writing.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 4096];
    let read = reading.read(&mut answer).await.unwrap();
    let answer_text = String::from_utf8_lossy(&answer[..read]).into_owned();
    assert!(answer_text.starts_with("HTTP/1.1 400"), "{answer_text}");
    let answered = Instant::now();
    // The client goes on sending, a little at a time, far below the linger's byte bound.
    let trickle = tokio::spawn(async move {
        while writing.write_all(&[b'x'; 64]).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let closed = tokio::time::timeout(LINGER_TIME * 3, async {
        loop {
            match reading.read(&mut answer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    trickle.abort();
    assert!(
        closed.is_ok(),
        "the connection is still open {:?} after the refusal",
        answered.elapsed()
    );
    assert!(
        answered.elapsed() >= LINGER_TIME / 2,
        "closed after {:?}, before the client had time to read the answer",
        answered.elapsed()
    );
    server.stop().await;
}

#[tokio::test]
async fn an_upload_to_a_full_volume_is_refused_with_507_and_leaves_nothing() {
    let Some(volume) = Tmpfs::mount("1m") else {
        return;
    };
    let files_dir = volume.path().join("files");
    let server = Server::start_with(
        1,
        Vec::new(),
        move |config| config.files_dir = files_dir,
        Arc::new(SystemClock),
    )
    .await;
    let group = server.create_group("staff", "Staff").await;
    let (_, token) = server.create_user("ada", &group).await;
    let (status, team) = server
        .call(
            Method::POST,
            "/api/workflow-groups",
            Some(&token),
            Some(json!({"workflow": "create_user", "name": "Team"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    let team = team["id"].as_str().unwrap();

    let large = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(vec![b'x'; 2 << 20]).file_name("large.bin"),
    );
    let (status, body) = server.upload(&token, team, large).await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE);
    assert_json_snapshot!("volume_full", body);
    assert!(volume.files().is_empty(), "{:?}", volume.files());
    let (_, listed) = server
        .call(
            Method::GET,
            &format!("/api/workflow-groups/{team}/files"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(listed, json!({"items": []}), "nothing half-stored");

    // The room the failed upload took is free again.
    let (status, stored) = server
        .upload(&token, team, file_part("small.txt", b"small"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    assert_eq!(volume.files().len(), 1);
    server.stop().await;
}

/// Any query string on the listings: an answer below 500 (a 4xx problem for what is not
/// understood), never a panic or a failure of the server.
#[test]
fn no_query_string_makes_a_listing_fail() {
    use proptest::prelude::*;
    use tower::ServiceExt;

    const PATHS: &[&str] = &[
        "/api/subscriptions",
        "/api/processes",
        "/api/audit",
        "/api/workflow-groups",
    ];
    const KEYS: &[&str] = &[
        "product_type",
        "status",
        "query",
        "sort",
        "order",
        "offset",
        "limit",
        "workflow_name",
        "subscription_id",
        "created_by",
        "since",
        "until",
        "action",
        "actor",
        "target",
        "after",
        "workflow",
        "member",
    ];
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (router, token, _database, _files) = runtime.block_on(async {
        let database = cadre_store::testing::scratch_database().await;
        let cadre = cadre_server::Cadre::new();
        let engine = cadre.open(database.url()).await.unwrap();
        let token = issue_token(
            engine.store().as_ref(),
            NewToken {
                name: "alice",
                role: Role::Admin,
                user: None,
                expires_at: None,
            },
            "test",
            SystemClock.now(),
        )
        .await
        .unwrap()
        .plain;
        let files = tempfile::tempdir().unwrap();
        let config = cadre_server::Config {
            files_dir: files.path().join("files"),
            mail_dir: files.path().join("mail"),
            ..cadre_server::Config::default()
        };
        let state = cadre_server::app_state(engine, &config).unwrap();
        (cadre.router(state), token, database, files)
    });
    let pair = (
        prop_oneof![
            proptest::sample::select(KEYS).prop_map(str::to_owned),
            "[a-z_]{1,12}",
        ],
        // A value, and whether it goes into the URI as it is (odd escapes) or encoded.
        prop_oneof![
            any::<String>().prop_map(|value| (value, false)),
            "-?[0-9]{1,25}".prop_map(|value| (value, false)),
            "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{0,15}Z?".prop_map(|value| (value, false)),
            "%[0-9a-zG-Z]{0,2}".prop_map(|value| (value, true)),
        ],
    );
    let get = |uri: &str| {
        let request = axum::http::Request::get(uri)
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap();
        runtime
            .block_on(router.clone().oneshot(request))
            .unwrap()
            .status()
    };
    // The token works: what follows reaches the handlers.
    assert_eq!(get("/api/subscriptions?limit=5"), StatusCode::OK);
    // Found by this test on PostgreSQL, which stores no instant before 4713 BC.
    for path in ["/api/audit", "/api/processes"] {
        for since in ["-211000000000", "-62135596801", "253402300800"] {
            assert_eq!(
                get(&format!("{path}?since={since}")),
                StatusCode::BAD_REQUEST
            );
        }
        assert_eq!(get(&format!("{path}?since=-62135596800")), StatusCode::OK);
        assert_eq!(get(&format!("{path}?until=253402300799")), StatusCode::OK);
    }
    let config = ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(path in proptest::sample::select(PATHS), pairs in proptest::collection::vec(pair, 0..6))| {
        let query: Vec<String> = pairs
            .iter()
            .map(|(key, (value, raw))| {
                let value = if *raw {
                    value.clone()
                } else {
                    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
                        .to_string()
                };
                format!("{key}={value}")
            })
            .collect();
        let uri = format!("{path}?{}", query.join("&"));
        let status = get(&uri);
        prop_assert!(status.as_u16() < 500, "{uri}: {status}");
    });
}
