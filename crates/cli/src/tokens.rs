//! `cadre token`: API tokens.

use anyhow::Result;
use cadre_accounts::AccountSettings;
use cadre_domain::{Clock, Role, SystemClock};
use cadre_engine::Engine;
use cadre_server::auth::NewToken;
use chrono::TimeDelta;
use clap::Subcommand;
use uuid::Uuid;

use crate::output::Output;

use crate::operator;

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a token and print it once.
    Create {
        /// Whose or what the token is; processes record it as their creator. Defaults to the
        /// role.
        #[arg(long)]
        name: Option<String>,
        /// `admin` or `user`.
        #[arg(long, default_value = "user")]
        role: String,
        /// The User subscription the token acts for (needed to own and join workflow groups);
        /// the token then has at most the user's role, and works while the user is active.
        #[arg(long)]
        user: Option<Uuid>,
        /// Days until the token expires (default: `accounts.token_days`, 30).
        #[arg(long, conflicts_with = "no_expiry")]
        expires_in_days: Option<u32>,
        /// The token never expires (for a service an admin vouches for).
        #[arg(long)]
        no_expiry: bool,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token.
    Revoke {
        /// Token id.
        id: Uuid,
    },
}

pub(crate) async fn token(
    engine: &Engine,
    settings: &AccountSettings,
    output: &Output,
    command: TokenCommand,
) -> Result<()> {
    let store = engine.store().as_ref();
    match command {
        TokenCommand::Create {
            name,
            role,
            user,
            expires_in_days,
            no_expiry,
        } => {
            let role: Role = role.parse()?;
            let name = name.unwrap_or_else(|| role.to_string());
            let now = SystemClock.now();
            let days = expires_in_days.unwrap_or(settings.token_days);
            if days == 0 {
                anyhow::bail!("--expires-in-days must be at least 1 (or use --no-expiry)");
            }
            let expires_at = (!no_expiry).then(|| now + TimeDelta::days(i64::from(days)));
            let issued = cadre_server::auth::issue_token(
                store,
                NewToken {
                    name: &name,
                    role,
                    user,
                    expires_at,
                },
                &operator(),
                now,
            )
            .await?;
            output.token_created(&issued);
        }
        TokenCommand::List => output.tokens(&store.list_tokens().await?),
        TokenCommand::Revoke { id } => {
            cadre_server::auth::revoke_token(store, id, &operator(), SystemClock.now()).await?;
            output.message(&format!("token {id} revoked"));
        }
    }
    Ok(())
}
