//! `/api/targets`: admins configure the applications cadre provisions into; a credential goes
//! in sealed and never comes out, and every change is audited.

use std::sync::Arc;

use cadre_domain::{AuditQuery, Clock, Role, SystemClock, TargetMode};
use cadre_server::auth::{NewToken, issue_token};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::Server;

const KEY: &str = "4f1c2a9e8b7d6c5f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071";

async fn with_key() -> Server {
    Server::start_with(
        1,
        Vec::new(),
        |config| config.outbound_key = Some(cadre_server::config::SecretSetting(KEY.to_owned())),
        Arc::new(SystemClock),
    )
    .await
}

fn scim_target(name: &str) -> Value {
    json!({
        "name": name,
        "connection": {"kind": "scim", "base_url": "https://app.example.org/scim/v2", "bulk": true},
        "secret": "bearer-token-of-the-app"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_configure_targets_whose_credentials_never_come_back() {
    let server = with_key().await;
    let (status, created) = server.post("/api/targets", scim_target("App")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["mode"], "enabled");
    assert_eq!(created["deprovision"], "delete");
    assert_eq!(
        created["mapping"]["userName"], "username",
        "the SCIM defaults"
    );
    assert_eq!(created["connection"]["bulk"], true);
    assert!(!created.to_string().contains("bearer-token"), "{created}");

    let ldap = json!({
        "name": "Directory",
        "connection": {"kind": "ldap", "url": "ldaps://ldap.example.org", "bind_dn": "cn=cadre,dc=example,dc=org",
                       "people_dn": "ou=people,dc=example,dc=org", "groups_dn": "ou=groups,dc=example,dc=org"},
        "mapping": {"uid": "user_id", "mail": "email"},
        "deprovision": "disable",
        "secret": "bind-password"
    });
    let (status, directory) = server.post("/api/targets", ldap).await;
    assert_eq!(status, StatusCode::CREATED, "{directory}");
    assert_eq!(directory["connection"]["user_class"], "inetOrgPerson");
    assert_eq!(
        directory["mapping"],
        json!({"uid": "user_id", "mail": "email"})
    );

    // Stored sealed: neither secret is in the row, and each opens for its own target only.
    let store = server.engine.store();
    let stored = store.target(id.parse().unwrap()).await.unwrap();
    assert!(!String::from_utf8_lossy(&stored.sealed_secret).contains("bearer-token"));
    let key = cadre_outbound::SealingKey::from_hex(KEY).unwrap();
    assert_eq!(
        key.open(stored.id, &stored.sealed_secret).unwrap(),
        b"bearer-token-of-the-app"
    );

    let (status, listed) = server.get("/api/targets").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["App", "Directory"]);
    assert!(!listed.to_string().contains("bind-password"));

    // A change keeps what it leaves out: the secret, the mapping.
    let mut paused = scim_target("App");
    paused["mode"] = json!("paused");
    paused.as_object_mut().unwrap().remove("secret");
    let (status, changed) = server
        .put(&format!("/api/targets/{id}"), Some(paused))
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["mode"], "paused");
    let again = store.target(id.parse().unwrap()).await.unwrap();
    assert_eq!(
        key.open(again.id, &again.sealed_secret).unwrap(),
        b"bearer-token-of-the-app"
    );
    assert_eq!(again.mapping, stored.mapping);

    // Pointed elsewhere, or at another identity, a target needs its credential again: a
    // stored one never follows it.
    let mut moved = scim_target("App");
    moved["connection"]["base_url"] = json!("https://elsewhere.example.org/scim/v2");
    moved.as_object_mut().unwrap().remove("secret");
    let (status, problem) = server
        .put(&format!("/api/targets/{id}"), Some(moved.clone()))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("credential"),
        "{problem}"
    );
    moved["secret"] = json!("the-other-token");
    let (status, changed) = server.put(&format!("/api/targets/{id}"), Some(moved)).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let again = store.target(id.parse().unwrap()).await.unwrap();
    assert_eq!(
        key.open(again.id, &again.sealed_secret).unwrap(),
        b"the-other-token"
    );
    // Another kind takes its defaults for a mapping.
    let mut as_ldap = json!({
        "name": "App",
        "connection": {"kind": "ldap", "url": "ldaps://app.example.org", "bind_dn": "cn=cadre",
                       "people_dn": "ou=people", "groups_dn": "ou=groups"},
        "secret": "bind-password-2"
    });
    let (status, changed) = server
        .put(&format!("/api/targets/{id}"), Some(as_ldap.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["mapping"]["uid"], "user_id", "{changed}");
    as_ldap["connection"]["url"] = json!("ldaps://app.example.org/???X-BINDPW=pw");
    let (status, _) = server
        .put(&format!("/api/targets/{id}"), Some(as_ldap))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (status, _) = server
        .call(
            Method::DELETE,
            &format!("/api/targets/{id}"),
            Some(&server.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server.get(&format!("/api/targets/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let events = store.list_audit(&AuditQuery::default()).await.unwrap();
    let actions: Vec<&str> = events
        .items
        .iter()
        .map(|event| event.action.as_str())
        .filter(|action| action.starts_with("target_"))
        .rev()
        .collect();
    assert_eq!(
        actions,
        [
            "target_configured",
            "target_configured",
            "target_changed",
            "target_changed",
            "target_changed",
            "target_removed"
        ],
        "the refused changes left no trace"
    );
    assert!(
        events
            .items
            .iter()
            .filter(|event| event.action.as_str().starts_with("target_"))
            .all(|event| event.client_addr.is_some()),
        "each with where it came from"
    );
    for event in &events.items {
        let detail = event.detail.as_deref().unwrap_or_default();
        assert!(
            !detail.contains("bearer-token") && !detail.contains("bind-password"),
            "{detail}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_targets_are_refused_and_only_admins_see_any() {
    let server = with_key().await;
    let refuse = |body: Value| {
        let server = &server;
        async move {
            let (status, problem) = server.post("/api/targets", body).await;
            (
                status,
                problem["detail"].as_str().unwrap_or_default().to_owned(),
            )
        }
    };
    let mut in_url = scim_target("App");
    in_url["connection"]["base_url"] = json!("https://cadre:secret@app.example.org/scim/v2");
    let (status, detail) = refuse(in_url).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail.contains("credentials"), "{detail}");
    let clear = json!({
        "name": "Clear", "secret": "pw",
        "connection": {"kind": "ldap", "url": "ldap://ldap.example.org", "bind_dn": "cn=a", "people_dn": "ou=p", "groups_dn": "ou=g"}
    });
    let (status, detail) = refuse(clear).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail.contains("StartTLS"), "{detail}");
    let mut no_secret = scim_target("App");
    no_secret.as_object_mut().unwrap().remove("secret");
    assert_eq!(refuse(no_secret).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let mut bad_field = scim_target("App");
    bad_field["mapping"] = json!({"uid": "user_id", "password": "password"});
    assert_eq!(refuse(bad_field).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let mut huge = scim_target("App");
    huge["secret"] = json!("x".repeat(4097));
    assert_eq!(refuse(huge).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refuse(scim_target("App")).await.0, StatusCode::CREATED);
    let (status, detail) = refuse(scim_target("APP")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(detail.contains("name"), "{detail}");
    assert_eq!(server.engine.store().list_targets().await.unwrap().len(), 1);

    let (status, _) = server
        .call(Method::GET, "/api/targets", Some(&server.user), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let scim = server.scim_token().await;
    let (status, _) = server
        .call(Method::GET, "/api/targets", Some(&scim), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a service's token");
    let (status, problem) = server.get("/api/targets/not-an-id").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["code"], "invalid_path", "{problem}");
    let (status, _) = server
        .call(Method::POST, "/api/targets", None, Some(scim_target("X")))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A body past the limit is refused before it is read whole, with a problem body.
    let mut huge = scim_target("Huge");
    huge["padding"] = json!("x".repeat(3 << 20));
    let response = server
        .client
        .post(format!("{}/api/targets", server.base))
        .bearer_auth(&server.admin)
        .header("connection", "close")
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "payload_too_large", "{problem}");

    // An admin's token stops working for targets once its user is disabled (within the
    // token cache's second).
    // The targets here reach nothing: paused, they take no pushes.
    let store = server.engine.store();
    for mut target in store.list_targets().await.unwrap() {
        target.mode = TargetMode::Paused;
        store.save_target(&target).await.unwrap();
    }
    let ops = server.admin_with_password("ops").await;
    let ops_token = issue_token(
        server.engine.store().as_ref(),
        NewToken {
            name: "ops",
            role: Role::Admin,
            user: Some(ops),
            expires_at: None,
        },
        "test",
        SystemClock.now(),
    )
    .await
    .unwrap()
    .plain;
    let (status, _) = server
        .call(Method::GET, "/api/targets", Some(&ops_token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "while ops is active");
    let process = server
        .start_process(
            "disable_user",
            json!([{"subscription_id": ops}, {"reason": "left"}]),
        )
        .await;
    server.wait_for(&process, &["completed"]).await;
    // The server keeps what it read of a token's user for this long.
    tokio::time::sleep(cadre_server::auth::TOKEN_CACHE_TTL + std::time::Duration::from_millis(100))
        .await;
    let (status, _) = server
        .call(
            Method::POST,
            "/api/targets",
            Some(&ops_token),
            Some(scim_target("X")),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a disabled admin's token");
    assert_eq!(server.engine.store().list_targets().await.unwrap().len(), 1);
    server.stop().await;

    // Without a key nothing can be configured, and the answer says what to set.
    let keyless = Server::start(1).await;
    let (status, problem) = keyless.post("/api/targets", scim_target("App")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        problem["detail"].as_str().unwrap().contains("outbound_key"),
        "{problem}"
    );
    keyless.stop().await;
}
