//! Self-registration end to end over HTTP against a real SMTP server (in this process),
//! reading the real mails: approval off and on, decline, expiry, reuse, malformed links,
//! conflicts, admin-only endpoints, discoverable and hidden groups, group terms, and a webhook
//! receiver that fails twice before it succeeds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use cadre_domain::{Clock, SystemClock};
use cadre_engine::testing::ManualClock;
use cadre_registration::delivery::{Webhook, WebhookAction};
use cadre_registration::mail::SmtpSecurity;
use cadre_registration::testing::{Parsed, SmtpServer};
use chrono::TimeDelta;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::Server;
use super::accounts::mails_to;

const PASSWORD: &str = "a long enough password";

/// The answer to every valid submission, whether or not its name or email is taken.
const ACCEPTED_BODY: &str = r#"{"detail":"a mail is on its way to the address: follow its link to confirm the registration"}"#;

/// A server with registration on, mailing through `smtp`.
async fn server(
    smtp: &SmtpServer,
    approval: bool,
    webhooks: Vec<Webhook>,
    clock: Arc<dyn Clock>,
) -> Server {
    let smtp = smtp.config(SmtpSecurity::Plain);
    Server::start_with(
        1,
        Vec::new(),
        move |config| {
            config.smtp = Some(smtp);
            config.outbox_retry_seconds = 1;
            let registration = &mut config.registration;
            registration.enabled = true;
            registration.approval_required = approval;
            registration.approval_recipients = vec!["admins@example.com".to_owned()];
            registration.notify_recipients = vec!["notify@example.com".to_owned()];
            registration.base_url = "https://cadre.example".to_owned();
            registration.requests_per_minute = 1000;
            registration.webhooks = webhooks;
        },
        clock,
    )
    .await
}

/// The tokens of the links in `mail`, in order.
pub(super) fn tokens(mail: &Parsed) -> Vec<String> {
    mail.body
        .match_indices("/tokens/")
        .map(|(at, prefix)| {
            mail.body[at + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_hexdigit() || *c == '.')
                .collect()
        })
        .collect()
}

