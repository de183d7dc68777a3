//! The web UI in a real browser: Debian's chromium, driven over WebDriver (chromedriver) with
//! fantoccini, against the real server on an ephemeral port.
//!
//! The tests need `chromedriver` (and the `chromium` it drives) on the PATH, or its path in
//! `CHROMEDRIVER`. Without one they say so and do not run; with `REQUIRE_BROWSER_TESTS=1`
//! (which `.ci/run` sets) a missing driver fails them instead.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cadre_domain::SystemClock;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use cadre_registration::testing::SmtpServer;

use super::accounts::{CHEAP, PASSWORD, mails_to, server, server_with_workflows};

/// A chromedriver child process on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
    /// Where the browser saves what it downloads.
    downloads: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The chromedriver to use, or `None` (having said why) when the tests cannot run here.
fn chromedriver() -> Option<String> {
    let path = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".to_owned());
    let found = Command::new(&path)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if found {
        return Some(path);
    }
    let required = std::env::var("REQUIRE_BROWSER_TESTS").is_ok_and(|value| value == "1");
    assert!(
        !required,
        "REQUIRE_BROWSER_TESTS=1, but there is no chromedriver ({path})"
    );
    eprintln!(
        "SKIPPED browser test: no chromedriver on the PATH. Install Debian's chromium and \
         chromium-driver (or set CHROMEDRIVER) to run it."
    );
    None
}

