//! `cargo xtask screenshots`: seeds a demo database (groups, users, an admin with a password,
//! a pending registration, a workflow group with a file, a planned load), serves it with the
//! release `cadre` binary, and has chromium (through chromedriver) photograph the main pages
//! into `docs/screenshots/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cadre_accounts::AccountSettings;
use cadre_domain::{Clock, Role, SystemClock};
use cadre_migrations::demo::{USER_GROUP_PRODUCT_ID, USER_INTERNAL_PRODUCT_ID};
use cadre_registration::Passwords;
use clap::Args;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// The demo admin's password.
const PASSWORD: &str = "correct horse battery staple";

#[derive(Args)]
pub struct ScreenshotsArgs {
    /// Where the PNGs go.
    #[arg(long, default_value = "docs/screenshots")]
    out: PathBuf,
    /// The chromedriver to drive chromium with.
    #[arg(long, env = "CHROMEDRIVER", default_value = "chromedriver")]
    chromedriver: String,
}

/// A child process, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub async fn run(args: ScreenshotsArgs) -> anyhow::Result<()> {
    let binary = crate::bench::release_binary()?;
    let dir = tempfile::tempdir()?;
    let database_url = format!("sqlite://{}?mode=rwc", dir.path().join("demo.db").display());
    let demo = seed(&database_url).await?;

    let config = dir.path().join("cadre.toml");
    std::fs::write(
        &config,
        format!(
            "mail_dir = {:?}\nfiles_dir = {:?}\n\n[registration]\nenabled = true\n\
             approval_required = true\napproval_recipients = [\"admins@example.org\"]\n",
            dir.path().join("mail"),
            dir.path().join("files"),
        ),
    )?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let _server = Running(
        Command::new(&binary)
            .args(["--config"])
            .arg(&config)
            .args([
                "serve",
                "--port",
                &port.to_string(),
                "--database-url",
                &database_url,
            ])
            .env("CADRE_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start cadre serve")?,
    );
    let driver_port = free_port()?;
    let _driver = Running(
        Command::new(&args.chromedriver)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} (install chromium-driver)",
                    args.chromedriver
                )
            })?,
    );
    cadre_registration::delivery::use_ring_for_tls();
    let client = connect(driver_port, dir.path()).await?;
    let shots = Shots {
        client: &client,
        base: &base,
        out: &args.out,
    };
    std::fs::create_dir_all(&args.out)?;
    let taken = shots.take(&demo, dir.path()).await;
    client.close().await.ok();
    taken?;
    println!("screenshots written to {}", args.out.display());
    Ok(())
}

/// What the demo database holds that the pages show.
struct Demo {
    /// Ada's User subscription.
    ada: String,
    /// The process that created Ada.
    ada_process: String,
}

/// Runs `workflow` with `pages` to completion; returns the process's state and id.
async fn completed(
    engine: &cadre_engine::Engine,
    workflow: &str,
    pages: Vec<Value>,
) -> anyhow::Result<(String, String)> {
    let process = engine.start(workflow, &pages, "demo").await?;
    engine.run_until_idle().await?;
    let process = engine.store().process(process.id).await?;
    let made = process.state["subscription_id"]
        .as_str()
        .context("no subscription was made")?
        .to_owned();
    Ok((process.id.to_string(), made))
}

/// Groups and users made by their workflows, and Ada an admin with a password.
async fn seed(database_url: &str) -> anyhow::Result<Demo> {
    let engine = cadre_server::Cadre::new().open(database_url).await?;
    let mut groups = Vec::new();
    for (id, name, discoverable, terms) in [
        ("staff", "Staff", false, None),
        ("engineering", "Engineering", false, None),
        (
            "book-club",
            "Book club",
            true,
            Some("Read the book before the meeting."),
        ),
        ("climbing", "Climbing", true, None),
    ] {
        let mut page = json!({"user_group_id": id, "user_group_name": name,
                              "discoverable": discoverable});
        if let Some(terms) = terms {
            page["terms"] = json!(terms);
        }
        let (_, group) = completed(
            &engine,
            "create_user_group",
            vec![json!({"product": USER_GROUP_PRODUCT_ID}), page],
        )
        .await?;
        groups.push(group);
    }
    let mut demo = None;
    for (name, first, last, group) in [
        ("ada", "Ada", "Lovelace", 0),
        ("grace", "Grace", "Hopper", 1),
        ("alan", "Alan", "Turing", 0),
        ("edsger", "Edsger", "Dijkstra", 1),
    ] {
        let (process, user) = completed(
            &engine,
            "create_user",
            vec![
                json!({"product": USER_INTERNAL_PRODUCT_ID}),
                json!({"user_id": name, "username": name, "email": format!("{name}@example.org"),
                       "firstname": first, "lastname": last, "user_group_ids": [groups[group]]}),
            ],
        )
        .await?;
        if name == "ada" {
            demo = Some(Demo {
                ada: user,
                ada_process: process,
            });
        }
    }
    let demo = demo.context("ada was not made")?;
    let ada = demo.ada.parse()?;
    let passwords = Passwords::new(AccountSettings::default().argon2, 1)?;
    let store = engine.store();
    store
        .store_credentials(ada, &passwords.hash(PASSWORD).await?, SystemClock.now())
        .await?;
    store.set_roles(ada, &[Role::Admin]).await?;
    Ok(demo)
}

