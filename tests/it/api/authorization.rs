//! Who may do what, over HTTP (the rules of `docs/security.md`): non-admins start no workflow
//! and see only their own user, their groups and the discoverable ones (a hidden group answers
//! exactly like a missing one), and the processes of their own user; tokens expire, act with
//! at most their user's role, stop with their user, and people make and revoke their own.

use std::time::Duration;

use cadre_domain::{Clock, Role, SystemClock};
use cadre_migrations::demo::USER_GROUP_PRODUCT_ID;
use cadre_server::auth::{NewToken, issue_token};
use chrono::TimeDelta;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use super::Server;

impl Server {
    /// Creates an active group through the workflow, discoverable or not; returns its id.
    async fn group(&self, group_id: &str, discoverable: bool) -> String {
        let process = self
            .start_process(
                "create_user_group",
                json!([{"product": USER_GROUP_PRODUCT_ID},
                       {"user_group_id": group_id, "user_group_name": group_id,
                        "discoverable": discoverable}]),
            )
            .await;
        let process = self.wait_for(&process, &["completed"]).await;
        process["current_state"]["subscription_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Issues a token for `user` with `role`, expiring at `expires_at`.
    async fn token_for(
        &self,
        user: Option<&str>,
        role: Role,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> String {
        issue_token(
            self.engine.store().as_ref(),
            NewToken {
                name: "test token",
                role,
                user: user.map(|user| user.parse().unwrap()),
                expires_at,
            },
            "test",
            SystemClock.now(),
        )
        .await
        .unwrap()
        .plain
    }
}

/// `body` with every UUID replaced by `[uuid]`.
fn without_ids(body: &Value) -> String {
    let uuid =
        regex::Regex::new("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").unwrap();
    uuid.replace_all(&body.to_string(), "[uuid]").into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_changes_no_one_and_starts_no_workflow() {
    let server = Server::start(1).await;
    let group = server.group("team", false).await;
    let (ada, ada_token) = server.create_user("ada", &group).await;
    let (bob, _) = server.create_user("bob", &group).await;
    for (workflow, pages) in [
        (
            "modify_user",
            json!([{"subscription_id": bob},
                   {"user_id": "bob", "username": "bob", "email": "mallory@example.org",
                    "user_group_ids": [group]}]),
        ),
        ("modify_user", json!([{"subscription_id": ada}])),
        // The first page alone would answer with the next page prefilled from bob.
        ("modify_user", json!([{"subscription_id": bob}])),
        ("terminate_user", json!([{"subscription_id": bob}, {}])),
        ("modify_user_group", json!([{"subscription_id": group}])),
        (
            "create_user_group",
            json!([{"product": USER_GROUP_PRODUCT_ID}]),
        ),
    ] {
        let (status, problem) = server
            .call(
                Method::POST,
                &format!("/api/processes/{workflow}"),
                Some(&ada_token),
                Some(pages),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{workflow}: {problem}");
        assert_eq!(problem["code"], "forbidden");
        assert!(
            !problem.to_string().contains("bob@example.org"),
            "{workflow}: the refusal shows nothing of bob: {problem}"
        );
    }
    let (status, bob_now) = server.get(&format!("/api/subscriptions/{bob}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bob_now["status"], "active", "bob unchanged");
    assert_eq!(bob_now["domain_model"]["user"]["email"], "bob@example.org");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_admins_see_their_user_their_groups_and_discoverable_groups_only() {
    let server = Server::start(1).await;
    let member_of = server.group("team", false).await;
    let open = server.group("open", true).await;
    let hidden = server.group("hidden", false).await;
    let (ada, ada_token) = server.create_user("ada", &member_of).await;
    let (bob, _) = server.create_user("bob", &hidden).await;
    let as_ada = |path: String| {
        let (server, token) = (&server, &ada_token);
        async move { server.call(Method::GET, &path, Some(token), None).await }
    };

    let (status, page) = as_ada("/api/subscriptions?limit=1000".to_owned()).await;
    assert_eq!(status, StatusCode::OK);
    let mut seen: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["subscription_id"].as_str().unwrap())
        .collect();
    seen.sort_unstable();
    let mut expected = vec![ada.as_str(), member_of.as_str(), open.as_str()];
    expected.sort_unstable();
    assert_eq!(seen, expected);
    assert_eq!(page["total"], 3);
    let (_, groups) = as_ada("/api/subscriptions?product_type=UserGroup&limit=1".to_owned()).await;
    assert_eq!(groups["total"], 2, "filters apply within what ada sees");

    // What ada may not see answers exactly like what does not exist.
    let missing = Uuid::now_v7().to_string();
    for path in [
        "/api/subscriptions/{}",
        "/api/subscriptions/domain-model/{}",
        "/api/subscriptions/workflows/{}",
    ] {
        let (status, unseen) = as_ada(path.replace("{}", &hidden)).await;
        let (missing_status, absent) = as_ada(path.replace("{}", &missing)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(missing_status, StatusCode::NOT_FOUND);
        assert_eq!(without_ids(&unseen), without_ids(&absent), "{path}");
        let (status, _) = as_ada(path.replace("{}", &bob)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: another user");
        let (status, _) = as_ada(path.replace("{}", &ada)).await;
        assert_eq!(status, StatusCode::OK, "{path}: herself");
    }
    let (_, herself) = as_ada(format!("/api/subscriptions/{ada}")).await;
    assert!(
        herself.get("targets").is_none(),
        "push states are for admins: {herself}"
    );
    let (_, as_admin) = server.get(&format!("/api/subscriptions/{ada}")).await;
    assert_eq!(
        as_admin["targets"],
        json!([]),
        "admins see them (none here)"
    );
    let (status, _) = as_ada(format!("/api/subscriptions/{member_of}")).await;
    assert_eq!(status, StatusCode::OK, "her group");
    let (status, _) = as_ada(format!("/api/subscriptions/{open}")).await;
    assert_eq!(status, StatusCode::OK, "a discoverable group");

    // Processes: those of her own user only.
    let (_, processes) = as_ada("/api/processes".to_owned()).await;
    let listed: Vec<&Value> = processes["items"].as_array().unwrap().iter().collect();
    assert!(!listed.is_empty(), "{processes}");
    let (_, bobs) = server
        .get(&format!("/api/processes?subscription_id={bob}"))
        .await;
    let bobs_process = bobs["items"][0]["process_id"].as_str().unwrap().to_owned();
    for process in &listed {
        assert_ne!(process["process_id"], json!(bobs_process));
    }
    let (_, asked_for_bob) = as_ada(format!("/api/processes?subscription_id={bob}")).await;
    assert_eq!(asked_for_bob["total"], 0);
    let (status, unseen) = as_ada(format!("/api/processes/{bobs_process}")).await;
    let (_, absent) = as_ada(format!("/api/processes/{missing}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(without_ids(&unseen), without_ids(&absent));
    let own = listed[0]["process_id"].as_str().unwrap();
    let (status, _) = as_ada(format!("/api/processes/{own}")).await;
    assert_eq!(status, StatusCode::OK);

    // A service token with the user role sees the discoverable groups only.
    let service = server.token_for(None, Role::User, None).await;
    let (_, page) = server
        .call(Method::GET, "/api/subscriptions", Some(&service), None)
        .await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["subscription_id"], json!(open));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expire_act_with_at_most_their_users_role_and_stop_with_their_user() {
    let server = Server::start(1).await;
    let group = server.group("team", false).await;
    let (ada, _) = server.create_user("ada", &group).await;
    let now = SystemClock.now();
    let me = |token: String| {
        let server = &server;
        async move {
            server
                .call(Method::GET, "/api/auth/me", Some(&token), None)
                .await
        }
    };

    let expired = server
        .token_for(None, Role::Admin, Some(now - TimeDelta::seconds(1)))
        .await;
    assert_eq!(me(expired).await.0, StatusCode::UNAUTHORIZED);
    let live = server
        .token_for(None, Role::Admin, Some(now + TimeDelta::hours(1)))
        .await;
    assert_eq!(me(live).await.0, StatusCode::OK);

    // An admin token made for a user who is no admin acts as a user.
    let inflated = server.token_for(Some(&ada), Role::Admin, None).await;
    let (status, body) = me(inflated.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["roles"], json!(["user"]));
    let (status, _) = server
        .call(Method::GET, "/api/register/users", Some(&inflated), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Made an admin, the user's admin token is one.
    server
        .engine
        .store()
        .set_roles(ada.parse().unwrap(), &[Role::Admin])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, body) = me(inflated.clone()).await;
    assert_eq!(body["roles"], json!(["admin"]));

    // Terminated, the user's tokens stop within a second.
    let process = server
        .start_process("terminate_user", json!([{"subscription_id": ada}, {}]))
        .await;
    server.wait_for(&process, &["completed"]).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(me(inflated).await.0, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_make_list_and_revoke_their_own_tokens() {
    let server = super::accounts::server(None, std::sync::Arc::new(SystemClock), |config| {
        config.accounts.token_days = 30;
        config.accounts.token_max_days = 90;
        config.accounts.max_tokens = 3;
    })
    .await;
    let ada = server
        .user_with_password("ada", super::accounts::PASSWORD, super::accounts::CHEAP)
        .await;
    server
        .user_with_password("bob", super::accounts::PASSWORD, super::accounts::CHEAP)
        .await;
    let browser = server.browser("ada", super::accounts::PASSWORD).await;
    let bob = server.browser("bob", super::accounts::PASSWORD).await;
    let create = |body: Value| {
        server.as_browser(&browser, Method::POST, "/api/auth/tokens", true, Some(body))
    };

    let before = SystemClock.now();
    let (status, created) = create(json!({"name": "laptop"})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    let expires = created["expires_at"].as_f64().unwrap();
    let expected = (before + TimeDelta::days(30)).timestamp() as f64;
    assert!((expires - expected).abs() < 60.0, "{created}");
    let (status, me) = server
        .call(Method::GET, "/api/auth/me", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (me["via"].as_str(), me["user_id"].clone()),
        (Some("token"), json!(ada))
    );

    for (request, wanted) in [
        (
            json!({"name": "x", "expires_in_days": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "x", "expires_in_days": 91}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"name": "x", "role": "admin"}), StatusCode::FORBIDDEN),
        (
            json!({"name": "x", "role": "root"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"name": ""}), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        assert_eq!(create(request.clone()).await.0, wanted, "{request}");
    }
    // A token makes no tokens.
    let (status, _) = server
        .call(
            Method::POST,
            "/api/auth/tokens",
            Some(&token),
            Some(json!({"name": "more"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, listed) = server
        .as_browser(&browser, Method::GET, "/api/auth/tokens", false, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let laptop: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|token| token["name"] == "laptop")
        .collect();
    assert_eq!(laptop.len(), 1, "{listed}");
    let secret = token.rsplit('_').next().unwrap();
    assert!(!listed.to_string().contains(secret), "never a secret");
    let id = laptop[0]["id"].as_str().unwrap();

    // Bob can neither see nor revoke it: his answers are those of an unknown token.
    let (_, bobs) = server
        .as_browser(&bob, Method::GET, "/api/auth/tokens", false, None)
        .await;
    assert!(!bobs.to_string().contains(id), "{bobs}");
    let path = format!("/api/auth/tokens/{id}");
    let (status, _) = server
        .as_browser(&bob, Method::DELETE, &path, true, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = server
        .as_browser(&browser, Method::DELETE, &path, true, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = server
        .call(Method::GET, "/api/auth/me", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked at once");

    // At most `max_tokens` live ones (the one the test made for ada counts): a revoked token
    // leaves room.
    for name in ["one", "two"] {
        assert_eq!(create(json!({"name": name})).await.0, StatusCode::CREATED);
    }
    let (status, full) = create(json!({"name": "three"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{full}");
    assert_eq!(
        full["detail"],
        "you hold 3 live tokens, the most allowed (3): revoke one first"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_change_their_own_names_and_nothing_else() {
    let server = super::accounts::server(None, std::sync::Arc::new(SystemClock), |_| {}).await;
    let ada = server
        .user_with_password("ada", super::accounts::PASSWORD, super::accounts::CHEAP)
        .await;
    let browser = server.browser("ada", super::accounts::PASSWORD).await;
    let (status, _) = server
        .as_browser(
            &browser,
            Method::PATCH,
            "/api/auth/me",
            true,
            Some(json!({})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "nothing to change"
    );
    let (status, _) = server
        .as_browser(
            &browser,
            Method::PATCH,
            "/api/auth/me",
            true,
            Some(json!({"firstname": "Ada", "email": "mallory@example.org"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "no other field");
    let (status, body) = server
        .as_browser(
            &browser,
            Method::PATCH,
            "/api/auth/me",
            true,
            Some(json!({"firstname": "Ada", "lastname": "Lovelace"})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let process = body["process_id"].as_str().unwrap().to_owned();
    server.wait_for(&process, &["completed"]).await;
    let (status, model) = server
        .as_browser(
            &browser,
            Method::GET,
            &format!("/api/subscriptions/domain-model/{ada}"),
            false,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(model["user"]["firstname"], "Ada");
    assert_eq!(model["user"]["lastname"], "Lovelace");
    assert_eq!(model["user"]["email"], "ada@example.org", "unchanged");
    assert_eq!(model["user"]["username"], "ada", "unchanged");
    let (status, _) = server
        .as_browser(
            &browser,
            Method::GET,
            &format!("/api/processes/{process}"),
            false,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "her own process");

    let service = server.token_for(None, Role::User, None).await;
    let (status, _) = server
        .call(
            Method::PATCH,
            "/api/auth/me",
            Some(&service),
            Some(json!({"firstname": "Nobody"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_set_roles_and_the_users_sessions_follow() {
    let server = super::accounts::server(None, std::sync::Arc::new(SystemClock), |_| {}).await;
    let ada = server
        .user_with_password("ada", super::accounts::PASSWORD, super::accounts::CHEAP)
        .await;
    let browser = server.browser("ada", super::accounts::PASSWORD).await;
    let path = format!("/api/auth/users/{ada}/roles");
    let me = || server.as_browser(&browser, Method::GET, "/api/auth/me", false, None);

    // Not an admin: ada cannot make herself one.
    let (status, _) = server
        .as_browser(
            &browser,
            Method::PUT,
            &path,
            true,
            Some(json!({"roles": ["admin"]})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server
        .call(
            Method::PUT,
            &path,
            Some(&server.admin),
            Some(json!({"roles": ["root"]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let missing = format!("/api/auth/users/{}/roles", Uuid::now_v7());
    let (status, _) = server
        .call(
            Method::PUT,
            &missing,
            Some(&server.admin),
            Some(json!({"roles": []})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = server
        .call(
            Method::PUT,
            &path,
            Some(&server.admin),
            Some(json!({"roles": ["admin"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["roles"], json!(["user", "admin"]));
    assert_eq!(me().await.1["roles"], json!(["user", "admin"]));
    let (status, _) = server
        .as_browser(&browser, Method::GET, "/api/register/users", false, None)
        .await;
    assert_ne!(status, StatusCode::FORBIDDEN, "an admin now");

    let (_, body) = server
        .call(
            Method::PUT,
            &path,
            Some(&server.admin),
            Some(json!({"roles": []})),
        )
        .await;
    assert_eq!(body["roles"], json!(["user"]));
    assert_eq!(me().await.1["roles"], json!(["user"]));
    let (_, audit) = server.get("/api/audit?action=roles_changed").await;
    let events = audit["items"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{audit}");
    assert_eq!(events[0]["target"], json!(ada.to_string()));
    server.stop().await;
}
