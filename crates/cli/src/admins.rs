//! `cadre admin create`: an admin who signs in with a password (the first one, on a fresh
//! database, so that someone can open the console).

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, Result, anyhow, bail};
use cadre_domain::{Origin, ProcessStatus, Role};
use cadre_engine::Engine;
use cadre_registration::Passwords;
use cadre_registration::password::password_problem;
use cadre_server::api::auth::set_user_roles;
use cadre_server::{AppState, Config};
use clap::Subcommand;
use serde_json::json;
use uuid::Uuid;

use crate::operator;
use crate::output::Output;

/// The product of the user group admins are put in when it is made here.
const GROUP_PRODUCT: &str = "User Group";

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Create an active user with the admin role and a password: typed at the terminal
    /// (not shown), or one line of standard input.
    Create {
        /// The user name they sign in with (also their user id).
        #[arg(long)]
        username: String,
        /// Their email address (password reset links go there).
        #[arg(long)]
        email: String,
        /// The user group they belong to, by its id; made if missing.
        #[arg(long, default_value = "admins")]
        group: String,
    },
}

pub(crate) async fn admin(
    engine: &Engine,
    state: &AppState,
    config: &Config,
    output: &Output,
    command: AdminCommand,
) -> Result<()> {
    let AdminCommand::Create {
        username,
        email,
        group,
    } = command;
    let password = read_password()?;
    let registration = &config.registration;
    let context = [
        username.as_str(),
        email.as_str(),
        registration.site_name.as_str(),
    ];
    if let Some(problem) = password_problem(&password, registration.password_min_length, &context) {
        bail!("the password {problem}");
    }
    let group = user_group(engine, &group).await?;
    let product = engine
        .store()
        .product_by_name(&registration.user_product)
        .await
        .with_context(|| format!("no product {:?} for users", registration.user_product))?;
    let pages = [
        json!({"product": product.id}),
        json!({"user_id": username, "username": username, "email": email,
               "user_group_ids": [group]}),
    ];
    let user = completed(engine, "create_user", &pages).await?;
    let passwords = Passwords::new(config.accounts.argon2, 1)?;
    engine
        .store()
        .store_credentials(
            user,
            &passwords.hash(&password).await?,
            engine.clock().now(),
        )
        .await?;
    let origin = Origin {
        user_id: None,
        client_addr: None,
    };
    set_user_roles(state, &origin, &operator(), user, &[Role::Admin])
        .await
        .map_err(|error| anyhow!("{error}"))?;
    output.message(&format!(
        "{username} is an admin (user {user}): sign in at /sign-in"
    ));
    Ok(())
}

/// The password: typed at the terminal without echo, or the first line of standard input.
fn read_password() -> Result<String> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password("Password: ").context("cannot read the password");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// The user group with id `id`, made (named after it) if there is none.
async fn user_group(engine: &Engine, id: &str) -> Result<Uuid> {
    let found = engine
        .store()
        .find_by_unique_values("user_group_id", &[id.to_owned()])
        .await?;
    if let Some((_, group)) = found.first() {
        return Ok(*group);
    }
    let product = engine
        .store()
        .product_by_name(GROUP_PRODUCT)
        .await
        .with_context(|| format!("no product {GROUP_PRODUCT:?} for the group"))?;
    let mut name: Vec<char> = id.chars().collect();
    if let Some(first) = name.first_mut() {
        *first = first.to_ascii_uppercase();
    }
    let pages = [
        json!({"product": product.id}),
        json!({"user_group_id": id, "user_group_name": name.into_iter().collect::<String>()}),
    ];
    completed(engine, "create_user_group", &pages).await
}

/// Runs `workflow` with `pages` here, to the end; the subscription it made.
async fn completed(engine: &Engine, workflow: &str, pages: &[serde_json::Value]) -> Result<Uuid> {
    let process = engine
        .start(workflow, pages, &operator())
        .await
        .map_err(|error| crate::explain(error.into()))?;
    engine.run_until_idle().await?;
    let process = engine.store().process(process.id).await?;
    if process.status != ProcessStatus::Completed {
        bail!(
            "{workflow} did not complete ({}): {}",
            process.status,
            process.failed_reason.unwrap_or_default()
        );
    }
    process.state["subscription_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| anyhow!("{workflow} made no subscription"))
}
