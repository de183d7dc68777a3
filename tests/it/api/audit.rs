//! The audit log end to end over HTTP: every kind of event the code has is recorded with its
//! actor, target, outcome and client address, and never a secret; `GET /api/audit` filters,
//! pages by cursor and is for admins only; retention purges old events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cadre_domain::{Clock, Role, SystemClock};
use cadre_engine::testing::ManualClock;
use cadre_registration::mail::SmtpSecurity;
use cadre_registration::testing::SmtpServer;
use chrono::TimeDelta;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::Server;
use super::accounts::{CHEAP, PASSWORD, mails_to, reset_token};
use super::registration::tokens;

/// A server with cheap hashes, registration with approval on, mailing through `smtp`, running
/// the note workflow too.
async fn server(smtp: &SmtpServer, clock: Arc<dyn Clock>) -> Server {
    let smtp = smtp.config(SmtpSecurity::Plain);
    Server::start_with(
        1,
        vec![super::note_workflow()],
        move |config| {
            config.smtp = Some(smtp);
            config.outbox_retry_seconds = 1;
            config.accounts.argon2 = CHEAP;
            config.accounts.sign_ins_per_minute = 1000;
            let registration = &mut config.registration;
            registration.enabled = true;
            registration.approval_required = true;
            registration.approval_recipients = vec!["admins@example.com".to_owned()];
            registration.base_url = "http://cadre.example".to_owned();
            registration.requests_per_minute = 1000;
        },
        clock,
    )
    .await
}

