//! The web UI in a real browser: Debian's chromium, driven over WebDriver (chromedriver) with
//! fantoccini, against the real server on an ephemeral port.
//!
//! The tests need `chromedriver` (and the `chromium` it drives) on the PATH, or its path in
//! `CHROMEDRIVER`. Without one they say so and do not run; with `REQUIRE_BROWSER_TESTS=1`
//! (which `.ci/run` sets) a missing driver fails them instead.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cadre_domain::SystemClock;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use super::accounts::{CHEAP, PASSWORD, server};

/// A chromedriver child process on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
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
    };
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({"args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync",
            format!("--user-data-dir={}", driver._profile.path().display()),
        ]}),
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
    submit(&client, "Sign in").await;
    wait_for_heading(&client, "Sign in").await;
    fill(&client, "password", PASSWORD).await;
    submit(&client, "Sign in").await;
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
    let ada = server.user_with_password("ada", PASSWORD, CHEAP).await;
    server
        .engine
        .store()
        .set_roles(ada, &[cadre_domain::Role::Admin])
        .await
        .unwrap();
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