/// Starts chromedriver and a headless chromium session through it.
async fn browser(chromedriver: &str) -> (Driver, Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: profile,
        downloads: tempfile::tempdir().unwrap(),
    };
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({"args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync",
            format!("--user-data-dir={}", driver._profile.path().display()),
        ], "prefs": {
            "download.default_directory": driver.downloads.path().display().to_string(),
            "download.prompt_for_download": false,
        }}),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = loop {
        match ClientBuilder::rustls()
            .expect("rustls roots")
            .capabilities(capabilities.clone())
            .connect(&driver.url)
            .await
        {
            Ok(client) => break client,
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "chromedriver did not start: {error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    (driver, client)
}

/// Fills the field with id `id` with `value`, once the page holding it has settled (a field
/// found while a page is still being replaced goes stale: then it is found again).
async fn fill(client: &Client, id: &str, value: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let field = client.wait().for_element(Locator::Id(id)).await.unwrap();
        match async {
            field.clear().await?;
            field.send_keys(value).await
        }
        .await
        {
            Ok(()) => return,
            Err(error) => {
                assert!(Instant::now() < deadline, "cannot fill {id}: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn submit(client: &Client, text: &str) {
    client
        .find(Locator::XPath(&format!(
            "//button[normalize-space()='{text}']"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Clicks the button `text` of a form whose answer is a page with the same heading, and waits
/// until that page replaced this one (looking sooner would find this page's elements, or none
/// while the next one loads).
async fn submit_for_a_new_page(client: &Client, text: &str) {
    let page = client.find(Locator::Css("html")).await.unwrap();
    submit(client, text).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while page.tag_name().await.is_ok() {
        assert!(Instant::now() < deadline, "{text} never brought a new page");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the page's heading is `text` (a click's navigation may still be under way).
async fn wait_for_heading(client: &Client, text: &str) {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::XPath(&format!("//h1[normalize-space()='{text}']")))
        .await
        .unwrap_or_else(|error| panic!("no heading {text:?}: {error}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_makes_a_token_and_signs_out_in_a_real_browser() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let server = server(None, Arc::new(SystemClock), |config| {
        config.accounts.free_failures = 1;
    })
    .await;
    let ada = server.user_with_password("ada", PASSWORD, CHEAP).await;
    let (_driver, client) = browser(&chromedriver).await;

    client.goto(&server.base).await.unwrap();
    wait_for_heading(&client, "Sign in").await;
    // A wrong password is told as a person sees it, and the name stays filled in.
    fill(&client, "username", "ada").await;
    fill(&client, "password", "not the password at all").await;
    submit(&client, "Sign in").await;
    let alert = client
        .wait()
        .for_element(Locator::Css("[role=alert]"))
        .await
        .unwrap();
    assert!(alert.text().await.unwrap().contains("wrong"));
    // A second failure in a row locks sign-in for a moment: the right password is refused too.
    fill(&client, "password", "still not the password").await;
    submit_for_a_new_page(&client, "Sign in").await;
    wait_for_heading(&client, "Sign in").await;
    fill(&client, "password", PASSWORD).await;
    submit_for_a_new_page(&client, "Sign in").await;
    wait_for_heading(&client, "Sign in").await;
    assert!(
        client.find(Locator::Css("[role=alert]")).await.is_ok(),
        "locked"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    fill(&client, "password", PASSWORD).await;
    submit(&client, "Sign in").await;
    wait_for_heading(&client, "ada").await;
    assert!(client.source().await.unwrap().contains("ada group"));

    client
        .find(Locator::LinkText("API tokens"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_heading(&client, "API tokens").await;
    fill(&client, "name", "laptop").await;
    submit(&client, "Make the token").await;
    let shown = client
        .wait()
        .for_element(Locator::Id("created"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(shown.starts_with("cadre_"), "{shown}");
    let (status, me) = server
        .call(reqwest::Method::GET, "/api/auth/me", Some(&shown), None)
        .await;
    assert_eq!(status.as_u16(), 200);
    assert_eq!(me["user_id"], json!(ada), "the token acts for ada");

    submit(&client, "Sign out (ada)").await;
    wait_for_heading(&client, "Sign in").await;
    client.goto(&format!("{}/me", server.base)).await.unwrap();
    wait_for_heading(&client, "Sign in").await;
    client.close().await.unwrap();
    server.stop().await;
}

/// Chooses the option labelled `label` of the select with id `id`.
async fn choose(client: &Client, id: &str, label: &str) {
    client
        .wait()
        .for_element(Locator::Id(id))
        .await
        .unwrap()
        .select_by_label(label)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_creates_a_group_and_a_user_in_it_through_the_rendered_forms() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let server = server(None, Arc::new(SystemClock), |_| {}).await;
    server.admin_with_password("ada").await;
    let (_driver, client) = browser(&chromedriver).await;
    client
        .goto(&format!("{}/sign-in", server.base))
        .await
        .unwrap();
    fill(&client, "username", "ada").await;
    fill(&client, "password", PASSWORD).await;
    submit(&client, "Sign in").await;
    wait_for_heading(&client, "ada").await;

    client
        .goto(&format!(
            "{}/admin/workflows/create_user_group",
            server.base
        ))
        .await
        .unwrap();
    choose(&client, "product", "User Group").await;
    submit(&client, "Next").await;
    fill(&client, "user_group_id", "staff").await;
    fill(&client, "user_group_name", "Staff").await;
    submit(&client, "Next").await;
    // The process page follows the process by itself (htmx, under the page's CSP).
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::XPath("//strong[@id='status'][.='completed']"))
        .await
        .expect("the group's process completes on the page");

    tokio::time::sleep(cadre_forms::standard::CHOICES_TTL).await;
    client
        .goto(&format!("{}/admin/workflows/create_user", server.base))
        .await
        .unwrap();
    choose(&client, "product", "User internal").await;
    submit(&client, "Next").await;
    fill(&client, "user_id", ".not an id").await;
    fill(&client, "username", "zoe").await;
    fill(&client, "email", "zoe@example.org").await;
    choose(&client, "user_group_ids", "User Group Staff").await;
    submit(&client, "Next").await;
    let error = client
        .wait()
        .for_element(Locator::Css(".field.invalid [role=alert]"))
        .await
        .unwrap();
    assert!(!error.text().await.unwrap().is_empty());
    // The answers are kept: only the wrong one is typed again (choosing the
    // group again would toggle it off).
    fill(&client, "user_id", "zoe").await;
    submit(&client, "Next").await;
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::XPath("//strong[@id='status'][.='completed']"))
        .await
        .expect("the user's process completes");
    client.close().await.unwrap();
    server.stop().await;
}

/// Clicks the link whose text is `text`.
async fn follow(client: &Client, text: &str) {
    client
        .wait()
        .for_element(Locator::LinkText(text))
        .await
        .unwrap_or_else(|error| panic!("no link {text:?}: {error}"))
        .click()
        .await
        .unwrap();
}

/// Waits until the page's `#status` says `status` (a live page updates it by itself).
async fn wait_for_status(client: &Client, status: &str) {
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::XPath(&format!(
            "//strong[@id='status'][.='{status}']"
        )))
        .await
        .unwrap_or_else(|error| panic!("never {status}: {error}"));
}

/// Signs in through the sign-in page.
async fn sign_in(client: &Client, base: &str, name: &str) {
    client.goto(&format!("{base}/sign-in")).await.unwrap();
    fill(client, "username", name).await;
    fill(client, "password", PASSWORD).await;
    submit(client, "Sign in").await;
    wait_for_heading(client, name).await;
}

/// The content of the file named `name` the browser downloads into `dir`, once it is whole.
async fn downloaded(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let partial = std::fs::read_dir(dir).unwrap().any(|entry| {
            entry
                .unwrap()
                .path()
                .extension()
                .is_some_and(|e| e == "crdownload")
        });
        if !partial && let Ok(content) = std::fs::read_to_string(&path) {
            return content;
        }
        assert!(Instant::now() < deadline, "{name} was never downloaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_up_is_approved_signs_in_and_joins_a_group_in_a_real_browser() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let smtp = SmtpServer::start();
    let server = server(Some(&smtp), Arc::new(SystemClock), |config| {
        let registration = &mut config.registration;
        registration.enabled = true;
        registration.approval_required = true;
        registration.approval_recipients = vec!["admins@example.com".to_owned()];
    })
    .await;
    server.admin_with_password("ada").await;
    let club = server
        .start_process(
            "create_user_group",
            json!([{"product": cadre_migrations::demo::USER_GROUP_PRODUCT_ID},
                   {"user_group_id": "club", "user_group_name": "Club", "discoverable": true,
                    "terms": "Be kind."}]),
        )
        .await;
    server.wait_for(&club, &["completed"]).await;
    let (_driver, client) = browser(&chromedriver).await;

    // Zoe signs up and confirms her address from the mail she received.
    client
        .goto(&format!("{}/sign-up", server.base))
        .await
        .unwrap();
    fill(&client, "user_name", "zoe").await;
    fill(&client, "email", "zoe@example.org").await;
    fill(&client, "password", PASSWORD).await;
    submit(&client, "Sign up").await;
    wait_for_heading(&client, "Check your mail").await;
    let mail = &mails_to(&smtp, "zoe@example.org", 1).await[0];
    let confirm = super::registration::tokens(mail)[0].clone();
    client
        .goto(&format!("{}/tokens/{confirm}", server.base))
        .await
        .unwrap();
    wait_for_heading(&client, "Confirm your email address").await;
    submit(&client, "Confirm").await;
    wait_for_heading(&client, "Done").await;

    // Ada approves her in the console.
    sign_in(&client, &server.base, "ada").await;
    follow(&client, "Registrations").await;
    wait_for_heading(&client, "Registrations").await;
    // Approving answers with the same page: wait until it is the new one, or the sign-out
    // button found next may be the old page's.
    submit_for_a_new_page(&client, "Approve zoe").await;
    wait_for_heading(&client, "Registrations").await;
    submit(&client, "Sign out (ada)").await;
    wait_for_heading(&client, "Sign in").await;
    mails_to(&smtp, "zoe@example.org", 2).await;

    // Zoe signs in and joins the club, accepting its terms from the mailed link.
    sign_in(&client, &server.base, "zoe").await;
    follow(&client, "Groups").await;
    wait_for_heading(&client, "Groups").await;
    submit(&client, "Join (accepting its terms) Club").await;
    wait_for_heading(&client, "Accept the terms").await;
    let terms = &mails_to(&smtp, "zoe@example.org", 3).await[2];
    let accept = super::registration::tokens(terms)[0].clone();
    client
        .goto(&format!("{}/tokens/{accept}", server.base))
        .await
        .unwrap();
    submit(&client, "Accept the terms").await;
    wait_for_heading(&client, "Done").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        client
            .goto(&format!("{}/groups", server.base))
            .await
            .unwrap();
        wait_for_heading(&client, "Groups").await;
        if client
            .find(Locator::XPath("//button[normalize-space()='Leave Club']"))
            .await
            .is_ok()
        {
            break;
        }
        assert!(Instant::now() < deadline, "zoe never became a member");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    client.close().await.unwrap();
    server.stop().await;
}

/// Whether the application [`CallsApplication`] calls is up.
static APPLICATION_UP: AtomicBool = AtomicBool::new(false);

/// Fails while the application is down.
struct CallsApplication;

#[async_trait::async_trait]
impl cadre_engine::StepFn for CallsApplication {
    async fn run(
        &self,
        _ctx: &cadre_engine::StepContext<'_>,
    ) -> Result<cadre_engine::Patch, cadre_engine::StepError> {
        if APPLICATION_UP.load(Ordering::SeqCst) {
            Ok(cadre_engine::Patch::new())
        } else {
            Err(cadre_engine::StepError::new("the application is down"))
        }
    }
}

/// `init >> call the application >> done`.
fn application_workflow() -> cadre_engine::Workflow {
    use cadre_engine::{done, init, step};
    cadre_engine::Workflow {
        name: "call_application".to_owned(),
        description: "Calls an application that may be down".to_owned(),
        target: cadre_domain::Target::System,
        product_types: Vec::new(),
        usable_when: Vec::new(),
        version: 1,
        initial_form: Arc::new(cadre_forms::Form::new()),
        steps: init() >> step("call", "Call the application", CallsApplication) >> done(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_retries_a_failed_process_and_plans_applies_and_downloads_a_load_in_a_real_browser()
 {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let server = server_with_workflows(
        vec![application_workflow()],
        None,
        Arc::new(SystemClock),
        |_| {},
    )
    .await;
    server.admin_with_password("ada").await;
    let (driver, client) = browser(&chromedriver).await;
    sign_in(&client, &server.base, "ada").await;

    // A process failed while the application was down; once it is up, a retry finishes it.
    let process = server.start_process("call_application", json!([{}])).await;
    server.wait_for(&process, &["failed"]).await;
    client
        .goto(&format!("{}/admin/processes/{process}", server.base))
        .await
        .unwrap();
    wait_for_status(&client, "failed").await;
    assert!(
        client
            .source()
            .await
            .unwrap()
            .contains("the application is down")
    );
    APPLICATION_UP.store(true, Ordering::SeqCst);
    submit(&client, "Retry").await;
    wait_for_status(&client, "completed").await;

    // A load planned from a file, applied, and its report downloaded.
    let input = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
    std::fs::write(
        input.path(),
        "user_id,firstname,lastname,email,auth_id,user_groups\n\
         u1,Ann,One,u1@example.com,,g1\nu2,Bo,Two,u2@example.com,,g1\n",
    )
    .unwrap();
    follow(&client, "Bulk loads").await;
    wait_for_heading(&client, "Bulk loads").await;
    client
        .find(Locator::Id("file"))
        .await
        .unwrap()
        .send_keys(&input.path().display().to_string())
        .await
        .unwrap();
    submit(&client, "Upload").await;
    wait_for_heading(&client, "Dry run").await;
    wait_for_status(&client, "completed").await;
    let plan = client
        .find(Locator::Id("counts"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(plan.contains('3'), "two users and their group: {plan}");
    submit(&client, "Apply this plan").await;
    wait_for_heading(&client, "Load").await;
    wait_for_status(&client, "completed").await;
    let load = client.current_url().await.unwrap();
    let load_id = load
        .path_segments()
        .unwrap()
        .next_back()
        .unwrap()
        .to_owned();
    follow(&client, "Download the report (CSV)").await;
    let report = downloaded(driver.downloads.path(), &format!("load-{load_id}.csv")).await;
    let mut lines: Vec<&str> = report.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            ",g1,created,",
            "2,u1,created,",
            "3,u2,created,",
            "row,id,outcome,reason"
        ]
    );
    client.close().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_uploads_and_downloads_a_file_and_a_forged_form_is_refused_in_a_real_browser() {
    let Some(chromedriver) = chromedriver() else {
        return;
    };
    let server = server(None, Arc::new(SystemClock), |_| {}).await;
    server.user_with_password("bob", PASSWORD, CHEAP).await;
    let (driver, client) = browser(&chromedriver).await;
    sign_in(&client, &server.base, "bob").await;
    follow(&client, "Workflow groups").await;
    wait_for_heading(&client, "Workflow groups").await;
    fill(&client, "name", "Team").await;
    submit(&client, "Create the group").await;
    wait_for_heading(&client, "Team").await;

    let notes = tempfile::tempdir().unwrap();
    let path = notes.path().join("notes.txt");
    std::fs::write(&path, "hello, team").unwrap();
    client
        .find(Locator::Id("file"))
        .await
        .unwrap()
        .send_keys(&path.display().to_string())
        .await
        .unwrap();
    submit(&client, "Upload").await;
    follow(&client, "notes.txt").await;
    assert_eq!(
        downloaded(driver.downloads.path(), "notes.txt").await,
        "hello, team"
    );

    // A form whose CSRF token is not the session's is refused, and the page says so.
    client
        .execute(
            "document.querySelectorAll('input[name=csrf_token]').forEach(e => e.value = 'forged')",
            vec![],
        )
        .await
        .unwrap();
    fill(&client, "name", "Renamed").await;
    submit(&client, "Save").await;
    wait_for_heading(&client, "This form has expired").await;
    client.close().await.unwrap();
    server.stop().await;
}
