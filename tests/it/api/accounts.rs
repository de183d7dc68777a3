//! Accounts end to end over HTTP: signing in by name or email, the session cookie and its CSRF
//! token, refusals that look alike, throttling and the lock after too many failures, password
//! changes and mailed resets (through a real SMTP server in this process), parameter upgrades,
//! and sessions that stop working when their user is disabled or terminated.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cadre_domain::{Clock, SystemClock};
use cadre_engine::testing::ManualClock;
use cadre_registration::mail::SmtpSecurity;
use cadre_registration::testing::{Parsed, SmtpServer};
use cadre_registration::{Argon2Settings, Passwords};
use chrono::TimeDelta;
use insta::assert_json_snapshot;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use super::Server;

pub(super) const PASSWORD: &str = "a long enough password";

/// Cheap argon2id parameters, so the tests spend their time on what they test.
pub(super) const CHEAP: Argon2Settings = Argon2Settings {
    memory_kib: 1024,
    iterations: 1,
    parallelism: 1,
};

/// A server whose accounts use cheap hashes, a generous address budget and then `configure`,
/// mailing through `smtp` if given.
pub(super) async fn server(
    smtp: Option<&SmtpServer>,
    clock: Arc<dyn Clock>,
    configure: impl FnOnce(&mut cadre_server::Config) + Send + 'static,
) -> Server {
    server_with_workflows(Vec::new(), smtp, clock, configure).await
}

/// [`server`] running the workflows `extra` too.
pub(super) async fn server_with_workflows(
    extra: Vec<cadre_engine::Workflow>,
    smtp: Option<&SmtpServer>,
    clock: Arc<dyn Clock>,
    configure: impl FnOnce(&mut cadre_server::Config) + Send + 'static,
) -> Server {
    let smtp = smtp.map(|smtp| smtp.config(SmtpSecurity::Plain));
    Server::start_with(
        1,
        extra,
        move |config| {
            config.smtp = smtp;
            config.outbox_retry_seconds = 1;
            config.registration.base_url = "http://cadre.example".to_owned();
            config.accounts.argon2 = CHEAP;
            config.accounts.sign_ins_per_minute = 1000;
            configure(config);
        },
        clock,
    )
    .await
}

/// A session as a browser keeps it: the cookie, and the CSRF token from the sign-in answer.
pub(super) struct Browser {
    pub(super) cookie: String,
    pub(super) csrf: String,
}

impl Server {
    /// An active user `name` (in a fresh group) whose password is `password`, hashed with
    /// `settings`; returns the subscription id.
    pub(super) async fn user_with_password(
        &self,
        name: &str,
        password: &str,
        settings: Argon2Settings,
    ) -> Uuid {
        let group = self
            .create_group(&format!("{name}_group"), &format!("{name} group"))
            .await;
        let (id, _) = self.create_user(name, &group).await;
        let id: Uuid = id.parse().unwrap();
        let hash = Passwords::new(settings, 1)
            .unwrap()
            .hash(password)
            .await
            .unwrap();
        self.engine
            .store()
            .store_credentials(id, &hash, SystemClock.now())
            .await
            .unwrap();
        id
    }

    /// An admin `name` whose password is [`PASSWORD`] (hashed cheaply); returns the
    /// subscription id.
    pub(super) async fn admin_with_password(&self, name: &str) -> Uuid {
        let id = self.user_with_password(name, PASSWORD, CHEAP).await;
        self.engine
            .store()
            .set_roles(id, &[cadre_domain::Role::Admin])
            .await
            .unwrap();
        id
    }

    /// Signs in; returns the status, the body and the `Set-Cookie` header.
    pub(super) async fn sign_in(
        &self,
        username: &str,
        password: &str,
    ) -> (StatusCode, Value, Option<String>) {
        let response = self
            .client
            .post(format!("{}/api/auth/login", self.base))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let set_cookie = response
            .headers()
            .get("set-cookie")
            .map(|value| value.to_str().unwrap().to_owned());
        (status, response.json().await.unwrap(), set_cookie)
    }

