//! The Mailbox product served with the built-ins by a real server on an ephemeral port, on a
//! scratch SQLite file or, with `DATABASE_URL`, a scratch PostgreSQL database, driven over HTTP
//! through the pydantic-forms page protocol (510 for the next page) as a client would.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use cadre_domain::{Clock, Role, SystemClock};
use cadre_example_mailbox::catalogue::MAILBOX_PRODUCT_ID;
use cadre_migrations::demo::{USER_GROUP_PRODUCT_ID, USER_INTERNAL_PRODUCT_ID};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Server {
    base: String,
    token: String,
    user_token: String,
    client: reqwest::Client,
    _files: tempfile::TempDir,
    _database: cadre_store::testing::ScratchDatabase,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start() -> Self {
        let database = cadre_store::testing::scratch_database().await;
        let url = database.url();
        let cadre = cadre_example_mailbox::cadre();
        let engine = cadre.open(url).await.unwrap();
        let token = cadre_server::auth::issue_token(
            engine.store().as_ref(),
            cadre_server::auth::NewToken {
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
        let user_token = cadre_server::auth::issue_token(
            engine.store().as_ref(),
            cadre_server::auth::NewToken {
                name: "bob",
                role: Role::User,
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            cadre.run(state, Some(listener), 2, shutdown).await.unwrap();
        });
        Self {
            base,
            token,
            user_token,
            client: reqwest::Client::new(),
            _files: files,
            _database: database,
            stop,
            task,
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, body)
    }

    /// Submits `pages` to start `workflow`.
    async fn submit(&self, workflow: &str, pages: Value) -> (StatusCode, Value) {
        self.call(
            reqwest::Method::POST,
            &format!("/api/processes/{workflow}"),
            Some(pages),
        )
        .await
    }

    /// Starts `workflow` with every page answered and waits until it completes or fails;
    /// returns the process.
    async fn finish(&self, workflow: &str, pages: Value) -> Value {
        let (status, body) = self.submit(workflow, pages).await;
        assert_eq!(status, StatusCode::CREATED, "{workflow}: {body}");
        let id = body["id"].as_str().unwrap();
        for _ in 0..200 {
            let (_, process) = self
                .call(reqwest::Method::GET, &format!("/api/processes/{id}"), None)
                .await;
            if ["completed", "failed"].contains(&process["last_status"].as_str().unwrap()) {
                return process;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{workflow} did not finish");
    }

    /// Runs `workflow` to completion; returns the subscription it worked on.
    async fn run(&self, workflow: &str, pages: Value) -> String {
        let process = self.finish(workflow, pages).await;
        assert_eq!(process["last_status"], json!("completed"), "{process}");
        process["current_state"]["subscription_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn subscription(&self, id: &str) -> Value {
        let (status, body) = self
            .call(
                reqwest::Method::GET,
                &format!("/api/subscriptions/{id}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// The values of the Mailbox block in a subscription's detail.
fn mailbox_values(detail: &Value) -> &Value {
    &detail["domain_model"]["blocks"][0]["values"]
}

#[tokio::test]
async fn a_mailbox_is_created_modified_and_terminated_through_its_forms_beside_the_built_ins() {
    let server = Server::start().await;
    let group = server
        .run(
            "create_user_group",
            json!([{"product": USER_GROUP_PRODUCT_ID}, {"user_group_id": "staff", "user_group_name": "Staff"}]),
        )
        .await;
    // The user choices of a form are reused for up to a second.
    tokio::time::sleep(cadre_forms::standard::CHOICES_TTL).await;
    let ada = server
        .run(
            "create_user",
            json!([{"product": USER_INTERNAL_PRODUCT_ID},
                   {"user_id": "ada", "username": "ada", "email": "ada@example.org", "user_group_ids": [group]}]),
        )
        .await;
    tokio::time::sleep(cadre_forms::standard::CHOICES_TTL).await;

    // Page one offers the Mailbox product and only it.
    let (status, first) = server.submit("create_mailbox", json!([])).await;
    assert_eq!(status.as_u16(), 510, "{first}");
    let products = &first["form"]["$defs"]["ProductChoice"]["options"];
    assert_eq!(
        products,
        &json!({MAILBOX_PRODUCT_ID.to_string(): "Mailbox"})
    );
    // Page two offers the active users as owners.
    let product = json!({"product": MAILBOX_PRODUCT_ID});
    let (status, second) = server.submit("create_mailbox", json!([product])).await;
    assert_eq!(status.as_u16(), 510, "{second}");
    assert_eq!(second["form"]["title"], json!("Mailbox"));
    assert_eq!(second["form"]["$defs"]["UserEnum"]["enum"], json!([ada]));
    // A bad answer is refused with pydantic's errors, page by page.
    let (status, invalid) = server
        .submit(
            "create_mailbox",
            json!([product, {"owner": ada, "address": "nope", "quota_mb": 0}]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{invalid}");
    let kinds: Vec<&str> = invalid["validation_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["value_error", "greater_than_equal"], "{invalid}");

    let mailbox = server
        .run(
            "create_mailbox",
            json!([product, {"owner": ada, "address": "Ada@Example.org", "aliases": ["ada.lovelace@example.org"]}]),
        )
        .await;
    let detail = server.subscription(&mailbox).await;
    assert_eq!(detail["description"], json!("Mailbox ada@example.org"));
    assert_eq!(detail["status"], json!("active"));
    let values = mailbox_values(&detail);
    assert_eq!(values["address"], json!(["ada@example.org"]));
    assert_eq!(values["quota_mb"], json!(["1024"]), "the form's default");
    assert_eq!(values["aliases"], json!(["ada.lovelace@example.org"]));
    assert_eq!(
        detail["domain_model"]["blocks"][0]["relations"][0]["target"]["owner_subscription_id"],
        json!(ada)
    );

    // The crate's own route, in the same OpenAPI document as cadre's.
    let (status, listed) = server
        .call(reqwest::Method::GET, "/api/mailboxes", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(
        listed,
        json!([{"subscription_id": mailbox, "address": "ada@example.org", "quota_mb": 1024,
                "aliases": ["ada.lovelace@example.org"], "owner_subscription_id": ada}])
    );
    // Only admins list mailboxes: anonymous callers and user tokens are refused.
    let anonymous = reqwest::Client::new()
        .get(format!("{}/api/mailboxes", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let as_user = reqwest::Client::new()
        .get(format!("{}/api/mailboxes", server.base))
        .bearer_auth(&server.user_token)
        .send()
        .await
        .unwrap();
    assert_eq!(as_user.status(), StatusCode::FORBIDDEN);
    let (_, openapi) = server
        .call(reqwest::Method::GET, "/api/openapi.json", None)
        .await;
    assert!(openapi["paths"]["/api/mailboxes"]["get"].is_object());
    assert!(openapi["paths"]["/api/subscriptions"]["get"].is_object());

    // The address is an identifying value: a second mailbox cannot take it.
    let taken = server
        .finish(
            "create_mailbox",
            json!([product, {"owner": ada, "address": "ada@example.org"}]),
        )
        .await;
    assert_eq!(taken["last_status"], json!("failed"), "{taken}");
    assert!(
        taken["failed_reason"]
            .as_str()
            .unwrap()
            .contains("already holds one of these identifying values"),
        "{taken}"
    );

    server
        .run(
            "modify_mailbox",
            json!([{"subscription_id": mailbox}, {"quota_mb": 4096, "aliases": []}]),
        )
        .await;
    let values = mailbox_values(&server.subscription(&mailbox).await).clone();
    assert_eq!(values["quota_mb"], json!(["4096"]));
    assert!(values.get("aliases").is_none(), "{values}");

    server
        .run(
            "terminate_mailbox",
            json!([{"subscription_id": mailbox}, {}]),
        )
        .await;
    let detail = server.subscription(&mailbox).await;
    assert_eq!(detail["status"], json!("terminated"));

    // The built-in product still works alongside: the owner is an ordinary user.
    assert_eq!(server.subscription(&ada).await["status"], json!("active"));
    server.stop().await;
}