/// Starts a headless chromium session through chromedriver on `port`, downloads into `dir`.
async fn connect(port: u16, dir: &Path) -> anyhow::Result<Client> {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({"args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1280,900", "--hide-scrollbars", "--no-first-run",
            format!("--user-data-dir={}", dir.join("profile").display()),
        ]}),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match ClientBuilder::rustls()?
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return Ok(client),
            Err(error) if Instant::now() > deadline => bail!("chromedriver did not start: {error}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The browser, the server and where the pictures go.
struct Shots<'a> {
    client: &'a Client,
    base: &'a str,
    out: &'a Path,
}

impl Shots<'_> {
    /// Opens `path` and photographs it as `name`.png once its heading shows.
    async fn page(&self, path: &str, name: &str) -> anyhow::Result<()> {
        self.client.goto(&format!("{}{path}", self.base)).await?;
        self.shoot(name).await
    }

    async fn shoot(&self, name: &str) -> anyhow::Result<()> {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("h1"))
            .await?;
        let png = self.client.screenshot().await?;
        std::fs::write(self.out.join(format!("{name}.png")), png)?;
        Ok(())
    }

    async fn fill(&self, id: &str, value: &str) -> anyhow::Result<()> {
        let field = self.client.wait().for_element(Locator::Id(id)).await?;
        field.clear().await?;
        field.send_keys(value).await?;
        Ok(())
    }

    async fn press(&self, text: &str) -> anyhow::Result<()> {
        self.client
            .find(Locator::XPath(&format!(
                "//button[normalize-space()='{text}']"
            )))
            .await?
            .click()
            .await?;
        Ok(())
    }

    /// Waits for the heading `text` after a click.
    async fn heading(&self, text: &str) -> anyhow::Result<()> {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::XPath(&format!("//h1[normalize-space()='{text}']")))
            .await?;
        Ok(())
    }

    async fn take(&self, demo: &Demo, dir: &Path) -> anyhow::Result<()> {
        // A visitor: the sign-up page; then Zoe signs up and confirms her address, so that an
        // admin has a registration to decide.
        self.page("/sign-up", "sign-up").await?;
        self.fill("user_name", "zoe").await?;
        self.fill("email", "zoe@example.org").await?;
        self.fill("password", PASSWORD).await?;
        self.press("Sign up").await?;
        self.heading("Check your mail").await?;
        let token = mailed_token(&dir.join("mail")).await?;
        self.client
            .goto(&format!("{}/tokens/{token}", self.base))
            .await?;
        self.press("Confirm").await?;
        self.heading("Done").await?;

        self.page("/sign-in", "sign-in").await?;
        self.fill("username", "ada").await?;
        self.fill("password", PASSWORD).await?;
        self.press("Sign in").await?;
        self.heading("ada").await?;
        self.shoot("profile").await?;
        self.page("/groups", "groups").await?;
        self.page("/admin", "console").await?;
        self.page("/admin/subscriptions", "subscriptions").await?;
        self.page(
            &format!("/admin/subscriptions/{}", demo.ada),
            "subscription",
        )
        .await?;
        self.page(&format!("/admin/processes/{}", demo.ada_process), "process")
            .await?;
        self.page("/admin/registrations", "registrations").await?;

        // The second page of create_user, as the generic renderer draws it.
        self.client
            .goto(&format!("{}/admin/workflows/create_user", self.base))
            .await?;
        self.client
            .wait()
            .for_element(Locator::Id("product"))
            .await?
            .select_by_label("User internal")
            .await?;
        self.press("Next").await?;
        self.client
            .wait()
            .for_element(Locator::Id("user_id"))
            .await?;
        self.shoot("workflow-form").await?;

        // A planned load.
        let input = dir.join("people.csv");
        std::fs::write(
            &input,
            "user_id,firstname,lastname,email,auth_id,user_groups\n\
             ada,Ada,Lovelace,ada@example.org,,staff|engineering\n\
             grace,Grace,Hopper,grace@example.org,,engineering|staff\n\
             barbara,Barbara,Liskov,barbara@example.org,,engineering\n\
             ken,Ken,Thompson,ken@example.org,,staff\n",
        )?;
        self.client
            .goto(&format!("{}/admin/loads", self.base))
            .await?;
        self.client
            .wait()
            .for_element(Locator::Id("file"))
            .await?
            .send_keys(&input.display().to_string())
            .await?;
        self.press("Upload").await?;
        self.heading("Dry run").await?;
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::XPath("//strong[@id='status'][.='completed']"))
            .await?;
        self.shoot("load-plan").await?;

        // A workflow group with a file.
        self.client
            .goto(&format!("{}/workflow-groups", self.base))
            .await?;
        self.fill("name", "Onboarding").await?;
        self.fill("members", "grace, alan").await?;
        self.press("Create the group").await?;
        self.heading("Onboarding").await?;
        let checklist = dir.join("checklist.md");
        std::fs::write(&checklist, "# First day\n\n- laptop\n- badge\n")?;
        self.client
            .find(Locator::Id("file"))
            .await?
            .send_keys(&checklist.display().to_string())
            .await?;
        self.press("Upload").await?;
        self.client
            .wait()
            .for_element(Locator::LinkText("checklist.md"))
            .await?;
        self.shoot("workflow-group").await?;
        Ok(())
    }
}

/// The token of the first mailed link in the `.eml` files of `dir`, once one is there.
async fn mailed_token(dir: &Path) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            // Quoted-printable bodies break long lines with a `=` at their end.
            let mail = std::fs::read_to_string(entry.path())?
                .replace("=\r\n", "")
                .replace("=\n", "");
            if let Some(at) = mail.find("/tokens/") {
                let token: String = mail[at + "/tokens/".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_hexdigit() || *c == '.')
                    .collect();
                return Ok(token);
            }
        }
        if Instant::now() > deadline {
            bail!("no mail with a link arrived in {}", dir.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