    /// Signs in, expecting success.
    pub(super) async fn browser(&self, username: &str, password: &str) -> Browser {
        let (status, body, set_cookie) = self.sign_in(username, password).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let set_cookie = set_cookie.expect("a session cookie");
        let pair = set_cookie.split(';').next().unwrap();
        Browser {
            cookie: pair.to_owned(),
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Sends a request with `browser`'s cookie, and its CSRF token if `csrf`.
    pub(super) async fn as_browser(
        &self,
        browser: &Browser,
        method: Method,
        path: &str,
        csrf: bool,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &browser.cookie);
        if csrf {
            request = request.header("x-csrf-token", &browser.csrf);
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
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cookie_authenticates_and_its_unsafe_requests_need_the_csrf_token() {
    let server = server(None, Arc::new(SystemClock), |_| {}).await;
    let ada = server.user_with_password("ada", PASSWORD, CHEAP).await;

    let (status, body, set_cookie) = server.sign_in("ada", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_id"], json!(ada));
    assert_eq!(body["name"], "ada");
    assert_eq!(body["roles"], json!(["user"]));
    let set_cookie = set_cookie.unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(
        !set_cookie.contains("Secure"),
        "an http:// address: {set_cookie}"
    );
    let value = set_cookie.split(';').next().unwrap();
    let secret = value.rsplit('.').next().unwrap();
    let session = server
        .engine
        .store()
        .session(
            value["cadre_session=".len()..]
                .split('.')
                .next()
                .unwrap()
                .parse()
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(
        !session.secret_hash.contains(secret),
        "only a hash is stored"
    );

    // By email too, case folded.
    let browser = server.browser("ADA@example.org", PASSWORD).await;
    let (status, me) = server
        .as_browser(&browser, Method::GET, "/api/auth/me", false, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["via"], "session");
    assert_eq!(me["csrf_token"], json!(browser.csrf));
    let (status, _) = server
        .as_browser(&browser, Method::GET, "/api/subscriptions", false, None)
        .await;
    assert_eq!(status, StatusCode::OK, "a session reads like a token");

    // An unsafe request by cookie needs the session's own CSRF token.
    let (status, problem) = server
        .as_browser(&browser, Method::POST, "/api/auth/logout", false, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(problem["code"], "csrf_token_missing");
    let other = server.browser("ada", PASSWORD).await;
    let crossed = Browser {
        cookie: browser.cookie.clone(),
        csrf: other.csrf.clone(),
    };
    let (status, _) = server
        .as_browser(&crossed, Method::POST, "/api/auth/logout", true, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another session's token");

    let (status, _) = server
        .as_browser(&browser, Method::POST, "/api/auth/logout", true, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server
        .as_browser(&browser, Method::GET, "/api/auth/me", false, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "signed out");
    let (status, _) = server
        .as_browser(&other, Method::GET, "/api/auth/me", false, None)
        .await;
    assert_eq!(status, StatusCode::OK, "the other session lives on");

    // Everywhere ends every session of the user.
    let third = server.browser("ada", PASSWORD).await;
    let (status, _) = server
        .as_browser(
            &third,
            Method::POST,
            "/api/auth/logout?everywhere=true",
            true,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server
        .as_browser(&other, Method::GET, "/api/auth/me", false, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A token has no session to end.
    let (status, _) = server
        .call(Method::POST, "/api/auth/logout", Some(&server.user), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_sign_ins_look_alike() {
    let server = server(None, Arc::new(SystemClock), |_| {}).await;
    server.user_with_password("ada", PASSWORD, CHEAP).await;
    let group = server.create_group("nopass", "No password").await;
    server.create_user("grace", &group).await;

    let (status, wrong, cookie) = server.sign_in("ada", "not the password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(cookie.is_none());
    assert_json_snapshot!("sign_in_refused", wrong);
    for (name, password) in [
        ("nobody", PASSWORD),
        ("nobody@example.org", PASSWORD),
        ("grace", PASSWORD),
        ("", ""),
        ("ada", &"x".repeat(5000)),
    ] {
        let (status, body, cookie) = server.sign_in(name, password).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(body, wrong, "{name}: the same body");
        assert!(cookie.is_none());
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_lock_sign_in_for_a_growing_while_and_at_the_limit_until_a_reset() {
    let clock = ManualClock::new();
    let server = server(None, clock.clone(), |config| {
        config.accounts.free_failures = 2;
        config.accounts.max_failures = 5;
    })
    .await;
    let ada = server.user_with_password("ada", PASSWORD, CHEAP).await;
    let refused = |status: StatusCode| status == StatusCode::UNAUTHORIZED;

    for _ in 0..2 {
        assert!(refused(server.sign_in("ada", "wrong").await.0));
    }
    // Two free failures: the right password still works, and clears the count.
    assert_eq!(server.sign_in("ada", PASSWORD).await.0, StatusCode::OK);
    assert_eq!(
        server.engine.store().login_failures(ada).await.unwrap(),
        None
    );

    for _ in 0..3 {
        assert!(refused(server.sign_in("ada", "wrong").await.0));
    }
    // The third failure in a row locked sign-in for a second: the right password is refused.
    assert!(refused(server.sign_in("ada", PASSWORD).await.0));
    clock.advance(TimeDelta::seconds(1));
    // The fourth locks for two seconds.
    assert!(refused(server.sign_in("ada", "wrong").await.0));
    clock.advance(TimeDelta::seconds(1));
    assert!(
        refused(server.sign_in("ada", PASSWORD).await.0),
        "still locked"
    );
    clock.advance(TimeDelta::seconds(1));
    // The fifth failure reaches the limit: no wait ends it.
    assert!(refused(server.sign_in("ada", "wrong").await.0));
    clock.advance(TimeDelta::hours(24));
    assert!(refused(server.sign_in("ada", PASSWORD).await.0));
    let failures = server
        .engine
        .store()
        .login_failures(ada)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failures.failures, 5, "refused attempts are not counted");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_failures_never_count_past_the_limit() {
    let server = server(None, Arc::new(SystemClock), |config| {
        config.accounts.free_failures = 100;
        config.accounts.max_failures = 10;
    })
    .await;
    let ada = server.user_with_password("ada", PASSWORD, CHEAP).await;
    let attempts = (0..30).map(|_| server.sign_in("ada", "wrong"));
    for (status, _, _) in futures_util::future::join_all(attempts).await {
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let failures = server
        .engine
        .store()
        .login_failures(ada)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failures.failures, 10);
    server.stop().await;
}

/// Signs in as nobody through a proxy that says it forwards for `client`; returns the status.
async fn sign_in_forwarded_for(server: &Server, client: &str) -> StatusCode {
    server
        .client
        .post(format!("{}/api/auth/login", server.base))
        .header("x-forwarded-for", client)
        .json(&json!({"username": "nobody", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_limits_and_records_go_by_the_forwarded_client() {
    let proxied = server(None, Arc::new(SystemClock), |config| {
        config.accounts.sign_ins_per_minute = 1;
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    // Each client its own budget; what a client writes left of the proxy's entry is ignored.
    assert_eq!(
        sign_in_forwarded_for(&proxied, "203.0.113.1").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sign_in_forwarded_for(&proxied, "198.51.100.9, 203.0.113.1").await,
        StatusCode::TOO_MANY_REQUESTS,
        "the same client, whatever it prepends"
    );
    assert_eq!(
        sign_in_forwarded_for(&proxied, "203.0.113.2").await,
        StatusCode::UNAUTHORIZED,
        "another client"
    );
    let events = proxied
        .engine
        .store()
        .list_audit(&cadre_domain::AuditQuery {
            action: Some(cadre_domain::AuditAction::SignInFailed),
            limit: 10,
            ..cadre_domain::AuditQuery::default()
        })
        .await
        .unwrap();
    let addresses: Vec<String> = events
        .items
        .iter()
        .filter_map(|event| event.client_addr.clone())
        .collect();
    assert!(
        addresses.contains(&"203.0.113.2".to_owned()),
        "{addresses:?}"
    );
    proxied.stop().await;

    // Without trusted proxies the header is the client's own say, and ignored.
    let direct = server(None, Arc::new(SystemClock), |config| {
        config.accounts.sign_ins_per_minute = 1;
    })
    .await;
    assert_eq!(
        sign_in_forwarded_for(&direct, "203.0.113.1").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sign_in_forwarded_for(&direct, "203.0.113.2").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    direct.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_are_limited_per_client_address() {
    let server = server(None, Arc::new(SystemClock), |config| {
        config.accounts.sign_ins_per_minute = 3;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(
            server.sign_in("nobody", PASSWORD).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, body, _) = server.sign_in("nobody", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["code"], "rate_limited");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_upgrades_a_hash_made_with_other_parameters() {
    let server = server(None, Arc::new(SystemClock), |_| {}).await;
    let older = Argon2Settings {
        iterations: 2,
        ..CHEAP
    };
    let ada = server.user_with_password("ada", PASSWORD, older).await;
    let before = server
        .engine
        .store()
        .credentials(ada)
        .await
        .unwrap()
        .unwrap();
    assert!(before.contains("m=1024,t=2,p=1"), "{before}");
    server.browser("ada", PASSWORD).await;
    let after = server
        .engine
        .store()
        .credentials(ada)
        .await
        .unwrap()
        .unwrap();
    assert!(after.contains("m=1024,t=1,p=1"), "{after}");
    server.browser("ada", PASSWORD).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_needs_the_current_one_and_ends_the_other_sessions() {
    let server = server(None, Arc::new(SystemClock), |_| {}).await;
    server.user_with_password("ada", PASSWORD, CHEAP).await;
    let laptop = server.browser("ada", PASSWORD).await;
    let phone = server.browser("ada", PASSWORD).await;
    let new = "another long password";

    let (status, problem) = server
        .as_browser(
            &laptop,
            Method::POST,
            "/api/auth/password",
            true,
            Some(json!({"current_password": "wrong", "new_password": new})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["code"], "invalid_argument");
    let (status, _) = server
        .as_browser(
            &laptop,
            Method::POST,
            "/api/auth/password",
            true,
            Some(json!({"current_password": PASSWORD, "new_password": "short"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "too short");
    let (status, problem) = server
        .as_browser(
            &laptop,
            Method::POST,
            "/api/auth/password",
            true,
            Some(json!({"current_password": PASSWORD, "new_password": "qwertyuiop12"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "easy to guess");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("too easy to guess"),
        "{problem}"
    );
    let (status, _) = server
        .as_browser(
            &laptop,
            Method::POST,
            "/api/auth/password",
            true,
            Some(json!({"current_password": PASSWORD, "new_password": new})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let me = |browser| server.as_browser(browser, Method::GET, "/api/auth/me", false, None);
    assert_eq!(me(&laptop).await.0, StatusCode::OK, "this session stays");
    assert_eq!(me(&phone).await.0, StatusCode::UNAUTHORIZED, "others end");
    assert_eq!(
        server.sign_in("ada", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    server.browser("ada", new).await;
    server.stop().await;
}

/// Waits until `count` mails to `to` arrived; returns them, oldest first.
pub(super) async fn mails_to(smtp: &SmtpServer, to: &str, count: usize) -> Vec<Parsed> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mails: Vec<Parsed> = smtp
            .messages()
            .iter()
            .map(|received| Parsed::text(&received.raw))
            .filter(|mail| mail.header("To").contains(to))
            .collect();
        if mails.len() >= count {
            return mails;
        }
        assert!(
            Instant::now() < deadline,
            "only {} mails to {to}",
            mails.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The token of the reset link in `mail`.
pub(super) fn reset_token(mail: &Parsed) -> String {
    let at = mail.body.find("/password-reset/").expect("a reset link");
    mail.body[at + "/password-reset/".len()..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == '.')
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailed_reset_link_sets_a_new_password_once_and_ends_every_session() {
    let smtp = SmtpServer::start();
    let clock = ManualClock::new();
    let server = server(Some(&smtp), clock.clone(), |config| {
        config.accounts.max_failures = 3;
        config.accounts.free_failures = 3;
    })
    .await;
    let ada = server.user_with_password("ada", PASSWORD, CHEAP).await;
    let session = server.browser("ada", PASSWORD).await;
    for _ in 0..3 {
        server.sign_in("ada", "wrong").await;
    }
    assert_eq!(
        server.sign_in("ada", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED,
        "locked"
    );

    let reset = |email: &'static str| {
        server.call(
            Method::POST,
            "/api/auth/password-reset",
            None,
            Some(json!({"email": email})),
        )
    };
    let (status, unknown) = reset("nobody@example.org").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, known) = reset("ada@example.org").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(unknown, known, "the same answer");
    let mail = &mails_to(&smtp, "ada@example.org", 1).await[0];
    assert_eq!(mail.header("Subject"), "Reset your password for cadre");
    let first = reset_token(mail);
    // A second request replaces the first link.
    reset("ada@example.org").await;
    let second = reset_token(&mails_to(&smtp, "ada@example.org", 2).await[1]);
    assert_ne!(first, second);
    assert!(
        !smtp.messages().iter().any(|m| m.raw.contains("nobody@")),
        "no mail for an unknown address"
    );

    let confirm = |token: &str, password: &str| {
        server.call(
            Method::POST,
            "/api/auth/password-reset/confirm",
            None,
            Some(json!({"token": token, "new_password": password})),
        )
    };
    let new = "a brand new password";
    assert_eq!(
        confirm(&first, new).await.0,
        StatusCode::NOT_FOUND,
        "replaced"
    );
    assert_eq!(
        confirm("not-a-token", new).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        confirm(&second, "short").await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(confirm(&second, new).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        confirm(&second, "yet another password").await.0,
        StatusCode::NOT_FOUND,
        "used"
    );

    let (status, _) = server
        .as_browser(&session, Method::GET, "/api/auth/me", false, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "every session ended");
    assert_eq!(
        server.engine.store().login_failures(ada).await.unwrap(),
        None,
        "unlocked"
    );
    server.browser("ada", new).await;

    // A link expires.
    reset("ada@example.org").await;
    let late = reset_token(&mails_to(&smtp, "ada@example.org", 3).await[2]);
    clock.advance(TimeDelta::hours(2));
    assert_eq!(
        confirm(&late, "too late a password").await.0,
        StatusCode::GONE
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_with_their_lifetimes_and_when_their_user_is_terminated() {
    let clock = ManualClock::new();
    let server = server(None, clock.clone(), |config| {
        config.accounts.session_idle = Duration::from_secs(600);
        config.accounts.session_lifetime = Duration::from_secs(3600);
    })
    .await;
    let ada = server.user_with_password("ada", PASSWORD, CHEAP).await;
    let me = |browser| server.as_browser(browser, Method::GET, "/api/auth/me", false, None);

    let idle = server.browser("ada", PASSWORD).await;
    let busy = server.browser("ada", PASSWORD).await;
    for _ in 0..5 {
        clock.advance(TimeDelta::seconds(300));
        assert_eq!(
            me(&busy).await.0,
            StatusCode::OK,
            "used within the idle time"
        );
    }
    assert_eq!(me(&idle).await.0, StatusCode::UNAUTHORIZED, "idle too long");
    clock.advance(TimeDelta::seconds(1200));
    assert_eq!(
        me(&busy).await.0,
        StatusCode::UNAUTHORIZED,
        "past its lifetime"
    );

    let session = server.browser("ada", PASSWORD).await;
    let process = server
        .start_process("terminate_user", json!([{"subscription_id": ada}, {}]))
        .await;
    server.wait_for(&process, &["completed"]).await;
    assert_eq!(me(&session).await.0, StatusCode::UNAUTHORIZED, "terminated");
    assert_eq!(
        server.sign_in("ada", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_user_cannot_sign_in_or_use_a_session_until_enabled() {
    let server = server(None, Arc::new(SystemClock), |_| {}).await;
    let ada = server.user_with_password("ada", PASSWORD, CHEAP).await;
    let grace = server.user_with_password("grace", PASSWORD, CHEAP).await;
    let me = |browser| server.as_browser(browser, Method::GET, "/api/auth/me", false, None);
    let (_, wrong_password, _) = server.sign_in("ada", "not the password").await;

    let session = server.browser("ada", PASSWORD).await;
    let by_email = server.browser("ada@example.org", PASSWORD).await;
    let other = server.browser("grace", PASSWORD).await;
    assert_eq!(me(&session).await.0, StatusCode::OK);

    let process = server
        .start_process(
            "disable_user",
            json!([{"subscription_id": ada}, {"reason": "left for a while"}]),
        )
        .await;
    let done = server.wait_for(&process, &["completed"]).await;
    assert_eq!(done["current_state"]["sessions_ended"], json!(2));
    let (status, detail) = server.get(&format!("/api/subscriptions/{ada}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["status"], "disabled");
    assert_eq!(detail["insync"], true);

    for browser in [&session, &by_email] {
        assert_eq!(me(browser).await.0, StatusCode::UNAUTHORIZED, "disabled");
    }
    assert_eq!(me(&other).await.0, StatusCode::OK, "another user's session");
    for login in ["ada", "ada@example.org"] {
        let (status, body, cookie) = server.sign_in(login, PASSWORD).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{login}");
        assert_eq!(
            body, wrong_password,
            "{login}: refused like a wrong password"
        );
        assert!(cookie.is_none());
    }
    assert_eq!(
        server.engine.store().login_failures(ada).await.unwrap(),
        None,
        "a disabled user is not found, so no failure is counted"
    );

    // A disabled user is not disabled again, and an active one not enabled.
    let (status, body) = server
        .post(
            "/api/processes/disable_user",
            json!([{"subscription_id": ada}, {}]),
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    assert_eq!(body["code"], "not_startable");
    assert_eq!(
        body["detail"],
        format!(
            "this workflow cannot be started: subscription {ada} is disabled; disable_user needs it active"
        )
    );
    let (status, body) = server
        .post(
            "/api/processes/enable_user",
            json!([{"subscription_id": grace}, {}]),
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    assert_eq!(body["code"], "not_startable");

    let process = server
        .start_process("enable_user", json!([{"subscription_id": ada}, {}]))
        .await;
    server.wait_for(&process, &["completed"]).await;
    assert_eq!(
        me(&session).await.0,
        StatusCode::UNAUTHORIZED,
        "ended sessions stay ended"
    );
    let again = server.browser("ada", PASSWORD).await;
    assert_eq!(me(&again).await.0, StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_email_takes_the_password_and_is_confirmed_from_the_new_address() {
    let smtp = SmtpServer::start();
    let server = server(Some(&smtp), Arc::new(SystemClock), |_| {}).await;
    let ada = server.user_with_password("ada", PASSWORD, CHEAP).await;
    server.user_with_password("bob", PASSWORD, CHEAP).await;
    let session = server.browser("ada", PASSWORD).await;
    let change = |password: &str, email: &str| {
        server.as_browser(
            &session,
            Method::POST,
            "/api/auth/email",
            true,
            Some(json!({"current_password": password, "new_email": email})),
        )
    };
    let email_of_ada = || async {
        let (_, model) = server
            .get(&format!("/api/subscriptions/domain-model/{ada}"))
            .await;
        model["user"]["email"].as_str().unwrap().to_owned()
    };

    // Refusals: no CSRF token, a wrong password, an unusable or unchanged address.
    let (status, _) = server
        .as_browser(
            &session,
            Method::POST,
            "/api/auth/email",
            false,
            Some(json!({"current_password": PASSWORD, "new_email": "x@example.org"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = change("wrong", "ada.new@example.org").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["detail"],
        "current_password: is not the current password"
    );
    let (status, body) = change(PASSWORD, "\"x\"<bob@example.org>").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = change(PASSWORD, "ADA@example.org").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["detail"], "new_email: is your address already");

    // A taken address answers like a free one; its owner is told, and nothing else happens.
    let (status, taken) = change(PASSWORD, "bob@example.org").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, free) = change(PASSWORD, "ada.new@example.org").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(taken, free, "the same answer");
    let notice = &mails_to(&smtp, "bob@example.org", 1).await[0];
    assert_eq!(
        notice.header("Subject"),
        "Someone tried to use your address at cadre"
    );
    assert!(super::registration::tokens(notice).is_empty(), "no link");

    // The new address gets the link, the current one a notice without a link.
    let first = super::registration::tokens(&mails_to(&smtp, "ada.new@example.org", 1).await[0]);
    assert_eq!(first.len(), 1);
    let told = &mails_to(&smtp, "ada@example.org", 1).await[0];
    assert_eq!(
        told.header("Subject"),
        "A change of your email address at cadre"
    );
    assert!(super::registration::tokens(told).is_empty(), "no link");
    // A second request replaces the first link.
    change(PASSWORD, "ada.new@example.org").await;
    let second =
        super::registration::tokens(&mails_to(&smtp, "ada.new@example.org", 2).await[1]).remove(0);
    assert_eq!(server.press(&first[0], None).await.0, StatusCode::NOT_FOUND);

    // Looking at the link changes nothing; pressing its button makes the change, once.
    let page = server
        .client
        .get(format!("{}/tokens/{second}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("ada.new@example.org"));
    assert_eq!(email_of_ada().await, "ada@example.org");
    let (status, page) = server.press(&second, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(server.press(&second, None).await.0, StatusCode::NOT_FOUND);
    let deadline = Instant::now() + Duration::from_secs(20);
    while email_of_ada().await != "ada.new@example.org" {
        assert!(Instant::now() < deadline, "the new address was never set");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.browser("ada.new@example.org", PASSWORD).await;

    let (_, events) = server.get("/api/audit?action=email_change_requested").await;
    let outcomes: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["success", "success", "success", "failure"]);
    server.stop().await;
}

/// Ends the session `id` with `browser`'s session and `password`; returns the status.
async fn end_session(server: &Server, browser: &Browser, id: Uuid, password: &str) -> StatusCode {
    server
        .as_browser(
            browser,
            Method::DELETE,
            &format!("/api/auth/sessions/{id}"),
            true,
            Some(json!({"current_password": password})),
        )
        .await
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_see_and_end_their_sessions_and_admins_end_anyones() {
    let server = server(None, Arc::new(SystemClock), |_| {}).await;
    server.user_with_password("ada", PASSWORD, CHEAP).await;
    let bob = server.user_with_password("bob", PASSWORD, CHEAP).await;
    let laptop = server.browser("ada", PASSWORD).await;
    let phone = server.browser("ada", PASSWORD).await;
    let bobs = server.browser("bob", PASSWORD).await;
    let me = |browser| server.as_browser(browser, Method::GET, "/api/auth/me", false, None);
    let session_id = |browser: &Browser| {
        browser.cookie["cadre_session=".len()..]
            .split('.')
            .next()
            .unwrap()
            .parse::<Uuid>()
            .unwrap()
    };

    let (status, listed) = server
        .as_browser(&laptop, Method::GET, "/api/auth/sessions", false, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<(Uuid, bool)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|session| {
            (
                session["id"].as_str().unwrap().parse().unwrap(),
                session["current"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [(session_id(&laptop), true), (session_id(&phone), false)],
        "only ada's, oldest first, this one marked"
    );

    let status = end_session(&server, &laptop, session_id(&phone), "wrong").await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the password first"
    );
    assert_eq!(me(&phone).await.0, StatusCode::OK);
    let status = end_session(&server, &laptop, session_id(&bobs), PASSWORD).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "bob's is none of ada's");
    assert_eq!(me(&bobs).await.0, StatusCode::OK);
    let status = end_session(&server, &laptop, session_id(&phone), PASSWORD).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(me(&phone).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&laptop).await.0, StatusCode::OK);

    // Admins end one user's sessions, or everyone's; people cannot.
    let (status, _) = server
        .as_browser(&laptop, Method::DELETE, "/api/auth/sessions", true, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, ended) = server
        .call(
            Method::DELETE,
            &format!("/api/auth/users/{bob}/sessions"),
            Some(&server.admin),
            None,
        )
        .await;
    assert_eq!((status, ended), (StatusCode::OK, json!({"ended": 1})));
    assert_eq!(me(&bobs).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&laptop).await.0, StatusCode::OK);
    let (status, ended) = server
        .call(
            Method::DELETE,
            "/api/auth/sessions",
            Some(&server.admin),
            None,
        )
        .await;
    assert_eq!((status, ended), (StatusCode::OK, json!({"ended": 1})));
    assert_eq!(me(&laptop).await.0, StatusCode::UNAUTHORIZED);

    let (_, events) = server.get("/api/audit?action=sessions_ended").await;
    let outcomes: Vec<(&str, &str)> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            (
                event["actor"].as_str().unwrap(),
                event["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("alice", "success"),
            ("alice", "success"),
            ("ada", "success"),
            ("ada", "failure")
        ]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_again_makes_a_new_session_and_ends_the_one_the_request_came_with() {
    let server = server(None, Arc::new(SystemClock), |_| {}).await;
    server.user_with_password("ada", PASSWORD, CHEAP).await;
    let old = server.browser("ada", PASSWORD).await;
    let response = server
        .client
        .post(format!("{}/api/auth/login", server.base))
        .header("cookie", &old.cookie)
        .json(&json!({"username": "ada", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let new = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(new, old.cookie, "a new session id and secret");
    let me = |cookie: &str| {
        server
            .client
            .get(format!("{}/api/auth/me", server.base))
            .header("cookie", cookie.to_owned())
            .send()
    };
    assert_eq!(
        me(&old.cookie).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(me(&new).await.unwrap().status(), StatusCode::OK);
    server.stop().await;
}

/// The mail server is down when a mail is due: the outbox keeps it and tries again with its
/// backoff; once the server is back (at the same address), the mail goes out, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mails_wait_for_a_mail_server_that_is_down_and_go_out_once_when_it_is_back() {
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let server = server(None, Arc::new(SystemClock), move |config| {
        config.smtp = Some(cadre_registration::mail::SmtpConfig {
            host: "127.0.0.1".to_owned(),
            port: address.port(),
            security: SmtpSecurity::Plain,
            username: None,
            password: None,
            from: "cadre <noreply@cadre.test>".to_owned(),
        });
    })
    .await;
    server.user_with_password("ada", PASSWORD, CHEAP).await;
    let (status, _) = server
        .call(
            Method::POST,
            "/api/auth/password-reset",
            None,
            Some(json!({"email": "ada@example.org"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // Nothing listens there: the first attempt fails and the mail waits for its next one.
    let store = server.engine.store();
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.outbox_backlog().await.unwrap().waiting == 0 {
        assert!(
            Instant::now() < deadline,
            "the mail never waited for a retry"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let smtp = SmtpServer::start_at(address);
    let mails = mails_to(&smtp, "ada@example.org", 1).await;
    assert_eq!(mails[0].header("Subject"), "Reset your password for cadre");
    // Past two more retry periods: still one mail, and nothing left to send.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(smtp.messages().len(), 1, "sent once");
    let backlog = store.outbox_backlog().await.unwrap();
    assert_eq!((backlog.waiting, backlog.failed), (0, 0));
}