impl Server {
    /// Sends a request without a token; returns the status and the raw body.
    async fn anonymous(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, String) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    }

    pub(super) async fn register(
        &self,
        user_name: &str,
        email: &str,
        password: &str,
    ) -> (StatusCode, String) {
        self.anonymous(
            Method::POST,
            "/api/register/users",
            Some(json!({"user_name": user_name, "email": email, "password": password})),
        )
        .await
    }

    /// Posts the token's page form, with `admin_token` if given.
    pub(super) async fn press(
        &self,
        token: &str,
        admin_token: Option<&str>,
    ) -> (StatusCode, String) {
        let mut request = self.client.post(format!("{}/tokens/{token}", self.base));
        if let Some(admin) = admin_token {
            // API tokens are `cadre_<hex>_<hex>`: nothing to percent-encode.
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("admin_token={admin}"));
        }
        let response = request.send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    }

    /// How many groups the User subscription `user` belongs to.
    async fn group_count(&self, user: &str) -> usize {
        let (_, model) = self
            .get(&format!("/api/subscriptions/domain-model/{user}"))
            .await;
        model["user"]["groups"].as_array().unwrap().len()
    }

    /// Waits until a live user named `user_name` exists; returns its subscription id.
    pub(super) async fn wait_for_user(&self, user_name: &str) -> String {
        for _ in 0..200 {
            let (_, page) = self
                .get("/api/subscriptions?product_type=User&limit=1000")
                .await;
            let found = page["items"].as_array().unwrap().iter().find(|item| {
                item["description"].as_str().is_some_and(|description| {
                    description.starts_with(&format!("User {user_name} "))
                })
            });
            if let Some(item) = found {
                return item["subscription_id"].as_str().unwrap().to_owned();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("user {user_name} was never created");
    }
}

/// An HTTP receiver: `/hook` answers 500 to its first two calls and 200 after, `/status`
/// always 200; both keep the bodies.
async fn flaky_receiver() -> (
    String,
    Arc<AtomicU32>,
    Arc<Mutex<Vec<Value>>>,
    Arc<Mutex<Vec<Value>>>,
) {
    let calls = Arc::new(AtomicU32::new(0));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let app = {
        let statuses = Arc::clone(&statuses);
        let calls = Arc::clone(&calls);
        let bodies = Arc::clone(&bodies);
        axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                    let calls = Arc::clone(&calls);
                    let bodies = Arc::clone(&bodies);
                    async move {
                        bodies.lock().await.push(body);
                        if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                            StatusCode::INTERNAL_SERVER_ERROR
                        } else {
                            StatusCode::OK
                        }
                    }
                }),
            )
            .route(
                "/status",
                axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                    let statuses = Arc::clone(&statuses);
                    async move {
                        statuses.lock().await.push(body);
                        StatusCode::OK
                    }
                }),
            )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls, bodies, statuses)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_registration_becomes_a_user_and_is_announced_by_mail_and_webhook() {
    let smtp = SmtpServer::start();
    let (receiver, calls, bodies, statuses) = flaky_receiver().await;
    let webhook = |action, path: &str| Webhook {
        name: "directory".to_owned(),
        action,
        url: format!("{receiver}{path}"),
    };
    let webhooks = vec![
        webhook(WebhookAction::CreateUser, "/hook"),
        webhook(WebhookAction::DeleteUser, "/hook"),
        webhook(WebhookAction::UpdateUserStatus, "/status"),
    ];
    let server = server(&smtp, false, webhooks, Arc::new(SystemClock)).await;

    // Each invalid field is a 400 that names it.
    for (name, email, password, field) in [
        ("Ada", "ada@example.com", PASSWORD, "user_name"),
        ("ada", "not-an-email", PASSWORD, "email"),
        ("ada", "ada@example.com", "too short", "password"),
        // Long enough, but among the most used passwords, or made of the user's own name.
        ("ada", "ada@example.com", "password1234", "password"),
        ("ada", "ada@example.com", "adaadaadaada", "password"),
        ("admin", "ada@example.com", PASSWORD, "user_name"),
    ] {
        let (status, body) = server.register(name, email, password).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains(&format!("invalid {field}")), "{body}");
    }
    let (status, body) = server.register("ada", "Ada@Example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body, ACCEPTED_BODY);
    assert!(
        !body.contains("/tokens/"),
        "the submitter never sees a link: {body}"
    );

    let confirm = &mails_to(&smtp, "ada@example.com", 1).await[0];
    let [token] = tokens(confirm).try_into().unwrap();
    assert!(
        confirm.body.contains("https://cadre.example/tokens/"),
        "{}",
        confirm.body
    );

    let (status, _) = server
        .anonymous(Method::GET, "/tokens/not-a-token", None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (id, _) = token.split_once('.').unwrap();
    let forged = format!("{id}.{}", "0".repeat(64));
    let (status, _) = server
        .anonymous(Method::GET, &format!("/tokens/{forged}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for _ in 0..2 {
        let (status, page) = server
            .anonymous(Method::GET, &format!("/tokens/{token}"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(r#"<form method="post">"#), "{page}");
    }
    let (_, pending) = server.get("/api/register/users/ada").await;
    assert_eq!(
        pending["status"], "pending",
        "opening the link changed nothing"
    );

    let (status, page) = server.press(&token, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (status, _) = server.press(&token, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a link works once");

    let ada = server.wait_for_user("ada").await;
    let approved = mails_to(&smtp, "ada@example.com", 2).await;
    assert_eq!(
        approved[0].header("Subject"),
        "Confirm your email address for cadre"
    );
    assert_eq!(approved[1].header("Subject"), "Welcome to cadre");
    let notified = &mails_to(&smtp, "notify@example.com", 1).await[0];
    assert_eq!(notified.header("Subject"), "ada registered at cadre");
    // The approved mail is recorded with the hash, in the registration's last step.
    let hash = server
        .engine
        .store()
        .credentials(ada.parse().unwrap())
        .await
        .unwrap()
        .expect("the password hash moved to the user");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let passwords = cadre_registration::Passwords::new(Default::default(), 1).unwrap();
    assert_eq!(
        passwords.verify(PASSWORD, &hash).await,
        Ok(cadre_registration::Verified::Match { rehash: false })
    );
    assert_eq!(
        passwords.verify("another password", &hash).await,
        Ok(cadre_registration::Verified::Mismatch)
    );
    let (status, _) = server.get("/api/register/users/ada").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no longer pending");
    let (status, body) = server.register("ada", "new@example.com", PASSWORD).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::ACCEPTED, ACCEPTED_BODY),
        "a user holds the name now, and the answer does not say so"
    );
    let refused = &mails_to(&smtp, "new@example.com", 1).await[0];
    assert!(
        refused
            .header("Subject")
            .contains("choose another user name"),
        "{}",
        refused.header("Subject")
    );
    assert!(tokens(refused).is_empty(), "{}", refused.body);

    // The webhook failed twice and was retried until it succeeded.
    let deadline = Instant::now() + Duration::from_secs(20);
    while calls.load(Ordering::SeqCst) < 3 {
        assert!(
            Instant::now() < deadline,
            "the webhook was called {} times",
            calls.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3, "no call after the success");
    assert_eq!(bodies.lock().await[2]["user_name"], "ada");
    let messages = server.engine.store().list_messages().await.unwrap();
    let webhook = messages
        .iter()
        .find(|message| message.kind == cadre_domain::OutboxKind::Webhook && message.attempts > 1)
        .unwrap();
    assert_eq!(webhook.attempts, 3);
    assert!(webhook.delivered_at.is_some());

    // Disabling and enabling the user call the status webhooks only; a modify that leaves the
    // lifecycle as it was calls none.
    let wait_for_statuses = |count: usize| {
        let statuses = Arc::clone(&statuses);
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            while statuses.lock().await.len() < count {
                assert!(
                    Instant::now() < deadline,
                    "the status webhooks were not called"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            statuses.lock().await[count - 1].clone()
        }
    };
    assert_eq!(wait_for_statuses(1).await["status"], "active");
    for (workflow, status) in [("disable_user", "disabled"), ("enable_user", "active")] {
        let process = server
            .start_process(workflow, json!([{"subscription_id": ada}, {}]))
            .await;
        server.wait_for(&process, &["completed"]).await;
        let seen = statuses.lock().await.len();
        let body = wait_for_statuses(seen + 1).await;
        assert_eq!(
            (&body["action"], &body["status"], &body["user_name"]),
            (&json!("update_user_status"), &json!(status), &json!("ada")),
            "{workflow}"
        );
    }
    let modify = server
        .start_process(
            "modify_user",
            json!([{"subscription_id": ada}, {"firstname": "Ada"}]),
        )
        .await;
    server.wait_for(&modify, &["completed"]).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3, "no create or delete call");

    // Terminating the user calls the delete_user webhook.
    let terminate = server
        .start_process("terminate_user", json!([{"subscription_id": ada}, {}]))
        .await;
    server.wait_for(&terminate, &["completed"]).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while calls.load(Ordering::SeqCst) < 4 {
        assert!(
            Instant::now() < deadline,
            "the delete_user webhook was not called"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deleted = &bodies.lock().await[3];
    assert_eq!(
        (&deleted["action"], &deleted["user_name"]),
        (&json!("delete_user"), &json!("ada"))
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while statuses.lock().await.len() < 4 {
        assert!(
            Instant::now() < deadline,
            "the status webhooks were not called"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen: Vec<Value> = statuses
        .lock()
        .await
        .iter()
        .map(|body| body["status"].clone())
        .collect();
    assert_eq!(
        seen,
        [
            json!("active"),
            json!("disabled"),
            json!("active"),
            json!("terminated")
        ],
        "and none for the modify"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_approve_or_decline_confirmed_registrations_and_links_expire() {
    let smtp = SmtpServer::start();
    let clock = ManualClock::new();
    let server = server(&smtp, true, Vec::new(), clock.clone()).await;
    let (_, user_token) = server
        .create_user("member", &server.create_group("staff", "Staff").await)
        .await;

    let (status, _) = server
        .anonymous(Method::GET, "/api/register/users", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server
        .call(Method::GET, "/api/register/users", Some(&user_token), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    for name in ["bob", "cy"] {
        let (status, body) = server
            .register(name, &format!("{name}@example.com"), PASSWORD)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let confirm = &mails_to(&smtp, &format!("{name}@example.com"), 1).await[0];
        let [token] = tokens(confirm).try_into().unwrap();
        let (status, _) = server.press(&token, None).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, listed) = server.get("/api/register/users").await;
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["user_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bob", "cy"]);
    assert_eq!(listed["items"][0]["status"], "confirmed");
    let requests = mails_to(&smtp, "admins@example.com", 2).await;
    let link = |mail: &Parsed, verb: &str| -> String {
        let tokens = tokens(mail);
        assert_eq!(tokens.len(), 2, "{}", mail.body);
        // The approve link comes first in the bundled template.
        if verb == "approve" {
            tokens[0].clone()
        } else {
            tokens[1].clone()
        }
    };
    let bob = requests
        .iter()
        .find(|mail| mail.body.contains("bob"))
        .unwrap();
    let cy = requests
        .iter()
        .find(|mail| mail.body.contains("cy"))
        .unwrap();

    // Approving needs an admin: 401 without a token, 403 with a user's.
    let approve = link(bob, "approve");
    let (_, page) = server
        .anonymous(Method::GET, &format!("/tokens/{approve}"), None)
        .await;
    assert!(page.contains("Approve a registration"), "{page}");
    let (status, _) = server.press(&approve, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = server.press(&approve, Some(&user_token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, page) = server.press(&approve, Some(&server.admin)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    server.wait_for_user("bob").await;
    assert_eq!(mails_to(&smtp, "bob@example.com", 2).await.len(), 2);
    let (status, _) = server
        .press(&link(bob, "decline"), Some(&server.admin))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the other link went with the registration"
    );

    let (status, _) = server
        .press(&link(cy, "decline"), Some(&server.admin))
        .await;
    assert_eq!(status, StatusCode::OK);
    let declined = mails_to(&smtp, "cy@example.com", 2).await;
    assert!(
        declined[1].body.to_lowercase().contains("declin"),
        "{}",
        declined[1].body
    );
    let (status, _) = server.get("/api/register/users/cy").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A confirmation link dies after a day; resending mails a fresh one, silently.
    let (status, _) = server.register("dee", "dee@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let [stale] = tokens(&mails_to(&smtp, "dee@example.com", 1).await[0])
        .try_into()
        .unwrap();
    clock.advance(TimeDelta::hours(25));
    let (status, _) = server
        .anonymous(Method::GET, &format!("/tokens/{stale}"), None)
        .await;
    assert_eq!(status, StatusCode::GONE);
    let (status, _) = server
        .anonymous(Method::GET, &format!("/tokens/{stale}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an expired link is deleted");
    let mut answers = Vec::new();
    for email in ["dee@example.com", "nobody@example.com"] {
        let body = Some(json!({"email": email}));
        answers.push(
            server
                .anonymous(Method::POST, "/api/register/users/resend", body)
                .await,
        );
    }
    assert_eq!(answers[0].0, StatusCode::ACCEPTED, "{}", answers[0].1);
    assert_eq!(
        answers[0], answers[1],
        "a resend tells nothing about the address"
    );
    let [fresh] = tokens(&mails_to(&smtp, "dee@example.com", 2).await[1])
        .try_into()
        .unwrap();
    let (status, _) = server.press(&fresh, None).await;
    assert_eq!(status, StatusCode::OK);

    // Registrations whose links all expired are purged.
    let (status, _) = server.register("eve", "eve@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    clock.advance(TimeDelta::days(8));
    assert!(
        server
            .engine
            .store()
            .purge_expired(clock.now())
            .await
            .unwrap()
            >= 1
    );
    let (status, _) = server.get("/api/register/users/eve").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_groups_answer_like_missing_ones_and_terms_wait_for_acceptance() {
    let smtp = SmtpServer::start();
    let server = server(&smtp, false, Vec::new(), Arc::new(SystemClock)).await;
    let mut groups = Vec::new();
    for (id, discoverable, terms) in [
        ("open", true, Value::Null),
        ("secret", false, Value::Null),
        ("club", true, json!("Be kind.")),
    ] {
        let process = server
            .start_process(
                "create_user_group",
                json!([{"product": cadre_migrations::demo::USER_GROUP_PRODUCT_ID},
                       {"user_group_id": id, "user_group_name": id, "discoverable": discoverable, "terms": terms}]),
            )
            .await;
        let process = server.wait_for(&process, &["completed"]).await;
        groups.push(
            process["current_state"]["subscription_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let (user, token) = server.create_user("member", &groups[0]).await;
    let call = |method: Method, path: String| {
        let token = token.clone();
        let server = &server;
        async move {
            let response = server
                .client
                .request(method, format!("{}{path}", server.base))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };

    let (status, listed) = call(Method::GET, "/api/register/groups".to_owned()).await;
    assert_eq!(status, StatusCode::OK);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| group["user_group_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["club", "open"]);
    assert_eq!(listed["items"][0]["terms"], "Be kind.");
    let hidden = call(Method::GET, "/api/register/groups/secret".to_owned()).await;
    let missing = call(Method::GET, "/api/register/groups/nothing".to_owned()).await;
    assert_eq!(hidden.0, StatusCode::NOT_FOUND);
    assert_eq!(
        hidden, missing,
        "a hidden group answers byte for byte like a missing one"
    );
    assert_eq!(
        call(Method::POST, "/api/register/groups/secret".to_owned()).await,
        call(Method::POST, "/api/register/groups/nothing".to_owned()).await
    );
    let (status, _) = server
        .anonymous(Method::GET, "/api/register/groups", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, _) = call(Method::POST, "/api/register/groups/open".to_owned()).await;
    assert_eq!(status, StatusCode::CONFLICT, "already a member");
    let (status, body) = call(Method::POST, "/api/register/groups/club".to_owned()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let terms = &mails_to(&smtp, "member@example.org", 1).await[0];
    assert!(terms.body.contains("Be kind."), "{}", terms.body);
    let [accept] = tokens(terms).try_into().unwrap();
    assert_eq!(
        server.group_count(&user).await,
        1,
        "membership waits for the terms"
    );
    let (_, page) = server
        .anonymous(Method::GET, &format!("/tokens/{accept}"), None)
        .await;
    assert!(page.contains("Be kind."), "{page}");
    let (status, page) = server.press(&accept, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.group_count(&user).await < 2 {
        assert!(Instant::now() < deadline, "the membership was never added");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    mails_to(&smtp, "member@example.org", 2).await;

    let (status, body) = call(Method::DELETE, "/api/register/groups/club".to_owned()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.group_count(&user).await > 1 {
        assert!(
            Instant::now() < deadline,
            "the membership was never removed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_and_link_visits_are_rate_limited_per_address() {
    let server = Server::start_with(
        1,
        Vec::new(),
        |config| {
            config.registration.enabled = true;
            config.registration.requests_per_minute = 3;
        },
        Arc::new(SystemClock),
    )
    .await;
    let mut statuses = Vec::new();
    for n in 0..3 {
        statuses.push(server.register(&format!("u{n}"), "x", PASSWORD).await.0);
    }
    assert_eq!(statuses, [StatusCode::BAD_REQUEST; 3]);
    let response = server
        .client
        .post(format!("{}/api/register/users", server.base))
        .json(&json!({"user_name": "u9", "email": "u9@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=60).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    let (status, _) = server
        .anonymous(Method::GET, "/tokens/anything", None)
        .await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "token visits share the budget"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_routes_do_not_exist_while_registration_is_off() {
    let server = Server::start(1).await;
    let (status, body) = server.register("ada", "ada@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, unknown) = server
        .anonymous(Method::GET, "/api/no-such-thing", None)
        .await;
    assert_eq!(body, unknown, "the same answer as an unknown path");
    server.stop().await;
}

/// Issue #18: a submission never tells whether its name or email is taken; the owner of a
/// taken address is told by mail, an applicant whose name is taken too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_never_tell_whether_a_name_or_an_email_is_taken() {
    let smtp = SmtpServer::start();
    let server = server(&smtp, false, Vec::new(), Arc::new(SystemClock)).await;
    let staff = server.create_group("staff", "Staff").await;
    // A user made by an admin, named with capitals: `Zed`, zed@example.org.
    server.create_user("Zed", &staff).await;

    let mut answers = Vec::new();
    for (name, email) in [
        ("ada", "ada@example.com"),     // free
        ("ada", "other@example.com"),   // the name is a registration's
        ("ada2", "ADA@example.com"),    // the address is a registration's
        ("zed", "zed.new@example.com"), // the name is a user's, in another case
        ("someone", "ZED@example.org"), // the address is a user's
        ("ada", "ada@example.com"),     // both are a registration's
    ] {
        answers.push(server.register(name, email, PASSWORD).await);
    }
    for answer in &answers {
        assert_eq!(
            (answer.0, answer.1.as_str()),
            (StatusCode::ACCEPTED, ACCEPTED_BODY)
        );
    }

    // The free one got its link; the owner of each taken address a mail without one.
    let to_ada = mails_to(&smtp, "ada@example.com", 3).await;
    let subjects: Vec<&str> = to_ada.iter().map(|mail| mail.header("Subject")).collect();
    assert_eq!(
        subjects
            .iter()
            .filter(|subject| subject.starts_with("Confirm"))
            .count(),
        1,
        "{subjects:?}"
    );
    for mail in to_ada
        .iter()
        .filter(|mail| !mail.header("Subject").starts_with("Confirm"))
        .chain(mails_to(&smtp, "zed@example.org", 1).await.iter())
    {
        assert!(
            mail.header("Subject").contains("tried to use your address"),
            "{}",
            mail.header("Subject")
        );
        assert!(tokens(mail).is_empty(), "no link: {}", mail.body);
    }
    // A taken name with a free address: that address hears the name cannot be used.
    for address in ["other@example.com", "zed.new@example.com"] {
        let [mail] = mails_to(&smtp, address, 1).await.try_into().unwrap();
        assert!(
            mail.header("Subject").contains("choose another user name"),
            "{}",
            mail.header("Subject")
        );
        assert!(tokens(&mail).is_empty(), "no link: {}", mail.body);
    }
    let (_, listed) = server.get("/api/register/users").await;
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["user_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ada"], "only the free submission was kept");

    // Such mails are limited per address (three an hour): submissions cannot flood an owner.
    for n in 0..4 {
        let (status, body) = server
            .register(&format!("flood{n}"), "zed@example.org", PASSWORD)
            .await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::ACCEPTED, ACCEPTED_BODY)
        );
    }
    mails_to(&smtp, "zed@example.org", 3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mails_to(&smtp, "zed@example.org", 3).await.len(), 3);
    server.stop().await;
}

/// Issue #18: a resend invalidates the earlier links, and only a few are sent per address and
/// hour (counted in the database), with the same answer beyond.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resending_replaces_earlier_links_and_is_limited_per_address() {
    let smtp = SmtpServer::start();
    let clock = ManualClock::new();
    let server = server(&smtp, false, Vec::new(), clock.clone()).await;
    let (status, _) = server.register("dee", "dee@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let resend = || async {
        server
            .anonymous(
                Method::POST,
                "/api/register/users/resend",
                Some(json!({"email": "Dee@example.com"})),
            )
            .await
    };
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(resend().await);
    }
    let unknown = server
        .anonymous(
            Method::POST,
            "/api/register/users/resend",
            Some(json!({"email": "nobody@example.com"})),
        )
        .await;
    assert_eq!(answers[0].0, StatusCode::ACCEPTED);
    assert!(
        answers.iter().all(|answer| *answer == unknown),
        "{answers:?}"
    );

    // One link at submission and three resends (the hourly limit), then nothing.
    let mails = mails_to(&smtp, "dee@example.com", 4).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mails_to(&smtp, "dee@example.com", 4).await.len(), 4);
    // Exactly one link works: the last one issued (resends are done after their answer, so
    // which of them was last is not the order of the requests).
    let mut working = Vec::new();
    for link in mails
        .iter()
        .map(|mail| tokens(mail).into_iter().next().unwrap())
    {
        let (status, _) = server
            .anonymous(Method::GET, &format!("/tokens/{link}"), None)
            .await;
        match status {
            StatusCode::OK => working.push(link),
            status => assert_eq!(status, StatusCode::NOT_FOUND),
        }
    }
    let [newest] = working.try_into().unwrap();
    let newest = &newest;
    let (_, pending) = server.get("/api/register/users/dee").await;
    assert_eq!(pending["links"].as_array().unwrap().len(), 1, "{pending}");

    // An hour later, one more may go; it replaces the newest.
    clock.advance(TimeDelta::minutes(61));
    assert_eq!(resend().await, unknown);
    let mails = mails_to(&smtp, "dee@example.com", 5).await;
    let (status, _) = server
        .anonymous(Method::GET, &format!("/tokens/{newest}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let [fresh] = tokens(&mails[4]).try_into().unwrap();
    let (status, _) = server.press(&fresh, None).await;
    assert_eq!(status, StatusCode::OK);
    server.wait_for_user("dee").await;
    server.stop().await;
}

/// Issue #18: using a link and starting its process are one transaction: of 20 concurrent
/// uses one succeeds, one process exists, and no orphan `initial` subscription is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uses_of_one_link_complete_once_and_leave_no_orphan() {
    let smtp = SmtpServer::start();
    let server = server(&smtp, false, Vec::new(), Arc::new(SystemClock)).await;
    let (status, _) = server.register("kit", "kit@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let [token] = tokens(&mails_to(&smtp, "kit@example.com", 1).await[0])
        .try_into()
        .unwrap();
    let mut presses = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let client = server.client.clone();
        let url = format!("{}/tokens/{token}", server.base);
        presses.spawn(async move { client.post(url).send().await.unwrap().status() });
    }
    let mut statuses = Vec::new();
    while let Some(status) = presses.join_next().await {
        statuses.push(status.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| [StatusCode::OK, StatusCode::NOT_FOUND].contains(s)),
        "{statuses:?}"
    );
    server.wait_for_user("kit").await;
    let store = server.engine.store();
    let processes = store
        .list_processes(&cadre_domain::ProcessQuery {
            workflow_name: Some("complete_registration".to_owned()),
            ..cadre_domain::ProcessQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(processes.total, 1, "{:?}", processes.items);
    let orphans = store
        .list_subscriptions(&cadre_domain::SubscriptionQuery {
            lifecycle: Some(cadre_domain::Lifecycle::Initial),
            ..cadre_domain::SubscriptionQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(orphans.total, 0, "{:?}", orphans.items);
    server.stop().await;
}

/// Issue #18: the purge never touches a registration whose completion is pending, and an
/// admin may not delete it while its process may still run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_purge_leaves_a_registration_whose_completion_is_pending() {
    let clock = ManualClock::new();
    // No workers: the completion stays pending (and the outbox undelivered).
    let server = Server::start_with(
        0,
        Vec::new(),
        |config| {
            config.registration.enabled = true;
            config.registration.requests_per_minute = 1000;
        },
        clock.clone(),
    )
    .await;
    let (status, _) = server.register("fay", "fay@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let store = server.engine.store();
    let [token] = outbox_tokens(&server, 0).await.try_into().unwrap();
    let (status, page) = server.press(&token, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");

    clock.advance(TimeDelta::days(30));
    assert_eq!(store.purge_expired(clock.now()).await.unwrap(), 0);
    let (status, pending) = server.get("/api/register/users/fay").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pending["status"], "completing");
    let (status, _) = server
        .call(
            Method::DELETE,
            "/api/register/users/fay",
            Some(&server.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "its process may still run");

    // Once the process is aborted, an admin may clean up.
    let processes = store
        .list_processes(&cadre_domain::ProcessQuery {
            workflow_name: Some("complete_registration".to_owned()),
            ..cadre_domain::ProcessQuery::default()
        })
        .await
        .unwrap();
    server
        .engine
        .abort(processes.items[0].id, "test")
        .await
        .unwrap();
    let (status, _) = server
        .call(
            Method::DELETE,
            "/api/register/users/fay",
            Some(&server.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    server.stop().await;
}

/// The tokens of the links in the outbox message `index` (for servers without workers, whose
/// outbox is not delivered).
async fn outbox_tokens(server: &Server, index: usize) -> Vec<String> {
    let outbox = server.engine.store().list_messages().await.unwrap();
    let payload = outbox[index].payload.to_string();
    payload
        .match_indices("/tokens/")
        .map(|(at, prefix)| {
            payload[at + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_hexdigit() || *c == '.')
                .collect()
        })
        .collect()
}

/// Issue #18: once an approval started the completion, the decline link of the same request is
/// gone, so it cannot remove the registration under its process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decline_after_the_approval_finds_its_link_gone() {
    // No workers: the completion stays pending.
    let server = Server::start_with(
        0,
        Vec::new(),
        |config| {
            config.registration.enabled = true;
            config.registration.approval_required = true;
            config.registration.approval_recipients = vec!["admins@example.com".to_owned()];
            config.registration.requests_per_minute = 1000;
        },
        Arc::new(SystemClock),
    )
    .await;
    let (status, _) = server.register("gil", "gil@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let [confirm] = outbox_tokens(&server, 0).await.try_into().unwrap();
    assert_eq!(server.press(&confirm, None).await.0, StatusCode::OK);
    let [approve, decline] = outbox_tokens(&server, 1).await.try_into().unwrap();
    let (status, page) = server.press(&approve, Some(&server.admin)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (status, _) = server.press(&decline, Some(&server.admin)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, pending) = server.get("/api/register/users/gil").await;
    assert_eq!(pending["status"], "completing");
    assert_eq!(pending["links"], json!([]));
    server.stop().await;
}
