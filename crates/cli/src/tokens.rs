//! `cadre token`: API tokens.

use anyhow::Result;
use cadre_domain::{Clock, Role, SystemClock};
use cadre_engine::Engine;
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
        /// The User subscription the token acts for (needed to own and join workflow groups).
        #[arg(long)]
        user: Option<Uuid>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token.
    Revoke {
        /// Token id.
        id: Uuid,
    },
}

pub(crate) async fn token(engine: &Engine, output: &Output, command: TokenCommand) -> Result<()> {
    let store = engine.store().as_ref();
    match command {
        TokenCommand::Create { name, role, user } => {
            let role: Role = role.parse()?;
            let name = name.unwrap_or_else(|| role.to_string());
            let issued = cadre_server::auth::issue_token(
                store,
                &name,
                role,
                user,
                &operator(),
                SystemClock.now(),
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