impl Server {
    /// The audit log's answer to `query` (with the admin token), and its raw text.
    async fn audit(&self, query: &str) -> (StatusCode, Value, String) {
        let response = self
            .client
            .get(format!("{}/api/audit?{query}", self.base))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap(), text)
    }

    /// Every event, newest first.
    async fn events(&self) -> Vec<Value> {
        let (status, page, _) = self.audit("limit=1000").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["next"], Value::Null);
        page["items"].as_array().unwrap().clone()
    }

    /// Waits until an event of `action` on `target` (if given) exists; returns it.
    async fn event(&self, action: &str, outcome: &str, target: Option<&str>) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = self.events().await.into_iter().find(|event| {
                event["action"] == action
                    && event["outcome"] == outcome
                    && target.is_none_or(|target| event["target"] == target)
            });
            if let Some(event) = found {
                return event;
            }
            assert!(
                Instant::now() < deadline,
                "no {outcome} {action} on {target:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Checks `event`'s actor, target, outcome and that it came from this machine.
#[track_caller]
fn check(event: &Value, actor: &str, target: Option<&str>, outcome: &str, over_http: bool) {
    assert_eq!(event["actor"], actor, "{event}");
    if let Some(target) = target {
        assert_eq!(event["target"], target, "{event}");
    }
    assert_eq!(event["outcome"], outcome, "{event}");
    if over_http {
        assert_eq!(event["client_addr"], "127.0.0.1", "{event}");
    } else {
        assert_eq!(event["client_addr"], Value::Null, "{event}");
    }
    assert!(event["at"].as_f64().unwrap() > 1.7e9, "{event}");
}

/// The secret part of a token or link: after the last `_` or `.`.
fn secret(plain: &str) -> &str {
    plain.rsplit(['_', '.']).next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_event_is_recorded_with_who_what_where_and_how_never_a_secret() {
    let smtp = SmtpServer::start();
    let server = server(&smtp, Arc::new(SystemClock)).await;
    let store = server.engine.store().as_ref();
    let mut secrets: Vec<String> = vec![
        PASSWORD.to_owned(),
        secret(&server.admin).to_owned(),
        secret(&server.user).to_owned(),
    ];

    // Tokens: created (the harness made two) and revoked, by the CLI's functions.
    let carol = cadre_server::auth::issue_token(
        store,
        cadre_server::auth::NewToken {
            name: "carol",
            role: Role::User,
            user: None,
            expires_at: None,
        },
        "cli:op",
        SystemClock.now(),
    )
    .await
    .unwrap();
    secrets.push(secret(&carol.plain).to_owned());
    cadre_server::auth::revoke_token(store, carol.token.id, "cli:op", SystemClock.now())
        .await
        .unwrap();
    let carol_id = carol.token.id.to_string();
    let created = server
        .event("token_created", "success", Some(&carol_id))
        .await;
    check(&created, "cli:op", Some(&carol_id), "success", false);
    let revoked = server
        .event("token_revoked", "success", Some(&carol_id))
        .await;
    check(&revoked, "cli:op", Some(&carol_id), "success", false);

    // Sign-ins: refused (a wrong password, an unknown name), then accepted.
    let ada = server.user_with_password("ada", PASSWORD, CHEAP).await;
    let ada_id = ada.to_string();
    assert_eq!(
        server.sign_in("ada", "guess 1234 guess").await.0,
        StatusCode::UNAUTHORIZED
    );
    secrets.push("guess 1234 guess".to_owned());
    let failed = server
        .event("sign_in_failed", "failure", Some(&ada_id))
        .await;
    check(&failed, "ada", Some(&ada_id), "failure", true);
    assert_eq!(failed["actor_user_id"], ada_id);
    assert!(
        failed["detail"]
            .as_str()
            .unwrap()
            .contains("wrong password"),
        "{failed}"
    );
    assert_eq!(
        server.sign_in("nobody", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    let unknown = server
        .events()
        .await
        .into_iter()
        .find(|event| event["action"] == "sign_in_failed" && event["actor"] == "nobody")
        .expect("the unknown name's attempt");
    check(&unknown, "nobody", None, "failure", true);
    assert_eq!(unknown["target"], Value::Null);
    let browser = server.browser("ada", PASSWORD).await;
    secrets.push(secret(&browser.cookie).to_owned());
    secrets.push(browser.csrf.clone());
    let signed_in = server.event("sign_in", "success", Some(&ada_id)).await;
    check(&signed_in, "ada", Some(&ada_id), "success", true);
    assert_eq!(signed_in["actor_user_id"], ada_id);

    // Password changes: refused with a wrong current password, then done.
    let new = "a second long password";
    secrets.push(new.to_owned());
    let change = |current: &str| {
        server.as_browser(
            &browser,
            Method::POST,
            "/api/auth/password",
            true,
            Some(json!({"current_password": current, "new_password": new})),
        )
    };
    assert_eq!(
        change("not the current one").await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    secrets.push("not the current one".to_owned());
    assert_eq!(change(PASSWORD).await.0, StatusCode::NO_CONTENT);
    let refused = server
        .event("password_changed", "failure", Some(&ada_id))
        .await;
    check(&refused, "ada", Some(&ada_id), "failure", true);
    let changed = server
        .event("password_changed", "success", Some(&ada_id))
        .await;
    check(&changed, "ada", Some(&ada_id), "success", true);

    // Sign-out.
    let (status, _) = server
        .as_browser(&browser, Method::POST, "/api/auth/logout", true, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let signed_out = server.event("sign_out", "success", Some(&ada_id)).await;
    check(&signed_out, "ada", Some(&ada_id), "success", true);

    // A reset link: asked for (for a known and an unknown address), refused, used.
    let reset = |email: &'static str| {
        server.call(
            Method::POST,
            "/api/auth/password-reset",
            None,
            Some(json!({"email": email})),
        )
    };
    assert_eq!(reset("ada@example.org").await.0, StatusCode::ACCEPTED);
    assert_eq!(reset("nobody@example.org").await.0, StatusCode::ACCEPTED);
    let link = reset_token(&mails_to(&smtp, "ada@example.org", 1).await[0]);
    secrets.push(secret(&link).to_owned());
    let requested = server
        .event("password_reset_requested", "success", Some(&ada_id))
        .await;
    check(&requested, "anonymous", Some(&ada_id), "success", true);
    let nobody = server
        .event(
            "password_reset_requested",
            "failure",
            Some("nobody@example.org"),
        )
        .await;
    check(&nobody, "anonymous", None, "failure", true);
    let confirm = |token: String, password: &'static str| {
        server.call(
            Method::POST,
            "/api/auth/password-reset/confirm",
            None,
            Some(json!({"token": token, "new_password": password})),
        )
    };
    let third = "a third long password";
    secrets.push(third.to_owned());
    assert_eq!(
        confirm(format!("{}.{}", "0".repeat(32), "0".repeat(64)), third)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(confirm(link.clone(), third).await.0, StatusCode::NO_CONTENT);
    let used = server
        .event("password_reset", "success", Some(&ada_id))
        .await;
    check(&used, "ada", Some(&ada_id), "success", true);
    let bad_link = server
        .events()
        .await
        .into_iter()
        .find(|event| event["action"] == "password_reset" && event["outcome"] == "failure")
        .expect("the unknown link");
    check(&bad_link, "anonymous", None, "failure", true);

    // Processes: started, resumed with input, aborted, skipped, and an abort refused.
    let noted = server.start_process("take_note", json!([{}])).await;
    server.wait_for(&noted, &["suspended"]).await;
    let (status, _) = server
        .put(
            &format!("/api/processes/{noted}/resume"),
            Some(json!([{"note": "all good"}])),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let started = server
        .event("process_started", "success", Some(&noted))
        .await;
    check(&started, "alice", Some(&noted), "success", true);
    assert_eq!(started["detail"], "take_note");
    let resumed = server
        .event("process_resumed", "success", Some(&noted))
        .await;
    check(&resumed, "alice", Some(&noted), "success", true);
    server.wait_for(&noted, &["completed"]).await;
    let (status, _) = server
        .put(&format!("/api/processes/{noted}/abort"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let refused = server
        .event("process_aborted", "failure", Some(&noted))
        .await;
    check(&refused, "alice", Some(&noted), "failure", true);

    let waiting = server.start_process("take_note", json!([{}])).await;
    server.wait_for(&waiting, &["suspended"]).await;
    let (status, _) = server
        .put(&format!("/api/processes/{waiting}/abort"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let aborted = server
        .event("process_aborted", "success", Some(&waiting))
        .await;
    check(&aborted, "alice", Some(&waiting), "success", true);

    // A step that fails (a user id taken) is skipped; there is no skip endpoint, so the
    // operator's engine call stands in for it.
    let group = server.create_group("staff", "Staff").await;
    let first = server.start_create_user("eve", &group).await;
    server.wait_for(&first, &["completed"]).await;
    let second = server.start_create_user("eve", &group).await;
    server.wait_for(&second, &["failed"]).await;
    server
        .engine
        .skip_step(second.parse().unwrap(), "cli:op")
        .await
        .unwrap();
    let skipped = server
        .event("process_skipped", "success", Some(&second))
        .await;
    check(&skipped, "cli:op", Some(&second), "success", false);

    // Registration decisions, by an admin's token on the mailed link's page.
    let mut links = Vec::new();
    for name in ["rita", "sam"] {
        let (status, body) = server
            .register(name, &format!("{name}@example.com"), PASSWORD)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        let [confirm] = tokens(&mails_to(&smtp, &format!("{name}@example.com"), 1).await[0])
            .try_into()
            .unwrap();
        secrets.push(secret(&confirm).to_owned());
        assert_eq!(server.press(&confirm, None).await.0, StatusCode::OK);
    }
    for request in mails_to(&smtp, "admins@example.com", 2).await {
        let found = tokens(&request);
        secrets.extend(found.iter().map(|token| secret(token).to_owned()));
        let name = if request.body.contains("rita") {
            "rita"
        } else {
            "sam"
        };
        links.push((name, found));
    }
    for (name, found) in &links {
        // The approve link comes first in the bundled template.
        let token = if *name == "rita" {
            &found[0]
        } else {
            &found[1]
        };
        let (status, page) = server.press(token, Some(&server.admin)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
    }
    let approved = server
        .event("registration_approved", "success", Some("rita"))
        .await;
    check(&approved, "alice", Some("rita"), "success", true);
    let declined = server
        .event("registration_declined", "success", Some("sam"))
        .await;
    check(&declined, "alice", Some("sam"), "success", true);
    // The workflow that creates the approved user is started by registration.
    let by_registration = server
        .events()
        .await
        .into_iter()
        .find(|event| event["action"] == "process_started" && event["actor"] == "registration")
        .expect("the completion's start");
    assert_eq!(by_registration["detail"], "complete_registration");

    // Not one secret anywhere in the log.
    let (_, _, text) = server.audit("limit=1000").await;
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "{secret:?} is in the log");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_filtered_paged_by_cursor_and_for_admins_only() {
    let server = Server::start(1).await;
    let mut started = Vec::new();
    for n in 0..5 {
        started.push(
            server
                .start_process(
                    "create_user_group",
                    json!([{"product": cadre_migrations::demo::USER_GROUP_PRODUCT_ID},
                           {"user_group_id": format!("g{n}"), "user_group_name": format!("G {n}")}]),
                )
                .await,
        );
    }
    let all = server.events().await;
    assert!(all.len() >= 7, "two tokens and five starts");

    // Pages of two, by cursor, make up the whole log in order.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let query = match &after {
            Some(after) => format!("limit=2&after={after}"),
            None => "limit=2".to_owned(),
        };
        let (status, page, _) = server.audit(&query).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        paged.extend(items.iter().cloned());
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, all);

    // Filters.
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| event["target"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let (_, page, _) = server.audit("action=process_started").await;
    let mut newest_first = started.clone();
    newest_first.reverse();
    assert_eq!(ids(&page), newest_first);
    let (_, page, _) = server
        .audit("actor=alice&action=process_started&limit=1")
        .await;
    assert_eq!(ids(&page), newest_first[..1]);
    assert!(page["next"].is_string());
    let (_, page, _) = server.audit(&format!("target={}", started[2])).await;
    assert_eq!(ids(&page), [started[2].clone()]);
    let (_, page, _) = server.audit("actor=nobody").await;
    assert_eq!(page["items"], json!([]));
    let middle = all
        .iter()
        .find(|event| event["target"] == started[2].as_str())
        .unwrap()["at"]
        .as_f64()
        .unwrap();
    let (_, page, _) = server
        .audit(&format!("action=process_started&until={middle}"))
        .await;
    assert!(!ids(&page).contains(&started[2]) && ids(&page).contains(&started[0]));
    let (_, page, _) = server
        .audit(&format!("action=process_started&since={middle}"))
        .await;
    assert!(ids(&page).contains(&started[2]) && !ids(&page).contains(&started[0]));

    // Bad filters, and callers who are not admins.
    for query in [
        "action=teleported",
        "limit=0",
        "limit=1001",
        "since=soon",
        "after=x",
    ] {
        let (status, body, _) = server.audit(query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["code"], "invalid_query", "{query}");
    }
    let (status, _) = server
        .call(Method::GET, "/api/audit", Some(&server.user), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server.call(Method::GET, "/api/audit", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_purges_events_older_than_the_setting() {
    let clock = ManualClock::new();
    let server = Server::start_with(
        1,
        Vec::new(),
        |config| config.audit_retention_days = 30,
        clock.clone(),
    )
    .await;
    let old = server
        .start_process(
            "create_user_group",
            json!([{"product": cadre_migrations::demo::USER_GROUP_PRODUCT_ID},
                   {"user_group_id": "old", "user_group_name": "Old"}]),
        )
        .await;
    clock.advance(TimeDelta::days(31));
    let new = server
        .start_process(
            "create_user_group",
            json!([{"product": cadre_migrations::demo::USER_GROUP_PRODUCT_ID},
                   {"user_group_id": "new", "user_group_name": "New"}]),
        )
        .await;
    let targets = |events: Vec<Value>| -> Vec<String> {
        events
            .iter()
            .filter(|event| event["action"] == "process_started")
            .map(|event| event["target"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(targets(server.events().await), [new.clone(), old.clone()]);

    // What the server's purge loop runs every few minutes.
    let purged = cadre_server::api::audit::purge(
        server.engine.store().as_ref(),
        server.engine.clock().as_ref(),
        30,
    )
    .await
    .unwrap();
    assert_eq!(
        purged, 1,
        "the old start; the tokens were issued at the real time"
    );
    assert_eq!(targets(server.events().await), [new]);
    let none = cadre_server::api::audit::purge(
        server.engine.store().as_ref(),
        server.engine.clock().as_ref(),
        0,
    )
    .await
    .unwrap();
    assert_eq!(none, 0, "0 keeps everything");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_are_recorded_with_who_where_and_what_never_a_secret() {
    let smtp = SmtpServer::start();
    let server = server(&smtp, Arc::new(SystemClock)).await;
    server.user_with_password("ada", PASSWORD, CHEAP).await;
    let ada = server.browser("ada", PASSWORD).await;

    // A user's token asks for an admin's endpoint; a cookie comes without its CSRF token.
    let (status, _) = server
        .call(
            Method::POST,
            "/api/processes/create_user",
            Some(&server.user),
            Some(json!([{}])),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server
        .as_browser(&ada, Method::POST, "/api/auth/logout", false, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A request without a credential is logged, not recorded.
    let (status, _) = server.call(Method::GET, "/api/audit", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (_, page, text) = server.audit("action=access_denied").await;
    let events = page["items"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{page}");
    check(
        &events[0],
        "ada",
        Some("POST /api/auth/logout"),
        "failure",
        true,
    );
    assert_eq!(events[0]["detail"], "csrf_token_missing");
    check(
        &events[1],
        "bob",
        Some("POST /api/processes/{id}"),
        "failure",
        true,
    );
    assert_eq!(events[1]["detail"], "forbidden");
    assert!(!text.contains(secret(&server.user)), "never a secret");
    server.stop().await;
}
