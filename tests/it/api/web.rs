//! The web UI over HTTP, as a browser without JavaScript uses it: the page headers, CSRF
//! tokens on every form, signing in and out, the profile, the mailed reset link's page, API
//! tokens and the admin console.

use std::collections::BTreeMap;
use std::sync::Arc;

use cadre_domain::{Role, SystemClock};
use cadre_registration::testing::SmtpServer;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use uuid::Uuid;

use super::Server;
use super::accounts::{CHEAP, PASSWORD, mails_to, server, server_with_workflows};

/// A browser without JavaScript: keeps its cookies, follows no redirect by itself.
pub(super) struct Browser<'a> {
    server: &'a Server,
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

/// An answer: status, where it redirects, its body.
pub(super) struct Page {
    pub(super) status: StatusCode,
    pub(super) location: Option<String>,
    policy: Option<String>,
    pub(super) body: String,
}

impl Page {
    /// The value of the first hidden `csrf_token` field.
    pub(super) fn csrf(&self) -> String {
        let at = self
            .body
            .find(r#"name="csrf_token" value=""#)
            .expect("a form");
        let rest = &self.body[at + r#"name="csrf_token" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

impl<'a> Browser<'a> {
    pub(super) fn new(server: &'a Server) -> Self {
        Self {
            server,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        let response = request.header("cookie", cookie).send().await.unwrap();
        for set in response.headers().get_all(SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|value: &reqwest::header::HeaderValue| value.to_str().unwrap().to_owned())
        };
        Page {
            status: response.status(),
            location: header(LOCATION),
            policy: header(CONTENT_SECURITY_POLICY),
            body: response.text().await.unwrap(),
        }
    }

    pub(super) async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.server.base));
        self.send(request).await
    }

    pub(super) async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = form
            .iter()
            .map(|(name, value)| {
                let value = utf8_percent_encode(value, NON_ALPHANUMERIC);
                format!("{name}={value}")
            })
            .collect::<Vec<_>>()
            .join("&");
        let request = self
            .client
            .post(format!("{}{path}", self.server.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }

    /// Posts a multipart form: `fields`, then `file` named `file_name` holding `content`.
    async fn upload(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        file_name: &str,
        content: &str,
    ) -> Page {
        let mut form = reqwest::multipart::Form::new();
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        form = form.part(
            "file",
            reqwest::multipart::Part::text(content.to_owned()).file_name(file_name.to_owned()),
        );
        let request = self
            .client
            .post(format!("{}{path}", self.server.base))
            .multipart(form);
        self.send(request).await
    }

    /// Signs in through the form; returns the answer.
    pub(super) async fn sign_in(&mut self, username: &str, password: &str) -> Page {
        let form = self.get("/sign-in").await;
        let csrf = form.csrf();
        self.post(
            "/sign-in",
            &[
                ("username", username),
                ("password", password),
                ("csrf_token", &csrf),
            ],
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_strict_and_every_form_needs_its_csrf_token() {
    let server = server(None, Arc::new(SystemClock), |_| {}).await;
    server.user_with_password("ada", PASSWORD, CHEAP).await;
    let mut browser = Browser::new(&server);

    let home = browser.get("/").await;
    assert_eq!(
        (home.status, home.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/sign-in"))
    );
    let form = browser.get("/sign-in").await;
    assert_eq!(form.status, StatusCode::OK);
    let policy = form.policy.clone().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert!(!policy.contains("unsafe"), "{policy}");
    assert!(!form.body.contains("<script>"), "no inline script");
    for label in [r#"<label for="username">"#, r#"<label for="password">"#] {
        assert!(form.body.contains(label), "every input labelled");
    }

    // A form posted from elsewhere (no form cookie, or another token) is refused.
    let mut stranger = Browser::new(&server);
    let forged = stranger
        .post(
            "/sign-in",
            &[
                ("username", "ada"),
                ("password", PASSWORD),
                ("csrf_token", &form.csrf()),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(!stranger.cookies.contains_key("cadre_session"));

    let wrong = browser.sign_in("ada", "not the password at all").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.body.contains("The user name or password is wrong"),
        "{}",
        wrong.body
    );
    let signed_in = browser.sign_in("ada", PASSWORD).await;
    assert_eq!(
        (signed_in.status, signed_in.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/me"))
    );
    let profile = browser.get("/me").await;
    assert_eq!(profile.status, StatusCode::OK);
    assert!(profile.body.contains("<h1>ada</h1>"), "{}", profile.body);
    assert!(
        profile.body.contains("ada group"),
        "the groups: {}",
        profile.body
    );
    assert!(profile.body.contains("ada@example.org"));

    // Signed in, forms carry the session's token; without it nothing happens.
    let refused = browser.post("/sign-out", &[("csrf_token", "forged")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(browser.get("/me").await.status, StatusCode::OK);
    let csrf = profile.csrf();
    let out = browser.post("/sign-out", &[("csrf_token", &csrf)]).await;
    assert_eq!(out.location.as_deref(), Some("/sign-in"));
    let after = browser.get("/me").await;
    assert_eq!(
        (after.status, after.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/sign-in"))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mailed_reset_link_opens_the_page_that_sets_the_password() {
    let smtp = SmtpServer::start();
    let server = server(Some(&smtp), Arc::new(SystemClock), |_| {}).await;
    server.user_with_password("ada", PASSWORD, CHEAP).await;
    let mut browser = Browser::new(&server);
    let form = browser.get("/password-reset").await;
    let sent = browser
        .post(
            "/password-reset",
            &[("email", "ada@example.org"), ("csrf_token", &form.csrf())],
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED);
    let mail = &mails_to(&smtp, "ada@example.org", 1).await[0];
    let link = mail
        .body
        .split_whitespace()
        .find(|word| word.starts_with("http://cadre.example/password-reset/"))
        .expect("the link");
    let path = &link["http://cadre.example".len()..];
    let page = browser.get(path).await;
    assert_eq!(page.status, StatusCode::OK);
    let weak = browser
        .post(
            path,
            &[
                ("new_password", "password1234"),
                ("csrf_token", &page.csrf()),
            ],
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak.body.contains("too easy to guess"), "{}", weak.body);
    let new = "a freshly chosen passphrase";
    let set = browser
        .post(path, &[("new_password", new), ("csrf_token", &weak.csrf())])
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert!(set.body.contains("Your password is set"));
    let again = browser
        .post(path, &[("new_password", new), ("csrf_token", &weak.csrf())])
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "the link works once");
    assert_eq!(
        browser.sign_in("ada", new).await.status,
        StatusCode::SEE_OTHER
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_make_a_token_shown_once_and_revoke_it_and_only_admins_see_the_console() {
    let server = server(None, Arc::new(SystemClock), |_| {}).await;
    let ada = server.user_with_password("ada", PASSWORD, CHEAP).await;
    let mut browser = Browser::new(&server);
    browser.sign_in("ada", PASSWORD).await;

    let page = browser.get("/me/tokens").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("laptop"), "{}", page.body);
    let made = browser
        .post(
            "/me/tokens",
            &[
                ("name", "laptop"),
                ("expires_in_days", "7"),
                ("csrf_token", &page.csrf()),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let at = made.body.find("value=\"cadre_").expect("the token, shown");
    let token: String = made.body[at + 7..]
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    let (status, me) = server
        .call(reqwest::Method::GET, "/api/auth/me", Some(&token), None)
        .await;
    assert_eq!(
        (status, me["user_id"].clone()),
        (StatusCode::OK, serde_json::json!(ada))
    );
    let listed = browser.get("/me/tokens").await;
    assert!(!listed.body.contains(&token), "shown once");
    assert!(listed.body.contains("<td>laptop</td>"), "{}", listed.body);
    let id: Uuid = server
        .engine
        .store()
        .tokens_of(ada)
        .await
        .unwrap()
        .iter()
        .find(|token| token.name == "laptop")
        .unwrap()
        .id;
    let revoked = browser
        .post(
            &format!("/me/tokens/{id}/revoke"),
            &[("csrf_token", &listed.csrf())],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    let (status, _) = server
        .call(reqwest::Method::GET, "/api/auth/me", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let console = browser.get("/admin").await;
    assert_eq!(console.status, StatusCode::FORBIDDEN);
    server
        .engine
        .store()
        .set_roles(ada, &[Role::Admin])
        .await
        .unwrap();
    let console = browser.get("/admin").await;
    assert_eq!(console.status, StatusCode::OK, "{}", console.body);
    // ada and her group: one active User, one active UserGroup.
    assert!(
        console
            .body
            .contains("<th scope=\"row\">User</th><td>0</td><td>0</td><td>1</td>"),
        "{}",
        console.body
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_search_subscriptions_read_their_models_and_act_on_processes() {
    let server = server_with_workflows(
        vec![super::note_workflow()],
        None,
        Arc::new(SystemClock),
        |_| {},
    )
    .await;
    server.admin_with_password("ada").await;
    let mut browser = Browser::new(&server);
    browser.sign_in("ada", PASSWORD).await;

    let all = browser.get("/admin/subscriptions").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert!(
        all.body.contains("1–2 of 2"),
        "ada and her group: {}",
        all.body
    );
    // Sorted by description, one way and the other; the choice stays on the page.
    let first_row = |page: &Page| {
        let at = page.body.find("/admin/subscriptions/").unwrap();
        page.body[at..at + 60].to_owned()
    };
    let ascending = browser
        .get("/admin/subscriptions?sort=description&order=asc")
        .await;
    let descending = browser
        .get("/admin/subscriptions?sort=description&order=desc")
        .await;
    assert_ne!(first_row(&ascending), first_row(&descending));
    assert!(
        descending
            .body
            .contains(r#"<option value="desc" selected>"#),
        "{}",
        descending.body
    );
    let groups = browser
        .get("/admin/subscriptions?product_type=UserGroup&status=active&query=")
        .await;
    assert!(groups.body.contains("1–1 of 1"), "{}", groups.body);
    let at = groups.body.find("/admin/subscriptions/").unwrap();
    let id: String = groups.body[at + "/admin/subscriptions/".len()..]
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    let detail = browser.get(&format!("/admin/subscriptions/{id}")).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    for shown in [
        "<dt>user_group_id</dt>",
        "ada_group",
        "create_user_group",
        "modify_user_group",
    ] {
        assert!(detail.body.contains(shown), "{shown}: {}", detail.body);
    }
    // Its modify form, filled in from the page with the version it showed, goes on to its
    // second page; the version is checked.
    let link = format!("/admin/workflows/modify_user_group?subscription_id={id}&amp;version=");
    let at = detail
        .body
        .find(&link)
        .expect("a modify link with the version")
        + link.len();
    let version: String = detail.body[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let first = browser
        .get(&format!(
            "/admin/workflows/modify_user_group?subscription_id={id}&version={version}"
        ))
        .await;
    assert!(
        first.body.contains(&format!(r#"value="{version}""#)),
        "{}",
        first.body
    );
    let second = browser
        .post(
            "/admin/workflows/modify_user_group",
            &[
                ("csrf_token", &first.csrf()),
                ("__pages", &first.pages()),
                ("subscription_id", &id),
                ("version", &version),
            ],
        )
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert!(second.body.contains("Page 2"), "{}", second.body);
    let stale = browser
        .post(
            "/admin/workflows/modify_user_group",
            &[
                ("csrf_token", &first.csrf()),
                ("__pages", &first.pages()),
                ("subscription_id", &id),
                ("version", "0"),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert!(
        stale.body.contains("changed since the form"),
        "{}",
        stale.body
    );

    // A process waiting for input: aborted from its page; a retry is then refused, and said so.
    let process = server
        .start_process("take_note", serde_json::json!([{}]))
        .await;
    server.wait_for(&process, &["suspended"]).await;
    let page = browser.get(&format!("/admin/processes/{process}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains(&format!(r#"href="/admin/processes/{process}/resume""#)),
        "{}",
        page.body
    );
    let listed = browser
        .get("/admin/processes?workflow_name=take_note&status=")
        .await;
    assert!(listed.body.contains(&process), "{}", listed.body);
    let csrf = page.csrf();
    let forged = browser
        .post(
            &format!("/admin/processes/{process}/abort"),
            &[("csrf_token", "x")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let aborted = browser
        .post(
            &format!("/admin/processes/{process}/abort"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(aborted.status, StatusCode::SEE_OTHER, "{}", aborted.body);
    let after = browser.get(&format!("/admin/processes/{process}")).await;
    assert!(
        after
            .body
            .contains(r#"<strong id="status">aborted</strong>"#),
        "{}",
        after.body
    );
    let retry = browser
        .post(
            &format!("/admin/processes/{process}/retry"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(retry.status, StatusCode::CONFLICT, "{}", retry.body);
    assert!(retry.body.contains("role=\"alert\""), "{}", retry.body);

    let log = browser
        .get("/admin/audit?action=process_aborted&actor=")
        .await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.body);
    assert!(
        log.body.contains("<td>process_aborted</td>"),
        "{}",
        log.body
    );
    server.stop().await;
}

/// The first link in `mail` to this server's `/tokens/` pages (an approval mail's approve
/// link), as a path.
fn link_path(mail: &cadre_registration::testing::Parsed) -> String {
    let tokens = super::registration::tokens(mail);
    format!("/tokens/{}", tokens.first().expect("a link"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_up_is_approved_by_an_admin_in_the_console_and_joins_a_group() {
    let smtp = SmtpServer::start();
    let server = server(Some(&smtp), Arc::new(SystemClock), |config| {
        let registration = &mut config.registration;
        registration.enabled = true;
        registration.approval_required = true;
        registration.approval_recipients = vec!["admins@example.com".to_owned()];
        registration.requests_per_minute = 1000;
    })
    .await;
    server.admin_with_password("ada").await;
    let process = server
        .start_process(
            "create_user_group",
            serde_json::json!([{"product": cadre_migrations::demo::USER_GROUP_PRODUCT_ID},
                   {"user_group_id": "club", "user_group_name": "Club", "discoverable": true,
                    "terms": "Be kind."}]),
        )
        .await;
    server.wait_for(&process, &["completed"]).await;

    // Sign up: a guessable password is told; then the confirmation link's page and button.
    let mut zoe = Browser::new(&server);
    let form = zoe.get("/sign-up").await;
    assert_eq!(form.status, StatusCode::OK);
    let sign_up = |password: &'static str, csrf: String| {
        [
            ("user_name", "zoe".to_owned()),
            ("email", "zoe@example.org".to_owned()),
            ("password", password.to_owned()),
            ("csrf_token", csrf),
        ]
    };
    let fields = sign_up("password1234", form.csrf());
    let refused = zoe
        .post(
            "/sign-up",
            &fields
                .each_ref()
                .map(|(name, value)| (*name, value.as_str())),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body.contains("too easy to guess"),
        "{}",
        refused.body
    );
    let fields = sign_up(PASSWORD, refused.csrf());
    let sent = zoe
        .post(
            "/sign-up",
            &fields
                .each_ref()
                .map(|(name, value)| (*name, value.as_str())),
        )
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    let confirm = link_path(&mails_to(&smtp, "zoe@example.org", 1).await[0]);
    assert_eq!(zoe.get(&confirm).await.status, StatusCode::OK);
    let confirmed = zoe.post(&confirm, &[]).await;
    assert!(confirmed.body.contains("confirmed"), "{}", confirmed.body);

    // The admin, signed in, approves from the mailed link without a token.
    let approve = link_path(&mails_to(&smtp, "admins@example.com", 1).await[0]);
    let mut admin = Browser::new(&server);
    admin.sign_in("ada", PASSWORD).await;
    let page = admin.get(&approve).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.body.contains("admin_token"),
        "no token asked of a signed-in admin"
    );
    let approved = admin.post(&approve, &[]).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert!(approved.body.contains("approved"), "{}", approved.body);
    // The account is ready when its mail says so (the password comes with the last steps).
    mails_to(&smtp, "zoe@example.org", 2).await;

    // Zoe signs in and joins the club, accepting its terms through the mailed link.
    assert_eq!(
        zoe.sign_in("zoe", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    let groups = zoe.get("/groups").await;
    assert!(
        groups.body.contains("Join (accepting its terms) Club"),
        "{}",
        groups.body
    );
    let joined = zoe
        .post("/groups/club/join", &[("csrf_token", &groups.csrf())])
        .await;
    assert_eq!(joined.status, StatusCode::ACCEPTED);
    assert!(joined.body.contains("Accept the terms"), "{}", joined.body);
    let terms = &mails_to(&smtp, "zoe@example.org", 3).await[2];
    assert!(terms.body.contains("Be kind."), "{}", terms.body);
    let accept = link_path(terms);
    zoe.post(&accept, &[]).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let page = zoe.get("/groups").await;
        if page.body.contains("Leave Club") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", page.body);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.stop().await;
}

impl Page {
    /// The value of the option labelled `label`.
    fn option(&self, label: &str) -> String {
        let end = self
            .body
            .find(&format!(">{label}</option>"))
            .unwrap_or_else(|| panic!("no option {label}: {}", self.body));
        let start = self.body[..end].rfind("value=\"").unwrap() + "value=\"".len();
        self.body[start..end].split('"').next().unwrap().to_owned()
    }

    /// The hidden field `__pages`, unescaped.
    fn pages(&self) -> String {
        let at = self
            .body
            .find(r#"name="__pages" value=""#)
            .expect("a form page");
        let rest = &self.body[at + r#"name="__pages" value=""#.len()..];
        rest[..rest.find('"').unwrap()]
            .replace("&quot;", "\"")
            .replace("&#x2f;", "/")
            .replace("&amp;", "&")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_start_workflows_through_the_rendered_forms_fixing_what_is_wrong() {
    let server = server(None, Arc::new(SystemClock), |_| {}).await;
    server.admin_with_password("ada").await;
    let mut admin = Browser::new(&server);
    admin.sign_in("ada", PASSWORD).await;
    let listed = admin.get("/admin/workflows").await;
    assert!(
        listed.body.contains("/admin/workflows/create_user_group"),
        "{}",
        listed.body
    );

    // A group: the product on the first page, its fields on the second.
    let first = admin.get("/admin/workflows/create_user_group").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(
        first.body.contains(r#"<label for="product">"#),
        "{}",
        first.body
    );
    let product = first.option("User Group");
    let second = admin
        .post(
            "/admin/workflows/create_user_group",
            &[
                ("csrf_token", &first.csrf()),
                ("__pages", &first.pages()),
                ("product", &product),
            ],
        )
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert!(second.body.contains("Page 2"), "{}", second.body);
    // Back: the first page again, with its answer chosen.
    let back = admin
        .post(
            "/admin/workflows/create_user_group",
            &[
                ("csrf_token", &second.csrf()),
                ("__pages", &second.pages()),
                ("__back", "1"),
                ("user_group_id", "ignored"),
            ],
        )
        .await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    assert!(back.body.contains("Page 1"), "{}", back.body);
    assert!(
        back.body
            .contains(&format!(r#"<option value="{product}" selected>"#)),
        "{}",
        back.body
    );
    assert_eq!(back.pages(), "[]");
    let started = admin
        .post(
            "/admin/workflows/create_user_group",
            &[
                ("csrf_token", &second.csrf()),
                ("__pages", &second.pages()),
                ("user_group_id", "staff"),
                ("user_group_name", "Staff"),
                ("discoverable", "false"),
                ("terms", ""),
            ],
        )
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let process = started.location.unwrap();
    let id = process.rsplit('/').next().unwrap().to_owned();
    server.wait_for(&id, &["completed"]).await;

    // A user in it: a malformed user id is shown at its field, kept answers stay, then fixed.
    tokio::time::sleep(cadre_forms::standard::CHOICES_TTL).await;
    let first = admin.get("/admin/workflows/create_user").await;
    let product = first.option("User internal");
    let second = admin
        .post(
            "/admin/workflows/create_user",
            &[
                ("csrf_token", &first.csrf()),
                ("__pages", &first.pages()),
                ("product", &product),
            ],
        )
        .await;
    let group = second.option("User Group Staff");
    let answers = |user_id: &'static str, page: &Page| {
        vec![
            ("csrf_token", page.csrf()),
            ("__pages", page.pages()),
            ("user_id", user_id.to_owned()),
            ("username", "zoe".to_owned()),
            ("email", "zoe@example.org".to_owned()),
            ("firstname", String::new()),
            ("user_group_ids", group.clone()),
        ]
    };
    let post = |fields: &Vec<(&'static str, String)>| {
        fields
            .iter()
            .map(|(name, value)| (*name, value.clone()))
            .collect::<Vec<_>>()
    };
    let fields = post(&answers(".bad id", &second));
    let refs: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let wrong = admin.post("/admin/workflows/create_user", &refs).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);
    assert!(
        wrong.body.contains("field invalid"),
        "the field is marked: {}",
        wrong.body
    );
    assert!(
        wrong.body.contains(r#"value="zoe@example.org""#),
        "answers kept"
    );
    let fields = post(&answers("zoe", &wrong));
    let refs: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let started = admin.post("/admin/workflows/create_user", &refs).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let id = started
        .location
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let done = server.wait_for(&id, &["completed"]).await;
    assert_eq!(done["current_state"]["username"], "zoe", "{done}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_resume_a_process_with_its_form_and_skip_a_failed_step() {
    let server = server_with_workflows(
        vec![super::note_workflow(), super::failing_workflow()],
        None,
        Arc::new(SystemClock),
        |_| {},
    )
    .await;
    server.admin_with_password("ada").await;
    let mut admin = Browser::new(&server);
    admin.sign_in("ada", PASSWORD).await;

    let process = server
        .start_process("take_note", serde_json::json!([{}]))
        .await;
    server.wait_for(&process, &["suspended"]).await;
    let resume = format!("/admin/processes/{process}/resume");
    let form = admin.get(&resume).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("Resume take_note"), "{}", form.body);
    assert!(
        form.body
            .replace("&#x2f;", "/")
            .contains(&format!(r#"action="{resume}""#)),
        "{}",
        form.body
    );
    let short = admin
        .post(
            &resume,
            &[
                ("csrf_token", &form.csrf()),
                ("__pages", &form.pages()),
                ("note", "no"),
            ],
        )
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST, "{}", short.body);
    assert!(short.body.contains("field invalid"), "{}", short.body);
    assert_eq!(
        server.get(&format!("/api/processes/{process}")).await.1["last_status"],
        "suspended",
        "refused input leaves the process waiting"
    );
    let resumed = admin
        .post(
            &resume,
            &[
                ("csrf_token", &short.csrf()),
                ("__pages", &short.pages()),
                ("note", "all good"),
            ],
        )
        .await;
    assert_eq!(resumed.status, StatusCode::SEE_OTHER, "{}", resumed.body);
    assert_eq!(
        resumed.location.as_deref(),
        Some(format!("/admin/processes/{process}").as_str())
    );
    let done = server.wait_for(&process, &["completed"]).await;
    assert_eq!(done["current_state"]["recorded"], "all good");
    let again = admin.get(&resume).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);

    // A waiting-for-input step is not skipped; a failed one is, and the process goes on.
    let waiting = server
        .start_process("take_note", serde_json::json!([{}]))
        .await;
    server.wait_for(&waiting, &["suspended"]).await;
    let refused = admin
        .post(
            &format!("/admin/processes/{waiting}/skip"),
            &[("csrf_token", &form.csrf())],
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(refused.body.contains("role=\"alert\""), "{}", refused.body);
    let failed = server
        .start_process("fail_once", serde_json::json!([{}]))
        .await;
    server.wait_for(&failed, &["failed"]).await;
    let page = admin.get(&format!("/admin/processes/{failed}")).await;
    assert!(page.body.contains("Skip the step"), "{}", page.body);
    let skipped = admin
        .post(
            &format!("/admin/processes/{failed}/skip"),
            &[("csrf_token", &page.csrf())],
        )
        .await;
    assert_eq!(skipped.status, StatusCode::SEE_OTHER, "{}", skipped.body);
    let done = server.wait_for(&failed, &["completed"]).await;
    let statuses: Vec<&str> = done["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["status"].as_str().unwrap())
        .collect();
    assert!(statuses.contains(&"skipped"), "{done}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_decide_registrations_in_the_console_once_and_see_the_backlog() {
    let smtp = SmtpServer::start();
    let server = server(Some(&smtp), Arc::new(SystemClock), |config| {
        let registration = &mut config.registration;
        registration.enabled = true;
        registration.approval_required = true;
        registration.approval_recipients = vec!["admins@example.com".to_owned()];
        registration.requests_per_minute = 1000;
    })
    .await;
    server.admin_with_password("ada").await;
    for name in ["zoe", "yan", "xia"] {
        let mut person = Browser::new(&server);
        let form = person.get("/sign-up").await;
        let email = format!("{name}@example.org");
        let sent = person
            .post(
                "/sign-up",
                &[
                    ("csrf_token", &form.csrf()),
                    ("user_name", name),
                    ("email", &email),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
        if name != "xia" {
            let confirm = link_path(&mails_to(&smtp, &email, 1).await[0]);
            person.post(&confirm, &[]).await;
        }
    }
    let approvals = mails_to(&smtp, "admins@example.com", 2).await;

    let mut admin = Browser::new(&server);
    admin.sign_in("ada", PASSWORD).await;
    let dashboard = admin.get("/admin").await;
    assert!(
        dashboard.body.contains("2 awaiting a decision"),
        "{}",
        dashboard.body
    );
    let list = admin.get("/admin/registrations").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    for shown in [
        "Approve zoe",
        "Decline zoe",
        "Approve yan",
        "address not confirmed yet",
    ] {
        assert!(list.body.contains(shown), "{shown}: {}", list.body);
    }
    assert!(!list.body.contains("Approve xia"), "{}", list.body);
    let csrf = list.csrf();
    let forged = admin
        .post("/admin/registrations/zoe/approve", &[("csrf_token", "x")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let approved = admin
        .post("/admin/registrations/zoe/approve", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
    let declined = admin
        .post("/admin/registrations/yan/decline", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(declined.status, StatusCode::SEE_OTHER, "{}", declined.body);
    mails_to(&smtp, "zoe@example.org", 2).await;
    mails_to(&smtp, "yan@example.org", 2).await;

    // Each decision was taken once: again from the console, or from the mailed links.
    let twice = admin
        .post("/admin/registrations/zoe/decline", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(twice.status, StatusCode::NOT_FOUND, "{}", twice.body);
    assert!(twice.body.contains("awaits no decision"), "{}", twice.body);
    let unconfirmed = admin
        .post("/admin/registrations/xia/approve", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(unconfirmed.status, StatusCode::NOT_FOUND);
    for mail in &approvals {
        let link = link_path(mail);
        let used = admin.post(&link, &[]).await;
        assert_eq!(used.status, StatusCode::NOT_FOUND, "{}", used.body);
    }
    assert_eq!(
        zoe_signs_in(&server).await,
        StatusCode::SEE_OTHER,
        "the approved person signs in"
    );

    let log = admin.get("/admin/audit?action=&actor=ada").await;
    for recorded in [
        "<td>registration_approved</td>",
        "<td>registration_declined</td>",
    ] {
        assert!(log.body.contains(recorded), "{recorded}: {}", log.body);
    }
    let dashboard = admin.get("/admin").await;
    assert!(
        dashboard.body.contains("0 awaiting a decision"),
        "{}",
        dashboard.body
    );
    assert!(
        dashboard.body.contains("given up on"),
        "the outbox's backlog is shown: {}",
        dashboard.body
    );
    server.stop().await;
}

async fn zoe_signs_in(server: &Server) -> StatusCode {
    Browser::new(server).sign_in("zoe", PASSWORD).await.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_plan_a_bulk_load_apply_it_and_download_its_report() {
    let server = server(None, Arc::new(SystemClock), |_| {}).await;
    server.admin_with_password("ada").await;
    let mut admin = Browser::new(&server);
    admin.sign_in("ada", PASSWORD).await;
    let form = admin.get("/admin/loads").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let csrf = form.csrf();
    let sent = [
        ("csrf_token", csrf.as_str()),
        ("kind", "users"),
        ("mode", "incremental"),
        ("dry_run", "true"),
    ];
    let header = "user_id,firstname,lastname,email,auth_id,user_groups,is_active";

    // Bad rows: each shown, nothing loaded.
    let bad = admin
        .upload(
            "/admin/loads",
            &sent,
            "people.csv",
            &format!("{header}\nu1,A,One,not-an-email,,,true\n"),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.body.contains(r#"id="bad-rows""#), "{}", bad.body);
    assert!(bad.body.contains("<td>email</td>"), "{}", bad.body);
    let forged: Vec<(&str, &str)> = sent
        .iter()
        .map(|(name, value)| (*name, if *name == "csrf_token" { "x" } else { *value }))
        .collect();
    let refused = admin
        .upload("/admin/loads", &forged, "people.csv", header)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // A dry run: the plan as a table, nothing written.
    let csv =
        format!("{header}\nu1,Ann,One,u1@example.com,,g1,true\nu2,Bo,Two,u2@example.com,,,true\n");
    let planned = admin
        .upload("/admin/loads", &sent, "people.csv", &csv)
        .await;
    assert_eq!(planned.status, StatusCode::SEE_OTHER, "{}", planned.body);
    let plan_page = planned.location.unwrap();
    let plan_id = plan_page.rsplit('/').next().unwrap().to_owned();
    server.wait_for(&plan_id, &["completed"]).await;
    let plan = admin.get(&plan_page).await;
    assert_eq!(plan.status, StatusCode::OK, "{}", plan.body);
    assert!(plan.body.contains("Dry run"), "{}", plan.body);
    assert!(plan.body.contains("Apply this plan"), "{}", plan.body);
    assert!(
        plan.body
            .contains(r#"<tr class="created"><td>2</td><td>u1</td>"#),
        "{}",
        plan.body
    );
    assert!(
        server
            .get("/api/subscriptions?product_type=User&query=u1")
            .await
            .1["total"]
            == 0,
        "a dry run writes nothing"
    );

    // Applied: a new load of the same input, which creates the users.
    let applied = admin
        .post(
            &format!("/admin/loads/{plan_id}/again"),
            &[("csrf_token", &plan.csrf()), ("then", "apply")],
        )
        .await;
    assert_eq!(applied.status, StatusCode::SEE_OTHER, "{}", applied.body);
    let load_page = applied.location.unwrap();
    let load_id = load_page.rsplit('/').next().unwrap().to_owned();
    assert_ne!(load_id, plan_id);
    server.wait_for(&load_id, &["completed"]).await;
    let load = admin.get(&load_page).await;
    assert!(!load.body.contains("Apply this plan"), "{}", load.body);
    assert_eq!(
        server
            .get("/api/subscriptions?product_type=User&query=u1")
            .await
            .1["total"],
        1
    );
    let report = admin.get(&format!("{load_page}/report.csv")).await;
    assert_eq!(report.status, StatusCode::OK);
    let mut lines: Vec<&str> = report.body.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            ",g1,created,",
            "2,u1,created,",
            "3,u2,created,",
            "row,id,outcome,reason"
        ],
        "{}",
        report.body
    );
    let again = admin
        .post(
            &format!("/admin/loads/{load_id}/again"),
            &[("csrf_token", &plan.csrf()), ("then", "apply")],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    let listed = admin.get("/admin/loads").await;
    assert!(listed.body.contains(&load_id), "{}", listed.body);

    // A full load that would remove half of what loads manage: the guard's refusal is shown,
    // and the plan made again past it, forced, shows the removal.
    let full = [
        ("csrf_token", csrf.as_str()),
        ("kind", "users"),
        ("mode", "full"),
        ("dry_run", "true"),
    ];
    let guarded = admin
        .upload(
            "/admin/loads",
            &full,
            "people.csv",
            "user_id,firstname,lastname,email,auth_id,user_groups\nu1,Ann,One,u1@example.com,,g1\n",
        )
        .await;
    let guarded_page = guarded.location.unwrap();
    let guarded_id = guarded_page.rsplit('/').next().unwrap().to_owned();
    server.wait_for(&guarded_id, &["failed"]).await;
    let refusal = admin.get(&guarded_page).await;
    assert!(refusal.body.contains("more than 20%"), "{}", refusal.body);
    assert!(
        refusal.body.contains("Plan again, forced"),
        "{}",
        refusal.body
    );
    let forced = admin
        .post(
            &format!("/admin/loads/{guarded_id}/again"),
            &[("csrf_token", &csrf), ("then", "plan"), ("force", "true")],
        )
        .await;
    let forced_page = forced.location.unwrap();
    server
        .wait_for(forced_page.rsplit('/').next().unwrap(), &["completed"])
        .await;
    let forced = admin.get(&forced_page).await;
    assert!(
        forced
            .body
            .contains(r#"<tr class="removed"><td>—</td><td>u2</td>"#),
        "{}",
        forced.body
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_keep_files_in_their_workflow_groups_and_others_cannot_reach_them() {
    let server = server(None, Arc::new(SystemClock), |_| {}).await;
    server.user_with_password("bob", PASSWORD, CHEAP).await;
    server.user_with_password("cy", PASSWORD, CHEAP).await;
    let mut bob = Browser::new(&server);
    bob.sign_in("bob", PASSWORD).await;
    let mut cy = Browser::new(&server);
    cy.sign_in("cy", PASSWORD).await;

    let list = bob.get("/workflow-groups").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(list.body.contains("no workflow group"), "{}", list.body);
    let csrf = list.csrf();
    let unknown = bob
        .post(
            "/workflow-groups",
            &[
                ("csrf_token", &csrf),
                ("workflow", "create_user"),
                ("name", "Team"),
                ("members", "nobody"),
            ],
        )
        .await;
    assert_eq!(
        unknown.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unknown.body
    );
    assert!(
        unknown.body.contains("No user is named nobody"),
        "{}",
        unknown.body
    );
    assert!(unknown.body.contains(r#"value="Team""#), "answers kept");
    let created = bob
        .post(
            "/workflow-groups",
            &[
                ("csrf_token", &csrf),
                ("workflow", "create_user"),
                ("name", "Team"),
                ("members", ""),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let page = created.location.unwrap();

    // A file up and down again; the upload needs the form's token.
    let forged = bob
        .upload(
            &format!("{page}/files"),
            &[("csrf_token", "x")],
            "notes.txt",
            "hello",
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let uploaded = bob
        .upload(
            &format!("{page}/files"),
            &[("csrf_token", &csrf)],
            "notes.txt",
            "hello, team",
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::SEE_OTHER, "{}", uploaded.body);
    let group = bob.get(&page).await;
    assert!(group.body.contains(">notes.txt</a>"), "{}", group.body);
    let at = group.body.find(&format!(r#"href="{page}/files/"#)).unwrap() + r#"href=""#.len();
    let download: String = group.body[at..].chars().take_while(|c| *c != '"').collect();
    let file = bob.get(&download).await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.body, "hello, team");

    // Cy is no member: the group and its file are out of reach until Bob adds Cy.
    assert_eq!(cy.get(&page).await.status, StatusCode::FORBIDDEN);
    assert_eq!(cy.get(&download).await.status, StatusCode::FORBIDDEN);
    let added = bob
        .post(
            &page,
            &[("csrf_token", &csrf), ("name", "Team"), ("members", "cy")],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    assert_eq!(cy.get(&download).await.body, "hello, team");
    let cy_page = cy.get(&page).await;
    assert!(
        !cy_page.body.contains("Delete the group"),
        "{}",
        cy_page.body
    );
    let refused = cy
        .post(
            &format!("{page}/delete"),
            &[("csrf_token", &cy_page.csrf())],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);

    let file_id = download.rsplit('/').next().unwrap();
    let deleted = bob
        .post(
            &format!("{page}/files/{file_id}/delete"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.body);
    assert_eq!(bob.get(&download).await.status, StatusCode::NOT_FOUND);
    let gone = bob
        .post(&format!("{page}/delete"), &[("csrf_token", &csrf)])
        .await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER, "{}", gone.body);
    assert!(
        bob.get("/workflow-groups")
            .await
            .body
            .contains("no workflow group"),
        "the group is gone"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_set_roles_and_revoke_anyones_token_in_the_console() {
    let server = server(None, Arc::new(SystemClock), |_| {}).await;
    server.admin_with_password("ada").await;
    let bob = server.user_with_password("bob", PASSWORD, CHEAP).await;
    let mut admin = Browser::new(&server);
    admin.sign_in("ada", PASSWORD).await;
    let mut person = Browser::new(&server);
    person.sign_in("bob", PASSWORD).await;

    // Bob makes a token; the admin sees it among all of them and revokes it.
    let tokens = person.get("/me/tokens").await;
    let made = person
        .post(
            "/me/tokens",
            &[
                ("csrf_token", &tokens.csrf()),
                ("name", "bob's laptop"),
                ("expires_in_days", "7"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let all = admin.get("/admin/tokens").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert!(all.body.contains("bob&#x27;s laptop"), "{}", all.body);
    assert!(
        !all.body.contains("cadre_"),
        "no secret is shown: {}",
        all.body
    );
    let token_id = server
        .engine
        .store()
        .tokens_of(bob)
        .await
        .unwrap()
        .first()
        .unwrap()
        .id;
    assert_eq!(
        person.get("/admin/tokens").await.status,
        StatusCode::FORBIDDEN,
        "the list is for admins"
    );
    let revoked = admin
        .post(
            &format!("/admin/tokens/{token_id}/revoke"),
            &[("csrf_token", &all.csrf())],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER, "{}", revoked.body);
    let token = server.engine.store().token(token_id).await.unwrap();
    assert!(token.revoked_at.is_some());

    // Bob made an admin from his page, then a plain user again; his session follows.
    let page = admin.get(&format!("/admin/subscriptions/{bob}")).await;
    assert!(
        page.body.contains(r#"<p id="roles">user</p>"#),
        "{}",
        page.body
    );
    let forbidden = person
        .post(
            &format!("/admin/users/{bob}/roles"),
            &[("csrf_token", &tokens.csrf()), ("admin", "true")],
        )
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let set = admin
        .post(
            &format!("/admin/users/{bob}/roles"),
            &[("csrf_token", &page.csrf()), ("admin", "true")],
        )
        .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.body);
    let page = admin.get(&format!("/admin/subscriptions/{bob}")).await;
    assert!(
        page.body.contains(r#"<p id="roles">user, admin</p>"#),
        "{}",
        page.body
    );
    tokio::time::sleep(cadre_server::auth::TOKEN_CACHE_TTL).await;
    assert_eq!(person.get("/admin").await.status, StatusCode::OK);
    admin
        .post(
            &format!("/admin/users/{bob}/roles"),
            &[("csrf_token", &page.csrf())],
        )
        .await;
    tokio::time::sleep(cadre_server::auth::TOKEN_CACHE_TTL).await;
    assert_eq!(person.get("/admin").await.status, StatusCode::FORBIDDEN);
    let log = admin.get("/admin/audit?action=roles_changed&actor=").await;
    assert!(log.body.contains("user, admin"), "{}", log.body);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_masked_password_managers_fill_them_and_sign_out_is_on_every_page() {
    let server = server(None, Arc::new(SystemClock), |config| {
        config.registration.enabled = true;
    })
    .await;
    server.user_with_password("ada", PASSWORD, CHEAP).await;
    let mut visitor = Browser::new(&server);
    for (path, autocomplete) in [
        ("/sign-in", "current-password"),
        ("/sign-up", "new-password"),
    ] {
        let page = visitor.get(path).await;
        assert!(
            page.body
                .contains(&format!(r#"type="password" autocomplete="{autocomplete}""#)),
            "{path}: {}",
            page.body
        );
        assert!(!page.body.contains("onpaste"), "{path}: pasting is allowed");
    }
    let mut ada = Browser::new(&server);
    ada.sign_in("ada", PASSWORD).await;
    let password = ada.get("/me/password").await;
    assert!(password.body.contains(r#"autocomplete="new-password""#));
    for path in [
        "/me",
        "/me/password",
        "/me/tokens",
        "/groups",
        "/workflow-groups",
    ] {
        let page = ada.get(path).await;
        assert!(
            page.body.contains("Sign out (ada)"),
            "{path}: {}",
            page.body
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_console_page_or_action_answers_a_person_without_the_admin_role() {
    let server = server(None, Arc::new(SystemClock), |_| {}).await;
    let bob = server.user_with_password("bob", PASSWORD, CHEAP).await;
    let mut person = Browser::new(&server);
    person.sign_in("bob", PASSWORD).await;
    let csrf = person.get("/me").await.csrf();
    let mut visitor = Browser::new(&server);
    let any = Uuid::now_v7();
    for path in [
        "/admin".to_owned(),
        "/admin/subscriptions".to_owned(),
        format!("/admin/subscriptions/{bob}"),
        "/admin/processes".to_owned(),
        format!("/admin/processes/{any}"),
        format!("/admin/processes/{any}/resume"),
        "/admin/audit".to_owned(),
        "/admin/workflows".to_owned(),
        "/admin/workflows/create_user".to_owned(),
        "/admin/registrations".to_owned(),
        "/admin/loads".to_owned(),
        format!("/admin/loads/{any}"),
        format!("/admin/loads/{any}/report.csv"),
        "/admin/tokens".to_owned(),
        "/admin/targets".to_owned(),
        format!("/admin/targets/{any}"),
    ] {
        assert_eq!(
            person.get(&path).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        let away = visitor.get(&path).await;
        assert_eq!(away.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(away.location.as_deref(), Some("/sign-in"), "{path}");
    }
    for path in [
        format!("/admin/processes/{any}/retry"),
        format!("/admin/processes/{any}/resume"),
        "/admin/workflows/create_user".to_owned(),
        "/admin/registrations/ada/approve".to_owned(),
        format!("/admin/loads/{any}/again"),
        format!("/admin/tokens/{any}/revoke"),
        "/admin/targets".to_owned(),
        format!("/admin/targets/{any}"),
        format!("/admin/targets/{any}/remove"),
        format!("/admin/targets/{any}/reconcile"),
        // Bob making himself an admin.
        format!("/admin/users/{bob}/roles"),
    ] {
        let refused = person
            .post(
                &path,
                &[
                    ("csrf_token", &csrf),
                    ("admin", "true"),
                    ("then", "apply"),
                    ("__pages", "[]"),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(
            visitor.post(&path, &[]).await.status,
            StatusCode::SEE_OTHER,
            "{path}"
        );
    }
    let upload = person
        .upload(
            "/admin/loads",
            &[("csrf_token", &csrf)],
            "people.csv",
            "user_id\n",
        )
        .await;
    assert_eq!(upload.status, StatusCode::FORBIDDEN);
    assert!(
        server.engine.store().roles(bob).await.unwrap().is_empty(),
        "bob is no admin"
    );
    server.stop().await;
}
