//! The SCIM 2.0 service provider over HTTP (`docs/scim.md`): discovery, Users and Groups
//! through cadre's workflows, queries, PATCH as identity providers send it, versions, and
//! errors in SCIM's shape.

use cadre_domain::{Clock, Role, SystemClock};
use cadre_server::auth::{NewToken, issue_token};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::Server;

/// A SCIM answer: status, headers, body (`null` when empty).
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|value| value.to_str().unwrap())
            .unwrap_or_default()
    }
}

impl Server {
    /// A token with the `scim` role, acting for no user.
    pub(super) async fn scim_token(&self) -> String {
        issue_token(
            self.engine.store().as_ref(),
            NewToken {
                name: "identity provider",
                role: Role::Scim,
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

    /// Sends a SCIM request with `token` and `headers`, the body as `application/scim+json`.
    async fn scim_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}/scim/v2{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        if !body.is_null() {
            assert_eq!(
                headers["content-type"], "application/scim+json",
                "{path}: {body}"
            );
        }
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn scim(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Answer {
        self.scim_with(method, path, Some(token), &[], body).await
    }

    /// Creates a SCIM User, expecting 201; returns it.
    async fn scim_user(&self, token: &str, user_name: &str) -> Value {
        let created = self
            .scim(
                Method::POST,
                "/Users",
                token,
                Some(json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": user_name,
                    "name": {"givenName": "Given", "familyName": user_name},
                    "emails": [{"value": format!("{user_name}@example.org"), "type": "work", "primary": true}],
                    "active": true
                })),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        created.body
    }
}

fn patch(operations: Value) -> Option<Value> {
    Some(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": operations
    }))
}

fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|members| {
            members
                .iter()
                .map(|member| member["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn error_of(answer: &Answer, status: StatusCode) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(
        answer.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
        "{}",
        answer.body
    );
    assert_eq!(answer.body["status"], status.as_u16().to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim_needs_a_scim_or_admin_token_and_says_so_in_scims_shape() {
    let server = Server::start(1).await;
    let scim = server.scim_token().await;
    let anonymous = server
        .scim_with(Method::GET, "/Users", None, &[], None)
        .await;
    error_of(&anonymous, StatusCode::UNAUTHORIZED);
    assert!(anonymous.header("www-authenticate").starts_with("Bearer"));
    let forged = server
        .scim(
            Method::GET,
            "/Users",
            &format!("cadre_{}_{}", "0".repeat(32), "0".repeat(64)),
            None,
        )
        .await;
    error_of(&forged, StatusCode::UNAUTHORIZED);
    let user = server.scim(Method::GET, "/Users", &server.user, None).await;
    error_of(&user, StatusCode::FORBIDDEN);
    let created = server
        .scim(
            Method::POST,
            "/Users",
            &server.user,
            Some(json!({"userName": "mallory", "emails": [{"value": "m@example.org"}]})),
        )
        .await;
    error_of(&created, StatusCode::FORBIDDEN);
    for token in [&scim, &server.admin] {
        let listed = server.scim(Method::GET, "/Users", token, None).await;
        assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
        assert_eq!(listed.body["totalResults"], 0);
    }
    // A SCIM token is no admin of the API.
    let (status, _) = server
        .call(
            Method::POST,
            "/api/processes/create_user_group",
            Some(&scim),
            Some(json!([])),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let unknown = server.scim(Method::GET, "/Nothing", &scim, None).await;
    error_of(&unknown, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_describes_what_the_handlers_do() {
    let server = Server::start(1).await;
    let scim = server.scim_token().await;
    let config = server
        .scim(Method::GET, "/ServiceProviderConfig", &scim, None)
        .await;
    assert_eq!(config.status, StatusCode::OK);
    for feature in ["patch", "filter", "sort", "etag"] {
        assert_eq!(config.body[feature]["supported"], true, "{feature}");
    }
    assert_eq!(config.body["filter"]["maxResults"], 1000);
    assert_eq!(config.body["pagination"]["cursor"], true);
    assert_eq!(config.body["pagination"]["maxPageSize"], 1000);
    assert_eq!(
        config.body["authenticationSchemes"][0]["type"],
        "oauthbearertoken"
    );

    let types = server
        .scim(Method::GET, "/ResourceTypes", &scim, None)
        .await;
    let endpoints: Vec<&str> = types.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kind| kind["endpoint"].as_str().unwrap())
        .collect();
    assert_eq!(endpoints, ["/Users", "/Groups"]);
    let user_type = server
        .scim(Method::GET, "/ResourceTypes/User", &scim, None)
        .await;
    assert_eq!(
        user_type.body["schema"],
        "urn:ietf:params:scim:schemas:core:2.0:User"
    );
    let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    assert_eq!(
        user_type.body["schemaExtensions"],
        json!([{"schema": enterprise, "required": false}])
    );

    let schemas = server.scim(Method::GET, "/Schemas", &scim, None).await;
    assert_eq!(schemas.body["totalResults"], 3);
    let extension = server
        .scim(Method::GET, &format!("/Schemas/{enterprise}"), &scim, None)
        .await;
    let names: Vec<&str> = extension.body["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attribute| attribute["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "employeeNumber",
            "costCenter",
            "organization",
            "division",
            "department",
            "manager"
        ],
        "the extension's own attributes, not the common ones"
    );
    let user = server
        .scim(
            Method::GET,
            "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
            &scim,
            None,
        )
        .await;
    let attribute = |name: &str| {
        user.body["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|attribute| attribute["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .clone()
    };
    assert_eq!(attribute("userName")["uniqueness"], "server");
    assert_eq!(attribute("userName")["caseExact"], false);
    assert_eq!(attribute("password")["returned"], "never");
    assert_eq!(attribute("groups")["mutability"], "readOnly");
    assert_eq!(attribute("emails")["multiValued"], true);
    let missing = server
        .scim(Method::GET, "/Schemas/urn:nothing", &scim, None)
        .await;
    error_of(&missing, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_lives_its_whole_life_over_scim_through_cadres_workflows() {
    let server = Server::start(1).await;
    let scim = server.scim_token().await;
    // Read-only `id` and `meta` in the input are ignored; the password is accepted, never shown.
    let created = server
        .scim(
            Method::POST,
            "/Users",
            &scim,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "id": "chosen-by-the-client",
                "meta": {"resourceType": "Nonsense"},
                "externalId": "bjensen-7",
                "userName": "bjensen",
                "password": "t1meMa$heen",
                "name": {"givenName": "Barbara", "familyName": "Jensen"},
                "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}]
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let user = created.body.clone();
    let id = user["id"].as_str().unwrap().to_owned();
    assert_ne!(id, "chosen-by-the-client");
    assert_eq!(created.header("location"), user["meta"]["location"]);
    assert!(
        user["meta"]["location"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/scim/v2/Users/{id}"))
    );
    assert_eq!(user["meta"]["resourceType"], "User");
    assert_eq!(created.header("etag"), user["meta"]["version"]);
    assert_eq!(user["externalId"], "bjensen-7");
    // One address, its value only: cadre keeps no type and no second address.
    assert_eq!(user["emails"], json!([{"value": "bjensen@example.com"}]));
    assert_eq!(user["userName"], "bjensen");
    assert_eq!(
        user["name"],
        json!({"givenName": "Barbara", "familyName": "Jensen"})
    );
    assert_eq!(user["active"], true);
    assert!(!user.to_string().contains("t1meMa$heen"), "{user}");

    // The same object a form makes: a User subscription, created by create_user.
    let (status, subscription) = server.get(&format!("/api/subscriptions/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(subscription["status"], "active");
    assert_eq!(subscription["domain_model"]["user"]["username"], "bjensen");
    let (_, processes) = server
        .get(&format!("/api/processes?subscription_id={id}"))
        .await;
    let workflows: Vec<&str> = processes["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|p| p["workflow_name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(workflows.contains(&"create_user"), "{processes}");

    // Versions: unchanged is 304, a stale If-Match is 412 and changes nothing.
    let version = user["meta"]["version"].as_str().unwrap().to_owned();
    let unchanged = server
        .scim_with(
            Method::GET,
            &format!("/Users/{id}"),
            Some(&scim),
            &[("if-none-match", &version)],
            None,
        )
        .await;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    let stale = server
        .scim_with(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(&scim),
            &[("if-match", "W/\"stale\"")],
            patch(json!([{"op": "replace", "path": "userName", "value": "babs"}])),
        )
        .await;
    error_of(&stale, StatusCode::PRECONDITION_FAILED);

    // PATCH as Entra ID sends it: `Replace`, a string boolean, a dotted key, a value path.
    let patched = server
        .scim_with(
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(&scim),
            &[("if-match", &version)],
            patch(json!([
                {"op": "Replace", "value": {"name.givenName": "Babs",
                  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Tours"}},
                {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "babs@example.com"},
                {"op": "Replace", "path": "active", "value": "False"}
            ])),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["name"]["givenName"], "Babs");
    assert_eq!(patched.body["emails"][0]["value"], "babs@example.com");
    assert_eq!(patched.body["active"], false);
    assert_ne!(patched.body["meta"]["version"], json!(version));
    let (_, subscription) = server.get(&format!("/api/subscriptions/{id}")).await;
    assert_eq!(subscription["status"], "disabled");
    assert_eq!(subscription["domain_model"]["user"]["firstname"], "Babs");

    // An inactive user stays listable, and comes back with `active: true`.
    let inactive = server
        .scim(
            Method::GET,
            "/Users?filter=active%20eq%20false",
            &scim,
            None,
        )
        .await;
    assert_eq!(inactive.body["totalResults"], 1, "{}", inactive.body);
    // A full replacement that also renames a disabled user.
    let replaced = server
        .scim(
            Method::PUT,
            &format!("/Users/{id}"),
            &scim,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "babs",
                "name": {"givenName": "Babs", "familyName": "Jensen"},
                "emails": [{"value": "babs@example.com", "primary": true}],
                "active": true
            })),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    assert_eq!(replaced.body["userName"], "babs");
    assert_eq!(replaced.body["active"], true);

    // The external id is the identity provider's (cadre's auth_id): it changes and goes.
    let new_external = server
        .scim(
            Method::PATCH,
            &format!("/Users/{id}"),
            &scim,
            patch(json!([{"op": "replace", "path": "externalId", "value": "entra-42"}])),
        )
        .await;
    assert_eq!(
        new_external.body["externalId"], "entra-42",
        "{}",
        new_external.body
    );
    let (_, subscription) = server.get(&format!("/api/subscriptions/{id}")).await;
    assert_eq!(subscription["domain_model"]["user"]["auth_id"], "entra-42");
    let found = server
        .scim(
            Method::GET,
            "/Users?filter=externalId%20eq%20%22entra-42%22",
            &scim,
            None,
        )
        .await;
    assert_eq!(found.body["totalResults"], 1);
    let cleared = server
        .scim(
            Method::PATCH,
            &format!("/Users/{id}"),
            &scim,
            patch(
                json!([{"op": "remove", "path": "externalId"}, {"op": "remove", "path": "name"}]),
            ),
        )
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    assert!(cleared.body.get("externalId").is_none(), "{}", cleared.body);
    assert!(cleared.body.get("name").is_none(), "{}", cleared.body);

    let deleted = server
        .scim(Method::DELETE, &format!("/Users/{id}"), &scim, None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = server
        .scim(Method::GET, &format!("/Users/{id}"), &scim, None)
        .await;
    error_of(&gone, StatusCode::NOT_FOUND);
    let (_, subscription) = server.get(&format!("/api/subscriptions/{id}")).await;
    assert_eq!(subscription["status"], "terminated");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_scim_error_and_changes_nothing() {
    let server = Server::start(1).await;
    let scim = server.scim_token().await;
    server.scim_user(&scim, "ada").await;
    for (body, scim_type) in [
        (
            json!({"userName": "ADA", "emails": [{"value": "other@example.org"}]}),
            "uniqueness",
        ),
        (
            json!({"userName": "eve", "emails": [{"value": "ADA@example.org"}]}),
            "uniqueness",
        ),
        (json!({"userName": "eve"}), "invalidValue"),
        (
            json!({"userName": "eve", "emails": [{"value": "not an address"}]}),
            "invalidValue",
        ),
        (
            json!({"userName": "eve", "emails": [{"value": "e@example.org"}], "active": "maybe"}),
            "invalidValue",
        ),
    ] {
        let refused = server
            .scim(Method::POST, "/Users", &scim, Some(body.clone()))
            .await;
        let status = if scim_type == "uniqueness" {
            StatusCode::CONFLICT
        } else {
            StatusCode::BAD_REQUEST
        };
        error_of(&refused, status);
        assert_eq!(refused.body["scimType"], scim_type, "{body}");
    }
    let not_json = server
        .client
        .post(format!("{}/scim/v2/Users", server.base))
        .bearer_auth(&scim)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let body: Value = not_json.json().await.unwrap();
    assert_eq!(body["scimType"], "invalidSyntax");
    let as_text = server
        .client
        .post(format!("{}/scim/v2/Users", server.base))
        .bearer_auth(&scim)
        .header("content-type", "text/plain")
        .body(r#"{"userName": "eve"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(as_text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A body past the limit is refused in SCIM's shape too, before it is read whole (and the
    // connection with it: the rest of the body is never read).
    let oversized = server
        .scim_with(
            Method::POST,
            "/Users",
            Some(&scim),
            &[("connection", "close")],
            Some(json!({"userName": "eve", "padding": "x".repeat(3 << 20)})),
        )
        .await;
    error_of(&oversized, StatusCode::PAYLOAD_TOO_LARGE);
    // At most 1,000 members a request, refused before any workflow runs.
    let members: Vec<Value> = (0..1001)
        .map(|n| json!({"value": format!("00000000-0000-7000-8000-{n:012}")}))
        .collect();
    let crowd = server
        .scim(
            Method::POST,
            "/Groups",
            &scim,
            Some(json!({"displayName": "Crowd", "members": members})),
        )
        .await;
    error_of(&crowd, StatusCode::BAD_REQUEST);
    assert_eq!(crowd.body["scimType"], "invalidValue");
    assert!(
        crowd.body["detail"]
            .as_str()
            .unwrap()
            .contains("at most 1000 members"),
        "{}",
        crowd.body
    );
    let none = server
        .scim(
            Method::GET,
            "/Groups?filter=displayName%20eq%20%22Crowd%22",
            &scim,
            None,
        )
        .await;
    assert_eq!(none.body["totalResults"], 0, "{}", none.body);
    let bad_filter = server
        .scim(Method::GET, "/Users?filter=userName%20eq", &scim, None)
        .await;
    error_of(&bad_filter, StatusCode::BAD_REQUEST);
    assert_eq!(bad_filter.body["scimType"], "invalidFilter");
    let unknown = server
        .scim(
            Method::GET,
            "/Users/00000000-0000-0000-0000-000000000000",
            &scim,
            None,
        )
        .await;
    error_of(&unknown, StatusCode::NOT_FOUND);
    let malformed = server
        .scim(Method::GET, "/Users/not-an-id", &scim, None)
        .await;
    error_of(&malformed, StatusCode::NOT_FOUND);
    let listed = server.scim(Method::GET, "/Users", &scim, None).await;
    assert_eq!(
        listed.body["totalResults"], 1,
        "nothing but ada: {}",
        listed.body
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_filter_sort_page_and_pick_attributes() {
    let server = Server::start(1).await;
    let scim = server.scim_token().await;
    for name in ["carol", "alice", "bob", "dave"] {
        server.scim_user(&scim, name).await;
    }
    let find = |filter: &str| {
        let path = format!(
            "/Users?filter={}",
            percent_encoding::utf8_percent_encode(filter, percent_encoding::NON_ALPHANUMERIC)
        );
        let server = &server;
        let scim = &scim;
        async move { server.scim(Method::GET, &path, scim, None).await.body }
    };
    let names = |list: &Value| -> Vec<String> {
        list["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|user| user["userName"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(&find(r#"userName eq "ALICE""#).await),
        ["alice"],
        "userName compares without case"
    );
    assert_eq!(
        names(&find(r#"emails[value sw "dave@" and not (value ew ".com")]"#).await),
        ["dave"]
    );
    assert_eq!(
        names(&find(r#"userName sw "c" or name.familyName eq "dave""#).await),
        ["carol", "dave"]
    );
    assert_eq!(names(&find(r#"not (userName co "a")"#).await), ["bob"]);
    let nothing = find(r#"userName eq "nobody""#).await;
    assert_eq!(nothing["totalResults"], 0);
    assert_eq!(nothing["Resources"], json!([]));

    // Creation order by default, pages of a stable order, and a sort.
    let page = |query: &str| {
        let path = format!("/Users?{query}");
        let server = &server;
        let scim = &scim;
        async move { server.scim(Method::GET, &path, scim, None).await.body }
    };
    let first = page("startIndex=1&count=2").await;
    assert_eq!(first["totalResults"], 4);
    assert_eq!(first["itemsPerPage"], 2);
    assert_eq!(names(&first), ["carol", "alice"]);
    assert_eq!(
        names(&page("startIndex=3&count=100").await),
        ["bob", "dave"]
    );
    assert_eq!(
        names(&page("sortBy=userName&sortOrder=descending&count=3").await),
        ["dave", "carol", "bob"]
    );
    let counted = page("count=0").await;
    assert_eq!(counted["totalResults"], 4);
    assert_eq!(counted["Resources"], json!([]));

    // Attributes: only those asked for (and `id`), or all but the excluded ones.
    let picked = page("attributes=userName,name.givenName&count=1").await;
    let user = &picked["Resources"][0];
    assert_eq!(user["name"], json!({"givenName": "Given"}));
    assert!(
        user.get("emails").is_none() && user.get("id").is_some(),
        "{user}"
    );
    let trimmed = page("excludedAttributes=emails,id&count=1").await;
    assert!(trimmed["Resources"][0].get("emails").is_none());
    assert!(
        trimmed["Resources"][0].get("id").is_some(),
        "id is always returned"
    );

    // Cursors (RFC 9865) walk in creation order, with or without a filter.
    let walk = page("cursor=&count=3").await;
    assert_eq!(names(&walk), ["carol", "alice", "bob"]);
    assert_eq!(walk["totalResults"], 4);
    let next = walk["nextCursor"].as_str().unwrap().to_owned();
    let rest = page(&format!("cursor={next}&count=3")).await;
    assert_eq!(names(&rest), ["dave"]);
    assert!(rest.get("nextCursor").is_none(), "{rest}");
    let filtered = |cursor: &str| {
        page(&format!(
            "filter=userName%20sw%20%22d%22%20or%20userName%20sw%20%22a%22&count=1&cursor={cursor}"
        ))
    };
    let first = filtered("").await;
    assert_eq!(names(&first), ["alice"]);
    let second = filtered(first["nextCursor"].as_str().unwrap()).await;
    assert_eq!(names(&second), ["dave"]);
    let bad_cursor = server
        .scim(Method::GET, "/Users?cursor=nonsense", &scim, None)
        .await;
    error_of(&bad_cursor, StatusCode::BAD_REQUEST);
    assert_eq!(bad_cursor.body["scimType"], "invalidCursor");

    // A search by POST, per type and at the root.
    let searched = server
        .scim(
            Method::POST,
            "/Users/.search",
            &scim,
            Some(
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                        "filter": "userName sw \"a\"", "attributes": ["userName"]}),
            ),
        )
        .await;
    assert_eq!(names(&searched.body), ["alice"]);
    // A deleted user is gone from every kind of page.
    let bob = find(r#"userName eq "bob""#).await["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deleted = server
        .scim(Method::DELETE, &format!("/Users/{bob}"), &scim, None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(page("count=10").await["totalResults"], 3);
    assert_eq!(
        names(&page("cursor=&count=10").await),
        ["carol", "alice", "dave"]
    );
    let everything = server
        .scim(
            Method::POST,
            "/.search",
            &scim,
            Some(json!({"filter": "meta.resourceType pr"})),
        )
        .await;
    assert_eq!(everything.body["totalResults"], 3);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_members_come_and_go_every_way_identity_providers_send_them() {
    let server = Server::start(1).await;
    let scim = server.scim_token().await;
    let mut ids = Vec::new();
    for name in ["ann", "ben", "cy", "dee"] {
        ids.push(
            server.scim_user(&scim, name).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let (ann, ben, cy, dee) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let created = server
        .scim(
            Method::POST,
            "/Groups",
            &scim,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Tour Guides",
                "externalId": "tour-guides",
                "members": [{"value": ann, "$ref": null}, {"value": ben, "display": "Ben"}]
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let group = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.header("location"), created.body["meta"]["location"]);
    assert_eq!(created.body["externalId"], "tour-guides");
    let mut expected = vec![ann.clone(), ben.clone()];
    expected.sort();
    assert_eq!(member_ids(&created.body), expected);
    // The users see the group.
    let ann_now = server
        .scim(Method::GET, &format!("/Users/{ann}"), &scim, None)
        .await;
    assert_eq!(ann_now.body["groups"][0]["value"], group.as_str());
    assert_eq!(ann_now.body["groups"][0]["display"], "Tour Guides");

    let by_name = server
        .scim(
            Method::GET,
            "/Groups?filter=displayName%20eq%20%22tour%20guides%22&excludedAttributes=members",
            &scim,
            None,
        )
        .await;
    assert_eq!(by_name.body["totalResults"], 1);
    assert!(by_name.body["Resources"][0].get("members").is_none());

    let patch_group = |operations: Value| {
        let path = format!("/Groups/{group}");
        let server = &server;
        let scim = &scim;
        async move {
            let answer = server
                .scim(Method::PATCH, &path, scim, patch(operations))
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            member_ids(&answer.body)
        }
    };
    let sorted = |mut ids: Vec<&String>| {
        ids.sort();
        ids.into_iter().cloned().collect::<Vec<String>>()
    };
    assert_eq!(
        patch_group(json!([{"op": "Add", "path": "members", "value": [{"value": cy}]}])).await,
        sorted(vec![ann, ben, cy])
    );
    assert_eq!(
        patch_group(json!([{"op": "remove", "path": format!("members[value eq \"{ann}\"]")}]))
            .await,
        sorted(vec![ben, cy])
    );
    assert_eq!(
        patch_group(json!([{"op": "Remove", "path": "members", "value": [{"value": ben}]}])).await,
        sorted(vec![cy])
    );
    assert_eq!(
        patch_group(
            json!([{"op": "replace", "path": "members", "value": [{"value": dee}, {"value": ann}]}])
        )
        .await,
        sorted(vec![ann, dee])
    );
    assert!(
        patch_group(json!([{"op": "remove", "path": "members"}]))
            .await
            .is_empty()
    );
    let ann_now = server
        .scim(Method::GET, &format!("/Users/{ann}"), &scim, None)
        .await;
    assert!(ann_now.body.get("groups").is_none(), "{}", ann_now.body);

    // A rename and members in one replacement.
    let replaced = server
        .scim(
            Method::PUT,
            &format!("/Groups/{group}"),
            &scim,
            Some(json!({"displayName": "Guides", "members": [{"value": ben}]})),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    assert_eq!(replaced.body["displayName"], "Guides");
    assert!(
        replaced.body.get("externalId").is_none(),
        "a replacement without it clears it"
    );
    assert_eq!(member_ids(&replaced.body), std::slice::from_ref(ben));
    let duplicate = server
        .scim(
            Method::POST,
            "/Groups",
            &scim,
            Some(json!({"displayName": "GUIDES"})),
        )
        .await;
    error_of(&duplicate, StatusCode::CONFLICT);
    assert_eq!(duplicate.body["scimType"], "uniqueness");
    let not_a_user = server
        .scim(
            Method::PATCH,
            &format!("/Groups/{group}"),
            &scim,
            patch(json!([{"op": "add", "path": "members", "value": [{"value": group}]}])),
        )
        .await;
    error_of(&not_a_user, StatusCode::BAD_REQUEST);
    // A disabled user stays a member, and joins and leaves as any other.
    let disabled = server
        .scim(
            Method::PATCH,
            &format!("/Users/{cy}"),
            &scim,
            patch(json!([{"op": "replace", "path": "active", "value": false}])),
        )
        .await;
    assert_eq!(disabled.body["active"], false);
    assert_eq!(
        patch_group(json!([{"op": "add", "path": "members", "value": [{"value": cy}]}])).await,
        sorted(vec![ben, cy])
    );
    assert_eq!(
        patch_group(json!([{"op": "remove", "path": format!("members[value eq \"{cy}\"]")}])).await,
        sorted(vec![ben])
    );

    // A group another group is nested in cannot end: a conflict with cadre's reason. (The
    // form's group choices are reused for up to a second.)
    tokio::time::sleep(cadre_forms::standard::CHOICES_TTL).await;
    let child = server
        .start_process(
            "create_user_group",
            json!([{"product": cadre_migrations::demo::USER_GROUP_PRODUCT_ID},
                   {"user_group_id": "juniors", "user_group_name": "Juniors",
                    "parent_user_groups": [group]}]),
        )
        .await;
    let child = server.wait_for(&child, &["completed"]).await;
    let refused = server
        .scim(Method::DELETE, &format!("/Groups/{group}"), &scim, None)
        .await;
    error_of(&refused, StatusCode::CONFLICT);
    assert!(
        refused.body["detail"].as_str().unwrap().contains("Juniors"),
        "{}",
        refused.body
    );
    let child_id = child["current_state"]["subscription_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let child_gone = server
        .scim(Method::DELETE, &format!("/Groups/{child_id}"), &scim, None)
        .await;
    assert_eq!(
        child_gone.status,
        StatusCode::NO_CONTENT,
        "{}",
        child_gone.body
    );

    // Deleting a group with members: they leave, then it ends.
    let deleted = server
        .scim(Method::DELETE, &format!("/Groups/{group}"), &scim, None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let gone = server
        .scim(Method::GET, &format!("/Groups/{group}"), &scim, None)
        .await;
    error_of(&gone, StatusCode::NOT_FOUND);
    let ben_now = server
        .scim(Method::GET, &format!("/Users/{ben}"), &scim, None)
        .await;
    assert!(ben_now.body.get("groups").is_none(), "{}", ben_now.body);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scim_route_refuses_callers_without_the_role() {
    let server = Server::start(1).await;
    let id = "01920000-0000-7000-8000-000000000001";
    let routes = [
        (Method::GET, "/ServiceProviderConfig".to_owned()),
        (Method::GET, "/ResourceTypes".to_owned()),
        (Method::GET, "/ResourceTypes/User".to_owned()),
        (Method::GET, "/Schemas".to_owned()),
        (
            Method::GET,
            "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User".to_owned(),
        ),
        (Method::GET, "/Me".to_owned()),
        (Method::POST, "/.search".to_owned()),
        (Method::POST, "/Bulk".to_owned()),
    ]
    .into_iter()
    .chain(["Users", "Groups"].into_iter().flat_map(|kind| {
        [
            (Method::GET, format!("/{kind}")),
            (Method::POST, format!("/{kind}")),
            (Method::POST, format!("/{kind}/.search")),
            (Method::GET, format!("/{kind}/{id}")),
            (Method::PUT, format!("/{kind}/{id}")),
            (Method::PATCH, format!("/{kind}/{id}")),
            (Method::DELETE, format!("/{kind}/{id}")),
        ]
    }));
    for (method, path) in routes {
        let body = (method != Method::GET && method != Method::DELETE).then(|| json!({}));
        let anonymous = server
            .scim_with(method.clone(), &path, None, &[], body.clone())
            .await;
        error_of(&anonymous, StatusCode::UNAUTHORIZED);
        let user = server.scim(method.clone(), &path, &server.user, body).await;
        assert_eq!(user.status, StatusCode::FORBIDDEN, "{method} {path}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scim_client_changes_no_admins_user() {
    let server = Server::start(1).await;
    let scim = server.scim_token().await;
    let admin = server.scim_user(&scim, "root").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let plain = server.scim_user(&scim, "pat").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = server
        .call(
            Method::PUT,
            &format!("/api/auth/users/{admin}/roles"),
            Some(&server.admin),
            Some(json!({"roles": ["admin"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let group = server
        .scim(
            Method::POST,
            "/Groups",
            &scim,
            Some(json!({"displayName": "Ops"})),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Taking over an admin by changing their address, disabling or deleting them, or moving
    // them between groups: refused, and nothing changes.
    let attempts = [
        (
            Method::PATCH,
            format!("/Users/{admin}"),
            patch(
                json!([{"op": "replace", "path": "emails", "value": [{"value": "mallory@example.org"}]}]),
            ),
        ),
        (
            Method::PATCH,
            format!("/Users/{admin}"),
            patch(json!([{"op": "replace", "path": "active", "value": false}])),
        ),
        (Method::DELETE, format!("/Users/{admin}"), None),
        (
            Method::PATCH,
            format!("/Groups/{group}"),
            patch(
                json!([{"op": "add", "path": "members", "value": [{"value": admin}]},
                         {"op": "replace", "path": "displayName", "value": "Renamed"}]),
            ),
        ),
        (
            Method::POST,
            "/Groups".to_owned(),
            Some(json!({"displayName": "Admins' group", "members": [{"value": admin}]})),
        ),
    ];
    for (method, path, body) in attempts {
        let refused = server.scim(method.clone(), &path, &scim, body).await;
        error_of(&refused, StatusCode::FORBIDDEN);
    }
    let root = server
        .scim(Method::GET, &format!("/Users/{admin}"), &scim, None)
        .await;
    assert_eq!(root.body["emails"], json!([{"value": "root@example.org"}]));
    assert_eq!(root.body["active"], true);
    assert!(root.body.get("groups").is_none());
    // Checked before anything is written: no rename, no group made.
    let ops = server
        .scim(Method::GET, &format!("/Groups/{group}"), &scim, None)
        .await;
    assert_eq!(ops.body["displayName"], "Ops");
    let groups = server.scim(Method::GET, "/Groups", &scim, None).await;
    assert_eq!(groups.body["totalResults"], 1, "{}", groups.body);
    // A plain user is the SCIM client's to change; an admin's token changes the admin.
    let joined = server
        .scim(
            Method::PATCH,
            &format!("/Groups/{group}"),
            &scim,
            patch(json!([{"op": "add", "path": "members", "value": [{"value": plain}]}])),
        )
        .await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.body);
    let by_admin = server
        .scim(
            Method::PATCH,
            &format!("/Users/{admin}"),
            &server.admin,
            patch(json!([{"op": "replace", "path": "name.givenName", "value": "Rooted"}])),
        )
        .await;
    assert_eq!(by_admin.status, StatusCode::OK, "{}", by_admin.body);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enterprise_extension_is_kept_patched_filtered_and_cleared() {
    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let server = Server::start(1).await;
    let scim = server.scim_token().await;
    let user = |name: &str| json!({"userName": name, "emails": [{"value": format!("{name}@example.org")}]});
    let boss = server
        .scim(Method::POST, "/Users", &scim, Some(user("boss")))
        .await;
    let boss_id = boss.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        boss.body["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
    );
    assert!(
        boss.body.get(ENTERPRISE).is_none(),
        "nothing to show: {}",
        boss.body
    );

    let mut worker = user("worker");
    worker[ENTERPRISE] = json!({
        "employeeNumber": "701984", "costCenter": "4130", "organization": "Universal Studios",
        "division": "Theme Park", "department": "Tour Operations",
        "manager": {"value": boss_id, "displayName": "ignored"}
    });
    let created = server
        .scim(Method::POST, "/Users", &scim, Some(worker.clone()))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.body["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE])
    );
    let extension = &created.body[ENTERPRISE];
    assert_eq!(extension["employeeNumber"], "701984");
    assert_eq!(extension["costCenter"], "4130");
    assert_eq!(extension["organization"], "Universal Studios");
    assert_eq!(extension["division"], "Theme Park");
    assert_eq!(extension["department"], "Tour Operations");
    assert_eq!(extension["manager"], json!({"value": boss_id}));

    // As Entra ID patches it: attributes by their full path, the manager as a bare id.
    let patched = server
        .scim(
            Method::PATCH,
            &format!("/Users/{id}"),
            &scim,
            Some(json!({"Operations": [
                {"op": "Add", "path": format!("{ENTERPRISE}:department"), "value": "Sales"},
                {"op": "Remove", "path": format!("{ENTERPRISE}:employeeNumber")},
                {"op": "Replace", "value": {format!("{ENTERPRISE}:costCenter"): "4200"}},
                {"op": "Replace", "path": format!("{ENTERPRISE}:manager"), "value": "e-42"}
            ]})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body[ENTERPRISE]["department"], "Sales");
    assert_eq!(patched.body[ENTERPRISE]["costCenter"], "4200");
    assert!(patched.body[ENTERPRISE].get("employeeNumber").is_none());
    assert_eq!(
        patched.body[ENTERPRISE]["manager"],
        json!({"value": "e-42"})
    );

    // Filtered by an extension attribute, without case.
    let found = server
        .scim(
            Method::GET,
            &format!("/Users?filter={ENTERPRISE}:department%20eq%20%22sales%22"),
            &scim,
            None,
        )
        .await;
    assert_eq!(found.body["totalResults"], 1, "{}", found.body);
    assert_eq!(found.body["Resources"][0]["id"], id.as_str());

    // A part too long, or a control character in one, is refused and changes nothing.
    for department in [json!("x".repeat(256)), json!("Sa\u{7}les")] {
        let refused = server
            .scim(
                Method::PATCH,
                &format!("/Users/{id}"),
                &scim,
                Some(json!({"Operations": [
                    {"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": department}
                ]})),
            )
            .await;
        error_of(&refused, StatusCode::BAD_REQUEST);
        assert_eq!(refused.body["scimType"], "invalidValue", "{department}");
    }
    let unchanged = server
        .scim(Method::GET, &format!("/Users/{id}"), &scim, None)
        .await;
    assert_eq!(unchanged.body[ENTERPRISE]["department"], "Sales");
    let mut unmanaged = user("unmanaged");
    unmanaged[ENTERPRISE] = json!({"manager": {"value": id}, "costCenter": "x".repeat(256)});
    let refused = server
        .scim(Method::POST, "/Users", &scim, Some(unmanaged))
        .await;
    error_of(&refused, StatusCode::BAD_REQUEST);

    // Bulk creates keep it too.
    let mut bulked = user("bulked");
    bulked[ENTERPRISE] = json!({"division": "Rides", "manager": boss_id});
    let bulk = server
        .scim(
            Method::POST,
            "/Bulk",
            &scim,
            Some(json!({"Operations": [
                {"method": "POST", "path": "/Users", "data": bulked},
                {"method": "POST", "path": "/Users", "data": user("plain")}
            ]})),
        )
        .await;
    let location = bulk.body["Operations"][0]["location"].as_str().unwrap();
    let bulked_id = location.rsplit('/').next().unwrap();
    let bulked = server
        .scim(Method::GET, &format!("/Users/{bulked_id}"), &scim, None)
        .await;
    assert_eq!(bulked.body[ENTERPRISE]["division"], "Rides");
    assert_eq!(
        bulked.body[ENTERPRISE]["manager"],
        json!({"value": boss_id})
    );

    // A replacement without the extension clears it.
    let replaced = server
        .scim(
            Method::PUT,
            &format!("/Users/{id}"),
            &scim,
            Some(user("worker")),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    assert!(replaced.body.get(ENTERPRISE).is_none(), "{}", replaced.body);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_series_of_bulk_user_creates_is_one_load_answered_per_operation() {
    use cadre_domain::ProcessQuery;
    let server = Server::start(1).await;
    let scim = server.scim_token().await;
    let user = |name: &str, email: &str| json!({"userName": name, "emails": [{"value": email}]});
    let taken = server
        .scim(
            Method::POST,
            "/Users",
            &scim,
            Some(user("kim", "kim@example.org")),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CREATED);
    let mut inactive = user("bo", "bo@example.org");
    inactive["active"] = json!("False");
    let mut named = user("Cy Dee", "cy@example.org");
    named["name"] = json!({"givenName": "Cy", "familyName": "Dee"});
    named["externalId"] = json!("idp-cy");
    let answer = server
        .scim(
            Method::POST,
            "/Bulk",
            &scim,
            Some(json!({
                "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "ana", "data": user("ana", "ana@example.org")},
                    {"method": "post", "path": "Users", "bulkId": "bo", "data": inactive},
                    {"method": "POST", "path": "/Users", "data": user("ANA", "other@example.org")},
                    {"method": "POST", "path": "/Users", "data": user("kay", "kim@example.org")},
                    {"method": "POST", "path": "/Users", "data": {"userName": "no address"}},
                    {"method": "POST", "path": "/Users", "bulkId": "cy", "data": named},
                    {"method": "POST", "path": "/Users", "data": user("kay", "kay@example.org")},
                    {"method": "POST", "path": "/Groups", "bulkId": "crew",
                     "data": {"displayName": "Crew", "members": [{"value": "bulkId:ana"}, {"value": "bulkId:cy"}]}},
                    {"method": "PATCH", "path": "/Users/bulkId:ana",
                     "data": {"Operations": [{"op": "replace", "path": "name.givenName", "value": "Ana"}]}}
                ]
            })),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let operations = answer.body["Operations"].as_array().unwrap();
    let statuses: Vec<&str> = operations
        .iter()
        .map(|operation| operation["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "201", "201", "409", "409", "400", "201", "201", "201", "200"
        ],
        "{}",
        answer.body
    );
    assert_eq!(operations[2]["response"]["scimType"], "uniqueness");
    assert_eq!(operations[3]["response"]["scimType"], "uniqueness");
    assert_eq!(operations[4]["response"]["scimType"], "invalidValue");
    let id_of = |index: usize| {
        let location = operations[index]["location"].as_str().unwrap();
        location.rsplit('/').next().unwrap().to_owned()
    };
    let bo = server
        .scim(Method::GET, &format!("/Users/{}", id_of(1)), &scim, None)
        .await;
    assert_eq!(bo.body["active"], false, "{}", bo.body);
    let ana = server
        .scim(Method::GET, &format!("/Users/{}", id_of(0)), &scim, None)
        .await;
    assert_eq!(ana.body["name"]["givenName"], "Ana");
    let cy = server
        .scim(Method::GET, &format!("/Users/{}", id_of(5)), &scim, None)
        .await;
    assert_eq!(cy.body["meta"]["location"], operations[5]["location"]);
    assert_eq!(cy.body["userName"], "Cy Dee");
    assert_eq!(cy.body["externalId"], "idp-cy");
    assert_eq!(
        cy.body["name"],
        json!({"givenName": "Cy", "familyName": "Dee"})
    );
    assert_eq!(cy.body["emails"], json!([{"value": "cy@example.org"}]));
    assert_eq!(cy.body["groups"][0]["display"], "Crew");

    // The four created were one provision_users load, started by the SCIM client, which made
    // bo disabled at once (no disable_user ran).
    let processes = |workflow: &str| {
        let query = ProcessQuery {
            workflow_name: Some(workflow.to_owned()),
            ..ProcessQuery::default()
        };
        let store = server.engine.store();
        async move { store.list_processes(&query).await.unwrap().items }
    };
    let loads = processes("provision_users").await;
    assert_eq!(loads.len(), 1, "{loads:?}");
    assert_eq!(loads[0].created_by, "identity provider");
    assert!(processes("disable_user").await.is_empty());
    assert_eq!(
        processes("create_user").await.len(),
        1,
        "kim's, before the Bulk"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_operations_run_in_order_and_refer_to_each_other_by_bulk_id() {
    let server = Server::start(1).await;
    let scim = server.scim_token().await;
    let config = server
        .scim(Method::GET, "/ServiceProviderConfig", &scim, None)
        .await;
    assert_eq!(config.body["bulk"]["supported"], true);
    assert_eq!(config.body["bulk"]["maxOperations"], 1000);
    let user = |name: &str| json!({"userName": name, "emails": [{"value": format!("{name}@example.org")}]});
    let answer = server
        .scim(
            Method::POST,
            "/Bulk",
            &scim,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "kim", "data": user("kim")},
                    {"method": "POST", "path": "/Groups", "bulkId": "crew",
                     "data": {"displayName": "Crew", "members": [{"value": "bulkId:kim"}]}},
                    {"method": "PATCH", "path": "/Users/bulkId:kim",
                     "data": {"Operations": [{"op": "replace", "path": "name.givenName", "value": "Kim"}]}},
                    {"method": "POST", "path": "/Users", "data": user("kim")},
                    {"method": "DELETE", "path": "/Groups/bulkId:nobody"},
                    {"method": "DELETE", "path": "/Groups/bulkId:crew"}
                ]
            })),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        answer.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:BulkResponse"])
    );
    let operations = answer.body["Operations"].as_array().unwrap();
    let statuses: Vec<&str> = operations
        .iter()
        .map(|operation| operation["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["201", "201", "200", "409", "409", "204"],
        "{}",
        answer.body
    );
    assert_eq!(operations[0]["bulkId"], "kim");
    let kim = operations[0]["location"].as_str().unwrap();
    let kim_id = kim.rsplit('/').next().unwrap();
    assert_eq!(operations[3]["response"]["scimType"], "uniqueness");
    assert!(
        operations[4]["response"]["detail"]
            .as_str()
            .unwrap()
            .contains("nobody")
    );
    let kim_now = server
        .scim(Method::GET, &format!("/Users/{kim_id}"), &scim, None)
        .await;
    assert_eq!(kim_now.body["name"]["givenName"], "Kim");
    assert!(
        kim_now.body.get("groups").is_none(),
        "the group was deleted last"
    );

    // failOnErrors: the rest is not run once that many failed.
    let stopped = server
        .scim(
            Method::POST,
            "/Bulk",
            &scim,
            Some(json!({
                "failOnErrors": 1,
                "Operations": [
                    {"method": "POST", "path": "/Users", "data": {"userName": "no address"}},
                    {"method": "POST", "path": "/Users", "data": user("lee")}
                ]
            })),
        )
        .await;
    assert_eq!(stopped.body["Operations"].as_array().unwrap().len(), 1);
    let lee = server
        .scim(
            Method::GET,
            "/Users?filter=userName%20eq%20%22lee%22",
            &scim,
            None,
        )
        .await;
    assert_eq!(lee.body["totalResults"], 0);

    // Too many operations, or too many bytes: 413 before anything runs.
    let many: Vec<Value> = (0..1001)
        .map(|n| json!({"method": "DELETE", "path": format!("/Users/{n}")}))
        .collect();
    let too_many = server
        .scim(
            Method::POST,
            "/Bulk",
            &scim,
            Some(json!({"Operations": many})),
        )
        .await;
    error_of(&too_many, StatusCode::PAYLOAD_TOO_LARGE);
    let padding = "x".repeat(1 << 20);
    let too_large = server
        .scim(
            Method::POST,
            "/Bulk",
            &scim,
            Some(json!({"Operations": [], "padding": padding})),
        )
        .await;
    error_of(&too_large, StatusCode::PAYLOAD_TOO_LARGE);
    server.stop().await;
}
