//! `cadre audit`: the audit log, newest first.

use anyhow::Result;
use cadre_engine::Engine;
use cadre_server::api::audit::{self, AuditFilter};
use clap::Subcommand;
use uuid::Uuid;

use crate::explain;
use crate::output::Output;

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// List audit events, newest first (`--after` the last id shown for the next page).
    List {
        /// Only this action, e.g. `sign_in_failed`.
        #[arg(long)]
        action: Option<String>,
        /// Only this actor (exactly).
        #[arg(long)]
        actor: Option<String>,
        /// Only this target (exactly), e.g. a process id.
        #[arg(long)]
        target: Option<String>,
        /// Only events older than this one (the `next` cursor of the page before).
        #[arg(long)]
        after: Option<Uuid>,
        /// Most events to show (1 to 1000).
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
}

pub(crate) async fn audit(engine: &Engine, output: &Output, command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::List {
            action,
            actor,
            target,
            after,
            limit,
        } => {
            let filter = AuditFilter {
                action,
                actor,
                target,
                after,
                limit: Some(limit),
                ..AuditFilter::default()
            };
            let page = audit::list(engine.store().as_ref(), filter)
                .await
                .map_err(explain)?;
            output.audit(&page);
        }
    }
    Ok(())
}
